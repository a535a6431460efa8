// The chart leg: one more, send-only RTCPeerConnection from this page to a
// media worker, carrying this page's own microphone and camera (the video at a
// lower bitrate than the call) so the visit is recorded and transcribed.
//
// Signaled over /media: `leg_offer` {visit_id, sdp} is acknowledged with
// {job}; the worker then sends `leg_answer` {job, ok, sdp | error} to this
// socket. The worker does not trickle ICE, so the offer goes out only once
// this side has finished gathering candidates.
//
// A leg that fails, does not connect in time, that the worker stopped, or
// whose socket reconnected (the answer or the worker may be gone) is replaced:
// a new peer connection, a new offer. The worker then closes the old leg and
// records into a new file.
//
// The leg follows the call's audio-only rule: while the page's call does not
// send its video (paused to keep the sound clear, or audio only by choice:
// the CallView's "videopausedchange"), the leg sends none either (its video
// sender's track is replaced by none, no renegotiation) and takes it up again
// with the call; the microphone, which the transcript needs, goes on.
//
// It also follows a switch of camera or microphone during the call (the
// view's "localtrackchange", local_tracks.js): the new track takes the old
// one's place on the leg's sender, so the record goes on with the new device.

import { ServerError, request } from "/static/common.js";
import { t } from "/static/i18n.js";
import { rtcConfiguration } from "/static/ice_policy.js";

/** Video bitrate of the leg (bits/s): enough for the record and snapshots, well below the call's. */
export const LEG_VIDEO_MAX_BITRATE = 300_000;

/** Longest wait for ICE gathering; the offer then goes with the candidates found so far. */
const GATHER_TIMEOUT_MS = 5000;
/** An offer not connected this long after its acknowledgement is made again. */
const CONNECT_TIMEOUT_MS = 25000;
/** A leg "disconnected" this long is replaced (the worker does no ICE restart). */
const DISCONNECTED_GRACE_MS = 5000;
/** After the worker says it stopped this participant's leg, ask `status` this much later. */
const STOPPED_CHECK_MS = 1000;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;

const LEG_STATES = ["idle", "waiting", "offering", "connecting", "connected", "retrying", "refused", "stopped"];

/** Plain-language wording of a leg's state (for staff; tests read data-state). */
export function describeLegState(state) {
  return t(`leg.state.${LEG_STATES.includes(state) ? state : "idle"}`);
}

/** Refusals another offer cannot fix (a conflict about the visit's state included). */
function isFinal(err) {
  if (!(err instanceof ServerError)) return false;
  if (["forbidden", "unauthorized", "bad_request", "not_found"].includes(err.code)) return true;
  return err.code === "conflict" && Boolean(err.details && err.details.state);
}

/** Put VP8 (what the worker records) first, keeping the rest for the browser to fall back on. */
function preferVp8(transceiver) {
  if (!transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
  const caps = RTCRtpSender.getCapabilities("video");
  if (!caps) return;
  const vp8 = caps.codecs.filter((c) => /\/vp8$/i.test(c.mimeType));
  const rest = caps.codecs.filter((c) => !/\/vp8$/i.test(c.mimeType));
  try {
    transceiver.setCodecPreferences([...vp8, ...rest]);
  } catch {
    // Some browsers refuse a reordered list; their default order includes VP8 anyway.
  }
}

/** Resolves when ICE gathering is complete, or after timeoutMs. */
function gatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

export class ChartLeg {
  /**
   * @param socket the /media socket
   * @param visitId the visit in progress
   * @param role "patient" or "doctor": whose leg this is
   * @param iceServers RTCConfiguration.iceServers (the call's)
   * @param onState called with (state, error?) on every change
   * @param language the speaker's language tag, for speech-to-text; empty: the
   *   server decides (the patient's leg uses the visit's language)
   * @param follow an EventTarget whose "videopausedchange" events ({paused})
   *   say when the call stops and resumes sending video, and whose
   *   "localtrackchange" events ({kind, track}) say that own camera or
   *   microphone was switched (the page's CallView); null: the leg always
   *   sends its video and the stream's first tracks
   */
  constructor({ socket, visitId, role, iceServers = [], onState = () => {}, language = "", follow = null }) {
    this.socket = socket;
    this.visitId = visitId;
    this.role = role;
    this.language = language;
    this.iceServers = iceServers;
    this.onState = onState;
    this.stream = null;
    this.pc = null;
    this.job = null;
    this.generation = 0;
    this.attempts = 0;
    this.state = "idle";
    this.timers = {};
    /** Answers that arrived before the acknowledgement of their offer, by job. */
    this.early = new Map();
    /** True while the call does not send video: neither does the leg. */
    this.videoPaused = Boolean(follow && follow.call && follow.call.videoPaused);
    this.follow = follow;
    this.onVideoPaused = (e) => this.setVideoPaused(Boolean(e.detail && e.detail.paused));
    this.onTrackChange = (e) => this.trackChanged(e.detail || {});
    if (follow) {
      follow.addEventListener("videopausedchange", this.onVideoPaused);
      follow.addEventListener("localtrackchange", this.onTrackChange);
    }
  }

  /** Own camera or microphone was switched: send the new track (video only while not paused). */
  trackChanged({ kind, track }) {
    if (!this.pc || !track) return;
    const wanted = kind === "video" && this.videoPaused ? null : track;
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.receiver.track.kind !== kind || transceiver.sender.track === wanted) continue;
      transceiver.sender.replaceTrack(wanted).catch(() => {});
    }
  }

  /** Stop sending own video on the leg (paused), or send it again; the audio goes on. */
  setVideoPaused(paused) {
    this.videoPaused = paused;
    if (this.pc) this.applyVideoSending(this.pc);
  }

  applyVideoSending(pc) {
    const camera = this.stream ? this.stream.getVideoTracks()[0] || null : null;
    const wanted = this.videoPaused ? null : camera;
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.sender.track === wanted || transceiver.receiver.track.kind !== "video") continue;
      transceiver.sender.replaceTrack(wanted).catch(() => {});
    }
  }

  setState(state, error = null) {
    this.state = state;
    this.onState(state, error);
  }

  /** Start sending this stream (own camera and microphone), or restart with it. */
  start(stream) {
    this.stream = stream;
    this.attempts = 0;
    return this.offer();
  }

  /** The /media socket (re)connected: any leg this page had may be gone; offer a new one. */
  socketConnected() {
    if (this.stream && this.state !== "refused" && this.state !== "stopped") {
      this.attempts = 0;
      this.offer();
    }
  }

  /** A new peer connection and offer (the previous one, if any, is dropped). */
  async offer() {
    this.clearTimers();
    this.dropPeer();
    const generation = ++this.generation;
    const stream = this.stream;
    if (!stream || stream.getTracks().every((t) => t.readyState === "ended")) {
      this.setState("idle");
      return;
    }
    if (!this.socket.connected) {
      this.setState("waiting"); // socketConnected() offers when it is back
      return;
    }
    const pc = new RTCPeerConnection(rtcConfiguration(this.iceServers));
    this.pc = pc;
    pc.addEventListener("connectionstatechange", () => this.connectionChanged(pc));
    for (const track of stream.getTracks()) {
      const init = { direction: "sendonly", streams: [stream] };
      if (track.kind === "video") init.sendEncodings = [{ maxBitrate: LEG_VIDEO_MAX_BITRATE }];
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === "video") preferVp8(transceiver);
    }
    if (this.videoPaused) this.applyVideoSending(pc);
    this.setState("offering");
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringComplete(pc, GATHER_TIMEOUT_MS);
      await this.capVideoBitrate(pc);
      if (generation !== this.generation) return;
      if (!this.socket.connected) {
        this.setState("waiting");
        return;
      }
      const payload = { visit_id: this.visitId, sdp: pc.localDescription.sdp };
      if (this.language) payload.language = this.language;
      const reply = await request(this.socket, "leg_offer", payload, 15000);
      if (generation !== this.generation) return;
      this.job = reply.job;
      this.setState("connecting");
      this.timers.connect = setTimeout(() => this.retry(), CONNECT_TIMEOUT_MS);
      const early = this.early.get(this.job);
      this.early.clear();
      if (early) this.handleAnswer(early);
    } catch (err) {
      if (generation === this.generation) this.fail(err);
    }
  }

  /** Belt and braces: some browsers ignore sendEncodings given to addTransceiver. */
  async capVideoBitrate(pc) {
    for (const sender of pc.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) continue;
      if (params.encodings.every((e) => e.maxBitrate === LEG_VIDEO_MAX_BITRATE)) continue;
      for (const encoding of params.encodings) encoding.maxBitrate = LEG_VIDEO_MAX_BITRATE;
      await sender.setParameters(params).catch(() => {});
    }
  }

  /** `leg_answer` from the worker: {job, ok, sdp} or {job, ok: false, error}. */
  handleAnswer(answer) {
    if (!answer || !answer.job) return;
    if (answer.job !== this.job) {
      // Possibly the answer to the offer whose acknowledgement is still on its way.
      if (this.state === "offering") {
        this.early.set(answer.job, answer);
        if (this.early.size > 4) this.early.delete(this.early.keys().next().value);
      }
      return;
    }
    const pc = this.pc;
    if (!answer.ok) {
      const e = answer.error || {};
      this.fail(new ServerError(e.code || "error", e.message || "", e.details));
      return;
    }
    if (!pc || pc.signalingState !== "have-local-offer") return;
    pc.setRemoteDescription({ type: "answer", sdp: answer.sdp }).catch((err) => {
      if (pc === this.pc) this.fail(err);
    });
  }

  connectionChanged(pc) {
    if (pc !== this.pc) return;
    const s = pc.connectionState;
    clearTimeout(this.timers.disconnected);
    if (s === "connected") {
      clearTimeout(this.timers.connect);
      this.attempts = 0;
      this.setState("connected");
    } else if (s === "disconnected") {
      this.timers.disconnected = setTimeout(() => this.retry(), DISCONNECTED_GRACE_MS);
    } else if (s === "failed" || s === "closed") {
      this.retry();
    }
  }

  /**
   * A `recording` event: when the worker stopped a leg of this participant
   * (it is shutting down, lost the media, or was asked to), and `status`
   * confirms none is left, replace it now rather than wait for the
   * connection to time out. Stops of legs already replaced are ignored.
   */
  recordingChanged(event) {
    if (!event || event.state !== "stopped" || event.role !== this.role || event.visit_id !== this.visitId) return;
    if (/^replaced|^visit /.test(event.reason || "") || this.state !== "connected") return;
    const generation = this.generation;
    clearTimeout(this.timers.stopped);
    this.timers.stopped = setTimeout(async () => {
      const reply = await request(this.socket, "status", { visit_id: this.visitId }).catch(() => null);
      if (!reply || generation !== this.generation || this.state !== "connected") return;
      if (!reply.recording[this.role]) {
        this.attempts = 0;
        this.offer();
      }
    }, STOPPED_CHECK_MS);
  }

  /** A refusal that another offer cannot fix stops the leg; anything else is retried. */
  fail(err) {
    if (isFinal(err)) {
      this.clearTimers();
      this.dropPeer();
      this.setState("refused", err);
    } else {
      this.retry(err);
    }
  }

  /** Offer again after a growing pause (1 s, 2 s, 4 s … 30 s, with jitter). */
  retry(err = null) {
    if (!this.stream) return;
    this.clearTimers();
    this.dropPeer();
    this.generation++;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.attempts) * (0.75 + Math.random() / 2);
    this.attempts++;
    this.setState("retrying", err);
    this.timers.retry = setTimeout(() => this.offer(), delay);
  }

  clearTimers() {
    for (const timer of Object.values(this.timers)) clearTimeout(timer);
    this.timers = {};
  }

  dropPeer() {
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      pc.close();
    }
    this.job = null;
  }

  /** Stop sending (visit over, or this page leaves the visit). */
  stop() {
    if (this.follow) {
      this.follow.removeEventListener("videopausedchange", this.onVideoPaused);
      this.follow.removeEventListener("localtrackchange", this.onTrackChange);
    }
    this.generation++;
    this.clearTimers();
    this.dropPeer();
    this.stream = null;
    this.setState("stopped");
  }
}
