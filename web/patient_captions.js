// The patient's live captions (WCAG 1.2.4), their own choice: a switch on the
// call screen, "Show live captions". Turned on, the page asks the server for
// the visit's captions over /media (`captions` {visit_id, on: true}, again
// after every reconnect); turned off, it says so ({on: false}) and hides them.
// Where the clinic sends captions to patients anyway (its setting), the first
// caption turns the switch on, unless the patient chose otherwise. The choice
// lasts for the tab (sessionStorage), across reloads.
//
// Captions come from the chart leg's speech-to-text, so only a visit whose
// patient agreed to recording and transcription can have them: the switch
// shows only then.

import { $, request } from "/static/common.js";
import { CaptionsPanel } from "/static/captions.js";
import { t } from "/static/i18n.js";

const STORE_KEY = "telemed.patient.captions";

function readChoice() {
  const stored = sessionStorage.getItem(STORE_KEY);
  return stored === "on" ? true : stored === "off" ? false : null;
}

export class PatientCaptions {
  /**
   * @param socket the /media socket
   * @param visit () => the visit as last told (or null)
   */
  constructor({ socket, visit }) {
    this.socket = socket;
    this.visit = visit;
    this.panel = new CaptionsPanel($("#captions"), $("#captions-state"), { me: "patient" });
    this.toggle = $("#captions-on");
    this.error = $("#captions-error");
    /** The patient's own choice (true, false), or null: none yet (the clinic's setting decides). */
    this.choice = readChoice();
    /** The server sent captions without being asked (the clinic's setting). */
    this.pushed = false;
    /** The call screen is showing this visit's captions panel. */
    this.shown = false;
    this.toggle.addEventListener("change", () => this.choose(this.toggle.checked));
    socket.on("connect", () => this.choice === true && this.send(true));
    socket.on("caption", (p) => this.event(p, () => this.panel.applyCaption(p)));
    socket.on("captions", (p) => this.event(p, () => this.panel.applyState(p)));
  }

  /** Captions are on the screen: the patient's choice, else what the clinic sends. */
  get on() {
    return this.choice === null ? this.pushed : this.choice;
  }

  /** The call screen opened for the visit. */
  show(visit) {
    if (this.panel.visitId !== visit.visit_id) this.panel.reset(visit.visit_id);
    this.shown = Boolean(visit.consent_recording);
    $("#captions-panel").hidden = !this.shown;
    this.render();
    if (this.shown && this.choice === true) this.send(true);
  }

  /** The visit is over: nothing more to show. */
  stop() {
    this.shown = false;
    sessionStorage.removeItem(STORE_KEY);
  }

  event(p, apply) {
    const visit = this.visit();
    if (!p || !visit || p.visit_id !== visit.visit_id) return;
    if (this.panel.visitId !== p.visit_id) this.panel.reset(p.visit_id);
    apply();
    if (!this.pushed && this.choice === null) {
      this.pushed = true;
      this.render();
    }
  }

  render() {
    this.toggle.checked = this.on;
    $("#captions-body").hidden = !this.on;
  }

  /** The patient flipped the switch. */
  choose(on) {
    this.choice = on;
    sessionStorage.setItem(STORE_KEY, on ? "on" : "off");
    this.render();
    this.send(on);
  }

  /** Tell the server; a refusal to turn them on is said next to the switch, and the switch goes back. */
  async send(on) {
    const visit = this.visit();
    this.error.hidden = true;
    if (!visit || !this.shown || !this.socket.connected) return; // sent again on (re)connect
    try {
      await request(this.socket, "captions", { visit_id: visit.visit_id, on });
    } catch (err) {
      // Turning them off cannot fail in a way that matters: the page hides them anyway.
      if (!on || this.choice !== true) return;
      this.error.textContent = t("captions_toggle.failed", { reason: err.message });
      this.error.hidden = false;
      this.choice = null;
      sessionStorage.removeItem(STORE_KEY);
      this.render();
    }
  }
}
