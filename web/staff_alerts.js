// Opt-in alerts on the staff page: a short sound (Web Audio API, no audio
// file) and a desktop notification (Notification API) when a patient arrives
// in this page's queue or writes in a chat the staff member is not looking
// at. Off until the person turns it on (remembered in localStorage); the
// browser's permission is asked only then, and a refusal is explained beside
// the switch. A notification says only "A patient is waiting" or "New message
// from a patient": no name and no chat text, so nothing about a patient shows
// on a locked computer or over the inactivity lock (inactivity_lock.js).

import { h } from "/static/common.js";
import { t } from "/static/i18n.js";

const STORAGE_KEY = "telemed.staff.alerts";

/** What a notification says (keys alerts.<kind>.title/body): never who, never what they wrote. */
const KINDS = ["arrival", "message"];

/** Tones of each alert: [frequency in Hz, start in s, length in s]. */
const TONES = {
  arrival: [[660, 0, 0.14], [880, 0.16, 0.2]],
  message: [[880, 0, 0.16]],
};

/** Alerts of one kind closer together than this make one sound (a burst of messages). */
const QUIET_MS = 1500;

function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY) === "on";
  } catch {
    return false; // storage blocked: off, as for a new person
  }
}

function remember(on) {
  try {
    localStorage.setItem(STORAGE_KEY, on ? "on" : "off");
  } catch {
    // storage blocked: the switch works for this page only
  }
}

function notificationsSupported() {
  return typeof window.Notification === "function";
}

export class StaffAlerts {
  /**
   * @param root the element the switch and its explanation go in
   * @param isLocked () => true while the inactivity lock hides the page (nobody is reading)
   */
  constructor(root, { isLocked = () => false } = {}) {
    this.root = root;
    this.isLocked = isLocked;
    this.enabled = remembered();
    /** Visit ids this page has seen in its queue; null until the first snapshot. */
    this.known = null;
    /** The AudioContext, made on a user's gesture (browsers keep one made without suspended). */
    this.audio = null;
    /** When each kind of alert last sounded (Date.now()). */
    this.lastSound = {};
    this.build();
    if (this.enabled) {
      this.explain();
      this.audioOnFirstInput();
    }
  }

  build() {
    this.input = h("input", {
      type: "checkbox",
      id: "alerts-on",
      checked: this.enabled,
      "aria-describedby": "alerts-state",
      on: { change: () => this.toggle(this.input.checked) },
    });
    this.state = h("p", { id: "alerts-state", class: "alerts-state small", role: "status", "aria-live": "polite" });
    this.root.replaceChildren(
      h("div", { class: "check alerts-check" }, this.input, h("label", { for: "alerts-on", text: t("alerts.label") })),
      this.state,
    );
    this.root.hidden = false;
  }

  /** The person turned the alerts on or off (a user gesture: sound and permission may start here). */
  async toggle(on) {
    this.enabled = on;
    remember(on);
    if (!on) {
      this.say(t("alerts.off"), "");
      return;
    }
    const audioReady = this.startAudio(); // made now, within the gesture
    if (notificationsSupported() && window.Notification.permission === "default") {
      this.say(t("alerts.asking"), "");
      try {
        await window.Notification.requestPermission();
      } catch {
        // an old browser without the promise form: the state below says what happened
      }
    }
    await audioReady;
    if (!this.enabled) return;
    this.play("arrival", { force: true }); // what it will sound like
    this.explain();
  }

  /** Say what the switch does now, and why not all of it when the browser refuses. */
  explain() {
    if (!notificationsSupported()) {
      this.say(t("alerts.on.no_notifications"), "warning");
      return;
    }
    const permission = window.Notification.permission;
    if (permission === "granted") {
      this.say(t("alerts.on.full"), "info");
    } else if (permission === "denied") {
      this.say(t("alerts.on.blocked"), "warning");
    } else {
      this.say(t("alerts.on.not_allowed"), "warning");
    }
  }

  say(text, kind) {
    this.state.textContent = text;
    this.state.dataset.kind = kind;
  }

  /** A queue snapshot was applied: a visit not seen before is a patient who arrived. */
  queueChanged(queue) {
    const ids = queue.map((v) => v.visit_id);
    if (this.known === null) {
      this.known = new Set(ids); // those already waiting when the page opened
      return;
    }
    const arrived = ids.some((id) => !this.known.has(id));
    for (const id of ids) this.known.add(id);
    if (arrived) this.alert("arrival");
  }

  /**
   * A new message from a patient.
   * @param reading true when the chat is open and shown on this page
   */
  patientWrote(reading) {
    if (reading && !this.isLocked() && !document.hidden) return;
    this.alert("message");
  }

  alert(kind) {
    if (!this.enabled) return;
    this.play(kind);
    this.notify(kind);
  }

  notify(kind) {
    if (!KINDS.includes(kind) || !notificationsSupported() || window.Notification.permission !== "granted") return;
    try {
      const shown = new window.Notification(t(`alerts.${kind}.title`), { body: t(`alerts.${kind}.body`), tag: `telemed-${kind}`, silent: true });
      shown.onclick = () => {
        window.focus();
        shown.close();
      };
    } catch {
      // Chrome on Android shows notifications only from a service worker: the sound still plays.
    }
  }

  /** Browsers let sound start only from a gesture: make the AudioContext on the first one. */
  audioOnFirstInput() {
    const start = () => {
      document.removeEventListener("pointerdown", start, true);
      document.removeEventListener("keydown", start, true);
      if (this.enabled) this.startAudio();
    };
    document.addEventListener("pointerdown", start, true);
    document.addEventListener("keydown", start, true);
  }

  async startAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.audio) this.audio = new Context();
    if (this.audio.state === "suspended") await this.audio.resume().catch(() => {});
  }

  /** A short chime (quiet sine tones with soft edges); none before a gesture started the sound. */
  play(kind, { force = false } = {}) {
    const now = Date.now();
    if (!this.audio || this.audio.state !== "running" || (!force && now - (this.lastSound[kind] || 0) < QUIET_MS)) return;
    if (!force) this.lastSound[kind] = now; // the sample on turning on does not hold back the first alert
    const ctx = this.audio;
    for (const [frequency, start, length] of TONES[kind]) {
      const at = ctx.currentTime + start;
      const tone = ctx.createOscillator();
      const gain = ctx.createGain();
      tone.type = "sine";
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + length);
      tone.connect(gain).connect(ctx.destination);
      tone.start(at);
      tone.stop(at + length + 0.02);
    }
  }
}
