"""Tokens: ids they carry, and HS256 tokens signed with the shared secret
(tokens signed with a clinic's key set: tests/test_jwks.py)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from telemed.exceptions import BadRequest, Unauthorized
from telemed.settings import Secret
from telemed.tokens import Role, Verifier, check_id, mint, verify
from tests.conftest import SECRET


def test_ids_are_path_safe() -> None:
    for bad in (".", "..", ".hidden", "a/b", "", "x" * 65, "c1\n"):
        with pytest.raises(BadRequest):
            check_id(bad, "clinic")
    assert check_id("clinic-1.east_2", "clinic") == "clinic-1.east_2"


async def test_secret_tokens_verify_and_others_are_refused_without_a_key_set() -> None:
    tok, claims = mint(SECRET, role=Role.NURSE, name="N", clinic="c1", ttl=60)
    verifier = Verifier(SECRET)
    assert await verifier.verify(tok) == claims == verify(SECRET, tok)
    other = mint(Secret("another-secret-" + "y" * 40), role=Role.NURSE, name="N", clinic="c1", ttl=60)[0]
    expired = mint(SECRET, role=Role.NURSE, name="N", clinic="c1", ttl=-10)[0]
    unsigned = jwt.encode(payload(), key=None, algorithm="none")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs256 = jwt.encode(payload(), rsa_key, algorithm="RS256", headers={"kid": "k1"})
    for bad, message in [
        (other, "invalid token"),
        (expired, "token expired"),
        (unsigned, "invalid token"),
        (rs256, "invalid token"),
        ("not.a.token", "invalid token"),
        ("", "missing or malformed token"),
        (None, "missing or malformed token"),
        ("x" * 5000, "missing or malformed token"),
    ]:
        with pytest.raises(Unauthorized) as refused:
            await verifier.verify(bad)
        assert refused.value.message == message, bad


async def test_claims_of_the_wrong_shape_are_refused() -> None:
    verifier = Verifier(SECRET)
    for changes in ({"role": "janitor"}, {"clinic": "../x"}, {"role": "patient"}):
        tok = jwt.encode({**payload(), **changes}, SECRET.reveal(), algorithm="HS256")
        with pytest.raises(Unauthorized, match="invalid token claims"):
            await verifier.verify(tok)
    missing = {k: v for k, v in payload().items() if k != "jti"}
    with pytest.raises(Unauthorized, match="invalid token"):
        await verifier.verify(jwt.encode(missing, SECRET.reveal(), algorithm="HS256"))


def payload(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "s1", "name": "N", "role": "doctor", "clinic": "c1", "iat": now, "exp": now + 60, "jti": "j1", **changes}
