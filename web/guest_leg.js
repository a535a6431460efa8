// A guest's own chart leg (issue 13): an interpreter, a caregiver or a
// clinician let into the visit who agreed to be recorded sends their camera
// and microphone to the visit's chart, as the patient's and the doctor's pages
// do (chart_session.js, chart_leg.js), on their own /media socket; the server
// keys the leg by their guest id and labels its file, transcript and captions
// with their name and kind (an interpreter is transcribed in their language).
// The indicator on their call screen (recording.js) says who is recorded, and
// who in the visit is not. A guest who declined sends nothing; the others are told.

import { ChartSession } from "/static/chart_session.js";
import { t } from "/static/i18n.js";

export class GuestLeg {
  /**
   * @param manager the page's Socket.IO manager
   * @param token the guest's token (a link's, or a clinician's staff token)
   * @param visitId the visit
   * @param guestId the guest's id: the leg's party
   * @param notices where a refused leg is said in words
   */
  constructor({ manager, token, visitId, guestId, notices }) {
    this.visitId = visitId;
    this.socket = manager.socket("/media", { auth: { token } });
    this.chart = new ChartSession({
      socket: this.socket,
      role: guestId,
      onLegState: (state, err) => {
        // A conflict means the guest or the visit is no longer in: the page's own events say so.
        if (state === "refused" && !(err && err.code === "conflict")) notices.error(t("visit_call.recording_failed"), "leg");
      },
    });
    this.watching = false;
  }

  /**
   * Show the recording indicator and, with the guest's consent to recording,
   * send their own camera and microphone (the call's, once it has them).
   * @param call the page's GuestCall
   * @param consented the guest agreed to be recorded
   */
  async start(call, consented) {
    // Connecting again while the first connect is under way would send a second
    // CONNECT, which the server refuses: the socket would then hold back every event.
    if (!this.socket.active) this.socket.connect();
    if (!this.watching) {
      this.chart.watch(this.visitId);
      this.watching = true;
    }
    if (this.chart.leg || !consented) return;
    const stream = await call.view.mediaReady;
    if (this.chart.leg || !stream || !this.watching) return;
    this.chart.send(this.visitId, stream, call.mesh.iceServers, { follow: call.view });
  }

  /** Out of the call but still in the visit (Leave call): the leg closes, the indicator stays; start() sends again. */
  pause() {
    if (this.chart.leg) this.chart.leg.stop();
    this.chart.leg = null;
  }

  /** Out of the visit (left, removed, ended): the leg closes and the indicator goes. */
  stop() {
    this.watching = false;
    this.chart.stop();
    this.socket.disconnect();
  }
}
