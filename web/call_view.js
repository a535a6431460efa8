// The call as every page shows it (patient's, doctor's, guest's alike): own
// camera and microphone in the small picture, the others' videos in tiles
// (tiles.js: the speaker's or the pinned one large), the microphone and
// camera buttons, and the call's state line. It holds the Calls (call.js),
// one per other party, and the page's own MediaStream. Who offers, and when a
// call is started over, is the mesh's business (mesh.js); the "main" party
// (the doctor for the patient and guests, the patient for the doctor) is the
// one whose call the state line, the quality lines and the chart leg follow.
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
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { openMedia, playVideo, stopStream } from "/static/media.js";
import { Tiles, nameOf, tileElement } from "/static/tiles.js";

/** How often the others' audio levels are read to find who speaks (ms). */
const SPEAKER_POLL_MS = 1000;
/** An audio level (0..1) above which someone counts as speaking. */
const SPEAKING_LEVEL = 0.02;

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
      h("p", { id: "call-people", class: "call-people", role: "status", "aria-live": "polite", hidden: true }),
    ),
    h(
      "div",
      { class: "stage tiles-stage", dataset: { count: "1" } },
      h("div", { id: "tiles", class: "tiles", role: "group", "aria-label": t("tiles.label") }, tileElement(other, { main: true })),
      h("p", { id: "you-left", class: "video-placeholder you-left", hidden: true, text: t("tiles.you_left") }),
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
    /** The Calls by the party on their other end. */
    this.byPeer = new Map();
    this.stateEl = $("#call-state");
    this.tapToPlay = $("#tap-to-play");
    this.local = $("#local-video");
    this.youLeft = $("#you-left");
    this.people = $("#call-people");
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
    /** The main party on the other end: "doctor" or "patient" (mountStage). */
    this.peer = this.peerQuality.dataset.peer;
    this.mainPeer = this.peer;
    this.tiles = new Tiles($("#tiles"), { mainPeer: this.mainPeer, onNeedTap: () => (this.tapToPlay.hidden = false) });
    /** What each party is, as `call_peers` told ({party, kind, name, language}). */
    this.infos = new Map();
    /** The person chose audio only (kept for the next calls of the visit). */
    this.audioOnly = false;
    this.audioOnlyButton = document.getElementById("toggle-audio-only");
    if (this.audioOnlyButton) {
      this.audioOnlyButton.addEventListener("click", () => this.setAudioOnly(!this.audioOnly));
      if (sessionStorage.getItem(AUDIO_ONLY_KEY) === "1") this.setAudioOnly(true);
    }
    /** performance.now() when own media started opening (the admit); the next new call measures from it. */
    this.openedAt = null;
    /** /call sockets listened to for the others' `call_status`. */
    this.sockets = new Set();
    this.speakerTimer = 0;
    /** The loudest party of the last reading, and how many readings in a row. */
    this.loudest = { party: null, times: 0 };
  }

  /** The main party's call (the state line, the quality lines and the chart leg follow it); else any live one. */
  get call() {
    const main = this.byPeer.get(this.mainPeer);
    if (main && !main.closed) return main;
    return this.calls()[0] || main || null;
  }

  /** Every live Call, one per other party. */
  calls() {
    return [...this.byPeer.values()].filter((c) => !c.closed);
  }

  /** Own camera and microphone (null: none). */
  get localStream() {
    return this.media;
  }

  /**
   * Open own camera and microphone, once (again after release()).
   * @param devices {videoDeviceId, audioDeviceId} chosen in the device check
   * @param without a note to show instead of opening anything (chat only), or null
   * @param problemNote (MediaProblem) => the note shown when opening fails
   * @param stream a stream already open (the guest's device check) to use instead
   * @returns the promise of the stream, or of null
   */
  openLocal({ devices = {}, without = null, problemNote, stream = null }) {
    if (!this.mediaReady) this.openedAt = performance.now();
    this.mediaReady = this.mediaReady || this.startLocal(devices, without, problemNote, stream);
    return this.mediaReady;
  }

  async startLocal(devices, without, problemNote, given) {
    if (without) {
      this.showMediaNote(without);
      return null;
    }
    try {
      const opened = given
        ? { stream: given, video: given.getVideoTracks().length > 0, audio: given.getAudioTracks().length > 0 }
        : await openMedia(devices);
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
   * A new peer connection with a party (the main one by default); its old one
   * (if any) is closed. onState hears the new connection's states only
   * (starting with "new").
   * @param peer the party on the other end
   * @param to the party put in the call's messages (null: none)
   */
  newCall({ socket, visitId, iceServers, onState, peer = this.mainPeer, to = null }) {
    const old = this.byPeer.get(peer);
    if (old) old.close();
    if (!this.sockets.has(socket)) {
      this.sockets.add(socket);
      socket.on("call_status", (p) => this.onPeerStatus(p));
    }
    const call = new Call({
      socket,
      visitId,
      iceServers,
      localStream: this.media,
      onRemoteStream: (stream) => this.showRemote(stream, peer),
      onState: (s) => {
        if (this.byPeer.get(peer) === call) onState(s);
      },
      startedAt: this.openedAt ?? performance.now(),
      audioOnly: this.audioOnly,
      peer,
      to,
    });
    this.openedAt = null; // later calls of the visit measure from their own start
    for (const name of CALL_EVENTS) {
      call.addEventListener(name, (e) => {
        if (this.call !== call) return;
        this.showOwnQuality();
        this.dispatchEvent(new CustomEvent(name, { detail: e.detail }));
      });
    }
    this.byPeer.set(peer, call);
    this.tiles.ensure(peer, this.infos.get(peer) || null);
    this.showOwnQuality();
    if (peer === this.mainPeer) this.showPeer(null);
    this.tiles.setStatus(peer, null);
    // After newCall returns: the caller's onState may refer to the call it is given.
    queueMicrotask(() => this.byPeer.get(peer) === call && onState("new"));
    this.applyToggles();
    this.watchSpeakers();
    return call;
  }

  /** The person chose audio only (or video again): for these calls and the next ones. */
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
    for (const call of this.calls()) call.setAudioOnly(this.audioOnly);
    this.showOwnQuality();
  }

  /** Own connection's level (the main call's) and own paused video, in words. */
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

  /** `call_status` from another party: their tile's flags; for the main party also their level. */
  onPeerStatus(p) {
    const party = p.from || this.mainPeer;
    const call = this.byPeer.get(party);
    if (!call || call.closed || p.visit_id !== call.visitId) return;
    if (p.call_id && call.callId && p.call_id !== call.callId) return; // of an earlier call
    call.handlePeerStatus(p);
    this.tiles.setStatus(party, p);
    if (party === this.mainPeer) this.showPeer(p);
  }

  /** The main party's level in words (their note over the video is the tile's). */
  showPeer(p) {
    const level = p && p.level ? p.level : null;
    this.peerQuality.hidden = !level;
    this.peerQuality.dataset.level = level || "";
    this.peerQuality.textContent = level ? t(`stage.peer_quality.${this.peer}`, { level: t(`stage.level.${level}`) }) : "";
    if (!p) this.tiles.setStatus(this.mainPeer, null);
  }

  // -- the people of the call ----------------------------------------------------------

  /** A party's tile, with their name and why they are there once known (`call_peers`). */
  ensureTile(party, info) {
    if (info) this.infos.set(party, info);
    this.tiles.ensure(party, info || this.infos.get(party) || null);
  }

  /** A party is no longer in the call: its tile goes. */
  removeTile(party) {
    this.tiles.remove(party);
    this.infos.delete(party);
  }

  /** A note over a party's tile ("reconnecting", "left"; null: none). */
  setTileNote(party, note) {
    this.tiles.setNote(party, note);
  }

  /**
   * Say in plain words what happened to someone ("Marta Ruiz left the call",
   * "… is reconnecting", "… is back"), on the page and to screen readers.
   */
  announce(party, what) {
    const info = this.infos.get(party) || null;
    const name = info && info.name ? untranslated(info.name) : nameOf(party, info);
    this.people.replaceChildren(...tNodes(`tiles.people.${what}`, { name }));
    this.people.dataset.what = what;
    this.people.dataset.party = party;
    this.people.hidden = false;
    if (what === "left") this.tiles.setNote(party, "left");
    else if (what === "back") this.tiles.setNote(party, null);
  }

  /** This page left the call (or is back in it): the stage says so. */
  showLeft(left) {
    this.youLeft.hidden = !left;
    this.youLeft.closest(".stage").dataset.left = String(left);
    this.showOwnQuality();
    if (left) this.showPeer(null);
    // The stage shows "You left the call"; the line only announces it (screen readers).
    this.people.classList.toggle("visually-hidden", left);
    if (left) {
      this.people.replaceChildren(t("tiles.you_left"));
      this.people.dataset.what = "you_left";
      this.people.hidden = false;
    } else {
      this.people.hidden = true;
    }
  }

  /** Every second while in a call: the loudest of the others (two readings in a row) gets the large tile. */
  watchSpeakers() {
    if (this.speakerTimer) return;
    this.speakerTimer = setInterval(() => this.readLevels(), SPEAKER_POLL_MS);
  }

  async readLevels() {
    const calls = this.calls();
    if (calls.length === 0) {
      clearInterval(this.speakerTimer);
      this.speakerTimer = 0;
      return;
    }
    let best = { party: null, level: SPEAKING_LEVEL };
    for (const call of calls) {
      let level = 0;
      try {
        (await call.pc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "audio") level = Math.max(level, s.audioLevel || 0);
        });
      } catch {
        continue; // closed meanwhile
      }
      if (call.peerAudio === "muted") level = 0;
      if (level > best.level) best = { party: call.peer, level };
    }
    this.loudest = best.party === this.loudest.party ? { party: best.party, times: this.loudest.times + 1 } : { party: best.party, times: 1 };
    if (this.loudest.party && this.loudest.times >= 2) this.tiles.setSpeaker(this.loudest.party);
  }

  // -- the end ---------------------------------------------------------------------------

  /** Close every call (telling the other pages when notify); own camera stays on. */
  hangUp({ notify = false } = {}) {
    for (const call of this.byPeer.values()) call.close({ notify });
    this.byPeer.clear();
    this.showOwnQuality();
    this.showPeer(null);
  }

  /** Release own camera and microphone and empty the pictures (and forget a choice of audio only). */
  release() {
    stopStream(this.media);
    this.media = null;
    this.mediaReady = null;
    this.local.srcObject = null;
    for (const party of [...this.tiles.tiles.keys()]) this.clearRemote(party);
    if (this.audioOnlyButton) sessionStorage.removeItem(AUDIO_ONLY_KEY); // the visit is over
  }

  /** Show the call's state (RTCPeerConnection.connectionState, or idle), in words. */
  showState(s, text) {
    this.stateEl.dataset.state = s;
    this.stateEl.textContent = text || callStateText(s);
  }

  showRemote(stream, party = this.mainPeer) {
    return this.tiles.show(party, stream);
  }

  /** The browser wanted a tap before playing sound: this is it. */
  async playRemote() {
    this.tapToPlay.hidden = true;
    if (!(await this.tiles.playAll())) this.tapToPlay.hidden = false;
  }

  /** No video from a party now (the main one by default). */
  clearRemote(party = this.mainPeer) {
    this.tiles.clear(party);
    if (party === this.mainPeer) this.showPeer(null);
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
    for (const call of this.calls()) call.statusChanged(); // the others show "muted", "camera off"
  }
}
