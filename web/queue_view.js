// The staff page's waiting room: the live queue (one row per patient, with
// the actions the role may take, who has the patient open and whether they are
// online), the visits in progress, and the clinic's roster (for names and
// routing). Fed by the /queue namespace's `queue` snapshots and `visit` events.

import { $, formatElapsed, h, stateName } from "/static/common.js";
import { acuityBadge, doctorLabel, learnNames } from "/static/staff_labels.js";
import { joinNames } from "/static/triage_claims.js";

export class QueueView {
  /**
   * @param role "nurse", "doctor" or "admin"
   * @param me the signed-in staff member {sub, role, name}
   * @param unreadOf (visitId) => unread chat messages of that visit
   * @param actions {chat, triage, admit, cancel, returnTo}: what the row buttons do
   */
  constructor({ role, me, unreadOf, actions }) {
    this.role = role;
    this.me = me;
    this.unreadOf = unreadOf;
    this.actions = actions;
    /** Version of the last snapshot applied; older ones are dropped. */
    this.version = -1;
    /** The waiting visits, in the order they will be seen. */
    this.queue = [];
    /** Every visit this page has heard of, by id (the latest news of each). */
    this.visits = new Map();
    /** The clinic's roster ([{sub, name, role, on_duty, busy}]), from the last snapshot. */
    this.staff = [];
  }

  /** A snapshot of the queue; false when it was older than the last one (dropped). */
  applySnapshot(snapshot) {
    if (snapshot.version < this.version) return false;
    this.version = snapshot.version;
    this.queue = snapshot.queue;
    if (snapshot.staff) {
      this.staff = snapshot.staff;
      learnNames(snapshot.staff);
    }
    for (const visit of snapshot.queue) this.remember(visit);
    return true;
  }

  remember(visit) {
    this.visits.set(visit.visit_id, visit);
  }

  render() {
    const keep = focusedAction();
    const rows = this.queue.map((visit) => this.renderRow(visit));
    $("#queue-body").replaceChildren(...rows);
    $("#queue-empty").hidden = rows.length > 0;
    $("#queue").hidden = rows.length === 0;
    const n = this.queue.length;
    $("#queue-count").textContent = n === 0 ? "" : `${n} waiting`;
    restoreFocus(keep);
  }

  renderRow(visit) {
    const id = visit.visit_id;
    return h(
      "tr",
      { dataset: { visit: id }, class: visit.acuity ? `acuity-${visit.acuity}` : "" },
      h("td", { "data-label": "#", class: "pos", text: String(visit.position) }),
      h(
        "td",
        { "data-label": "Patient" },
        h(
          "div",
          {},
          h("strong", { text: visit.patient_name || "Patient" }),
          presenceMark(visit),
          this.claimMark(visit),
          visit.reason ? h("span", { class: "reason", text: visit.reason }) : null,
          visit.triage_note ? h("span", { class: "note" }, h("span", { class: "note-label", text: "Triage: " }), visit.triage_note) : null,
        ),
      ),
      h("td", { "data-label": "Waiting", class: "waiting", dataset: { since: visit.checked_in_at || "" }, text: formatElapsed(visit.checked_in_at) }),
      h("td", { "data-label": "Acuity" }, acuityBadge(visit.acuity)),
      h("td", { "data-label": "State", text: stateName(visit.state) }),
      h("td", { "data-label": "Doctor", text: visit.routed_to && visit.routed_to !== this.me.sub && visit.routed_to_name ? visit.routed_to_name : doctorLabel(visit.routed_to, this.me, visit.state === "ready" ? "Any doctor" : "—") }),
      h("td", { class: "row-actions" }, ...this.rowActions(visit)),
    );
  }

  rowActions(visit) {
    const id = visit.visit_id;
    const name = visit.patient_name || "patient";
    const act = this.actions;
    const button = (action, label, text, extra, onClick) =>
      h("button", {
        type: "button",
        class: `btn btn-small${extra}`,
        dataset: { action, visit: id },
        "aria-label": label,
        text,
        on: { click: onClick },
      });
    const actions = [];
    if (this.role !== "admin") {
      const unread = this.unreadOf(id);
      const chat = button("chat", `Chat with ${name}${unread ? `, ${unread} unread` : ""}`, "Chat", "", () => act.chat(id));
      if (unread) chat.append(h("span", { class: "badge", "aria-hidden": "true", text: String(unread) }));
      actions.push(chat);
    }
    if (this.role === "nurse") actions.push(button("triage", `Triage ${name}`, "Triage", "", () => act.triage(id)));
    if (this.role === "doctor") actions.push(button("admit", `Admit ${name}`, "Admit", " btn-primary", () => act.admit(id)));
    if (this.role === "admin") {
      const onClick = (e) => confirmInline(e.currentTarget, "Cancel?", () => act.cancel(id));
      actions.push(button("cancel", `Cancel the visit of ${name}`, "Cancel", " btn-danger-outline", onClick));
    }
    return actions;
  }

  /** "with Nurse Ana" when nurses have the patient open (chat or triage). */
  claimMark(visit) {
    const holders = visit.claimed_by || [];
    if (!holders.length) return null;
    const names = holders.map((c) => (c.sub === this.me.sub ? "you" : c.name));
    return h("span", { class: "claim-mark", text: `with ${joinNames(names)}` });
  }

  /** Visits in progress that this page knows of (from `visit` events). */
  renderActive() {
    const active = [...this.visits.values()].filter((v) => v.state === "in_visit");
    $("#active").hidden = active.length === 0;
    $("#active-list").replaceChildren(
      ...active.map((v) =>
        h(
          "li",
          {},
          h("span", { text: `${v.patient_name || "Patient"} with ${v.doctor !== this.me.sub && v.doctor_name ? v.doctor_name : doctorLabel(v.doctor, this.me)}` }),
          " ",
          this.role === "doctor" && v.doctor === this.me.sub
            ? h("button", { type: "button", class: "btn btn-small btn-primary", text: "Return to visit", on: { click: () => this.actions.returnTo(v) } })
            : null,
          this.role !== "admin"
            ? h("button", { type: "button", class: "btn btn-small", text: "Chat", on: { click: () => this.actions.chat(v.visit_id) } })
            : null,
        ),
      ),
    );
  }

  /** The "Waiting" column counts on between snapshots. */
  refreshWaitingTimes() {
    for (const cell of document.querySelectorAll("td.waiting")) {
      cell.textContent = formatElapsed(Number(cell.dataset.since));
    }
  }
}

/** "Online" / "Offline" beside a waiting patient's name (from the snapshot). */
function presenceMark(visit) {
  if (typeof visit.online !== "boolean") return null;
  return h("span", { class: `presence-mark ${visit.online ? "is-online" : "is-offline"}`, text: visit.online ? "Online" : "Offline" });
}

/** Which row button had focus, so a re-render does not throw the keyboard user out. */
function focusedAction() {
  const el = document.activeElement;
  return el && el.dataset && el.dataset.action ? { action: el.dataset.action, visit: el.dataset.visit } : null;
}

function restoreFocus(keep) {
  if (!keep) return;
  const el = document.querySelector(`[data-action="${keep.action}"][data-visit="${CSS.escape(keep.visit)}"]`);
  if (el) el.focus();
}

/** Replace a button by a small yes/no pair (no confirm()). */
function confirmInline(button, question, onYes) {
  const box = h("span", { class: "inline-confirm" });
  const no = h("button", { type: "button", class: "btn btn-small", text: "No", on: { click: () => { box.replaceWith(button); button.focus(); } } });
  const yes = h("button", { type: "button", class: "btn btn-small btn-danger", text: "Yes", on: { click: onYes } });
  box.append(h("span", { text: question }), " ", yes, " ", no);
  button.replaceWith(box);
  yes.focus();
}
