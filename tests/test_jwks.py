"""Tokens signed with a clinic's own keys: RS256 and ES256 from a JWKS file or URL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from telemed.exceptions import ConfigError, Unauthorized
from telemed.jwks import JwksError, KeySet, parse
from telemed.settings import Settings
from telemed.tokens import Role, Verifier
from tests.conftest import ORIGIN, SECRET, free_port

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(private: Any, kid: str, **extra: object) -> dict[str, Any]:
    public = private.public_key()
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, "use": "sig", **extra}


def key_set(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


BOTH = key_set(jwk(RSA_KEY, "rsa-1", alg="RS256"), jwk(EC_KEY, "ec-1"))


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"sub": "dr-lee", "name": "Dr Lee", "role": "doctor", "clinic": "c1", "exp": now + 600, "jti": f"j{now}", **changes}


def signed(key: Any, alg: str, kid: str, **changes: object) -> str:
    return jwt.encode(claims(**changes), key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with(key: bytes, kid: str) -> str:
    """An HS256 token whose HMAC key is ``key`` (PyJWT itself refuses to sign
    with a public key, which is what an attacker would do by hand)."""
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims()).encode())
    mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


@pytest.fixture
async def file_verifier(tmp_path: Path) -> Verifier:
    path = tmp_path / "jwks.json"
    path.write_bytes(BOTH)
    keys = KeySet(str(path))
    await keys.read()
    return Verifier(SECRET, keys)


async def test_rs256_and_es256_tokens_from_a_key_file_are_accepted(file_verifier: Verifier) -> None:
    doctor = await file_verifier.verify(signed(RSA_KEY, "RS256", "rsa-1"))
    assert (doctor.role, doctor.clinic, doctor.sub) == (Role.DOCTOR, "c1", "dr-lee")
    patient = await file_verifier.verify(signed(EC_KEY, "ES256", "ec-1", role="patient", visit="v1"))
    assert (patient.role, patient.visit) == (Role.PATIENT, "v1")


async def test_tokens_that_do_not_match_their_key_are_refused(file_verifier: Verifier) -> None:
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    cases = {
        "unknown kid": (signed(RSA_KEY, "RS256", "rsa-2"), "unknown signing key"),
        "no kid": (jwt.encode(claims(), RSA_KEY, algorithm="RS256"), "invalid token"),
        "another key's signature": (signed(other_rsa, "RS256", "rsa-1"), "invalid token"),
        "RS256 under the EC key's kid": (signed(RSA_KEY, "RS256", "ec-1"), "invalid token"),
        "ES256 under the RSA key's kid": (signed(EC_KEY, "ES256", "rsa-1"), "invalid token"),
        "RS384 with the right key": (signed(RSA_KEY, "RS384", "rsa-1"), "invalid token"),
        "PS256 with the right key": (signed(RSA_KEY, "PS256", "rsa-1"), "invalid token"),
        "expired": (signed(RSA_KEY, "RS256", "rsa-1", exp=int(time.time()) - 5), "token expired"),
        "alg none": (jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"}), "invalid token"),
        "HS256 keyed with the public key (alg confusion)": (hs256_with(public_pem, "rsa-1"), "invalid token"),
        "HS256 keyed with the JWK text": (hs256_with(json.dumps(jwk(RSA_KEY, "rsa-1")).encode(), "rsa-1"), "invalid token"),
        "bad claims": (signed(RSA_KEY, "RS256", "rsa-1", role="janitor"), "invalid token claims"),
    }
    for what, (token, message) in cases.items():
        with pytest.raises(Unauthorized) as refused:
            await file_verifier.verify(token)
        assert refused.value.message == message, what
    # The shared secret still works beside the key set.
    good = jwt.encode(claims(), SECRET.reveal(), algorithm="HS256")
    assert (await file_verifier.verify(good)).sub == "dr-lee"


def test_key_sets_that_could_be_misused_are_refused() -> None:
    bad = {
        "a private key": key_set({**jwk(RSA_KEY, "k"), "d": "AAAA"}),
        "an RSA key for ES256": key_set(jwk(RSA_KEY, "k", alg="ES256")),
        "an RSA key for HS256": key_set(jwk(RSA_KEY, "k", alg="HS256")),
        "an EC key off P-256": key_set(jwk(ec.generate_private_key(ec.SECP384R1()), "k")),
        "a symmetric key": key_set({"kty": "oct", "k": b64(b"secret"), "kid": "k"}),
        "no kid": key_set({k: v for k, v in jwk(RSA_KEY, "k").items() if k != "kid"}),
        "a kid twice": key_set(jwk(RSA_KEY, "k"), jwk(EC_KEY, "k")),
        "a broken key": key_set({**jwk(RSA_KEY, "k"), "n": "!!"}),
        "a short RSA key": key_set(jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "k")),
        "not a set": b'{"kty": "RSA"}',
        "not JSON": b"<html>",
    }
    for what, document in bad.items():
        with pytest.raises(JwksError):
            parse(document)
            pytest.fail(what)
    keys = parse(key_set(jwk(RSA_KEY, "sig-1"), jwk(EC_KEY, "enc-1", use="enc")))
    assert [(k.kid, k.alg) for k in keys.values()] == [("sig-1", "RS256")], "encryption keys are left out"


@dataclass
class JwksServer:
    """A real JWKS endpoint on loopback, counting its fetches."""

    document: bytes = BOTH
    status: int = 200
    fetches: int = 0
    url: str = ""
    fetched: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()

    async def serve(request: web.Request) -> web.Response:
        server.fetches += 1
        server.fetched.set()
        return web.Response(body=server.document, status=server.status, content_type="application/json")

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    yield server
    await runner.cleanup()


async def test_a_key_set_url_is_fetched_and_an_unknown_kid_rereads_it_at_most_so_often(jwks_server: JwksServer) -> None:
    jwks_server.document = key_set(jwk(RSA_KEY, "rsa-1"))
    keys = KeySet(jwks_server.url, min_reread=60)
    verifier = Verifier(SECRET, keys)
    await keys.read()
    assert (await verifier.verify(signed(RSA_KEY, "RS256", "rsa-1"))).sub == "dr-lee"
    jwks_server.document = BOTH  # the clinic adds a key
    for kid in ("ec-1", "made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(Unauthorized, match="unknown signing key"):
            await verifier.verify(signed(EC_KEY, "ES256", kid))
    assert jwks_server.fetches == 1, "unknown kids within the window cause no fetch"
    keys.min_reread = 0  # the window has passed
    assert (await verifier.verify(signed(EC_KEY, "ES256", "ec-1"))).sub == "dr-lee"
    assert jwks_server.fetches == 2


async def test_a_failing_fetch_keeps_the_keys_and_the_refresh_picks_up_changes(jwks_server: JwksServer) -> None:
    keys = KeySet(jwks_server.url, refresh=0.05, min_reread=0)
    await keys.read()
    jwks_server.status = 500
    with pytest.raises(JwksError, match="HTTP 500"):
        await keys.read()
    jwks_server.document = b"not json"
    jwks_server.status = 200
    with pytest.raises(JwksError):
        await keys.read()
    assert set(keys.keys) == {"rsa-1", "ec-1"}, "a failed read keeps what was read before"
    jwks_server.document = key_set(jwk(EC_KEY, "ec-2"))
    task = asyncio.create_task(keys.run())
    try:
        while "ec-2" not in keys.keys:
            jwks_server.fetched.clear()
            await asyncio.wait_for(jwks_server.fetched.wait(), 5)
            await asyncio.sleep(0)  # let the read finish parsing
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert set(keys.keys) == {"ec-2"}, "keys dropped from the set are dropped here too"


async def test_a_node_accepts_clinic_signed_tokens_over_http_and_sockets(start_node, settings: Settings, jwks_server: JwksServer) -> None:
    node = await start_node(settings.with_(jwks=jwks_server.url))
    doctor = signed(RSA_KEY, "RS256", "rsa-1")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node}/api/clinics/c1/queue", headers={"Authorization": f"Bearer {doctor}"}) as r:
            assert r.status == 200, await r.text()
        async with http.get(f"{node}/api/clinics/c1/queue", headers={"Authorization": f"Bearer {signed(RSA_KEY, 'RS256', 'nope')}"}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    nurse = socketio.AsyncClient(reconnection=False)
    await nurse.connect(
        node,
        auth={"token": signed(EC_KEY, "ES256", "ec-1", role="nurse", sub="rn-kim")},
        namespaces=["/queue"],
        transports=["websocket"],
        headers={"Origin": ORIGIN},
        wait_timeout=5,
    )
    try:
        reply = await nurse.call("get_queue", {}, namespace="/queue", timeout=5)
        assert reply["ok"], reply
    finally:
        await nurse.disconnect()


async def test_a_key_file_that_cannot_be_read_stops_the_start(start_node, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(JwksError, match="cannot read"):
        await start_node(settings.with_(jwks=str(tmp_path / "missing.json")))


def test_a_key_set_url_must_be_https_unless_local() -> None:
    base = Settings(secret=SECRET, redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="https"):
        base.with_(jwks="http://idp.example/jwks.json").check()
    base.with_(jwks="https://idp.example/jwks.json").check()
    base.with_(jwks="http://127.0.0.1:9000/jwks.json").check()
    assert Settings.from_env({"TELEMED_JWKS": "/etc/telemed/jwks.json", "TELEMED_JWKS_REFRESH": "10m"}).jwks_refresh == 600
