// The doctor's visit: admitting a patient, the visit screen (the patient's
// facts, the call, the chart panels, the visit's chat), ending it, and the
// summary after. A visit in progress comes back after a reload (its `visit`
// event).

import { $, esiName, formatClock, h, request, showScreen, toggleConfirm } from "/static/common.js";
import { CallControls } from "/static/call_controls.js";
import { ChatView } from "/static/chat.js";
import { languageLabel } from "/static/clinic_text.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { DoctorCall } from "/static/doctor_call.js";
import { DoctorChart } from "/static/doctor_chart.js";
import { GuestsPanel } from "/static/guests_panel.js";
import { formatNumber, formatUnit, t } from "/static/i18n.js";
import { acuityBadge, endReasonText } from "/static/staff_labels.js";

export class DoctorVisit {
  /**
   * @param sockets the page's sockets by namespace (/queue, /call, /media)
   * @param notices the page's Notices
   * @param me the signed-in doctor
   * @param token the staff token
   * @param remember (visit) tells the queue of a visit a reply carried
   * @param chats the page's ChatPanes
   */
  constructor({ sockets, notices, me, token, remember, chats }) {
    this.queueSocket = sockets["/queue"];
    this.notices = notices;
    this.me = me;
    this.remember = remember;
    this.chats = chats;
    /** The visit open on this page (its call may be up); null when none. */
    this.current = null;
    /** The ChatView of the current visit's thread on the visit screen. */
    this.chatView = null;
    const currentVisit = () => this.current;
    this.call = new DoctorCall({ socket: sockets["/call"], notices, currentVisit });
    this.chart = new DoctorChart({
      socket: sockets["/media"], notices, token, currentVisit, iceServers: () => this.call.iceServers, callView: this.call.view,
    });
    // Timer, full screen, camera switch and devices; "End visit" stays the bar's last button (the doctor's hang-up).
    this.controls = new CallControls({ view: this.call.view, area: $("#call-area"), bar: $('[data-screen="visit"] .call-controls'), before: $("#end-visit") });
    this.guests = new GuestsPanel({ token, notices });
    this.queueSocket.on("guests", (message) => this.guests.apply(message));
    $("#admit-next").addEventListener("click", () => this.admit(null));
    $("#end-visit").addEventListener("click", () => toggleConfirm("#end-confirm", "#end-visit", true));
    $("#end-no").addEventListener("click", () => toggleConfirm("#end-confirm", "#end-visit", false));
    $("#end-yes").addEventListener("click", () => this.end());
    $("#back-to-queue").addEventListener("click", () => showScreen("queue"));
    $("#summary-done").addEventListener("click", () => showScreen("queue"));
    window.addEventListener("pagehide", () => this.hangUp({ notify: true }));
  }

  /** Admit a patient (null: the next one for this doctor) and open the visit. */
  async admit(visitId) {
    const payload = visitId ? { visit_id: visitId } : {};
    try {
      const reply = await request(this.queueSocket, "admit", payload);
      if (reply.ice_servers) this.call.iceServers = reply.ice_servers;
      this.remember(reply.visit);
      this.open(reply.visit);
    } catch (err) {
      const text = err.code === "not_found" && !visitId ? t("doctor.admit.nobody") : t("doctor.admit.failed", { reason: err.message });
      this.notices.error(text, "admit");
    }
  }

  /** `visit` events about this doctor's own visits: resume after a reload, or finish. */
  visitChanged(visit) {
    if (visit.state === "in_visit" && !this.current) this.open(visit);
    else if (visit.state === "ended" && this.current === visit.visit_id) this.showSummary(visit);
  }

  open(visit) {
    this.notices.clear("admit");
    if (this.current && this.current !== visit.visit_id) this.hangUp({ notify: true });
    const same = this.current === visit.visit_id;
    this.current = visit.visit_id;
    showFacts(visit);
    this.guests.open(visit.visit_id);
    showScreen("visit", { focus: !same });
    this.chats.markRead(visit.visit_id);
    // Already open: the admit ack and the `visit` event both get here, and the
    // second must not close an "End the visit?" the doctor opened in between.
    if (same) return;
    toggleConfirm("#end-confirm", "#end-visit", false, { focus: false });
    this.chatView = new ChatView(this.chats.client, visit.visit_id, { title: patientChatTitle(visit), me: this.me });
    $("#visit-chat-slot").replaceChildren(this.chatView.el);
    this.call.start();
    this.controls.start();
    this.chart.start(visit, this.call.view.mediaReady);
  }

  /** True while the visit screen shows this visit (its chat is being read). */
  isShowing(visitId) {
    return this.current === visitId && !$('[data-screen="visit"]').hidden;
  }

  /** A chat thread changed: re-render the visit's chat if it is this one. */
  renderChat(visitId) {
    if (this.chatView && this.current === visitId) this.chatView.render();
  }

  /** Close the call (telling the patient's page when notify), stop the chart leg, release the camera. */
  hangUp({ notify }) {
    this.call.stop({ notify });
    this.controls.stop();
    this.chart.stop();
    this.call.view.release();
  }

  async end() {
    const visitId = this.current;
    this.hangUp({ notify: true });
    try {
      const reply = await request(this.queueSocket, "end", { visit_id: visitId });
      this.remember(reply.visit);
      this.showSummary(reply.visit);
    } catch (err) {
      this.notices.error(t("doctor.end.failed", { reason: err.message }), "end");
      toggleConfirm("#end-confirm", "#end-visit", false);
    }
  }

  showSummary(visit) {
    const chart = this.chart.facts(visit);
    if (this.current === visit.visit_id) {
      this.hangUp({ notify: false });
      this.current = null;
      this.chatView = null;
    }
    const thread = this.chats.client.thread(visit.visit_id);
    const seconds = visit.admitted_at && visit.ended_at ? visit.ended_at - visit.admitted_at : null;
    const length = seconds === null ? "—" : seconds < 60 ? t("doctor.summary.under_a_minute") : formatUnit(Math.round(seconds / 60), "minute", "short");
    const rows = [
      ["doctor.summary.patient", visit.patient_name ? untranslated(visit.patient_name) : t("doctor.visit.unnamed")],
      ["doctor.summary.reason", visit.reason ? untranslated(visit.reason) : "—"],
      ["doctor.summary.acuity", visit.acuity ? tNodes("doctor.summary.acuity_value", { code: untranslated(`ESI ${visit.acuity}`), name: esiName(visit.acuity) }) : t("doctor.acuity.not_set")],
      ["doctor.summary.language", visit.language ? languageLabel(visit.language) : "—"],
      ["doctor.summary.triage_note", visit.triage_note ? untranslated(visit.triage_note) : "—"],
      ["doctor.summary.checked_in", formatClock(visit.checked_in_at) || "—"],
      ["doctor.summary.admitted", formatClock(visit.admitted_at) || "—"],
      ["doctor.summary.ended", formatClock(visit.ended_at) || "—"],
      ["doctor.summary.length", length],
      ["doctor.summary.chat_messages", formatNumber(thread.messages.size)],
      ["doctor.summary.recording_consent", t(visit.consent_recording ? "doctor.answer.yes" : "doctor.answer.no")],
      ["doctor.summary.recordings", chart.recordings],
      ["doctor.summary.snapshots", chart.snapshots],
      ["doctor.summary.transcript", chart.transcript],
      ["doctor.summary.outcome", endReasonText(visit.end_reason)],
    ];
    $("#summary").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", { text: t(k) }), h("dd", {}, v)]));
    document.title = t("doctor.summary.page_title");
    showScreen("summary");
  }
}

/** "Chat with Ana Lima": the visit's chat box, named for assistive technology. */
function patientChatTitle(visit) {
  return visit.patient_name ? t("doctor.visit.chat_with", { name: visit.patient_name }) : t("doctor.visit.chat_with_patient");
}

function showFacts(visit) {
  const name = visit.patient_name;
  $("#visit-title").replaceChildren(...(name ? tNodes("doctor.visit.title", { name: untranslated(name) }) : [t("doctor.visit.title_unnamed")]));
  $("#visit-reason").replaceChildren(visit.reason ? untranslated(visit.reason) : "—");
  $("#visit-acuity").replaceChildren(acuityBadge(visit.acuity));
  $("#visit-language").replaceChildren(visit.language ? languageLabel(visit.language) : t("doctor.visit.language_unknown"));
  $("#visit-note").replaceChildren(visit.triage_note ? untranslated(visit.triage_note) : t("doctor.visit.no_triage_note"));
  $("#visit-consent").textContent = t(visit.consent_recording ? "doctor.visit.consent_yes" : "doctor.answer.no");
  // No name in the tab's title: a title cannot mark it translate="no", and it shows in window lists.
  document.title = t("doctor.visit.page_title");
}
