// The doctor's chart panels in a visit: the recording indicator and the
// doctor's own chart leg (chart_session.js), live captions (captions.js), and
// snapshots of the patient's video (snapshots.js); and, for the summary, what
// this page saw go into the chart.

import { $, request } from "/static/common.js";
import { CaptionsPanel } from "/static/captions.js";
import { ChartSession } from "/static/chart_session.js";
import { SnapshotGallery, grabFrame, snapshotWarnings } from "/static/snapshots.js";

export class DoctorChart {
  /**
   * @param socket the /media socket
   * @param notices the page's Notices
   * @param token the staff token (to fetch the chart's copy of a snapshot)
   * @param currentVisit () => the doctor's visit in progress on this page, or null
   * @param iceServers () => the call's RTCConfiguration.iceServers
   */
  constructor({ socket, notices, token, currentVisit, iceServers }) {
    this.socket = socket;
    this.notices = notices;
    this.token = token;
    this.currentVisit = currentVisit;
    this.iceServers = iceServers;
    this.session = new ChartSession({ socket, role: "doctor", onLegState: (s, err) => this.legState(s, err) });
    this.captions = new CaptionsPanel($("#captions"), $("#captions-state"));
    this.gallery = new SnapshotGallery($("#gallery"), { onRetake: () => this.takeSnapshot() });
    socket.on("caption", (p) => this.captions.applyCaption(p));
    socket.on("captions", (p) => this.captions.applyState(p));
    $("#snapshot").addEventListener("click", () => this.takeSnapshot());
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
    this.captions.reset(visitId, { consent });
    this.gallery.clear();
    $("#snapshot").disabled = !consent;
    $("#snapshot-state").textContent = consent ? "" : "No snapshots: the patient did not agree to recording.";
    this.session.watch(visitId);
    if (!consent) return;
    Promise.resolve(mediaReady).then((stream) => {
      if (this.currentVisit() !== visitId || this.session.leg || !stream) return;
      this.session.send(visitId, stream, this.iceServers());
    });
  }

  /** Stop sending to the chart; what the page learnt (files, shots, captions) stays for the summary. */
  stop() {
    this.session.stop();
  }

  legState(s, err) {
    // A conflict means the visit is no longer in progress: its `visit` event says so.
    if (s === "refused" && !(err && err.code === "conflict")) this.notices.error(`Your video is not recorded: ${err ? err.message : "refused"}.`, "chart-leg");
    else if (s === "connected") this.notices.clear("chart-leg");
  }

  async takeSnapshot() {
    const visitId = this.currentVisit();
    if (!visitId) return;
    const button = $("#snapshot");
    button.disabled = true;
    this.notices.clear("snapshot");
    $("#snapshot-state").textContent = "Taking a snapshot…";
    const preview = grabFrame($("#remote-video"));
    try {
      const reply = await request(this.socket, "snapshot", { visit_id: visitId }, 15000);
      if (this.currentVisit() !== visitId) return;
      const item = this.gallery.add(reply.snapshot, preview);
      if (reply.snapshot.file) {
        // The preview stays if the chart's copy cannot be fetched (the visit goes on).
        const url = `/api/visits/${encodeURIComponent(visitId)}/files/${reply.snapshot.file}`;
        this.gallery.showStored(item, url, this.token).catch(() => {
          item.querySelector(".shot-source").textContent = "Saved in the chart; its copy cannot be shown here, so this is the preview from your screen.";
        });
      }
      const warnings = snapshotWarnings(reply.snapshot);
      $("#snapshot-state").textContent = `Snapshot saved to the chart.${warnings.length ? ` ${warnings.join(" ")}` : ""}`;
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
      const none = "None (no recording consent)";
      return { recordings: none, snapshots: none, transcript: none };
    }
    const recording = this.session.recording;
    const files = recording && recording.visitId === visit.visit_id ? recording.files : [];
    const shots = this.captions.visitId === visit.visit_id ? this.gallery.labels : [];
    return {
      recordings: files.length ? describeRecordings(files) : "None seen on this page",
      snapshots: shots.length ? shots.join(", ") : "None",
      transcript: this.captions.visitId === visit.visit_id ? this.captions.describe() : "—",
    };
  }
}

/** "The patient’s video and yours" (with the number of parts when a leg was re-established). */
export function describeRecordings(files) {
  const parts = new Map();
  for (const file of files) {
    const role = (/^recording-([a-z]+)-/.exec(file) || [])[1] || "other";
    parts.set(role, (parts.get(role) || 0) + 1);
  }
  const whose = { patient: "The patient’s video", doctor: "your video", other: "another video" };
  const said = ["patient", "doctor", "other"].filter((r) => parts.has(r)).map((role) => [role, parts.get(role)]).map(([role, n]) => `${whose[role] || whose.other}${n > 1 ? ` (${n} parts)` : ""}`);
  const text = said.length > 1 ? `${said.slice(0, -1).join(", ")} and ${said[said.length - 1]}` : said[0];
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function snapshotProblem(err) {
  if (err.code === "not_found") {
    return "No snapshot: the patient’s video is not being recorded right now. Wait for the recording indicator, then try again.";
  }
  if (err.code === "forbidden" && err.details && err.details.reason === "no_consent") {
    return "No snapshot: the patient did not agree to recording.";
  }
  return `No snapshot: ${err.message}`;
}
