// Live captions on the doctor's page and the patient's (when the clinic sends
// them there, TELEMED_CAPTIONS_TO_PATIENT, or the patient turned them on), from
// the media worker's speech-to-text over /media:
// - `caption` {visit_id, role, final, text, language?}: partial results are
//   replaced in place, final ones stay; the text is marked with its language;
// - `captions` {visit_id, role?, state, reason?, language?, message?}: "live",
//   "behind", "stopped", or "unavailable". Each speaker (role) has their own
//   state: a speaker whose language has no speech model (reason "no_model")
//   is said so ("Captions are not available in Spanish for the doctor")
//   while the other speaker's captions go on, and one speaker's leg stopping
//   does not pause the other's. A state without a role is every speaker's.

import { h } from "/static/common.js";
import { lang, languageNameHere, t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { roleText } from "/static/people.js";

/** Final lines kept on screen (the chart keeps the whole transcript). */
const KEEP = 200;

/** The speakers of a visit, by role. */
const SPEAKERS = ["patient", "doctor"];

/** Reasons of the worker's "unavailable" that have their own sentence. */
const REASONS = ["not_configured", "model_missing", "model_broken", "failed"];

/** A language tag a caption may carry (anything else is not put on the page). */
const TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

export class CaptionsPanel {
  /**
   * @param list the <ol> the lines go in
   * @param stateEl where the panel's state is said ("Listening…", "Captions unavailable");
   *   the speakers' own notes go in an element the panel puts right after it
   * @param me whose page this is ("doctor" or "patient"): that speaker's lines say "You:"
   */
  constructor(list, stateEl, { me = "doctor" } = {}) {
    this.list = list;
    this.stateEl = stateEl;
    this.me = me;
    this.notes = h("div", { class: "captions-speakers", "aria-live": "polite", hidden: true });
    stateEl.after(this.notes);
    this.reset(null);
  }

  /** Start over for a visit; consent false: no captions will come. */
  reset(visitId, { consent = true } = {}) {
    this.visitId = visitId;
    this.partials = new Map();
    this.finals = 0;
    /** Speakers whose captions are unavailable: role -> {reason, language, message}. */
    this.down = new Map();
    /** The other speakers' states: role -> "live", "behind" or "stopped". */
    this.states = new Map();
    /** Some speech was captioned. */
    this.heard = false;
    /** The whole visit's captions are unavailable: {reason, language, message}; null otherwise. */
    this.all = null;
    /** The speakers' languages, as the worker said them. */
    this.languages = new Map();
    this.list.replaceChildren();
    // What the panel says before any speaker's state is known.
    if (!visitId) this.base = ["idle", ""];
    else if (!consent) this.base = ["no-consent", t("captions.no_consent")];
    else this.base = ["unknown", t("captions.waiting")];
    this.render();
  }

  /** Whether captions were available: false when nobody's were, null before anything was said. */
  get available() {
    if (this.all || this.down.size === SPEAKERS.length) return false;
    return this.heard || this.states.size > 0 ? true : null;
  }

  /** The state of the speakers whose captions work: [data-state, text]. */
  working() {
    const states = [...this.states.entries()].filter(([role]) => !this.down.has(role)).map(([, state]) => state);
    if (states.includes("behind")) return ["behind", t("captions.behind")];
    if (states.includes("live")) return this.heard ? ["live", t("captions.live")] : ["listening", t("captions.listening")];
    if (states.includes("stopped")) return ["stopped", t("captions.stopped")];
    return this.base;
  }

  render() {
    let [state, text] = this.working();
    let notes = [];
    if (this.all) {
      state = "unavailable";
      text = this.visitText(this.all);
    } else if (this.down.size === SPEAKERS.length) {
      state = "unavailable";
      const infos = SPEAKERS.map((r) => this.down.get(r));
      const same = infos.every((i) => i.reason === infos[0].reason && i.language === infos[0].language);
      text = same ? this.visitText(infos[0]) : t("captions.unavailable");
      notes = same ? [] : SPEAKERS;
    } else {
      notes = SPEAKERS.filter((r) => this.down.has(r));
    }
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = text;
    this.notes.replaceChildren(
      ...notes.map((role) => {
        const info = this.down.get(role);
        return h("p", { class: "captions-speaker", dataset: { role, reason: info.reason || "unknown" }, text: this.speakerText(role, info) });
      }),
    );
    this.notes.hidden = notes.length === 0;
  }

  /** Why nobody's captions come, in a sentence. */
  visitText({ reason, language, message }) {
    if (reason === "no_model" && language) return t("captions.unavailable.language", { language: languageNameHere(language) });
    if (REASONS.includes(reason)) return t(`captions.unavailable.${reason}`);
    // The server's own words are English: an English page may show them.
    if (lang === "en" && message) return t("captions.unavailable.message", { reason: String(message).replace(/[.\s]+$/, "") });
    return t("captions.unavailable");
  }

  /** Why one speaker's captions do not come, in a sentence. */
  speakerText(role, { reason, language }) {
    const who = role === this.me ? "self" : role;
    if (reason === "no_model" && language) return t(`captions.speaker.language.${who}`, { language: languageNameHere(language) });
    return t(`captions.speaker.unavailable.${who}`);
  }

  /**
   * `captions` {visit_id?, role?, state, reason?, language?, message?}: "live"
   * (working), "behind" (speech waits for the recogniser), "stopped" (a leg
   * closed), "unavailable" (no speech model for the speaker's language, or it
   * failed).
   */
  applyState(p) {
    if (!p || !this.visitId || (p.visit_id && p.visit_id !== this.visitId)) return;
    if (p.role && !SPEAKERS.includes(p.role)) return;
    const roles = p.role ? [p.role] : SPEAKERS;
    const language = typeof p.language === "string" && TAG.test(p.language) ? p.language : "";
    if (p.role && language) this.languages.set(p.role, language);
    if (p.state === "unavailable") {
      const info = { reason: String(p.reason || ""), language, message: p.message || "" };
      if (p.role) this.down.set(p.role, info);
      else this.all = info;
    } else {
      if (!p.role) this.all = null;
      // Anything but "behind" and "stopped" means working ("live").
      const state = ["behind", "stopped"].includes(p.state) ? p.state : "live";
      for (const role of roles) {
        this.down.delete(role);
        this.states.set(role, state);
      }
    }
    this.render();
  }

  /** `caption` {visit_id, role, final, text, language?}. */
  applyCaption(p) {
    if (!p || p.visit_id !== this.visitId || typeof p.text !== "string") return;
    const text = p.text.trim();
    // A guest's leg (issue 13): their party, with their name and kind to label the line.
    const guest = !SPEAKERS.includes(p.role) && typeof p.role === "string" && typeof p.name === "string" && p.name !== "";
    const role = SPEAKERS.includes(p.role) || guest ? p.role : "patient";
    if (typeof p.language === "string" && TAG.test(p.language)) this.languages.set(role, p.language);
    this.down.delete(role);
    this.all = null;
    this.states.set(role, "live");
    let line = this.partials.get(role);
    if (!text) {
      if (line && p.final) {
        line.remove();
        this.partials.delete(role);
      }
      this.render();
      return;
    }
    this.heard = true;
    if (!line) {
      const who = guest
        ? tNodes("captions.who.guest", { name: untranslated(p.name), role: roleText({ type: "guest", kind: p.kind }) })
        : [t(role === this.me ? "captions.who.self" : `captions.who.${role}`)];
      line = h("li", { class: `caption caption-${guest ? "guest" : role}` }, h("span", { class: "caption-who" }, who, " "), h("span", { class: "caption-text", translate: "no" }));
      this.list.append(line);
      this.partials.set(role, line);
    }
    const textEl = line.querySelector(".caption-text");
    textEl.textContent = text;
    const language = this.languages.get(role);
    if (language) textEl.lang = language;
    if (p.final) {
      line.classList.remove("caption-partial");
      line.removeAttribute("aria-hidden");
      this.partials.delete(role);
      this.finals++;
      while (this.list.children.length > KEEP) this.list.firstElementChild.remove();
    } else {
      // Partial results change word by word: screen readers get the final line only.
      line.classList.add("caption-partial");
      line.setAttribute("aria-hidden", "true");
    }
    this.render();
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** For the visit summary. */
  describe() {
    if (this.available === false) return t("captions.summary.unavailable");
    if (this.finals) return t("captions.summary.lines", { count: this.finals });
    return t("captions.summary.none");
  }
}
