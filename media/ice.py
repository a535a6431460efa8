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

Nor does aioice choose ports: it binds each host candidate's socket to port 0
(any port). Behind a firewall that opens only a range (``TELEMED_MEDIA_PORTS``),
:func:`host_addresses` takes that range too, and a wrapper of
``Connection.get_component_candidates`` binds the host sockets inside it, the
way aioice binds them (same protocol object, buffer size and candidate), then
leaves the rest of the gathering (its TURN allocation) to aioice and asks the
STUN server for the reflexive candidates of the sockets it bound, as aioice
would. When no port of the range is free, the gathering fails with
:class:`~telemed.exceptions.Unavailable` in plain words, which the offer's
answer carries back. Outside a chosen range aioice gathers exactly as before.

The wrappers are put in place by :func:`install`, which the worker calls when it
starts (and the tests' fake browsers before they gather): importing this module
changes nothing. :func:`install` first checks the source of what they rely on
(the functions they wrap or reproduce, and ``Connection.gather_candidates``,
which must call them through the module's global and the class) against
aioice 0.13.0's (:data:`RELIES_ON`); another version stops the worker with
:class:`media._pinned.DependencyChanged` rather than let it offer every
interface or any port.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import aioice.ice
import aioice.turn
from aioice import Candidate
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from media import _pinned
from media.config import MediaSettings
from telemed.exceptions import Unavailable

logger = logging.getLogger(__name__)

#: SHA-256 of the aioice 0.13.0 source :func:`install` relies on.
RELIES_ON = {
    "get_host_addresses": "d4a54f9a68c39ff1bed532e76bd148cf1530aeb35b9be32900b53e234b78ae4f",
    "Connection.gather_candidates": "d33db28d4d1e49ffe863eb34098e4a4a73a7cc5725e0da821e1fb94d7ade8cbb",
    "Connection.get_component_candidates": "118597a9fcb703f9950c2f2964e3e44423724576eda484ba6747b1610ccf4a2f",
    "server_reflexive_candidate": "76dd5558471714f789332b217dda396ba2d7f398be0bba2a85ed2a0dceaa5c54",
    "StunProtocol.__init__": "9d0df3c0c0c4f9152633bc324d3c1d62d0ac50155642c28e24d788c3b987fc00",
}

_CHOSEN: ContextVar[tuple[str, ...] | None] = ContextVar("media_host_addresses", default=None)
_PORTS: ContextVar[tuple[int, int] | None] = ContextVar("media_ports", default=None)

_aioice_get_host_addresses = aioice.ice.get_host_addresses
_aioice_get_component_candidates = aioice.ice.Connection.get_component_candidates


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


async def _get_component_candidates(
    self: aioice.ice.Connection, component: int, addresses: list[str], timeout: int = 5
) -> list[Candidate]:
    ports = _PORTS.get()
    if ports is None or not addresses:
        return await _aioice_get_component_candidates(self, component, addresses, timeout)
    hosts = await _bind_in_range(self, component, addresses, ports)
    # aioice gathers the rest (its TURN allocation) with no host socket of its own to bind.
    relayed, reflexive = await asyncio.gather(
        _aioice_get_component_candidates(self, component, [], timeout), _reflexive(self, hosts, timeout))
    return [p.local_candidate for p in hosts] + reflexive + relayed


async def _bind_in_range(
    connection: aioice.ice.Connection, component: int, addresses: list[str], ports: tuple[int, int]
) -> list[aioice.ice.StunProtocol]:
    """One host socket per address on a free port of ``ports``, as aioice binds
    them on port 0. Raises :class:`Unavailable` when an address finds none free."""
    loop = asyncio.get_running_loop()
    first, last = ports
    span = last - first + 1
    bound: list[aioice.ice.StunProtocol] = []
    try:
        for address in addresses:
            start = random.randrange(span)  # anywhere: legs gathering at once seldom race for a port
            for k in range(span):
                port = first + (start + k) % span
                try:
                    transport, protocol = await loop.create_datagram_endpoint(
                        lambda: aioice.ice.StunProtocol(connection), local_addr=(address, port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        continue
                    logger.info("Could not bind to %s - %s", address, exc)  # as aioice: skip the address
                    break
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
                host, bound_port = transport.get_extra_info("sockname")[:2]
                protocol.local_candidate = Candidate(
                    foundation=candidate_foundation("host", "udp", host),
                    component=component,
                    transport="udp",
                    priority=candidate_priority(component, "host"),
                    host=host,
                    port=bound_port,
                    type="host",
                )
                bound.append(protocol)
                break
            else:
                raise Unavailable(
                    f"the media worker has no free UDP port left in its range {first}-{last} "
                    f"(TELEMED_MEDIA_PORTS) on {address}: offer again later; its operator can widen the range"
                )
    except BaseException:
        for protocol in bound:
            protocol.transport.close()
        raise
    connection._protocols += bound
    return bound


async def _reflexive(connection: aioice.ice.Connection, hosts: list[aioice.ice.StunProtocol], timeout: int) -> list[Candidate]:
    """The STUN server's reflexive candidates of the IPv4 host sockets, as aioice asks for them."""
    stun_server = connection.stun_server
    if not stun_server:
        return []
    tasks = [asyncio.create_task(aioice.ice.server_reflexive_candidate(p, stun_server))
             for p in hosts if ipaddress.ip_address(p.local_candidate.host).version == 4]
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    return [task.result()[0] for task in done if task.exception() is None]


def relied_on() -> dict[str, Callable[..., Any]]:
    """The aioice functions :data:`RELIES_ON` describes, as installed."""
    return {
        "get_host_addresses": _aioice_get_host_addresses,
        "Connection.gather_candidates": aioice.ice.Connection.gather_candidates,
        "Connection.get_component_candidates": _aioice_get_component_candidates,
        "server_reflexive_candidate": aioice.ice.server_reflexive_candidate,
        "StunProtocol.__init__": aioice.ice.StunProtocol.__init__,
    }


def installed() -> bool:
    return (aioice.ice.get_host_addresses is _get_host_addresses
            and aioice.ice.Connection.get_component_candidates is _get_component_candidates)


def install() -> None:
    """Put the gathering wrappers in place (once; later calls do nothing).
    Raises :class:`~media._pinned.DependencyChanged` for an aioice whose source differs."""
    if installed():
        return
    _pinned.check("aioice", relied_on(), RELIES_ON, "media/ice.py")
    aioice.ice.get_host_addresses = _get_host_addresses
    aioice.ice.Connection.get_component_candidates = _get_component_candidates  # type: ignore[method-assign]


@contextmanager
def host_addresses(addresses: Iterable[str], ports: tuple[int, int] | None = None) -> Iterator[None]:
    """Gather host candidates only on ``addresses`` (loopback allowed), and
    with ``ports`` only on those ports (first, last), for the peer connections
    whose ``setLocalDescription`` runs inside the block. An empty list keeps
    aioice's own choice of addresses, None its choice of ports. Needs :func:`install`."""
    chosen = tuple(addresses)
    if (chosen or ports is not None) and not installed():
        raise RuntimeError("media.ice.install() has not run: aioice would offer every interface and any port")
    token = _CHOSEN.set(chosen or None)
    ports_token = _PORTS.set(ports)
    try:
        yield
    finally:
        _PORTS.reset(ports_token)
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
    credentials it mints from the shared secret (coturn ``use-auth-secret``);
    with ``TELEMED_ICE_POLICY=relay`` only its TURN allocation is offered (as
    the pages do), so every leg's media crosses the TURN server."""
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
    policy = RTCIceTransportPolicy.RELAY if settings.base.ice_policy == "relay" else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
