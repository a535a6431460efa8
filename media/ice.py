"""Which addresses the worker offers: host addresses, the announced address,
and the worker's own STUN/TURN servers.

aioice gathers host candidates on every interface except loopback, and offers
no setting to choose them. :func:`host_addresses` constrains that, for the
peer connections set up inside it, by patching aioice's one gathering function
(:func:`aioice.ice.get_host_addresses`) with a wrapper that reads a context
variable: outside the ``with`` block aioice behaves exactly as before, so other
peer connections in the process are unaffected. ``asyncio.gather`` copies the
context into the tasks aiortc gathers in, which is what carries the choice
down to aioice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from media.config import MediaSettings

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


def _install() -> None:
    # The single patch of a third-party module in the worker. aioice 0.10-0.13
    # call the module-level function from Connection.gather_candidates; if that
    # changes, tests/test_media_ice.py fails rather than the worker silently
    # offering every interface.
    if aioice.ice.get_host_addresses is not _get_host_addresses:
        aioice.ice.get_host_addresses = _get_host_addresses


_install()


@contextmanager
def host_addresses(addresses: Iterable[str]) -> Iterator[None]:
    """Gather host candidates only on ``addresses`` (loopback allowed) for the
    peer connections whose ``setLocalDescription`` runs inside the block.
    An empty list keeps aioice's own choice."""
    chosen = tuple(addresses)
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
