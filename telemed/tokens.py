"""Access tokens: JWTs (PyJWT), minted HS256 with the server secret.

A token carries ``sub``, ``name``, ``role``, ``clinic``, ``visit`` (patients
and guests only), ``guest`` (guests only: their id in the visit's guest list,
:mod:`telemed.guests`), ``exp`` and ``jti``, the way LiveKit and Jitsi issue them, so a clinic's
own system can mint them with any JWT library: HS256 with the shared secret,
or RS256/ES256 with a key of the clinic's published key set
(:class:`Verifier`, ``TELEMED_JWKS``).
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

from telemed.exceptions import BadRequest, Unauthorized
from telemed.settings import Secret

if TYPE_CHECKING:
    from telemed.jwks import KeySet

#: The algorithm of the shared secret, and of every token minted here. A token
#: naming another is checked only against a key set whose key (by ``kid``)
#: verifies exactly that algorithm; ``none`` never.
ALGORITHM = "HS256"

#: Claims every token must carry.
REQUIRED = ["sub", "role", "clinic", "exp", "jti"]

#: Longest token looked at.
MAX_TOKEN = 4096

#: Clinic and visit ids, subjects: short, URL-, key- and path-safe (no leading
#: dot, so never ``.`` or ``..`` as a folder name in the chart).
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class Role(enum.StrEnum):
    PATIENT = "patient"
    NURSE = "nurse"
    DOCTOR = "doctor"
    ADMIN = "admin"
    GUEST = "guest"
    """Someone the doctor invited into one visit (an interpreter, a caregiver):
    their token names the visit and their guest id (:mod:`telemed.guests`)."""

    @property
    def is_staff(self) -> bool:
        return self in STAFF_ROLES

    @property
    def visit_bound(self) -> bool:
        """Tokens of this role carry a visit, and act on that visit only."""
        return self in (Role.PATIENT, Role.GUEST)


#: The clinic's own people.
STAFF_ROLES = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})

#: Every role but guests: what "any role" meant before guests, and still means
#: where a guest has nothing to do (the queue, the charts, the call signaling of
#: two). Guests are admitted only where a namespace or route names them.
NOT_GUESTS = frozenset(Role) - {Role.GUEST}


@dataclass(frozen=True)
class Claims:
    """The verified content of a token."""

    sub: str
    name: str
    role: Role
    clinic: str
    exp: float
    jti: str
    visit: str | None = None
    guest: str | None = None
    """A guest token's guest id (:mod:`telemed.guests`); None for every other role."""

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.exp


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise BadRequest(f"{what} must be 1-64 letters, digits, '_', '.' or '-', not starting with '.'")
    return value


def new_id() -> str:
    return uuid.uuid4().hex


def mint(
    secret: Secret,
    *,
    role: Role,
    name: str,
    clinic: str,
    ttl: float,
    sub: str | None = None,
    visit: str | None = None,
    guest: str | None = None,
) -> tuple[str, Claims]:
    """Sign a token; returns it with its claims. Patient and guest tokens need
    a ``visit``; guest tokens a ``guest`` id too; no other token carries either."""
    check_id(clinic, "clinic")
    if role.visit_bound:
        if visit is None:
            raise BadRequest(f"a {role.value} token needs a visit")
        check_id(visit, "visit")
    elif visit is not None:
        raise BadRequest("only patient and guest tokens carry a visit")
    if role is Role.GUEST:
        if guest is None:
            raise BadRequest("a guest token needs a guest id")
        check_id(guest, "guest")
    elif guest is not None:
        raise BadRequest("only guest tokens carry a guest id")
    now = time.time()
    claims = Claims(
        sub=check_id(sub or new_id(), "sub"),
        name=name[:120],
        role=role,
        clinic=clinic,
        exp=float(int(now + ttl)),
        jti=new_id(),
        visit=visit,
        guest=guest,
    )
    payload: dict[str, object] = {
        "sub": claims.sub,
        "name": claims.name,
        "role": claims.role.value,
        "clinic": claims.clinic,
        "iat": int(now),
        "exp": int(claims.exp),
        "jti": claims.jti,
    }
    if visit is not None:
        payload["visit"] = visit
    if guest is not None:
        payload["guest"] = guest
    return jwt.encode(payload, secret.reveal(), algorithm=ALGORITHM), claims


def _decode(token: str, key: Any, algorithm: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], options={"require": REQUIRED})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    return payload


def _check_shape(token: object) -> str:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise Unauthorized("missing or malformed token")
    return token


def claims_of(payload: dict[str, Any]) -> Claims:
    """The claims of a verified payload; :class:`Unauthorized` if they are malformed."""
    try:
        role = Role(payload["role"])
        return Claims(
            sub=check_id(payload["sub"], "sub"),
            name=str(payload.get("name", ""))[:120],
            role=role,
            clinic=check_id(payload["clinic"], "clinic"),
            exp=float(payload["exp"]),
            jti=str(payload["jti"])[:64],
            visit=check_id(payload["visit"], "visit") if role.visit_bound else None,
            guest=check_id(payload["guest"], "guest") if role is Role.GUEST else None,
        )
    except (ValueError, KeyError, TypeError, BadRequest):
        raise Unauthorized("invalid token claims") from None


def verify(secret: Secret, token: str) -> Claims:
    """Check an HS256 token: signature, algorithm, expiry and shape; raise :class:`Unauthorized`."""
    return claims_of(_decode(_check_shape(token), secret.reveal(), ALGORITHM))


@dataclass(frozen=True)
class Verifier:
    """Checks tokens of either kind: HS256 with the shared secret, or signed with
    a key of the clinic's key set (if one is configured), chosen by ``kid`` and
    verifying only the algorithm pinned to that key."""

    secret: Secret
    keys: KeySet | None = None

    async def verify(self, token: object) -> Claims:
        """The token's claims, or :class:`Unauthorized` (``unknown signing key``
        for a ``kid`` the key set does not have, even after reading it again)."""
        token = _check_shape(token)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        alg = header.get("alg")
        if alg == ALGORITHM:
            return verify(self.secret, token)
        kid = header.get("kid")
        if self.keys is None or not isinstance(kid, str) or not isinstance(alg, str):
            raise Unauthorized("invalid token")
        key = await self.keys.key(kid)
        if key is None:
            raise Unauthorized("unknown signing key")
        if key.alg != alg:
            raise Unauthorized("invalid token")
        return claims_of(_decode(token, key.key, key.alg))
