// The patient's steps 2 and 3: consent to the video visit (and, optionally,
// to recording), the reason for the visit, and the check-in itself.
//
// The check-in names the page's language and the version of the consent
// wording the patient read (the catalogue's consent.version), so the chart
// records which words were agreed to. A wording the server no longer takes
// (reason consent_outdated: the page is older than the clinic's wording) is
// fetched afresh by reloading the page once; the reason typed is kept.

import { formatDay } from "/static/appointment.js";
import { $, request } from "/static/common.js";
import { lang, t } from "/static/i18n.js";

/** Set while the page reloads for a new consent wording: the reason typed. */
const OUTDATED_KEY = "telemed.patient.consent_outdated";

/** The language the visit is held in: the page's, English for the test pseudo-language. */
export function visitLanguage() {
  return lang === "x-pseudo" ? "en" : lang;
}

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
    /** The reason typed before a reload for a new consent wording; null otherwise. */
    this.kept = sessionStorage.getItem(OUTDATED_KEY);
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
    $("#reason").value = this.kept !== null ? this.kept : reason || "";
    if (this.kept !== null) this.notices.error(t("error.reason.consent_outdated"), "check-in");
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
    button.textContent = t("checkin.busy");
    try {
      const reply = await request(this.socket, "check_in", {
        reason: $("#reason").value.trim(),
        consent_visit: true,
        consent_recording: $("#consent-recording").checked,
        language: visitLanguage(),
        consent_version: t("consent.version"),
      });
      sessionStorage.removeItem(OUTDATED_KEY);
      this.onVisit(reply.visit);
    } catch (err) {
      if (err.code === "too_early" && err.details) {
        const params = { when: formatDay(err.details.scheduled_at), opens: formatDay(err.details.check_in_from) };
        this.notices.error(t("checkin.too_early", params), "check-in");
        return;
      }
      if (err.code === "consent_outdated" || (err.details && err.details.reason === "consent_outdated")) {
        if (this.kept === null) {
          // This page shows an older wording than the clinic's: load the current one.
          sessionStorage.setItem(OUTDATED_KEY, $("#reason").value);
          location.reload();
          return;
        }
        this.notices.error(t("checkin.failed", { reason: t("error.reason.consent_outdated") }), "check-in");
        return;
      }
      this.notices.error(t("checkin.failed", { reason: err.message }), "check-in");
    } finally {
      button.disabled = false;
      button.textContent = t("reason.submit");
    }
  }
}
