// The staff page (/staff#t=<token>) for nurses, doctors and admins:
// the live queue, chat threads, triage and routing (nurse), admit and the
// video visit (doctor), cancelling visits (admin and nurse).

import {
  $,
  ESI_LEVELS,
  Notices,
  STATE_NAMES,
  forgetToken,
  formatClock,
  formatElapsed,
  h,
  openSockets,
  readClaims,
  readToken,
  refusalOf,
  request,
  showConnection,
  showScreen,
  storeToken,
  tokenFromInput,
} from "/static/common.js";
import { ChatClient, ChatView } from "/static/chat.js";
import { CALL_STATES, Call } from "/static/call.js";
import { CaptionsPanel } from "/static/captions.js";
import { ChartLeg } from "/static/chart_leg.js";
import { openMedia, playVideo, stopStream } from "/static/media.js";
import { RecordingStatus, showRecording } from "/static/recording.js";
import { SnapshotGallery, grabFrame, snapshotWarnings } from "/static/snapshots.js";

const TOKEN_KEY = "telemed.staff.token";
const STAFF_ROLES = ["nurse", "doctor", "admin"];
const NAMESPACES = { nurse: ["/queue", "/chat"], doctor: ["/queue", "/chat", "/call", "/media"], admin: ["/queue"] };

/** A call not connected this long after its last offer is started over. */
const CALL_WATCHDOG_MS = 20000;
/** A call "disconnected" this long gets an ICE restart. */
const ICE_RESTART_AFTER_MS = 4000;

const state = {
  token: null,
  claims: null,
  role: null,
  me: null,
  manager: null,
  sockets: {},
  chat: null,
  queueVersion: -1,
  queue: [],
  visits: new Map(),
  doctors: new Set(),
  unread: new Map(),
  panes: new Map(),
  triageVisit: null,
  // doctor
  current: null,
  visitView: null,
  iceServers: [],
  media: null,
  mediaReady: null,
  call: null,
  lastOfferAt: 0,
  restartTimer: 0,
  reofferTimer: 0,
  watchdog: 0,
  leg: null,
  recording: null,
};

const notices = new Notices($("#notices"));
const captions = new CaptionsPanel($("#captions"), $("#captions-state"));
const gallery = new SnapshotGallery($("#gallery"), { onRetake: takeSnapshot });

// -- sign in -------------------------------------------------------------------------

function start() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  bindControls();
  setInterval(refreshWaitingTimes, 15000);
  // A page restored from the back-forward cache has lost its sockets: load it afresh.
  window.addEventListener("pageshow", (e) => e.persisted && location.reload());
  const token = readToken(TOKEN_KEY);
  if (token) connectStaff(token);
  else showSignIn();
}

function showSignIn(message = "") {
  $("#signin-error").textContent = message;
  $("#signin-error").hidden = !message;
  showConnection($("#connection"), "closed", "Not signed in");
  showScreen("signin");
}

function signIn(event) {
  event.preventDefault();
  const token = tokenFromInput($("#signin-token").value);
  const claims = readClaims(token);
  if (!claims) {
    showSignIn("That does not look like a staff token. Paste the whole token or link.");
    return;
  }
  $("#signin-token").value = "";
  storeToken(TOKEN_KEY, token);
  // After a refused sign-in, start from a clean page rather than patch the old state.
  if (state.claims) location.reload();
  else connectStaff(token);
}

function signOut() {
  forgetToken(TOKEN_KEY);
  location.reload();
}

/** Check the token's role, then open the namespaces this role may use. */
function connectStaff(token) {
  const claims = readClaims(token);
  if (!claims || !STAFF_ROLES.includes(claims.role)) {
    forgetToken(TOKEN_KEY);
    showSignIn(claims && claims.role === "patient" ? "That is a patient link; patients use their own page." : "That token cannot be read.");
    return;
  }
  state.token = token;
  state.claims = claims;
  state.role = claims.role;
  state.me = { sub: claims.sub, role: claims.role, name: claims.name || claims.role };
  if (state.role === "doctor") state.doctors.add(claims.sub);
  showIdentity();
  showConnection($("#connection"), "connecting");
  showScreen("queue");

  const { manager, sockets } = openSockets(token, NAMESPACES[state.role]);
  state.manager = manager;
  state.sockets = sockets;
  for (const socket of Object.values(sockets)) watchConnection(socket);
  bindQueue(sockets["/queue"]);
  if (sockets["/chat"]) bindChat(sockets["/chat"]);
  if (sockets["/call"]) bindCall(sockets["/call"]);
  if (sockets["/media"]) bindMedia(sockets["/media"]);
}

function showIdentity() {
  const who = $("#whoami");
  who.textContent = `${state.me.name} · ${state.role}`;
  who.hidden = false;
  $("#sign-out").hidden = false;
  $("#my-id").textContent = state.me.sub;
  document.body.dataset.role = state.role;
  for (const el of document.querySelectorAll("[data-roles]")) {
    el.hidden = !el.dataset.roles.split(" ").includes(state.role);
  }
  $("#queue-title").textContent = state.role === "doctor" ? "Patients waiting" : "Waiting room";
}

function watchConnection(socket) {
  socket.on("connect_error", (err) => {
    const refusal = refusalOf(socket, err);
    if (!refusal) return;
    if (refusal.code === "unavailable" || refusal.code === "rate_limited") {
      const busy = refusal.code === "unavailable";
      const text = busy ? "The server is unavailable." : `Not connected: ${refusal.message}.`;
      notices.show(`${text} Trying again…`, { kind: busy ? "info" : "error", key: "unavailable" });
      setTimeout(() => socket.connect(), busy ? 3000 : 15000);
      return;
    }
    refuse(refusal);
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io server disconnect") setTimeout(() => socket.connect(), 500);
  });
}

/** The server refused the token: back to sign-in with the reason. */
function refuse(refusal) {
  if (!state.manager) return;
  for (const socket of Object.values(state.sockets)) socket.disconnect();
  state.manager = null;
  hangUp({ notify: false });
  forgetToken(TOKEN_KEY);
  const why = /expired/.test(refusal.message)
    ? "Your sign-in has expired."
    : /revoked/.test(refusal.message)
      ? "Your sign-in was revoked."
      : `The server refused the sign-in (${refusal.message}).`;
  showSignIn(`${why} Paste a new staff token to continue.`);
  $("#sign-out").hidden = true;
  $("#whoami").hidden = true;
}

// -- the queue -----------------------------------------------------------------------

function bindQueue(socket) {
  socket.on("connect", () => {
    showConnection($("#connection"), "online");
    notices.clear("unavailable");
  });
  socket.on("disconnect", () => showConnection($("#connection"), "reconnecting"));
  socket.on("queue", applyQueue);
  socket.on("visit", applyVisit);
}

/** A snapshot of the queue; one older than the last is dropped. */
function applyQueue(snapshot) {
  if (snapshot.version < state.queueVersion) return;
  state.queueVersion = snapshot.version;
  state.queue = snapshot.queue;
  for (const visit of snapshot.queue) rememberVisit(visit);
  if (state.chat) for (const visit of snapshot.queue) state.chat.thread(visit.visit_id);
  renderQueue();
  renderActive();
  refreshTriagePanel();
}

function applyVisit(visit) {
  rememberVisit(visit);
  if (visit.state === "ended" && state.chat && state.chat.threads.has(visit.visit_id)) {
    state.chat.thread(visit.visit_id).closed = true;
    renderPane(visit.visit_id);
  }
  if (state.role === "doctor" && visit.doctor === state.me.sub) doctorVisitChanged(visit);
  renderActive();
  refreshTriagePanel();
}

function rememberVisit(visit) {
  state.visits.set(visit.visit_id, visit);
  for (const sub of [visit.routed_to, visit.doctor]) if (sub) state.doctors.add(sub);
  renderKnownDoctors();
}

function renderQueue() {
  const keep = focusedAction();
  const rows = state.queue.map(renderRow);
  $("#queue-body").replaceChildren(...rows);
  $("#queue-empty").hidden = rows.length > 0;
  $("#queue").hidden = rows.length === 0;
  const n = state.queue.length;
  $("#queue-count").textContent = n === 0 ? "" : `${n} waiting`;
  restoreFocus(keep);
}

function renderRow(visit) {
  const id = visit.visit_id;
  return h(
    "tr",
    { dataset: { visit: id }, class: visit.acuity ? `acuity-${visit.acuity}` : "" },
    h("td", { "data-label": "#", class: "pos", text: String(visit.position) }),
    h(
      "td",
      { "data-label": "Patient" },
      h(
        "div",
        {},
        h("strong", { text: visit.patient_name || "Patient" }),
        visit.reason ? h("span", { class: "reason", text: visit.reason }) : null,
        visit.triage_note ? h("span", { class: "note" }, h("span", { class: "note-label", text: "Triage: " }), visit.triage_note) : null,
      ),
    ),
    h("td", { "data-label": "Waiting", class: "waiting", dataset: { since: visit.checked_in_at || "" }, text: formatElapsed(visit.checked_in_at) }),
    h("td", { "data-label": "Acuity" }, acuityBadge(visit.acuity)),
    h("td", { "data-label": "State", text: STATE_NAMES[visit.state] || visit.state }),
    h("td", { "data-label": "Doctor", text: doctorLabel(visit.routed_to, visit.state === "ready" ? "Any doctor" : "—") }),
    h("td", { class: "row-actions" }, ...rowActions(visit)),
  );
}

function rowActions(visit) {
  const id = visit.visit_id;
  const name = visit.patient_name || "patient";
  const actions = [];
  if (state.role !== "admin") {
    const unread = state.unread.get(id) || 0;
    actions.push(
      h(
        "button",
        {
          type: "button",
          class: "btn btn-small",
          dataset: { action: "chat", visit: id },
          "aria-label": `Chat with ${name}${unread ? `, ${unread} unread` : ""}`,
          on: { click: () => openChat(id) },
        },
        "Chat",
        unread ? h("span", { class: "badge", "aria-hidden": "true", text: String(unread) }) : null,
      ),
    );
  }
  if (state.role === "nurse") {
    actions.push(
      h("button", {
        type: "button",
        class: "btn btn-small",
        dataset: { action: "triage", visit: id },
        "aria-label": `Triage ${name}`,
        text: "Triage",
        on: { click: () => openTriage(id) },
      }),
    );
  }
  if (state.role === "doctor") {
    actions.push(
      h("button", {
        type: "button",
        class: "btn btn-small btn-primary",
        dataset: { action: "admit", visit: id },
        "aria-label": `Admit ${name}`,
        text: "Admit",
        on: { click: () => admit(id) },
      }),
    );
  }
  if (state.role === "admin") {
    actions.push(
      h("button", {
        type: "button",
        class: "btn btn-small btn-danger-outline",
        dataset: { action: "cancel", visit: id },
        "aria-label": `Cancel the visit of ${name}`,
        text: "Cancel",
        on: { click: (e) => confirmInline(e.currentTarget, "Cancel?", () => cancelVisit(id)) },
      }),
    );
  }
  return actions;
}

function acuityBadge(acuity) {
  if (!acuity) return h("span", { class: "esi esi-none", text: "Not set" });
  return h("span", { class: `esi esi-${acuity}`, title: ESI_LEVELS[acuity] }, `ESI ${acuity}`, h("span", { class: "esi-name", text: ` ${ESI_LEVELS[acuity]}` }));
}

function doctorLabel(sub, none = "—") {
  if (!sub) return none;
  if (state.me && sub === state.me.sub) return "You";
  return `Dr. ${sub.slice(0, 8)}`;
}

function renderKnownDoctors() {
  const list = $("#known-doctors");
  if (list.children.length === state.doctors.size) return;
  list.replaceChildren(...[...state.doctors].map((sub) => h("option", { value: sub })));
}

/** Visits in progress that this page knows of (from `visit` events). */
function renderActive() {
  const active = [...state.visits.values()].filter((v) => v.state === "in_visit");
  $("#active").hidden = active.length === 0;
  $("#active-list").replaceChildren(
    ...active.map((v) =>
      h(
        "li",
        {},
        h("span", { text: `${v.patient_name || "Patient"} with ${doctorLabel(v.doctor)}` }),
        " ",
        state.role === "doctor" && v.doctor === state.me.sub
          ? h("button", { type: "button", class: "btn btn-small btn-primary", text: "Return to visit", on: { click: () => openVisit(v) } })
          : null,
        state.role !== "admin"
          ? h("button", { type: "button", class: "btn btn-small", text: "Chat", on: { click: () => openChat(v.visit_id) } })
          : null,
      ),
    ),
  );
}

function refreshWaitingTimes() {
  for (const cell of document.querySelectorAll("td.waiting")) {
    cell.textContent = formatElapsed(Number(cell.dataset.since));
  }
  if (state.triageVisit) $("#triage-waiting").textContent = formatElapsed(state.visits.get(state.triageVisit)?.checked_in_at);
}

/** Which row button had focus, so a re-render does not throw the keyboard user out. */
function focusedAction() {
  const el = document.activeElement;
  return el && el.dataset && el.dataset.action ? { action: el.dataset.action, visit: el.dataset.visit } : null;
}

function restoreFocus(keep) {
  if (!keep) return;
  const el = document.querySelector(`[data-action="${keep.action}"][data-visit="${CSS.escape(keep.visit)}"]`);
  if (el) el.focus();
}

/** Replace a button by a small yes/no pair (no confirm()). */
function confirmInline(button, question, onYes) {
  const box = h("span", { class: "inline-confirm" });
  const no = h("button", { type: "button", class: "btn btn-small", text: "No", on: { click: () => { box.replaceWith(button); button.focus(); } } });
  const yes = h("button", { type: "button", class: "btn btn-small btn-danger", text: "Yes", on: { click: onYes } });
  box.append(h("span", { text: question }), " ", yes, " ", no);
  button.replaceWith(box);
  yes.focus();
}

// -- nurse: triage, routing, cancelling ----------------------------------------------------

function bindControls() {
  $("#triage-close").addEventListener("click", closeTriage);
  $("#triage-form").addEventListener("submit", saveTriage);
  $("#route-form").addEventListener("submit", routeVisit);
  $("#cancel-visit").addEventListener("click", () => toggle("#cancel-confirm", "#cancel-visit", true));
  $("#cancel-no").addEventListener("click", () => toggle("#cancel-confirm", "#cancel-visit", false));
  $("#cancel-yes").addEventListener("click", () => cancelVisit(state.triageVisit));
  $("#admit-next").addEventListener("click", () => admit(null));
  $("#end-visit").addEventListener("click", () => toggle("#end-confirm", "#end-visit", true));
  $("#end-no").addEventListener("click", () => toggle("#end-confirm", "#end-visit", false));
  $("#end-yes").addEventListener("click", endVisit);
  $("#back-to-queue").addEventListener("click", () => showScreen("queue"));
  $("#toggle-mic").addEventListener("click", toggleMicrophone);
  $("#toggle-cam").addEventListener("click", toggleCamera);
  $("#tap-to-play").addEventListener("click", playRemote);
  $("#snapshot").addEventListener("click", takeSnapshot);
  $("#summary-done").addEventListener("click", () => showScreen("queue"));
}

function toggle(boxSel, buttonSel, show, { focus = true } = {}) {
  $(boxSel).hidden = !show;
  $(buttonSel).hidden = show;
  if (focus) $(show ? `${boxSel} .btn:last-child` : buttonSel).focus();
}

function openTriage(visitId) {
  state.triageVisit = visitId;
  const visit = state.visits.get(visitId);
  $("#triage").hidden = false;
  $("#triage-title").textContent = `Triage: ${visit.patient_name || "Patient"}`;
  $("#triage-acuity").value = visit.acuity ? String(visit.acuity) : "";
  $("#triage-note").value = visit.triage_note || "";
  $("#route-doctor").value = visit.routed_to || "";
  toggle("#cancel-confirm", "#cancel-visit", false, { focus: false });
  refreshTriagePanel();
  $("#triage").scrollIntoView({ block: "nearest" });
  $("#triage-acuity").focus();
}

function refreshTriagePanel() {
  if (!state.triageVisit) return;
  const visit = state.visits.get(state.triageVisit);
  if (!visit || !["waiting", "in_triage", "ready"].includes(visit.state)) {
    notices.show(`${visit ? visit.patient_name || "The patient" : "The patient"} is no longer in the queue.`, { kind: "info", key: "triage" });
    closeTriage();
    return;
  }
  $("#triage-reason").textContent = visit.reason || "—";
  $("#triage-waiting").textContent = formatElapsed(visit.checked_in_at);
  $("#triage-consent").textContent = visit.consent_recording ? "Yes: recording and transcription" : "No";
}

function closeTriage() {
  const id = state.triageVisit;
  state.triageVisit = null;
  $("#triage").hidden = true;
  const back = id && document.querySelector(`[data-action="triage"][data-visit="${CSS.escape(id)}"]`);
  if (back) back.focus();
}

async function saveTriage(event) {
  event.preventDefault();
  const acuity = $("#triage-acuity").value;
  const payload = { visit_id: state.triageVisit, note: $("#triage-note").value };
  if (acuity) payload.acuity = Number(acuity);
  try {
    const reply = await request(state.sockets["/queue"], "triage", payload);
    rememberVisit(reply.visit);
    notices.show("Triage saved.", { kind: "info", key: "triage" });
  } catch (err) {
    notices.error(`Triage not saved: ${err.message}`, "triage");
  }
}

async function routeVisit(event) {
  event.preventDefault();
  const doctor = $("#route-doctor").value.trim() || null;
  try {
    const reply = await request(state.sockets["/queue"], "route", { visit_id: state.triageVisit, doctor });
    rememberVisit(reply.visit);
    notices.show(doctor ? `Routed to ${doctorLabel(doctor)}.` : "Routed to any doctor.", { kind: "info", key: "triage" });
  } catch (err) {
    notices.error(`Not routed: ${err.message}`, "triage");
  }
}

async function cancelVisit(visitId) {
  try {
    await request(state.sockets["/queue"], "end", { visit_id: visitId });
    notices.show("The visit was cancelled.", { kind: "info", key: "triage" });
  } catch (err) {
    notices.error(`Not cancelled: ${err.message}`, "triage");
  }
}

// -- chats ------------------------------------------------------------------------------

function bindChat(socket) {
  state.chat = new ChatClient(socket, {
    me: state.me,
    onChange: (thread) => renderPane(thread.visitId),
    onMessage: countUnread,
    onError: (err) => notices.error(`Chat: ${err.message}`, "chat"),
  });
}

/** Unread = patient messages since staff last wrote, in threads nobody has open here. */
function countUnread(thread, message) {
  const id = thread.visitId;
  if (message.role !== "patient") state.unread.set(id, 0);
  else if (!isReading(id)) state.unread.set(id, (state.unread.get(id) || 0) + 1);
  renderUnread();
}

function isReading(visitId) {
  if (document.hidden) return false;
  if (state.panes.has(visitId)) return true;
  return state.current === visitId && !$('[data-screen="visit"]').hidden;
}

function renderUnread() {
  let total = 0;
  for (const [id, n] of state.unread) {
    total += n;
    const pane = state.panes.get(id);
    if (pane) {
      pane.badge.hidden = n === 0;
      pane.badge.textContent = String(n);
    }
  }
  $("#unread-total").hidden = total === 0;
  $("#unread-total").textContent = String(total);
  $("#unread-total").setAttribute("aria-label", `${total} unread`);
  document.title = total ? `(${total}) Staff — telemed` : "Staff — telemed";
  renderQueue();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    for (const id of state.panes.keys()) state.unread.set(id, 0);
    if (state.current) state.unread.set(state.current, 0);
    renderUnread();
  }
});

function openChat(visitId) {
  if (!state.chat) return;
  const existing = state.panes.get(visitId);
  if (existing) {
    existing.view.input.focus();
    return;
  }
  const visit = state.visits.get(visitId) || {};
  const name = visit.patient_name || "Patient";
  const view = new ChatView(state.chat, visitId, { title: `Chat with ${name}`, me: state.me });
  const badge = h("span", { class: "badge", hidden: true });
  const pane = h(
    "section",
    { class: "chat-pane", "aria-label": `Chat with ${name}` },
    h(
      "div",
      { class: "panel-head" },
      h("h3", {}, name, " ", badge),
      h("button", { type: "button", class: "btn btn-small", "aria-label": `Close the chat with ${name}`, text: "Close", on: { click: () => closeChat(visitId) } }),
    ),
    h("p", { class: "muted small pane-reason", text: visit.reason || "" }),
    view.el,
  );
  pane.addEventListener("focusin", () => markRead(visitId));
  state.panes.set(visitId, { pane, view, badge });
  $("#chat-panes").prepend(pane);
  $("#chats-empty").hidden = true;
  markRead(visitId);
  view.render();
  view.input.focus();
}

function closeChat(visitId) {
  const entry = state.panes.get(visitId);
  if (!entry) return;
  entry.pane.remove();
  state.panes.delete(visitId);
  $("#chats-empty").hidden = state.panes.size > 0;
  const back = document.querySelector(`[data-action="chat"][data-visit="${CSS.escape(visitId)}"]`);
  if (back) back.focus();
}

function markRead(visitId) {
  if (state.unread.get(visitId)) {
    state.unread.set(visitId, 0);
    renderUnread();
  }
}

function renderPane(visitId) {
  const entry = state.panes.get(visitId);
  if (entry) entry.view.render();
  if (state.visitView && state.current === visitId) state.visitView.render();
}

// -- doctor: admit and the visit -----------------------------------------------------------

async function admit(visitId) {
  const payload = visitId ? { visit_id: visitId } : {};
  try {
    const reply = await request(state.sockets["/queue"], "admit", payload);
    if (reply.ice_servers) state.iceServers = reply.ice_servers;
    rememberVisit(reply.visit);
    openVisit(reply.visit);
  } catch (err) {
    const text = err.code === "not_found" && !visitId ? "Nobody is waiting for you right now." : `Could not admit: ${err.message}`;
    notices.error(text, "admit");
  }
}

/** `visit` events about this doctor's own visits: resume after a reload, or finish. */
function doctorVisitChanged(visit) {
  if (visit.state === "in_visit" && !state.current) openVisit(visit);
  else if (visit.state === "ended" && state.current === visit.visit_id) showSummary(visit);
}

function openVisit(visit) {
  notices.clear("admit");
  if (state.current && state.current !== visit.visit_id) hangUp({ notify: true });
  const same = state.current === visit.visit_id;
  state.current = visit.visit_id;
  showVisitFacts(visit);
  showScreen("visit");
  toggle("#end-confirm", "#end-visit", false, { focus: false });
  markRead(visit.visit_id);
  if (same) return; // already open (the admit ack and the `visit` event both get here)
  state.visitView = new ChatView(state.chat, visit.visit_id, { title: `Chat with ${visit.patient_name || "the patient"}`, me: state.me });
  $("#visit-chat-slot").replaceChildren(state.visitView.el);
  state.mediaReady = state.mediaReady || startLocalMedia();
  startCall();
  startChart(visit);
  clearInterval(state.watchdog);
  state.watchdog = setInterval(checkCall, 5000);
}

function showVisitFacts(visit) {
  const name = visit.patient_name || "the patient";
  $("#visit-title").textContent = `Visit with ${name}`;
  $("#visit-reason").textContent = visit.reason || "—";
  $("#visit-acuity").replaceChildren(acuityBadge(visit.acuity));
  $("#visit-note").textContent = visit.triage_note || "No triage note.";
  $("#visit-consent").textContent = visit.consent_recording ? "Yes: recording and transcription" : "No";
  document.title = `Visit with ${name} — telemed`;
}

async function startLocalMedia() {
  try {
    const opened = await openMedia();
    state.media = opened.stream;
    $("#local-video").srcObject = opened.stream;
    $("#local-video").hidden = !opened.video;
    $("#toggle-cam").disabled = !opened.video;
    $("#toggle-mic").disabled = !opened.audio;
    $("#call-media-note").hidden = true;
    await playVideo($("#local-video"));
    return opened.stream;
  } catch (problem) {
    $("#call-media-note").textContent = `${problem.title}. ${problem.message} The patient will not see or hear you.`;
    $("#call-media-note").hidden = false;
    $("#local-video").hidden = true;
    return null;
  }
}

function bindCall(socket) {
  socket.on("ice_servers", (p) => (state.iceServers = p.ice_servers || []));
  socket.on("connect", () => {
    // Signaling may have been lost while this socket was away: restart ICE on
    // the call there is, or start one (the patient's page asks for a new call
    // when it has none to restart).
    if (!state.current || (state.call && state.call.state === "connected")) return;
    if (state.call && !state.call.closed) startCall({ restart: true });
    else scheduleNewCall(500);
  });
  socket.on("answer", (p) => {
    if (state.call && p.visit_id === state.current) state.call.handleAnswer(p).catch(callTrouble);
  });
  socket.on("candidate", (p) => {
    if (state.call && p.visit_id === state.current) state.call.handleCandidate(p);
  });
  socket.on("hangup", onPatientHangup);
  socket.on("offer", () => {}); // the doctor makes the offers
  window.addEventListener("pagehide", () => hangUp({ notify: true }));
}

/**
 * Make an offer to the patient: a new connection, or an ICE restart of the
 * current one (restart). Needs the /call socket; its connect handler calls
 * again if it is away.
 */
async function startCall({ restart = false } = {}) {
  const socket = state.sockets["/call"];
  const visitId = state.current;
  if (!visitId || !socket.connected) return;
  await state.mediaReady;
  if (state.current !== visitId) return;
  state.lastOfferAt = Date.now();
  if (restart && state.call && !state.call.closed) {
    state.call.offer({ restart: true }).catch(callTrouble);
    return;
  }
  if (state.call) state.call.close();
  const call = new Call({
    socket,
    visitId,
    iceServers: state.iceServers,
    localStream: state.media,
    onRemoteStream: showRemote,
    onState: (s) => {
      if (state.call === call) onCallState(s);
    },
  });
  state.call = call;
  onCallState("new");
  applyToggles();
  call.offer().catch(callTrouble);
}

/** A failed signaling step; the watchdog starts the call over if it stays down. */
function callTrouble(err) {
  if (err && err.code === "conflict") return; // the visit is no longer in progress
  notices.error(`Call: ${err.message}`, "call");
}

function scheduleNewCall(delay) {
  clearTimeout(state.reofferTimer);
  state.reofferTimer = setTimeout(() => startCall(), delay);
}

/** The patient's page dropped its call (reload, lost connection): start over, once. */
function onPatientHangup(p) {
  if (p.visit_id !== state.current) return;
  if (state.call) state.call.close();
  clearRemote();
  showCallState("connecting", "The patient’s page reconnected. Calling again…");
  scheduleNewCall(800);
}

function onCallState(s) {
  clearTimeout(state.restartTimer);
  if (s === "disconnected") {
    state.restartTimer = setTimeout(() => startCall({ restart: true }), ICE_RESTART_AFTER_MS);
  } else if (s === "failed") {
    startCall({ restart: true });
  }
  const text = s === "new" || s === "connecting" ? "Calling the patient…" : undefined;
  showCallState(s, text);
}

/** A call that does not connect in time is started over (lost offer, patient away). */
function checkCall() {
  if (!state.current || !state.call) return;
  if (state.call.state === "connected") return;
  if (Date.now() - state.lastOfferAt > CALL_WATCHDOG_MS) startCall();
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

function clearRemote() {
  $("#remote-video").srcObject = null;
  $("#remote-empty").hidden = false;
}

function toggleMicrophone() {
  const button = $("#toggle-mic");
  button.dataset.off = String(button.dataset.off !== "true");
  applyToggles();
}

function toggleCamera() {
  const button = $("#toggle-cam");
  button.dataset.off = String(button.dataset.off !== "true");
  applyToggles();
}

function applyToggles() {
  const micOff = $("#toggle-mic").dataset.off === "true";
  const camOff = $("#toggle-cam").dataset.off === "true";
  $("#toggle-mic").textContent = micOff ? "Unmute microphone" : "Mute microphone";
  $("#toggle-cam").textContent = camOff ? "Turn camera on" : "Turn camera off";
  if (!state.media) return;
  for (const track of state.media.getTracks()) {
    track.enabled = track.kind === "audio" ? !micOff : !camOff;
  }
}

/** Close the call (telling the patient's page when notify) and release the camera. */
function hangUp({ notify }) {
  clearInterval(state.watchdog);
  clearTimeout(state.restartTimer);
  clearTimeout(state.reofferTimer);
  if (state.call) state.call.close({ notify });
  state.call = null;
  stopChart();
  stopStream(state.media);
  state.media = null;
  state.mediaReady = null;
  $("#local-video").srcObject = null;
  clearRemote();
}

async function endVisit() {
  const visitId = state.current;
  hangUp({ notify: true });
  try {
    const reply = await request(state.sockets["/queue"], "end", { visit_id: visitId });
    rememberVisit(reply.visit);
    showSummary(reply.visit);
  } catch (err) {
    notices.error(`The visit did not end: ${err.message}`, "end");
    toggle("#end-confirm", "#end-visit", false);
  }
}

function showSummary(visit) {
  const chart = chartFacts(visit);
  if (state.current === visit.visit_id) {
    hangUp({ notify: false });
    state.current = null;
    state.visitView = null;
  }
  const thread = state.chat ? state.chat.thread(visit.visit_id) : null;
  const seconds = visit.admitted_at && visit.ended_at ? visit.ended_at - visit.admitted_at : null;
  const length = seconds === null ? "—" : seconds < 60 ? "less than a minute" : `${Math.round(seconds / 60)} min`;
  const rows = [
    ["Patient", visit.patient_name || "Patient"],
    ["Reason", visit.reason || "—"],
    ["Acuity", visit.acuity ? `ESI ${visit.acuity} (${ESI_LEVELS[visit.acuity]})` : "Not set"],
    ["Triage note", visit.triage_note || "—"],
    ["Checked in", formatClock(visit.checked_in_at) || "—"],
    ["Admitted", formatClock(visit.admitted_at) || "—"],
    ["Ended", formatClock(visit.ended_at) || "—"],
    ["Length", length],
    ["Chat messages", thread ? String(thread.messages.size) : "—"],
    ["Recording consent", visit.consent_recording ? "Yes" : "No"],
    ["Recordings", chart.recordings],
    ["Snapshots", chart.snapshots],
    ["Transcript", chart.transcript],
    ["Outcome", visit.end_reason || "—"],
  ];
  $("#summary").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
  document.title = "Visit summary — telemed";
  showScreen("summary");
}

// -- doctor: the chart (recording, captions, snapshots) ------------------------------------

function bindMedia(socket) {
  socket.on("connect", () => {
    if (state.leg) state.leg.socketConnected();
    if (state.recording) state.recording.refresh();
  });
  socket.on("leg_answer", (p) => state.leg && state.leg.handleAnswer(p));
  socket.on("recording", (p) => {
    if (state.recording) state.recording.applyEvent(p);
    if (state.leg) state.leg.recordingChanged(p);
  });
  socket.on("caption", (p) => captions.applyCaption(p));
  socket.on("captions", (p) => captions.applyState(p));
}

/**
 * A visit opened on this page: show whether it is recorded, and (with the
 * patient's consent) send own camera and microphone to the chart on a
 * second, send-only connection to the media worker.
 */
function startChart(visit) {
  stopChart();
  const socket = state.sockets["/media"];
  const visitId = visit.visit_id;
  const consent = Boolean(visit.consent_recording);
  captions.reset(visitId, { consent });
  gallery.clear();
  $("#snapshot").disabled = !consent;
  $("#snapshot-state").textContent = consent ? "" : "No snapshots: the patient did not agree to recording.";
  state.recording = new RecordingStatus({
    socket,
    visitId,
    onChange: (status) => showRecording($("#recording"), status, "doctor"),
  });
  state.recording.refresh();
  if (!consent) return;
  Promise.resolve(state.mediaReady).then((stream) => {
    if (state.current !== visitId || state.leg || !stream) return;
    state.leg = new ChartLeg({ socket, visitId, role: "doctor", iceServers: state.iceServers, onState: chartLegState });
    state.leg.start(stream);
  });
}

/** Stop sending to the chart; what the page learnt (files, shots, captions) stays for the summary. */
function stopChart() {
  if (state.leg) state.leg.stop();
  state.leg = null;
  if (state.recording) state.recording.close();
  showRecording($("#recording"), null, "doctor");
}

function chartLegState(s, err) {
  // A conflict means the visit is no longer in progress: its `visit` event says so.
  if (s === "refused" && !(err && err.code === "conflict")) notices.error(`Your video is not recorded: ${err ? err.message : "refused"}.`, "chart-leg");
  else if (s === "connected") notices.clear("chart-leg");
}

async function takeSnapshot() {
  const visitId = state.current;
  const socket = state.sockets["/media"];
  if (!visitId || !socket) return;
  const button = $("#snapshot");
  button.disabled = true;
  notices.clear("snapshot");
  $("#snapshot-state").textContent = "Taking a snapshot…";
  const preview = grabFrame($("#remote-video"));
  try {
    const reply = await request(socket, "snapshot", { visit_id: visitId }, 15000);
    if (state.current !== visitId) return;
    const item = gallery.add(reply.snapshot, preview);
    if (reply.snapshot.file) {
      // The preview stays if the chart's copy cannot be fetched (the visit goes on).
      gallery.showStored(item, `/api/visits/${encodeURIComponent(visitId)}/files/${reply.snapshot.file}`, state.token).catch(() => {});
    }
    const warnings = snapshotWarnings(reply.snapshot);
    $("#snapshot-state").textContent = `Snapshot saved to the chart.${warnings.length ? ` ${warnings.join(" ")}` : ""}`;
  } catch (err) {
    $("#snapshot-state").textContent = "";
    notices.error(snapshotProblem(err), "snapshot");
  } finally {
    button.disabled = state.current !== visitId;
  }
}

function snapshotProblem(err) {
  if (err.code === "not_found") {
    return "No snapshot: the patient’s video is not being recorded right now. Wait for the recording indicator, then try again.";
  }
  if (err.code === "forbidden" && err.details && err.details.reason === "no_consent") {
    return "No snapshot: the patient did not agree to recording.";
  }
  return `No snapshot: ${err.message}`;
}

/** What this page saw go into the chart of a visit, for the summary. */
function chartFacts(visit) {
  if (!visit.consent_recording) {
    const none = "None (no recording consent)";
    return { recordings: none, snapshots: none, transcript: none };
  }
  const mine = state.recording && state.recording.visitId === visit.visit_id;
  const files = mine ? state.recording.files : [];
  const shots = captions.visitId === visit.visit_id ? gallery.files : [];
  return {
    recordings: files.length ? files.join(", ") : "None seen on this page",
    snapshots: shots.length ? `${shots.length}: ${shots.join(", ")}` : "None",
    transcript: captions.visitId === visit.visit_id ? captions.describe() : "—",
  };
}

start();
