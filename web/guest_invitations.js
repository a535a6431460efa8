// On a doctor's or a nurse's staff page: a colleague invited them into a visit
// as a clinician guest. "Dr Kim invited you to join the visit of Rosa Díaz",
// where they are in it (invited, waiting to be let in, in the visit, left),
// and Join: the guest page in a new tab, signed in with their own staff
// token (guest_session.js), through the same device check and consent as
// every guest. Reads GET /api/guest-invitations; the `guests` and `visit`
// pushes on /queue say when to read again.

import { formatClock, h } from "/static/common.js";
import { callApi } from "/static/invite_api.js";
import { t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";
import { clinicianGuestUrl } from "/static/guest_session.js";

export class GuestInvitations {
  /**
   * @param root the section the invitations are shown in (hidden when there are none)
   * @param token the staff token (the route, and the guest page's sign-in)
   */
  constructor(root, { token }) {
    this.root = root;
    this.token = token;
    /** The open invitations, as the server last said. */
    this.invitations = [];
    this.said = h("p", { id: "guest-invitations-said", class: "form-status small", role: "status", "aria-live": "polite" });
    this.list = h("ul", { id: "guest-invitations-list", class: "plain-list guest-invitations-list" });
    this.root.setAttribute("aria-labelledby", "guest-invitations-title");
    this.root.replaceChildren(h("h2", { id: "guest-invitations-title", text: t("guest_invites.title") }), this.list, this.said);
  }

  async refresh() {
    try {
      const reply = await callApi(this.token, "GET", "/api/guest-invitations");
      this.invitations = reply.invitations;
      this.render();
    } catch (err) {
      this.said.textContent = t("guest_invites.failed", { reason: err.message });
      this.root.hidden = false;
    }
  }

  /** The `guests` push: read again if it may concern this staff member (a clinician guest, or a visit listed). */
  guestsChanged({ visit_id: visitId, guests }) {
    if (guests.some((g) => g.kind === "clinician") || this.invitations.some((i) => i.visit_id === visitId)) this.refresh();
  }

  /** The `visit` push: an ended visit's invitation goes. */
  visitChanged(visit) {
    if (visit.state === "ended" && this.invitations.some((i) => i.visit_id === visit.visit_id)) this.refresh();
  }

  render() {
    this.root.hidden = this.invitations.length === 0 && !this.said.textContent;
    this.list.replaceChildren(...this.invitations.map((i) => this.item(i)));
  }

  item(invitation) {
    const patient = invitation.patient_name ? untranslated(invitation.patient_name) : t("guest_invites.a_patient");
    const by = invitation.invited_by_name ? untranslated(invitation.invited_by_name) : t("guest_invites.a_colleague");
    const join = h("button", {
      type: "button",
      class: "btn btn-primary btn-small",
      text: t(invitation.state === "invited" ? "guest_invites.join" : "guest_invites.open"),
      "aria-describedby": `guest-invitation-${invitation.visit_id}`,
      on: { click: () => this.join(invitation) },
    });
    return h(
      "li",
      { class: "guest-invitation", dataset: { visit: invitation.visit_id, state: invitation.state } },
      h("p", { id: `guest-invitation-${invitation.visit_id}` },
        ...tNodes("guest_invites.from", { name: by, patient }),
        " ",
        h("span", { class: "muted small", text: t(`guest_invites.state.${invitation.state}`, { time: formatClock(invitation.invited_at) }) })),
      h("div", { class: "actions" }, join),
    );
  }

  /** The guest page in a new tab, signed in with this staff token for that visit. */
  join(invitation) {
    window.open(clinicianGuestUrl(this.token, invitation.visit_id), "_blank", "noopener");
    // noopener: nothing comes back from the new tab; say where the visit went.
    this.said.replaceChildren(...tNodes("guest_invites.opened", {
      patient: invitation.patient_name ? untranslated(invitation.patient_name) : t("guest_invites.a_patient"),
    }));
  }
}
