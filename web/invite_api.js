// The invitation routes as the staff page uses them (POST /api/visits, the
// expected list, cancel, a fresh link): JSON with the staff token, errors as
// plain sentences, and the field they are about when the server names one.

import { callRoute } from "/static/common.js";
import { intlLocale, lang, t } from "/static/i18n.js";

/** An error a person can act on; `field` names the form field it is about, if any. */
export class InviteError extends Error {
  constructor(message, field = null) {
    super(message);
    this.field = field;
  }
}

/** Fields the server names in a refusal, whose problem the page can say in every language. */
const FIELDS = ["scheduled_at", "ttl_minutes"];

function plainError(status, body) {
  const error = (body && body.error) || {};
  const field = (error.details && error.details.field) || null;
  // The server's own sentences (what it checked about times and lifetimes) are
  // English and precise: an English page shows them; other languages say the
  // same kind of problem from the catalogue.
  const server = lang === "en" && error.message ? error.message : "";
  if (status === 401) return new InviteError(t("invite.error.signed_out"));
  if (status === 403) return new InviteError(t("invite.error.forbidden"));
  if (status === 404) return new InviteError(t("invite.error.not_expected"));
  if (status === 409) return new InviteError(server || t("invite.error.conflict"));
  if (status === 429) return new InviteError(t("invite.error.rate_limited"));
  if (status === 400 && FIELDS.includes(field)) return new InviteError(server || t(`invite.error.field.${field}`), field);
  if (status === 400) return new InviteError(t("invite.error.invalid"));
  return new InviteError(t("invite.error.server"));
}

/** Call an invitation route; resolves with the JSON reply, rejects with an InviteError. */
export async function callApi(token, method, url, body = undefined) {
  let reply;
  try {
    reply = await callRoute(token, method, url, body);
  } catch (err) {
    throw new InviteError(err.message);
  }
  if (!reply.ok) throw plainError(reply.status, reply.data);
  return reply.data;
}

/**
 * The browser's own variant of the page's language, for dates and times: a
 * nurse whose browser says en-GB reads 14:30, en-US 2:30 PM, es-MX Mexican
 * dates (the page's language alone would give every English reader US dates).
 */
function dateLocale() {
  const primary = intlLocale.split("-")[0].toLowerCase();
  return (navigator.languages || []).find((l) => l.split("-")[0].toLowerCase() === primary) || intlLocale;
}

/** "Fri 27 Nov, 14:30" (as the page's language and the browser's region write it), in this browser's time zone (the clinic's). */
export function formatAppointment(seconds) {
  return new Intl.DateTimeFormat(dateLocale(), { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(
    new Date(seconds * 1000),
  );
}

/** Copy text to the clipboard; true when it worked. */
export async function copyText(text, input = null) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (an insecure page) or no permission: copy from the selected field.
    if (!input) return false;
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}
