// Words the clinical views (doctor's visit, chart browser, admin console)
// share: a person's language by its own name, a list of elements in the
// page's language, a role's name. Sentences with person data in them are
// built with i18n_nodes.js (the data in translate="no" elements).

import { h } from "/static/common.js";
import { intlLocale, languageName, t } from "/static/i18n.js";

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

/** A role's name ("Patient", "Doctor"…); an unknown role as it is. */
export function roleName(role) {
  return ["patient", "nurse", "doctor", "admin", "system"].includes(role) ? t(`clinic.role.${role}`) : String(role || "");
}
