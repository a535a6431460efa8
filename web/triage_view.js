// The nurse's triage panel for one waiting patient: acuity (ESI) and a note,
// routing to a doctor, and cancelling the visit (which admins do from the
// queue too).

import { $, formatElapsed, request, toggleConfirm } from "/static/common.js";
import { doctorLabel } from "/static/staff_labels.js";

const QUEUED = ["waiting", "in_triage", "ready"];

export class TriageView {
  /**
   * @param socket the /queue socket
   * @param notices the page's Notices
   * @param me the signed-in staff member
   * @param visits the QueueView's map of known visits (read only)
   * @param remember (visit) tells the queue of a visit a reply carried
   */
  constructor({ socket, notices, me, visits, remember }) {
    this.socket = socket;
    this.notices = notices;
    this.me = me;
    this.visits = visits;
    this.remember = remember;
    /** The visit the panel is open for; null when closed. */
    this.visitId = null;
    $("#triage-close").addEventListener("click", () => this.close());
    $("#triage-form").addEventListener("submit", (e) => this.save(e));
    $("#route-form").addEventListener("submit", (e) => this.route(e));
    $("#cancel-visit").addEventListener("click", () => toggleConfirm("#cancel-confirm", "#cancel-visit", true));
    $("#cancel-no").addEventListener("click", () => toggleConfirm("#cancel-confirm", "#cancel-visit", false));
    $("#cancel-yes").addEventListener("click", () => this.cancel(this.visitId));
  }

  open(visitId) {
    this.visitId = visitId;
    const visit = this.visits.get(visitId);
    $("#triage").hidden = false;
    $("#triage-title").textContent = `Triage: ${visit.patient_name || "Patient"}`;
    $("#triage-acuity").value = visit.acuity ? String(visit.acuity) : "";
    $("#triage-note").value = visit.triage_note || "";
    $("#route-doctor").value = visit.routed_to || "";
    toggleConfirm("#cancel-confirm", "#cancel-visit", false, { focus: false });
    this.refresh();
    $("#triage").scrollIntoView({ block: "nearest" });
    $("#triage-acuity").focus();
  }

  /** The visit changed (or left the queue, which closes the panel). */
  refresh() {
    if (!this.visitId) return;
    const visit = this.visits.get(this.visitId);
    if (!visit || !QUEUED.includes(visit.state)) {
      this.notices.show(`${visit ? visit.patient_name || "The patient" : "The patient"} is no longer in the queue.`, { kind: "info", key: "triage" });
      this.close();
      return;
    }
    $("#triage-reason").textContent = visit.reason || "—";
    $("#triage-waiting").textContent = formatElapsed(visit.checked_in_at);
    $("#triage-consent").textContent = visit.consent_recording ? "Yes: recording and transcription" : "No";
  }

  refreshWaitingTime() {
    if (this.visitId) $("#triage-waiting").textContent = formatElapsed(this.visits.get(this.visitId)?.checked_in_at);
  }

  close() {
    const id = this.visitId;
    this.visitId = null;
    $("#triage").hidden = true;
    const back = id && document.querySelector(`[data-action="triage"][data-visit="${CSS.escape(id)}"]`);
    if (back) back.focus();
  }

  async save(event) {
    event.preventDefault();
    const acuity = $("#triage-acuity").value;
    const payload = { visit_id: this.visitId, note: $("#triage-note").value };
    if (acuity) payload.acuity = Number(acuity);
    try {
      const reply = await request(this.socket, "triage", payload);
      this.remember(reply.visit);
      this.notices.show("Triage saved.", { kind: "info", key: "triage" });
    } catch (err) {
      this.notices.error(`Triage not saved: ${err.message}`, "triage");
    }
  }

  async route(event) {
    event.preventDefault();
    const doctor = $("#route-doctor").value.trim() || null;
    try {
      const reply = await request(this.socket, "route", { visit_id: this.visitId, doctor });
      this.remember(reply.visit);
      this.notices.show(doctor ? `Routed to ${doctorLabel(doctor, this.me)}.` : "Routed to any doctor.", { kind: "info", key: "triage" });
    } catch (err) {
      this.notices.error(`Not routed: ${err.message}`, "triage");
    }
  }

  async cancel(visitId) {
    try {
      await request(this.socket, "end", { visit_id: visitId });
      this.notices.show("The visit was cancelled.", { kind: "info", key: "triage" });
    } catch (err) {
      this.notices.error(`Not cancelled: ${err.message}`, "triage");
    }
  }
}
