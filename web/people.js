// Who is in a visit, in words: "Marta Ruiz — Interpreter — Spanish · waiting to
// join". Shared by the patient's page, the guest's page and the doctor's
// visit panel. Names are person data (translate="no").

import { h } from "/static/common.js";
import { languageNameHere, t } from "/static/i18n.js";
import { untranslated } from "/static/i18n_nodes.js";

/** Why someone is in the visit: "Interpreter — Spanish", "Caregiver or family", "Doctor". */
export function roleText(person) {
  if (person.type === "guest") {
    if (person.kind === "interpreter" && person.language) {
      return t("people.interpreter_language", { language: languageNameHere(person.language) });
    }
    return t(`people.kind.${person.kind}`);
  }
  return t(`people.kind.${person.type}`);
}

/** Where they are: "waiting to join", "in the visit", "left"… */
export function stateText(state) {
  return t(`people.state.${state}`);
}

/** One person as a list item: their name, why they are here, where they are. */
export function personItem(person, ...extra) {
  return h(
    "li",
    { class: "person", dataset: { type: person.type, kind: person.kind || "", state: person.state || "" } },
    h("span", { class: "person-name" }, person.name ? untranslated(person.name) : roleText(person)),
    " — ",
    h("span", { class: "person-role", text: roleText(person) }),
    person.state ? " · " : null,
    person.state ? h("span", { class: "person-state", text: stateText(person.state) }) : null,
    ...extra,
  );
}

/** The people of a visit as a list (the `participants` push or reply). */
export function peopleList(participants, { id, label }) {
  return h("ul", { id, class: "people", "aria-label": label }, ...participants.map((p) => personItem(p)));
}
