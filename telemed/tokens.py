"""Access tokens: JWTs signed with the server secret (PyJWT, HS256 pinned).

A token carries ``sub``, ``name``, ``role``, ``clinic``, ``visit`` (patients
only), ``exp`` and ``jti``, the way LiveKit and Jitsi issue them, so a clinic's
own system can mint them with any JWT library.
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from dataclasses import dataclass

import jwt

from telemed.exceptions import BadRequest, Unauthorized
from telemed.settings import Secret

#: The only algorithm accepted; a token naming another (``none``, RS256 with the
#: secret as a public key...) is refused before its signature is looked at.
ALGORITHM = "HS256"

#: Clinic and visit ids, subjects: short, URL-, key- and path-safe (no leading
#: dot, so never ``.`` or ``..`` as a folder name in the chart).
ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class Role(enum.StrEnum):
    PATIENT = "patient"
    NURSE = "nurse"
    DOCTOR = "doctor"
    ADMIN = "admin"

    @property
    def is_staff(self) -> bool:
        return self is not Role.PATIENT


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
) -> tuple[str, Claims]:
    """Sign a token; returns it with its claims."""
    check_id(clinic, "clinic")
    if role is Role.PATIENT:
        if visit is None:
            raise BadRequest("a patient token needs a visit")
        check_id(visit, "visit")
    elif visit is not None:
        raise BadRequest("only patient tokens carry a visit")
    now = time.time()
    claims = Claims(
        sub=check_id(sub or new_id(), "sub"),
        name=name[:120],
        role=role,
        clinic=clinic,
        exp=float(int(now + ttl)),
        jti=new_id(),
        visit=visit,
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
    return jwt.encode(payload, secret.reveal(), algorithm=ALGORITHM), claims


def verify(secret: Secret, token: str) -> Claims:
    """Check signature, algorithm, expiry and shape; raise :class:`Unauthorized`."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise Unauthorized("missing or malformed token")
    try:
        payload = jwt.decode(
            token,
            secret.reveal(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "clinic", "exp", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    try:
        role = Role(payload["role"])
        claims = Claims(
            sub=check_id(payload["sub"], "sub"),
            name=str(payload.get("name", ""))[:120],
            role=role,
            clinic=check_id(payload["clinic"], "clinic"),
            exp=float(payload["exp"]),
            jti=str(payload["jti"])[:64],
            visit=check_id(payload["visit"], "visit") if role is Role.PATIENT else None,
        )
    except (ValueError, KeyError, BadRequest):
        raise Unauthorized("invalid token claims") from None
    return claims
