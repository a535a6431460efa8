// The call's own controls beside microphone and camera, the same on every
// page that shows a call (patient, doctor, guest): how long the call has
// lasted, full screen for the call area, switching between front and back
// camera, choosing camera, microphone and speaker during the call, and (for
// the patient and guests) leaving the call and coming back. Failures are said
// in plain words next to the control that was used.
//
// The page's HTML has a call area (the stage, the control bar and its notes)
// and the bar (.call-controls) with the microphone and camera buttons; this
// module adds its buttons to the bar (before `before`, the doctor's "End
// visit", which stays the last one) and its panels under it. Device switches
// go through local_tracks.js, which every Call and the chart leg follow.

import { h } from "/static/common.js";
import { t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { callsOf, canChooseSpeaker, listAllDevices, localStreamOf, switchDevice } from "/static/local_tracks.js";

/** Where this tab keeps when the call of a visit first connected (a reload keeps counting). */
const STARTED_KEY = "telemed.callStarted.";

/** "03:07", or "1:03:07" past an hour. */
export function formatCallTime(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  return hours ? `${hours}:${two(minutes)}:${two(total % 60)}` : `${two(minutes)}:${two(total % 60)}`;
}

/** The words for a device that did not open or switch: what happened and what to do. */
export function deviceProblemText(kind, err) {
  const name = err && err.name;
  const device = kind === "video" ? "camera" : kind === "audio" ? "microphone" : "speaker";
  let what = "other";
  if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") what = "denied";
  else if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") what = "busy";
  else if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") what = "missing";
  if (what === "other") console.warn("device switch failed:", name || err);
  return t(`controls.problem.${what}.${device}`);
}

function fullscreenElement() {
  return document.fullscreenElement || document.webkitFullscreenElement || null;
}

/** The Fullscreen API works for elements here (not on iPhone Safari). */
function canFullscreen(el) {
  return Boolean((document.fullscreenEnabled || document.webkitFullscreenEnabled) && (el.requestFullscreen || el.webkitRequestFullscreen));
}

export class CallControls {
  /**
   * @param view the page's CallView (its stream, its calls)
   * @param area the element shown full screen (stage, controls, notes); null: the bar's parent
   * @param bar the call's control bar
   * @param before the bar's button to put these in front of (null: at the end)
   * @param leaver an object with leave() and rejoin() (the patient's and guests' call); null: no leave button
   * @param onLeave called once the person left the call; onRejoin once they are back
   */
  constructor({ view, area, bar, before = null, leaver = null, onLeave = () => {}, onRejoin = () => {} }) {
    this.view = view;
    this.area = area || bar.parentElement;
    this.area.classList.add("call-area"); // its full-screen layout (call_controls.css)
    this.bar = bar;
    this.leaver = leaver && typeof leaver.leave === "function" && typeof leaver.rejoin === "function" ? leaver : null;
    this.onLeave = onLeave;
    this.onRejoin = onRejoin;
    /** Date.now() when the current visit's call first connected on this tab (null: not yet). */
    this.startedAt = null;
    this.visitId = null;
    this.ticker = 0;
    this.running = false;
    this.left = false;
    /** Where remote sound plays ("": the default output). */
    this.sinkId = "";
    this.watched = new WeakSet();
    this.build(before);
    view.addEventListener("localtrackchange", (e) => this.watchTrack(e.detail.track));
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener("devicechange", () => this.running && this.refreshDevices());
    }
    for (const name of ["fullscreenchange", "webkitfullscreenchange"]) document.addEventListener(name, () => this.showFullscreen());
    this.sinkWatch = new MutationObserver(() => this.applySink());
  }

  // -- the elements ----------------------------------------------------------------

  build(before) {
    const button = (id, key, onClick, extra = {}) =>
      h("button", { id, type: "button", class: "btn", dataset: { i18n: key }, text: t(key), on: { click: onClick }, ...extra });
    this.timer = h("p", { id: "call-timer", class: "call-timer", role: "timer", hidden: true });
    this.switchButton = button("switch-camera", "controls.switch_camera", () => this.switchCamera(), { hidden: true });
    this.devicesButton = button("device-settings", "controls.devices", () => this.togglePanel(), { "aria-expanded": "false", "aria-controls": "device-panel" });
    this.fullButton = button("fullscreen", "controls.fullscreen.enter", () => this.toggleFullscreen(), { hidden: !canFullscreen(this.area) });
    const mine = [this.switchButton, this.devicesButton, this.fullButton];
    if (this.leaver) {
      this.leaveButton = button("leave-call", "controls.leave", () => this.leave());
      this.leaveButton.classList.add("btn-danger-outline");
      mine.push(this.leaveButton);
    }
    for (const el of mine) this.bar.insertBefore(el, before);
    this.bar.before(this.timer);

    this.status = h("p", { id: "controls-status", class: "controls-status small", role: "status", "aria-live": "polite" });
    this.problem = h("p", { id: "controls-problem", class: "controls-problem", role: "alert", hidden: true });
    const select = (id, key) => [
      h("label", { for: id, text: t(key) }),
      h("select", { id, on: { change: (e) => this.chose(id, e.target) } }),
    ];
    this.panel = h(
      "section",
      { id: "device-panel", class: "device-panel", hidden: true, "aria-labelledby": "device-panel-title" },
      h("h2", { id: "device-panel-title", text: t("controls.devices_title") }),
      h("div", { class: "device-pickers" },
        h("div", { class: "field", dataset: { kind: "video" } }, ...select("call-camera", "controls.camera")),
        h("div", { class: "field", dataset: { kind: "audio" } }, ...select("call-microphone", "controls.microphone")),
        h("div", { class: "field", dataset: { kind: "speaker" }, hidden: !canChooseSpeaker() }, ...select("call-speaker", "controls.speaker")),
      ),
      h("p", { class: "muted small", hidden: canFullscreen(this.area), text: t("controls.fullscreen.unavailable") }),
      h("div", { class: "actions" }, button("device-done", "controls.done", () => this.togglePanel(false))),
    );
    // The stage says "You left the call" (call_view.js); this says what it means and brings them back.
    this.leftBox = h(
      "div",
      { id: "call-left", class: "call-left", hidden: true },
      h("p", { text: t("controls.left.text") }),
      h("div", { class: "actions" }, button("rejoin-call", "controls.rejoin", () => this.rejoin(), { class: "btn btn-primary" })),
    );
    this.bar.after(this.status, this.problem, this.panel, this.leftBox);
    this.panel.addEventListener("keydown", (e) => e.key === "Escape" && this.togglePanel(false));
  }

  // -- the visit's call ------------------------------------------------------------

  /** The call screen opened: the timer runs, own devices are watched once they are open. */
  async start() {
    this.running = true;
    this.showLeft(false);
    this.say("");
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
    this.tick();
    this.sinkWatch.observe(this.area, { childList: true, subtree: true });
    const stream = await (this.view.mediaReady || Promise.resolve(null));
    if (!this.running) return;
    if (stream) for (const track of stream.getTracks()) this.watchTrack(track);
    await this.refreshDevices();
  }

  /** The visit is over on this page (or the doctor left it): timer off, panels closed, full screen left. */
  stop() {
    this.running = false;
    clearInterval(this.ticker);
    this.sinkWatch.disconnect();
    if (this.visitId) sessionStorage.removeItem(STARTED_KEY + this.visitId);
    this.visitId = null;
    this.startedAt = null;
    this.timer.hidden = true;
    this.togglePanel(false, { focus: false });
    this.showLeft(false);
    this.problem.hidden = true;
    if (fullscreenElement() === this.area) this.exitFullscreen();
  }

  /** Every second: the call's time since it first connected (kept across reloads of the tab). */
  tick() {
    const calls = callsOf(this.view);
    const visitId = calls.length ? calls[0].visitId : this.visitId;
    if (visitId && visitId !== this.visitId) {
      this.visitId = visitId;
      const kept = Number(sessionStorage.getItem(STARTED_KEY + visitId));
      this.startedAt = kept > 0 ? kept : null;
    }
    if (this.startedAt === null && calls.some((c) => c.pc && c.pc.connectionState === "connected")) {
      this.startedAt = Date.now();
      if (this.visitId) sessionStorage.setItem(STARTED_KEY + this.visitId, String(this.startedAt));
    }
    if (this.startedAt === null) return;
    const time = formatCallTime(Date.now() - this.startedAt);
    this.timer.hidden = false;
    this.timer.dataset.time = time;
    this.timer.textContent = t("controls.timer", { time });
  }

  // -- feedback ----------------------------------------------------------------------

  /** A short confirmation under the bar (polite): a string, or nodes (tNodes). */
  say(text) {
    if (Array.isArray(text)) this.status.replaceChildren(...text);
    else this.status.textContent = text;
    if (text.length) this.problem.hidden = true;
  }

  /** A failure in plain words (an alert), under the bar. */
  fail(text) {
    this.status.textContent = "";
    this.problem.textContent = text;
    this.problem.hidden = false;
  }

  // -- devices ---------------------------------------------------------------------

  currentTrack(kind) {
    const stream = localStreamOf(this.view);
    return stream ? stream.getTracks().find((t) => t.kind === kind) || null : null;
  }

  /** Fill the pickers and show the camera switch where there are two cameras or more. */
  async refreshDevices() {
    let devices;
    try {
      devices = await listAllDevices();
    } catch {
      return;
    }
    const fill = (id, list, current, fallbackKey) => {
      const el = document.getElementById(id);
      el.replaceChildren(
        ...list.map((d, i) => h("option", { value: d.deviceId, translate: d.label ? "no" : null, text: d.label || t(fallbackKey, { n: i + 1 }) })),
      );
      if (current !== null && list.some((d) => d.deviceId === current)) el.value = current;
    };
    const camera = this.currentTrack("video");
    const microphone = this.currentTrack("audio");
    const deviceOf = (track) => (track && track.getSettings ? track.getSettings().deviceId || null : null);
    fill("call-camera", devices.cameras, deviceOf(camera), "controls.camera_n");
    fill("call-microphone", devices.microphones, deviceOf(microphone), "controls.microphone_n");
    fill("call-speaker", devices.speakers, this.sinkId || "default", "controls.speaker_n");
    this.panel.querySelector('[data-kind="video"]').hidden = !camera || devices.cameras.length === 0;
    this.panel.querySelector('[data-kind="audio"]').hidden = !microphone || devices.microphones.length === 0;
    this.panel.querySelector('[data-kind="speaker"]').hidden = !canChooseSpeaker() || devices.speakers.length === 0;
    this.switchButton.hidden = !camera || devices.cameras.length < 2;
    this.cameras = devices.cameras;
  }

  togglePanel(open = this.panel.hidden, { focus = true } = {}) {
    this.panel.hidden = !open;
    this.devicesButton.setAttribute("aria-expanded", String(open));
    if (open) {
      this.refreshDevices();
      if (focus) this.panel.querySelector("select:not([hidden])")?.focus();
    } else if (focus) {
      this.devicesButton.focus();
    }
  }

  /** A picker changed: switch to that device. */
  async chose(id, select) {
    if (id === "call-speaker") {
      await this.useSpeaker(select.value);
      return;
    }
    const kind = id === "call-camera" ? "video" : "audio";
    select.disabled = true;
    const err = await this.useDevice(kind, { deviceId: select.value }, select.selectedOptions[0]?.textContent || "");
    select.disabled = false;
    select.focus();
    if (err) await this.refreshDevices(); // back to what is in use
  }

  /**
   * Switch own camera or microphone; say what happened.
   * @returns null when the new device is in use, else the browser's error
   */
  async useDevice(kind, want, name) {
    this.say(t(kind === "video" ? "controls.switching.camera" : "controls.switching.microphone"));
    try {
      const track = await switchDevice(this.view, kind, want);
      const facing = kind === "video" && track.getSettings ? track.getSettings().facingMode : "";
      this.say(
        facing === "environment" || facing === "user"
          ? t(`controls.now_using.${facing}`)
          : tNodes(kind === "video" ? "controls.now_using.camera" : "controls.now_using.microphone", { name: untranslated(name || track.label || "") }),
      );
      return null;
    } catch (err) {
      this.fail(deviceProblemText(kind, err));
      return err || new Error("switch failed");
    }
  }

  /**
   * The front/back switch: on a phone the other facing camera; elsewhere the
   * next camera in the list.
   */
  async switchCamera() {
    const camera = this.currentTrack("video");
    if (!camera) return;
    this.switchButton.disabled = true;
    try {
      const facing = camera.getSettings ? camera.getSettings().facingMode : "";
      if (facing === "user" || facing === "environment") {
        const other = facing === "user" ? "environment" : "user";
        const err = await this.useDevice("video", { facingMode: other });
        // No camera facing the other way: go through the cameras instead.
        if (!err || err.name !== "OverconstrainedError") return;
      }
      await this.refreshDevices();
      const list = this.cameras || [];
      if (list.length < 2) return;
      const at = list.findIndex((d) => d.deviceId === camera.getSettings().deviceId);
      const next = list[(at + 1) % list.length];
      await this.useDevice("video", { deviceId: next.deviceId }, next.label || t("controls.camera_n", { n: (at + 1) % list.length + 1 }));
    } finally {
      this.switchButton.disabled = false;
      this.switchButton.focus();
      this.refreshDevices();
    }
  }

  /** Play the others' sound on this output (where the browser lets the page choose). */
  async useSpeaker(sinkId) {
    const previous = this.sinkId;
    this.sinkId = sinkId === "default" ? "" : sinkId;
    try {
      await this.applySink({ strict: true });
      const name = document.getElementById("call-speaker").selectedOptions[0]?.textContent || "";
      this.say(tNodes("controls.now_using.speaker", { name: untranslated(name) }));
    } catch (err) {
      this.sinkId = previous;
      this.fail(deviceProblemText("speaker", err));
      await this.applySink().catch(() => {});
    }
  }

  /** Every media element of the call area plays on the chosen output (tiles come and go). */
  async applySink({ strict = false } = {}) {
    if (!canChooseSpeaker()) return;
    const pending = [];
    for (const el of this.area.querySelectorAll("video, audio")) {
      if (el.id === "local-video" || el.sinkId === this.sinkId) continue;
      pending.push(el.setSinkId(this.sinkId));
    }
    if (strict) await Promise.all(pending);
    else await Promise.allSettled(pending);
  }

  /** Own camera or microphone ended by itself (unplugged, taken by the system): say so, offer the picker. */
  watchTrack(track) {
    if (!track || this.watched.has(track)) return;
    this.watched.add(track);
    track.addEventListener("ended", () => {
      if (!this.running || this.currentTrack(track.kind) !== track) return;
      this.fail(t(track.kind === "video" ? "controls.ended.camera" : "controls.ended.microphone"));
      this.togglePanel(true, { focus: false });
      document.getElementById(track.kind === "video" ? "call-camera" : "call-microphone").focus();
    });
  }

  // -- full screen -------------------------------------------------------------------

  async toggleFullscreen() {
    if (fullscreenElement() === this.area) {
      await this.exitFullscreen();
      return;
    }
    try {
      await (this.area.requestFullscreen ? this.area.requestFullscreen() : this.area.webkitRequestFullscreen());
    } catch {
      this.fail(t("controls.fullscreen.failed"));
    }
  }

  exitFullscreen() {
    const exit = document.exitFullscreen || document.webkitExitFullscreen;
    return exit ? Promise.resolve(exit.call(document)).catch(() => {}) : Promise.resolve();
  }

  showFullscreen() {
    const on = fullscreenElement() === this.area;
    const key = on ? "controls.fullscreen.exit" : "controls.fullscreen.enter";
    this.fullButton.dataset.i18n = key;
    this.fullButton.textContent = t(key);
    this.area.dataset.fullscreen = String(on);
  }

  // -- leaving and coming back --------------------------------------------------------

  async leave() {
    this.leaveButton.disabled = true;
    try {
      await this.leaver.leave();
    } catch {
      this.fail(t("controls.leave_failed"));
      return;
    } finally {
      this.leaveButton.disabled = false;
    }
    this.togglePanel(false, { focus: false });
    if (fullscreenElement() === this.area) await this.exitFullscreen();
    this.showLeft(true);
    this.onLeave();
    this.leftBox.querySelector("#rejoin-call").focus();
  }

  async rejoin() {
    const button = this.leftBox.querySelector("#rejoin-call");
    button.disabled = true;
    try {
      await this.leaver.rejoin();
    } catch {
      this.fail(t("controls.rejoin_failed"));
      return;
    } finally {
      button.disabled = false;
    }
    this.showLeft(false);
    this.say(t("controls.rejoined"));
    this.onRejoin();
    if (this.leaveButton) this.leaveButton.focus();
  }

  /** While the person is out of the call: the bar gives way to "You left the call" and Rejoin. */
  showLeft(left) {
    this.left = left;
    this.area.dataset.left = String(left);
    this.leftBox.hidden = !left;
    this.bar.hidden = left;
    if (left) this.say("");
  }
}
