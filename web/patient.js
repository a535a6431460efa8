// The patient's page (/visit#t=<token>): device check, consent, reason,
// waiting room with chat, the video visit, and a closing screen.

import {
  $,
  Notices,
  forgetToken,
  formatWait,
  openSockets,
  readClaims,
  readToken,
  refusalOf,
  request,
  showConnection,
  showScreen,
} from "/static/common.js";
import { ChatClient, ChatView } from "/static/chat.js";
import { CALL_STATES, Call } from "/static/call.js";
import { CaptionsPanel } from "/static/captions.js";
import { ChartLeg } from "/static/chart_leg.js";
import { LevelMeter, listDevices, openMedia, playVideo, stopStream } from "/static/media.js";
import { RecordingStatus, showRecording } from "/static/recording.js";

const TOKEN_KEY = "telemed.patient.token";
const PREFS_KEY = "telemed.patient.media";
const captions = new CaptionsPanel($("#captions"), $("#captions-state"), { patient: "You", doctor: "Doctor" });
const QUEUED = ["waiting", "in_triage", "ready"];
/** After admission, how long to wait for the doctor's offer before asking for one. */
const OFFER_GRACE_MS = 6000;

const state = {
  token: null,
  claims: null,
  sockets: null,
  manager: null,
  chat: null,
  chatView: null,
  screen: "connecting",
  visit: null,
  positionVersion: -1,
  preview: null,
  meter: null,
  iceServers: [],
  media: null,
  mediaReady: null,
  call: null,
  lastOfferRequest: 0,
  leg: null,
  recording: null,
  finished: false,
};

const notices = new Notices($("#notices"));

// -- start -----------------------------------------------------------------------

function start() {
  state.token = readToken(TOKEN_KEY);
  state.claims = state.token ? readClaims(state.token) : null;
  if (!state.token) {
    showRefusal({ code: "unauthorized", message: "missing token" });
    return;
  }
  if (!state.claims) {
    showRefusal({ code: "unauthorized", message: "invalid token" });
    return;
  }
  if (state.claims.role !== "patient") {
    showRefusal({ code: "forbidden", message: "not a patient link" });
    return;
  }
  bindSteps();
  connectToClinic();
  // A page restored from the back-forward cache has lost its sockets: load it afresh.
  window.addEventListener("pageshow", (e) => e.persisted && location.reload());
}

function connectToClinic() {
  const { manager, sockets } = openSockets(state.token, ["/queue", "/chat", "/call", "/media"]);
  state.manager = manager;
  state.sockets = sockets;
  for (const socket of Object.values(sockets)) watchConnection(socket);

  const queue = sockets["/queue"];
  queue.on("connect", () => showConnection($("#connection"), "online", "Connected to the clinic"));
  queue.on("disconnect", () => {
    if (!state.finished) showConnection($("#connection"), "reconnecting");
  });
  queue.on("visit", applyVisit);
  queue.on("position", applyPosition);

  const me = { sub: state.claims.sub, role: "patient", name: state.claims.name || "You" };
  state.chat = new ChatClient(sockets["/chat"], {
    me,
    onChange: () => state.chatView && state.chatView.render(),
    onMessage: (thread, message, { live }) => announceMessage(message, live),
    onError: (err) => notices.error(err, "chat"),
  });
  state.chatView = new ChatView(state.chat, state.claims.visit, {
    title: "Chat with the clinic",
    me,
    placeholder: "Write to the clinic",
  });

  const call = sockets["/call"];
  call.on("ice_servers", (p) => (state.iceServers = p.ice_servers || []));
  call.on("connect", () => requestOfferIfIdle());
  call.on("offer", onOffer);
  call.on("answer", () => {}); // the patient never offers
  call.on("candidate", (p) => state.call && state.call.handleCandidate(p));
  call.on("hangup", onDoctorHangup);
  window.addEventListener("pagehide", () => {
    if (state.call) state.call.close({ notify: true });
    if (state.leg) state.leg.stop();
  });

  const media = sockets["/media"];
  media.on("connect", () => {
    if (state.leg) state.leg.socketConnected();
    if (state.recording) state.recording.refresh();
  });
  media.on("leg_answer", (p) => state.leg && state.leg.handleAnswer(p));
  // Captions reach the patient only where the clinic turned that on; the panel
  // shows itself with the first one.
  media.on("caption", (p) => {
    if (!state.visit || p.visit_id !== state.visit.visit_id) return;
    if (captions.visitId !== p.visit_id) captions.reset(p.visit_id);
    $("#captions-panel").hidden = false;
    captions.applyCaption(p);
  });
  media.on("captions", (p) => captions.visitId && captions.applyState(p));
  media.on("recording", (p) => {
    if (state.recording) state.recording.applyEvent(p);
    if (state.leg) state.leg.recordingChanged(p);
  });
}

/** Refusals end the page; a server-side disconnect is retried once to learn why. */
function watchConnection(socket) {
  socket.on("connect_error", (err) => {
    const refusal = refusalOf(socket, err);
    if (!refusal) return; // a network problem: the client retries by itself
    if (refusal.code === "unavailable" || refusal.code === "rate_limited") {
      const busy = refusal.code === "unavailable";
      const text = busy ? "The clinic's server is busy." : `Not connected: ${refusal.message}.`;
      notices.show(`${text} Trying again…`, { kind: busy ? "info" : "error", key: "unavailable" });
      setTimeout(() => socket.connect(), busy ? 3000 : 15000);
      return;
    }
    showRefusal(refusal);
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect" && !state.finished) setTimeout(() => socket.connect(), 500);
  });
}

// -- the visit's state ---------------------------------------------------------------

/** Every `visit` event (and the one sent on each connect) moves the page to the right screen. */
function applyVisit(visit) {
  const first = state.visit === null;
  const before = state.visit ? state.visit.state : null;
  state.visit = visit;
  notices.clear("unavailable");
  if (visit.state === "created") {
    if (state.screen === "connecting") showDeviceStep(visit);
  } else if (QUEUED.includes(visit.state)) {
    joinWaitingRoom();
    showWaitState(visit.state);
  } else if (visit.state === "in_visit") {
    enterVisit(visit, { admittedNow: !first && before !== "in_visit" });
  } else if (visit.state === "ended") {
    finishVisit(visit.end_reason);
  }
}

function go(screen) {
  state.screen = screen;
  showScreen(screen);
}

// -- step 1: device check --------------------------------------------------------------

function showDeviceStep(visit) {
  $("#reason").value = visit.reason || "";
  go("device");
}

function bindSteps() {
  $("#device-start").addEventListener("click", startDeviceCheck);
  $("#device-retry").addEventListener("click", startDeviceCheck);
  $("#device-next").addEventListener("click", () => leaveDeviceStep({ chatOnly: false }));
  $("#device-skip").addEventListener("click", () => leaveDeviceStep({ chatOnly: true }));
  $("#camera-select").addEventListener("change", startDeviceCheck);
  $("#mic-select").addEventListener("change", startDeviceCheck);
  $("#consent-form").addEventListener("submit", submitConsent);
  $("#consent-visit").addEventListener("change", () => {
    if ($("#consent-visit").checked) {
      $("#consent-error").hidden = true;
      $("#consent-visit").removeAttribute("aria-invalid");
    }
  });
  $("#consent-back").addEventListener("click", () => go("device"));
  $("#reason-form").addEventListener("submit", checkIn);
  $("#reason-back").addEventListener("click", () => go("consent"));
  $("#leave").addEventListener("click", () => toggleLeaveConfirm(true));
  $("#leave-no").addEventListener("click", () => toggleLeaveConfirm(false));
  $("#leave-yes").addEventListener("click", leaveWaitingRoom);
  $("#toggle-mic").addEventListener("click", toggleMicrophone);
  $("#toggle-cam").addEventListener("click", toggleCamera);
  $("#tap-to-play").addEventListener("click", playRemote);
}

function mediaPrefs() {
  try {
    return JSON.parse(sessionStorage.getItem(PREFS_KEY) || "{}");
  } catch {
    return {};
  }
}

function saveMediaPrefs(prefs) {
  sessionStorage.setItem(PREFS_KEY, JSON.stringify({ ...mediaPrefs(), ...prefs }));
}

async function startDeviceCheck() {
  stopDevicePreview();
  $("#device-problem").hidden = true;
  $("#device-start").disabled = true;
  $("#mic-hint").textContent = "";
  try {
    const opened = await openMedia({
      videoDeviceId: $("#camera-select").value || "",
      audioDeviceId: $("#mic-select").value || "",
    });
    state.preview = opened.stream;
    $("#preview").srcObject = opened.stream;
    $("#preview-empty").hidden = opened.video;
    await playVideo($("#preview"));
    state.meter = new LevelMeter($("#mic-level"));
    await state.meter.start(opened.stream);
    setTimeout(checkMicHeard, 5000);
    await fillDevicePickers(opened.stream);
    showDeviceResult(opened);
  } catch (problem) {
    showDeviceProblem(problem);
  } finally {
    $("#device-start").disabled = false;
  }
}

function showDeviceResult(opened) {
  $("#device-start").hidden = true;
  $("#device-retry").hidden = true;
  $("#device-next").hidden = false;
  $("#device-skip").hidden = true;
  if (!opened.video || !opened.audio) {
    const missing = !opened.video ? "camera" : "microphone";
    $("#device-problem-title").textContent = `No ${missing} found`;
    $("#device-problem-text").textContent = !opened.video
      ? "Your microphone works, but we found no camera. The doctor will hear you but not see you."
      : "Your camera works, but we found no microphone. You can type in the chat during the visit.";
    $("#device-problem").hidden = false;
    $("#device-next").textContent = `Continue without ${missing}`;
  } else {
    $("#device-next").textContent = "It works, continue";
  }
  $("#device-next").focus();
}

function showDeviceProblem(problem) {
  $("#device-problem-title").textContent = problem.title || "Camera problem";
  $("#device-problem-text").textContent = problem.message;
  $("#device-problem").hidden = false;
  $("#device-start").hidden = true;
  $("#device-retry").hidden = false;
  $("#device-next").hidden = true;
  $("#device-skip").hidden = false;
  $("#preview-empty").hidden = false;
  $("#device-retry").focus();
}

function checkMicHeard() {
  if (!state.meter || !state.meter.context) return;
  $("#mic-hint").textContent =
    state.meter.peak < 0.08
      ? "We don’t hear much. Check that your microphone is not muted, or choose another one."
      : "We can hear you.";
}

async function fillDevicePickers(stream) {
  const { cameras, microphones } = await listDevices();
  const current = (kind) => {
    const track = stream.getTracks().find((t) => t.kind === kind);
    return track ? track.getSettings().deviceId : "";
  };
  fillSelect($("#camera-select"), cameras, current("video"), "Camera");
  fillSelect($("#mic-select"), microphones, current("audio"), "Microphone");
  $("#device-pickers").hidden = cameras.length < 2 && microphones.length < 2;
}

function fillSelect(select, devices, selected, fallbackName) {
  select.replaceChildren(
    ...devices.map((d, i) => {
      const option = new Option(d.label || `${fallbackName} ${i + 1}`, d.deviceId);
      option.selected = d.deviceId === selected;
      return option;
    }),
  );
}

function stopDevicePreview() {
  if (state.meter) state.meter.stop();
  stopStream(state.preview);
  state.preview = null;
  $("#preview").srcObject = null;
}

function leaveDeviceStep({ chatOnly }) {
  saveMediaPrefs({
    chatOnly,
    videoDeviceId: $("#camera-select").value || "",
    audioDeviceId: $("#mic-select").value || "",
  });
  stopDevicePreview();
  go("consent");
}

// -- steps 2 and 3: consent, reason, check-in -------------------------------------------

function submitConsent(event) {
  event.preventDefault();
  const ok = $("#consent-visit").checked;
  $("#consent-error").hidden = ok;
  $("#consent-visit").setAttribute("aria-invalid", String(!ok));
  if (!ok) {
    $("#consent-visit").focus();
    return;
  }
  go("reason");
}

async function checkIn(event) {
  event.preventDefault();
  const button = $("#check-in");
  button.disabled = true;
  button.textContent = "Checking in…";
  try {
    const reply = await request(state.sockets["/queue"], "check_in", {
      reason: $("#reason").value.trim(),
      consent_visit: true,
      consent_recording: $("#consent-recording").checked,
    });
    applyVisit(reply.visit);
  } catch (err) {
    notices.error(`Check-in did not work: ${err.message}`, "check-in");
  } finally {
    button.disabled = false;
    button.textContent = "Check in";
  }
}

// -- waiting room ------------------------------------------------------------------------

function joinWaitingRoom() {
  if (state.screen === "waiting") return;
  stopDevicePreview();
  notices.clear("check-in");
  go("waiting");
  mountChat("#wait-chat-slot");
  document.title = "Waiting room — Your video visit";
}

function showWaitState(visitState) {
  $("#wait-state").textContent = {
    waiting: "You’re checked in. A nurse will look at your information soon.",
    in_triage: "A nurse is reviewing your information.",
    ready: "You’re ready to see a doctor.",
  }[visitState];
}

/** Place in line and estimated wait; an update older than the last one is dropped. */
function applyPosition(p) {
  if (!state.visit || p.visit_id !== state.visit.visit_id) return;
  if (p.version < state.positionVersion) return;
  state.positionVersion = p.version;
  $("#wait-position").textContent = p.position === 1 ? "1 — you’re next" : String(p.position);
  $("#wait-eta").textContent = formatWait(p.eta_s);
}

function toggleLeaveConfirm(show) {
  $("#leave-confirm").hidden = !show;
  $("#leave").hidden = show;
  (show ? $("#leave-no") : $("#leave")).focus();
}

async function leaveWaitingRoom() {
  try {
    const reply = await request(state.sockets["/queue"], "leave", {});
    applyVisit(reply.visit);
  } catch (err) {
    notices.error(`Could not leave: ${err.message}`);
  }
}

function mountChat(slot) {
  $(slot).append(state.chatView.el);
  state.chatView.render();
}

function announceMessage(message, live) {
  if (!live || message.sender === state.claims.sub) return;
  if (document.hidden) document.title = "New message — Your video visit";
}

// -- the video visit ------------------------------------------------------------------------

function enterVisit(visit, { admittedNow }) {
  if (state.screen !== "call") {
    go("call");
    mountChat("#call-chat-slot");
    const who = visit.doctor_name || "The doctor";
    $("#call-title").textContent = `${who} is ready`;
    document.title = `${who} is ready — Your video visit`;
    const tapped = !navigator.userActivation || navigator.userActivation.hasBeenActive;
    if (navigator.vibrate && tapped) navigator.vibrate([200, 100, 200]);
    showCallState("idle");
    state.mediaReady = startLocalMedia();
    startRecording(visit);
  }
  // Just admitted: the doctor's offer is on its way (ask only if it got lost).
  // Otherwise (the page was reloaded) ask the doctor's page for a new call now.
  if (admittedNow) setTimeout(requestOfferIfIdle, OFFER_GRACE_MS);
  else requestOfferIfIdle();
}

async function startLocalMedia() {
  const prefs = mediaPrefs();
  if (prefs.chatOnly) {
    showMediaNote("You chose to continue without camera: the doctor can talk to you in the chat.");
    return null;
  }
  try {
    const opened = await openMedia(prefs);
    state.media = opened.stream;
    $("#local-video").srcObject = opened.stream;
    $("#local-video").hidden = !opened.video;
    $("#toggle-cam").disabled = !opened.video;
    $("#toggle-mic").disabled = !opened.audio;
    await playVideo($("#local-video"));
    return opened.stream;
  } catch (problem) {
    showMediaNote(`${problem.title}. ${problem.message} The doctor can still reach you in the chat.`);
    return null;
  }
}

/**
 * With the patient's consent, send own camera and microphone to the chart
 * (a second, send-only connection to the clinic's media worker) and show
 * when the visit is being recorded.
 */
async function startRecording(visit) {
  const socket = state.sockets["/media"];
  if (!state.recording) {
    state.recording = new RecordingStatus({
      socket,
      visitId: visit.visit_id,
      onChange: (status) => showRecording($("#recording"), status, "patient"),
    });
    state.recording.refresh();
  }
  if (state.leg || !visit.consent_recording) return;
  const stream = await state.mediaReady;
  if (state.finished || state.leg || !stream) return;
  state.leg = new ChartLeg({ socket, visitId: visit.visit_id, role: "patient", iceServers: state.iceServers, onState: chartLegState });
  state.leg.start(stream);
}

function chartLegState(s, err) {
  // A conflict means the visit is no longer in progress: its `visit` event says so.
  if (s === "refused" && !(err && err.code === "conflict")) {
    $("#recording-note").textContent = "The recording could not start. Your visit goes on as usual.";
    $("#recording-note").hidden = false;
  } else if (s === "connected") {
    $("#recording-note").hidden = true;
  }
}

function showMediaNote(text) {
  $("#call-media-note").textContent = text;
  $("#call-media-note").hidden = false;
  $("#local-video").hidden = true;
  $("#toggle-cam").disabled = true;
  $("#toggle-mic").disabled = true;
}

/**
 * The page has no working call while the visit is in progress: ask the
 * doctor's page to start one (see call.js for why this is a `hangup`).
 */
function requestOfferIfIdle() {
  const socket = state.sockets["/call"];
  if (!state.visit || state.visit.state !== "in_visit" || !socket.connected) return;
  if (state.call && !["failed", "closed"].includes(state.call.state)) return;
  if (Date.now() - state.lastOfferRequest < 3000) return;
  state.lastOfferRequest = Date.now();
  request(socket, "hangup", { visit_id: state.visit.visit_id }).catch(() => {});
}

async function onOffer(offer) {
  if (!state.visit || offer.visit_id !== state.visit.visit_id || state.finished) return;
  if (offer.restart && state.call && !state.call.closed) {
    state.call.handleOffer(offer).catch(callTrouble);
    return;
  }
  if (offer.restart) {
    // An ICE restart for a connection this page does not have: ask for a new call.
    state.lastOfferRequest = 0;
    requestOfferIfIdle();
    return;
  }
  if (state.screen !== "call") enterVisit({ ...state.visit, state: "in_visit" }, { admittedNow: true });
  const call = startCall();
  await state.mediaReady;
  call.localStream = state.media;
  call.handleOffer(offer).catch(callTrouble);
}

/** A failed step of the call: say so; the doctor's page starts over when it does not connect. */
function callTrouble(err) {
  if (state.finished || (err && err.code === "conflict")) return;
  showCallState("failed", "The call could not start. Retrying…");
}

/** A new peer connection for a new offer of the doctor; the old one (if any) is dropped. */
function startCall() {
  if (state.call) state.call.close();
  const call = new Call({
    socket: state.sockets["/call"],
    visitId: state.visit.visit_id,
    iceServers: state.iceServers,
    localStream: state.media,
    onRemoteStream: showRemote,
    onState: (s) => {
      if (state.call === call) showCallState(s);
    },
  });
  state.call = call;
  showCallState("new");
  return call;
}

function onDoctorHangup(p) {
  if (!state.call || (state.visit && p.visit_id !== state.visit.visit_id)) return;
  state.call.close();
  $("#remote-video").srcObject = null;
  $("#remote-empty").hidden = false;
  showCallState("closed", "The doctor left the call. Please wait here.");
}

function showCallState(s, text) {
  const el = $("#call-state");
  el.dataset.state = s;
  el.textContent = text || CALL_STATES[s] || s;
}

async function showRemote(stream) {
  const video = $("#remote-video");
  if (video.srcObject !== stream) video.srcObject = stream;
  $("#remote-empty").hidden = true;
  if (!(await playVideo(video))) $("#tap-to-play").hidden = false;
}

async function playRemote() {
  $("#tap-to-play").hidden = true;
  if (!(await playVideo($("#remote-video")))) $("#tap-to-play").hidden = false;
}

function toggleMicrophone() {
  const button = $("#toggle-mic");
  const muted = button.dataset.off !== "true";
  button.dataset.off = String(muted);
  button.textContent = muted ? "Unmute microphone" : "Mute microphone";
  setTrackEnabled("audio", !muted);
}

function toggleCamera() {
  const button = $("#toggle-cam");
  const off = button.dataset.off !== "true";
  button.dataset.off = String(off);
  button.textContent = off ? "Turn camera on" : "Turn camera off";
  setTrackEnabled("video", !off);
}

function setTrackEnabled(kind, enabled) {
  if (!state.media) return;
  for (const track of state.media.getTracks()) if (track.kind === kind) track.enabled = enabled;
}

// -- the end ---------------------------------------------------------------------------------

const ENDINGS = {
  completed: ["Your visit has ended", "Thank you for seeing us today. You can close this page now."],
  left: ["You left the waiting room", "Your check-in was cancelled. If you still need care, ask the clinic for a new link."],
  absent: [
    "Your place in line was released",
    "We lost the connection to your device for too long. If you still need care, ask the clinic for a new link.",
  ],
  cancelled: ["The clinic cancelled this visit", "If you still need care, please contact the clinic."],
};

function finishVisit(reason) {
  const [title, text] = ENDINGS[reason] || ENDINGS.completed;
  $("#ended-title").textContent = title;
  $("#ended-text").textContent = text;
  teardown();
  go("ended");
  document.title = `${title} — Your video visit`;
}

/** Stop camera, call and sockets, and forget the link (it no longer works). */
function teardown() {
  state.finished = true;
  stopDevicePreview();
  if (state.call) state.call.close();
  if (state.leg) state.leg.stop();
  state.leg = null;
  if (state.recording) state.recording.close();
  state.recording = null;
  showRecording($("#recording"), null, "patient");
  stopStream(state.media);
  state.media = null;
  $("#local-video").srcObject = null;
  $("#remote-video").srcObject = null;
  if (state.manager) {
    for (const socket of Object.values(state.sockets)) socket.disconnect();
  }
  forgetToken(TOKEN_KEY);
  sessionStorage.removeItem(PREFS_KEY);
  showConnection($("#connection"), "closed", "Visit over");
}

const REFUSALS = [
  [/ended/, "This visit has ended", "The visit this link was for is over. If you still need care, ask the clinic for a new link."],
  [/expired/, "This link has expired", "Links work for a limited time. Ask the clinic for a new one."],
  [/revoked/, "This link was withdrawn", "The clinic has withdrawn this link. Ask the clinic for a new one."],
  [/missing/, "This link is incomplete", "Open the whole link you received from the clinic, or ask for a new one."],
  [/patient/, "This is not a patient link", "Staff sign in on the staff page."],
  [/.*/, "This link does not work", "The link may have been copied incompletely, or is no longer valid."],
];

function showRefusal(refusal) {
  if (state.finished) return;
  const [, title, text] = REFUSALS.find(([re]) => re.test(refusal.message));
  $("#refused-title").textContent = title;
  $("#refused-text").textContent = text;
  teardown();
  showConnection($("#connection"), "refused");
  go("refused");
  document.title = `${title} — Your video visit`;
}

start();
