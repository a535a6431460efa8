// The patient's waiting room: place in line and estimated wait (`position`
// events), what is happening (the visit's state), and leaving.

import { $, request, toggleConfirm } from "/static/common.js";

const WAIT_STATES = {
  waiting: "You’re checked in. A nurse will look at your information soon.",
  in_triage: "A nurse is reviewing your information.",
  ready: "You’re ready to see a doctor.",
};

/**
 * The estimated wait of a `position` update in plain words (the rule is
 * telemed/estimate.py's): "shortly" when a doctor is free for this patient,
 * a range otherwise, nothing promised while no doctor is on duty.
 */
export function describeWait(p) {
  if (p.wait === "shortly") return "Next — a doctor will be with you shortly";
  if (p.wait === "no_doctor") return "We’ll know once a doctor is online";
  return formatWaitRange(p.wait_low_s, p.wait_high_s);
}

/** "less than 10 minutes", "5–10 minutes", "45 minutes to 1¼ hours", "1½–2 hours". */
export function formatWaitRange(lowS, highS) {
  const low = Math.round(lowS / 60);
  const high = Math.round(highS / 60);
  if (high <= 60) return low === 0 ? `less than ${high} minutes` : `${low}–${high} minutes`;
  if (low === 0) return `less than ${hours(high)} hours`;
  if (low < 60) return `${low} minutes to ${hours(high)} hours`;
  return `${hours(low)}–${hours(high)} hours`;
}

/** 90 → "1½": minutes as hours, to the quarter. */
function hours(minutes) {
  const quarters = Math.round(minutes / 15);
  const whole = Math.floor(quarters / 4);
  const part = ["", "¼", "½", "¾"][quarters % 4];
  return whole === 0 ? part : `${whole}${part}`;
}

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
    const eta = $("#wait-eta");
    eta.textContent = describeWait(p);
    eta.classList.toggle("wait-soon", p.wait === "shortly");
    eta.classList.toggle("wait-unknown", p.wait === "no_doctor");
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
