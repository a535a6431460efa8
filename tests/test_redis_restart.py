"""Redis restarted (with AOF) under a running node: state comes back, the node
reconnects on its own, and clients catch up on what they missed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, get_status, token
from tests.peer import client_id

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}


async def until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_redis_restart_keeps_queue_and_chat_and_the_node_recovers(start_node, settings: Settings, tmp_path: Path, connect) -> None:
    with RedisServer(tmp_path / "r", appendfsync="always") as redis_server:
        node = await start_node(settings.with_(redis_url=redis_server.url))
        other = await start_node(settings.with_(redis_url=redis_server.url))
        nurse = await connect(other, token(Role.NURSE))
        visits = []
        for _ in range(3):
            vid, ptok = await create_visit(node, token(Role.NURSE))
            p = await connect(node, ptok)
            await p.ok("/queue", "check_in", CHECK_IN)
            visits.append((vid, p))
        await nurse.ok("/queue", "triage", {"visit_id": visits[2][0], "acuity": 1})
        acked = []
        for i in range(5):
            acked.append((await nurse.ok("/chat", "send", {"visit_id": visits[0][0], "client_id": f"m{i}", "text": f"m{i}"}))["id"])
        before = [v["visit_id"] for v in (await nurse.ok("/queue", "get_queue"))["queue"]]

        patient0 = visits[0][1]
        patient0.clear()
        redis_server.stop()
        down = await nurse.call("/queue", "get_queue", {})
        assert down["ok"] is False and down["error"]["code"] == "unavailable"
        async with aiohttp.ClientSession() as http:
            assert await get_status(http, f"{node}/readyz") == 503
            redis_server.start()

            async def ready() -> bool:
                return await get_status(http, f"{node}/readyz") == 200

            await until(ready)
        # Every client is told to catch up, and patients get their place again.
        await nurse.wait_for("/chat", "resync", timeout=10)
        await patient0.wait_for("/queue", "resync", timeout=10)
        assert (await patient0.wait_for("/queue", "position", timeout=10))["position"] == 2
        after = [v["visit_id"] for v in (await nurse.ok("/queue", "get_queue"))["queue"]]
        assert after == before
        history = (await nurse.ok("/chat", "history", {"visit_id": visits[0][0]}))["messages"]
        assert [m["id"] for m in history] == acked

        # Fan-out across nodes works again: a message sent on one node reaches the other.
        patient = visits[0][1]
        patient.clear()

        async def delivered() -> bool:
            await nurse.call("/chat", "send", {"visit_id": visits[0][0], "client_id": client_id(), "text": "after"})
            await asyncio.sleep(0.2)
            return any(m["text"] == "after" for m in patient.events[("/chat", "message")])

        await until(delivered)
