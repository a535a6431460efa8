"""The node's Socket.IO manager (signaling/_redis_manager.py): what it overrides
of python-socketio is the pinned version's, the room index behaves as
python-socketio's room scan, and node-to-node notices are taken off the channel
before python-socketio sees them. Redis restarts: tests/test_redis_restart.py."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from signaling import _redis_manager
from signaling._redis_manager import PatchedSourceChanged, RedisManager
from telemed.redis_server import RedisServer


def test_it_overrides_the_methods_it_was_written_against() -> None:
    # An upgrade of python-socketio that changes one of them makes this fail:
    # re-check the overrides against the new code, then update REPLACES.
    assert _redis_manager.original_digests() == _redis_manager.REPLACES
    _redis_manager.check()
    assert RedisManager("redis://127.0.0.1:1", channel="t").indexed


def test_a_changed_original_is_a_clear_error_and_the_stock_scan_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_redis_manager.REPLACES, "get_rooms", "0" * 64)
    with pytest.raises(PatchedSourceChanged, match=r"changed BaseManager\.get_rooms, which signaling/_redis_manager\.py"):
        _redis_manager.check()
    monkeypatch.setattr(_redis_manager, "_INDEXED", None)
    manager = RedisManager("redis://127.0.0.1:1", channel="t")
    assert not manager.indexed
    assert scenario(manager) == scenario(socketio.AsyncManager())


def plain(manager: Any) -> dict[str, Any]:
    """The manager's state, comparable across implementations."""
    return {
        "rooms": {ns: {room: dict(members) for room, members in rooms.items()} for ns, rooms in manager.rooms.items()},
        "callbacks": sorted(manager.callbacks),
        "pending_connect": copy.deepcopy(manager.pending_connect),
        "pending_disconnect": copy.deepcopy(manager.pending_disconnect),
    }


def scenario(manager: Any) -> list[Any]:
    """The same connects, joins, leaves and disconnects; what the manager says after each."""
    ids = itertools.count()
    manager.server = SimpleNamespace(eio=SimpleNamespace(generate_id=lambda: f"s{next(ids)}"))

    async def run() -> list[Any]:
        seen: list[Any] = []
        a = await manager.connect("ea", "/q")  # connected
        b = await manager.pre_connect("eb", "/q")  # still connecting
        c = await manager.connect("ec", "/q")
        d = await manager.connect("ed", "/other")
        for sid, room in ((a, "r1"), (a, "r2"), (a, "r3"), (b, "r1"), (c, "r2"), (d, "r1")):
            manager.basic_enter_room(sid, "/q" if sid != d else "/other", room)
        manager.basic_leave_room(a, "/q", "r3")
        manager.basic_leave_room(a, "/q", "not-a-room")
        manager._generate_ack_id(a, lambda *args: None)
        manager.pre_disconnect(c, "/q")
        seen.append([sorted(manager.get_rooms(s, ns)) for s, ns in ((a, "/q"), (b, "/q"), (c, "/q"), (d, "/other"), (d, "/q"))])
        seen.append(plain(manager))
        for sid, ns in ((a, "/q"), (b, "/q"), (c, "/q"), ("nobody", "/q"), (a, "/nowhere")):
            manager.basic_disconnect(sid, ns)
            seen.append(plain(manager))
            seen.append(sorted(manager.get_rooms(sid, ns)))
        manager.basic_close_room("r1", "/other")
        seen.append(plain(manager))
        manager.basic_disconnect(d, "/other")
        seen.append(plain(manager))
        return seen

    return asyncio.run(run())


@pytest.mark.parametrize(
    "make", [lambda: RedisManager("redis://127.0.0.1:1", channel="t"), socketio.AsyncManager], ids=["replacement", "original"]
)
def test_rooms_behave_like_the_original(make: Any) -> None:
    manager = make()
    seen = scenario(manager)
    assert seen[0] == [["r1", "r2", "s0"], ["r1", "s1"], ["r2", "s2"], ["r1", "s3"], []]
    assert seen[1]["callbacks"] == ["s0"] and seen[1]["pending_connect"] == {"/q": ["s1"]}
    assert seen[1]["pending_disconnect"] == {"/q": ["s2"]}
    after_a = seen[2]
    assert after_a["rooms"]["/q"] == {None: {"s1": "eb", "s2": "ec"}, "s1": {"s1": "eb"}, "s2": {"s2": "ec"},
                                      "r1": {"s1": "eb"}, "r2": {"s2": "ec"}}
    assert after_a["callbacks"] == [] and seen[3] == []
    after_b, after_c = seen[4], seen[6]
    assert after_b["pending_connect"] == {} and "r1" not in after_b["rooms"]["/q"]
    assert after_c["pending_disconnect"] == {} and "/q" not in after_c["rooms"]
    assert seen[-2]["rooms"] == {"/other": {None: {"s3": "ed"}, "s3": {"s3": "ed"}}}
    assert seen[-1]["rooms"] == {}
    if isinstance(manager, RedisManager):
        assert manager._rooms_of == {}  # the index emptied with the rooms


def test_the_replacement_and_the_original_agree() -> None:
    assert scenario(RedisManager("redis://127.0.0.1:1", channel="t")) == scenario(socketio.AsyncManager())


@pytest.fixture
async def listening(redis_server: RedisServer) -> AsyncIterator[tuple[RedisManager, aioredis.Redis, asyncio.Queue[Any]]]:
    manager = RedisManager(redis_server.url, channel="test-notices")
    received: asyncio.Queue[Any] = asyncio.Queue()
    notices: list[tuple[str, dict[str, Any]]] = []

    async def on_internal(kind: str, data: dict[str, Any]) -> None:
        notices.append((kind, data))
        await received.put(("notice", kind, data))

    manager.on_internal = on_internal

    async def listen() -> None:
        async for message in manager._listen():
            await received.put(("message", message))

    task = asyncio.create_task(listen())
    client = aioredis.from_url(redis_server.url)
    while await client.pubsub_numsub("test-notices") != [(b"test-notices", 1)]:  # subscribed
        await asyncio.sleep(0.01)
    yield manager, client, received
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await manager.close()
    await client.aclose()


async def test_notices_go_to_on_internal_and_emits_to_python_socketio(
    listening: tuple[RedisManager, aioredis.Redis, asyncio.Queue[Any]],
) -> None:
    manager, client, received = listening
    other = RedisManager("redis://unused", channel="test-notices")
    other._publisher = client
    await other.publish_internal("queue_changed", {"clinic": "c1"})
    assert await asyncio.wait_for(received.get(), 5) == ("notice", "queue_changed", {"clinic": "c1"})

    await manager.publish_internal("queue_changed", {"clinic": "own"})  # a node's own notice is not for itself
    await client.publish("test-notices", b"not json")  # ignored
    emit = {"method": "emit", "event": "position", "data": [{"p": 1}], "namespace": "/queue", "room": "r",
            "host_id": other.host_id}
    await client.publish("test-notices", json.dumps(emit))  # the sentinel: after the others, on the same channel
    assert await asyncio.wait_for(received.get(), 5) == ("message", emit)  # decoded once, for python-socketio
    assert received.empty()
