// Camera and microphone: opening them with fallbacks, plain-language help when
// that fails, and a microphone level meter (WebAudio).

import { t } from "/static/i18n.js";

/** Constraints for the call: modest video, fine on phones and slow links. */
export const VIDEO = { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24 } };
export const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export class MediaProblem extends Error {
  constructor(kind, title, text) {
    super(text);
    this.kind = kind;
    this.title = title;
  }
}

/** Turn a getUserMedia failure into words a patient can act on. */
export function explainMediaError(err) {
  if (err instanceof MediaProblem) return err;
  const name = err && err.name;
  let kind = "other";
  if (name === "NotAllowedError" || name === "PermissionDeniedError") kind = "denied";
  else if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") kind = "missing";
  else if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") kind = "busy";
  else if (name === "SecurityError" || name === "insecure") kind = "insecure";
  // The browser's own name of the failure helps whoever supports the patient, not the patient.
  if (kind === "other") console.warn("camera or microphone did not start:", name || err);
  return new MediaProblem(kind, t(`media.${kind}.title`), t(`media.${kind}.text`));
}

/**
 * Open camera and microphone, falling back to the microphone or the camera
 * alone when one of them is missing. Resolves with {stream, video, audio}
 * (booleans: what was obtained); throws a MediaProblem.
 */
export async function openMedia({ videoDeviceId = "", audioDeviceId = "" } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw explainMediaError({ name: window.isSecureContext ? "NotFoundError" : "insecure" });
  }
  const video = videoDeviceId ? { ...VIDEO, facingMode: undefined, deviceId: { exact: videoDeviceId } } : VIDEO;
  const audio = audioDeviceId ? { ...AUDIO, deviceId: { exact: audioDeviceId } } : AUDIO;
  const attempts = [
    { video, audio },
    { video: false, audio },
    { video, audio: false },
  ];
  let firstError = null;
  for (const constraints of attempts) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia(constraints);
      return { stream, video: stream.getVideoTracks().length > 0, audio: stream.getAudioTracks().length > 0 };
    } catch (err) {
      firstError = firstError || err;
      // Only a missing device is worth another try with less; a refusal is final.
      if (!["NotFoundError", "DevicesNotFoundError", "OverconstrainedError", "NotReadableError"].includes(err.name)) break;
    }
  }
  throw explainMediaError(firstError);
}

export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/** Cameras and microphones, once permission was given (labels are empty before). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return { cameras: [], microphones: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput" && d.deviceId),
    microphones: devices.filter((d) => d.kind === "audioinput" && d.deviceId),
  };
}

/**
 * A live microphone level shown on a <meter> (0..1), so a patient can see
 * that they are heard before the visit.
 */
export class LevelMeter {
  constructor(meter) {
    this.meter = meter;
    this.context = null;
    this.frame = 0;
    this.peak = 0;
  }

  async start(stream) {
    this.stop();
    if (!stream.getAudioTracks().length) return;
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    this.context = new Context();
    if (this.context.state === "suspended") await this.context.resume().catch(() => {});
    const source = this.context.createMediaStreamSource(stream);
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const rms = Math.sqrt(sum / samples.length);
      // Speech sits around 0.02-0.2 RMS; stretch it so talking fills most of the bar.
      const level = Math.min(1, Math.sqrt(rms) * 1.6);
      this.peak = Math.max(this.peak, level);
      this.meter.value = level;
      this.frame = requestAnimationFrame(tick);
    };
    tick();
  }

  stop() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    if (this.meter) this.meter.value = 0;
    if (this.context) this.context.close().catch(() => {});
    this.context = null;
  }
}

/** Play a <video>; resolves false when the browser wants a tap first (autoplay rules). */
export async function playVideo(video) {
  try {
    await video.play();
    return true;
  } catch (err) {
    return err && err.name === "NotAllowedError" ? false : true;
  }
}
