// A guest's side of the call (issue 13): an interpreter, a caregiver or a
// clinician let into a visit in progress joins the same mesh as the patient
// and the doctor (mesh.js): the doctor and the guests before them (by id)
// offer to them; they offer to the guests after them and to the patient. The
// tiles are the patient's and the doctor's (call_view.js, tiles.js). The guest
// may leave the call but stay in the visit (leave(), rejoin()).

import { CallView, mountStage } from "/static/call_view.js";
import { mediaPrefs } from "/static/device_check.js";
import { t } from "/static/i18n.js";
import { Mesh } from "/static/mesh.js";

export class GuestCall {
  /**
   * @param socket the guest's /call socket
   * @param slot the element the call's stage replaces
   * @param visitId the visit
   * @param self the guest's id (their token's `guest`)
   * @param active () => true while the guest is let in and the page goes on
   * @param onConnected called when the doctor's connection is up
   */
  constructor({ socket, slot, visitId, self, active, onConnected = () => {} }) {
    this.onConnected = onConnected;
    this.socket = socket;
    const touch = matchMedia("(pointer: coarse)").matches;
    mountStage(slot, { peer: "doctor", tapVerb: touch ? "Tap" : "Click", stateText: t("guest.call.connecting") });
    this.view = new CallView();
    this.mesh = new Mesh({
      socket,
      view: this.view,
      self,
      visitId: () => visitId,
      active,
      onTrouble: () => {},
      onMainState: (s, reason) => this.onState(s, reason),
    });
  }

  /** All live Call objects, one per other person. */
  calls() {
    return this.mesh.calls();
  }

  /** Own camera and microphone (null: none). */
  get localStream() {
    return this.view.localStream;
  }

  /** Own camera and microphone as chosen in the device check, then the calls. */
  start() {
    if (!this.socket.active) this.socket.connect(); // again after stop(); a new socket connects by itself
    const prefs = mediaPrefs();
    this.view.openLocal({
      devices: prefs,
      without: prefs.chatOnly ? t("visit_call.chat_only") : null,
      problemNote: (problem) => t("visit_call.media_problem", { title: problem.title, text: problem.message }),
    });
    this.mesh.start();
  }

  /** The doctor's connection (the state line is theirs). */
  onState(s, reason) {
    if (reason === "left") this.view.showState("closed", t("visit_call.doctor_left"));
    else this.view.showState(s, s === "new" || s === "connecting" ? t("guest.call.connecting") : undefined);
    if (s === "connected") this.onConnected();
  }

  /** Leave the call but stay in the visit (the chat goes on); the tiles say so. */
  leave() {
    return this.mesh.leave();
  }

  /** Back in the call after leave(). */
  rejoin() {
    return this.mesh.rejoin();
  }

  /**
   * The guest is no longer in the visit (left, removed, ended): every
   * connection and own camera closed, the socket too (start() again if let
   * in again).
   */
  stop() {
    this.mesh.stop({ notify: true });
    this.view.hangUp();
    this.view.release();
    this.socket.disconnect();
  }
}
