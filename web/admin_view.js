// The admin console on the staff page (role admin): the clinic's settings
// (its name as patients and guests read it, walk-in, captions to the patient,
// link lifetime, check-in window, no-show time), applied at once; the staff signed in now, with "Sign out"; and the
// audit trail's state with its last events (ids and actions only) and the
// retention in force. Every answer is shown beside the control that asked.

import { callRoute, formatClock, h, showScreen } from "/static/common.js";
import { roleName } from "/static/clinic_text.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { errorText, formatUnit, has, t } from "/static/i18n.js";

/** Audit events with words of their own (admin.event.<action>). */
const ACTIONS = [
  "admit", "end", "chart_read", "chart_list", "chart_verify", "chart_link", "file_download", "fhir_read",
  "export", "purge", "refused", "verify", "seal", "settings", "revoke", "invite", "head_mismatch",
];

/** The on/off settings (admin.toggle.<name>.label, .help, .on, .off). */
const TOGGLES = ["walk_in", "captions_to_patient"];

/** The durations: their unit (seconds) and bounds, as the server keeps them (telemed/clinic_config.py LIMITS). */
const DURATIONS = [
  { name: "link_lifetime", unit: 3600, step: "0.5", min: "0.1", max: "336", limits: [5 * 60, 14 * 86400] },
  { name: "check_in_window", unit: 60, step: "1", min: "0", max: "1440", limits: [0, 24 * 3600] },
  { name: "no_show_after", unit: 60, step: "1", min: "1", max: "1440", limits: [60, 24 * 3600] },
];

/** Days, hours or minutes, in words ("2 days", "20 minutes") in the page's language. */
export function formatSpan(seconds) {
  if (seconds >= 86400 && seconds % 86400 === 0) return formatUnit(seconds / 86400, "day");
  if (seconds >= 3600 && seconds % 3600 === 0) return formatUnit(seconds / 3600, "hour");
  return formatUnit(Math.round(seconds / 60), "minute");
}

/** "Refused: too many attempts": why the server refused a request (the audit record's error code), in words. */
function refusedText(code) {
  return t("admin.events.refused", { reason: t(has(`admin.refusal.${code}`) ? `admin.refusal.${code}` : "admin.refusal.other") });
}

/** Why a duration was refused, in words: its bounds. */
function durationLimit(spec) {
  const [low, high] = spec.limits;
  return t(`admin.duration.${spec.name}.limit`, { low: formatSpan(low), high: formatSpan(high) });
}

/** Longest clinic name (telemed/clinic_config.py DISPLAY_NAME_MAX). */
const NAME_MAX = 60;

/** Which rule a refused clinic name broke, in words: too long, or not one line of plain text. */
function nameRule(name) {
  return [...name].length > NAME_MAX ? t("admin.display_name.too_long", { max: NAME_MAX }) : t("admin.display_name.one_line");
}

/** Say something beside a control: text, or nodes (a sentence with a name in it). */
function say(el, content, kind = "ok") {
  el.replaceChildren(...(Array.isArray(content) ? content : [content]));
  el.dataset.kind = kind;
  el.hidden = !el.textContent;
}

export class AdminView {
  /**
   * @param root the element the console is built in (inside the "admin" screen)
   * @param token the admin's token (for the HTTP API)
   * @param clinic the admin's clinic
   */
  constructor({ root, token, clinic }) {
    this.root = root;
    this.token = token;
    this.base = `/api/clinics/${encodeURIComponent(clinic)}`;
    this.settings = null;
    this.timer = null;
    this.build();
  }

  /** Open the console's screen with fresh figures; the session list refreshes while it is shown. */
  show() {
    showScreen("admin");
    this.loadSettings();
    this.loadSessions();
    this.loadAudit(false);
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.root.closest("[data-screen]").hidden) clearInterval(this.timer);
      else this.loadSessions();
    }, 15000);
  }

  /** Call the API; resolves to the JSON reply or throws an Error with the server's words. */
  async api(method, path, body) {
    const { ok, data } = await callRoute(this.token, method, this.base + path, body || undefined);
    if (!ok) {
      const e = (data && data.error) || {};
      const error = new Error(e.code || e.message ? errorText({ code: e.code, serverMessage: e.message, details: e.details }) : t("admin.error.generic"));
      error.field = e.details && e.details.field;
      throw error;
    }
    return data;
  }

  // -- building -----------------------------------------------------------------

  build() {
    this.root.replaceChildren(
      h("h1", { id: "admin-title", text: t("admin.title") }),
      this.buildSettings(),
      this.buildSessions(),
      this.buildAudit(),
    );
  }

  /** The clinic's display name: "Video visit with <name>" on the patients' and guests' pages. */
  buildName() {
    this.nameInput = h("input", {
      type: "text", id: "admin-display_name", autocomplete: "off", translate: "no",
      "aria-describedby": "admin-display_name-help admin-display_name-error",
    });
    this.nameError = h("p", { id: "admin-display_name-error", class: "field-error", role: "alert", hidden: true });
    this.nameSaid = h("p", { id: "admin-display_name-said", class: "admin-said small", role: "status", hidden: true });
    return h(
      "form",
      { id: "admin-name", class: "admin-name", novalidate: true, on: { submit: (e) => this.saveName(e) } },
      h("div", { class: "field" },
        h("label", { for: this.nameInput.id, text: t("admin.display_name.label") }),
        this.nameInput,
        h("p", { id: "admin-display_name-help", class: "muted small admin-help", text: t("admin.display_name.help") }),
        this.nameError),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary", text: t("admin.display_name.save") })),
      this.nameSaid,
    );
  }

  buildSettings() {
    this.toggles = {};
    const rows = TOGGLES.map((name) => {
      const input = h("input", { type: "checkbox", id: `admin-${name}`, "aria-describedby": `admin-${name}-help admin-${name}-said` });
      const said = h("p", { id: `admin-${name}-said`, class: "admin-said small", role: "status", hidden: true });
      input.addEventListener("change", () => this.saveToggle(name, input, said));
      this.toggles[name] = input;
      return h(
        "div",
        { class: "admin-setting" },
        h("div", { class: "check" }, input, h("label", { for: input.id, text: t(`admin.toggle.${name}.label`) })),
        h("p", { id: `admin-${name}-help`, class: "muted small admin-help", text: t(`admin.toggle.${name}.help`) }),
        said,
      );
    });
    this.durations = {};
    const fields = DURATIONS.map((d) => {
      const input = h("input", {
        type: "number", id: `admin-${d.name}`, step: d.step, min: d.min, max: d.max, inputmode: "decimal",
        "aria-describedby": `admin-${d.name}-error`, required: true,
      });
      const error = h("p", { id: `admin-${d.name}-error`, class: "field-error", role: "alert", hidden: true });
      this.durations[d.name] = { input, error, spec: d };
      return h("div", { class: "field" }, h("label", { for: input.id, text: t(`admin.duration.${d.name}.label`) }), input, error);
    });
    this.timesSaid = h("p", { id: "admin-times-said", class: "admin-said small", role: "status", hidden: true });
    const form = h(
      "form",
      { id: "admin-times", class: "admin-times", novalidate: true, on: { submit: (e) => this.saveTimes(e) } },
      h("div", { class: "admin-fields" }, fields),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary", text: t("admin.times.save") })),
      this.timesSaid,
    );
    this.settingsState = h("p", { class: "muted small", role: "status", text: t("admin.settings.loading") });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-settings-title" },
      h("h2", { id: "admin-settings-title", text: t("admin.settings.title") }),
      this.settingsState,
      this.buildName(),
      rows,
      form,
    );
  }

  buildSessions() {
    this.sessionsBody = h("ul", { id: "admin-sessions-body", class: "admin-sessions", "aria-label": t("admin.sessions.list") });
    this.sessionsSaid = h("p", { id: "admin-sessions-said", class: "admin-said small", role: "status", hidden: true });
    this.sessionsEmpty = h("p", { class: "muted small", text: t("admin.sessions.empty"), hidden: true });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-sessions-title" },
      h(
        "div",
        { class: "panel-head" },
        h("h2", { id: "admin-sessions-title", text: t("admin.sessions.title") }),
        h("button", { type: "button", class: "btn btn-small", text: t("admin.sessions.refresh"), on: { click: () => this.loadSessions(true) } }),
      ),
      this.sessionsBody,
      this.sessionsEmpty,
      this.sessionsSaid,
    );
  }

  buildAudit() {
    this.auditState = h("p", { id: "admin-audit-state", class: "admin-audit-state", role: "status", text: t("admin.audit.checking") });
    this.auditProblems = h("ul", { class: "plain-list small", hidden: true });
    this.retention = h("p", { id: "admin-retention", class: "small" });
    this.eventsBody = h("tbody", { id: "admin-events-body" });
    this.eventsEmpty = h("p", { class: "empty", text: t("admin.events.empty"), hidden: true });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-audit-title" },
      h(
        "div",
        { class: "panel-head" },
        h("h2", { id: "admin-audit-title", text: t("admin.audit.title") }),
        h("button", { type: "button", class: "btn btn-small", text: t("admin.audit.check_again"), on: { click: () => this.loadAudit(true) } }),
      ),
      this.auditState,
      this.auditProblems,
      this.retention,
      h("h3", { text: t("admin.events.title") }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "admin-table" },
          h("caption", { class: "visually-hidden", text: t("admin.events.caption") }),
          h("thead", {}, h("tr", {}, ["time", "event", "by", "visit", "result"].map((column) => h("th", { scope: "col", text: t(`admin.events.column.${column}`) })))),
          this.eventsBody,
        ),
      ),
      this.eventsEmpty,
    );
  }

  // -- settings -----------------------------------------------------------------

  async loadSettings() {
    try {
      const data = await this.api("GET", "/settings");
      this.showSettings(data.settings);
      say(this.settingsState, "");
      this.showRetention(data.retention);
    } catch (err) {
      say(this.settingsState, err.message, "error");
    }
  }

  showSettings(settings) {
    this.settings = settings;
    for (const name of TOGGLES) this.toggles[name].checked = Boolean(settings[name]);
    if (document.activeElement !== this.nameInput) this.nameInput.value = settings.display_name || "";
    for (const { input, spec } of Object.values(this.durations)) {
      input.value = String(Math.round((settings[spec.name] / spec.unit) * 100) / 100);
    }
  }

  async saveToggle(name, input, said) {
    const wanted = input.checked;
    input.disabled = true;
    say(said, t("admin.saving"), "busy");
    try {
      const data = await this.api("PUT", "/settings", { [name]: wanted });
      this.showSettings(data.settings);
      say(said, t(`admin.toggle.${name}.${data.settings[name] ? "on" : "off"}`));
    } catch (err) {
      input.checked = !wanted;
      say(said, err.message, "error");
    } finally {
      input.disabled = false;
    }
  }

  async saveName(event) {
    event.preventDefault();
    const name = this.nameInput.value.trim();
    say(this.nameError, "");
    this.nameInput.removeAttribute("aria-invalid");
    say(this.nameSaid, t("admin.saving"), "busy");
    try {
      const data = await this.api("PUT", "/settings", { display_name: name });
      this.showSettings(data.settings);
      const saved = data.settings.display_name;
      say(this.nameSaid, saved ? tNodes("admin.display_name.saved", { name: untranslated(saved) }) : t("admin.display_name.cleared"));
    } catch (err) {
      say(this.nameError, err.field === "display_name" ? nameRule(name) : t("admin.display_name.failed", { reason: err.message }), "error");
      this.nameInput.setAttribute("aria-invalid", "true");
      say(this.nameSaid, "");
      this.nameInput.focus();
    }
  }

  async saveTimes(event) {
    event.preventDefault();
    const changes = {};
    let bad = null;
    for (const { input, error, spec } of Object.values(this.durations)) {
      say(error, "");
      input.removeAttribute("aria-invalid");
      const value = Number(input.value);
      if (input.value.trim() === "" || !Number.isFinite(value)) {
        say(error, t("admin.times.not_a_number"), "error");
        input.setAttribute("aria-invalid", "true");
        bad = bad || input;
        continue;
      }
      changes[spec.name] = Math.round(value * spec.unit);
    }
    if (bad) {
      say(this.timesSaid, t("admin.times.fix_first"), "error");
      bad.focus();
      return;
    }
    say(this.timesSaid, t("admin.saving"), "busy");
    try {
      const data = await this.api("PUT", "/settings", changes);
      this.showSettings(data.settings);
      const s = data.settings;
      say(
        this.timesSaid,
        t("admin.times.saved", { link: formatSpan(s.link_lifetime), check_in: formatSpan(s.check_in_window), no_show: formatSpan(s.no_show_after) }),
      );
    } catch (err) {
      const field = err.field && this.durations[err.field];
      if (field) {
        say(field.error, durationLimit(field.spec), "error");
        field.input.setAttribute("aria-invalid", "true");
        field.input.focus();
      }
      say(this.timesSaid, field ? t("admin.times.fix_marked") : err.message, "error");
    }
  }

  // -- sessions -----------------------------------------------------------------

  async loadSessions(announce = false) {
    try {
      const data = await this.api("GET", "/sessions");
      this.showSessions(data.sessions);
      if (announce) say(this.sessionsSaid, t("admin.sessions.updated", { time: formatClock(Date.now() / 1000) }));
    } catch (err) {
      say(this.sessionsSaid, err.message, "error");
    }
  }

  showSessions(sessions) {
    const rows = sessions.map((s) => this.sessionRow(s));
    this.sessionsBody.replaceChildren(...rows);
    this.sessionsEmpty.hidden = sessions.some((s) => !s.mine);
  }

  sessionRow(s) {
    const said = { role: roleName(s.role), time: formatClock(s.since), servers: untranslated(s.nodes.join(", ")) };
    const actions = h("div", { class: "admin-actions" });
    const row = h(
      "li",
      { dataset: { session: s.session } },
      h(
        "div",
        { class: "admin-who" },
        h("strong", {}, ...(s.mine ? tNodes("admin.sessions.you", { name: untranslated(s.name) }) : [untranslated(s.name)])),
        h("span", { class: "muted small" },
          ...(s.windows > 1 ? tNodes("admin.sessions.facts_windows", { ...said, count: s.windows }) : tNodes("admin.sessions.facts", said))),
      ),
      actions,
    );
    if (!s.mine) this.offerSignOut(actions, s);
    return row;
  }

  offerSignOut(cell, s) {
    const ask = h("button", {
      type: "button", class: "btn btn-small btn-danger-outline", text: t("admin.sessions.sign_out"),
      "aria-label": t("admin.sessions.sign_out_named", { name: s.name }),
      on: { click: () => confirm(true) },
    });
    const yes = h("button", { type: "button", class: "btn btn-small btn-danger", text: t("admin.sessions.sign_out_yes"), on: { click: () => this.signOut(s, cell) } });
    const no = h("button", { type: "button", class: "btn btn-small", text: t("admin.sessions.sign_out_no"), on: { click: () => confirm(false) } });
    const box = h("div", { class: "admin-confirm", hidden: true }, h("span", {}, ...tNodes("admin.sessions.sign_out_ask", { name: untranslated(s.name) })), yes, no);
    const confirm = (show) => {
      box.hidden = !show;
      ask.hidden = show;
      (show ? no : ask).focus();
    };
    cell.replaceChildren(ask, box);
  }

  async signOut(s, cell) {
    for (const b of cell.querySelectorAll("button")) b.disabled = true;
    try {
      const data = await this.api("POST", `/sessions/${encodeURIComponent(s.session)}/sign-out`);
      say(this.sessionsSaid, tNodes("admin.sessions.signed_out", { name: untranslated(data.signed_out.name) }));
      await this.loadSessions();
      this.loadAudit(true);
    } catch (err) {
      say(this.sessionsSaid, err.message, "error");
      await this.loadSessions();
    }
    this.sessionsSaid.scrollIntoView({ block: "nearest" });
  }

  // -- audit ---------------------------------------------------------------------

  showRetention(seconds) {
    this.retention.textContent = seconds ? t("admin.retention.kept", { span: formatSpan(seconds) }) : t("admin.retention.forever");
  }

  async loadAudit(fresh) {
    say(this.auditState, t("admin.audit.checking"), "busy");
    try {
      const data = await this.api("GET", `/audit${fresh ? "?fresh=1" : ""}`);
      const a = data.audit;
      const when = formatClock(a.checked_at);
      if (a.ok) {
        say(this.auditState, t("admin.audit.intact", { count: a.records, time: when }));
      } else if (a.more_problems) {
        say(this.auditState, t("admin.audit.damaged_more", { count: a.more_problems, time: when }), "error");
      } else {
        say(this.auditState, t("admin.audit.damaged", { time: when }), "error");
      }
      // The verifier's findings are technical English (line and sequence numbers), kept as written.
      this.auditProblems.replaceChildren(...a.problems.map((p) => h("li", { lang: "en", translate: "no", text: p })));
      this.auditProblems.hidden = a.ok;
      this.showRetention(data.retention);
      this.eventsBody.replaceChildren(...a.events.map((e) => this.eventRow(e)));
      this.eventsEmpty.hidden = a.events.length > 0;
    } catch (err) {
      say(this.auditState, err.message, "error");
    }
  }

  eventRow(e) {
    // data-label: the column's name, shown beside each value where a phone stacks the row (admin.css).
    const cell = (column, ...content) => h("td", { dataset: { label: t(`admin.events.column.${column}`) } }, ...content);
    return h(
      "tr",
      {},
      cell("time", e.at ? formatClock(e.at) : ""),
      cell("event", ACTIONS.includes(e.action) ? t(`admin.event.${e.action}`) : untranslated(e.action || "", "code")),
      cell("by", e.role ? roleName(e.role) : ""),
      cell("visit", e.visit ? untranslated(e.visit, "code") : ""),
      cell("result", e.outcome === "refused" ? refusedText(e.code) : t("admin.events.done")),
    );
  }
}
