// The nurse's triage panel for one waiting patient: acuity (ESI) and a note,
// routing to a doctor picked by name from the clinic's roster, inviting an
// interpreter, a family member or a colleague into the visit (guests_panel.js:
// they wait for the doctor to let them in), and cancelling the visit (which
// admins do from the queue too). Opening the panel claims the
// patient (others see "with <name>"); the nurse is warned if someone else has
// them open.

import { $, esiName, formatElapsed, h, request, toggleConfirm } from "/static/common.js";
import { GuestsPanel } from "/static/guests_panel.js";
import { t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";
import { doctorChoice, languageLabel, learnNames, nameList, person, showNotice } from "/static/staff_labels.js";

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
   * @param token the staff token (the guest routes); none: no guests part (an admin)
   */
  constructor({ socket, notices, me, visits, remember, claims, roster, token = null }) {
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
    fillAcuity($("#triage-acuity"));
    /** Who else is invited into the visit; null for an admin (who does not invite). */
    this.guests = token && me.role === "nurse"
      ? new GuestsPanel({ token, notices, root: $("#triage-guests"), prefix: "triage-guest", lead: "nurse", heading: "h3", roster, me })
      : null;
    $("#triage-guests").hidden = !this.guests;
  }

  open(visitId) {
    if (this.visitId && this.visitId !== visitId) this.claims.drop(this.visitId, "triage");
    this.visitId = visitId;
    const visit = this.visits.get(visitId);
    $("#triage").hidden = false;
    const name = visit.patient_name ? person(visit.patient_name) : t("staff.patient");
    $("#triage-title").replaceChildren(...tNodes("triage.title_of", { name }));
    $("#triage-acuity").value = visit.acuity ? String(visit.acuity) : "";
    $("#triage-note").value = visit.triage_note || "";
    this.showRouteStatus([]);
    this.fillPicker(this.roster(), visit.routed_to || "");
    this.loadRoster(visit.routed_to || "");
    this.showClaimed([]);
    this.claims.hold(visitId, "triage").then((others) => {
      if (this.visitId === visitId) this.showClaimed(others);
    });
    toggleConfirm("#cancel-confirm", "#cancel-visit", false, { focus: false });
    this.refresh();
    if (this.guests) this.guests.open(visitId, { language: visit.language || "" });
    $("#triage").scrollIntoView({ block: "nearest" });
    $("#triage-acuity").focus();
  }

  /** The visit changed (or left the queue, which closes the panel). */
  refresh() {
    if (!this.visitId) return;
    const visit = this.visits.get(this.visitId);
    if (!visit || !QUEUED.includes(visit.state)) {
      const name = visit && visit.patient_name;
      const options = { kind: "info", key: "triage" };
      if (name) showNotice(this.notices, tNodes("triage.gone", { name: person(name) }), options);
      else this.notices.show(t("triage.gone_unnamed"), options);
      this.close();
      return;
    }
    $("#triage-reason").textContent = visit.reason || "—";
    $("#triage-waiting").textContent = formatElapsed(visit.checked_in_at);
    $("#triage-consent").textContent = t(visit.consent_recording ? "triage.consent.yes" : "triage.consent.no");
    $("#triage-language").replaceChildren(visit.language ? languageLabel(visit.language) : t("triage.language.unknown"));
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
    const options = [h("option", { value: "", text: t("route.any") })];
    // A doctor's name in the option: not for translators (the state words are already the page's).
    for (const d of doctors) options.push(h("option", { value: d.sub, translate: "no", text: doctorChoice(d) }));
    const select = $("#route-doctor");
    select.replaceChildren(...options);
    if (selected && !doctors.some((d) => d.sub === selected)) {
      select.append(h("option", { value: selected, text: t("staff.unknown_doctor") }));
    }
    select.value = selected || "";
  }

  showClaimed(others) {
    const el = $("#triage-claimed");
    el.hidden = others.length === 0;
    el.replaceChildren(...(others.length ? tNodes("triage.claimed", { count: others.length, names: nameList(others) }) : []));
  }

  /** What routing did, beside the Route button: text and elements (names), none to hide it. */
  showRouteStatus(parts, kind = "info") {
    const el = $("#route-status");
    el.hidden = parts.length === 0;
    el.replaceChildren(...parts);
    el.dataset.kind = kind;
  }

  refreshWaitingTime() {
    if (this.visitId) $("#triage-waiting").textContent = formatElapsed(this.visits.get(this.visitId)?.checked_in_at);
  }

  close() {
    const id = this.visitId;
    this.visitId = null;
    if (id) this.claims.drop(id, "triage");
    if (this.guests) this.guests.close();
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
      this.notices.show(t("triage.saved"), { kind: "info", key: "triage" });
    } catch (err) {
      this.notices.error(t("triage.not_saved", { reason: err.message }), "triage");
    }
  }

  async route(event) {
    event.preventDefault();
    const doctor = $("#route-doctor").value || null;
    try {
      const reply = await request(this.socket, "route", { visit_id: this.visitId, doctor });
      this.remember(reply.visit);
      if (!reply.doctor) this.showRouteStatus([t("route.done_any")]);
      else if (!reply.notice) this.showRouteStatus(tNodes("route.done", { doctor: person(reply.doctor.name) }));
      else this.showRouteStatus(offDutyWarning(reply.doctor.name, reply.notice), "warning");
    } catch (err) {
      // The sentence ends the reason itself ("Not routed: <reason>."): the reason's own full stop goes.
      this.showRouteStatus([t("route.failed", { reason: err.message.replace(/[.。]\s*$/, "") })], "error");
    }
  }

  async cancel(visitId) {
    try {
      await request(this.socket, "end", { visit_id: visitId });
      this.notices.show(t("triage.cancelled"), { kind: "info", key: "triage" });
    } catch (err) {
      this.notices.error(t("triage.not_cancelled", { reason: err.message }), "triage");
    }
  }
}

/** The ESI levels of the acuity picker: "1 — Immediate"… (after "Not set"). */
function fillAcuity(select) {
  for (let level = 1; level <= 5; level += 1) {
    select.append(h("option", { value: String(level), text: t("triage.acuity.level", { level, name: esiName(level) }) }));
  }
}

/**
 * Routed to a doctor who is off duty: the server says when the patient goes
 * back to the shared queue ("… within 10 minutes."); said here in the page's
 * language, with the minutes read from its words (none if they cannot be).
 */
function offDutyWarning(doctor, notice) {
  const minutes = /within (\d+) minute/.exec(notice);
  const params = { doctor: person(doctor) };
  if (!minutes) return tNodes("route.off_duty", params);
  return tNodes("route.off_duty_minutes", { ...params, count: Number(minutes[1]) });
}
