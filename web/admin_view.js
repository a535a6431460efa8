// The admin console on the staff page (role admin): the clinic's settings
// (walk-in, captions to the patient, link lifetime, check-in window, no-show
// time), applied at once; the staff signed in now, with "Sign out"; and the
// audit trail's state with its last events (ids and actions only) and the
// retention in force. Every answer is shown beside the control that asked.

import { callRoute, formatClock, h, showScreen } from "/static/common.js";

const ROLE_NAMES = { nurse: "Nurse", doctor: "Doctor", admin: "Admin" };

/** Why the server refused, in words (the audit record's error code). */
const REFUSALS = {
  bad_request: "the request was not valid",
  unauthorized: "the sign-in was not accepted",
  forbidden: "not allowed for this person",
  not_found: "not found",
  conflict: "not possible in the visit's state",
  too_early: "too early",
  rate_limited: "too many attempts",
  unavailable: "the service was unavailable",
};

const ACTIONS = {
  admit: "Patient admitted",
  end: "Visit ended",
  chart_read: "Chart opened",
  chart_list: "Chart list viewed",
  chart_verify: "Chart checked",
  chart_link: "Chart file link made",
  file_download: "Chart file downloaded",
  fhir_read: "FHIR record read",
  export: "Chart exported",
  purge: "Old charts removed",
  refused: "Access refused",
  verify: "Trail checked",
  seal: "Chart sealed",
  settings: "Clinic settings changed",
  revoke: "Staff member signed out",
  head_mismatch: "Trail end did not match",
};

const TOGGLES = [
  {
    name: "walk_in",
    label: "Walk-in link open",
    help: "Anyone with the clinic's walk-in link can check in without an invitation.",
    said: (on) => (on ? "Walk-in is on: the walk-in link works now." : "Walk-in is off: the walk-in link refuses check-ins now."),
  },
  {
    name: "captions_to_patient",
    label: "Show live captions to the patient",
    help: "Otherwise only the doctor sees them. Applies from the next call that starts.",
    said: (on) => (on ? "Patients will see live captions too." : "Only doctors will see live captions."),
  },
];

const DURATIONS = [
  { name: "link_lifetime", label: "Patient links last (hours)", unit: 3600, step: "0.5", min: "0.1", max: "336" },
  { name: "check_in_window", label: "Check-in opens before the appointment (minutes)", unit: 60, step: "1", min: "0", max: "1440" },
  { name: "no_show_after", label: "No-show after the appointment time (minutes)", unit: 60, step: "1", min: "1", max: "1440" },
];

/** Days, hours or minutes, in words. */
function formatSpan(seconds) {
  if (seconds >= 86400 && seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? "" : "s"}`;
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? "" : "s"}`;
  const minutes = Math.round(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function say(el, text, kind = "ok") {
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
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
      const error = new Error((data && data.error && data.error.message) || "That did not work. Try again.");
      error.field = data && data.error && data.error.details && data.error.details.field;
      throw error;
    }
    return data;
  }

  // -- building -----------------------------------------------------------------

  build() {
    this.root.replaceChildren(
      h("h1", { id: "admin-title", text: "Clinic administration" }),
      this.buildSettings(),
      this.buildSessions(),
      this.buildAudit(),
    );
  }

  buildSettings() {
    this.toggles = {};
    const rows = TOGGLES.map((t) => {
      const input = h("input", { type: "checkbox", id: `admin-${t.name}`, "aria-describedby": `admin-${t.name}-help admin-${t.name}-said` });
      const said = h("p", { id: `admin-${t.name}-said`, class: "admin-said small", role: "status", hidden: true });
      input.addEventListener("change", () => this.saveToggle(t, input, said));
      this.toggles[t.name] = input;
      return h(
        "div",
        { class: "admin-setting" },
        h("div", { class: "check" }, input, h("label", { for: input.id, text: t.label })),
        h("p", { id: `admin-${t.name}-help`, class: "muted small admin-help", text: t.help }),
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
      return h("div", { class: "field" }, h("label", { for: input.id, text: d.label }), input, error);
    });
    this.timesSaid = h("p", { id: "admin-times-said", class: "admin-said small", role: "status", hidden: true });
    const form = h(
      "form",
      { id: "admin-times", class: "admin-times", novalidate: true, on: { submit: (e) => this.saveTimes(e) } },
      h("div", { class: "admin-fields" }, fields),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-primary", text: "Save times" })),
      this.timesSaid,
    );
    this.settingsState = h("p", { class: "muted small", role: "status", text: "Loading the clinic's settings…" });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-settings-title" },
      h("h2", { id: "admin-settings-title", text: "Settings" }),
      this.settingsState,
      rows,
      form,
    );
  }

  buildSessions() {
    this.sessionsBody = h("ul", { id: "admin-sessions-body", class: "admin-sessions", "aria-label": "Staff signed in now" });
    this.sessionsSaid = h("p", { id: "admin-sessions-said", class: "admin-said small", role: "status", hidden: true });
    this.sessionsEmpty = h("p", { class: "muted small", text: "Nobody else is signed in.", hidden: true });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-sessions-title" },
      h(
        "div",
        { class: "panel-head" },
        h("h2", { id: "admin-sessions-title", text: "Signed-in staff" }),
        h("button", { type: "button", class: "btn btn-small", text: "Refresh", on: { click: () => this.loadSessions(true) } }),
      ),
      this.sessionsBody,
      this.sessionsEmpty,
      this.sessionsSaid,
    );
  }

  buildAudit() {
    this.auditState = h("p", { id: "admin-audit-state", class: "admin-audit-state", role: "status", text: "Checking the audit trail…" });
    this.auditProblems = h("ul", { class: "plain-list small", hidden: true });
    this.retention = h("p", { id: "admin-retention", class: "small" });
    this.eventsBody = h("tbody", { id: "admin-events-body" });
    this.eventsEmpty = h("p", { class: "empty", text: "No events for this clinic yet.", hidden: true });
    return h(
      "section",
      { class: "panel admin-panel", "aria-labelledby": "admin-audit-title" },
      h(
        "div",
        { class: "panel-head" },
        h("h2", { id: "admin-audit-title", text: "Audit trail" }),
        h("button", { type: "button", class: "btn btn-small", text: "Check again", on: { click: () => this.loadAudit(true) } }),
      ),
      this.auditState,
      this.auditProblems,
      this.retention,
      h("h3", { text: "Latest events" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "admin-table" },
          h("caption", { class: "visually-hidden", text: "The clinic's latest audit events, newest first" }),
          h("thead", {}, h("tr", {}, ["Time", "Event", "By", "Visit", "Result"].map((t) => h("th", { scope: "col", text: t })))),
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
    for (const t of TOGGLES) this.toggles[t.name].checked = Boolean(settings[t.name]);
    for (const { input, spec } of Object.values(this.durations)) {
      input.value = String(Math.round((settings[spec.name] / spec.unit) * 100) / 100);
    }
  }

  async saveToggle(t, input, said) {
    const wanted = input.checked;
    input.disabled = true;
    say(said, "Saving…", "busy");
    try {
      const data = await this.api("PUT", "/settings", { [t.name]: wanted });
      this.showSettings(data.settings);
      say(said, t.said(Boolean(data.settings[t.name])));
    } catch (err) {
      input.checked = !wanted;
      say(said, err.message, "error");
    } finally {
      input.disabled = false;
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
        say(error, "Enter a number.", "error");
        input.setAttribute("aria-invalid", "true");
        bad = bad || input;
        continue;
      }
      changes[spec.name] = Math.round(value * spec.unit);
    }
    if (bad) {
      say(this.timesSaid, "Some times need fixing first.", "error");
      bad.focus();
      return;
    }
    say(this.timesSaid, "Saving…", "busy");
    try {
      const data = await this.api("PUT", "/settings", changes);
      this.showSettings(data.settings);
      const s = data.settings;
      say(
        this.timesSaid,
        `Saved. New links last ${formatSpan(s.link_lifetime)}; check-in opens ${formatSpan(s.check_in_window)} before; ` +
          `no-show after ${formatSpan(s.no_show_after)}.`,
      );
    } catch (err) {
      const field = err.field && this.durations[err.field];
      if (field) {
        say(field.error, err.message, "error");
        field.input.setAttribute("aria-invalid", "true");
        field.input.focus();
      }
      say(this.timesSaid, field ? "Not saved: fix the time marked above." : err.message, "error");
    }
  }

  // -- sessions -----------------------------------------------------------------

  async loadSessions(announce = false) {
    try {
      const data = await this.api("GET", "/sessions");
      this.showSessions(data.sessions);
      if (announce) say(this.sessionsSaid, `List updated at ${formatClock(Date.now() / 1000)}.`);
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
    const windows = s.windows > 1 ? ` · ${s.windows} windows` : "";
    const actions = h("div", { class: "admin-actions" });
    const row = h(
      "li",
      { dataset: { session: s.session } },
      h(
        "div",
        { class: "admin-who" },
        h("strong", { text: s.mine ? `${s.name} (you)` : s.name }),
        h("span", { class: "muted small", text: `${ROLE_NAMES[s.role] || s.role} · signed in at ${formatClock(s.since)} · server ${s.nodes.join(", ")}${windows}` }),
      ),
      actions,
    );
    if (!s.mine) this.offerSignOut(actions, s);
    return row;
  }

  offerSignOut(cell, s) {
    const ask = h("button", {
      type: "button", class: "btn btn-small btn-danger-outline", text: "Sign out",
      "aria-label": `Sign out ${s.name}`,
      on: { click: () => confirm(true) },
    });
    const yes = h("button", { type: "button", class: "btn btn-small btn-danger", text: "Yes, sign out", on: { click: () => this.signOut(s, cell) } });
    const no = h("button", { type: "button", class: "btn btn-small", text: "No", on: { click: () => confirm(false) } });
    const box = h("div", { class: "admin-confirm", hidden: true }, h("span", { text: `Sign out ${s.name} now?` }), yes, no);
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
      say(this.sessionsSaid, `${data.signed_out.name} was signed out. Their screens closed.`);
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
    this.retention.textContent = seconds
      ? `Charts are kept for ${formatSpan(seconds)} after each visit, then removed.`
      : "Charts are kept until someone removes them (no retention period is set).";
  }

  async loadAudit(fresh) {
    say(this.auditState, "Checking the audit trail…", "busy");
    try {
      const data = await this.api("GET", `/audit${fresh ? "?fresh=1" : ""}`);
      const a = data.audit;
      const when = formatClock(a.checked_at);
      if (a.ok) {
        say(this.auditState, `Intact: all ${a.records} records check out (checked at ${when}).`);
      } else {
        const more = a.more_problems ? ` and ${a.more_problems} more` : "";
        say(this.auditState, `Damaged: the trail does not check out (checked at ${when}). Problems found${more}:`, "error");
      }
      this.auditProblems.replaceChildren(...a.problems.map((p) => h("li", { text: p })));
      this.auditProblems.hidden = a.ok;
      this.showRetention(data.retention);
      this.eventsBody.replaceChildren(...a.events.map((e) => this.eventRow(e)));
      this.eventsEmpty.hidden = a.events.length > 0;
    } catch (err) {
      say(this.auditState, err.message, "error");
    }
  }

  eventRow(e) {
    return h(
      "tr",
      {},
      h("td", { text: e.at ? formatClock(e.at) : "" }),
      h("td", { text: ACTIONS[e.action] || e.action }),
      h("td", { text: ROLE_NAMES[e.role] || (e.role === "system" ? "System" : e.role || "") }),
      h("td", {}, e.visit ? h("code", { text: e.visit }) : ""),
      h("td", { text: e.outcome === "refused" ? `Refused: ${REFUSALS[e.code] || "not allowed"}` : "Done" }),
    );
  }
}
