// How the guest page (/guest) is signed in: an interpreter's or a caregiver's
// link (/guest#t=<guest token>, the token bound to the visit and the guest), or
// a clinician guest, a doctor or nurse of the clinic whom a colleague invited:
// their staff page opens /guest#t=<their staff token>&visit=<visit id>
// (guest_invitations.js). A clinician's own staff token is their sign-in; the
// server finds them among the visit's guests by their staff id.

import { readClaims, readToken } from "/static/common.js";

/** The visit a clinician guest opened, kept for a reload of the tab (the address loses its fragment). */
const VISIT_KEY = "telemed.guest.visit";

/** Staff who can be a visit's clinician guest. */
const CLINICIANS = ["doctor", "nurse"];

/**
 * The page's sign-in, or null when the address or the tab holds none that opens a visit.
 * @param tokenKey the sessionStorage key of the guest page's token
 * @returns {{token: string, claims: object, visitId: string, clinician: boolean} | null}
 */
export function guestSession(tokenKey) {
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("visit");
  if (fromLink) sessionStorage.setItem(VISIT_KEY, fromLink);
  const token = readToken(tokenKey);
  const claims = token ? readClaims(token) : null;
  if (!claims) return null;
  if (claims.role === "guest") return claims.visit ? { token, claims, visitId: claims.visit, clinician: false } : null;
  const visitId = sessionStorage.getItem(VISIT_KEY);
  if (!CLINICIANS.includes(claims.role) || !visitId) return null;
  return { token, claims: { ...claims, visit: visitId }, visitId, clinician: true };
}

/** The guest page's address for a clinician guest signed in with their staff token. */
export function clinicianGuestUrl(token, visitId) {
  return `/guest#${new URLSearchParams({ t: token, visit: visitId })}`;
}

/** Forget the visit a clinician guest opened (the page ended). */
export function forgetGuestVisit() {
  sessionStorage.removeItem(VISIT_KEY);
}
