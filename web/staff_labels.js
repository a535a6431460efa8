// How the staff page names things it shows in several views: a visit's
// acuity (ESI badge) and staff (by name, from the clinic's roster).

import { esiName, h } from "/static/common.js";

export function acuityBadge(acuity) {
  if (!acuity) return h("span", { class: "esi esi-none", text: "Not set" });
  return h("span", { class: `esi esi-${acuity}`, title: esiName(acuity) }, `ESI ${acuity}`, h("span", { class: "esi-name", text: ` ${esiName(acuity)}` }));
}

/** Why a visit ended, in words (a visit's end_reason). */
export const END_REASONS = {
  completed: "Completed",
  cancelled: "Cancelled by the clinic",
  left: "The patient left the waiting room",
  absent: "The patient’s connection was lost",
  no_show: "No-show: the patient did not check in",
};

export function endReasonText(reason, none = "—") {
  return reason ? END_REASONS[reason] || "Ended" : none;
}

/** Staff names by staff id, from the roster the queue snapshots carry. */
const names = new Map();

/** Learn the names of the clinic's roster ([{sub, name}]). */
export function learnNames(staff) {
  for (const member of staff || []) names.set(member.sub, member.name);
}

/** A staff member's name; never their id. */
export function staffName(sub, fallback = "A colleague") {
  return names.get(sub) || fallback;
}

/**
 * "You", or the doctor's name from the roster; `none` when there is no doctor.
 * @param me the signed-in staff member ({sub}), or null
 */
export function doctorLabel(sub, me, none = "—") {
  if (!sub) return none;
  if (me && sub === me.sub) return "You";
  return staffName(sub, "A doctor not on the roster");
}

/** How a doctor shows in the routing picker: "Dr. Lee — on duty, free". */
export function doctorChoice(member) {
  const state = !member.on_duty ? "off duty" : member.busy ? "on duty, in a visit" : "on duty, free";
  return `${member.name} — ${state}`;
}
