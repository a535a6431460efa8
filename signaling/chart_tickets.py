"""Links to one chart file for a ``<video>`` or a download: a ticket in the URL.

A ``<video src>`` or an ``<a download>`` cannot send ``Authorization``, and a
recording is played with Range requests, not fetched whole. A member of staff
who may read a chart asks for a link to one of its files
(``GET /api/visits/{visit}/links/{name}``); the link carries a ticket: the
caller's role, sub, clinic and token id, the visit and the file, and an
expiry, signed with an HMAC key derived from the node's secret. The ticket
opens that one file of that one visit and nothing else; it expires with the
token it was made from and dies with it (revoking the token refuses its
tickets: the token id is checked on every use), and every use is audited as
the API's reads are. The staff token itself never goes into a URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from telemed.exceptions import Unauthorized
from telemed.settings import Secret
from telemed.tokens import Claims, Role

#: The ticket of a whole-chart download (not a file name: names have no colon).
ZIP = ":zip"

#: Longest a ticket lives (and never longer than the token it was made from).
LIFETIME = 4 * 3600.0


def _key(secret: Secret) -> bytes:
    # Derived, so a ticket is never also a valid token signature (or the reverse).
    return hmac.new(secret.reveal().encode(), b"telemed chart file ticket v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Ticket:
    claims: Claims
    visit: str
    target: str
    """A chart file name, or :data:`ZIP`."""


def issue(secret: Secret, claims: Claims, visit: str, target: str, now: float | None = None) -> str:
    """A ticket for ``target`` of ``visit`` in the name of ``claims``."""
    now = time.time() if now is None else now
    body = {"r": claims.role.value, "s": claims.sub, "c": claims.clinic, "j": claims.jti,
            "v": visit, "t": target, "e": round(min(claims.exp, now + LIFETIME), 3)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def check(secret: Secret, ticket: str, visit: str, target: str, now: float | None = None) -> Ticket:
    """The ticket's holder, if it is genuine, unexpired and for this file of this
    visit; else :class:`Unauthorized` (revocation is the caller's check)."""
    refused = Unauthorized("this link is not valid (it may have expired): open the chart again")
    payload, _, signature = ticket.partition(".")
    if len(ticket) > 2048 or not payload or not signature:
        raise refused
    expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise refused
    try:
        body = json.loads(_unb64(payload))
        claims = Claims(sub=str(body["s"]), name="", role=Role(body["r"]), clinic=str(body["c"]),
                        exp=float(body["e"]), jti=str(body["j"]))
        scope = (str(body["v"]), str(body["t"]))
    except (ValueError, KeyError, TypeError):
        raise refused from None
    if scope != (visit, target) or claims.expired(time.time() if now is None else now):
        raise refused
    return Ticket(claims, visit, target)
