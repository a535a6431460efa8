// Whether the visit is being recorded, and by whom, for the recording
// indicator on both pages. Told by the media worker's `recording` events
// ({visit_id, role, state: "started" | "stopped", file, reason}, room
// media:<visit>) and, after a (re)load or reconnect, by `status`
// ({recording: {patient, doctor}}), which also puts the socket in that room.

import { request } from "/static/common.js";
import { t } from "/static/i18n.js";

/** A stop that is immediately followed by a new leg: the recording goes on. */
const REPLACED = "replaced by a new leg";
/** After a stop, ask the server again: stop and start of two legs can cross. */
const SETTLE_MS = 2000;

export class RecordingStatus {
  /**
   * @param socket the /media socket
   * @param visitId the visit shown
   * @param onChange called after every change
   */
  constructor({ socket, visitId, onChange = () => {} }) {
    this.socket = socket;
    this.visitId = visitId;
    this.onChange = onChange;
    this.on = { patient: false, doctor: false };
    /** Recording files seen, in order (a re-established leg continues in a new file). */
    this.files = [];
    this.timer = 0;
    this.closed = false;
  }

  get any() {
    return this.on.patient || this.on.doctor;
  }

  applyEvent(event) {
    if (this.closed || !event || event.visit_id !== this.visitId || !(event.role in this.on)) return;
    if (event.file && !this.files.includes(event.file)) this.files.push(event.file);
    if (event.state === "started") {
      this.on[event.role] = true;
    } else if (event.state === "stopped") {
      if (event.reason !== REPLACED) this.on[event.role] = false;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), SETTLE_MS);
    }
    this.onChange(this);
  }

  /** Ask the server who is recording now; errors leave the last known state. */
  async refresh() {
    if (this.closed || !this.socket.connected) return;
    try {
      const reply = await request(this.socket, "status", { visit_id: this.visitId });
      if (this.closed) return;
      this.on = { patient: Boolean(reply.recording.patient), doctor: Boolean(reply.recording.doctor) };
      this.onChange(this);
    } catch {
      // The visit ended or the socket went away: the next event or reconnect tells.
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/**
 * Show the indicator: hidden while nothing is recorded.
 * @param viewer "patient" or "doctor": whose page this is
 */
export function showRecording(el, status, viewer) {
  const { patient, doctor } = status ? status.on : { patient: false, doctor: false };
  el.hidden = !(patient || doctor);
  el.dataset.state = patient || doctor ? "on" : "off";
  const mine = viewer === "patient" ? patient : doctor;
  const theirs = viewer === "patient" ? doctor : patient;
  const other = viewer === "patient" ? "doctor" : "patient";
  let text;
  if (mine && theirs) text = t("recording.both");
  else if (mine) text = t("recording.self");
  else text = t(`recording.${other}`);
  el.textContent = text;
}
