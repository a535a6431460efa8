"""Redis high availability with real processes: a redis-server primary and
replica, three sentinels (``redis-server --sentinel``), two nodes and a media
worker. The primary is SIGKILLed under chat and queue traffic; the sentinels
promote the replica, nodes and worker follow on their own, clients resync, and
nothing that was acknowledged is lost. And a replica that does not answer
``WAIT``: the change is answered ``unavailable`` and its retry is stored once."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import socketio

from signaling import rooms
from telemed import keys
from telemed.media_protocol import keys as media_keys
from telemed.redis_client import redis_client
from telemed.redis_sentinel import SERVER_ARGS, SentinelGroup
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, get_status, token
from tests.peer import Peer, client_id

pytestmark = pytest.mark.slow

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}
QUEUED = {"waiting", "in_triage", "ready"}
DEFAULT_ACUITY = 3


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """Primary, replica and three sentinels (down after 1 s), stopped after the test."""
    with SentinelGroup(tmp_path / "ha", down_after_ms=1000, failover_timeout_ms=3000) as started:
        yield started


def on_sentinels(settings: Settings, group: SentinelGroup) -> Settings:
    return settings.with_(
        redis_url="",
        redis_sentinels=tuple(group.addresses.split(",")),
        redis_sentinel_master=group.master,
        redis_min_replicas=1,
        redis_wait_ms=500,
        event_rate=1000.0,  # the clients below retry as fast as a page would not
        event_burst=1000.0,
    )


async def call(peer: Peer, namespace: str, event: str, data: Any) -> dict[str, Any]:
    """One attempt; a reply that never came counts as ``unavailable``."""
    try:
        reply: dict[str, Any] = await peer.call(namespace, event, data, timeout=5)
    except socketio.exceptions.TimeoutError:
        return {"ok": False, "error": {"code": "unavailable", "message": "no answer"}}
    return reply


class Traffic:
    """Chat and queue changes from real clients, each sent until it is answered,
    recording what was acknowledged (a browser does the same: chat.js re-sends an
    unsent message with its client id)."""

    def __init__(self, nurse: Peer) -> None:
        self.nurse = nurse
        self.chat_acked: dict[str, tuple[str, str]] = {}  # client id -> (visit, stream id)
        self.checked_in: list[str] = []  # in the order the queue got them
        self.acuity: dict[str, int] = {}  # the last acknowledged triage
        self.unavailable = 0
        self.not_saved = 0  # of them, made on a primary without a replica to confirm them
        self.stop = asyncio.Event()

    async def until_answered(self, peer: Peer, namespace: str, event: str, data: Any) -> dict[str, Any]:
        while True:
            reply = await call(peer, namespace, event, data)
            if reply["ok"] or reply["error"]["code"] != "unavailable":
                return reply
            self.unavailable += 1
            self.not_saved += reply["error"]["message"] == "Not saved yet — trying again"
            await asyncio.sleep(0.05)

    async def chat(self, visits: list[str]) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            visit, cid = visits[n % len(visits)], client_id()
            reply = await self.until_answered(self.nurse, "/chat", "send", {"visit_id": visit, "client_id": cid, "text": f"m{n}"})
            assert reply["ok"], reply
            self.chat_acked[cid] = (visit, reply["id"])

    async def triage(self, visits: list[str]) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            visit, acuity = visits[n % len(visits)], 1 + (n * 7) % 5
            reply = await self.until_answered(self.nurse, "/queue", "triage", {"visit_id": visit, "acuity": acuity})
            assert reply["ok"], reply
            self.acuity[visit] = acuity

    async def check_in(self, node: str, connect: Callable[..., Awaitable[Peer]]) -> None:
        """New patients, one after the other: visit created, socket opened, checked in."""
        while not self.stop.is_set():
            visit, ptok = await self.create(node)
            patient = await self.open(node, ptok, connect)
            reply = await self.until_answered(patient, "/queue", "check_in", CHECK_IN)
            # A retry of a check-in that was made (not confirmed, or its answer lost) is a conflict.
            assert reply["ok"] or reply["error"].get("details", {}).get("state") in QUEUED, reply
            self.checked_in.append(visit)

    async def create(self, node: str) -> tuple[str, str]:
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.post(f"{node}/api/visits", json={}, headers={"Authorization": f"Bearer {token(Role.NURSE)}"}) as r:
                    if r.status == 201:
                        data = await r.json()
                        return data["visit_id"], data["patient_link"].split("#t=", 1)[1]
                    assert r.status == 503, await r.text()
                self.unavailable += 1
                await asyncio.sleep(0.05)

    async def open(self, node: str, ptok: str, connect: Callable[..., Awaitable[Peer]]) -> Peer:
        while True:
            try:
                return await connect(node, ptok)
            except socketio.exceptions.ConnectionError:
                self.unavailable += 1
                await asyncio.sleep(0.05)

    def expected_queue(self, first: list[str]) -> list[str]:
        """Acuity (untriaged: the default), then arrival."""
        arrivals = first + self.checked_in
        return sorted(arrivals, key=lambda v: (self.acuity.get(v, DEFAULT_ACUITY), arrivals.index(v)))


async def history(peer: Peer, visit: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        payload: dict[str, Any] = {"visit_id": visit}
        if messages:
            payload["after"] = messages[-1]["id"]
        reply = await peer.ok("/chat", "history", payload)
        messages += reply["messages"]
        if not reply["more"]:
            return messages


async def test_a_killed_primary_loses_nothing_acknowledged(
    group: SentinelGroup, start_node, start_worker, settings: Settings, connect
) -> None:
    ha = on_sentinels(settings, group)
    node_a, node_b = await start_node(ha), await start_node(ha)
    worker = await start_worker(redis_url="", redis_sentinels=ha.redis_sentinels, redis_min_replicas=1, heartbeat=0.5)
    nurse = await connect(node_a, token(Role.NURSE))
    first, patients = [], {}
    for node in (node_a, node_b, node_b):
        vid, ptok = await create_visit(node, token(Role.NURSE))
        patients[vid] = await connect(node, ptok)
        await patients[vid].ok("/queue", "check_in", CHECK_IN)
        first.append(vid)
    traffic = Traffic(nurse)
    tasks = [
        asyncio.create_task(traffic.chat(first)),
        asyncio.create_task(traffic.triage(first)),
        asyncio.create_task(traffic.check_in(node_b, connect)),
    ]
    try:
        await until(lambda: _at_least(traffic, chat=20, checked_in=2))
        for p in patients.values():
            p.clear()
        old = await group.master_port()

        group.server(old).stop(kill=True)
        async with aiohttp.ClientSession() as http:
            await until(lambda: _status(http, node_a, 503))  # out of the balancer for the failover
            new = await group.wait_new_master(old)
            # The new primary has no replica: changes are made there but not acknowledged...
            await until(lambda: _true(traffic.not_saved > 0))
            group.rejoin(old, new)  # ...until the old one is back as its replica (a restart policy)
            await until(lambda: _status(http, node_a, 200))
            await until(lambda: _status(http, node_b, 200))
        # Both nodes take changes again, on the new primary.
        chat_after, checked_in_after = len(traffic.chat_acked) + 20, len(traffic.checked_in) + 2
        await until(lambda: _at_least(traffic, chat=chat_after, checked_in=checked_in_after))
    finally:
        traffic.stop.set()
        await asyncio.gather(*tasks)

    # Every client was told to catch up, and patients got their place again.
    for patient in patients.values():
        await patient.wait_for("/queue", "resync", timeout=10)
        await patient.wait_for("/queue", "position", timeout=10)
    await nurse.wait_for("/chat", "resync", timeout=10)

    # Every acknowledged message is there exactly once, under the id its ack gave.
    for vid in first:
        stored = await history(nurse, vid)
        counts = Counter(m["client_id"] for m in stored)
        assert not [cid for cid, n in counts.items() if n > 1], "a message stored twice"
        by_cid = {m["client_id"]: m["id"] for m in stored}
        acked = {cid: mid for cid, (v, mid) in traffic.chat_acked.items() if v == vid}
        assert {cid: by_cid.get(cid) for cid in acked} == acked
    # Every waiting patient is in the right place.
    queue = [v["visit_id"] for v in (await nurse.ok("/queue", "get_queue"))["queue"]]
    assert queue == traffic.expected_queue(first)

    # The fan-out works across nodes again: a message sent on one node reaches a patient on the other.
    other = patients[first[1]]

    async def delivered() -> bool:
        await call(nurse, "/chat", "send", {"visit_id": first[1], "client_id": client_id(), "text": "after"})
        await asyncio.sleep(0.1)
        return any(m["text"] == "after" for m in other.events[("/chat", "message")])

    await until(delivered)

    # The worker follows: its presence is written on the new primary, and its emits reach clients.
    direct = aioredis.Redis(port=new, decode_responses=True)
    try:
        await direct.delete(media_keys.worker(worker.worker_id))
        await until(lambda: _exists(direct, media_keys.worker(worker.worker_id)))
    finally:
        await direct.aclose()

    async def emitted() -> bool:
        await worker.emitter.emit("message", {"text": "from the worker"}, room=rooms.staff("c1"), namespace="/chat")
        await asyncio.sleep(0.1)
        return any(m.get("text") == "from the worker" for m in nurse.events[("/chat", "message")])

    await until(emitted)


async def _at_least(traffic: Traffic, *, chat: int, checked_in: int) -> bool:
    return len(traffic.chat_acked) >= chat and len(traffic.checked_in) >= checked_in


async def _true(value: bool) -> bool:
    return value


async def _status(http: aiohttp.ClientSession, node: str, status: int) -> bool:
    try:
        return await get_status(http, f"{node}/readyz") == status
    except aiohttp.ClientError:
        return False


async def _exists(client: aioredis.Redis, key: str) -> bool:
    return bool(await client.exists(key))


async def test_discoveries_during_a_failover_keep_asking_every_sentinel(group: SentinelGroup, settings: Settings) -> None:
    """Every connection opened during a failover asks the sentinels where the
    primary is, all at once; redis-py's own discovery then loses a sentinel from
    its list (and never closes it). telemed.redis_client.Sentinels does not."""
    client = redis_client(on_sentinels(settings, group))
    sentinels = client.connection_pool.sentinel_manager  # type: ignore[attr-defined]
    old = await group.master_port()
    group.server(old).stop(kill=True)
    while True:
        answers = await asyncio.gather(*(sentinels.discover_master(group.master) for _ in range(20)), return_exceptions=True)
        ports = sorted(s.connection_pool.connection_kwargs["port"] for s in sentinels.sentinels)
        assert ports == sorted(s.port for s in group.sentinels)
        if any(isinstance(a, tuple) and a[1] != old for a in answers):
            break  # promoted
    await client.aclose()
    assert not [c for s in sentinels.sentinels for c in s.connection_pool._available_connections if c.is_connected]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A primary and its replica (no sentinels: ``REDIS_URL`` names the primary)."""
    primary = RedisServer(tmp_path / "p", args=SERVER_ARGS)
    replica = RedisServer(tmp_path / "r", args=(*SERVER_ARGS, "--replicaof", "127.0.0.1", str(primary.port)))
    try:
        primary.start()
        replica.start()
        yield primary, replica
    finally:
        if replica.pid is not None:
            os.kill(replica.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


@pytest.fixture
async def replicated(pair: tuple[RedisServer, RedisServer]) -> AsyncIterator[aioredis.Redis]:
    """A client of the primary, once the replica confirms writes at once (right
    after its first sync, its first confirmation can take up to a second)."""
    client = aioredis.Redis(port=pair[0].port, decode_responses=True)
    await until(lambda: _confirmed(client))
    await client.delete("sync")
    yield client
    await client.aclose()


async def _confirmed(client: aioredis.Redis) -> bool:
    await client.incr("sync")
    return int(await client.execute_command("WAIT", 1, 50)) == 1


async def test_a_replica_that_does_not_confirm_gets_unavailable_and_the_retry_is_stored_once(
    pair: tuple[RedisServer, RedisServer], replicated: aioredis.Redis, start_node, settings: Settings, connect
) -> None:
    primary, replica = pair
    node = await start_node(settings.with_(redis_url=primary.url, redis_min_replicas=1, redis_wait_ms=300))
    nurse = await connect(node, token(Role.NURSE))
    vid, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok)
    await patient.ok("/queue", "check_in", CHECK_IN)
    await nurse.ok("/chat", "send", {"visit_id": vid, "client_id": "before", "text": "confirmed"})

    assert replica.pid is not None
    patient.clear()
    os.kill(replica.pid, signal.SIGSTOP)  # alive, connected, silent: WAIT gets no answer from it
    try:
        send = {"visit_id": vid, "client_id": "c-1", "text": "while the replica sleeps"}
        reply = await nurse.call("/chat", "send", send)
        assert reply["ok"] is False
        assert reply["error"]["code"] == "unavailable"
        assert reply["error"]["message"] == "Not saved yet — trying again"
        triage = await nurse.call("/queue", "triage", {"visit_id": vid, "acuity": 2})
        assert triage["ok"] is False and triage["error"]["code"] == "unavailable"
        # Both are made on the primary (and shown), but not acknowledged.
        assert await replicated.hget(keys.chat_ids(vid), "c-1") is not None
        assert await replicated.hget(keys.visit(vid), "acuity") == "2"
        pushed = await patient.wait_for("/chat", "message")
        async with aiohttp.ClientSession() as http:
            await until(lambda: _status(http, node, 503))  # the replica falls behind: not ready
            again = await nurse.call("/chat", "send", send)
            assert again["ok"] is False and again["error"]["code"] == "unavailable"
            os.kill(replica.pid, signal.SIGCONT)
            await until(lambda: _status(http, node, 200))
    finally:
        os.kill(replica.pid, signal.SIGCONT)

    retried = await nurse.ok("/chat", "send", send)  # the client's retry, same client id
    assert retried["duplicate"] is True and retried["id"] == pushed["id"]  # stored by the first attempt...
    stored = await history(nurse, vid)
    assert [m["client_id"] for m in stored] == ["before", "c-1"]  # ...once
    assert (await nurse.ok("/queue", "triage", {"visit_id": vid, "acuity": 2}))["visit"]["acuity"] == 2
    # And the replica has all of it.
    direct = redis_client(replica.url)
    try:
        assert await direct.hget(keys.chat_ids(vid), "c-1") == retried["id"]
    finally:
        await direct.aclose()
