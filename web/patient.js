// The patient's page (/visit#t=<token>): wires its views together and moves
// between its screens as the visit goes: device check (device_check.js),
// consent and reason (check_in.js), waiting room with chat (waiting_room.js),
// the video visit (call_view.js, patient_call.js, chart_session.js), and a
// closing screen.

import {
  $,
  Notices,
  callRoute,
  forgetToken,
  h,
  openSockets,
  readClaims,
  readToken,
  showConnection,
  showScreen,
} from "/static/common.js";
import { watchSockets } from "/static/connection.js";
import { ChatClient, ChatView } from "/static/chat.js";
import { callStateText } from "/static/call.js";
import { CallView, mountStage } from "/static/call_view.js";
import { CallControls } from "/static/call_controls.js";
import { AppointmentWait } from "/static/appointment.js";
import { ChartSession } from "/static/chart_session.js";
import { CheckInForm } from "/static/check_in.js";
import { DeviceCheck, forgetMediaPrefs } from "/static/device_check.js";
import { t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { PatientCall } from "/static/patient_call.js";
import { peopleList } from "/static/people.js";
import { PatientCaptions } from "/static/patient_captions.js";
import { WaitingRoom } from "/static/waiting_room.js";

const TOKEN_KEY = "telemed.patient.token";
const QUEUED = ["waiting", "in_triage", "ready"];

const notices = new Notices($("#notices"));

/** Where the page is: its token's claims, the screen shown, the visit as last told. */
const page = {
  claims: null,
  sockets: null,
  screen: "connecting",
  visit: null,
  /** The visit ended or the link was refused: nothing more happens on this page. */
  finished: false,
};

/** The page's views and the call, made once the link has been read. */
let parts = null;

// -- start -----------------------------------------------------------------------

function start() {
  mountStage($("#call-stage"), { peer: "doctor", tapVerb: "Tap", stateText: callStateText("idle") });
  const token = readToken(TOKEN_KEY);
  page.claims = token ? readClaims(token) : null;
  if (!token) showRefusal({ code: "unauthorized", serverMessage: "missing token" });
  else if (!page.claims) showRefusal({ code: "unauthorized", serverMessage: "invalid token" });
  else if (page.claims.role !== "patient") showRefusal({ code: "forbidden", serverMessage: "not a patient link" });
  else {
    connectToClinic(token);
    // A page restored from the back-forward cache has lost its sockets: load it afresh.
    window.addEventListener("pageshow", (e) => e.persisted && location.reload());
  }
}

function connectToClinic(token) {
  page.token = token;
  const { sockets } = openSockets(token, ["/queue", "/chat", "/call", "/media"]);
  page.sockets = sockets;
  watchSockets(sockets, {
    notices,
    busyText: t("page.busy"),
    onRefused: showRefusal,
    over: () => page.finished,
  });
  const queue = sockets["/queue"];
  const view = new CallView();
  parts = {
    device: new DeviceCheck({ onDone: () => go("consent") }),
    appointment: new AppointmentWait(),
    checkIn: new CheckInForm({ socket: queue, notices, go, onVisit: applyVisit }),
    waiting: new WaitingRoom({ socket: queue, notices, onVisit: applyVisit }),
    chatView: openChat(sockets["/chat"]),
    view,
    call: new PatientCall({
      socket: sockets["/call"],
      view,
      visit: () => page.visit,
      over: () => page.finished,
      onFirstOffer: () => {
        if (page.screen !== "call") enterVisit({ ...page.visit, state: "in_visit" }, { admittedNow: true });
      },
    }),
    chart: new ChartSession({ socket: sockets["/media"], role: "patient", onLegState: chartLegState }),
    captions: new PatientCaptions({ socket: sockets["/media"], visit: () => page.visit }),
  };
  parts.controls = new CallControls({
    view,
    area: $("#call-area"),
    bar: $('[data-screen="call"] .call-controls'),
    leaver: parts.call,
    onLeave: () => parts.chart.leg && stopRecording(),
    onRejoin: () => page.visit && startRecording(page.visit),
  });

  queue.on("connect", () => showConnection($("#connection"), "online", t("page.connected")));
  queue.on("disconnect", () => {
    if (!page.finished) showConnection($("#connection"), "reconnecting");
  });
  queue.on("visit", applyVisit);
  queue.on("participants", (p) => page.visit && p.visit_id === page.visit.visit_id && showPeople(p.participants));
  queue.on("position", (p) => {
    if (page.visit && p.visit_id === page.visit.visit_id) parts.waiting.applyPosition(p);
  });
  window.addEventListener("pagehide", () => {
    for (const call of parts.view.calls()) call.close({ notify: true }); // every party of the call, not only the doctor
    if (parts.chart.leg) parts.chart.leg.stop();
  });
}

/** The visit's chat thread, shown in the waiting room and in the call. */
function openChat(socket) {
  const me = { sub: page.claims.sub, role: "patient", name: page.claims.name || t("chat.you") };
  let view = null;
  const chat = new ChatClient(socket, {
    me,
    onChange: () => view && view.render(),
    onMessage: (thread, message, { live }) => announceMessage(message, live),
    onError: (err) => notices.error(t("patient_chat.failed", { reason: err.message }), "chat"),
  });
  view = new ChatView(chat, page.claims.visit, {
    title: t("waiting.chat_title"),
    me,
    placeholder: t("patient_chat.placeholder"),
  });
  return view;
}

// -- the visit's state ---------------------------------------------------------------

/** Every `visit` event (and the one sent on each connect) moves the page to the right screen. */
function applyVisit(visit) {
  const first = page.visit === null;
  const before = page.visit ? page.visit.state : null;
  page.visit = visit;
  notices.clear("unavailable");
  if (visit.state === "created") {
    if (page.screen === "connecting" && AppointmentWait.early(visit)) {
      parts.checkIn.prefill(visit.reason);
      go("appointment");
      parts.appointment.show(visit, () => go("device"));
    } else if (page.screen === "connecting") {
      parts.checkIn.prefill(visit.reason);
      go("device");
    }
  } else if (QUEUED.includes(visit.state)) {
    joinWaitingRoom();
    parts.waiting.showState(visit.state);
  } else if (visit.state === "in_visit") {
    enterVisit(visit, { admittedNow: !first && before !== "in_visit" });
  } else if (visit.state === "ended") {
    finishVisit(visit.end_reason);
  }
}

function go(screen) {
  page.screen = screen;
  showScreen(screen);
}

function joinWaitingRoom() {
  if (page.screen === "waiting") return;
  parts.device.stop();
  notices.clear("check-in");
  go("waiting");
  mountChat("#wait-chat-slot");
  document.title = t("page.doc.waiting");
}

function mountChat(slot) {
  $(slot).append(parts.chatView.el);
  parts.chatView.render();
}

function announceMessage(message, live) {
  if (!live || message.sender === page.claims.sub) return;
  if (document.hidden) document.title = t("page.doc.new_message");
}

// -- the video visit ------------------------------------------------------------------------

function enterVisit(visit, { admittedNow }) {
  if (page.screen !== "call") {
    go("call");
    mountChat("#call-chat-slot");
    const name = visit.doctor_name;
    $("#call-title").replaceChildren(...(name ? tNodes("visit_call.ready", { name: untranslated(name) }) : [t("visit_call.ready_unnamed")]));
    // The tab's title names no one: a title cannot mark a name as such (translate="no").
    document.title = t("page.doc.titled", { title: t("visit_call.ready_unnamed") });
    const tapped = !navigator.userActivation || navigator.userActivation.hasBeenActive;
    if (navigator.vibrate && tapped) navigator.vibrate([200, 100, 200]);
    parts.call.openLocal();
    parts.controls.start();
    loadPeople(visit.visit_id);
    startRecording(visit);
    parts.captions.show(visit);
  }
  parts.call.expectOffer({ admittedNow });
}

/**
 * With the patient's consent, send own camera and microphone to the chart
 * (a second, send-only connection to the clinic's media worker) and show
 * when the visit is being recorded.
 */
async function startRecording(visit) {
  const { chart } = parts;
  if (!chart.recording) chart.watch(visit.visit_id);
  if (chart.leg || !visit.consent_recording) return;
  const stream = await parts.view.mediaReady;
  if (page.finished || chart.leg || !stream) return;
  chart.send(visit.visit_id, stream, parts.call.iceServers, { follow: parts.view });
}

/** Out of the call (not the visit): nothing of the patient goes to the chart until they rejoin. */
function stopRecording() {
  parts.chart.leg.stop();
  parts.chart.leg = null;
}

function chartLegState(s, err) {
  // A conflict means the visit is no longer in progress: its `visit` event says so.
  if (s === "refused" && !(err && err.code === "conflict")) {
    $("#recording-note").textContent = t("visit_call.recording_failed");
    $("#recording-note").hidden = false;
  } else if (s === "connected") {
    $("#recording-note").hidden = true;
  }
}

/** Who else is in the visit and why ("Interpreter — Spanish"), on the call screen once someone joins. */
async function loadPeople(visitId) {
  const reply = await callRoute(page.token, "GET", `/api/visits/${encodeURIComponent(visitId)}/participants`).catch(() => null);
  if (reply && reply.ok) showPeople(reply.data.participants);
}

function showPeople(participants) {
  let panel = $("#people-panel");
  if (!panel) {
    panel = h("div", { id: "people-panel", class: "panel", hidden: true },
      h("h2", { id: "people-title", text: t("people.title") }), h("div", { id: "people-slot" }));
    $("#call-chat-slot").closest(".panel").before(panel);
  }
  const others = participants.filter((p) => p.type !== "patient");
  $("#people-slot").replaceChildren(peopleList(others, { id: "people", label: t("people.title") }));
  panel.hidden = !participants.some((p) => p.type === "guest");
}

// -- the end ---------------------------------------------------------------------------------

/** How a visit ended (visit.end_reason), each with a title and a sentence (keys ended.<reason>.*). */
const ENDINGS = ["completed", "left", "absent", "cancelled", "no_show"];

function finishVisit(reason) {
  const ending = ENDINGS.includes(reason) ? reason : "completed";
  const title = t(`ended.${ending}.title`);
  $("#ended-title").textContent = title;
  $("#ended-text").textContent = t(`ended.${ending}.text`);
  teardown();
  go("ended");
  document.title = t("page.doc.titled", { title });
}

/** Stop camera, call and sockets, and forget the link (it no longer works). */
function teardown() {
  page.finished = true;
  if (parts) {
    parts.device.stop();
    parts.appointment.stop();
    parts.controls.stop();
    parts.view.hangUp();
    parts.chart.stop();
    parts.captions.stop();
    parts.view.release();
    for (const socket of Object.values(page.sockets)) socket.disconnect();
  }
  forgetToken(TOKEN_KEY);
  forgetMediaPrefs();
  showConnection($("#connection"), "closed", t("page.visit_over"));
}

/** Why a link does not open the visit: the server's words (English) matched to a title and a sentence (keys refused.<name>.*). */
const REFUSALS = [
  [/cancelled/, "cancelled"],
  [/missed/, "missed"],
  [/ended/, "ended"],
  [/expired/, "expired"],
  [/revoked/, "revoked"],
  [/missing/, "missing"],
  [/patient/, "not_patient"],
  [/.*/, "invalid"],
];

/** @param refusal {code, serverMessage} (refusalOf's, or the page's own) */
function showRefusal(refusal) {
  if (page.finished) return;
  const [, name] = REFUSALS.find(([re]) => re.test(refusal.serverMessage || ""));
  const title = t(`refused.${name}.title`);
  $("#refused-title").textContent = title;
  $("#refused-text").textContent = t(`refused.${name}.text`);
  teardown();
  showConnection($("#connection"), "refused");
  go("refused");
  document.title = t("page.doc.titled", { title });
}

start();
