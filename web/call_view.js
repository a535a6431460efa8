// The call as both pages show it (patient's and doctor's alike): own camera
// and microphone in the small picture, the other party's video on the stage,
// the microphone and camera buttons, and the call's state line. It holds the
// current Call (call.js) and the page's own MediaStream. Who offers, and when
// a call is started over, is each side's business (doctor_call.js,
// patient_call.js).
//
// mountStage() puts the state line and the stage into the page; the page's
// HTML has the microphone and camera buttons (#toggle-mic, #toggle-cam, among
// its own call controls), #call-media-note, and may have an audio-only
// button (#toggle-audio-only: the patient's page).
//
// It also shows how the call goes: own connection's level in words (#call-quality,
// from the Call's getStats monitor, call_quality.js), the other party's level
// (#peer-quality, from their `call_status`), a note over the other party's
// video when they do not send it (#remote-paused: paused to keep the sound
// clear, audio only, camera off) and a note when own video is paused
// (#own-paused). The CallView is an EventTarget that passes on the current
// call's "videopausedchange" and "quality" events, so whoever follows them
// (the chart leg) need not follow each new Call.

import { $, h } from "/static/common.js";
import { Call, callStateText } from "/static/call.js";
import { t } from "/static/i18n.js";
import { openMedia, playVideo, stopStream } from "/static/media.js";

/**
 * Put the call's status line (call state, recording indicator) and its stage
 * (the other party's video, own picture-in-picture, tap to play) in place of
 * the slot element.
 * @param peer who is on the other end: "doctor" or "patient"
 * @param tapVerb "Tap" (touch screens) or "Click": how the page asks to start playing
 * @param stateText the state line before anything happened
 */
export function mountStage(slot, { peer, tapVerb, stateText = "" }) {
  const other = peer === "patient" ? "patient" : "doctor";
  const tap = String(tapVerb).toLowerCase() === "click" ? "click" : "tap";
  const local = h("video", { id: "local-video", class: "video video-pip", autoplay: true, muted: true, playsinline: true, "aria-label": t("stage.own_video") });
  local.muted = true; // the attribute mutes only elements the parser made
  slot.replaceWith(
    h(
      "div",
      { class: "visit-status" },
      h("p", { id: "call-state", class: "call-state", role: "status", "aria-live": "polite", text: stateText }),
      h("p", { id: "recording", class: "recording", role: "status", "aria-live": "polite", dataset: { state: "off" }, hidden: true, text: t("stage.recording") }),
      h(
        "p",
        { id: "call-quality", class: "call-quality", role: "status", "aria-live": "polite", dataset: { level: "" }, hidden: true },
        h("span", { class: "quality-bars", "aria-hidden": "true" }, h("span"), h("span"), h("span")),
        h("span", { id: "call-quality-text" }),
      ),
      h("p", { id: "peer-quality", class: "call-quality peer-quality", role: "status", "aria-live": "polite", dataset: { level: "", peer: other }, hidden: true }),
      h("p", { id: "own-paused", class: "own-paused", role: "status", "aria-live": "polite", hidden: true }),
    ),
    h(
      "div",
      { class: "stage" },
      h("video", { id: "remote-video", class: "video video-remote", autoplay: true, playsinline: true, "aria-label": t(`stage.remote_video.${other}`) }),
      h("p", { id: "remote-empty", class: "video-placeholder", text: t(`stage.waiting_video.${other}`) }),
      h("p", { id: "remote-paused", class: "video-placeholder video-paused", role: "status", "aria-live": "polite", dataset: { video: "" }, hidden: true }),
      local,
      h("button", { id: "tap-to-play", type: "button", class: "btn btn-primary tap-to-play", hidden: true, text: t(`stage.tap_to_play.${tap}`) }),
    ),
  );
}

/** Where a patient's choice of audio only is kept for the visit (this tab only: a reload keeps it). */
const AUDIO_ONLY_KEY = "telemed.patient.audioOnly";

/** The events of the current Call that a CallView passes on. */
const CALL_EVENTS = ["videopausedchange", "quality"];

export class CallView extends EventTarget {
  constructor() {
    super();
    /** Own camera and microphone while open; null otherwise (the call then only receives). */
    this.media = null;
    /** Resolves with `media` (or null) once opening it has finished; null before. */
    this.mediaReady = null;
    /** The current Call; null when there is none. */
    this.call = null;
    this.stateEl = $("#call-state");
    this.remote = $("#remote-video");
    this.remoteEmpty = $("#remote-empty");
    this.local = $("#local-video");
    this.tapToPlay = $("#tap-to-play");
    this.mic = $("#toggle-mic");
    this.cam = $("#toggle-cam");
    this.note = $("#call-media-note");
    this.mic.addEventListener("click", () => this.flip(this.mic));
    this.cam.addEventListener("click", () => this.flip(this.cam));
    this.tapToPlay.addEventListener("click", () => this.playRemote());
    this.quality = $("#call-quality");
    this.qualityText = $("#call-quality-text");
    this.peerQuality = $("#peer-quality");
    this.ownPaused = $("#own-paused");
    this.remotePaused = $("#remote-paused");
    /** Who is on the other end: "doctor" or "patient" (mountStage). */
    this.peer = this.peerQuality.dataset.peer;
    /** The person chose audio only (kept for the next calls of the visit). */
    this.audioOnly = false;
    this.audioOnlyButton = document.getElementById("toggle-audio-only");
    if (this.audioOnlyButton) {
      this.audioOnlyButton.addEventListener("click", () => this.setAudioOnly(!this.audioOnly));
      if (sessionStorage.getItem(AUDIO_ONLY_KEY) === "1") this.setAudioOnly(true);
    }
    /** performance.now() when own media started opening (the admit); the next new call measures from it. */
    this.openedAt = null;
    /** /call sockets listened to for the other party's `call_status`. */
    this.sockets = new Set();
  }

  /**
   * Open own camera and microphone, once (again after release()).
   * @param devices {videoDeviceId, audioDeviceId} chosen in the device check
   * @param without a note to show instead of opening anything (chat only), or null
   * @param problemNote (MediaProblem) => the note shown when opening fails
   * @returns the promise of the stream, or of null
   */
  openLocal({ devices = {}, without = null, problemNote }) {
    if (!this.mediaReady) this.openedAt = performance.now();
    this.mediaReady = this.mediaReady || this.startLocal(devices, without, problemNote);
    return this.mediaReady;
  }

  async startLocal(devices, without, problemNote) {
    if (without) {
      this.showMediaNote(without);
      return null;
    }
    try {
      const opened = await openMedia(devices);
      this.media = opened.stream;
      this.local.srcObject = opened.stream;
      this.local.hidden = !opened.video;
      this.cam.disabled = !opened.video;
      this.mic.disabled = !opened.audio;
      if (this.audioOnlyButton) this.audioOnlyButton.disabled = !opened.video;
      this.note.hidden = true;
      this.applyToggles();
      await playVideo(this.local);
      return opened.stream;
    } catch (problem) {
      this.showMediaNote(problemNote(problem));
      return null;
    }
  }

  /** No own camera or microphone in this call: say why. */
  showMediaNote(text) {
    this.note.textContent = text;
    this.note.hidden = false;
    this.local.hidden = true;
    this.cam.disabled = true;
    this.mic.disabled = true;
    if (this.audioOnlyButton) this.audioOnlyButton.disabled = true;
  }

  /**
   * A new peer connection for the visit; the old one (if any) is closed.
   * onState hears the new connection's states only (starting with "new").
   */
  newCall({ socket, visitId, iceServers, onState }) {
    if (this.call) this.call.close();
    if (!this.sockets.has(socket)) {
      this.sockets.add(socket);
      socket.on("call_status", (p) => this.onPeerStatus(p));
    }
    const call = new Call({
      socket,
      visitId,
      iceServers,
      localStream: this.media,
      onRemoteStream: (stream) => this.showRemote(stream),
      onState: (s) => {
        if (this.call === call) onState(s);
      },
      startedAt: this.openedAt ?? performance.now(),
      audioOnly: this.audioOnly,
    });
    this.openedAt = null; // later calls of the visit measure from their own start
    for (const name of CALL_EVENTS) {
      call.addEventListener(name, (e) => {
        if (this.call !== call) return;
        this.showOwnQuality();
        this.dispatchEvent(new CustomEvent(name, { detail: e.detail }));
      });
    }
    this.call = call;
    this.showOwnQuality();
    this.showPeer(null);
    // After newCall returns: the caller's onState may refer to the call it is given.
    queueMicrotask(() => this.call === call && onState("new"));
    this.applyToggles();
    return call;
  }

  /** The person chose audio only (or video again): for this call and the next ones. */
  setAudioOnly(on) {
    this.audioOnly = Boolean(on);
    if (this.audioOnlyButton) {
      const key = this.audioOnly ? "stage.audio_only.off" : "stage.audio_only.on";
      this.audioOnlyButton.dataset.i18n = key;
      this.audioOnlyButton.textContent = t(key);
      this.audioOnlyButton.dataset.off = String(this.audioOnly);
      if (this.audioOnly) sessionStorage.setItem(AUDIO_ONLY_KEY, "1");
      else sessionStorage.removeItem(AUDIO_ONLY_KEY);
    }
    if (this.call) this.call.setAudioOnly(this.audioOnly);
    this.showOwnQuality();
  }

  /** Own connection's level and own paused video, in words. */
  showOwnQuality() {
    const call = this.call;
    const level = call && !call.closed ? call.level : null;
    this.quality.hidden = !level;
    this.quality.dataset.level = level || "";
    this.qualityText.textContent = level ? t(`stage.quality.${level}`) : "";
    const reason = call && !call.closed ? call.pauseReason : this.audioOnly ? "chosen" : null;
    this.ownPaused.hidden = !reason;
    this.ownPaused.dataset.reason = reason || "";
    this.ownPaused.textContent = reason ? t(`stage.own_paused.${reason}`) : "";
  }

  /** `call_status` from the other party: their level, and a note over their video when they send none. */
  onPeerStatus(p) {
    const call = this.call;
    if (!call || call.closed || p.visit_id !== call.visitId) return;
    if (p.call_id && call.callId && p.call_id !== call.callId) return; // of an earlier call
    call.handlePeerStatus(p);
    this.showPeer(p);
  }

  showPeer(p) {
    const level = p && p.level ? p.level : null;
    this.peerQuality.hidden = !level;
    this.peerQuality.dataset.level = level || "";
    this.peerQuality.textContent = level ? t(`stage.peer_quality.${this.peer}`, { level: t(`stage.level.${level}`) }) : "";
    const video = p && ["paused", "audio_only", "camera_off"].includes(p.video) ? p.video : "";
    this.remotePaused.hidden = !video;
    this.remotePaused.dataset.video = video;
    this.remotePaused.textContent = video ? t(`stage.remote_video_${video}.${this.peer}`) : "";
  }

  /** Close the call (telling the other page when notify); own camera stays on. */
  hangUp({ notify = false } = {}) {
    if (this.call) this.call.close({ notify });
    this.call = null;
    this.showOwnQuality();
    this.showPeer(null);
  }

  /** Release own camera and microphone and empty both pictures (and forget a choice of audio only). */
  release() {
    stopStream(this.media);
    this.media = null;
    this.mediaReady = null;
    this.local.srcObject = null;
    this.clearRemote();
    if (this.audioOnlyButton) sessionStorage.removeItem(AUDIO_ONLY_KEY); // the visit is over
  }

  /** Show the call's state (RTCPeerConnection.connectionState, or idle), in words. */
  showState(s, text) {
    this.stateEl.dataset.state = s;
    this.stateEl.textContent = text || callStateText(s);
  }

  async showRemote(stream) {
    if (this.remote.srcObject !== stream) this.remote.srcObject = stream;
    this.remoteEmpty.hidden = true;
    if (!(await playVideo(this.remote))) this.tapToPlay.hidden = false;
  }

  /** The browser wanted a tap before playing sound: this is it. */
  async playRemote() {
    this.tapToPlay.hidden = true;
    if (!(await playVideo(this.remote))) this.tapToPlay.hidden = false;
  }

  clearRemote() {
    this.remote.srcObject = null;
    this.remoteEmpty.hidden = false;
    this.showPeer(null);
  }

  flip(button) {
    button.dataset.off = String(button.dataset.off !== "true");
    this.applyToggles();
  }

  /** The buttons say what they will do; own tracks follow them (no renegotiation). */
  applyToggles() {
    const micOff = this.mic.dataset.off === "true";
    const camOff = this.cam.dataset.off === "true";
    this.mic.textContent = t(micOff ? "stage.mic.unmute" : "stage.mic.mute");
    this.cam.textContent = t(camOff ? "stage.cam.on" : "stage.cam.off");
    if (!this.media) return;
    for (const track of this.media.getTracks()) {
      track.enabled = track.kind === "audio" ? !micOff : !camOff;
    }
    if (this.call) this.call.statusChanged(); // the other side shows "camera off"
  }
}
