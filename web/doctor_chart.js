// The doctor's chart panels in a visit: the recording indicator and the
// doctor's own chart leg (chart_session.js), live captions (captions.js), and
// snapshots of the patient's video (snapshots.js); the language the doctor
// speaks (their captions are recognised in it: named in the leg's offer, and
// sent as `caption_language` when changed during a call); and, for the
// summary, what this page saw go into the chart.

import { $, h, request } from "/static/common.js";
import { CaptionsPanel } from "/static/captions.js";
import { ChartSession } from "/static/chart_session.js";
import { capitalise } from "/static/clinic_text.js";
import { LANGUAGES, formatList, lang, languageNameHere, t } from "/static/i18n.js";
import { SnapshotGallery, grabFrame, snapshotWarnings } from "/static/snapshots.js";

export class DoctorChart {
  /**
   * @param socket the /media socket
   * @param notices the page's Notices
   * @param token the staff token (to fetch the chart's copy of a snapshot)
   * @param currentVisit () => the doctor's visit in progress on this page, or null
   * @param iceServers () => the call's RTCConfiguration.iceServers
   * @param callView the page's CallView (the chart leg follows its call's video pauses)
   */
  constructor({ socket, notices, token, currentVisit, iceServers, callView = null }) {
    this.socket = socket;
    this.notices = notices;
    this.token = token;
    this.currentVisit = currentVisit;
    this.iceServers = iceServers;
    this.callView = callView;
    /** Whether the visit open on this page is recorded and transcribed (the patient's consent). */
    this.consent = false;
    this.session = new ChartSession({ socket, role: "doctor", onLegState: (s, err) => this.legState(s, err) });
    this.captions = new CaptionsPanel($("#captions"), $("#captions-state"));
    this.gallery = new SnapshotGallery($("#gallery"), { onRetake: () => this.takeSnapshot() });
    socket.on("caption", (p) => this.captions.applyCaption(p));
    socket.on("captions", (p) => this.captions.applyState(p));
    $("#snapshot").addEventListener("click", () => this.takeSnapshot());
    this.language = $("#caption-language");
    this.languageSaid = $("#caption-language-said");
    this.language.replaceChildren(...LANGUAGES.map(({ tag, name }) => h("option", { value: tag, lang: tag, text: name })));
    // The page's language ("en" for the test's made-up one) until the doctor says otherwise.
    this.language.value = LANGUAGES.some((l) => l.tag === lang) ? lang : "en";
    this.language.addEventListener("change", () => this.languageChosen());
  }

  /** The language the doctor speaks (a tag of the pages' languages). */
  get speaks() {
    return this.language.value;
  }

  /**
   * The doctor chose another language: the chart leg's next offer names it,
   * and during a call the worker switches the doctor's captions at once.
   */
  async languageChosen() {
    const language = this.speaks;
    const visitId = this.currentVisit();
    if (this.session.leg) this.session.leg.language = language;
    this.sayLanguage("");
    if (!visitId || !this.consent) return; // no call, or nothing of it is transcribed
    try {
      const reply = await request(this.socket, "caption_language", { visit_id: visitId, language });
      if (this.currentVisit() !== visitId || this.speaks !== language) return;
      const key = reply.applies === "now" ? "doctor.language.now" : "doctor.language.next";
      this.sayLanguage(t(key, { language: languageNameHere(language) }));
    } catch (err) {
      if (this.currentVisit() !== visitId) return;
      this.sayLanguage(t("doctor.language.failed", { reason: err.message }), true);
    }
  }

  sayLanguage(text, error = false) {
    this.languageSaid.textContent = text;
    this.languageSaid.dataset.kind = error ? "error" : "";
    this.languageSaid.hidden = !text;
  }

  /**
   * A visit opened on this page: show whether it is recorded, and (with the
   * patient's consent) send own camera and microphone to the chart on a
   * second, send-only connection to the media worker.
   * @param mediaReady the promise of own camera and microphone
   */
  start(visit, mediaReady) {
    this.stop();
    const visitId = visit.visit_id;
    const consent = Boolean(visit.consent_recording);
    this.consent = consent;
    this.captions.reset(visitId, { consent });
    this.gallery.clear();
    $("#snapshot").disabled = !consent;
    $("#snapshot-state").textContent = consent ? "" : t("doctor.snapshot.no_consent");
    this.sayLanguage("");
    this.session.watch(visitId);
    if (!consent) return;
    Promise.resolve(mediaReady).then((stream) => {
      if (this.currentVisit() !== visitId || this.session.leg || !stream) return;
      this.session.send(visitId, stream, this.iceServers(), { language: this.speaks, follow: this.callView });
    });
  }

  /** Stop sending to the chart; what the page learnt (files, shots, captions) stays for the summary. */
  stop() {
    this.session.stop();
  }

  legState(s, err) {
    // A conflict means the visit is no longer in progress: its `visit` event says so.
    if (s === "refused" && !(err && err.code === "conflict")) {
      this.notices.error(err ? t("doctor.leg.refused", { reason: err.message }) : t("doctor.leg.refused_unknown"), "chart-leg");
    }
    else if (s === "connected") this.notices.clear("chart-leg");
  }

  async takeSnapshot() {
    const visitId = this.currentVisit();
    if (!visitId) return;
    const button = $("#snapshot");
    button.disabled = true;
    this.notices.clear("snapshot");
    $("#snapshot-state").textContent = t("doctor.snapshot.taking");
    const preview = grabFrame($("#remote-video"));
    try {
      const reply = await request(this.socket, "snapshot", { visit_id: visitId }, 15000);
      if (this.currentVisit() !== visitId) return;
      const item = this.gallery.add(reply.snapshot, preview);
      if (reply.snapshot.file) {
        // The preview stays if the chart's copy cannot be fetched (the visit goes on).
        const url = `/api/visits/${encodeURIComponent(visitId)}/files/${reply.snapshot.file}`;
        this.gallery.showStored(item, url, this.token).catch(() => {
          item.querySelector(".shot-source").textContent = t("doctor.snapshot.copy_unavailable");
        });
      }
      const warnings = snapshotWarnings(reply.snapshot);
      $("#snapshot-state").textContent = [t("doctor.snapshot.saved"), ...warnings].join(" ");
    } catch (err) {
      $("#snapshot-state").textContent = "";
      this.notices.error(snapshotProblem(err), "snapshot");
    } finally {
      button.disabled = this.currentVisit() !== visitId;
    }
  }

  /** What this page saw go into the chart of a visit, for the summary. */
  facts(visit) {
    if (!visit.consent_recording) {
      const none = t("doctor.facts.no_consent");
      return { recordings: none, snapshots: none, transcript: none };
    }
    const recording = this.session.recording;
    const files = recording && recording.visitId === visit.visit_id ? recording.files : [];
    const shots = this.captions.visitId === visit.visit_id ? this.gallery.labels : [];
    return {
      recordings: files.length ? describeRecordings(files) : t("doctor.facts.no_recordings_seen"),
      snapshots: shots.length ? formatList(shots) : t("doctor.facts.none"),
      transcript: this.captions.visitId === visit.visit_id ? this.captions.describe() : "—",
    };
  }
}

/** "The patient’s video and your video" (with the number of parts when a leg was re-established). */
export function describeRecordings(files) {
  const parts = new Map();
  for (const file of files) {
    const role = (/^recording-([a-z]+)-/.exec(file) || [])[1];
    const whose = role === "patient" || role === "doctor" ? role : "other";
    parts.set(whose, (parts.get(whose) || 0) + 1);
  }
  const said = ["patient", "doctor", "other"]
    .filter((whose) => parts.has(whose))
    .map((whose) => (parts.get(whose) > 1 ? t(`doctor.recordings.${whose}_parts`, { count: parts.get(whose) }) : t(`doctor.recordings.${whose}`)));
  return capitalise(formatList(said));
}

function snapshotProblem(err) {
  if (err.code === "not_found") return t("doctor.snapshot.not_recording");
  if (err.code === "forbidden" && err.details && err.details.reason === "no_consent") return t("doctor.snapshot.no_consent_now");
  return t("doctor.snapshot.failed", { reason: err.message });
}
