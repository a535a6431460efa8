"""Which tokens are accepted: signatures, algorithms, claims, revocation of
shapes, the Authorization header; against a real node and Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest

from telemed.tokens import Role
from tests.authz_world import (
    MISSING_VISIT,
    Connect,
    assert_refused_by_namespace,
    http,
    refusal,
    staff_token,
)
from tests.conftest import SECRET, create_visit, token

# -- tokens -----------------------------------------------------------------------------------

OTHER_SECRET = "another-secret-" + "y" * 40


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(role: str = "nurse", **changes: Any) -> dict[str, Any]:
    """Valid claims of a nurse of c1; ``changes`` set (or, with None, drop) claims."""
    now = int(time.time())
    out: dict[str, Any] = {"sub": "n1", "name": "Nurse", "role": role, "clinic": "c1", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def sign(payload: dict[str, Any], secret: str = SECRET.reveal(), alg: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg)


def hand_signed(
    header: dict[str, Any], payload: dict[str, Any], secret: str | None = SECRET.reveal(), digest: Any = hashlib.sha256
) -> str:
    """A JWT assembled by hand; with a secret, HMAC signed (SHA-256 unless told) whatever the header says."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    sig = "" if secret is None else b64(hmac.new(secret.encode(), signing_input.encode(), digest).digest())
    return f"{signing_input}.{sig}"


def flip_signature(tok: str) -> str:
    head, body, sig = tok.split(".")
    i = len(sig) // 2  # a middle character: every one of its bits is part of the MAC
    return f"{head}.{body}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1:]}"


def swap_payload(tok: str, **changes: Any) -> str:
    head, body, sig = tok.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return f"{head}.{b64({**data, **changes})}.{sig}"


def rs256_token() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(), key, algorithm="RS256")


#: name -> token builder; ctx holds "own" (a c1 visit) and "other" (a c2 visit).
BAD_TOKENS: list[Any] = [
    pytest.param(lambda ctx: sign(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 3660)), id="expired"),
    pytest.param(lambda ctx: sign(claims(exp=int(time.time()) - 1)), id="expired-just-now"),
    pytest.param(lambda ctx: flip_signature(sign(claims())), id="signature-flipped"),
    pytest.param(lambda ctx: swap_payload(sign(claims()), role="admin"), id="payload-role-changed-same-signature"),
    pytest.param(lambda ctx: swap_payload(sign(claims()), clinic="c2"), id="payload-clinic-changed-same-signature"),
    pytest.param(lambda ctx: swap_payload(sign(claims(role="patient", visit=ctx["own"])), visit=ctx["other"]), id="payload-visit-changed-same-signature"),
    pytest.param(lambda ctx: sign(claims(), secret=OTHER_SECRET), id="other-secret"),
    pytest.param(lambda ctx: hand_signed({"alg": "none", "typ": "JWT"}, claims(), secret=None), id="alg-none"),
    pytest.param(lambda ctx: hand_signed({"alg": "None", "typ": "JWT"}, claims(), secret=None), id="alg-None"),
    pytest.param(lambda ctx: hand_signed({"alg": "none", "typ": "JWT"}, claims()), id="alg-none-with-valid-mac"),
    pytest.param(lambda ctx: hand_signed({"alg": "RS256", "typ": "JWT"}, claims()), id="rs256-header-hmac-signature"),
    pytest.param(lambda ctx: rs256_token(), id="rs256-signed"),
    # (by hand: PyJWT warns that the test secret is short for SHA-512)
    pytest.param(lambda ctx: hand_signed({"alg": "HS512", "typ": "JWT"}, claims(), digest=hashlib.sha512), id="hs512-right-secret"),
    *[pytest.param(lambda ctx, c=c: sign(claims(**{c: None})), id=f"missing-{c}") for c in ("sub", "role", "clinic", "exp", "jti")],
    pytest.param(lambda ctx: sign(claims(role="superuser")), id="unknown-role"),
    pytest.param(lambda ctx: sign(claims(clinic="c1/../c2")), id="bad-clinic-id"),
    pytest.param(lambda ctx: sign(claims(sub="")), id="empty-sub"),
    pytest.param(
        lambda ctx: sign(claims(clinic="c1\n")),
        id="clinic-with-trailing-newline",
    ),
    pytest.param(lambda ctx: sign(claims(exp="tomorrow")), id="exp-not-a-number"),
    pytest.param(lambda ctx: sign(claims(nbf=int(time.time()) + 3600)), id="not-yet-valid"),
    pytest.param(lambda ctx: sign(claims(role="patient")), id="patient-without-visit"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit=ctx["other"])), id="patient-visit-of-other-clinic"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit=MISSING_VISIT)), id="patient-visit-missing"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit="../x")), id="patient-visit-bad-id"),
    pytest.param(lambda ctx: sign(claims(name="x" * 5000)), id="oversized"),
    pytest.param(lambda ctx: "not-a-jwt", id="garbage"),
    pytest.param(lambda ctx: "a.b.c", id="three-garbage-parts"),
]


async def token_context(node: str) -> dict[str, str]:
    own, _ = await create_visit(node, token(Role.NURSE, "c1"))
    other, _ = await create_visit(node, token(Role.NURSE, "c2"))
    return {"own": own, "other": other}


async def test_control_tokens_are_accepted(node: str, connect: Connect) -> None:
    """The hand-made claims and signing used below are accepted when nothing is wrong,
    so each refusal in test_bad_token_is_refused is caused by its one defect."""
    ctx = await token_context(node)
    for tok in (sign(claims()), sign(claims(role="patient", visit=ctx["own"])), hand_signed({"alg": "HS256", "typ": "JWT"}, claims())):
        peer = await connect(node, tok, namespaces=["/queue", "/chat"])
        await peer.ok("/queue", "get_visit", {"visit_id": ctx["own"]})
        got, data = await http("GET", f"{node}/api/visits/{ctx['own']}", tok)
        assert got == 200, data
        await peer.close()


@pytest.mark.parametrize("build", BAD_TOKENS)
async def test_bad_token_is_refused(node: str, build: Callable[[dict[str, str]], str]) -> None:
    ctx = await token_context(node)
    tok = build(ctx)
    await assert_refused_by_namespace(node, {"token": tok}, ["/queue", "/chat"], "unauthorized")
    got, data = await http("GET", f"{node}/api/visits/{ctx['own']}", tok)
    assert (got, data) == (401, {"error": {"code": "unauthorized", "message": data["error"]["message"]}})


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": None}, {"token": 123}, {"token": ["x"]}, {"token": ""}, {"tok": "x"}, "a-string", ["a", "list"]],
    ids=["none", "empty", "token-null", "token-int", "token-list", "token-empty", "wrong-key", "string", "list"],
)
async def test_bad_auth_shape_is_refused(node: str, auth: Any) -> None:
    await assert_refused_by_namespace(node, auth, ["/queue", "/chat", "/call"], "unauthorized")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer  "])
async def test_http_bad_authorization_header(node: str, header: str) -> None:
    visit_id, _ = await create_visit(node, token(Role.NURSE, "c1"))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{node}/api/visits/{visit_id}", headers={"Authorization": header} if header else {}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_role_refusal_is_per_namespace(node: str, connect: Connect) -> None:
    """Refused namespaces say forbidden; the others of the same attempt connect."""
    await assert_refused_by_namespace(node, {"token": staff_token(Role.NURSE)}, ["/call"], "forbidden")
    await assert_refused_by_namespace(node, {"token": staff_token(Role.ADMIN)}, ["/chat", "/call"], "forbidden")
    errors = await refusal(node, {"token": staff_token(Role.ADMIN)}, ["/queue", "/chat", "/call"])
    assert sorted(errors) == ["/call", "/chat"], errors  # /queue was accepted
    nurse = await connect(node, staff_token(Role.NURSE), namespaces=["/queue", "/chat"])
    await nurse.ok("/queue", "get_queue")
