"""Abuse limits: per-connection event rate."""

from __future__ import annotations

import asyncio

from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import token


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
