// How the staff page names things it shows in several views: a visit's
// acuity (ESI badge), why it ended, the patient's language, and staff (by
// name, from the clinic's roster). Person data (names, notes) goes in
// translate="no" elements, inside sentences built with i18n_nodes.js.

import { languageLabel as ownName, listNodes } from "/static/clinic_text.js";
import { esiName, h } from "/static/common.js";
import { languageNameHere, lang, t } from "/static/i18n.js";
import { tNodes } from "/static/i18n_nodes.js";

/** Person data (a name, a reason, a note) as an element translators leave alone. */
export function person(text, tag = "span", props = {}) {
  return h(tag, { translate: "no", ...props, text });
}

/**
 * Names as one list ("Ana, Bo and Cy" in the page's language), each name
 * untranslated; with `you`, the signed-in person first, as "you".
 */
export function nameList(names, { you = false } = {}) {
  const items = names.map((name) => person(name));
  if (you) items.unshift(t("staff.you_in_list"));
  return h("span", {}, ...listNodes(items));
}

/** A notice whose text holds person data: shown by `notices` (common.js Notices), its words as nodes. */
export function showNotice(notices, parts, options) {
  const item = notices.show("", options);
  item.querySelector("p").replaceChildren(...parts);
  return item;
}

export function acuityBadge(acuity) {
  if (!acuity) return h("span", { class: "esi esi-none", text: t("staff.acuity.none") });
  return h(
    "span",
    { class: `esi esi-${acuity}`, title: esiName(acuity) },
    h("span", { translate: "no", text: `ESI ${acuity}` }),
    h("span", { class: "esi-name", text: ` ${esiName(acuity)}` }),
  );
}

const END_REASONS = ["completed", "cancelled", "left", "absent", "no_show"];

/** Why a visit ended, in words (a visit's end_reason). */
export function endReasonText(reason, none = "—") {
  if (!reason) return none;
  return END_REASONS.includes(reason) ? t(`staff.end.${reason}`) : t("state.ended");
}

/**
 * Whether staff are shown the patient's language: whenever it is known and
 * not English (the clinics' working language), so a nurse sees at a glance
 * whom to book an interpreter for, whatever language her own page is in.
 */
export function showsLanguage(tag) {
  return Boolean(tag) && String(tag).toLowerCase().split("-")[0] !== "en";
}

/**
 * The name of a patient's language: its own name ("中文（简体）") in an
 * element with that language and translate="no", followed by the language's
 * name in the page's language ("Chinese") when the page is in another one.
 */
export function languageLabel(tag) {
  const own = ownName(tag);
  const primary = tag.toLowerCase().split("-")[0];
  if (primary === lang.toLowerCase().split("-")[0]) return own;
  // The language alone ("Chinese", not "Chinese (China)"): the own name says the rest.
  const here = languageNameHere(primary);
  if (!here || here === primary || here === own.textContent) return own;
  return h("span", {}, ...tNodes("staff.language.both", { language: own, here }));
}

/** "prefers 中文（简体）" for the queue's row; null when nothing needs saying (see showsLanguage). */
export function prefersMark(tag) {
  if (!showsLanguage(tag)) return null;
  return h("span", { class: "lang-mark" }, ...tNodes("queue.prefers", { language: languageLabel(tag) }));
}

/** Staff names by staff id, from the roster the queue snapshots carry. */
const names = new Map();

/** Learn the names of the clinic's roster ([{sub, name}]). */
export function learnNames(staff) {
  for (const member of staff || []) names.set(member.sub, member.name);
}

/** A staff member's name; never their id. `fallback` when the roster does not know them. */
export function staffName(sub, fallback = t("staff.colleague")) {
  return names.get(sub) || fallback;
}

/** Whether the roster knows this staff member's name. */
export function knowsName(sub) {
  return names.has(sub);
}

/**
 * "You", or the doctor's name from the roster (as an untranslated element);
 * `none` when there is no doctor.
 * @param me the signed-in staff member ({sub}), or null
 */
export function doctorLabel(sub, me, none = "—") {
  if (!sub) return none;
  if (me && sub === me.sub) return t("staff.you");
  return names.has(sub) ? person(names.get(sub)) : t("staff.unknown_doctor");
}

/** How a doctor shows in the routing picker: "Dr. Lee — on duty, free". */
export function doctorChoice(member) {
  const state = !member.on_duty ? "off_duty" : member.busy ? "busy" : "free";
  return t(`route.doctor.${state}`, { name: member.name });
}
