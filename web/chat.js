// Triage chat over the /chat namespace, for the patient page and the staff page.
//
// Delivery rules (see signaling/chat_ns.py and telemed/chat.py):
// - a message is sent with a client-chosen client_id and re-sent on every
//   reconnect until it is acknowledged; the server stores it once;
// - on every (re)connect each thread asks `history` for what came after the
//   last stream id it holds without a gap, so nothing sent meanwhile is missed;
// - messages are de-duplicated by their stream id.

import { h, formatClock, randomId, request } from "/static/common.js";
import { has, t } from "/static/i18n.js";

/** Largest message the server takes, in UTF-8 bytes (schemas.CHAT_MAX_BYTES). */
export const CHAT_MAX_BYTES = 4096;

function compareIds(a, b) {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

/** One visit's conversation. */
export class ChatThread {
  constructor(visitId) {
    this.visitId = visitId;
    /** Stored messages by stream id. */
    this.messages = new Map();
    /** Messages not yet acknowledged, by client_id: {client_id, text, failed}. */
    this.pending = new Map();
    /** Last stream id up to which this thread holds every message. */
    this.cursor = null;
    this.synced = false;
    this.closed = false;
  }

  /** Add a stored message; false if it was already known. */
  add(message) {
    this.pending.delete(message.client_id);
    if (this.messages.has(message.id)) return false;
    this.messages.set(message.id, message);
    return true;
  }

  advance(id) {
    if (!this.cursor || compareIds(id, this.cursor) > 0) this.cursor = id;
  }

  ordered() {
    return [...this.messages.values()].sort((a, b) => compareIds(a.id, b.id));
  }
}

/**
 * The chat side of a page: one /chat socket, any number of threads.
 * Callbacks: onChange(thread), onMessage(thread, message, {live}) for each new message.
 */
export class ChatClient {
  constructor(socket, { me, onChange = () => {}, onMessage = () => {}, onError = () => {} }) {
    this.socket = socket;
    this.me = me;
    this.onChange = onChange;
    this.onMessage = onMessage;
    this.onError = onError;
    this.threads = new Map();
    socket.on("connect", () => this.resync());
    socket.on("disconnect", () => this.markUnsynced());
    socket.on("message", (m) => this.receive(m));
  }

  thread(visitId) {
    let thread = this.threads.get(visitId);
    if (!thread) {
      thread = new ChatThread(visitId);
      this.restorePending(thread);
      this.threads.set(visitId, thread);
      if (this.socket.connected) this.sync(thread);
    }
    return thread;
  }

  receive(message) {
    const thread = this.thread(message.visit_id);
    if (thread.add(message)) {
      // A live message advances the cursor only once the thread has no gap before it.
      if (thread.synced) thread.advance(message.id);
      this.savePending(thread);
      this.onMessage(thread, message, { live: true });
    }
    this.onChange(thread);
  }

  markUnsynced() {
    for (const thread of this.threads.values()) thread.synced = false;
  }

  /** One thread after the other, so a page with many threads stays under the server's event rate. */
  async resync() {
    for (const thread of [...this.threads.values()]) {
      if (!this.socket.connected) return;
      await this.sync(thread);
    }
  }

  retryLater(fn) {
    setTimeout(fn, 1000 + Math.random() * 1000);
  }

  /** Fetch everything after the thread's cursor, page by page, then flush its unsent messages. */
  async sync(thread) {
    if (thread.syncing) return;
    thread.syncing = true;
    try {
      let more = true;
      while (more) {
        const payload = { visit_id: thread.visitId };
        if (thread.cursor) payload.after = thread.cursor;
        const reply = await request(this.socket, "history", payload);
        const first = thread.cursor === null;
        for (const message of reply.messages) {
          if (thread.add(message)) this.onMessage(thread, message, { live: false, first });
          thread.advance(message.id);
        }
        more = reply.more && reply.messages.length > 0;
      }
      // Messages that arrived live meanwhile are in the history too: the cursor is gap-free now.
      for (const id of thread.messages.keys()) thread.advance(id);
      thread.synced = true;
      this.savePending(thread);
      this.onChange(thread);
      await this.flush(thread);
    } catch (err) {
      if (err.code === "unauthorized" || err.code === "forbidden" || err.code === "not_found") {
        thread.closed = true;
        this.onChange(thread);
      } else if (err.code === "rate_limited") {
        this.retryLater(() => this.socket.connected && this.sync(thread));
      } else if (err.code !== "timeout") {
        this.onError(err, thread);
      }
    } finally {
      thread.syncing = false;
    }
  }

  /** Send a message; it is kept and re-sent until the server acknowledges it. */
  send(visitId, text) {
    const bytes = new TextEncoder().encode(text).length;
    if (!text.trim()) throw new Error(t("chat.error.empty"));
    if (bytes > CHAT_MAX_BYTES) throw new Error(t("chat.error.too_long"));
    const thread = this.thread(visitId);
    const item = { client_id: randomId(), text, failed: null, ts: Date.now() / 1000 };
    thread.pending.set(item.client_id, item);
    this.savePending(thread);
    this.onChange(thread);
    if (this.socket.connected) this.deliver(thread, item);
  }

  retry(visitId, clientId) {
    const thread = this.thread(visitId);
    const item = thread.pending.get(clientId);
    if (!item) return;
    item.failed = null;
    this.onChange(thread);
    if (this.socket.connected) this.deliver(thread, item);
  }

  discard(visitId, clientId) {
    const thread = this.thread(visitId);
    thread.pending.delete(clientId);
    this.savePending(thread);
    this.onChange(thread);
  }

  async flush(thread) {
    for (const item of [...thread.pending.values()]) {
      if (!item.failed) await this.deliver(thread, item);
    }
  }

  async deliver(thread, item) {
    if (item.sending) return;
    item.sending = true;
    try {
      const reply = await request(this.socket, "send", {
        visit_id: thread.visitId,
        client_id: item.client_id,
        text: item.text,
      });
      // The ack carries the stream id; the message itself also arrives as a `message` event.
      if (!thread.messages.has(reply.id)) {
        const message = {
          id: reply.id,
          client_id: item.client_id,
          visit_id: thread.visitId,
          sender: this.me.sub,
          role: this.me.role,
          name: this.me.name,
          text: item.text,
          ts: reply.ts,
        };
        thread.add(message);
        if (thread.synced) thread.advance(message.id);
        this.onMessage(thread, message, { live: true });
      }
      thread.pending.delete(item.client_id);
    } catch (err) {
      // A timeout stays pending (re-sent on reconnect); a refusal needs the user. "unavailable"
      // (Redis failing over, or not yet saved on a replica) is sent again, same client id.
      if (err.code === "rate_limited" || err.code === "unavailable") this.retryLater(() => this.socket.connected && this.deliver(thread, item));
      else if (err.code !== "timeout") item.failed = err.message;
      if (err.code === "conflict" || err.code === "unauthorized") thread.closed = true;
    } finally {
      item.sending = false;
      this.savePending(thread);
      this.onChange(thread);
    }
  }

  // Unsent messages survive a reload of the page (same tab).
  storageKey(thread) {
    return `telemed.chat.pending.${thread.visitId}`;
  }

  savePending(thread) {
    const items = [...thread.pending.values()].map(({ client_id, text, ts }) => ({ client_id, text, ts }));
    if (items.length) sessionStorage.setItem(this.storageKey(thread), JSON.stringify(items));
    else sessionStorage.removeItem(this.storageKey(thread));
  }

  restorePending(thread) {
    try {
      for (const item of JSON.parse(sessionStorage.getItem(this.storageKey(thread)) || "[]")) {
        thread.pending.set(item.client_id, { ...item, failed: null });
      }
    } catch {
      sessionStorage.removeItem(this.storageKey(thread));
    }
  }
}

/** A sender's role in words, for a message without a name. */
function roleName(role) {
  return has(`chat.role.${role}`) ? t(`chat.role.${role}`) : t("chat.role.other");
}

/**
 * A chat box bound to one thread: the message log and a form to write.
 * `title` labels the box for assistive technology (in the page's language).
 * The log is a container with role="log" around a plain list, so the
 * messages keep their list semantics (a role on the <ol> itself strips them).
 */
export class ChatView {
  constructor(client, visitId, { title = t("chat.title"), me, placeholder = t("chat.placeholder") } = {}) {
    this.client = client;
    this.visitId = visitId;
    this.me = me;
    const inputId = `chat-input-${visitId}-${randomId().slice(0, 6)}`;
    this.list = h("ol", { class: "chat-messages" });
    this.log = h("div", { class: "chat-log", role: "log", "aria-live": "polite", "aria-label": t("chat.log_label", { title }) }, this.list);
    this.empty = h("p", { class: "chat-empty", text: t("chat.empty") });
    this.input = h("textarea", {
      id: inputId,
      rows: 1,
      maxlength: 2000,
      placeholder,
      autocomplete: "off",
      enterkeyhint: "send",
    });
    this.error = h("p", { class: "chat-error", role: "alert", hidden: true });
    this.sendButton = h("button", { type: "submit", class: "btn btn-primary", text: t("chat.send") });
    this.form = h(
      "form",
      { class: "chat-form", on: { submit: (e) => this.submit(e) } },
      h("label", { for: inputId, class: "visually-hidden", text: t("chat.message_label") }),
      this.input,
      this.sendButton,
    );
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.el = h("div", { class: "chat", "aria-label": title, role: "group" }, this.log, this.empty, this.error, this.form);
    this.render();
  }

  submit(event) {
    event.preventDefault();
    const text = this.input.value;
    try {
      this.client.send(this.visitId, text);
      this.input.value = "";
      this.error.hidden = true;
    } catch (err) {
      this.error.textContent = err.message;
      this.error.hidden = false;
    }
    this.input.focus();
  }

  render() {
    const thread = this.client.thread(this.visitId);
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    const items = thread.ordered().map((m) => this.renderMessage(m));
    for (const p of thread.pending.values()) items.push(this.renderPending(p));
    this.list.replaceChildren(...items);
    this.log.hidden = items.length === 0;
    this.empty.hidden = items.length > 0;
    const closed = thread.closed;
    this.input.disabled = closed;
    this.sendButton.disabled = closed;
    if (closed) this.input.placeholder = t("chat.closed");
    if (atBottom || items.length <= 1) this.log.scrollTop = this.log.scrollHeight;
  }

  renderMessage(m) {
    const mine = m.sender === this.me.sub;
    return h(
      "li",
      { class: `msg ${mine ? "msg-mine" : "msg-theirs"} msg-${m.role}`, dataset: { id: m.id } },
      h(
        "p",
        { class: "msg-meta" },
        mine || !m.name
          ? h("span", { class: "msg-name", text: mine ? t("chat.you") : roleName(m.role) })
          : h("span", { class: "msg-name", translate: "no", text: m.name }),
        " ",
        h("time", { datetime: new Date(m.ts * 1000).toISOString(), text: formatClock(m.ts) }),
      ),
      h("p", { class: "msg-text", translate: "no", text: m.text }),
    );
  }

  renderPending(p) {
    const status = p.failed
      ? h(
          "span",
          { class: "msg-failed" },
          `${t("chat.not_sent", { reason: p.failed })} `,
          h("button", {
            type: "button",
            class: "btn-link",
            text: t("chat.retry"),
            on: { click: () => this.client.retry(this.visitId, p.client_id) },
          }),
          " ",
          h("button", {
            type: "button",
            class: "btn-link",
            text: t("chat.discard"),
            on: { click: () => this.client.discard(this.visitId, p.client_id) },
          }),
        )
      : h("span", { class: "msg-sending", text: t("chat.sending") });
    return h(
      "li",
      { class: "msg msg-mine msg-pending", dataset: { clientId: p.client_id } },
      h("p", { class: "msg-meta" }, h("span", { class: "msg-name", text: t("chat.you") }), " ", status),
      h("p", { class: "msg-text", translate: "no", text: p.text }),
    );
  }
}
