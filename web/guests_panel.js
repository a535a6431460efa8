// "People in this visit", the panel that invites a visit's guests: an
// interpreter (with a language) or a caregiver gets a link to copy or scan; a
// clinician of the clinic is picked from the roster and finds the invitation on
// their own staff page. Each guest's state in plain words; removing a guest
// with a confirmation. One panel for the doctor's visit screen (who also lets a
// waiting guest in, or lets them join without waiting) and for the nurse's
// triage panel (whose guests always wait for the doctor). The panel draws
// itself in its root; its element ids start with its prefix. Calls the guest
// routes (POST /api/visits/{visit}/guests, .../admit, .../remove); the
// `guests` push on /queue keeps the list current.

import { roleName } from "/static/clinic_text.js";
import { $, h } from "/static/common.js";
import { languageNameHere, t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { callApi } from "/static/invite_api.js";
import { linkBox } from "/static/invite_view.js";
import { roleText, stateText } from "/static/people.js";

/** Languages offered for an interpreter (any BCP 47 tag is accepted by the server). */
const LANGUAGES = ["es", "zh-CN", "ko", "vi", "ar", "fr", "ru", "pt", "tl", "ht", "fa", "so", "hi", "pl", "ja", "de", "it", "uk"];

/** Who can be invited: a link for the first two, a roster pick for a clinician. */
const KINDS = ["interpreter", "caregiver", "clinician"];

export class GuestsPanel {
  /**
   * @param token the staff token
   * @param notices the page's Notices
   * @param root the element the panel draws itself in
   * @param prefix the start of the panel's element ids ("guest": #guest-form, #guests-list…)
   * @param lead "doctor" (lets guests in, may let them join without waiting) or "nurse" (guests wait for the doctor)
   * @param heading the panel title's element ("h2", or "h3" inside another panel)
   * @param roster () => the clinic's staff ([{sub, name, role}]) for a clinician guest; none: no clinician choice
   * @param me the signed-in staff member ({sub}), left out of the clinician choice
   */
  constructor({ token, notices, root = $("#guests-panel"), prefix = "guest", lead = "doctor", heading = "h2", roster = null, me = null }) {
    this.token = token;
    this.notices = notices;
    this.root = root;
    this.prefix = prefix;
    this.lead = lead;
    this.roster = roster;
    this.me = me;
    /** The visit shown; null when none. */
    this.visitId = null;
    /** The visit's language, offered first for an interpreter; "" when unknown. */
    this.visitLanguage = "";
    /** The guest whose new link is shown; null when none. */
    this.linkFor = null;
    this.guests = [];
    this.build(heading);
    this.kindChanged();
  }

  /** An element id of this panel: "form" -> "guest-form"; many -> "guests-list". */
  id(part, { many = false } = {}) {
    return `${this.prefix}${many ? "s" : ""}-${part}`;
  }

  build(heading) {
    const id = (part, opts) => this.id(part, opts);
    this.kind = h("select", { id: id("kind") },
      ...KINDS.map((kind) => h("option", { value: kind, text: t(kind === "clinician" ? "guests.form.kind.clinician" : `people.kind.${kind}`) })));
    this.kind.addEventListener("change", () => this.kindChanged());
    this.name = h("input", { id: id("name"), type: "text", maxlength: "120", autocomplete: "off", translate: "no" });
    this.language = h("select", { id: id("language") });
    this.staff = h("select", { id: id("staff"), translate: "no", "aria-describedby": id("staff-help") });
    this.direct = this.lead === "doctor" ? h("input", { id: id("direct"), type: "checkbox", "aria-describedby": id("direct-help") }) : null;
    this.error = h("p", { id: id("form-error"), class: "field-error", role: "alert", hidden: true });
    this.submit = h("button", { id: id("submit"), type: "submit", class: "btn btn-primary", text: t("guests.form.submit") });
    this.field = {
      name: h("div", { class: "field" }, h("label", { for: this.name.id, text: t("guests.form.name") }), this.name),
      language: h("div", { id: id("language-field"), class: "field" }, h("label", { for: this.language.id, text: t("guests.form.language") }), this.language),
      staff: h("div", { id: id("staff-field"), class: "field" },
        h("label", { for: this.staff.id, text: t("guests.form.staff") }), this.staff,
        h("p", { id: id("staff-help"), class: "muted small", text: t("guests.form.staff_help") })),
    };
    const waits = this.direct
      ? [h("div", { class: "check" }, this.direct, h("label", { for: this.direct.id, text: t("guests.form.direct") })),
        h("p", { id: id("direct-help"), class: "muted small", text: t("guests.form.direct_help") })]
      : [h("p", { id: id("wait-help"), class: "muted small", text: t("guests.form.waits_for_doctor") })];
    // A complaint goes once the form changes (it is said again on the next Create if still true).
    this.form = h("form", { id: id("form"), class: "guest-form", novalidate: true, hidden: true,
      on: { submit: (e) => this.invite(e), input: () => (this.error.hidden = true), change: () => (this.error.hidden = true) } },
      h("div", { class: "field" }, h("label", { for: this.kind.id, text: t("guests.form.kind") }), this.kind),
      this.field.name, this.field.language, this.field.staff, ...waits, this.error,
      h("div", { class: "actions" }, this.submit,
        h("button", { id: id("cancel"), type: "button", class: "btn", text: t("guests.form.cancel"), on: { click: () => this.showForm(false) } })));
    this.open_ = h("button", { id: id("invite"), type: "button", class: "btn", "aria-controls": this.form.id, "aria-expanded": "false",
      text: t("guests.invite"), on: { click: () => this.showForm(true) } });
    this.none = h("p", { id: id("none", { many: true }), class: "muted small", text: t("guests.none") });
    this.list = h("ul", { id: id("list", { many: true }), class: "guests" });
    this.status = h("p", { id: id("status", { many: true }), class: "form-status small", role: "status", "aria-live": "polite" });
    this.linkSlot = h("div", { id: id("link-slot") });
    const title = h(heading, { id: id("title", { many: true }), text: t("guests.title") });
    this.root.setAttribute("aria-labelledby", title.id);
    this.root.replaceChildren(title, this.none, this.list, this.status, this.open_, this.form, this.linkSlot);
  }

  /** A visit opened on the page: its guests. @param language the visit's language, offered first for an interpreter */
  async open(visitId, { language = "" } = {}) {
    if (this.visitId !== visitId) {
      this.visitId = visitId;
      this.visitLanguage = language;
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

  /** No visit shown (the panel's visit closed). */
  close() {
    this.visitId = null;
    this.linkFor = null;
  }

  /** The `guests` push (/queue), or a reply's list. */
  apply({ visit_id: visitId, guests }) {
    if (visitId !== this.visitId) return;
    this.guests = guests;
    this.render();
  }

  showForm(show) {
    this.form.hidden = !show;
    this.open_.hidden = show;
    this.open_.setAttribute("aria-expanded", String(show));
    if (show) {
      this.linkSlot.replaceChildren();
      this.fillLanguages();
      this.fillStaff();
      this.kind.focus();
    } else {
      this.form.reset();
      this.error.hidden = true;
    }
    this.kindChanged();
  }

  /** The interpreter's languages by name; the visit's own language first (the patient's, when not English). */
  fillLanguages() {
    const first = this.visitLanguage && this.visitLanguage !== "en" ? this.visitLanguage : null;
    const tags = LANGUAGES.filter((tag) => tag !== first);
    const names = tags.map((tag) => [tag, languageNameHere(tag)]).sort((a, b) => a[1].localeCompare(b[1]));
    if (first) names.unshift([first, languageNameHere(first)]);
    this.language.replaceChildren(h("option", { value: "", text: t("guests.form.language_choose") }),
      ...names.map(([tag, name]) => h("option", { value: tag, text: name })));
    if (first) this.language.value = first;
  }

  /** The clinic's doctors and nurses other than oneself, by name. */
  fillStaff() {
    const staff = (this.roster ? this.roster() || [] : [])
      .filter((m) => (m.role === "doctor" || m.role === "nurse") && !(this.me && m.sub === this.me.sub))
      .sort((a, b) => a.name.localeCompare(b.name));
    this.staff.replaceChildren(h("option", { value: "", text: t("guests.form.staff_choose") }),
      ...staff.map((m) => h("option", { value: m.sub, text: t("guests.form.staff_member", { name: m.name, role: roleName(m.role) }) })));
  }

  kindChanged() {
    const kind = this.kind.value;
    const clinician = kind === "clinician";
    this.kind.querySelector('[value="clinician"]').hidden = !this.roster;
    this.field.language.hidden = kind !== "interpreter";
    this.field.name.hidden = clinician;
    this.field.staff.hidden = !clinician;
    this.submit.textContent = t(clinician ? "guests.form.submit_clinician" : "guests.form.submit");
  }

  /** What the form lacks, as a catalogue key and the control to fix; null when complete. */
  missing() {
    const kind = this.kind.value;
    if (kind === "clinician") return this.staff.value ? null : ["guests.error.staff", this.staff];
    if (!this.name.value.trim()) return ["guests.error.name", this.name];
    if (kind === "interpreter" && !this.language.value) return ["guests.error.language", this.language];
    return null;
  }

  async invite(event) {
    event.preventDefault();
    const kind = this.kind.value;
    const problem = this.missing();
    this.error.hidden = !problem;
    if (problem) {
      this.error.textContent = t(problem[0]);
      problem[1].focus();
      return;
    }
    const body = { kind, direct_join: Boolean(this.direct && this.direct.checked) };
    if (kind === "clinician") body.staff_sub = this.staff.value;
    else body.name = this.name.value.trim();
    if (kind === "interpreter") body.language = this.language.value;
    this.submit.disabled = true;
    this.submit.textContent = t("guests.form.busy");
    try {
      const reply = await callApi(this.token, "POST", `/api/visits/${encodeURIComponent(this.visitId)}/guests`, body);
      this.showForm(false);
      this.upsert(reply.guest);
      this.showInvited(reply);
    } catch (err) {
      this.error.textContent = t("guests.failed", { reason: err.message });
      this.error.hidden = false;
    } finally {
      this.submit.disabled = false;
      this.kindChanged();
    }
  }

  /** After an invitation: the link to hand over, or where a clinician finds it. */
  showInvited({ guest, guest_link: link }) {
    if (!link) {
      this.status.replaceChildren(...tNodes("guests.clinician_invited", { name: untranslated(guest.name) }));
      this.open_.focus();
      return;
    }
    this.linkFor = guest.guest_id;
    const box = linkBox(link, { kind: "guest", id: this.id("link") });
    this.linkSlot.replaceChildren(h("p", { class: "small", text: t("guests.link_ready", { who: roleText({ type: "guest", ...guest }) }) }), box);
    $(`#${this.id("link")}`, this.linkSlot).focus();
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
    this.none.hidden = shown.length > 0;
    this.list.replaceChildren(...shown.map((g) => this.item(g)));
  }

  item(guest) {
    const person = { type: "guest", ...guest };
    const id = `${this.prefix}-${guest.guest_id}`;
    const actions = h("div", { class: "actions guest-actions" });
    const confirm = h("div", { class: "problem", id: `${id}-confirm`, hidden: true },
      h("p", {}, ...tNodes("guests.remove.confirm", { name: untranslated(guest.name) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-danger", text: t("guests.remove.yes"), on: { click: () => this.act(guest, "remove") } }),
        h("button", { type: "button", class: "btn", text: t("guests.remove.no"), on: { click: () => { confirm.hidden = true; remove.hidden = false; remove.focus(); } } }),
      ));
    if (guest.state === "waiting" && this.lead === "doctor") {
      // The whole sentence shows ("Let Marta Ruiz in"): a button's visible words are its name (WCAG 2.5.3).
      actions.append(h("button", { type: "button", class: "btn btn-primary btn-small", on: { click: () => this.act(guest, "admit") } },
        ...tNodes("guests.admit_who", { name: untranslated(guest.name) })));
    }
    const remove = h("button", { type: "button", class: "btn btn-danger-outline btn-small", text: t("guests.remove.button"),
      "aria-label": t("guests.remove.who", { name: guest.name }),
      on: { click: () => { confirm.hidden = false; remove.hidden = true; confirm.querySelector("button").focus(); } } });
    actions.append(remove);
    const waitsForDoctor = guest.state === "waiting" && this.lead !== "doctor";
    return h("li", { class: "guest", id, dataset: { state: guest.state, kind: guest.kind } },
      h("p", { class: "guest-line" },
        h("strong", {}, untranslated(guest.name)), " — ", roleText(person), " · ",
        h("span", { class: "guest-state", text: stateText(guest.state) })),
      waitsForDoctor ? h("p", { class: "muted small", text: t("guests.waits_for_doctor") }) : null,
      guest.state !== "invited" && !guest.consent_recording ? h("p", { class: "muted small", text: t("guests.no_recording") }) : null,
      actions, confirm);
  }
}
