"""The client address behind proxies: X-Forwarded-For believed only from our own proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from signaling._address import client_address, parse_networks
from telemed import keys
from telemed.exceptions import ConfigError
from telemed.settings import Settings
from tests.conftest import ORIGIN, SECRET, free_port

Echo = Callable[..., Awaitable[str]]


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    """A real server (reached from 127.0.0.1) answering with the client address it
    derives for the given trusted proxies."""
    trusted: list[tuple[str, ...]] = [()]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=client_address(request, trusted[0]))

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    http = aiohttp.ClientSession()

    async def ask(proxies: tuple[str, ...], *forwarded: str) -> str:
        trusted[0] = proxies
        headers = [("X-Forwarded-For", value) for value in forwarded]
        async with http.get(f"http://127.0.0.1:{port}/", headers=headers) as r:
            return await r.text()

    yield ask
    await http.close()
    await runner.cleanup()


async def test_an_untrusted_peer_is_its_own_address_whatever_it_forwards(echo: Echo) -> None:
    assert await echo((), "203.0.113.9") == "127.0.0.1"
    assert await echo(("10.0.0.0/8",), "203.0.113.9") == "127.0.0.1"


async def test_behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client(echo: Echo) -> None:
    assert await echo(("127.0.0.1",), "198.51.100.1, 203.0.113.9") == "203.0.113.9", "the left entry is forged"
    # Several proxies of ours: skipped from the right.
    assert await echo(("127.0.0.0/8", "10.0.0.0/8"), "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    # Several headers are one list, in order.
    assert await echo(("127.0.0.1",), "198.51.100.1", "203.0.113.9") == "203.0.113.9"
    # Proxies that write a port.
    assert await echo(("127.0.0.1",), "203.0.113.9:51000") == "203.0.113.9"
    assert await echo(("127.0.0.1",), "[2001:db8::7]:443") == "2001:db8::7"


async def test_a_trusted_proxy_with_nothing_or_garbage_forwarded(echo: Echo) -> None:
    assert await echo(("127.0.0.1",)) == "127.0.0.1"
    # Garbage our proxy did not write: the nearest hop we can vouch for.
    assert await echo(("127.0.0.0/8", "10.0.0.0/8"), "evil, 10.1.2.3") == "10.1.2.3"
    # Only our own addresses: the left-most of them.
    assert await echo(("127.0.0.0/8", "10.0.0.0/8"), "10.0.0.5, 10.1.2.3") == "10.0.0.5"


def test_bad_proxy_lists_and_the_old_setting_are_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="TELEMED_TRUSTED_PROXIES"):
        parse_networks(["10.0.0.0/8", "proxy.example"])
    with pytest.raises(ConfigError, match="TELEMED_TRUSTED_PROXIES"):
        Settings(trusted_proxies=("nonsense",), secret=SECRET, redis_url="redis://127.0.0.1:1/0").check()
    with pytest.raises(ConfigError, match="TELEMED_TRUSTED_PROXIES"):
        Settings.from_env({"TELEMED_TRUST_FORWARDED": "1"})
    s = Settings.from_env({"TELEMED_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"})
    assert s.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")


async def walk_in(http: aiohttp.ClientSession, node: str, forwarded: str) -> int:
    async with http.post(f"{node}/api/clinics/open/walk-in", json={"name": "Bo"}, headers={"X-Forwarded-For": forwarded}) as r:
        return r.status


async def test_walk_in_limit_counts_the_real_client_behind_our_proxy(start_node, settings: Settings) -> None:
    node = await start_node(settings.with_(walk_in_clinics=("open",), walk_in_per_minute=2, trusted_proxies=("127.0.0.1",)))
    async with aiohttp.ClientSession() as http:
        # One client forging a new left-most entry each time is still one client.
        assert [await walk_in(http, node, f"198.51.100.{i}, 203.0.113.9") for i in range(3)] == [201, 201, 429]
        # Another client behind the same proxy has its own allowance.
        assert await walk_in(http, node, "203.0.113.10") == 201


async def test_walk_in_limit_ignores_forwarded_addresses_from_anyone_else(start_node, settings: Settings) -> None:
    node = await start_node(settings.with_(walk_in_clinics=("open",), walk_in_per_minute=2))
    async with aiohttp.ClientSession() as http:
        statuses = [await walk_in(http, node, f"203.0.113.{i}") for i in range(3)]
    assert statuses == [201, 201, 429], "a client cannot dodge the limit by inventing addresses"


async def bad_sign_in(node: str, forwarded: str) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            node,
            auth={"token": "not-a-token"},
            namespaces=["/queue"],
            transports=["websocket"],
            headers={"Origin": ORIGIN, "X-Forwarded-For": forwarded},
            wait_timeout=5,
        )
    await sio.disconnect()


async def test_failed_sign_ins_count_against_the_real_client(start_node, settings: Settings, redis: aioredis.Redis) -> None:
    trusting = await start_node(settings.with_(trusted_proxies=("127.0.0.0/8",)))
    await bad_sign_in(trusting, "198.51.100.1, 203.0.113.9")
    assert await redis.get(keys.auth_failures("203.0.113.9")) == "1"
    assert await redis.get(keys.auth_failures("198.51.100.1")) is None
    assert await redis.get(keys.auth_failures("127.0.0.1")) is None

    untrusting = await start_node(settings)
    await bad_sign_in(untrusting, "203.0.113.9")
    assert await redis.get(keys.auth_failures("127.0.0.1")) == "1"
    assert await redis.get(keys.auth_failures("203.0.113.9")) == "1"
