// Live captions on the doctor's page (and the patient's, when the server
// sends them there: TELEMED_CAPTIONS_TO_PATIENT), from the media worker's speech-to-text
// over /media: `caption` {visit_id, role, final, text} (partial results are
// replaced in place, final ones stay), and `captions` {state} ("unavailable"
// when the worker has no speech model; "live", "behind", "stopped" otherwise).

import { h } from "/static/common.js";

/** Final lines kept on screen (the chart keeps the whole transcript). */
const KEEP = 200;

/** Who a line is from, as the doctor's page says it (the patient's page passes its own). */
const DOCTOR_VIEW = { patient: "Patient", doctor: "You" };

export class CaptionsPanel {
  /**
   * @param list the <ol> the lines go in
   * @param stateEl where the panel's state is said ("Listening…", "Captions unavailable")
   * @param speakers label per role
   */
  constructor(list, stateEl, speakers = DOCTOR_VIEW) {
    this.list = list;
    this.stateEl = stateEl;
    this.speakers = speakers;
    this.reset(null);
  }

  /** Start over for a visit; consent false: no captions will come. */
  reset(visitId, { consent = true } = {}) {
    this.visitId = visitId;
    this.partials = new Map();
    this.finals = 0;
    this.available = null;
    this.list.replaceChildren();
    if (!visitId) this.say("idle", "");
    else if (!consent) this.say("no-consent", "No captions: the patient did not agree to recording and transcription.");
    else this.say("unknown", "Captions appear here when someone speaks.");
  }

  say(state, text) {
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = text;
  }

  /**
   * `captions` {visit_id?, role?, state, message?}: "live" (working),
   * "behind" (speech waits for the recogniser), "stopped" (a leg closed),
   * "unavailable" (no speech model, or it failed).
   */
  applyState(p) {
    if (!p || !this.visitId || (p.visit_id && p.visit_id !== this.visitId)) return;
    if (p.state === "unavailable") {
      this.available = false;
      const why = p.message ? `: ${String(p.message).replace(/[.\s]+$/, "")}` : "";
      this.say("unavailable", `Captions unavailable${why}. The visit and its recording go on.`);
      return;
    }
    this.available = true;
    if (p.state === "behind") this.say("behind", "Captions are running behind; some may be missing.");
    else if (p.state === "stopped") this.say("stopped", "Captions paused.");
    else this.say(this.finals ? "live" : "listening", this.finals ? "Live" : "Listening…");
  }

  /** `caption` {visit_id, role, final, text}. */
  applyCaption(p) {
    if (!p || p.visit_id !== this.visitId || typeof p.text !== "string") return;
    const text = p.text.trim();
    const role = p.role in this.speakers ? p.role : "patient";
    this.available = true;
    let line = this.partials.get(role);
    if (!text) {
      if (line && p.final) {
        line.remove();
        this.partials.delete(role);
      }
      return;
    }
    if (!line) {
      line = h("li", { class: `caption caption-${role}` }, h("span", { class: "caption-who", text: `${this.speakers[role]}: ` }), h("span", { class: "caption-text" }));
      this.list.append(line);
      this.partials.set(role, line);
    }
    line.querySelector(".caption-text").textContent = text;
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
    this.say("live", "Live");
    this.list.scrollTop = this.list.scrollHeight;
  }

  /** For the visit summary. */
  describe() {
    if (this.available === false) return "Captions were unavailable";
    if (this.finals) return `${this.finals} caption line${this.finals === 1 ? "" : "s"} (the chart keeps the transcript)`;
    return "No speech was captioned";
  }
}
