// The video call: one RTCPeerConnection between the visit's doctor and patient,
// signaled over the /call namespace (offer, answer, candidate, hangup).
//
// The doctor always makes the offer; the patient always answers, so the two
// never offer at once. An offer with restart:true renegotiates the existing
// connection (ICE restart); one without starts a new connection. A patient
// page that has no call while the visit is in progress (it was reloaded, or
// its socket came back after the call failed) sends `hangup`, which tells the
// doctor's page to start over with a new offer.

import { request } from "/static/common.js";
import { has, t } from "/static/i18n.js";

/** Plain-language wording of RTCPeerConnection.connectionState (or "idle": no call yet). */
export function callStateText(state) {
  return has(`call.state.${state}`) ? t(`call.state.${state}`) : t("call.state.new");
}

export class Call {
  /**
   * @param socket the /call socket
   * @param visitId the visit in progress
   * @param iceServers RTCConfiguration.iceServers from the server
   * @param localStream own camera and microphone (may be null: receive only)
   * @param onRemoteStream called with the MediaStream of the other party
   * @param onState called with the connection state
   */
  constructor({ socket, visitId, iceServers, localStream, onRemoteStream, onState }) {
    this.socket = socket;
    this.visitId = visitId;
    this.localStream = localStream;
    this.onRemoteStream = onRemoteStream;
    this.onState = onState;
    this.pendingCandidates = [];
    this.closed = false;
    // Signaling steps run one after another, in the order they arrived.
    this.steps = Promise.resolve();
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.pc.addEventListener("icecandidate", (e) => this.sendCandidate(e.candidate));
    this.pc.addEventListener("track", (e) => this.addRemoteTrack(e.track));
    this.pc.addEventListener("connectionstatechange", () => this.onState(this.pc.connectionState));
  }

  get state() {
    return this.pc.connectionState;
  }

  /** Run a signaling step after the previous ones; the returned promise carries its failure. */
  step(fn) {
    const run = this.steps.then(fn);
    this.steps = run.catch(() => {});
    return run;
  }

  addRemoteTrack(track) {
    for (const old of this.remoteStream.getTracks()) {
      if (old.kind === track.kind && old !== track) this.remoteStream.removeTrack(old);
    }
    if (!this.remoteStream.getTracks().includes(track)) this.remoteStream.addTrack(track);
    this.onRemoteStream(this.remoteStream);
  }

  /** Send own tracks on the transceivers of the call (one audio, one video). */
  attachLocal(transceivers) {
    for (const kind of ["audio", "video"]) {
      const transceiver = transceivers.find((t) => t.receiver.track.kind === kind);
      const track = this.localStream ? this.localStream.getTracks().find((t) => t.kind === kind) : null;
      if (!transceiver) continue;
      if (track) {
        transceiver.sender.replaceTrack(track);
        if (transceiver.sender.setStreams) transceiver.sender.setStreams(this.localStream);
        transceiver.direction = "sendrecv";
      } else {
        transceiver.direction = "recvonly";
      }
    }
  }

  // -- the doctor's side ----------------------------------------------------------

  /** Create and send an offer; restart renegotiates ICE on this connection. */
  offer({ restart = false } = {}) {
    return this.step(async () => {
      if (this.closed) return;
      if (this.pc.getTransceivers().length === 0) {
        for (const kind of ["audio", "video"]) this.pc.addTransceiver(kind, { direction: "sendrecv" });
        this.attachLocal(this.pc.getTransceivers());
      }
      const offer = await this.pc.createOffer({ iceRestart: restart });
      await this.pc.setLocalDescription(offer);
      if (this.closed) return;
      await request(this.socket, "offer", { visit_id: this.visitId, sdp: this.pc.localDescription.sdp, restart });
    });
  }

  handleAnswer({ sdp }) {
    return this.step(async () => {
      if (this.closed || this.pc.signalingState !== "have-local-offer") return;
      await this.pc.setRemoteDescription({ type: "answer", sdp });
      await this.addPendingCandidates();
    });
  }

  // -- the patient's side ---------------------------------------------------------

  handleOffer({ sdp }) {
    return this.step(async () => {
      if (this.closed) return;
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      this.attachLocal(this.pc.getTransceivers());
      await this.addPendingCandidates();
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      if (this.closed) return; // a newer offer replaced this connection meanwhile
      await request(this.socket, "answer", { visit_id: this.visitId, sdp: this.pc.localDescription.sdp });
    });
  }

  // -- both -----------------------------------------------------------------------

  handleCandidate({ candidate }) {
    if (!candidate || !candidate.candidate) return;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    this.pc.addIceCandidate(candidate).catch(() => {
      // A candidate of an earlier connection or ICE generation: harmless.
    });
  }

  async addPendingCandidates() {
    const candidates = this.pendingCandidates.splice(0);
    for (const c of candidates) await this.pc.addIceCandidate(c).catch(() => {});
  }

  sendCandidate(candidate) {
    if (this.closed) return;
    const body = candidate ? candidate.toJSON() : null;
    if (body) {
      for (const key of Object.keys(body)) if (body[key] === null || body[key] === undefined) delete body[key];
    }
    request(this.socket, "candidate", { visit_id: this.visitId, candidate: body }).catch(() => {});
  }

  /** Turn own microphone or camera on/off without renegotiating. */
  setEnabled(kind, enabled) {
    if (!this.localStream) return;
    for (const track of this.localStream.getTracks()) if (track.kind === kind) track.enabled = enabled;
  }

  /** Inbound bytes so far, per kind (for the connection indicator and for tests). */
  async inboundBytes() {
    const out = { audio: 0, video: 0 };
    const stats = await this.pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp") out[s.kind] += s.bytesReceived || 0;
    });
    return out;
  }

  close({ notify = false } = {}) {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
    this.onState("closed");
    if (notify) request(this.socket, "hangup", { visit_id: this.visitId }).catch(() => {});
  }
}
