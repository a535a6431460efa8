// A catalogue sentence with a person's data inside it ("{name} is ready"):
// the sentence comes from the catalogue, in its language's word order, and the
// name goes in as an element marked translate="no" (browser translators leave
// it alone; the pseudo-locale test knows it is not the page's text).

import { t } from "/static/i18n.js";

/** Text that is a person's data (a name, a clinic), not the page's words. */
export function untranslated(text, tag = "span") {
  const el = document.createElement(tag);
  el.setAttribute("translate", "no");
  el.textContent = text;
  return el;
}

/**
 * The string of `key` as a list of nodes and strings for Element.append():
 * a {placeholder} whose value is a Node goes in as that node; other values
 * as text (as t() puts them).
 */
export function tNodes(key, params = {}) {
  const plain = Object.fromEntries(Object.entries(params).filter(([, v]) => !(v instanceof Node)));
  const text = t(key, plain);
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/\{(\w+)\}/g)) {
    if (!(params[m[1]] instanceof Node)) continue;
    out.push(text.slice(last, m.index), params[m[1]]);
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out.filter((part) => part !== "");
}
