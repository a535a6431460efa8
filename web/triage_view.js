// The nurse's triage panel for one waiting patient: acuity (ESI) and a note,
// routing to a doctor picked by name from the clinic's roster, and cancelling
// the visit (which admins do from the queue too). Opening the panel claims the
// patient (others see "with <name>"); the nurse is warned if someone else has
// them open.

import { $, formatElapsed, h, request, toggleConfirm } from "/static/common.js";
import { doctorChoice, learnNames } from "/static/staff_labels.js";
import { joinNames } from "/static/triage_claims.js";

const QUEUED = ["waiting", "in_triage", "ready"];

export class TriageView {
  /**
   * @param socket the /queue socket
   * @param notices the page's Notices
   * @param me the signed-in staff member
   * @param visits the QueueView's map of known visits (read only)
   * @param remember (visit) tells the queue of a visit a reply carried
   * @param claims the page's TriageClaims
   * @param roster () => the clinic's roster from the last queue snapshot
   */
  constructor({ socket, notices, me, visits, remember, claims, roster }) {
    this.socket = socket;
    this.claims = claims;
    this.roster = roster;
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
    if (this.visitId && this.visitId !== visitId) this.claims.drop(this.visitId, "triage");
    this.visitId = visitId;
    const visit = this.visits.get(visitId);
    $("#triage").hidden = false;
    $("#triage-title").textContent = `Triage: ${visit.patient_name || "Patient"}`;
    $("#triage-acuity").value = visit.acuity ? String(visit.acuity) : "";
    $("#triage-note").value = visit.triage_note || "";
    this.showRouteStatus("");
    this.fillPicker(this.roster(), visit.routed_to || "");
    this.loadRoster(visit.routed_to || "");
    this.showClaimed([]);
    this.claims.hold(visitId, "triage").then((others) => {
      if (this.visitId === visitId) this.showClaimed(others);
    });
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
    // The roster moves (on duty, busy): relabel the picker, unless the nurse is in it.
    if (document.activeElement !== $("#route-doctor")) this.fillPicker(this.roster(), $("#route-doctor").value);
  }

  /** The latest roster from the server (a snapshot may be a moment old). */
  async loadRoster(selected) {
    try {
      const reply = await request(this.socket, "get_roster");
      learnNames(reply.staff);
      if (document.activeElement !== $("#route-doctor")) this.fillPicker(reply.staff, $("#route-doctor").value || selected);
    } catch {
      // The picker keeps the snapshot's roster.
    }
  }

  /** The doctors by name: on duty and free first, then busy, then off duty. */
  fillPicker(staff, selected) {
    const doctors = (staff || []).filter((m) => m.role === "doctor");
    const options = [h("option", { value: "", text: "Any doctor (the shared queue)" })];
    for (const d of doctors) options.push(h("option", { value: d.sub, text: doctorChoice(d) }));
    const select = $("#route-doctor");
    select.replaceChildren(...options);
    if (selected && !doctors.some((d) => d.sub === selected)) {
      select.append(h("option", { value: selected, text: "A doctor not on the roster" }));
    }
    select.value = selected || "";
  }

  showClaimed(others) {
    const el = $("#triage-claimed");
    el.hidden = others.length === 0;
    el.textContent = others.length ? `${joinNames(others)} ${others.length === 1 ? "has" : "have"} this patient open too.` : "";
  }

  showRouteStatus(text, kind = "info") {
    const el = $("#route-status");
    el.hidden = !text;
    el.textContent = text;
    el.dataset.kind = kind;
  }

  refreshWaitingTime() {
    if (this.visitId) $("#triage-waiting").textContent = formatElapsed(this.visits.get(this.visitId)?.checked_in_at);
  }

  close() {
    const id = this.visitId;
    this.visitId = null;
    if (id) this.claims.drop(id, "triage");
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
    const doctor = $("#route-doctor").value || null;
    try {
      const reply = await request(this.socket, "route", { visit_id: this.visitId, doctor });
      this.remember(reply.visit);
      const done = reply.doctor ? `Routed to ${reply.doctor.name}.` : "Routed to any doctor.";
      this.showRouteStatus(reply.notice ? `${done} ${reply.notice}` : done, reply.notice ? "warning" : "info");
    } catch (err) {
      this.showRouteStatus(`Not routed: ${err.message}.`.replace(/\.\.$/, "."), "error");
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
