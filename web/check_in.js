// The patient's steps 2 and 3: consent to the video visit (and, optionally,
// to recording), the reason for the visit, and the check-in itself.

import { formatDay } from "/static/appointment.js";
import { $, request } from "/static/common.js";

export class CheckInForm {
  /**
   * @param socket the /queue socket
   * @param notices the page's Notices
   * @param go (screen) shows one of the page's screens
   * @param onVisit called with the visit the check-in returned
   */
  constructor({ socket, notices, go, onVisit }) {
    this.socket = socket;
    this.notices = notices;
    this.go = go;
    this.onVisit = onVisit;
    $("#consent-form").addEventListener("submit", (e) => this.submitConsent(e));
    $("#consent-visit").addEventListener("change", () => {
      if ($("#consent-visit").checked) {
        $("#consent-error").hidden = true;
        $("#consent-visit").removeAttribute("aria-invalid");
      }
    });
    $("#consent-back").addEventListener("click", () => go("device"));
    $("#reason-form").addEventListener("submit", (e) => this.checkIn(e));
    $("#reason-back").addEventListener("click", () => go("consent"));
  }

  /** The reason the clinic already has (a walk-in gives one), to start from. */
  prefill(reason) {
    $("#reason").value = reason || "";
  }

  submitConsent(event) {
    event.preventDefault();
    const ok = $("#consent-visit").checked;
    $("#consent-error").hidden = ok;
    $("#consent-visit").setAttribute("aria-invalid", String(!ok));
    if (!ok) {
      $("#consent-visit").focus();
      return;
    }
    this.go("reason");
  }

  async checkIn(event) {
    event.preventDefault();
    const button = $("#check-in");
    button.disabled = true;
    button.textContent = "Checking in…";
    try {
      const reply = await request(this.socket, "check_in", {
        reason: $("#reason").value.trim(),
        consent_visit: true,
        consent_recording: $("#consent-recording").checked,
      });
      this.onVisit(reply.visit);
    } catch (err) {
      if (err.code === "too_early" && err.details) {
        const opens = formatDay(err.details.check_in_from);
        this.notices.error(`It is too early to check in: your appointment is on ${formatDay(err.details.scheduled_at)}, check-in opens ${opens}.`, "check-in");
        return;
      }
      this.notices.error(`Check-in did not work: ${err.message}`, "check-in");
    } finally {
      button.disabled = false;
      button.textContent = "Check in";
    }
  }
}
