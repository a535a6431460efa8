// The staff page (/staff#t=<token>) for nurses, doctors and admins: signs in
// (staff_signin.js) and wires the views the role uses: the live queue
// (queue_view.js), triage, routing and inviting guests for nurses
// (triage_view.js), chats (chat_panes.js), the doctor's visit (doctor_visit.js,
// with the call and the chart panels), and a colleague's invitation to join a
// visit as a clinician guest (guest_invitations.js). Admins and nurses cancel visits.

import { AdminView } from "/static/admin_view.js";
import { InactivityLock } from "/static/inactivity_lock.js";
import { t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";
import { $, Notices, forgetToken, openSockets, readClaims, readToken, showConnection, showScreen } from "/static/common.js";
import { mountStage } from "/static/call_view.js";
import { watchSockets } from "/static/connection.js";
import { ChartBrowser } from "/static/chart_browser.js";
import { ChatPanes } from "/static/chat_panes.js";
import { DoctorVisit } from "/static/doctor_visit.js";
import { ExpectedView } from "/static/expected_view.js";
import { GuestInvitations } from "/static/guest_invitations.js";
import { InviteView } from "/static/invite_view.js";
import { QueueView } from "/static/queue_view.js";
import { StaffAlerts } from "/static/staff_alerts.js";
import { bindSignIn, showSignIn } from "/static/staff_signin.js";
import { knowsName, nameList, person, showNotice, staffName } from "/static/staff_labels.js";
import { TriageClaims } from "/static/triage_claims.js";
import { TriageView } from "/static/triage_view.js";

const TOKEN_KEY = "telemed.staff.token";
const STAFF_ROLES = ["nurse", "doctor", "admin"];
const NAMESPACES = { nurse: ["/queue", "/chat"], doctor: ["/queue", "/chat", "/call", "/media"], admin: ["/queue"] };

const notices = new Notices($("#notices"));

/** The signed-in session ({sockets, visit, refused}); null before a token was accepted. */
let session = null;

function start() {
  mountStage($("#call-stage"), { peer: "patient", tapVerb: "Click" });
  bindSignIn({ tokenKey: TOKEN_KEY, onToken });
  // A page restored from the back-forward cache has lost its sockets: load it afresh.
  window.addEventListener("pageshow", (e) => e.persisted && location.reload());
  const token = readToken(TOKEN_KEY);
  if (token) connectStaff(token);
  else showSignIn();
}

function onToken(token) {
  // After a refused sign-in, start from a clean page rather than patch the old state.
  if (session) location.reload();
  else connectStaff(token);
}

/** Check the token's role, then open the namespaces this role may use and make its views. */
function connectStaff(token) {
  const claims = readClaims(token);
  if (!claims || !STAFF_ROLES.includes(claims.role)) {
    forgetToken(TOKEN_KEY);
    showSignIn(t(claims && claims.role === "patient" ? "signin.patient_link" : "signin.unreadable"));
    return;
  }
  const role = claims.role;
  const me = { sub: claims.sub, role, name: claims.name || role };
  showIdentity(me);
  showConnection($("#connection"), "connecting");
  showScreen("queue");

  const { sockets } = openSockets(token, NAMESPACES[role]);
  session = { sockets, visit: null, refused: false };
  watchSockets(sockets, { notices, busyText: t("staff.unavailable"), onRefused: refuse });

  let chats = null;
  let visit = null;
  const openPatients = new TriageClaims({ socket: sockets["/queue"], role });
  /** Open a patient's chat; a nurse is told who else has them open. */
  const openChat = async (id) => {
    if (!chats) return;
    chats.open(id);
    const others = await openPatients.hold(id, "chat");
    if (others.length) {
      const name = (queue.visits.get(id) || {}).patient_name;
      const params = { count: others.length, names: nameList(others) };
      const said = name ? tNodes("chats.claimed", { ...params, patient: person(name) }) : tNodes("triage.claimed", params);
      showNotice(notices, said, { kind: "info", key: `claim-${id}` });
    }
  };
  const queue = new QueueView({
    role,
    me,
    unreadOf: (id) => (chats ? chats.unreadOf(id) : 0),
    actions: {
      chat: (id) => openChat(id),
      triage: (id) => triage.open(id),
      admit: (id) => visit.admit(id),
      cancel: (id) => triage.cancel(id),
      returnTo: (v) => visit.open(v),
    },
  });
  const remember = (v) => queue.remember(v);
  // Opt-in sound and notification when a patient arrives or writes (no names in them).
  const alerts = new StaffAlerts($("#alerts"), { isLocked: () => Boolean(session.lock && session.lock.locked) });
  const roster = () => queue.staff;
  const triage = new TriageView({ socket: sockets["/queue"], notices, me, visits: queue.visits, remember, claims: openPatients, roster, token });
  if (sockets["/chat"]) {
    chats = new ChatPanes({
      socket: sockets["/chat"],
      notices,
      me,
      visits: queue.visits,
      visitShown: (id) => Boolean(visit && visit.isShowing(id)),
      currentVisit: () => visit && visit.current,
      onThreadChange: (id) => visit && visit.renderChat(id),
      onUnreadChange: () => queue.render(),
      onClose: (id) => openPatients.drop(id, "chat"),
      onPatientMessage: (reading) => alerts.patientWrote(reading),
    });
  }
  if (role === "doctor") {
    visit = new DoctorVisit({ sockets, notices, me, token, remember, chats });
    // The visit's people panel may invite a colleague of the roster as a clinician guest.
    Object.assign(visit.guests, { roster, me });
  }
  const invitations = role === "admin" ? null : new GuestInvitations($("#guest-invitations"), { token });
  session.visit = visit;
  const charts = new ChartBrowser($("#chart-browser"), { token, back: () => showScreen("queue") });
  $("#open-charts").addEventListener("click", () => charts.show());
  $("#open-charts").hidden = false;
  const expected = bindInvitations(token, claims.clinic);
  if (role === "admin") bindAdmin(token, claims.clinic);
  // Automatic logoff: health data hidden after a while without input; a live call counts as use.
  session.lock = new InactivityLock({ token, content: $("#main"), busy: () => Boolean(visit && visit.current) && !$('[data-screen="visit"]').hidden });

  const socket = sockets["/queue"];
  socket.on("connect", () => {
    showConnection($("#connection"), "online");
    notices.clear("unavailable");
    expected.refresh(); // an invitation made before this socket was in the clinic's room
    if (invitations) invitations.refresh();
  });
  socket.on("guests", (message) => {
    if (triage.guests) triage.guests.apply(message);
    if (invitations) invitations.guestsChanged(message);
  });
  socket.on("disconnect", () => showConnection($("#connection"), "reconnecting"));
  socket.on("queue", (snapshot) => {
    if (!queue.applySnapshot(snapshot)) return;
    if (chats) chats.follow(snapshot.queue);
    queue.render();
    queue.renderActive();
    triage.refresh();
    alerts.queueChanged(snapshot.queue);
  });
  // A routed patient went back to the shared queue (their doctor went off duty).
  socket.on("queue_notice", (n) => showNotice(notices, returnedNotice(n), { kind: "info", key: `queue-notice-${n.visit_id}` }));
  socket.on("visit", (v) => {
    queue.remember(v);
    expected.visitChanged(v);
    if (invitations) invitations.visitChanged(v);
    if (v.state === "ended" && chats) chats.closeThread(v.visit_id);
    if (visit && v.doctor === me.sub) visit.visitChanged(v);
    queue.renderActive();
    triage.refresh();
  });
  setInterval(() => {
    queue.refreshWaitingTimes();
    triage.refreshWaitingTime();
  }, 15000);
}

/** Invite a patient (its own screen) and the expected list (on the queue screen). */
function bindInvitations(token, clinic) {
  const invite = new InviteView($("#invite"), { token, onInvited: () => expected.refresh() });
  const expected = new ExpectedView($("#expected"), { token, clinic, onWalkIn: (link) => invite.setWalkIn(link) });
  $("#open-invite").addEventListener("click", () => {
    showScreen("invite");
    expected.refresh();
  });
  $("#invite-done").addEventListener("click", () => showScreen("queue"));
  $("#open-invite").hidden = false;
  return expected;
}

/** The admin's console, on its own screen behind the top bar's "Administration". */
function bindAdmin(token, clinic) {
  const admin = new AdminView({ root: $("#admin-console"), token, clinic });
  $("#open-admin").addEventListener("click", () => admin.show());
  $("#open-admin").hidden = false;
  $("#admin-done").addEventListener("click", () => showScreen("queue"));
}

/** A routed patient went back to the shared queue (a `queue_notice` of kind "returned"), in words. */
function returnedNotice(n) {
  const patient = n.patient_name ? person(n.patient_name) : t("staff.a_patient");
  const doctor = knowsName(n.doctor) ? person(staffName(n.doctor)) : t("staff.the_doctor");
  return tNodes("queue.returned", { patient, doctor });
}

function showIdentity(me) {
  const who = $("#whoami");
  const role = t(`staff.role.${me.role}`);
  who.replaceChildren(...tNodes("staff.whoami", { name: person(me.name), role }));
  who.hidden = false;
  $("#sign-out").hidden = false;
  document.body.dataset.role = me.role;
  for (const el of document.querySelectorAll("[data-roles]")) {
    el.hidden = !el.dataset.roles.split(" ").includes(me.role);
  }
  $("#queue-title").textContent = t(me.role === "doctor" ? "queue.title.doctor" : "queue.title.nurse");
}

/** The server refused the token: back to sign-in with the reason. */
function refuse(refusal) {
  if (!session || session.refused) return;
  session.refused = true;
  if (session.lock) session.lock.stop();
  for (const socket of Object.values(session.sockets)) socket.disconnect();
  if (session.visit) session.visit.hangUp({ notify: false });
  forgetToken(TOKEN_KEY);
  // The server's own words tell an expired sign-in from a revoked one (both are "unauthorized").
  const said = refusal.serverMessage || "";
  const why = /expired/.test(said) ? t("signin.expired") : /revoked/.test(said) ? t("signin.revoked") : t("signin.refused", { reason: refusal.message });
  showSignIn(why);
  $("#sign-out").hidden = true;
  $("#whoami").hidden = true;
  $("#open-charts").hidden = true;
  $("#chart-browser").replaceChildren(); // no chart stays in the page after the sign-in is refused
}

start();
