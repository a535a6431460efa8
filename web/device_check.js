// The patient's step 1: try camera and microphone before the visit (a
// preview, a level meter, pickers when there are several devices), explain
// what to do when that fails, and remember the choice for the call
// (sessionStorage, this tab only).

import { $ } from "/static/common.js";
import { t } from "/static/i18n.js";
import { LevelMeter, listDevices, openMedia, playVideo, stopStream } from "/static/media.js";

const PREFS_KEY = "telemed.patient.media";

/** The choice made in the device check: {chatOnly, videoDeviceId, audioDeviceId} (may be empty). */
export function mediaPrefs() {
  try {
    return JSON.parse(sessionStorage.getItem(PREFS_KEY) || "{}");
  } catch {
    return {};
  }
}

function saveMediaPrefs(prefs) {
  sessionStorage.setItem(PREFS_KEY, JSON.stringify({ ...mediaPrefs(), ...prefs }));
}

export function forgetMediaPrefs() {
  sessionStorage.removeItem(PREFS_KEY);
}

export class DeviceCheck {
  /** @param onDone called when the patient goes on (with or without camera) */
  constructor({ onDone }) {
    this.onDone = onDone;
    /** The preview's stream while the check runs; null otherwise. */
    this.preview = null;
    /** The microphone's LevelMeter of the last try; null before. */
    this.meter = null;
    $("#device-start").addEventListener("click", () => this.start());
    $("#device-retry").addEventListener("click", () => this.start());
    $("#device-next").addEventListener("click", () => this.leave({ chatOnly: false }));
    $("#device-skip").addEventListener("click", () => this.leave({ chatOnly: true }));
    $("#camera-select").addEventListener("change", () => this.start());
    $("#mic-select").addEventListener("change", () => this.start());
  }

  async start() {
    this.stop();
    $("#device-problem").hidden = true;
    $("#device-start").disabled = true;
    $("#mic-hint").textContent = "";
    try {
      const opened = await openMedia({
        videoDeviceId: $("#camera-select").value || "",
        audioDeviceId: $("#mic-select").value || "",
      });
      this.preview = opened.stream;
      $("#preview").srcObject = opened.stream;
      $("#preview-empty").hidden = opened.video;
      await playVideo($("#preview"));
      this.meter = new LevelMeter($("#mic-level"));
      await this.meter.start(opened.stream);
      setTimeout(() => this.checkMicHeard(), 5000);
      await this.fillPickers(opened.stream);
      this.showResult(opened);
    } catch (problem) {
      this.showProblem(problem);
    } finally {
      $("#device-start").disabled = false;
    }
  }

  showResult(opened) {
    $("#device-start").hidden = true;
    $("#device-retry").hidden = true;
    $("#device-next").hidden = false;
    $("#device-skip").hidden = true;
    if (!opened.video || !opened.audio) {
      const missing = !opened.video ? "no_camera" : "no_mic";
      $("#device-problem-title").textContent = t(`device.${missing}.title`);
      $("#device-problem-text").textContent = t(`device.${missing}.text`);
      $("#device-problem").hidden = false;
      $("#device-next").textContent = t(`device.${missing}.next`);
    } else {
      $("#device-next").textContent = t("device.next");
    }
    $("#device-next").focus();
  }

  showProblem(problem) {
    $("#device-problem-title").textContent = problem.title || t("device.problem");
    $("#device-problem-text").textContent = problem.message;
    $("#device-problem").hidden = false;
    $("#device-start").hidden = true;
    $("#device-retry").hidden = false;
    $("#device-next").hidden = true;
    $("#device-skip").hidden = false;
    $("#preview-empty").hidden = false;
    $("#device-retry").focus();
  }

  checkMicHeard() {
    if (!this.meter || !this.meter.context) return;
    $("#mic-hint").textContent = t(this.meter.peak < 0.08 ? "device.mic_quiet" : "device.mic_heard");
  }

  async fillPickers(stream) {
    const { cameras, microphones } = await listDevices();
    const current = (kind) => {
      const track = stream.getTracks().find((t) => t.kind === kind);
      return track ? track.getSettings().deviceId : "";
    };
    fillSelect($("#camera-select"), cameras, current("video"), "device.camera_n");
    fillSelect($("#mic-select"), microphones, current("audio"), "device.microphone_n");
    $("#device-pickers").hidden = cameras.length < 2 && microphones.length < 2;
  }

  /** Stop the preview and the meter (leaving the step, or the page is done). */
  stop() {
    if (this.meter) this.meter.stop();
    stopStream(this.preview);
    this.preview = null;
    $("#preview").srcObject = null;
  }

  leave({ chatOnly }) {
    saveMediaPrefs({
      chatOnly,
      videoDeviceId: $("#camera-select").value || "",
      audioDeviceId: $("#mic-select").value || "",
    });
    this.stop();
    this.onDone();
  }
}

/** Devices by their own names (translate="no": "FaceTime HD Camera"), or numbered when the browser gives none. */
function fillSelect(select, devices, selected, fallbackKey) {
  select.replaceChildren(
    ...devices.map((d, i) => {
      const option = new Option(d.label || t(fallbackKey, { n: i + 1 }), d.deviceId);
      if (d.label) option.setAttribute("translate", "no");
      option.selected = d.deviceId === selected;
      return option;
    }),
  );
}
