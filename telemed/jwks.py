"""A clinic's public signing keys (a JWKS), for tokens it mints with its own system.

``TELEMED_JWKS`` names a JSON Web Key Set file or URL. Keys are chosen by the
token's ``kid``, and each key verifies exactly one algorithm, fixed when the
set is read: the key's ``alg`` if it states one, else RS256 for an RSA key and
ES256 for a P-256 key. Nothing else is accepted (no HS256 with a public key,
no ``none``).

The set is read at start, then again every ``TELEMED_JWKS_REFRESH``; a token
naming a ``kid`` not in the set makes it read again at once, but at most once
per :data:`MIN_REREAD` (so a flood of made-up ``kid`` values costs one fetch a
half minute). A read that fails keeps the keys read before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from telemed.exceptions import ConfigError

logger = logging.getLogger(__name__)

#: Algorithms a JWKS key may verify, by key type (``kty``).
ALGORITHMS = {"RSA": ("RS256",), "EC": ("ES256",)}

#: Smallest RSA modulus accepted.
MIN_RSA_BITS = 2048

#: Seconds between two reads caused by an unknown ``kid``.
MIN_REREAD = 30.0

#: A key set larger than this is refused (a few keys are a few kB).
MAX_SIZE = 256 * 1024

#: Seconds a fetch of a JWKS URL may take.
FETCH_TIMEOUT = 10.0


class JwksError(ConfigError):
    """The key set cannot be read or is not a valid JWKS."""


@dataclass(frozen=True)
class PublicKey:
    """One verification key: its id, the one algorithm it verifies, the key."""

    kid: str
    alg: str
    key: Any
    """The ``cryptography`` public key object."""


def _algorithm(jwk: dict[str, Any]) -> str:
    kty = jwk.get("kty")
    allowed = ALGORITHMS.get(kty) if isinstance(kty, str) else None
    if allowed is None:
        raise JwksError(f"key type {kty!r} is not supported (RSA or EC)")
    alg = jwk.get("alg", allowed[0])
    if alg not in allowed:
        raise JwksError(f"a {kty} key may not verify {alg!r} (only {', '.join(allowed)})")
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise JwksError("an ES256 key must be on curve P-256")
    return str(alg)


def parse(data: bytes | str) -> dict[str, PublicKey]:
    """The signing keys of a JWKS document, by ``kid``; :class:`JwksError` if it
    is not one. Keys for other uses (``"use": "enc"``) are left out; a key with
    a private part, no ``kid`` or an unsupported type refuses the whole set."""
    try:
        document = json.loads(data)
    except ValueError:
        raise JwksError("not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError('no "keys" list')
    keys: dict[str, PublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict):
            raise JwksError("a key is not an object")
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise JwksError("every key needs a kid")
        if "d" in jwk:
            raise JwksError(f"key {kid!r} holds a private key: publish the public part only")
        if kid in keys:
            raise JwksError(f"kid {kid!r} appears twice")
        alg = _algorithm(jwk)
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise JwksError(f"key {kid!r}: {type(exc).__name__}") from None
        if alg == "RS256" and key.key_size < MIN_RSA_BITS:
            raise JwksError(f"key {kid!r}: an RSA key needs at least {MIN_RSA_BITS} bits")
        keys[kid] = PublicKey(kid=kid, alg=alg, key=key)
    return keys


@dataclass
class KeySet:
    """The keys of one JWKS source, kept fresh.

    :param source: a file path or an ``http(s)://`` URL.
    :param refresh: seconds between reads by :meth:`run`.
    :param min_reread: least seconds between two reads caused by unknown ``kid`` values.
    """

    source: str
    refresh: float = 300.0
    min_reread: float = MIN_REREAD
    keys: dict[str, PublicKey] = field(default_factory=dict)
    _last_read: float = field(default=float("-inf"), init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    @property
    def remote(self) -> bool:
        """Whether the set is fetched from a URL (else read from a file)."""
        return self.source.startswith(("https://", "http://"))

    async def _fetch(self) -> bytes:
        if not self.remote:
            path = Path(self.source)
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise JwksError(f"cannot read {path}: {exc.strerror}") from None
            if len(data) > MAX_SIZE:
                raise JwksError("the key set is too large")
            return data
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(self.source, headers={"Accept": "application/json"}) as r:
                    if r.status != 200:
                        raise JwksError(f"fetching the key set: HTTP {r.status}")
                    data = await r.content.read(MAX_SIZE + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JwksError(f"fetching the key set: {type(exc).__name__}") from None
        if len(data) > MAX_SIZE:
            raise JwksError("the key set is too large")
        return data

    async def read(self) -> None:
        """Read the set now; :class:`JwksError` leaves the keys as they were."""
        self._last_read = time.monotonic()
        keys = parse(await self._fetch())
        if keys.keys() != self.keys.keys():
            logger.info("KeySet(%s) keys: %s", self.source, ", ".join(sorted(keys)) or "none")
        self.keys = keys

    async def key(self, kid: str) -> PublicKey | None:
        """The key named ``kid``; an unknown one triggers a (rate-limited) read."""
        found = self.keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self.keys.get(kid)
            if found is None and time.monotonic() - self._last_read >= self.min_reread:
                try:
                    await self.read()
                except JwksError as exc:
                    logger.warning("KeySet(%s) read failed: %s", self.source, exc)
                found = self.keys.get(kid)
        return found

    async def run(self) -> None:
        """Read the set every ``refresh`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.refresh)
            async with self._lock:
                try:
                    await self.read()
                except JwksError as exc:
                    logger.warning("KeySet(%s) read failed, keeping %d keys: %s", self.source, len(self.keys), exc)
