// The invitation routes as the staff page uses them (POST /api/visits, the
// expected list, cancel, a fresh link): JSON with the staff token, errors as
// plain sentences, and the field they are about when the server names one.

import { callRoute } from "/static/common.js";

/** An error a person can act on; `field` names the form field it is about, if any. */
export class InviteError extends Error {
  constructor(message, field = null) {
    super(message);
    this.field = field;
  }
}

function plainError(status, body) {
  const error = (body && body.error) || {};
  const field = (error.details && error.details.field) || null;
  if (status === 401) return new InviteError("Your sign-in is no longer accepted. Sign in again.");
  if (status === 403) return new InviteError("Only the clinic's staff can do this.");
  if (status === 404) return new InviteError("This visit is no longer expected.");
  if (status === 409 && error.message) return new InviteError(error.message);
  if (status === 429) return new InviteError("Too many attempts from this network; wait a minute and try again.");
  // The server's own sentences for what it checks (times, lifetimes); anything else generic.
  if (status === 400 && field && error.message) return new InviteError(error.message, field);
  if (status === 400) return new InviteError("Some of what was entered could not be used; check the form.");
  return new InviteError("The server could not answer just now; try again in a moment.");
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

/** "Fri 27 Nov, 14:30" in this browser's time zone (the clinic's). */
export function formatAppointment(seconds) {
  return new Date(seconds * 1000).toLocaleString([], {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
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
