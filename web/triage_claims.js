// Who is with whom, from a nurse's side: opening a patient's chat or triage
// panel claims the patient (other staff see "with <name>" in the queue);
// closing both releases the claim. A claim is a hint, not a lock: a nurse who
// opens a patient someone else has open is told who.

import { request } from "/static/common.js";

export class TriageClaims {
  /**
   * @param socket the /queue socket
   * @param role the signed-in role (only nurses claim)
   */
  constructor({ socket, role }) {
    this.socket = socket;
    this.enabled = role === "nurse";
    /** Visit id -> the views that have it open here ("chat", "triage"). */
    this.held = new Map();
    // The server releases a nurse's claims when her socket closes: claim again.
    socket.on("connect", () => {
      for (const id of this.held.keys()) request(this.socket, "claim", { visit_id: id }).catch(() => {});
    });
  }

  /**
   * A view opened the patient. Resolves to the names of the other nurses who
   * have them open (empty when none, or when this role does not claim).
   */
  async hold(visitId, view) {
    if (!this.enabled) return [];
    const views = this.held.get(visitId) || new Set();
    const first = views.size === 0;
    views.add(view);
    this.held.set(visitId, views);
    if (!first) return [];
    try {
      const reply = await request(this.socket, "claim", { visit_id: visitId });
      return reply.others.map((o) => o.name);
    } catch {
      return []; // only a hint: the patient is open anyway
    }
  }

  /** A view closed the patient; the claim goes when no view here has them open. */
  drop(visitId, view) {
    const views = this.held.get(visitId);
    if (!views || !views.delete(view) || views.size > 0) return;
    this.held.delete(visitId);
    request(this.socket, "release", { visit_id: visitId }).catch(() => {});
  }
}
