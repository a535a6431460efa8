"""The client's address, for per-address limits.

``X-Forwarded-For`` is believed only as far as it was written by proxies the
operator listed (``TELEMED_TRUSTED_PROXIES``): each proxy appends the address
it saw, so the header is read from the right, skipping our own proxies, and
the first address that is not one of them is the client. Anything further left
was written by the client and may be forged. A request whose direct peer is
not a trusted proxy is that peer, whatever its headers say.

(aiohttp-remotes was considered: its ``XForwardedFiltered`` believes the header
whatever the direct peer, and ``XForwardedStrict`` needs the exact number of
hops; neither fits a list of trusted networks.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp import web

from telemed.exceptions import ConfigError

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

#: Longest address string kept (a key in Redis).
MAX_ADDRESS = 64


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.0/8``, ``127.0.0.1`` or ``::1`` into networks; :class:`ConfigError` otherwise."""
    networks = []
    for value in values:
        try:
            networks.append(ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"TELEMED_TRUSTED_PROXIES: not an address or network: {value!r}") from None
    return tuple(networks)


@functools.lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(values)


def _parse(value: str) -> Address | None:
    """An address as proxies write it: bare, ``v4:port`` or ``[v6]:port``."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The right-most ``X-Forwarded-For`` entry that is not a trusted proxy, when
    the direct peer is one; else the peer address.

    :param trusted_proxies: addresses and networks of our own proxies
        (``Settings.trusted_proxies``); empty means no header is believed.
    """
    peer = request.remote or "unknown"
    if not trusted_proxies:
        return peer[:MAX_ADDRESS]
    networks = _networks(trusted_proxies)
    nearest = _parse(peer)
    if nearest is None or not _trusted(nearest, networks):
        return peer[:MAX_ADDRESS]
    hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
    for hop in reversed(hops):
        if not hop.strip():
            continue
        address = _parse(hop)
        if address is None:
            # A trusted proxy did not write this: the last hop we can vouch for is
            # the one that handed it over.
            break
        nearest = address
        if not _trusted(address, networks):
            break
    return str(nearest)[:MAX_ADDRESS]
