"""Which addresses the worker offers: host addresses, the announced address,
and the worker's own STUN/TURN servers.

aioice gathers host candidates on every interface except loopback, and offers
no setting to choose them. :func:`host_addresses` constrains that, for the
peer connections set up inside it, through a wrapper of aioice's one gathering
function (:func:`aioice.ice.get_host_addresses`) that reads a context
variable: outside the ``with`` block aioice behaves exactly as before, so other
peer connections in the process are unaffected. ``asyncio.gather`` copies the
context into the tasks aiortc gathers in, which is what carries the choice
down to aioice.

The wrapper is put in place by :func:`install`, which the worker calls when it
starts (and the tests' fake browsers before they gather): importing this module
changes nothing. :func:`install` first checks the source of what it relies on
(the function it wraps, and ``Connection.gather_candidates``, which must call
it through the module's global) against aioice 0.13.0's (:data:`RELIES_ON`);
another version stops the worker with :class:`media._pinned.DependencyChanged`
rather than let it offer every interface.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from media import _pinned
from media.config import MediaSettings

#: SHA-256 of the aioice 0.13.0 source :func:`install` relies on.
RELIES_ON = {
    "get_host_addresses": "d4a54f9a68c39ff1bed532e76bd148cf1530aeb35b9be32900b53e234b78ae4f",
    "Connection.gather_candidates": "d33db28d4d1e49ffe863eb34098e4a4a73a7cc5725e0da821e1fb94d7ade8cbb",
}

_CHOSEN: ContextVar[tuple[str, ...] | None] = ContextVar("media_host_addresses", default=None)

_aioice_get_host_addresses = aioice.ice.get_host_addresses


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _CHOSEN.get()
    if chosen is None:
        return _aioice_get_host_addresses(use_ipv4, use_ipv6)
    out = []
    for address in chosen:
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            out.append(address)
    return out


def relied_on() -> dict[str, Callable[..., Any]]:
    """The aioice functions :data:`RELIES_ON` describes, as installed."""
    return {
        "get_host_addresses": _aioice_get_host_addresses,
        "Connection.gather_candidates": aioice.ice.Connection.gather_candidates,
    }


def installed() -> bool:
    return aioice.ice.get_host_addresses is _get_host_addresses


def install() -> None:
    """Put the gathering wrapper in place (once; later calls do nothing).
    Raises :class:`~media._pinned.DependencyChanged` for an aioice whose source differs."""
    if installed():
        return
    _pinned.check("aioice", relied_on(), RELIES_ON, "media/ice.py")
    aioice.ice.get_host_addresses = _get_host_addresses


@contextmanager
def host_addresses(addresses: Iterable[str]) -> Iterator[None]:
    """Gather host candidates only on ``addresses`` (loopback allowed) for the
    peer connections whose ``setLocalDescription`` runs inside the block.
    An empty list keeps aioice's own choice. Needs :func:`install`."""
    chosen = tuple(addresses)
    if chosen and not installed():
        raise RuntimeError("media.ice.install() has not run: aioice would offer every interface")
    token = _CHOSEN.set(chosen or None)
    try:
        yield
    finally:
        _CHOSEN.reset(token)


def default_addresses(loopback: bool = True) -> tuple[str, ...]:
    """What aioice would offer (every interface but loopback), plus loopback:
    the choice for ``telemed dev``, where the browser may be on this machine or
    on a phone in the same network."""
    found = _aioice_get_host_addresses(use_ipv4=True, use_ipv6=False)
    return (*found, "127.0.0.1") if loopback else tuple(found)


def announce(sdp: str, public: str) -> str:
    """Replace the address of every host candidate (and the ``c=`` default) of
    the same IP family as ``public`` with ``public``, keeping the ports.

    Behind 1:1 NAT the ports are preserved, so the browser's checks to
    ``public:port`` reach the socket aioice bound on the private address; the
    worker sees the browser as a peer-reflexive candidate and answers it.
    """
    if not public:
        return sdp
    family = ipaddress.ip_address(public).version
    ip_word = "IP4" if family == 4 else "IP6"

    def same_family(address: str) -> bool:
        try:
            return ipaddress.ip_address(address).version == family
        except ValueError:
            return False  # an mDNS name or garbage: leave it alone

    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            bits = line.split()
            # foundation component transport priority address port "typ" type ...
            if len(bits) >= 8 and bits[7] == "host" and same_family(bits[4]):
                bits[4] = public
                line = " ".join(bits)
        elif line.startswith("c=IN "):
            bits = line.split()
            if len(bits) == 3 and same_family(bits[2]):
                line = f"c=IN {ip_word} {public}"
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def configuration(settings: MediaSettings, now: float | None = None) -> RTCConfiguration:
    """The worker's own ``RTCConfiguration``: STUN, and TURN with REST
    credentials it mints from the shared secret (coturn ``use-auth-secret``)."""
    servers: list[RTCIceServer] = []
    if settings.stun_urls:
        servers.append(RTCIceServer(urls=list(settings.stun_urls)))
    if settings.turn_urls:
        expiry = int((time.time() if now is None else now) + settings.turn_ttl)
        username = f"{expiry}:worker-{settings.worker_id}"
        digest = hmac.new(settings.turn_secret.reveal().encode(), username.encode(), hashlib.sha1).digest()
        servers.append(
            RTCIceServer(urls=list(settings.turn_urls), username=username, credential=base64.b64encode(digest).decode())
        )
    return RTCConfiguration(iceServers=servers)
