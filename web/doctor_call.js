// The doctor's side of the call. The doctor comes first in the order of
// offering (mesh.js), so the doctor's page makes the offer to everyone in the
// call: the patient (as in every visit) and each guest let in. Each
// connection recovers on its own (ICE restarts, call_recovery.js) and is
// started over when the other page asks for it (a `hangup`), when it does not
// connect in time, or when ICE restarts have not brought it back for long.

import { CallView } from "/static/call_view.js";
import { t } from "/static/i18n.js";
import { Mesh } from "/static/mesh.js";

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
    this.mesh = new Mesh({
      socket,
      view: this.view,
      self: "doctor",
      visitId: currentVisit,
      active: () => Boolean(currentVisit()),
      onTrouble: (err) => this.trouble(err),
      onMainState: (s, reason) => this.onState(s, reason),
    });
  }

  /** RTCConfiguration.iceServers from the server (the chart leg uses them too). */
  get iceServers() {
    return this.mesh.iceServers;
  }

  set iceServers(servers) {
    this.mesh.iceServers = servers;
  }

  /** Call the people of the current visit: own camera and microphone, the offers, the watchdog. */
  start() {
    this.view.openLocal({ problemNote: (problem) => t("doctor.call.media_problem", { title: problem.title, message: problem.message }) });
    this.mesh.start();
  }

  /** A failed signaling step; the watchdog starts the call over if it stays down. */
  trouble(err) {
    if (err && err.code === "conflict") return; // the visit is no longer in progress, or that person left
    this.notices.error(t("doctor.call.trouble", { reason: err.message }), "call");
  }

  /** The patient's connection (the state line is theirs). */
  onState(s, reason) {
    if (reason === "reconnected") {
      this.view.showState("connecting", t("doctor.call.patient_reconnected"));
      return;
    }
    if (reason === "left") {
      this.view.showState("closed", t("doctor.call.patient_left_call"));
      return;
    }
    const text = s === "new" || s === "connecting" ? t("doctor.call.calling") : undefined;
    this.view.showState(s, text);
  }

  /** Close every call (telling the others' pages when notify). */
  stop({ notify }) {
    this.mesh.stop({ notify });
    this.view.hangUp({ notify });
  }
}
