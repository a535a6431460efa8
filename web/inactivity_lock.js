// The inactivity lock of the staff page (automatic logoff, HIPAA
// §164.312(a)(2)(iii)): after TELEMED_STAFF_LOCK_AFTER without input (asked of
// the server at /api/staff/config; 15 minutes if it cannot say), the page's
// content is hidden behind a lock panel until the person confirms they are
// there. The sockets stay connected underneath, so the queue keeps updating
// and nothing is missed; only what is on screen is hidden.

import { h } from "/static/common.js";
import { formatUnit, t } from "/static/i18n.js";

const DEFAULT_LOCK_AFTER = 15 * 60;
const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "scroll"];

/** "3 seconds", "15 minutes" in the page's language. */
function describe(seconds) {
  if (seconds < 60) return formatUnit(Math.round(seconds), "second");
  return formatUnit(Math.round(seconds / 60), "minute");
}

export class InactivityLock {
  /**
   * @param token the staff token (to ask the server for the lock time)
   * @param content the element holding everything that may show health data
   * @param busy () => true while the person is using the page without input (a live call)
   */
  constructor({ token, content, busy = () => false }) {
    this.content = content;
    this.busy = busy;
    this.lockAfter = DEFAULT_LOCK_AFTER;
    this.lastInput = Date.now();
    this.locked = false;
    this.panel = this.build();
    document.body.append(this.panel);
    const touch = () => {
      if (!this.locked) this.lastInput = Date.now();
    };
    for (const name of INPUT_EVENTS) document.addEventListener(name, touch, { passive: true, capture: true });
    this.readSetting(token);
    this.timer = setInterval(() => this.check(), 1000);
  }

  async readSetting(token) {
    try {
      const reply = await fetch("/api/staff/config", { headers: { Authorization: `Bearer ${token}` } });
      if (!reply.ok) return;
      const data = await reply.json();
      if (typeof data.lock_after === "number" && data.lock_after > 0) this.lockAfter = data.lock_after;
    } catch {
      // Keep the default: the lock must work even if the server cannot say.
    }
  }

  build() {
    this.message = h("p", {});
    this.button = h("button", { type: "button", class: "btn btn-primary", text: t("lock.continue"), on: { click: () => this.unlock() } });
    return h(
      "section",
      { id: "lock-screen", class: "lock-screen", role: "dialog", "aria-modal": "true", "aria-labelledby": "lock-title", hidden: true },
      h(
        "div",
        { class: "lock-box" },
        h("h1", { id: "lock-title", text: t("lock.title") }),
        this.message,
        h("p", { class: "muted small", text: t("lock.still_signed_in") }),
        h("div", { class: "actions" }, this.button),
      ),
    );
  }

  check() {
    if (this.locked) return;
    if (this.busy()) {
      this.lastInput = Date.now();
      return;
    }
    if (Date.now() - this.lastInput >= this.lockAfter * 1000) this.lock();
  }

  lock() {
    this.locked = true;
    this.focusBefore = document.activeElement;
    this.message.textContent = t("lock.message", { duration: describe(this.lockAfter) });
    this.content.hidden = true;
    this.content.inert = true;
    document.body.classList.add("is-locked");
    this.panel.hidden = false;
    this.button.focus();
  }

  /** Signed out: no more locking (the page shows no health data any more). */
  stop() {
    clearInterval(this.timer);
    if (this.locked) this.unlock();
  }

  unlock() {
    this.locked = false;
    this.lastInput = Date.now();
    this.panel.hidden = true;
    this.content.inert = false;
    this.content.hidden = false;
    document.body.classList.remove("is-locked");
    const back = this.focusBefore;
    if (back && back.isConnected && typeof back.focus === "function") back.focus();
  }
}
