// Staff: the visits expected today and later (invited, not checked in yet),
// by appointment time, with "late" past the clinic's setting; each can be
// cancelled (inline confirmation; the patient's link then says so) or get a
// fresh link. Below, the no-shows of the last hours ("Missed").
// Fed by GET /api/clinics/{clinic}/expected, refreshed on `visit` events, each
// time the page's queue socket (re)connects (what was pushed while it was away
// or not yet in the clinic's room), and every half minute.

import { h } from "/static/common.js";
import { t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";
import { callApi, formatAppointment } from "/static/invite_api.js";
import { linkBox } from "/static/invite_view.js";
import { person } from "/static/staff_labels.js";

const REFRESH_EVERY_MS = 30000;

export class ExpectedView {
  /**
   * @param root the panel to draw in (section#expected)
   * @param token the staff token
   * @param clinic the staff member's clinic
   * @param onWalkIn called with the clinic's walk-in link (null when off) at each refresh
   */
  constructor(root, { token, clinic, onWalkIn }) {
    this.root = root;
    this.token = token;
    this.clinic = clinic;
    this.onWalkIn = onWalkIn;
    /** The expected visits, as last listed. */
    this.rows = [];
    /** The clinic's recent no-shows, as last listed. */
    this.missed = [];
    /** Per visit: what its row shows below its facts (a fresh link, a confirmation, feedback). */
    this.extra = new Map();
    /** Visits whose row asks to confirm a cancel (their buttons are hidden meanwhile). */
    this.confirming = new Set();
    this.pending = null;
    this.again = false;
    this.root.hidden = false;
    this.list = h("ul", { id: "expected-list", class: "expected-list" });
    this.empty = h("p", { id: "expected-empty", class: "muted small", text: t("expected.empty") });
    this.error = h("p", { class: "field-error", role: "alert", hidden: true });
    this.missedList = h("ul", { id: "missed-list", class: "expected-list" });
    this.missedTitle = h("summary", { text: t("expected.missed", { count: 0 }) });
    this.missedBox = h("details", { class: "missed", hidden: true }, this.missedTitle, this.missedList);
    this.root.replaceChildren(h("h2", { id: "expected-title", text: t("expected.title") }), this.error, this.list, this.empty, this.missedBox);
    this.refresh();
    setInterval(() => this.refresh(), REFRESH_EVERY_MS);
  }

  /**
   * Read the list again (coalesced: one request at a time; asked again while
   * one is under way, another follows it, as that one may have read the list
   * before the change that asked).
   */
  refresh() {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.again = false;
    this.pending = callApi(this.token, "GET", `/api/clinics/${encodeURIComponent(this.clinic)}/expected`)
      .then((reply) => {
        this.rows = reply.expected;
        this.missed = reply.missed;
        this.error.hidden = true;
        this.onWalkIn(reply.walk_in_link);
        this.render();
      })
      .catch((err) => {
        this.error.textContent = t("expected.read_failed", { reason: err.message });
        this.error.hidden = false;
      })
      .finally(() => {
        this.pending = null;
        if (this.again) this.refresh();
      });
    return this.pending;
  }

  /** A `visit` event: one of ours checked in, was cancelled or missed, or a new one appeared. */
  visitChanged(visit) {
    const ours = this.rows.some((r) => r.visit_id === visit.visit_id);
    if (ours !== (visit.state === "created")) this.refresh();
  }

  render() {
    const items = this.rows.map((visit) => this.renderRow(visit));
    this.list.replaceChildren(...items);
    this.empty.hidden = items.length > 0;
    this.missedList.replaceChildren(...this.missed.map((visit) => this.renderMissed(visit)));
    this.missedTitle.textContent = t("expected.missed", { count: this.missed.length });
    this.missedBox.hidden = this.missed.length === 0;
  }

  renderRow(visit) {
    const id = visit.visit_id;
    const name = visit.patient_name || t("staff.patient");
    const when = visit.scheduled_at ? formatAppointment(visit.scheduled_at) : t("expected.any_time");
    const tags = [];
    if (visit.late) tags.push(h("span", { class: "tag tag-late", text: t("expected.late") }));
    const actions = h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "btn btn-small", text: t("expected.resend"), "aria-label": t("expected.resend.name", { name }), on: { click: () => this.resend(visit) } }),
      h("button", { type: "button", class: "btn btn-small btn-danger-outline cancel-ask", text: t("expected.cancel"), "aria-label": t("staff.cancel_visit_of", { name }), on: { click: () => this.askCancel(visit) } }),
    );
    return h(
      "li",
      { class: `expected-row${visit.late ? " is-late" : ""}`, dataset: { visit: id } },
      h("div", { class: "expected-head" }, nameOf(visit), ...tags),
      h("p", { class: "expected-when small" }, h("span", { class: "muted", text: t("expected.appointment") }), " ", when),
      visit.reason ? h("p", { class: "expected-reason small" }, h("span", { class: "muted", text: t("expected.reason") }), " ", person(visit.reason)) : null,
      this.confirming.has(id) ? null : actions,
      this.extra.get(id) || null,
    );
  }

  renderMissed(visit) {
    const said = visit.scheduled_at ? t("expected.missed.row", { when: formatAppointment(visit.scheduled_at) }) : t("expected.missed.row_any");
    return h(
      "li",
      { class: "expected-row is-missed", dataset: { visit: visit.visit_id } },
      h("div", { class: "expected-head" }, nameOf(visit), h("span", { class: "tag tag-missed", text: t("expected.no_show") })),
      h("p", { class: "small", text: said }),
    );
  }

  setExtra(visitId, el, focus = null, { confirming = false } = {}) {
    if (confirming) this.confirming.add(visitId);
    else this.confirming.delete(visitId);
    if (el) this.extra.set(visitId, el);
    else this.extra.delete(visitId);
    this.render();
    if (focus) {
      const target = this.list.querySelector(focus);
      if (target) target.focus();
    }
  }

  askCancel(visit) {
    const id = visit.visit_id;
    const name = visit.patient_name ? person(visit.patient_name) : t("staff.patient");
    const box = h(
      "div",
      { class: "problem" },
      h("p", {}, ...tNodes("expected.cancel.ask", { name })),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "btn btn-danger", text: t("expected.cancel.yes"), on: { click: () => this.cancel(visit) } }),
        h("button", {
          type: "button",
          class: "btn confirm-keep",
          text: t("expected.cancel.no"),
          on: { click: () => this.setExtra(id, null, `[data-visit="${id}"] .cancel-ask`) },
        }),
      ),
    );
    this.setExtra(id, box, `[data-visit="${id}"] .confirm-keep`, { confirming: true });
  }

  async cancel(visit) {
    const id = visit.visit_id;
    try {
      await callApi(this.token, "POST", `/api/visits/${encodeURIComponent(id)}/cancel`, {});
      this.extra.delete(id);
      await this.refresh();
    } catch (err) {
      this.setExtra(id, h("p", { class: "field-error", role: "alert", text: err.message }));
    }
  }

  async resend(visit) {
    const id = visit.visit_id;
    try {
      const reply = await callApi(this.token, "POST", `/api/visits/${encodeURIComponent(id)}/resend`, {});
      const box = h(
        "div",
        { class: "resent" },
        h("p", { class: "small", role: "status", text: t("expected.resent", { time: formatAppointment(reply.expires_at) }) }),
        linkBox(reply.patient_link, { kind: "new", id: `resent-${id}`, qr: false }),
      );
      this.setExtra(id, box, `[id="resent-${id}"]`);
    } catch (err) {
      this.setExtra(id, h("p", { class: "field-error", role: "alert", text: err.message }));
    }
  }
}

/** A listed patient's name (untranslated), or "Patient". */
function nameOf(visit) {
  const props = { class: "expected-name" };
  return visit.patient_name ? person(visit.patient_name, "strong", props) : h("strong", { ...props, text: t("staff.patient") });
}
