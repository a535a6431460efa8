// Staff: invite a patient (name, reason, an optional appointment time, how
// long the link lasts) and hand over the link: copy it, or let the patient
// scan its QR code. Also the clinic's walk-in link, when walk-in is on.
// Calls POST /api/visits; the expected list (expected_view.js) shows the
// invitation until the patient checks in.

import { $, h } from "/static/common.js";
import { InviteError, callApi, copyText, formatAppointment } from "/static/invite_api.js";
import { qrSvg } from "/static/qr.js";

const LIFETIMES = [
  ["", "The clinic's default"],
  ["60", "1 hour"],
  ["240", "4 hours"],
  ["1440", "1 day"],
  ["4320", "3 days"],
  ["10080", "7 days"],
  ["20160", "14 days"],
];

/**
 * A link to hand over: the link in a read-only field, a Copy button with its
 * feedback beside it, and the QR code.
 */
export function linkBox(link, { label, id, qr = true }) {
  const input = h("input", { id, type: "text", readonly: true, value: link, spellcheck: "false", class: "link-field" });
  input.value = link;
  const status = h("span", { class: "copy-status small", role: "status", "aria-live": "polite" });
  const copy = h("button", {
    type: "button",
    class: "btn btn-small",
    text: "Copy",
    "aria-label": `Copy the ${label.toLowerCase()}`,
    "aria-describedby": `${id}-status`,
    on: {
      click: async () => {
        const ok = await copyText(link, input);
        status.textContent = ok ? "Copied" : "Select the link and copy it";
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
    qr ? h("div", { class: "qr-wrap" }, qrSvg(link, `QR code of the ${label.toLowerCase()}`)) : null,
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
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    this.form = h(
      "form",
      { id: "invite-form", novalidate: true, on: { submit: (e) => this.submit(e) } },
      field("invite-name", "Patient name", h("input", { id: "invite-name", type: "text", maxlength: 120, autocomplete: "off", required: true })),
      field("invite-reason", "Reason for the visit", h("input", { id: "invite-reason", type: "text", maxlength: 500, autocomplete: "off" }), "Optional."),
      field(
        "invite-when",
        "Appointment time",
        h("input", { id: "invite-when", type: "datetime-local" }),
        `Optional; clinic time (${zone}). Leave empty for a visit the patient can start any time.`,
      ),
      field(
        "invite-lifetime",
        "Link works for",
        h("select", { id: "invite-lifetime" }, ...LIFETIMES.map(([value, text]) => h("option", { value, text }))),
        "A link for an appointment always lasts until after it.",
      ),
      h("p", { id: "invite-error", class: "field-error", role: "alert", hidden: true }),
      h("div", { class: "actions" }, h("button", { id: "invite-submit", type: "submit", class: "btn btn-primary", text: "Create the link" })),
    );
    this.result = h("section", { id: "invite-result", class: "panel", hidden: true, "aria-labelledby": "invite-result-title" });
    this.walkInPanel = h("section", { id: "walk-in", class: "panel", hidden: true, "aria-labelledby": "walk-in-title" });
    root.replaceChildren(
      h("h1", { text: "Invite a patient" }),
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
      h("h2", { id: "walk-in-title", text: "Walk-in link" }),
      h("p", { class: "muted small", text: "Anyone with this link can check in to the clinic now. Print the QR code for the door." }),
      linkBox(link, { label: "Walk-in link", id: "walk-in-link" }),
    );
  }

  async submit(event) {
    event.preventDefault();
    const name = $("#invite-name").value.trim();
    this.showError(null);
    if (!name) {
      this.showError(new InviteError("Enter the patient's name.", "patient_name"));
      return;
    }
    const body = { patient_name: name, reason: $("#invite-reason").value.trim() };
    const when = $("#invite-when").value;
    if (when) {
      const at = new Date(when); // the field's value is local (clinic) time
      if (Number.isNaN(at.getTime())) {
        this.showError(new InviteError("Enter the appointment's date and time in full.", "scheduled_at"));
        return;
      }
      body.scheduled_at = at.toISOString();
    }
    const lifetime = $("#invite-lifetime").value;
    if (lifetime) body.ttl_minutes = Number(lifetime);
    const button = $("#invite-submit");
    button.disabled = true;
    button.textContent = "Creating…";
    try {
      const reply = await callApi(this.token, "POST", "/api/visits", body);
      this.showResult(name, reply);
      this.form.reset();
      this.onInvited();
    } catch (err) {
      this.showError(err);
    } finally {
      button.disabled = false;
      button.textContent = "Create the link";
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
    const facts = [h("p", {}, "Send this link to ", h("strong", { text: name }), ", by text message or e-mail, or let them scan the code.")];
    if (reply.scheduled_at) {
      facts.push(
        h("p", { id: "invite-appointment" }, `Appointment: ${formatAppointment(reply.scheduled_at)}. Check-in opens ${formatAppointment(reply.check_in_from)}.`),
      );
    }
    facts.push(h("p", { class: "muted small", text: `The link works until ${formatAppointment(reply.expires_at)}.` }));
    this.result.replaceChildren(
      h("h2", { id: "invite-result-title", text: `Link for ${name}` }),
      ...facts,
      linkBox(reply.patient_link, { label: "Patient link", id: "invite-link" }),
    );
    this.result.hidden = false;
    $("#invite-result-title").setAttribute("tabindex", "-1");
    $("#invite-result-title").focus();
  }
}

function field(id, label, control, help = null) {
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    help ? h("p", { id: `${id}-help`, class: "muted small", text: help }) : null,
  );
}
