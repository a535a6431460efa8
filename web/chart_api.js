// The chart routes as the chart browser uses them: JSON with the staff token,
// and links (with a ticket) for what a <video> plays or a download saves,
// since neither can send the token (GET /api/visits/{visit}/links/{name}).

import { callRoute } from "/static/common.js";

/** What went wrong, in words a person can act on (never a status code alone). */
function plainError(status, body) {
  const message = body && body.error && body.error.message;
  if (status === 401) return "Your sign-in is no longer accepted. Sign in again to read charts.";
  if (status === 403) return "Charts are for the clinic's staff.";
  if (status === 404) return message ? `Not found: ${message}.` : "This chart was not found.";
  if (status === 429) return "Too many attempts from this network; wait a minute and try again.";
  if (status === 400 && message) return `That did not work: ${message}.`;
  return "The server could not answer just now; try again in a moment.";
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

/** "27 Nov 2026, 14:05" (with {seconds: true} "14:05:09"): a date and time of an epoch-seconds value. */
export function formatDateTime(seconds, { seconds: withSeconds = false } = {}) {
  if (!seconds) return "—";
  const parts = { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" };
  return new Date(seconds * 1000).toLocaleString([], withSeconds ? { ...parts, second: "2-digit" } : parts);
}

/** "03:07" (or "1:03:07"): a position in a recording. */
export function formatOffset(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

export const ROLE_NAMES = { patient: "Patient", nurse: "Nurse", doctor: "Doctor", admin: "Admin" };
