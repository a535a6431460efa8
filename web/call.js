// The video call: one RTCPeerConnection between the visit's doctor and patient,
// signaled over the /call namespace (offer, answer, candidate, hangup).
//
// The doctor always makes the offer; the patient always answers, so the two
// never offer at once. An offer with restart:true renegotiates the existing
// connection (ICE restart); one without starts a new connection. A patient
// page that has no call while the visit is in progress (it was reloaded, or
// its socket came back after the call failed) sends `hangup`, which tells the
// doctor's page to start over with a new offer.
//
// Each call has an id (the doctor's page makes it and sends it with its
// offers; the patient's page takes it from the offer) under which both pages
// report how the call went (`media_started`, `call_quality`) and tell each
// other how their side is (`call_status`: the connection's level and whether
// they send video). A QualityMonitor (call_quality.js) reads getStats every
// two seconds once connected: the level shown to people, the TURN relay in
// use, and the audio-only fallback (video paused while the outgoing bitrate
// is too low, resumed with hysteresis). The Call is an EventTarget:
// "quality" (detail {level}), "videopausedchange" (detail {paused, reason:
// "network" | "chosen" | null}).
//
// In a call of more than two (mesh.js) there is one Call per other party:
// `peer` is that party ("doctor", "patient" or a guest's id) and each
// signaling message and `call_status` the Call sends carries `to` (left out
// between the patient and the doctor, the pair a message without `to` means,
// so that pair works as before the mesh).

import { request } from "/static/common.js";
import { FallbackRule, LevelSmoother, QualityMonitor, levelOf } from "/static/call_quality.js";
import { has, t } from "/static/i18n.js";
import { rtcConfiguration } from "/static/ice_policy.js";

/** After the first of audio and video arrived, how long to wait for the other before reporting. */
const MEDIA_STARTED_WAIT_MS = 15000;
/** How often getStats is read for the first media received, and for how long at most. */
const FIRST_MEDIA_POLL_MS = 200;
const FIRST_MEDIA_WATCH_MS = 60000;
/** At most one `call_status` this often (the server also limits them). */
const STATUS_EVERY_MS = 1000;

/** A call's id (letters and digits: signaling/schemas.py Id). */
function newCallId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Plain-language wording of RTCPeerConnection.connectionState (or "idle": no call yet). */
export function callStateText(state) {
  return has(`call.state.${state}`) ? t(`call.state.${state}`) : t("call.state.new");
}

export class Call extends EventTarget {
  /**
   * @param socket the /call socket
   * @param visitId the visit in progress
   * @param iceServers RTCConfiguration.iceServers from the server
   * @param localStream own camera and microphone (may be null: receive only)
   * @param onRemoteStream called with the MediaStream of the other party
   * @param onState called with the connection state
   * @param startedAt performance.now() of the admit (or of this call's start), for `media_started`
   * @param audioOnly the person chose audio only: send no video
   * @param peer the party on the other end (null: the other of patient and doctor)
   * @param to the party put in each message's `to` (null: none, the patient-doctor pair)
   */
  constructor({ socket, visitId, iceServers, localStream, onRemoteStream, onState, startedAt, audioOnly = false, peer = null, to = null }) {
    super();
    this.socket = socket;
    this.peer = peer;
    this.to = to;
    this.visitId = visitId;
    this.localStream = localStream;
    this.onRemoteStream = onRemoteStream;
    this.onState = onState;
    this.pendingCandidates = [];
    this.closed = false;
    // Signaling steps run one after another, in the order they arrived.
    this.steps = Promise.resolve();
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection(rtcConfiguration(iceServers));
    this.pc.addEventListener("icecandidate", (e) => this.sendCandidate(e.candidate));
    this.pc.addEventListener("track", (e) => this.addRemoteTrack(e.track));
    this.pc.addEventListener("connectionstatechange", () => this.connectionChanged());
    /** The doctor's page makes the id; the patient's takes it from the offer. */
    this.callId = null;
    this.startedAt = startedAt ?? performance.now();
    /** ms from startedAt to the first audio / video received (null: not yet). */
    this.firstMedia = { audio: null, video: null };
    this.mediaReported = false;
    this.mediaTimer = 0;
    this.firstMediaWatch = false;
    /** The person chose audio only; the fallback paused the video. */
    this.audioOnly = audioOnly;
    this.networkPaused = false;
    this.fallback = new FallbackRule();
    this.smoother = new LevelSmoother();
    /** The connection's level as shown (null: not measured yet). */
    this.level = null;
    /** What the other side said of its video ("on", "camera_off", "paused", "audio_only"; null: nothing yet). */
    this.peerVideo = null;
    this.monitor = new QualityMonitor(this.pc, (reading, now) => this.onReading(reading, now));
    this.reported = { relay: null, iceFailed: false, fallback: false };
    this.lastStatus = "";
    this.lastStatusAt = 0;
    this.statusTimer = 0;
    /** The mesh's cap of the video sent on this connection (bit/s), or null. */
    this.videoCap = null;
  }

  connectionChanged() {
    const s = this.pc.connectionState;
    if (s === "connected") {
      this.monitor.start();
      this.sendStatus();
      if (this.videoCap) this.capVideo(this.videoCap);
    } else if (s === "failed" && !this.reported.iceFailed) {
      this.reported.iceFailed = true;
      this.report({ ice_failed: true });
    }
    this.onState(s);
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
    this.watchFirstMedia();
    this.onRemoteStream(this.remoteStream);
  }

  // -- how the call goes ----------------------------------------------------------

  /**
   * Watch getStats (every FIRST_MEDIA_POLL_MS) for the first audio packet
   * and the first decoded video frame received, then report them.
   */
  watchFirstMedia() {
    if (this.firstMediaWatch) return;
    this.firstMediaWatch = true;
    const until = performance.now() + FIRST_MEDIA_WATCH_MS;
    const check = async () => {
      if (this.closed || this.mediaReported) return;
      const now = performance.now();
      try {
        const stats = await this.pc.getStats();
        stats.forEach((s) => {
          if (s.type !== "inbound-rtp") return;
          if (s.kind === "audio" && (s.packetsReceived || 0) > 0) this.markFirstMedia("audio", now);
          if (s.kind === "video" && (s.framesDecoded || 0) > 0) this.markFirstMedia("video", now);
        });
      } catch {
        return; // closed meanwhile
      }
      if (this.firstMedia.audio !== null && this.firstMedia.video !== null) return;
      if (performance.now() > until) this.reportMediaStarted();
      else setTimeout(check, FIRST_MEDIA_POLL_MS);
    };
    check();
  }

  markFirstMedia(kind, now) {
    if (this.firstMedia[kind] !== null) return;
    this.firstMedia[kind] = Math.max(1, Math.round(now - this.startedAt));
    this.mediaArrived();
  }

  /** Report `media_started` once both kinds arrived, or a while after the first one (the other may never come). */
  mediaArrived() {
    if (this.mediaReported) return;
    if (this.firstMedia.audio !== null && this.firstMedia.video !== null) this.reportMediaStarted();
    else if (!this.mediaTimer) this.mediaTimer = setTimeout(() => this.reportMediaStarted(), MEDIA_STARTED_WAIT_MS);
  }

  reportMediaStarted() {
    clearTimeout(this.mediaTimer);
    if (this.mediaReported || this.closed) return;
    this.mediaReported = true;
    const body = { visit_id: this.visitId };
    if (this.callId) body.call_id = this.callId;
    for (const kind of ["audio", "video"]) {
      const ms = this.firstMedia[kind];
      if (ms !== null && ms < 600000) body[`${kind}_ms`] = ms;
    }
    if (body.audio_ms || body.video_ms) request(this.socket, "media_started", body).catch(() => {});
  }

  /** A `call_quality` report (each fact once per call; the server keeps the first). */
  report(facts) {
    const body = { visit_id: this.visitId, ...facts };
    if (this.callId) body.call_id = this.callId;
    request(this.socket, "call_quality", body).catch(() => {});
  }

  /** A message body with this call's `to` (if it has one). */
  addressed(body) {
    return this.to ? { ...body, to: this.to } : body;
  }

  /** Own microphone as the other side should hear of it: "on" or "muted". */
  get audioState() {
    const track = this.localStream && this.localStream.getAudioTracks()[0];
    return track && track.enabled && track.readyState === "live" ? "on" : "muted";
  }

  /** One getStats reading (QualityMonitor): the level, the relay, the fallback. */
  onReading(reading, now) {
    if (this.closed) return;
    if (reading.relay !== null && reading.relay !== this.reported.relay) {
      this.reported.relay = reading.relay;
      this.report({ relay: reading.relay });
    }
    const own = this.videoState;
    const peerSends = this.peerVideo === null || this.peerVideo === "on";
    const level = this.smoother.push(
      levelOf({
        rttMs: reading.rttMs,
        lossPct: reading.lossPct,
        outKbps: own === "on" ? reading.outKbps : null,
        fps: peerSends ? reading.fps : null,
      }),
    );
    if (level !== this.level) {
      this.level = level;
      this.dispatchEvent(new CustomEvent("quality", { detail: { level } }));
      this.statusChanged();
    }
    if (this.audioOnly || !this.localVideoTrack()) return;
    const change = this.fallback.update({ outKbps: reading.outKbps, rttMs: reading.rttMs, lossPct: reading.lossPct }, now);
    if (change === "pause") {
      this.networkPaused = true;
      if (!this.reported.fallback) {
        this.reported.fallback = true;
        this.report({ fallback: "audio_only" });
      }
      this.videoPausedChanged();
    } else if (change === "resume") {
      this.networkPaused = false;
      this.videoPausedChanged();
    }
  }

  /** The own camera track (whether it is sent or not); null without one. */
  localVideoTrack() {
    return (this.localStream && this.localStream.getVideoTracks()[0]) || null;
  }

  /** True while own video is not sent to keep the sound clear (network) or by choice. */
  get videoPaused() {
    return this.audioOnly || this.networkPaused;
  }

  /** Why own video is paused: "chosen", "network", or null. */
  get pauseReason() {
    return this.audioOnly ? "chosen" : this.networkPaused ? "network" : null;
  }

  /** Own video as the other side should hear of it: "on", "camera_off", "paused" (fallback), "audio_only" (chosen). */
  get videoState() {
    if (this.audioOnly) return "audio_only";
    if (this.networkPaused) return "paused";
    const track = this.localVideoTrack();
    return track && track.enabled && track.readyState === "live" ? "on" : "camera_off";
  }

  /** The person chose audio only (or video again): stop or start sending video. */
  setAudioOnly(on) {
    if (this.audioOnly === Boolean(on)) return;
    this.audioOnly = Boolean(on);
    this.networkPaused = false;
    this.fallback.reset();
    this.videoPausedChanged();
  }

  videoPausedChanged() {
    this.applyVideoSending();
    this.dispatchEvent(new CustomEvent("videopausedchange", { detail: { paused: this.videoPaused, reason: this.pauseReason } }));
    this.statusChanged();
  }

  /** Send own camera unless video is paused; the transceiver stays as negotiated (no renegotiation). */
  applyVideoSending() {
    if (this.closed) return;
    const transceiver = this.pc.getTransceivers().find((tr) => tr.receiver.track.kind === "video");
    if (!transceiver || transceiver.direction === "recvonly" || transceiver.direction === "inactive") return;
    const wanted = this.videoPaused ? null : this.localVideoTrack();
    if (transceiver.sender.track !== wanted) transceiver.sender.replaceTrack(wanted).catch(() => {});
  }

  /** Own side changed (level, video): tell the other side, at most once a second. */
  statusChanged() {
    if (this.closed || this.statusTimer || this.pc.connectionState !== "connected") return;
    const wait = Math.max(0, this.lastStatusAt + STATUS_EVERY_MS - performance.now());
    this.statusTimer = setTimeout(() => {
      this.statusTimer = 0;
      this.sendStatus({ onlyIfChanged: true });
    }, wait);
  }

  sendStatus({ onlyIfChanged = false } = {}) {
    if (this.closed) return;
    const body = { visit_id: this.visitId, video: this.videoState, audio: this.audioState };
    if (this.callId) body.call_id = this.callId;
    if (this.level) body.level = this.level;
    const text = JSON.stringify(body);
    if (onlyIfChanged && text === this.lastStatus) return;
    this.lastStatus = text;
    this.lastStatusAt = performance.now();
    request(this.socket, "call_status", this.addressed(body)).catch(() => {
      this.lastStatus = ""; // refused (too many, or the socket was away): the next change sends again
    });
  }

  /** `call_status` of the other side of this call. */
  handlePeerStatus(p) {
    this.peerVideo = p.video || null;
    this.peerAudio = p.audio || null;
  }

  /**
   * Cap the video sent on this connection (bit/s; null: no cap), as the
   * mesh's budget asks; kept and applied again once the sender exists.
   */
  capVideo(maxBitrate) {
    this.videoCap = maxBitrate;
    if (this.closed) return Promise.resolve();
    const transceiver = this.pc.getTransceivers().find((tr) => tr.receiver.track.kind === "video");
    if (!transceiver) return Promise.resolve();
    const params = transceiver.sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return Promise.resolve(); // not negotiated yet
    const wanted = maxBitrate ?? undefined;
    if (params.encodings.every((e) => e.maxBitrate === wanted)) return Promise.resolve();
    for (const encoding of params.encodings) {
      if (wanted === undefined) delete encoding.maxBitrate;
      else encoding.maxBitrate = wanted;
    }
    return transceiver.sender.setParameters(params).catch(() => {});
  }

  /** Send own tracks on the transceivers of the call (one audio, one video). */
  attachLocal(transceivers) {
    for (const kind of ["audio", "video"]) {
      const transceiver = transceivers.find((t) => t.receiver.track.kind === kind);
      const track = this.localStream ? this.localStream.getTracks().find((t) => t.kind === kind) : null;
      if (!transceiver) continue;
      if (track) {
        transceiver.sender.replaceTrack(kind === "video" && this.videoPaused ? null : track);
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
      if (!this.callId) this.callId = newCallId();
      if (this.pc.getTransceivers().length === 0) {
        for (const kind of ["audio", "video"]) this.pc.addTransceiver(kind, { direction: "sendrecv" });
        this.attachLocal(this.pc.getTransceivers());
      }
      const offer = await this.pc.createOffer({ iceRestart: restart });
      await this.pc.setLocalDescription(offer);
      if (this.closed) return;
      await request(this.socket, "offer", this.addressed({ visit_id: this.visitId, sdp: this.pc.localDescription.sdp, restart, call_id: this.callId }));
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

  handleOffer({ sdp, call_id: callId }) {
    return this.step(async () => {
      if (this.closed) return;
      if (callId && !this.callId) this.callId = callId;
      await this.pc.setRemoteDescription({ type: "offer", sdp });
      this.attachLocal(this.pc.getTransceivers());
      await this.addPendingCandidates();
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      if (this.closed) return; // a newer offer replaced this connection meanwhile
      await request(this.socket, "answer", this.addressed({ visit_id: this.visitId, sdp: this.pc.localDescription.sdp }));
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
    request(this.socket, "candidate", this.addressed({ visit_id: this.visitId, candidate: body })).catch(() => {});
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
    this.monitor.stop();
    clearTimeout(this.mediaTimer);
    clearTimeout(this.statusTimer);
    this.pc.close();
    this.onState("closed");
    if (notify) request(this.socket, "hangup", this.addressed({ visit_id: this.visitId })).catch(() => {});
  }
}
