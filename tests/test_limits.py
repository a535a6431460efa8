"""Abuse limits: per-connection event rate."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import ORIGIN, token
from tests.peer import Peer


async def test_a_flood_of_events_is_rate_limited_and_the_connection_survives(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(event_rate=5.0, event_burst=10.0))
    nurse = await connect(node, token(Role.NURSE))
    replies = await asyncio.gather(*(nurse.call("/queue", "get_queue", {}) for _ in range(30)))
    codes = [r["ok"] or r["error"]["code"] for r in replies]
    assert codes.count(True) in range(10, 13), codes  # the burst, plus what refilled meanwhile
    assert set(codes) == {True, "rate_limited"}
    await asyncio.sleep(0.5)
    assert (await nurse.call("/queue", "get_queue", {}))["ok"], "tokens refill: the socket works again"
    assert nurse.sio.connected


async def test_one_token_may_hold_only_so_many_sockets(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(connections_per_token=2))
    tok = token(Role.NURSE)
    first = await connect(node, tok, namespaces=["/queue"])
    await connect(node, tok, namespaces=["/queue"])
    third = Peer(node, tok, origin=ORIGIN, namespaces=["/queue"])
    errors: list[object] = []
    third.sio.on("connect_error", errors.append, namespace="/queue")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect()
    assert errors and errors[0]["data"]["code"] == "rate_limited"
    await first.close()
    await asyncio.sleep(0.2)
    again = await connect(node, tok, namespaces=["/queue"])
    assert again.sio.connected, "a closed socket frees its place"


async def test_an_address_sending_bad_tokens_is_refused_for_a_while(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(auth_failures_per_minute=3))
    for _ in range(3):
        bad = Peer(node, "not-a-token", origin=ORIGIN, namespaces=["/queue"])
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect()
    good = Peer(node, token(Role.NURSE), origin=ORIGIN, namespaces=["/queue"])
    errors: list[object] = []
    good.sio.on("connect_error", errors.append, namespace="/queue")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await good.connect()
    assert errors[0]["data"]["code"] == "rate_limited"
