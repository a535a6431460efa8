// One visit's record in the chart browser: summary (reason, acuity, triage,
// the patient's language, consent with the wording's version and language,
// participants, times, the state timeline), the recordings (played from the
// chart with Range requests), the transcript (a line seeks the recording it
// is in), the chat, the snapshots with their quality figures, the integrity
// check (the manifest verified on open) and the FHIR and zip downloads.
// Every read is audited by the server. Person data (names, notes, chat and
// transcript text) is shown translate="no".

import { esiName, h, stateName } from "/static/common.js";
import { snapshotLabel, snapshotQuality, snapshotWarnings } from "/static/snapshots.js";
import { endReasonText } from "/static/staff_labels.js";
import { fileLink, formatDateTime, formatOffset, getChart, jsonLines } from "/static/chart_api.js";
import { capitalise, languageLabel, listNodes, participantRole, roleName } from "/static/clinic_text.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { intlLocale, t } from "/static/i18n.js";

/** History actions with a word of their own ("end:completed" is read as "end"). */
const ACTIONS = ["check_in", "triage", "route", "admit", "leave", "end", "call_off"];

/** The chart's files with a name of their own, as a sentence names them ("the chat"). */
const FILES = {
  "visit.json": "visit",
  "chat.jsonl": "chat",
  "recordings.json": "recordings",
  "transcript.jsonl": "transcript",
  "transcript.vtt": "captions",
  "fhir.json": "fhir",
  "manifest.json": "seal",
};

/** What a chart file is, in words to start a sentence with (a snapshot's file is named by an id). */
function chartFile(name) {
  const recording = /^recording-([a-z]+)-(\d+)\.webm$/.exec(name);
  if (recording) {
    const whose = recording[1] === "patient" || recording[1] === "doctor" ? recording[1] : "other";
    return t(`record.file.recording_${whose}`, { n: Number(recording[2]) });
  }
  if (name.startsWith("snapshots/")) return t("record.file.snapshot");
  return t(`record.file.${FILES[name] || "other"}`);
}

/** The integrity check's findings ("missing", "changed"...) with words of their own. */
const PROBLEMS = ["missing", "changed", "unlisted", "no_manifest", "bad_manifest", "unsealed"];

/** One finding of the integrity check, in words. */
function integrityProblem(p) {
  const kind = PROBLEMS.includes(p.kind) ? p.kind : "other";
  return capitalise(t(`record.integrity.${kind}`, { what: chartFile(p.name) }));
}

function section(id, titleKey, ...children) {
  return h("section", { id, class: "panel", "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title`, text: t(titleKey) }), ...children);
}

/** A list of facts: [key of the term, the value (text, a node, or nodes)]. */
function facts(pairs) {
  return h("dl", { class: "facts" }, ...pairs.flatMap(([term, value]) => [h("dt", { text: t(term) }), h("dd", {}, value ?? "—")]));
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
    const name = summary.patient_name;
    this.title = h("h1", { id: "record-title", tabindex: "-1" },
      ...(name ? tNodes("record.title", { name: untranslated(name) }) : [t("record.title_unnamed")]));
    this.status = h("p", { id: "record-status", class: "form-status small", role: "status", "aria-live": "polite", text: t("record.opening") });
    this.root.replaceChildren(
      h("div", { class: "queue-head" }, this.title,
        h("button", { id: "record-back", type: "button", class: "btn btn-small", text: t("record.back"), on: { click: () => this.back() } })),
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
    let partial = false;
    try {
      [chat, transcript, media] = await Promise.all([
        read("chat.jsonl", jsonLines),
        read("transcript.jsonl", jsonLines),
        read("recordings.json", (text) => JSON.parse(text)),
      ]);
    } catch (err) {
      partial = true;
      this.status.textContent = t("record.partial", { reason: err.message });
    }
    if (this.visitId !== visitId) return;
    const visit = doc.visit || {};
    this.people = new Map((visit.participants || []).map((p) => [p.sub, p]));
    const integrity = h("p", { id: "record-integrity", class: "integrity", dataset: { state: "checking" }, role: "status", text: t("record.integrity.checking") });
    this.root.append(
      section("record-integrity-panel", "record.integrity.title", integrity),
      this.summary(visit),
      this.timeline(visit.history || []),
      this.recordings(media ? media.recordings : []),
      this.transcript(transcript || [], visit),
      this.chat(chat || []),
      this.snapshots(media ? media.snapshots : []),
      this.downloads(doc),
    );
    if (!partial) this.status.textContent = "";
    this.verify(base, integrity, visitId);
  }

  /** A participant's name (translate="no"), or what they were ("A nurse") when the chart has none. */
  personName(sub, role) {
    const p = this.people.get(sub);
    if (p && p.name) return untranslated(p.name);
    const known = ["patient", "nurse", "doctor", "admin"];
    const what = role || (p && p.role);
    return t(what ? `record.someone.${known.includes(what) ? what : "participant"}` : "record.someone.unknown");
  }

  async verify(base, el, visitId) {
    try {
      const report = await getChart(this.token, `${base}/verify`);
      if (this.visitId !== visitId) return;
      el.dataset.state = report.ok ? "ok" : "problem";
      if (report.ok) {
        el.textContent = t("record.integrity.ok", { count: report.files });
      } else {
        el.replaceChildren(
          h("strong", { text: t("record.integrity.changed_since_sealed") }),
          h("ul", {}, ...report.problems.map((p) => h("li", { text: integrityProblem(p) }))),
        );
      }
    } catch (err) {
      if (this.visitId !== visitId) return;
      el.dataset.state = "error";
      el.textContent = t("record.integrity.failed", { reason: err.message });
    }
  }

  summary(visit) {
    const times = visit.times || {};
    const triage = visit.triage;
    const state = visit.state ? stateName(visit.state) : "—";
    const participants = (visit.participants || []).map((p) =>
      h("span", {}, ...tNodes("record.participant", { name: p.name ? untranslated(p.name) : t("record.no_name"), role: participantRole(p) })));
    return section(
      "record-summary",
      "record.summary.title",
      facts([
        ["record.summary.reason", visit.reason ? untranslated(visit.reason) : "—"],
        ["record.summary.acuity", visit.acuity ? tNodes("record.summary.acuity_value", { code: untranslated(`ESI ${visit.acuity}`), name: esiName(visit.acuity) }) : t("record.summary.acuity_not_set")],
        ["record.summary.triage_note", triage && triage.note
          ? tNodes("record.summary.triage_note_by", { note: untranslated(triage.note), who: this.personName(triage.by, "nurse") })
          : "—"],
        ["record.summary.language", visit.language ? languageLabel(visit.language) : t("record.summary.language_unknown")],
        ["record.summary.consent", this.consent(visit.consent)],
        ["record.summary.state", visit.end_reason
          ? t("record.summary.state_reason", { state, reason: endReasonText(visit.end_reason).toLocaleLowerCase(intlLocale) })
          : state],
        ["record.summary.participants", participants.length ? listNodes(participants) : "—"],
        ["record.summary.created", formatDateTime(times.created)],
        ["record.summary.checked_in", formatDateTime(times.checked_in)],
        ["record.summary.admitted", formatDateTime(times.admitted)],
        ["record.summary.ended", formatDateTime(times.ended)],
      ]),
    );
  }

  /**
   * What the patient agreed to, and to which wording, on three lines: "Video
   * visit: yes · recording and transcription: yes", "Wording version 2026-11
   * (中文（简体）)", "Given …".
   */
  consent(consent) {
    if (!consent) return t("record.consent.none");
    const version = consent.version ? untranslated(consent.version) : null;
    let wording;
    if (!version) wording = [t("record.consent.wording_unknown")];
    else if (consent.language) wording = tNodes("record.consent.wording_language", { version, language: languageLabel(consent.language) });
    else wording = tNodes("record.consent.wording", { version });
    return [
      h("span", { class: "fact-line" }, t(consent.visit ? "record.consent.visit_yes" : "record.consent.visit_no"), " · ",
        t(consent.recording ? "record.consent.recording_yes" : "record.consent.recording_no")),
      h("span", { class: "fact-line consent-wording" }, ...wording),
      h("span", { class: "fact-line" }, t("record.consent.given", { date: formatDateTime(consent.at) })),
    ];
  }

  timeline(history) {
    const items = history.map((e) => {
      const name = String(e.action || "").split(":")[0]; // "end:completed": the reason is in the summary
      const action = t(ACTIONS.includes(name) ? `record.action.${name}` : "record.action.other");
      const state = e.to ? stateName(e.to) : "—";
      let said;
      if (e.by === "system") said = [t("record.timeline.automatic", { action, state })];
      else if (e.by) said = tNodes("record.timeline.by", { action, state, who: this.personName(e.by) });
      else said = [t("record.timeline.entry", { action, state })];
      return h("li", {}, h("span", { class: "muted timeline-time", text: formatDateTime(e.at, { seconds: true }) }), " ", ...said);
    });
    return section("record-timeline", "record.timeline.title",
      items.length ? h("ol", { class: "timeline" }, ...items) : h("p", { class: "muted", text: t("record.timeline.empty") }));
  }

  recordings(list) {
    const body = h("div", { class: "record-videos" });
    const sorted = [...(list || [])].sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
    for (const r of sorted) {
      const label = t("record.recording.label", { role: roleName(r.role), n: r.n || 1, date: formatDateTime(r.started_at) });
      const video = h("video", { controls: true, preload: "metadata", playsinline: true, dataset: { file: r.file }, "aria-label": label });
      const note = h("p", { class: "small muted" });
      this.videos.set(r.file, { video, started_at: r.started_at });
      body.append(h("figure", { class: "record-video" }, video, h("figcaption", { class: "small", text: label }), note));
      fileLink(this.token, this.visitId, r.file)
        .then((url) => (video.src = url))
        .catch((err) => (note.textContent = t("record.recording.unplayable", { reason: err.message })));
    }
    if (!sorted.length) body.append(h("p", { class: "muted", text: t("record.recording.none") }));
    return section("record-recordings", "record.recording.title", body);
  }

  transcript(lines, visit) {
    const admitted = (visit.times || {}).admitted || 0;
    const sorted = [...lines].sort((a, b) => a.start - b.start);
    const list = h("ol", { class: "plain-list transcript" });
    for (const line of sorted) {
      const at = line.at || admitted + line.start;
      const playable = this.videos.has(line.recording);
      const speaker = roleName(line.role);
      const words = untranslated(String(line.text || ""));
      if (line.language) words.lang = line.language; // transcript lines carry the speaker's language
      const content = [h("span", { class: "transcript-time", text: formatOffset(line.start) }), " ",
        h("strong", { class: "speaker", text: t("record.transcript.speaker", { speaker }) }), " ", words];
      // A playable line is a button named by what it shows, after a hidden "Play from here:" (WCAG 2.5.3).
      list.append(
        h("li", {}, playable
          ? h("button", { type: "button", class: "transcript-line", dataset: { recording: line.recording, at: String(at) }, on: { click: () => this.seek(line.recording, at) } },
              h("span", { class: "visually-hidden", text: `${t("record.transcript.play_from")} ` }), ...content)
          : h("p", { class: "transcript-line" }, ...content)),
      );
    }
    return section("record-transcript", "record.transcript.title", sorted.length ? list : h("p", { class: "muted", text: t("record.transcript.none") }));
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
      const who = m.name ? untranslated(m.name) : this.personName(m.sub, m.role);
      list.append(h("li", { class: `chat-line chat-${m.role}` },
        h("p", { class: "small muted" }, ...tNodes("record.chat.from", { who, role: roleName(m.role), date: formatDateTime(m.at) })),
        untranslated(String(m.text || ""), "p")));
    }
    return section("record-chat", "record.chat.title", messages.length ? list : h("p", { class: "muted", text: t("record.chat.none") }));
  }

  snapshots(shots) {
    const list = h("ul", { class: "gallery" });
    for (const [i, shot] of (shots || []).entries()) {
      const warnings = snapshotWarnings(shot, { retake: false });
      const label = snapshotLabel(i + 1, shot.taken_at);
      const img = h("img", { class: "shot-preview", alt: t("record.snapshot.alt", { label, date: formatDateTime(shot.taken_at) }) });
      fileLink(this.token, this.visitId, shot.file)
        .then((url) => (img.src = url))
        .catch(() => img.replaceWith(h("div", { class: "shot-preview shot-none", text: t("record.snapshot.unavailable") })));
      list.append(h("li", { class: warnings.length ? "shot shot-warn" : "shot" }, img,
        h("div", { class: "shot-facts" },
          h("p", { class: "shot-label", text: label }),
          h("p", { class: "small", text: snapshotQuality(shot) }),
          ...warnings.map((w) => h("p", { class: "shot-warning", text: w })))));
    }
    return section("record-snapshots", "record.snapshot.title", (shots || []).length ? list : h("p", { class: "muted", text: t("record.snapshot.none") }));
  }

  downloads(doc) {
    const status = h("p", { id: "record-download-status", class: "form-status small", role: "status", "aria-live": "polite" });
    /** what: "fhir" or "zip" (the keys of its words) */
    const save = async (name, what) => {
      status.textContent = t(`record.download.${what}_preparing`);
      try {
        const url = await fileLink(this.token, this.visitId, name);
        const a = h("a", { href: url, download: "" });
        document.body.append(a);
        a.click();
        a.remove();
        status.textContent = t(`record.download.${what}_started`);
      } catch (err) {
        status.textContent = err.message;
      }
    };
    const hasFhir = doc.files.some((f) => f.name === "fhir.json");
    return section(
      "record-downloads",
      "record.download.title",
      h("div", { class: "actions" },
        h("button", { id: "download-fhir", type: "button", class: "btn", disabled: !hasFhir, text: t("record.download.fhir"), on: { click: () => save("fhir.json", "fhir") } }),
        h("button", { id: "download-zip", type: "button", class: "btn", text: t("record.download.zip"), on: { click: () => save("chart.zip", "zip") } })),
      hasFhir ? null : h("p", { class: "muted small", text: t("record.download.fhir_later") }),
      status,
    );
  }
}
