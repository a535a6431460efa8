// The clinic's standing walk-in link (/clinic/<clinic>): name and reason,
// then on to the patient page with a fresh visit link. The patient page
// follows the language chosen here (the switcher remembers it; a ?lang= in
// this page's address goes on to the patient's link too).

import { errorText, t } from "/static/i18n.js";
import { tNodes, untranslated } from "/static/i18n_nodes.js";

const form = document.getElementById("walk-in-form");
const button = document.getElementById("submit");

/** The clinic id from the address: /clinic/<clinic>. */
function clinicFromPath() {
  const part = location.pathname.split("/").filter(Boolean)[1] || "";
  try {
    return decodeURIComponent(part);
  } catch {
    return "";
  }
}

function showError(title, text) {
  document.getElementById("walk-in-error-title").textContent = title;
  document.getElementById("walk-in-error-text").textContent = text;
  const box = document.getElementById("walk-in-error");
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
}

/** What to tell the person for each answer of the server: [title, text]. */
function explain(status, error) {
  // The server's own words (English) where this page is English; its reason in words otherwise.
  const said = error && typeof error === "object" ? errorText({ code: error.code, details: error.details, serverMessage: error.message }) : "";
  if (status === 404) return [t("walk_in.no_link.title"), t("walk_in.no_link.text")];
  if (status === 429) return [t("walk_in.rate_limited.title"), t("walk_in.rate_limited.text")];
  if (status === 400) return [t("walk_in.bad_form.title"), said || t("walk_in.bad_form.text")];
  if (status === 503) return [t("walk_in.unavailable.title"), t("walk_in.unavailable.text")];
  return [t("walk_in.failed.title"), said || t("walk_in.failed.status", { status })];
}

/** The patient's link, with this page's ?lang= when it has one. */
function withLanguage(link) {
  const chosen = new URLSearchParams(location.search).get("lang");
  if (!chosen) return link;
  const url = new URL(link, location.href);
  url.searchParams.set("lang", chosen);
  return url.toString();
}

async function walkIn(event) {
  event.preventDefault();
  document.getElementById("walk-in-error").hidden = true;
  const clinic = clinicFromPath();
  const name = document.getElementById("name").value.trim();
  const reason = document.getElementById("reason").value.trim();
  if (!name) {
    showError(t("walk_in.no_name.title"), t("walk_in.no_name.text"));
    document.getElementById("name").focus();
    return;
  }
  button.disabled = true;
  button.textContent = t("checkin.busy");
  try {
    const response = await fetch(`/api/clinics/${encodeURIComponent(clinic)}/walk-in`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, reason }),
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 201 && body.patient_link) {
      location.assign(withLanguage(body.patient_link));
      return;
    }
    const [title, text] = explain(response.status, body.error);
    showError(title, text);
  } catch {
    showError(t("walk_in.offline.title"), t("walk_in.offline.text"));
  } finally {
    button.disabled = false;
    button.textContent = t("walk_in.submit");
  }
}

form.addEventListener("submit", walkIn);
if (clinicFromPath()) {
  document.getElementById("title").replaceChildren(...tNodes("walk_in.at", { clinic: untranslated(clinicFromPath()) }));
} else {
  const [title, text] = explain(404);
  showError(title, text);
}
