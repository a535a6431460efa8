// How the staff page names things it shows in several views: a visit's
// acuity (ESI badge) and a doctor (by staff id).

import { ESI_LEVELS, h } from "/static/common.js";

export function acuityBadge(acuity) {
  if (!acuity) return h("span", { class: "esi esi-none", text: "Not set" });
  return h("span", { class: `esi esi-${acuity}`, title: ESI_LEVELS[acuity] }, `ESI ${acuity}`, h("span", { class: "esi-name", text: ` ${ESI_LEVELS[acuity]}` }));
}

/**
 * "You", or "Dr. <first 8 of the staff id>"; `none` when there is no doctor.
 * @param me the signed-in staff member ({sub}), or null
 */
export function doctorLabel(sub, me, none = "—") {
  if (!sub) return none;
  if (me && sub === me.sub) return "You";
  return `Dr. ${sub.slice(0, 8)}`;
}
