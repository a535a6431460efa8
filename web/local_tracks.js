// Own camera and microphone during a call: switching to another device (the
// back camera, another microphone) without renegotiating anything.
//
// The page's CallView holds one MediaStream (`localStream`; `media` before the
// mesh) that every Call and the chart leg send from. A switch opens the new
// device, swaps its track into that stream (the old one is stopped), puts it
// on the sender of that kind of every live Call with RTCRtpSender.replaceTrack
// (a Call whose video is paused keeps sending none), and dispatches
// "localtrackchange" {kind, track, old} on the view: the chart leg follows it
// (chart_leg.js) so the record has the new camera or microphone too. A muted
// microphone or a camera turned off stays so on the new track.

import { AUDIO, VIDEO } from "/static/media.js";

/** The page's own stream (null: it has none, the call only receives). */
export function localStreamOf(view) {
  return view.localStream ?? view.media ?? null;
}

/** Every live Call of the page (one per other person in a mesh; the one call before it). */
export function callsOf(view) {
  if (typeof view.calls === "function") return view.calls();
  return view.call && !view.call.closed ? [view.call] : [];
}

/** The transceiver that sends own `kind` on a peer connection, or null (it only receives that kind). */
function sendingTransceiver(pc, kind) {
  for (const transceiver of pc.getTransceivers()) {
    if (transceiver.receiver.track.kind !== kind || transceiver.stopped) continue;
    if (transceiver.direction === "sendrecv" || transceiver.direction === "sendonly") return transceiver;
  }
  return null;
}

/**
 * Put `track` in place of the own track of its kind: in the page's stream
 * (the old track stopped), on every call's sender of that kind, and tell the
 * view's listeners ("localtrackchange").
 * @returns a promise settled once every sender has the new track
 */
export function replaceLocalTrack(view, track) {
  const stream = localStreamOf(view);
  if (!stream) throw new Error("no own stream to put a track in");
  const kind = track.kind;
  const old = stream.getTracks().find((t) => t.kind === kind) || null;
  if (old === track) return Promise.resolve();
  if (old) {
    track.enabled = old.enabled; // muted or camera off stays so
    stream.removeTrack(old);
  }
  stream.addTrack(track);
  if (old) old.stop();
  const sent = [];
  for (const call of callsOf(view)) {
    if (call.closed || !call.pc) continue;
    const transceiver = sendingTransceiver(call.pc, kind);
    if (!transceiver) continue;
    const wanted = kind === "video" && call.videoPaused ? null : track;
    if (transceiver.sender.track !== wanted) sent.push(transceiver.sender.replaceTrack(wanted).catch(() => {}));
  }
  showOwnPicture(stream);
  view.dispatchEvent(new CustomEvent("localtrackchange", { detail: { kind, track, old } }));
  // The buttons' state (mute, camera off) stays the source of truth, and the others hear of it.
  if (typeof view.applyToggles === "function") view.applyToggles();
  return Promise.all(sent);
}

/** Own picture: follow the new camera, unmirrored for a camera that faces away. */
function showOwnPicture(stream) {
  const local = document.getElementById("local-video");
  if (!local) return;
  const camera = stream.getVideoTracks()[0];
  const facing = camera && camera.getSettings ? camera.getSettings().facingMode || "" : "";
  local.dataset.facing = facing;
  local.srcObject = null; // some browsers keep showing the stopped track otherwise
  local.srcObject = stream;
  local.play().catch(() => {});
}

/**
 * Open one device: a camera ({deviceId} or {facingMode}) or a microphone
 * ({deviceId}), with the call's constraints. Throws the browser's error.
 */
export async function openTrack(kind, { deviceId = "", facingMode = "" } = {}) {
  const base = kind === "video" ? { ...VIDEO, facingMode: undefined } : { ...AUDIO };
  if (deviceId) base.deviceId = { exact: deviceId };
  else if (facingMode) base.facingMode = { exact: facingMode };
  const stream = await navigator.mediaDevices.getUserMedia(kind === "video" ? { video: base, audio: false } : { audio: base, video: false });
  const track = stream.getTracks().find((t) => t.kind === kind);
  for (const other of stream.getTracks()) if (other !== track) other.stop();
  return track;
}

/** A device another app holds, or one that cannot run beside the current one (many phones' cameras). */
function isBusy(err) {
  return Boolean(err) && ["NotReadableError", "TrackStartError", "AbortError"].includes(err.name);
}

/**
 * Switch own `kind` to another device and send it in the call. When the new
 * device cannot open while the current one runs (phones often have one
 * camera at a time), the current one is let go and the new one tried again;
 * if that fails too, the current one is opened again.
 * @param want {deviceId} or {facingMode: "user" | "environment"}
 * @returns the new track; throws the browser's error (the old track stays, or is back)
 */
export async function switchDevice(view, kind, want) {
  const stream = localStreamOf(view);
  const old = stream ? stream.getTracks().find((t) => t.kind === kind) : null;
  if (!old) throw Object.assign(new Error(`no own ${kind} in this call`), { name: "NotFoundError" });
  const oldDevice = old.getSettings ? old.getSettings().deviceId || "" : "";
  let track;
  try {
    track = await openTrack(kind, want);
  } catch (err) {
    if (!isBusy(err) || old.readyState === "ended") throw err;
    old.stop();
    try {
      track = await openTrack(kind, want);
    } catch (again) {
      const back = oldDevice ? await openTrack(kind, { deviceId: oldDevice }).catch(() => null) : null;
      if (back) await replaceLocalTrack(view, back);
      throw again;
    }
  }
  await replaceLocalTrack(view, track);
  return track;
}

/** Cameras, microphones and speakers (labels are empty until a device was allowed). */
export async function listAllDevices() {
  const out = { cameras: [], microphones: [], speakers: [] };
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return out;
  for (const d of await navigator.mediaDevices.enumerateDevices()) {
    if (!d.deviceId) continue;
    if (d.kind === "videoinput") out.cameras.push(d);
    else if (d.kind === "audioinput") out.microphones.push(d);
    else if (d.kind === "audiooutput") out.speakers.push(d);
  }
  return out;
}

/** True where the page can choose where sound plays (HTMLMediaElement.setSinkId). */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;
}
