// The chart browser: the clinic's written charts (GET /api/charts), newest
// first, 50 a page, filtered by date range, state, doctor and a piece of the
// patient's name; opening one shows its record (chart_record.js). Builds its
// own elements inside the staff page's "charts" screen.

import { $, h, showScreen, stateName } from "/static/common.js";
import { acuityBadge } from "/static/staff_labels.js";
import { formatDateTime, getChart } from "/static/chart_api.js";
import { ChartRecord } from "/static/chart_record.js";
import { untranslated } from "/static/i18n_nodes.js";
import { t } from "/static/i18n.js";

/** The visit states a chart can be filtered by, in the order a visit goes through them. */
const STATES = ["created", "waiting", "in_triage", "ready", "in_visit", "ended"];

/** The list's columns (the last, the Open button's, is named for screen readers only). */
const COLUMNS = ["charts.column.patient", "charts.column.ended", "charts.column.state", "charts.column.doctor", "charts.column.acuity"];

/** The date input's value (local day) as epoch seconds at its start, or its end with `end`. */
function dayBound(value, end = false) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  const day = new Date(y, m - 1, d + (end ? 1 : 0));
  return Math.floor(day.getTime() / 1000) - (end ? 1 : 0);
}

export class ChartBrowser {
  /**
   * @param root the element the browser builds itself in
   * @param token the staff token
   * @param back called when the person leaves the charts (back to the waiting room)
   */
  constructor(root, { token, back }) {
    this.root = root;
    this.token = token;
    this.back = back;
    this.state = { page: 1, pages: 1, query: {}, loaded: false, busy: false };
    this.build();
    this.record = new ChartRecord(this.recordEl, { token, back: () => this.showList() });
  }

  build() {
    const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id, text: label }), input);
    this.from = h("input", { id: "charts-from", type: "date" });
    this.to = h("input", { id: "charts-to", type: "date" });
    this.stateSel = h(
      "select",
      { id: "charts-state" },
      h("option", { value: "", text: t("charts.filter.any_state") }),
      ...STATES.map((value) => h("option", { value, text: stateName(value) })),
    );
    this.doctorSel = h("select", { id: "charts-doctor" }, h("option", { value: "", text: t("charts.filter.any_doctor") }));
    this.name = h("input", { id: "charts-name", type: "search", maxlength: "120", autocomplete: "off", spellcheck: "false" });
    this.status = h("p", { id: "charts-status", class: "form-status small", role: "status", "aria-live": "polite" });
    this.form = h(
      "form",
      { id: "charts-filters", class: "chart-filters", on: { submit: (e) => { e.preventDefault(); this.search(); } } },
      field("charts-name", t("charts.filter.name"), this.name),
      field("charts-from", t("charts.filter.from"), this.from),
      field("charts-to", t("charts.filter.to"), this.to),
      field("charts-state", t("charts.filter.state"), this.stateSel),
      field("charts-doctor", t("charts.filter.doctor"), this.doctorSel),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary", text: t("charts.filter.show") })),
    );
    this.body = h("tbody", { id: "charts-body" });
    this.table = h(
      "table",
      { id: "charts", class: "queue chart-list" },
      h("caption", { class: "visually-hidden", text: t("charts.table.caption") }),
      h("thead", {}, h("tr", {}, ...COLUMNS.map((key) => h("th", { scope: "col", text: t(key) })),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: t("charts.column.open") })))),
      this.body,
    );
    this.empty = h("p", { id: "charts-empty", class: "empty", hidden: true, text: t("charts.empty") });
    this.prev = h("button", { id: "charts-prev", type: "button", class: "btn btn-small", text: t("charts.page.previous"), on: { click: () => this.go(-1) } });
    this.next = h("button", { id: "charts-next", type: "button", class: "btn btn-small", text: t("charts.page.next"), on: { click: () => this.go(1) } });
    this.pageInfo = h("p", { id: "charts-page", class: "muted small", "aria-live": "polite" });
    this.listEl = h(
      "div",
      { class: "chart-browser-list" },
      h("div", { class: "queue-head" }, h("h1", { id: "charts-title", text: t("charts.title") }),
        h("button", { type: "button", class: "btn btn-small", text: t("charts.back"), on: { click: () => this.back() } })),
      this.form,
      this.status,
      h("div", { class: "table-wrap" }, this.table, this.empty),
      h("nav", { class: "pager", "aria-label": t("charts.page.nav") }, this.prev, this.pageInfo, this.next),
    );
    this.recordEl = h("div", { class: "chart-record", hidden: true });
    this.root.replaceChildren(this.listEl, this.recordEl);
  }

  /** Show the charts screen (the list as it was left, loaded the first time). */
  show() {
    showScreen("charts");
    this.showList({ focus: false });
    if (!this.state.loaded) this.search();
  }

  showList({ focus = true } = {}) {
    this.record.close();
    this.recordEl.hidden = true;
    this.listEl.hidden = false;
    if (focus) {
      const opened = this.body.querySelector(`button[data-visit="${this.lastOpened || ""}"]`);
      (opened || $("#charts-title")).focus();
    }
  }

  search() {
    const from = dayBound(this.from.value);
    const to = dayBound(this.to.value, true);
    if (from !== null && to !== null && from > to) {
      this.say(t("charts.filter.dates_reversed"), true);
      this.to.focus();
      return;
    }
    this.state.query = { from, to, state: this.stateSel.value, doctor: this.doctorSel.value, q: this.name.value.trim() };
    this.load(1);
  }

  go(step) {
    const page = this.state.page + step;
    if (page >= 1 && page <= this.state.pages) this.load(page);
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.dataset.kind = error ? "error" : "";
  }

  async load(page) {
    if (this.state.busy) return;
    this.state.busy = true;
    this.say(t("charts.loading"));
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(this.state.query)) if (value !== null && value !== "") params.set(key, String(value));
    params.set("page", String(page));
    try {
      const reply = await getChart(this.token, `/api/charts?${params}`);
      this.state = { ...this.state, page: reply.page, pages: reply.pages, loaded: true };
      this.render(reply);
      this.say("");
    } catch (err) {
      this.say(err.message, true);
    } finally {
      this.state.busy = false;
    }
  }

  render(reply) {
    const chosen = this.doctorSel.value;
    this.doctorSel.replaceChildren(
      h("option", { value: "", text: t("charts.filter.any_doctor") }),
      ...reply.doctors.map((d) => h("option", d.name ? { value: d.sub, translate: "no", text: d.name } : { value: d.sub, text: t("charts.doctor_unnamed") })),
    );
    this.doctorSel.value = chosen;
    this.body.replaceChildren(...reply.charts.map((c) => this.row(c)));
    this.empty.hidden = reply.charts.length > 0;
    this.pageInfo.textContent = reply.total ? t("charts.page.info", { page: reply.page, pages: reply.pages, count: reply.total }) : "";
    this.prev.disabled = reply.page <= 1;
    this.next.disabled = reply.page >= reply.pages;
  }

  row(c) {
    const name = c.patient_name;
    const open = h("button", {
      type: "button",
      class: "btn btn-small",
      text: t("charts.open"),
      "aria-label": name ? t("charts.open_named", { name }) : t("charts.open_unnamed"),
      dataset: { visit: c.visit_id },
      on: { click: () => this.open(c) },
    });
    return h(
      "tr",
      { dataset: { visit: c.visit_id } },
      h("td", { class: "chart-patient" }, name ? untranslated(name, "strong") : h("strong", { text: t("charts.patient_unnamed") })),
      h("td", { class: "chart-ended", dataset: { label: t("charts.column.ended") }, text: formatDateTime(c.ended_at || c.created_at) }),
      h("td", { dataset: { label: t("charts.column.state") }, text: stateName(c.state) }),
      h("td", { dataset: { label: t("charts.column.doctor") } }, c.doctor && c.doctor.name ? untranslated(c.doctor.name) : "—"),
      h("td", { dataset: { label: t("charts.column.acuity") } }, acuityBadge(c.acuity)),
      h("td", { class: "row-actions" }, open),
    );
  }

  open(summary) {
    this.lastOpened = summary.visit_id;
    this.listEl.hidden = true;
    this.recordEl.hidden = false;
    this.record.open(summary);
  }
}
