// The patient's waiting room: place in line and estimated wait (`position`
// events), what is happening (the visit's state), and leaving.

import { $, formatWait, request, toggleConfirm } from "/static/common.js";

const WAIT_STATES = {
  waiting: "You’re checked in. A nurse will look at your information soon.",
  in_triage: "A nurse is reviewing your information.",
  ready: "You’re ready to see a doctor.",
};

export class WaitingRoom {
  /**
   * @param socket the /queue socket
   * @param notices the page's Notices
   * @param onVisit called with the visit after leaving
   */
  constructor({ socket, notices, onVisit }) {
    this.socket = socket;
    this.notices = notices;
    this.onVisit = onVisit;
    /** Version of the last `position` shown; older ones are dropped. */
    this.positionVersion = -1;
    $("#leave").addEventListener("click", () => toggleConfirm("#leave-confirm", "#leave", true));
    $("#leave-no").addEventListener("click", () => toggleConfirm("#leave-confirm", "#leave", false));
    $("#leave-yes").addEventListener("click", () => this.leave());
  }

  showState(visitState) {
    $("#wait-state").textContent = WAIT_STATES[visitState];
  }

  /** Place in line and estimated wait of this visit. */
  applyPosition(p) {
    if (p.version < this.positionVersion) return;
    this.positionVersion = p.version;
    $("#wait-position").textContent = p.position === 1 ? "1 — you’re next" : String(p.position);
    $("#wait-eta").textContent = formatWait(p.eta_s);
  }

  async leave() {
    try {
      const reply = await request(this.socket, "leave", {});
      this.onVisit(reply.visit);
    } catch (err) {
      this.notices.error(`Could not leave: ${err.message}`);
    }
  }
}
