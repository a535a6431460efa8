// The staff page's waiting room: the live queue (one row per patient, with
// the actions the role may take, who has the patient open and whether they are
// online), the visits in progress, and the clinic's roster (for names and
// routing). Fed by the /queue namespace's `queue` snapshots and `visit` events.

import { $, formatElapsed, h, stateName } from "/static/common.js";
import { formatNumber, t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";
import { acuityBadge, doctorLabel, learnNames, nameList, person, prefersMark } from "/static/staff_labels.js";

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
    $("#queue-count").textContent = n === 0 ? "" : t("queue.count", { count: n });
    restoreFocus(keep);
  }

  renderRow(visit) {
    const id = visit.visit_id;
    const cell = (column, props, ...children) => h("td", { "data-label": t(`queue.col.${column}`), class: `col-${column}`, ...props }, ...children);
    return h(
      "tr",
      { dataset: { visit: id }, class: visit.acuity ? `acuity-${visit.acuity}` : "" },
      cell("position", { class: "col-position pos", text: formatNumber(visit.position) }),
      cell(
        "patient",
        {},
        h(
          "div",
          {},
          patientName(visit, "strong"),
          presenceMark(visit),
          this.claimMark(visit),
          prefersMark(visit.language),
          visit.reason ? person(visit.reason, "span", { class: "reason" }) : null,
          visit.triage_note ? h("span", { class: "note" }, h("span", { class: "note-label", text: t("queue.note_label") }), " ", person(visit.triage_note)) : null,
        ),
      ),
      cell("waiting", { class: "col-waiting waiting", dataset: { since: visit.checked_in_at || "" }, text: formatElapsed(visit.checked_in_at) }),
      cell("acuity", {}, acuityBadge(visit.acuity)),
      cell("state", { text: stateName(visit.state) }),
      cell("doctor", {}, this.routedTo(visit)),
      h("td", { class: "row-actions" }, ...this.rowActions(visit)),
    );
  }

  /** The doctor a waiting patient is routed to: a name, "You", or "Any doctor" once ready. */
  routedTo(visit) {
    if (visit.routed_to && visit.routed_to !== this.me.sub && visit.routed_to_name) return person(visit.routed_to_name);
    return doctorLabel(visit.routed_to, this.me, visit.state === "ready" ? t("queue.any_doctor") : "—");
  }

  rowActions(visit) {
    const id = visit.visit_id;
    const name = visit.patient_name || t("staff.patient");
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
      const chat = button("chat", t("queue.chat.name", { name }), t("queue.chat"), "", () => act.chat(id));
      actions.push(withUnread(chat, this.unreadOf(id), `unread-${id}`));
    }
    if (this.role === "nurse") actions.push(button("triage", t("queue.triage.name", { name }), t("queue.triage"), "", () => act.triage(id)));
    if (this.role === "doctor") actions.push(button("admit", t("queue.admit.name", { name }), t("queue.admit"), " btn-primary", () => act.admit(id)));
    if (this.role === "admin") {
      const onClick = (e) => confirmInline(e.currentTarget, t("queue.cancel.ask"), () => act.cancel(id));
      actions.push(button("cancel", t("staff.cancel_visit_of", { name }), t("queue.cancel"), " btn-danger-outline", onClick));
    }
    return actions;
  }

  /** "with Nurse Ana" when nurses have the patient open (chat or triage). */
  claimMark(visit) {
    const holders = visit.claimed_by || [];
    if (!holders.length) return null;
    const mine = holders.some((c) => c.sub === this.me.sub);
    const others = holders.filter((c) => c.sub !== this.me.sub).map((c) => c.name);
    return h("span", { class: "claim-mark" }, ...tNodes("queue.claim", { names: nameList(others, { you: mine }) }));
  }

  /** Visits in progress that this page knows of (from `visit` events). */
  renderActive() {
    const active = [...this.visits.values()].filter((v) => v.state === "in_visit");
    $("#active").hidden = active.length === 0;
    $("#active-list").replaceChildren(
      ...active.map((v) => {
        const name = v.patient_name || t("staff.patient");
        const mine = v.doctor === this.me.sub;
        const doctor = v.doctor_name ? person(v.doctor_name) : doctorLabel(v.doctor, this.me);
        return h(
          "li",
          {},
          h("span", {}, ...tNodes(mine ? "queue.active.mine" : "queue.active.row", { patient: patientName(v), doctor })),
          " ",
          this.role === "doctor" && mine
            ? h("button", { type: "button", class: "btn btn-small btn-primary", text: t("queue.active.return"), on: { click: () => this.actions.returnTo(v) } })
            : null,
          this.role !== "admin"
            ? h("button", { type: "button", class: "btn btn-small", "aria-label": t("queue.chat.name", { name }), text: t("queue.chat"), on: { click: () => this.actions.chat(v.visit_id) } })
            : null,
        );
      }),
    );
  }

  /** The "Waiting" column counts on between snapshots. */
  refreshWaitingTimes() {
    for (const cell of document.querySelectorAll("td.waiting")) {
      cell.textContent = formatElapsed(Number(cell.dataset.since));
    }
  }
}

/** The patient's name (untranslated), or "Patient" when the visit has none. */
function patientName(visit, tag = "span") {
  return visit.patient_name ? person(visit.patient_name, tag) : h(tag, { text: t("staff.patient") });
}

/**
 * The Chat button with the count of unread messages beside it (WCAG 2.5.3:
 * the button's name, "Chat with Ana Lima", starts with its visible label; the
 * badge is outside the button, and the count is the button's description).
 */
function withUnread(button, unread, id) {
  if (!unread) return button;
  button.setAttribute("aria-describedby", id);
  return h(
    "span",
    { class: "with-badge" },
    button,
    h("span", { class: "badge", "aria-hidden": "true", text: formatNumber(unread) }),
    h("span", { id, hidden: true, text: t("chats.unread", { count: unread }) }),
  );
}

/** "Online" / "Offline" beside a waiting patient's name (from the snapshot). */
function presenceMark(visit) {
  if (typeof visit.online !== "boolean") return null;
  return h("span", { class: `presence-mark ${visit.online ? "is-online" : "is-offline"}`, text: t(visit.online ? "queue.online" : "queue.offline") });
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
  const no = h("button", { type: "button", class: "btn btn-small", text: t("queue.cancel.no"), on: { click: () => { box.replaceWith(button); button.focus(); } } });
  const yes = h("button", { type: "button", class: "btn btn-small btn-danger", text: t("queue.cancel.yes"), on: { click: onYes } });
  box.append(h("span", { text: question }), " ", yes, " ", no);
  button.replaceWith(box);
  yes.focus();
}
