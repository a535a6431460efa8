// The chart as a page in a visit takes part in it: the recording indicator
// (recording.js) and, with the patient's consent, the page's own send-only
// leg to the media worker (chart_leg.js), both kept up to date from the
// /media socket. Used by the patient's and the doctor's page alike.

import { $ } from "/static/common.js";
import { ChartLeg } from "/static/chart_leg.js";
import { RecordingStatus, showRecording } from "/static/recording.js";

export class ChartSession {
  /**
   * @param socket the /media socket
   * @param role "patient" or "doctor": whose page this is (and whose leg)
   * @param onLegState (state, error?) of the leg, for the page to report
   */
  constructor({ socket, role, onLegState }) {
    this.socket = socket;
    this.role = role;
    this.onLegState = onLegState;
    /** This page's ChartLeg while it sends; null otherwise. */
    this.leg = null;
    /** The RecordingStatus of the visit shown (kept after stop(), for what it saw). */
    this.recording = null;
    socket.on("connect", () => {
      if (this.leg) this.leg.socketConnected();
      if (this.recording) this.recording.refresh();
    });
    socket.on("leg_answer", (p) => this.leg && this.leg.handleAnswer(p));
    socket.on("recording", (p) => {
      if (this.recording) this.recording.applyEvent(p);
      if (this.leg) this.leg.recordingChanged(p);
    });
  }

  /** Show whether the visit is being recorded, and by whom. */
  watch(visitId) {
    this.recording = new RecordingStatus({
      socket: this.socket,
      visitId,
      onChange: (status) => showRecording($("#recording"), status, this.role),
    });
    this.recording.refresh();
  }

  /**
   * Send own camera and microphone (the stream) to the visit's chart.
   * @param language the speaker's language for speech-to-text (the doctor's
   *   page passes its own; the patient's leaves it to the visit's language)
   * @param follow the page's CallView: the leg sends no video while the call sends none
   */
  send(visitId, stream, iceServers, { language = "", follow = null } = {}) {
    this.leg = new ChartLeg({ socket: this.socket, visitId, role: this.role, iceServers, onState: this.onLegState, language, follow });
    this.leg.start(stream);
  }

  /** Stop sending and hide the indicator; what the page learnt stays in `recording`. */
  stop() {
    if (this.leg) this.leg.stop();
    this.leg = null;
    if (this.recording) this.recording.close();
    showRecording($("#recording"), null, this.role);
  }
}
