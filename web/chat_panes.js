// The staff page's chats (nurses and doctors): one ChatClient for every
// visit's thread, a pane per open chat (several at once), and the unread
// counts shown on the panes, the queue's Chat buttons and the page's title.

import { $, h } from "/static/common.js";
import { ChatClient, ChatView } from "/static/chat.js";
import { formatNumber, t } from "/static/i18n.js";
import { person } from "/static/staff_labels.js";

export class ChatPanes {
  /**
   * @param socket the /chat socket
   * @param notices the page's Notices
   * @param me the signed-in staff member
   * @param visits the QueueView's map of known visits (read only)
   * @param visitShown (visitId) => true while the doctor's visit screen shows that visit's chat
   * @param currentVisit () => the doctor's visit in progress, or null
   * @param onThreadChange (visitId) a thread changed (other views of it re-render)
   * @param onUnreadChange the unread counts changed (the queue re-renders)
   * @param onClose (visitId) a pane was closed
   * @param onPatientMessage (reading) a new patient message arrived; reading: its chat is shown here
   */
  constructor({ socket, notices, me, visits, visitShown, currentVisit, onThreadChange, onUnreadChange, onClose = () => {}, onPatientMessage = () => {} }) {
    this.onClose = onClose;
    this.onPatientMessage = onPatientMessage;
    this.me = me;
    this.visits = visits;
    this.visitShown = visitShown;
    this.currentVisit = currentVisit;
    this.onThreadChange = onThreadChange;
    this.onUnreadChange = onUnreadChange;
    /** Open panes by visit id: {pane, view, badge}. */
    this.panes = new Map();
    /** Unread patient messages by visit id. */
    this.unread = new Map();
    this.client = new ChatClient(socket, {
      me,
      onChange: (thread) => this.renderPane(thread.visitId),
      onMessage: (thread, message, info) => this.countUnread(thread, message, info),
      onError: (err) => notices.error(t("chats.error", { reason: err.message }), "chat"),
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) {
        for (const id of this.panes.keys()) this.unread.set(id, 0);
        const current = this.currentVisit();
        if (current) this.unread.set(current, 0);
        this.renderUnread();
      }
    });
  }

  unreadOf(visitId) {
    return this.unread.get(visitId) || 0;
  }

  /** Threads for these visits (their history is fetched). */
  follow(visits) {
    for (const visit of visits) this.client.thread(visit.visit_id);
  }

  /** The visit ended: its thread takes no more messages. */
  closeThread(visitId) {
    if (!this.client.threads.has(visitId)) return;
    this.client.thread(visitId).closed = true;
    this.renderPane(visitId);
  }

  /** Unread = patient messages since staff last wrote, in threads nobody has open here. */
  countUnread(thread, message, info = {}) {
    const id = thread.visitId;
    const reading = this.isReading(id);
    if (message.role !== "patient") this.unread.set(id, 0);
    else if (!reading) this.unread.set(id, this.unreadOf(id) + 1);
    if (message.role === "patient" && info.live) this.onPatientMessage(reading);
    this.renderUnread();
  }

  isReading(visitId) {
    if (document.hidden) return false;
    if (this.panes.has(visitId)) return true;
    return this.visitShown(visitId);
  }

  renderUnread() {
    let total = 0;
    for (const [id, n] of this.unread) {
      total += n;
      const pane = this.panes.get(id);
      if (pane) showUnread(pane.badge, n);
    }
    showUnread($("#unread-total"), total);
    document.title = total ? t("staff.title.unread", { count: total }) : t("staff.title");
    this.onUnreadChange();
  }

  open(visitId) {
    const existing = this.panes.get(visitId);
    if (existing) {
      existing.view.input.focus();
      return;
    }
    const visit = this.visits.get(visitId) || {};
    const name = visit.patient_name || t("staff.patient");
    const title = t("chats.with", { name });
    const view = new ChatView(this.client, visitId, { title, me: this.me });
    const badge = h("span", { class: "badge", hidden: true });
    const pane = h(
      "section",
      { class: "chat-pane", "aria-label": title },
      h(
        "div",
        { class: "panel-head" },
        h("h3", {}, visit.patient_name ? person(name) : name, " ", badge),
        h("button", { type: "button", class: "btn btn-small", "aria-label": t("chats.close.name", { name }), text: t("chats.close"), on: { click: () => this.close(visitId) } }),
      ),
      person(visit.reason || "", "p", { class: "muted small pane-reason" }),
      view.el,
    );
    pane.addEventListener("focusin", () => this.markRead(visitId));
    this.panes.set(visitId, { pane, view, badge });
    $("#chat-panes").prepend(pane);
    $("#chats-empty").hidden = true;
    this.markRead(visitId);
    view.render();
    view.input.focus();
  }

  close(visitId) {
    const entry = this.panes.get(visitId);
    if (!entry) return;
    entry.pane.remove();
    this.panes.delete(visitId);
    this.onClose(visitId);
    $("#chats-empty").hidden = this.panes.size > 0;
    const back = document.querySelector(`[data-action="chat"][data-visit="${CSS.escape(visitId)}"]`);
    if (back) back.focus();
  }

  markRead(visitId) {
    if (this.unread.get(visitId)) {
      this.unread.set(visitId, 0);
      this.renderUnread();
    }
  }

  renderPane(visitId) {
    const entry = this.panes.get(visitId);
    if (entry) entry.view.render();
    this.onThreadChange(visitId);
  }
}

/**
 * A badge counting unread messages: the number as people see it, and for
 * screen readers a sentence ("3 unread messages") instead of a bare number
 * (no aria-label on a span, which has no role to carry it).
 */
function showUnread(badge, count) {
  badge.hidden = count === 0;
  if (count === 0) {
    badge.replaceChildren();
    return;
  }
  badge.replaceChildren(
    h("span", { "aria-hidden": "true", text: formatNumber(count) }),
    h("span", { class: "visually-hidden", text: t("chats.unread", { count }) }),
  );
}
