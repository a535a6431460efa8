// The doctor's visit panel "People in this visit": invite an interpreter or a
// caregiver (a link to copy or scan), see each guest's state in plain words,
// let a waiting guest in, remove a guest (with a confirmation). Calls the
// guest routes (POST /api/visits/{visit}/guests, .../admit, .../remove);
// the `guests` push on /queue keeps the list current.

import { $, h } from "/static/common.js";
import { languageNameHere, t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { callApi } from "/static/invite_api.js";
import { linkBox } from "/static/invite_view.js";
import { roleText, stateText } from "/static/people.js";

/** Languages offered for an interpreter first (any BCP 47 tag is accepted by the server). */
const LANGUAGES = ["es", "zh-CN", "ko", "vi", "ar", "fr", "ru", "pt", "tl", "ht", "fa", "so", "hi", "pl", "ja", "de", "it", "uk"];

export class GuestsPanel {
  /**
   * @param token the staff token
   * @param notices the page's Notices
   */
  constructor({ token, notices }) {
    this.token = token;
    this.notices = notices;
    /** The visit shown; null when none. */
    this.visitId = null;
    /** The guest whose new link is shown; null when none. */
    this.linkFor = null;
    this.guests = [];
    this.root = $("#guests-panel");
    this.list = $("#guests-list");
    this.status = $("#guests-status");
    this.form = $("#guest-form");
    this.linkSlot = $("#guest-link-slot");
    const language = $("#guest-language");
    const names = LANGUAGES.map((tag) => [tag, languageNameHere(tag)]).sort((a, b) => a[1].localeCompare(b[1]));
    language.replaceChildren(h("option", { value: "", text: t("guests.form.language_choose") }),
      ...names.map(([tag, name]) => h("option", { value: tag, text: name })));
    $("#guest-invite").addEventListener("click", () => this.showForm(true));
    $("#guest-cancel").addEventListener("click", () => this.showForm(false));
    $("#guest-kind").addEventListener("change", () => this.kindChanged());
    this.form.addEventListener("submit", (e) => this.invite(e));
    this.kindChanged();
  }

  /** A visit opened on the page: its guests. */
  async open(visitId) {
    if (this.visitId !== visitId) {
      this.visitId = visitId;
      this.guests = [];
      this.showForm(false);
      this.linkSlot.replaceChildren();
      this.status.textContent = "";
      this.render();
    }
    try {
      const reply = await callApi(this.token, "GET", `/api/visits/${encodeURIComponent(visitId)}/guests`);
      if (reply.visit_id === this.visitId) this.apply(reply);
    } catch (err) {
      this.status.textContent = t("guests.failed", { reason: err.message });
    }
  }

  /** The `guests` push (/queue), or a reply's list. */
  apply({ visit_id: visitId, guests }) {
    if (visitId !== this.visitId) return;
    this.guests = guests;
    this.render();
  }

  showForm(show) {
    this.form.hidden = !show;
    $("#guest-invite").hidden = show;
    $("#guest-invite").setAttribute("aria-expanded", String(show));
    if (show) {
      this.linkSlot.replaceChildren();
      $("#guest-kind").focus();
    } else {
      this.form.reset();
      this.kindChanged();
      $("#guest-form-error").hidden = true;
    }
  }

  kindChanged() {
    $("#guest-language-field").hidden = $("#guest-kind").value !== "interpreter";
  }

  async invite(event) {
    event.preventDefault();
    const kind = $("#guest-kind").value;
    const name = $("#guest-name").value.trim();
    const language = $("#guest-language").value;
    const error = $("#guest-form-error");
    const problem = !name ? "guests.error.name" : kind === "interpreter" && !language ? "guests.error.language" : null;
    error.hidden = !problem;
    if (problem) {
      error.textContent = t(problem);
      (!name ? $("#guest-name") : $("#guest-language")).focus();
      return;
    }
    const button = $("#guest-submit");
    button.disabled = true;
    button.textContent = t("guests.form.busy");
    try {
      const body = { kind, name, direct_join: $("#guest-direct").checked, ...(kind === "interpreter" ? { language } : {}) };
      const reply = await callApi(this.token, "POST", `/api/visits/${encodeURIComponent(this.visitId)}/guests`, body);
      this.showForm(false);
      this.upsert(reply.guest);
      this.linkFor = reply.guest.guest_id;
      this.linkSlot.replaceChildren(
        h("p", { class: "small", text: t("guests.link_ready", { who: roleText({ type: "guest", ...reply.guest }) }) }),
        linkBox(reply.guest_link, { kind: "guest", id: "guest-link" }),
      );
      $("#guest-link").focus();
    } catch (err) {
      error.textContent = t("guests.failed", { reason: err.message });
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = t("guests.form.submit");
    }
  }

  upsert(guest) {
    const i = this.guests.findIndex((g) => g.guest_id === guest.guest_id);
    if (i >= 0) this.guests[i] = guest;
    else this.guests.push(guest);
    this.render();
  }

  async act(guest, action) {
    const url = `/api/visits/${encodeURIComponent(this.visitId)}/guests/${encodeURIComponent(guest.guest_id)}/${action}`;
    try {
      const reply = await callApi(this.token, "POST", url);
      this.upsert(reply.guest);
      this.status.replaceChildren(...tNodes(`guests.${action}.done`, { name: untranslated(guest.name) }));
    } catch (err) {
      this.status.textContent = t("guests.failed", { reason: err.message });
    }
  }

  render() {
    // The link is shown until its guest has opened it and answered the consent (or was removed).
    const linked = this.guests.find((g) => g.guest_id === this.linkFor);
    if (linked && linked.state !== "invited") {
      this.linkFor = null;
      this.linkSlot.replaceChildren();
    }
    const shown = this.guests.filter((g) => g.state !== "removed");
    $("#guests-none").hidden = shown.length > 0;
    this.list.replaceChildren(...shown.map((g) => this.item(g)));
  }

  item(guest) {
    const person = { type: "guest", ...guest };
    const id = `guest-${guest.guest_id}`;
    const actions = h("div", { class: "actions guest-actions" });
    const confirm = h("div", { class: "problem", id: `${id}-confirm`, hidden: true },
      h("p", {}, ...tNodes("guests.remove.confirm", { name: untranslated(guest.name) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-danger", text: t("guests.remove.yes"), on: { click: () => this.act(guest, "remove") } }),
        h("button", { type: "button", class: "btn", text: t("guests.remove.no"), on: { click: () => { confirm.hidden = true; remove.hidden = false; remove.focus(); } } }),
      ));
    if (guest.state === "waiting") {
      actions.append(h("button", { type: "button", class: "btn btn-primary btn-small", text: t("guests.admit"),
        "aria-label": t("guests.admit_who", { name: guest.name }), on: { click: () => this.act(guest, "admit") } }));
    }
    const remove = h("button", { type: "button", class: "btn btn-danger-outline btn-small", text: t("guests.remove.button"),
      "aria-label": t("guests.remove.who", { name: guest.name }),
      on: { click: () => { confirm.hidden = false; remove.hidden = true; confirm.querySelector("button").focus(); } } });
    actions.append(remove);
    return h("li", { class: "guest", id, dataset: { state: guest.state, kind: guest.kind } },
      h("p", { class: "guest-line" },
        h("strong", {}, untranslated(guest.name)), " — ", roleText(person), " · ",
        h("span", { class: "guest-state", text: stateText(guest.state) })),
      guest.state !== "invited" && !guest.consent_recording ? h("p", { class: "muted small", text: t("guests.no_recording") }) : null,
      actions, confirm);
  }
}
