// One visit's record in the chart browser: summary (reason, acuity, triage,
// consent with its wording version, participants, times, the state
// timeline), the recordings (played from the chart with Range requests), the
// transcript (a line seeks the recording it is in), the chat, the snapshots
// with their quality figures, the integrity check (the manifest verified on
// open) and the FHIR and zip downloads. Every read is audited by the server.

import { esiName, h, stateName } from "/static/common.js";
import { snapshotLabel, snapshotWarnings } from "/static/snapshots.js";
import { endReasonText } from "/static/staff_labels.js";
import { ROLE_NAMES, fileLink, formatDateTime, formatOffset, getChart, jsonLines } from "/static/chart_api.js";

const ACTIONS = { check_in: "Checked in", triage: "Triaged", route: "Routed", admit: "Admitted", leave: "Left", end: "Ended", call_off: "Called off" };

/** What a chart file is, in words (a snapshot's file is named by an id). */
function chartFile(name) {
  const recording = /^recording-([a-z]+)-(\d+)\.webm$/.exec(name);
  if (recording) return `The ${(ROLE_NAMES[recording[1]] || "participant").toLowerCase()}’s recording (part ${recording[2]})`;
  if (name.startsWith("snapshots/")) return "A snapshot";
  const known = {
    "visit.json": "The visit record",
    "chat.jsonl": "The chat",
    "recordings.json": "The list of recordings and snapshots",
    "transcript.jsonl": "The transcript",
    "transcript.vtt": "The transcript (captions file)",
    "fhir.json": "The FHIR record",
    "manifest.json": "The seal",
  };
  return known[name] || "A file";
}

/** One finding of the integrity check, in words. */
function integrityProblem(p) {
  const what = chartFile(p.name);
  const how = {
    missing: "is missing",
    changed: "has changed since the chart was sealed",
    unlisted: "was added after the chart was sealed",
    no_manifest: "is missing: the chart was never sealed",
    bad_manifest: "cannot be read or belongs to another chart",
    unsealed: "is not recorded in the audit trail",
  };
  return `${what} ${how[p.kind] || "does not check out"}.`;
}

function section(id, title, ...children) {
  return h("section", { id, class: "panel", "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title`, text: title }), ...children);
}

function facts(pairs) {
  return h("dl", { class: "facts" }, ...pairs.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", {}, value ?? "—")]));
}

export class ChartRecord {
  /**
   * @param root the element the record is built in
   * @param token the staff token
   * @param back called by "Back to the list"
   */
  constructor(root, { token, back }) {
    this.root = root;
    this.token = token;
    this.back = back;
    this.visitId = null;
    this.videos = new Map(); // recording file -> {video, started_at}
  }

  /** Stop playback and forget the record shown (its links die with the page). */
  close() {
    for (const { video } of this.videos.values()) {
      video.pause();
      video.removeAttribute("src");
      video.load();
    }
    this.videos.clear();
    this.visitId = null;
  }

  async open(summary) {
    this.close();
    const visitId = summary.visit_id;
    this.visitId = visitId;
    const name = summary.patient_name || "Patient without a name";
    this.title = h("h1", { id: "record-title", tabindex: "-1", text: `Chart of ${name}` });
    this.status = h("p", { id: "record-status", class: "form-status small", role: "status", "aria-live": "polite", text: "Opening the chart…" });
    this.root.replaceChildren(
      h("div", { class: "queue-head" }, this.title,
        h("button", { id: "record-back", type: "button", class: "btn btn-small", text: "Back to the list", on: { click: () => this.back() } })),
      this.status,
    );
    this.title.focus();
    const base = `/api/visits/${encodeURIComponent(visitId)}`;
    let doc;
    try {
      doc = await getChart(this.token, `${base}/chart`);
    } catch (err) {
      if (this.visitId === visitId) this.status.textContent = err.message;
      return;
    }
    if (this.visitId !== visitId) return;
    const names = new Set(doc.files.map((f) => f.name));
    const read = async (file, parse) => (names.has(file) ? parse(await getChart(this.token, `${base}/files/${file}`, { text: true })) : null);
    let chat = [];
    let transcript = [];
    let media = null;
    try {
      [chat, transcript, media] = await Promise.all([
        read("chat.jsonl", jsonLines),
        read("transcript.jsonl", jsonLines),
        read("recordings.json", (t) => JSON.parse(t)),
      ]);
    } catch (err) {
      this.status.textContent = `Part of the chart could not be read: ${err.message}`;
    }
    if (this.visitId !== visitId) return;
    const visit = doc.visit || {};
    this.people = new Map((visit.participants || []).map((p) => [p.sub, p]));
    const integrity = h("p", { id: "record-integrity", class: "integrity", dataset: { state: "checking" }, role: "status", text: "Checking that the chart is intact…" });
    this.root.append(
      section("record-integrity-panel", "Integrity", integrity),
      this.summary(visit),
      this.timeline(visit.history || []),
      this.recordings(media ? media.recordings : []),
      this.transcript(transcript || [], visit),
      this.chat(chat || []),
      this.snapshots(media ? media.snapshots : []),
      this.downloads(doc),
    );
    if (!this.status.textContent.startsWith("Part")) this.status.textContent = "";
    this.verify(base, integrity, visitId);
  }

  personName(sub, role) {
    const p = this.people.get(sub);
    if (p && p.name) return p.name;
    return role ? `A ${ROLE_NAMES[role] ? ROLE_NAMES[role].toLowerCase() : "participant"}` : "Someone";
  }

  async verify(base, el, visitId) {
    try {
      const report = await getChart(this.token, `${base}/verify`);
      if (this.visitId !== visitId) return;
      el.dataset.state = report.ok ? "ok" : "problem";
      if (report.ok) {
        el.textContent = `Intact: all ${report.files} files match the seal.`;
      } else {
        el.replaceChildren(
          h("strong", { text: "This chart has changed since it was sealed." }),
          h("ul", {}, ...report.problems.map((p) => h("li", { text: integrityProblem(p) }))),
        );
      }
    } catch (err) {
      if (this.visitId !== visitId) return;
      el.dataset.state = "error";
      el.textContent = `The integrity check could not run: ${err.message}`;
    }
  }

  summary(visit) {
    const times = visit.times || {};
    const triage = visit.triage;
    const consent = visit.consent;
    const consentText = consent
      ? `Video visit: ${consent.visit ? "yes" : "no"} · recording and transcription: ${consent.recording ? "yes" : "no"} · wording version ${consent.version || "unknown"} · given ${formatDateTime(consent.at)}`
      : "Not given (the patient did not check in)";
    const state = visit.state ? stateName(visit.state) : "—";
    const reason = visit.end_reason ? ` (${endReasonText(visit.end_reason).toLowerCase()})` : "";
    return section(
      "record-summary",
      "Summary",
      facts([
        ["Reason", visit.reason || "—"],
        ["Acuity", visit.acuity ? `ESI ${visit.acuity} — ${esiName(visit.acuity)}` : "Not set"],
        ["Triage note", triage && triage.note ? `${triage.note} — ${this.personName(triage.by, "nurse")}` : "—"],
        ["Consent", consentText],
        ["State", `${state}${reason}`],
        ["Participants", (visit.participants || []).map((p) => `${p.name || "No name"} (${ROLE_NAMES[p.role] || p.role})`).join(", ") || "—"],
        ["Created", formatDateTime(times.created)],
        ["Checked in", formatDateTime(times.checked_in)],
        ["Admitted", formatDateTime(times.admitted)],
        ["Ended", formatDateTime(times.ended)],
      ]),
    );
  }

  timeline(history) {
    const items = history.map((e) => {
      const action = String(e.action || "").split(":")[0]; // "end:completed": the reason is in the summary
      return h("li", {}, h("span", { class: "muted timeline-time", text: formatDateTime(e.at, { seconds: true }) }), " ",
        `${ACTIONS[action] || "Changed"}: ${e.to ? stateName(e.to) : "—"}`, e.by === "system" ? " — automatically" : e.by ? ` — ${this.personName(e.by)}` : "");
    });
    return section("record-timeline", "State timeline", items.length ? h("ol", { class: "timeline" }, ...items) : h("p", { class: "muted", text: "No changes recorded." }));
  }

  recordings(list) {
    const body = h("div", { class: "record-videos" });
    const sorted = [...(list || [])].sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
    for (const r of sorted) {
      const label = `${ROLE_NAMES[r.role] || r.role} — part ${r.n || 1}, started ${formatDateTime(r.started_at)}`;
      const video = h("video", { controls: true, preload: "metadata", playsinline: true, dataset: { file: r.file }, "aria-label": label });
      const note = h("p", { class: "small muted" });
      this.videos.set(r.file, { video, started_at: r.started_at });
      body.append(h("figure", { class: "record-video" }, video, h("figcaption", { class: "small", text: label }), note));
      fileLink(this.token, this.visitId, r.file)
        .then((url) => (video.src = url))
        .catch((err) => (note.textContent = `This recording cannot be played: ${err.message}`));
    }
    if (!sorted.length) body.append(h("p", { class: "muted", text: "No recordings (the patient did not consent, or the visit had no video)." }));
    return section("record-recordings", "Recordings", body);
  }

  transcript(lines, visit) {
    const admitted = (visit.times || {}).admitted || 0;
    const sorted = [...lines].sort((a, b) => a.start - b.start);
    const list = h("ol", { class: "plain-list transcript" });
    for (const line of sorted) {
      const at = line.at || admitted + line.start;
      const playable = this.videos.has(line.recording);
      const speaker = ROLE_NAMES[line.role] || line.role;
      const content = [h("span", { class: "transcript-time", text: formatOffset(line.start) }), " ", h("strong", { class: "speaker", text: `${speaker}:` }), ` ${line.text}`];
      list.append(
        h("li", {}, playable
          ? h("button", { type: "button", class: "transcript-line", dataset: { recording: line.recording, at: String(at) },
              "aria-label": `Play from here: ${speaker} at ${formatOffset(line.start)}`, on: { click: () => this.seek(line.recording, at) } }, ...content)
          : h("p", { class: "transcript-line" }, ...content)),
      );
    }
    return section("record-transcript", "Transcript", sorted.length ? list : h("p", { class: "muted", text: "No transcript." }));
  }

  /** Play the recording `file` from the wall time `at`. */
  seek(file, at) {
    const entry = this.videos.get(file);
    if (!entry) return;
    const { video, started_at: startedAt } = entry;
    const offset = Math.max(0, at - (startedAt || at));
    const go = () => {
      video.currentTime = offset;
      video.play().catch(() => {}); // stays paused at the place if the browser refuses to play
    };
    if (video.readyState >= 1) go();
    else video.addEventListener("loadedmetadata", go, { once: true });
    video.scrollIntoView({ block: "nearest" });
  }

  chat(messages) {
    const list = h("ol", { class: "plain-list record-chat" });
    for (const m of messages) {
      list.append(h("li", { class: `chat-line chat-${m.role}` },
        h("p", { class: "small muted" }, `${m.name || this.personName(m.sub, m.role)} (${ROLE_NAMES[m.role] || m.role}) · ${formatDateTime(m.at)}`),
        h("p", { text: m.text })));
    }
    return section("record-chat", "Chat", messages.length ? list : h("p", { class: "muted", text: "No messages." }));
  }

  snapshots(shots) {
    const list = h("ul", { class: "gallery" });
    for (const [i, shot] of (shots || []).entries()) {
      const warnings = snapshotWarnings(shot);
      const label = snapshotLabel(i + 1, shot.taken_at);
      const img = h("img", { class: "shot-preview", alt: `${label}, taken ${formatDateTime(shot.taken_at)}` });
      fileLink(this.token, this.visitId, shot.file).then((url) => (img.src = url)).catch(() => img.replaceWith(h("div", { class: "shot-preview shot-none", text: "Cannot be shown" })));
      list.append(h("li", { class: warnings.length ? "shot shot-warn" : "shot" }, img,
        h("div", { class: "shot-facts" },
          h("p", { class: "shot-label", text: label }),
          h("p", { class: "small", text: `Sharpness ${Number(shot.sharpness).toFixed(0)} · brightness ${Number(shot.brightness).toFixed(0)}${shot.width ? ` · ${shot.width}×${shot.height}` : ""}` }),
          ...warnings.map((w) => h("p", { class: "shot-warning", text: w.replace(" — retake?", "") })))));
    }
    return section("record-snapshots", "Snapshots", (shots || []).length ? list : h("p", { class: "muted", text: "No snapshots." }));
  }

  downloads(doc) {
    const status = h("p", { id: "record-download-status", class: "form-status small", role: "status", "aria-live": "polite" });
    const save = async (name, what) => {
      status.textContent = `Preparing ${what}…`;
      try {
        const url = await fileLink(this.token, this.visitId, name);
        const a = h("a", { href: url, download: "" });
        document.body.append(a);
        a.click();
        a.remove();
        status.textContent = `${what[0].toUpperCase()}${what.slice(1)}: download started.`;
      } catch (err) {
        status.textContent = err.message;
      }
    };
    const hasFhir = doc.files.some((f) => f.name === "fhir.json");
    return section(
      "record-downloads",
      "Download",
      h("div", { class: "actions" },
        h("button", { id: "download-fhir", type: "button", class: "btn", disabled: !hasFhir, text: "FHIR record (JSON)", on: { click: () => save("fhir.json", "the FHIR record") } }),
        h("button", { id: "download-zip", type: "button", class: "btn", text: "Whole chart (zip)", on: { click: () => save("chart.zip", "the whole chart") } })),
      hasFhir ? null : h("p", { class: "muted small", text: "The FHIR record is written when the visit ends." }),
      status,
    );
  }
}
