// Whether the visit is being recorded, and by whom, for the recording
// indicator on every page of the call. Told by the media worker's `recording`
// events ({visit_id, role, state: "started" | "stopped", file, reason}, room
// media:<visit>; `role` is the party: "patient", "doctor" or a guest's id) and,
// after a (re)load or reconnect, by `status` ({recording: {party: bool},
// not_recorded}), which also puts the socket in that room. Who is in the visit
// but not recorded (a guest who declined: not_recorded [{party, kind, name}],
// in `status` and in a `recording` event without a role when the visit's
// people change) is said in plain words next to the indicator.

import { request } from "/static/common.js";
import { t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { roleText } from "/static/people.js";

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
    /** Whose legs record now, by party. */
    this.on = { patient: false, doctor: false };
    /** People in the visit who are not recorded: [{party, kind, name}]. */
    this.notRecorded = [];
    /** Recording files seen, in order (a re-established leg continues in a new file). */
    this.files = [];
    this.timer = 0;
    this.closed = false;
  }

  get any() {
    return Object.values(this.on).some(Boolean);
  }

  applyEvent(event) {
    if (this.closed || !event || event.visit_id !== this.visitId) return;
    if (Array.isArray(event.not_recorded)) {
      this.notRecorded = event.not_recorded;
      this.onChange(this);
      return;
    }
    if (typeof event.role !== "string" || !event.role) return;
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
      this.on = { patient: false, doctor: false };
      for (const [party, on] of Object.entries(reply.recording || {})) this.on[party] = Boolean(on);
      this.notRecorded = Array.isArray(reply.not_recorded) ? reply.not_recorded : [];
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
 * Show the indicator: hidden while nothing is recorded; and, below it, who in
 * the visit is not recorded ("Maria Lopez (Caregiver or family) is not being recorded").
 * @param viewer "patient", "doctor" or the guest's id: whose page this is
 */
export function showRecording(el, status, viewer) {
  const on = status ? status.on : {};
  const any = Object.values(on).some(Boolean);
  el.hidden = !any;
  el.dataset.state = any ? "on" : "off";
  const mine = Boolean(on[viewer]);
  const others = Object.entries(on).filter(([party, v]) => v && party !== viewer).map(([party]) => party);
  let text;
  if (mine && others.length) text = t("recording.both");
  else if (mine) text = t("recording.self");
  else if (others.length === 1 && (others[0] === "patient" || others[0] === "doctor")) text = t(`recording.${others[0]}`);
  else text = t("recording.both");
  el.textContent = text;
  showNotRecorded(el, status ? status.notRecorded : []);
}

/** The plain-words list of people not recorded, right after the indicator (made on first use). */
function showNotRecorded(el, people) {
  let list = document.getElementById("recording-not");
  if (!list) {
    if (!people.length) return;
    list = document.createElement("div"); // role=status: a list's semantics would be lost
    list.id = "recording-not";
    list.className = "recording-not";
    list.setAttribute("role", "status");
    list.setAttribute("aria-live", "polite");
    el.after(list);
  }
  list.replaceChildren(...people.map((p) => {
    const line = document.createElement("p");
    line.dataset.party = p.party;
    line.append(...tNodes("recording.not_recorded", { name: untranslated(p.name), role: roleText({ type: "guest", kind: p.kind }) }));
    return line;
  }));
  list.hidden = people.length === 0;
}
