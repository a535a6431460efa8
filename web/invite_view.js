// Staff: invite a patient (name, reason, an optional appointment time, how
// long the link lasts) and hand over the link: copy it, or let the patient
// scan its QR code. Also the clinic's walk-in link, when walk-in is on.
// Calls POST /api/visits; the expected list (expected_view.js) shows the
// invitation until the patient checks in.

import { $, h } from "/static/common.js";
import { formatUnit, t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";
import { InviteError, callApi, copyText, formatAppointment } from "/static/invite_api.js";
import { qrSvg } from "/static/qr.js";
import { person } from "/static/staff_labels.js";

/** How long a link may last (minutes, and how the list says it); "" is the clinic's default. */
const LIFETIMES = [
  [60, 1, "hour"],
  [240, 4, "hour"],
  [1440, 1, "day"],
  [4320, 3, "day"],
  [10080, 7, "day"],
  [20160, 14, "day"],
];

/**
 * A link to hand over: the link in a read-only field, a Copy button with its
 * feedback beside it, and the QR code.
 * @param kind "patient", "walk_in" or "new" (a fresh patient link): the words of invite.link.<kind>…
 */
export function linkBox(link, { kind, id, qr = true }) {
  const label = t(`invite.link.${kind}`);
  const input = h("input", { id, type: "text", readonly: true, value: link, spellcheck: "false", class: "link-field" });
  input.value = link;
  const status = h("span", { class: "copy-status small", role: "status", "aria-live": "polite" });
  const copy = h("button", {
    type: "button",
    class: "btn btn-small",
    text: t("invite.copy"),
    "aria-label": t(`invite.link.${kind}.copy`),
    "aria-describedby": `${id}-status`,
    on: {
      click: async () => {
        const ok = await copyText(link, input);
        status.textContent = t(ok ? "invite.copied" : "invite.copy_failed");
        status.dataset.ok = String(ok);
      },
    },
  });
  status.id = `${id}-status`;
  return h(
    "div",
    { class: "link-box" },
    h("label", { for: id, text: label }),
    h("div", { class: "link-row" }, input, copy, status),
    qr ? h("div", { class: "qr-wrap" }, qrSvg(link, t(`invite.link.${kind}.qr`))) : null,
  );
}

export class InviteView {
  /**
   * @param root where the view draws itself
   * @param token the staff token (for the API)
   * @param onInvited called after a visit was created (the expected list refreshes)
   */
  constructor(root, { token, onInvited }) {
    this.token = token;
    this.onInvited = onInvited;
    this.walkIn = null;
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const lifetimes = [
      h("option", { value: "", text: t("invite.lifetime.default") }),
      ...LIFETIMES.map(([minutes, n, unit]) => h("option", { value: String(minutes), text: formatUnit(n, unit) })),
    ];
    this.form = h(
      "form",
      { id: "invite-form", novalidate: true, on: { submit: (e) => this.submit(e) } },
      field("invite-name", t("invite.name"), h("input", { id: "invite-name", type: "text", maxlength: 120, autocomplete: "off", required: true })),
      field("invite-reason", t("invite.reason"), h("input", { id: "invite-reason", type: "text", maxlength: 500, autocomplete: "off" }), [t("invite.optional")]),
      field(
        "invite-when",
        t("invite.when"),
        h("input", { id: "invite-when", type: "datetime-local" }),
        zone ? tNodes("invite.when.help", { zone: person(zone) }) : [t("invite.when.help_local")],
      ),
      field("invite-lifetime", t("invite.lifetime"), h("select", { id: "invite-lifetime" }, ...lifetimes), [t("invite.lifetime.help")]),
      h("p", { id: "invite-error", class: "field-error", role: "alert", hidden: true }),
      h("div", { class: "actions" }, h("button", { id: "invite-submit", type: "submit", class: "btn btn-primary", text: t("invite.submit") })),
    );
    this.result = h("section", { id: "invite-result", class: "panel", hidden: true, "aria-labelledby": "invite-result-title" });
    this.walkInPanel = h("section", { id: "walk-in", class: "panel", hidden: true, "aria-labelledby": "walk-in-title" });
    root.replaceChildren(
      h("h1", { text: t("invite.title") }),
      h("div", { class: "panel" }, this.form),
      this.result,
      this.walkInPanel,
    );
  }

  /** The clinic's walk-in link (null when walk-in is off). */
  setWalkIn(link) {
    if (link === this.walkIn) return;
    this.walkIn = link;
    this.walkInPanel.hidden = !link;
    if (!link) {
      this.walkInPanel.replaceChildren();
      return;
    }
    this.walkInPanel.replaceChildren(
      h("h2", { id: "walk-in-title", text: t("invite.link.walk_in") }),
      h("p", { class: "muted small", text: t("invite.walk_in.help") }),
      linkBox(link, { kind: "walk_in", id: "walk-in-link" }),
    );
  }

  async submit(event) {
    event.preventDefault();
    const name = $("#invite-name").value.trim();
    this.showError(null);
    if (!name) {
      this.showError(new InviteError(t("invite.error.no_name"), "patient_name"));
      return;
    }
    const body = { patient_name: name, reason: $("#invite-reason").value.trim() };
    const when = $("#invite-when").value;
    if (when) {
      const at = new Date(when); // the field's value is local (clinic) time
      if (Number.isNaN(at.getTime())) {
        this.showError(new InviteError(t("invite.error.when_incomplete"), "scheduled_at"));
        return;
      }
      body.scheduled_at = at.toISOString();
    }
    const lifetime = $("#invite-lifetime").value;
    if (lifetime) body.ttl_minutes = Number(lifetime);
    const button = $("#invite-submit");
    button.disabled = true;
    button.textContent = t("invite.creating");
    try {
      const reply = await callApi(this.token, "POST", "/api/visits", body);
      this.showResult(name, reply);
      this.form.reset();
      this.onInvited();
    } catch (err) {
      this.showError(err);
    } finally {
      button.disabled = false;
      button.textContent = t("invite.submit");
    }
  }

  showError(err) {
    for (const id of ["invite-name", "invite-when", "invite-lifetime"]) $(`#${id}`).removeAttribute("aria-invalid");
    const box = $("#invite-error");
    box.hidden = !err;
    box.textContent = err ? err.message : "";
    if (!err) return;
    const target = { patient_name: "invite-name", scheduled_at: "invite-when", ttl_minutes: "invite-lifetime" }[err.field];
    if (target) {
      $(`#${target}`).setAttribute("aria-invalid", "true");
      $(`#${target}`).focus();
    }
  }

  showResult(name, reply) {
    const facts = [h("p", {}, ...tNodes("invite.send", { name: person(name, "strong") }))];
    if (reply.scheduled_at) {
      const when = { when: formatAppointment(reply.scheduled_at), opens: formatAppointment(reply.check_in_from) };
      facts.push(h("p", { id: "invite-appointment", text: t("invite.appointment", when) }));
    }
    facts.push(h("p", { class: "muted small", text: t("invite.expires", { time: formatAppointment(reply.expires_at) }) }));
    this.result.replaceChildren(
      h("h2", { id: "invite-result-title" }, ...tNodes("invite.result.title", { name: person(name) })),
      ...facts,
      linkBox(reply.patient_link, { kind: "patient", id: "invite-link" }),
    );
    this.result.hidden = false;
    $("#invite-result-title").setAttribute("tabindex", "-1");
    $("#invite-result-title").focus();
  }
}

/** A labelled form field; `help`: its description, as text and elements. */
function field(id, label, control, help = null) {
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    help ? h("p", { id: `${id}-help`, class: "muted small" }, ...help) : null,
  );
}
