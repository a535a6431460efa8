// The doctor's side of the call: the doctor's page makes every offer
// (call.js), restarts ICE on a connection that drops, again and again while
// it stays down (call_recovery.js), and starts over when the patient's page
// asks for it (a `hangup`), when a call does not connect in time, or when ICE
// restarts have not brought it back for a long while.

import { CallRecovery } from "/static/call_recovery.js";
import { CallView } from "/static/call_view.js";
import { request } from "/static/common.js";
import { t } from "/static/i18n.js";
import { learnIcePolicy } from "/static/ice_policy.js";

/** A call not connected this long after its last offer is started over. */
const CALL_WATCHDOG_MS = 20000;
/** A call down this long despite its ICE restarts is started over (a new connection). */
const NEW_CALL_AFTER_DOWN_MS = 60000;

export class DoctorCall {
  /**
   * @param socket the /call socket
   * @param notices the page's Notices
   * @param currentVisit () => the doctor's visit in progress on this page, or null
   */
  constructor({ socket, notices, currentVisit }) {
    this.socket = socket;
    this.notices = notices;
    this.currentVisit = currentVisit;
    this.view = new CallView();
    /** RTCConfiguration.iceServers from the server (the chart leg uses them too). */
    this.iceServers = [];
    /** When the last offer went out (ms). */
    this.lastOfferAt = 0;
    this.reofferTimer = 0;
    this.recovery = new CallRecovery({
      restart: () => this.offer({ restart: true }),
      report: (facts) => this.reportQuality(facts),
    });
    this.watchdog = 0;
    socket.on("ice_servers", (p) => {
      this.iceServers = p.ice_servers || [];
      learnIcePolicy(p);
    });
    socket.on("connect", () => {
      // Signaling may have been lost while this socket was away: restart ICE on
      // the call there is, or start one (the patient's page asks for a new call
      // when it has none to restart).
      const call = this.view.call;
      if (!this.currentVisit() || (call && call.state === "connected")) return;
      if (call && !call.closed) this.offer({ restart: true });
      else this.scheduleNewCall(500);
    });
    socket.on("answer", (p) => {
      if (this.view.call && p.visit_id === this.currentVisit()) this.view.call.handleAnswer(p).catch((err) => this.trouble(err));
    });
    socket.on("candidate", (p) => {
      if (this.view.call && p.visit_id === this.currentVisit()) this.view.call.handleCandidate(p);
    });
    socket.on("hangup", (p) => this.onPatientHangup(p));
    socket.on("offer", () => {}); // the doctor makes the offers
  }

  /** Call the patient of the current visit: own camera and microphone, an offer, the watchdog. */
  start() {
    this.view.openLocal({ problemNote: (problem) => t("doctor.call.media_problem", { title: problem.title, message: problem.message }) });
    this.offer();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 5000);
  }

  /**
   * Make an offer to the patient: a new connection, or an ICE restart of the
   * current one (restart). Needs the /call socket; its connect handler calls
   * again if it is away.
   */
  async offer({ restart = false } = {}) {
    const visitId = this.currentVisit();
    if (!visitId || !this.socket.connected) return;
    await this.view.mediaReady;
    if (this.currentVisit() !== visitId) return;
    this.lastOfferAt = Date.now();
    const current = this.view.call;
    if (restart && current && !current.closed) {
      current.offer({ restart: true }).catch((err) => this.trouble(err));
      return;
    }
    this.recovery.reset();
    let call = null; // (states reported while the call is being made are the new call's)
    call = this.view.newCall({ socket: this.socket, visitId, iceServers: this.iceServers, onState: (s) => this.onState(s, call) });
    call.offer().catch((err) => this.trouble(err));
  }

  /** A failed signaling step; the watchdog starts the call over if it stays down. */
  trouble(err) {
    if (err && err.code === "conflict") return; // the visit is no longer in progress
    this.notices.error(t("doctor.call.trouble", { reason: err.message }), "call");
  }

  scheduleNewCall(delay) {
    clearTimeout(this.reofferTimer);
    this.reofferTimer = setTimeout(() => this.offer(), delay);
  }

  /** The patient's page dropped its call (reload, lost connection): start over, once. */
  onPatientHangup(p) {
    if (p.visit_id !== this.currentVisit()) return;
    if (this.view.call) this.view.call.close();
    this.view.clearRemote();
    this.view.showState("connecting", t("doctor.call.patient_reconnected"));
    this.scheduleNewCall(800);
  }

  onState(s, call) {
    if (call && call !== this.view.call) return; // a call replaced meanwhile
    this.recovery.stateChanged(this.view.call, s);
    const text = s === "new" || s === "connecting" ? t("doctor.call.calling") : undefined;
    this.view.showState(s, text);
  }

  /**
   * A `call_quality` report of the current call (a recovery's time), tried
   * again a few times if it does not get through (the server keeps it once).
   */
  reportQuality(facts, tries = 3) {
    const call = this.view.call;
    const visitId = this.currentVisit();
    if (!call || !visitId) return;
    const body = { visit_id: visitId, ...facts };
    if (call.callId) body.call_id = call.callId;
    request(this.socket, "call_quality", body).catch((err) => {
      const final = err && ["bad_request", "forbidden", "not_found", "conflict"].includes(err.code);
      if (!final && tries > 1) setTimeout(() => call === this.view.call && this.reportQuality(facts, tries - 1), 1000);
    });
  }

  /**
   * A call that does not connect in time is started over (lost offer, patient
   * away); so is one that ICE restarts have not brought back in a long while.
   */
  check() {
    const call = this.view.call;
    if (!this.currentVisit() || !call) return;
    if (call.state === "connected") return;
    if (this.recovery.downFor() > NEW_CALL_AFTER_DOWN_MS || Date.now() - this.lastOfferAt > CALL_WATCHDOG_MS) this.offer();
  }

  /** Close the call (telling the patient's page when notify). */
  stop({ notify }) {
    clearInterval(this.watchdog);
    clearTimeout(this.reofferTimer);
    this.recovery.reset();
    this.view.hangUp({ notify });
  }
}
