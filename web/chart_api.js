// The chart routes as the chart browser uses them: JSON with the staff token,
// and links (with a ticket) for what a <video> plays or a download saves,
// since neither can send the token (GET /api/visits/{visit}/links/{name}).

import { callRoute } from "/static/common.js";
import { errorText, formatDateTime as formatDate, t } from "/static/i18n.js";

/** What went wrong, in words a person can act on (never a status code alone), in the page's language. */
function plainError(status, body) {
  const error = (body && body.error) || {};
  const said = { code: error.code, serverMessage: error.message, details: error.details };
  if (status === 401) return t("charts.error.unauthorized");
  if (status === 403) return t("charts.error.forbidden");
  if (status === 404) return error.message ? errorText({ ...said, code: "not_found" }) : t("charts.error.not_found");
  if (status === 429) return t("charts.error.rate_limited");
  if (status === 400 && error.message) return errorText({ ...said, code: "bad_request" });
  return t("charts.error.unavailable");
}

/** GET a chart route as JSON (or text with {text: true}); throws an Error with a plain message. */
export async function getChart(token, url, { text = false } = {}) {
  const reply = await callRoute(token, "GET", url, undefined, { text });
  if (!reply.ok) throw new Error(plainError(reply.status, reply.data));
  return reply.data;
}

/** A URL (with a ticket) for one file of a chart, or "chart.zip" for the whole chart. */
export async function fileLink(token, visitId, name) {
  const reply = await getChart(token, `/api/visits/${encodeURIComponent(visitId)}/links/${name}`);
  return reply.url;
}

/** Lines of a JSON Lines text (a damaged line is skipped, as the server does). */
export function jsonLines(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // torn by a crash: skipped
    }
  }
  return out;
}

/** "Nov 27, 2026, 2:05 PM" (with {seconds: true} "2:05:09 PM"), in the page's language: a date and time of an epoch-seconds value. */
export function formatDateTime(seconds, { seconds: withSeconds = false } = {}) {
  if (!seconds) return "—";
  const parts = { day: "numeric", month: "short", year: "numeric", hour: "numeric", minute: "2-digit" };
  return formatDate(new Date(seconds * 1000), withSeconds ? { ...parts, second: "2-digit" } : parts);
}

/** "03:07" (or "1:03:07"): a position in a recording. */
export function formatOffset(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

