// A guest's page (/guest#t=<token>): an interpreter or a caregiver the doctor
// invited. Welcome (who invited them, as what), the device check
// (device_check.js, as the patient's), their own consent (the visit, and
// separately recording: the guests' wording, guest_consent.*, whose version the
// server checks as a patient's), the lobby until the doctor lets them in, then the
// visit: who is in it, the call (guest_call.js: the same tiles as the
// patient's and the doctor's) and the visit's chat.
// Removed, ended or invalid links end the page with plain words.

import { $, Notices, forgetToken, openSockets, request, showConnection, showScreen } from "/static/common.js";
import { watchSockets } from "/static/connection.js";
import { CallControls } from "/static/call_controls.js";
import { ChatClient, ChatView } from "/static/chat.js";
import { visitLanguage } from "/static/check_in.js";
import { DeviceCheck, forgetMediaPrefs } from "/static/device_check.js";
import { guestSession } from "/static/guest_session.js";
import { GuestCall } from "/static/guest_call.js";
import { GuestLeg } from "/static/guest_leg.js";
import { t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { peopleList, roleText } from "/static/people.js";

const TOKEN_KEY = "telemed.guest.token";

const notices = new Notices($("#notices"));

const page = {
  token: null,
  claims: null,
  manager: null,
  socket: null,
  /** The guest as last told ({guest_id, kind, name, language, state, ...}). */
  guest: null,
  chat: null,
  /** The guest's call (GuestCall), made when first let in. */
  call: null,
  device: null,
  screen: "connecting",
  finished: false,
};

function go(screen) {
  page.screen = screen;
  showScreen(screen);
}

function start() {
  // A guest link's token, or a clinician guest's own staff token with the visit (guest_session.js).
  const session = guestSession(TOKEN_KEY);
  if (!session) {
    showEnd("invalid");
    return;
  }
  const { token } = session;
  page.claims = session.claims;
  page.token = token;
  const { manager, sockets } = openSockets(token, ["/guest"]);
  page.manager = manager;
  page.socket = sockets["/guest"];
  watchSockets(sockets, { notices, busyText: t("page.busy"), onRefused: refused, over: () => page.finished });
  page.socket.on("connect", () => {
    showConnection($("#connection"), "online", t("page.connected"));
    // After a reconnect: where the guest is now (the first connect also sends `guest`, but
    // not to a clinician guest, whose staff token names no visit: they ask).
    if (page.guest || session.clinician) request(page.socket, "get_guest", { visit_id: page.claims.visit }).then((r) => applyGuest(r.guest), () => {});
  });
  page.socket.on("disconnect", () => {
    if (!page.finished) showConnection($("#connection"), "reconnecting");
  });
  page.socket.on("guest", applyGuest);
  page.socket.on("participants", (p) => showPeople(p.participants));
  page.socket.on("error", (err) => {
    if (err && err.code === "unauthorized") refused({ code: err.code, serverMessage: err.message || "" });
  });
  page.device = new DeviceCheck({ onDone: () => go("consent") });
  $("#welcome-next").addEventListener("click", () => go("device"));
  $("#consent-back").addEventListener("click", () => go("device"));
  $("#consent-form").addEventListener("submit", (e) => join(e));
  $("#consent-visit").addEventListener("change", () => {
    if ($("#consent-visit").checked) $("#consent-error").hidden = true;
  });
  $("#lobby-leave").addEventListener("click", leave);
  $("#in-leave").addEventListener("click", leave);
  $("#rejoin").addEventListener("click", () => go("consent"));
  window.addEventListener("pageshow", (e) => e.persisted && location.reload());
}

/** Every `guest` event and reply: move to the screen of the guest's state. */
function applyGuest(guest) {
  const first = page.guest === null;
  page.guest = { ...(page.guest || {}), ...guest };
  if (!page.claims.guest) page.claims.guest = page.guest.guest_id; // a clinician guest: known once told
  if (first) {
    const role = roleText({ type: "guest", ...page.guest });
    const by = page.guest.invited_by_name;
    $("#welcome-by").replaceChildren(...(by ? tNodes("guest.welcome.by", { name: untranslated(by), role }) : [t("guest.welcome.by_clinic", { role })]));
  }
  const state = page.guest.state;
  if (state === "removed") showEnd("removed");
  else if (state === "admitted") enterVisit();
  else if (state === "waiting") {
    closeChat();
    stopCall();
    go("lobby");
    document.title = t("guest.lobby.title");
  } else if (state === "left") {
    closeChat();
    stopCall();
    go("left");
  } else if (first || page.screen === "connecting") {
    go("welcome");
  }
}

async function join(event) {
  event.preventDefault();
  if (!$("#consent-visit").checked) {
    $("#consent-error").hidden = false;
    $("#consent-visit").focus();
    return;
  }
  const button = $("#join");
  button.disabled = true;
  button.textContent = t("guest.joining");
  try {
    const reply = await request(page.socket, "join", {
      visit_id: page.claims.visit,
      consent_visit: true,
      consent_recording: $("#consent-recording").checked,
      language: visitLanguage(),
      consent_version: t("guest_consent.version"),
    });
    page.device.stop();
    applyGuest(reply.guest);
  } catch (err) {
    notices.error(t("guest.join_failed", { reason: err.message }), "join");
  } finally {
    button.disabled = false;
    button.textContent = t("guest.join");
  }
}

async function leave() {
  try {
    const reply = await request(page.socket, "leave_visit", { visit_id: page.claims.visit });
    applyGuest(reply.guest);
  } catch (err) {
    notices.error(t("guest.leave_failed", { reason: err.message }), "leave");
  }
}

function enterVisit() {
  if (page.screen !== "in") {
    go("in");
    document.title = t("guest.in.title");
  }
  openChat();
  startCall();
  request(page.socket, "participants", { visit_id: page.claims.visit }).then((r) => showPeople(r.participants), () => {});
}

function showPeople(participants) {
  const shown = participants.filter((p) => p.state !== "waiting" || p.type !== "guest");
  $("#people-slot").replaceChildren(peopleList(shown, { id: "people", label: t("people.title") }));
}

/** The visit's chat, on its own socket: the server lets a guest in only once admitted. */
function openChat() {
  if (page.chat) return;
  const socket = page.manager.socket("/chat", { auth: { token: page.token } });
  const me = { sub: page.claims.sub, role: "guest", name: page.claims.name || t("chat.you") };
  let view = null;
  const client = new ChatClient(socket, {
    me,
    onChange: () => view && view.render(),
    onError: (err) => notices.error(t("patient_chat.failed", { reason: err.message }), "chat"),
  });
  view = new ChatView(client, page.claims.visit, { title: t("guest.chat_title"), me, placeholder: t("guest.chat_placeholder") });
  $("#guest-chat-slot").replaceChildren(view.el);
  view.render();
  page.chat = { socket, view };
}

/** The call: own camera and microphone, and a connection with each person in it. */
function startCall() {
  if (!page.call) {
    const socket = page.manager.socket("/call", { auth: { token: page.token } });
    page.call = new GuestCall({
      socket,
      slot: $("#call-stage"),
      visitId: page.claims.visit,
      self: page.claims.guest,
      active: () => page.screen === "in" && !page.finished,
      onConnected: () => ($("#video-note").hidden = true),
    });
    // For whoever builds on the call (its controls): the guest's call object.
    page.call.view.guestCall = page.call;
    // Timer, full screen, camera switch, devices, and Leave call / Rejoin (call_controls.js);
    // "Leave the visit" stays apart, below the chat. Out of the call, nothing of the guest is recorded.
    page.controls = new CallControls({
      view: page.call.view,
      bar: $('[data-screen="in"] .call-controls'),
      leaver: page.call,
      onLeave: () => page.leg && page.leg.pause(),
      onRejoin: () => page.leg && page.leg.start(page.call, Boolean(page.guest && page.guest.consent_recording)),
    });
  }
  page.call.start();
  page.controls.start();
  // The guest's own chart leg (guest_leg.js), with their consent to recording; the indicator either way.
  page.leg = page.leg || new GuestLeg({ manager: page.manager, token: page.token, visitId: page.claims.visit, guestId: page.claims.guest, notices });
  page.leg.start(page.call, Boolean(page.guest && page.guest.consent_recording));
}

function stopCall() {
  if (page.controls) page.controls.stop();
  if (page.call) page.call.stop();
  if (page.leg) page.leg.stop();
}

function closeChat() {
  if (!page.chat) return;
  page.chat.socket.disconnect();
  page.chat = null;
  $("#guest-chat-slot").replaceChildren();
}

/** The server refused the link: removed (revoked), the visit ended, or not valid. */
function refused(refusal) {
  const text = refusal.serverMessage || "";
  showEnd(/revoked|removed/.test(text) ? "removed" : /ended|cancelled|missed/.test(text) ? "ended" : "invalid");
}

/** The page's end: title and sentence of guest.<ending>.*; the link is forgotten. */
function showEnd(ending) {
  if (page.finished) return;
  page.finished = true;
  const title = t(`guest.${ending}.title`);
  $("#refused-title").textContent = title;
  $("#refused-text").textContent = t(`guest.${ending}.text`);
  if (page.device) page.device.stop();
  closeChat();
  stopCall();
  if (page.socket) page.socket.disconnect();
  forgetToken(TOKEN_KEY);
  forgetMediaPrefs();
  showConnection($("#connection"), "closed", t("guest.page_closed"));
  go("refused");
  document.title = title;
}

start();
