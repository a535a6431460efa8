// The patient's waiting room: place in line and estimated wait (`position`
// events), what is happening (the visit's state), and leaving.

import { $, request, toggleConfirm } from "/static/common.js";
import { formatNumber, formatUnit, formatUnitRange, t } from "/static/i18n.js";

/**
 * The estimated wait of a `position` update in plain words (the rule is
 * telemed/estimate.py's): "shortly" when a doctor is free for this patient,
 * a range otherwise, nothing promised while no doctor is on duty.
 */
export function describeWait(p) {
  if (p.wait === "shortly") return t("waiting.eta.shortly");
  if (p.wait === "no_doctor") return t("waiting.eta.no_doctor");
  return formatWaitRange(p.wait_low_s, p.wait_high_s);
}

/** "less than 10 minutes", "5–10 minutes", "45 minutes to 1.25 hours", "1.5–2 hours" (in the page's language). */
export function formatWaitRange(lowS, highS) {
  const low = Math.round(lowS / 60);
  const high = Math.round(highS / 60);
  if (high <= 60) {
    return low === 0 ? t("waiting.eta.less_than", { duration: formatUnit(high, "minute") }) : formatUnitRange(low, high, "minute");
  }
  if (low === 0) return t("waiting.eta.less_than", { duration: formatUnit(hours(high), "hour") });
  if (low < 60) return t("waiting.eta.range", { low: formatUnit(low, "minute"), high: formatUnit(hours(high), "hour") });
  return formatUnitRange(hours(low), hours(high), "hour");
}

/** 90 → 1.5: minutes as hours, to the quarter. */
function hours(minutes) {
  return Math.round(minutes / 15) / 4;
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
    $("#wait-state").textContent = t(`waiting.state.${visitState}`);
  }

  /** Place in line and estimated wait of this visit. */
  applyPosition(p) {
    if (p.version < this.positionVersion) return;
    this.positionVersion = p.version;
    $("#wait-position").textContent = p.position === 1 ? t("waiting.position.next", { position: 1 }) : formatNumber(p.position);
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
      this.notices.error(t("waiting.leave_failed", { reason: err.message }));
    }
  }
}
