// Words the clinical views (doctor's visit, chart browser, admin console)
// share: a person's language by its own name, a list of elements in the
// page's language, a role's name, a participant's part in a visit
// ("Interpreter — Spanish", "Caregiver or family", "Clinician"). Sentences with person data in them are
// built with i18n_nodes.js (the data in translate="no" elements).

import { h } from "/static/common.js";
import { intlLocale, languageName, t } from "/static/i18n.js";
import { roleText } from "/static/people.js";

/** A person's language by its own name ("中文（简体）"), marked as that language and not to be translated. */
export function languageLabel(tag) {
  return h("span", { class: "language-name", lang: tag, translate: "no", text: languageName(tag) });
}

/** Nodes (or strings) as one list in the page's language: "a, b and c" / "a、b和c". */
export function listNodes(items) {
  if (items.length < 2) return items;
  const parts = new Intl.ListFormat(intlLocale, { style: "long", type: "conjunction" }).formatToParts(items.map((_, i) => `${i}`));
  return parts.map((p) => (p.type === "element" ? items[Number(p.value)] : p.value));
}

/** A sentence whose first word came from a placeholder, started with a capital where the language has them. */
export function capitalise(text) {
  return text.charAt(0).toLocaleUpperCase(intlLocale) + text.slice(1);
}

/** Guests' kinds, named as the visit's people are (people.kind.<kind>). */
const GUEST_KINDS = ["interpreter", "caregiver", "clinician"];

/** A role's name ("Patient", "Doctor", "Interpreter"…); an unknown role as it is. */
export function roleName(role) {
  if (["patient", "nurse", "doctor", "admin", "system", "guest"].includes(role)) return t(`clinic.role.${role}`);
  return GUEST_KINDS.includes(role) ? t(`people.kind.${role}`) : String(role || "");
}

/**
 * What a visit's participant (visit.json's participants) was there as: a
 * guest by their kind in words ("Interpreter — Spanish", "Clinician"), anyone
 * else by their role.
 */
export function participantRole(p) {
  return p.type === "guest" && GUEST_KINDS.includes(p.kind) ? roleText({ type: "guest", kind: p.kind, language: p.language }) : roleName(p.role);
}
