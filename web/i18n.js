// The pages' words. Every string a person reads comes from a catalogue:
// web/locales/<language>/<bundle>.json, flat keys ("device.title") to a
// string with {placeholders}, or to plural forms ({"one": …, "other": …},
// chosen by Intl.PluralRules from the `count` parameter). A page names its
// bundles on <html data-i18n-bundles="common patient">; this module loads
// them before any importer runs (top-level await), so t() is synchronous.
//
// The language: ?lang= in the address (remembered), else the one chosen
// with the switcher (localStorage), else the browser's preferences, else
// English. A key missing in a language falls back to English (a test keeps
// the catalogues complete); a key missing in English is a bug, reported on
// the console and shown as the key.
//
// "x-pseudo" is a made-up language for tests: every English string with its
// letters swapped for accented look-alikes, so a test can find text on a
// page that does not come from a catalogue (it is the only plain ASCII left).

/** The languages of the pages, by their own names (shown untranslated). */
export const LANGUAGES = [
  { tag: "en", name: "English" },
  { tag: "es", name: "Español" },
  { tag: "ko", name: "한국어" },
  { tag: "zh-CN", name: "中文（简体）" },
];

const STORE_KEY = "telemed.language";
const PSEUDO = "x-pseudo";

/** The language tag the pages should use, from the address, the stored choice, or the browser. */
export function chooseLanguage(search = location.search, stored = readStored(), preferred = navigator.languages || []) {
  const fromLink = new URLSearchParams(search).get("lang");
  if (fromLink && (fromLink === PSEUDO || supported(fromLink))) return fromLink === PSEUDO ? PSEUDO : supported(fromLink);
  if (stored && (stored === PSEUDO || supported(stored))) return stored === PSEUDO ? PSEUDO : supported(stored);
  for (const pref of preferred) {
    const match = supported(pref);
    if (match) return match;
  }
  return "en";
}

/** The supported tag for a BCP-47 tag: exact, then by primary language ("zh-TW" reads zh-CN, "es-MX" es). */
export function supported(tag) {
  const lower = String(tag || "").toLowerCase();
  const exact = LANGUAGES.find((l) => l.tag.toLowerCase() === lower);
  if (exact) return exact.tag;
  const primary = lower.split("-")[0];
  const byPrimary = LANGUAGES.find((l) => l.tag.toLowerCase().split("-")[0] === primary);
  return byPrimary ? byPrimary.tag : null;
}

function readStored() {
  try {
    return localStorage.getItem(STORE_KEY);
  } catch {
    return null;
  }
}

/** Remember a language and show the page in it (the pages resume after a reload). */
export function setLanguage(tag) {
  try {
    localStorage.setItem(STORE_KEY, tag);
  } catch {
    // Private windows may refuse storage: the choice then lasts until the reload below only.
  }
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.set("lang", tag);
    location.replace(url);
  } else {
    location.reload();
  }
}

// -- loading ---------------------------------------------------------------------

async function loadBundle(tag, bundle) {
  const response = await fetch(`/static/locales/${tag}/${bundle}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`catalogue ${tag}/${bundle}: HTTP ${response.status}`);
  return response.json();
}

async function loadCatalogue(tag, bundles) {
  const parts = await Promise.all(bundles.map((b) => loadBundle(tag, b)));
  return Object.assign({}, ...parts);
}

const ACCENTS = {
  lower: "åƀçđéƒĝĥîĵķĺɱñöþǫŕšţûṽŵẋýž",
  upper: "ÅƁÇĐÉƑĜĤÎĴĶĹṀÑÖÞǪŔŠŢÛṼŴẊÝŽ",
};

/** An English string in the pseudo language: letters accented, {placeholders} kept. */
export function pseudo(text) {
  return text.replace(/\{[^}]*\}|[A-Za-z]/g, (m) => {
    if (m.length > 1) return m;
    const code = m.charCodeAt(0);
    return code >= 97 ? ACCENTS.lower[code - 97] : ACCENTS.upper[code - 65];
  });
}

function pseudoCatalogue(english) {
  const out = {};
  for (const [key, value] of Object.entries(english)) {
    out[key] =
      typeof value === "string"
        ? pseudo(value)
        : Object.fromEntries(Object.entries(value).map(([form, text]) => [form, pseudo(text)]));
  }
  return out;
}

const root = document.documentElement;
const bundles = (root.dataset.i18nBundles || "common").split(/\s+/).filter(Boolean);

/** The page's language tag ("x-pseudo" in tests). */
export const lang = chooseLanguage();
/**
 * The locale Intl formats with: the browser's own variant of the page's
 * language when it has one (an en-GB reader gets day-first dates on an
 * English page), the page's language otherwise; the pseudo language formats
 * like Chinese (no ASCII words).
 */
export const intlLocale = lang === PSEUDO ? "zh-CN" : regional(lang, navigator.languages || []);

function regional(tag, preferred) {
  const primary = tag.toLowerCase().split("-")[0];
  for (const pref of preferred) {
    const lower = String(pref).toLowerCase();
    if (lower === tag.toLowerCase()) return tag;
    if (lower.split("-")[0] === primary && lower.includes("-") && primary !== "zh") return pref;
  }
  return tag;
}

const english = await loadCatalogue("en", bundles);
let chosen = english;
if (lang === PSEUDO) {
  chosen = pseudoCatalogue(english);
} else if (lang !== "en") {
  try {
    chosen = await loadCatalogue(lang, bundles);
  } catch (err) {
    console.warn(`The ${lang} catalogue did not load; showing English.`, err);
  }
}

const plurals = new Intl.PluralRules(intlLocale);
const numbers = new Intl.NumberFormat(intlLocale);

// -- translating -----------------------------------------------------------------

/** Whether a key exists (in the page's language or in English). */
export function has(key) {
  return key in chosen || key in english;
}

/**
 * The string of `key` with its {placeholders} filled from params. A value
 * with plural forms is chosen by params.count. Numbers are formatted for the
 * language; everything else goes in as text.
 */
export function t(key, params = {}) {
  let value = key in chosen ? chosen[key] : english[key];
  if (value === undefined) {
    console.error(`i18n: no text for "${key}"`);
    return key;
  }
  if (typeof value === "object") {
    const count = Number(params.count);
    value = value[plurals.select(count)] ?? value.other;
  }
  return value.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === "number" ? numbers.format(v) : String(v);
  });
}

/**
 * Fill an element tree from its data-i18n attributes: `data-i18n="key"` sets
 * the text, `data-i18n-<attribute>="key"` an attribute (aria-label,
 * placeholder, title, alt, content...).
 */
export function translatePage(top = document) {
  for (const el of top.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of top.querySelectorAll("*")) {
    for (const attr of el.getAttributeNames()) {
      if (attr.startsWith("data-i18n-") && attr !== "data-i18n-bundles") {
        el.setAttribute(attr.slice("data-i18n-".length), t(el.getAttribute(attr)));
      }
    }
  }
}

// -- formatting ------------------------------------------------------------------

export function formatNumber(n) {
  return numbers.format(n);
}

/** 5 → "5 minutes" / "5분" / "5分钟" (unit: second, minute, hour, day). */
export function formatUnit(value, unit, display = "long") {
  return new Intl.NumberFormat(intlLocale, { style: "unit", unit, unitDisplay: display }).format(value);
}

/** 5, 10 → "5–10 minutes" in the page's language. */
export function formatUnitRange(low, high, unit, display = "long") {
  return new Intl.NumberFormat(intlLocale, { style: "unit", unit, unitDisplay: display }).formatRange(low, high);
}

/** A time of day ("14:05" / "2:05 PM"). */
export function formatTime(date) {
  return new Intl.DateTimeFormat(intlLocale, { hour: "numeric", minute: "2-digit" }).format(date);
}

/** A date and time ("Fri, Nov 27, 2:05 PM"). */
export function formatDateTime(date, options = { weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" }) {
  return new Intl.DateTimeFormat(intlLocale, options).format(date);
}

/** "in 5 minutes", "3 minutes ago" (seconds from now, signed). */
export function formatRelative(seconds) {
  const rtf = new Intl.RelativeTimeFormat(intlLocale, { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(Math.round(seconds), "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  return rtf.format(Math.round(seconds / 86400), "day");
}

/** ["a", "b", "c"] → "a, b and c". */
export function formatList(items, type = "conjunction") {
  return new Intl.ListFormat(intlLocale, { style: "long", type }).format(items);
}

/**
 * A language's name for people: the pages' languages by their own names
 * (a patient's "中文（简体）" is what staff look for), any other tag in the
 * page's language; the tag itself when unknown.
 */
export function languageName(tag) {
  const own = LANGUAGES.find((l) => l.tag === tag);
  if (own) return own.name;
  try {
    return new Intl.DisplayNames([intlLocale], { type: "language" }).of(tag) || tag;
  } catch {
    return tag;
  }
}

/** A language's name in the page's language ("Spanish", "스페인어"). */
export function languageNameHere(tag) {
  try {
    return new Intl.DisplayNames([intlLocale], { type: "language" }).of(tag) || tag;
  } catch {
    return tag;
  }
}

// -- errors ----------------------------------------------------------------------

/**
 * A refusal in the page's language. The server's messages are English and
 * precise; an English page shows them as they are. Other languages say what
 * the error's reason (details.reason) or code means, from the catalogue.
 */
export function errorText(err) {
  const reason = err && err.details && err.details.reason;
  if (reason && has(`error.reason.${reason}`)) return t(`error.reason.${reason}`);
  if (lang === "en" && err && err.serverMessage) return err.serverMessage;
  const code = (err && err.code) || "error";
  return t(has(`error.code.${code}`) ? `error.code.${code}` : "error.code.error");
}

// -- the switcher ----------------------------------------------------------------

/**
 * A language switcher in `el`: a labelled <select> whose options carry each
 * language's own name. Choosing one remembers it and shows the page in it.
 */
export function mountLanguageSwitcher(el) {
  const id = `lang-${Math.random().toString(36).slice(2, 8)}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.className = "lang-label";
  label.textContent = t("language.label");
  const select = document.createElement("select");
  select.id = id;
  select.className = "lang-select";
  select.setAttribute("translate", "no");
  for (const { tag, name } of LANGUAGES) {
    const option = document.createElement("option");
    option.value = tag;
    option.lang = tag;
    option.textContent = name;
    option.selected = tag === lang;
    select.append(option);
  }
  select.addEventListener("change", () => setLanguage(select.value));
  el.replaceChildren(label, select);
  el.classList.add("lang-switch");
}

root.lang = lang === PSEUDO ? "en-XA" : lang;
translatePage(document);
for (const el of document.querySelectorAll("[data-lang-switch]")) mountLanguageSwitcher(el);
root.classList.remove("i18n-pending");
