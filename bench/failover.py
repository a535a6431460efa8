"""Redis Sentinel failover under load: how long writes stop, and what is lost.

    python -m bench.failover --before 5 --after 10

Starts a redis-server primary and replica (``--replicas``), three sentinels
(``redis-server --sentinel``, down after ``--down-after-ms``), and two
``telemed serve`` nodes configured through ``REDIS_SENTINELS`` with
``TELEMED_REDIS_MIN_REPLICAS=1``: every process dies with this one. Real
Socket.IO clients (python-socketio) on both nodes send chat messages and queue
changes (triage, and new patients checking in), each sent again until it is
answered, with the same client id, as the web pages do. After ``--before``
seconds the primary is SIGKILLed; once the sentinels have promoted the replica,
the old primary is started again as its replica (what a restart policy does;
with one replica, acknowledgements wait for it). Traffic goes on for
``--after`` seconds after writes are accepted again; then every chat stream and
the queue are read from the new primary. Prints as its last line:

    failover: replicas=1 min_replicas=1 down_after_ms=1000 ack_p50_ms=… promoted_s=… writes_ok_s=… acked=… acked_lost=0 duplicates=0 queue_order_ok=1 unavailable=…

ack_p50_ms = a chat message's acknowledgement before the kill, median (with
``--min-replicas 0`` it does not wait for the replica: the cost of ``WAIT``);
promoted_s = primary killed → every sentinel names the new primary;
writes_ok_s = primary killed → the first chat message sent after the kill is
acknowledged (by the replicas too); acked = chat messages acknowledged over the
whole run; acked_lost = of them, missing from the new primary's streams (must
be 0); duplicates = client ids stored more than once (must be 0);
queue_order_ok = the queue on the new primary is in the order the
acknowledged changes make; unavailable = attempts answered ``unavailable`` (or
not answered) and sent again.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio

from telemed import keys
from telemed.redis_sentinel import SERVER_ARGS, SentinelGroup
from telemed.redis_server import RedisServer, _die_with_parent, free_port
from telemed.replication import Replication
from telemed.settings import Secret, Settings
from telemed.tokens import Role, mint

SECRET = Secret("bench-secret-" + "f" * 40)
CLINIC = "failover"
ORIGIN = "http://failover.bench"
CHECK_IN = {"reason": "bench", "consent_visit": True, "consent_recording": False}
QUEUED = {"waiting", "in_triage", "ready"}
DEFAULT_ACUITY = 3


def staff_token(role: Role, i: int) -> str:
    return mint(SECRET, role=role, name=f"{role.value}{i}", clinic=CLINIC, sub=f"{role.value}{i}", ttl=3600)[0]


def start_nodes(group: SentinelGroup, tmp: Path, replicas: int, wait_ms: int) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    urls, nodes = [], []
    for i in range(2):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEMED_", "REDIS_"))}
        env.update(
            TELEMED_SECRET=SECRET.reveal(),
            REDIS_SENTINELS=group.addresses,
            REDIS_SENTINEL_MASTER=group.master,
            TELEMED_REDIS_MIN_REPLICAS=str(replicas),
            TELEMED_REDIS_WAIT_MS=str(wait_ms),
            TELEMED_PORT=str(port),
            TELEMED_PUBLIC_URL=ORIGIN,
            TELEMED_ALLOWED_ORIGINS=ORIGIN,
            TELEMED_RECORDINGS_DIR=str(tmp / f"recordings{i}"),
            TELEMED_LOG_LEVEL=os.environ.get("BENCH_NODE_LOG", "CRITICAL"),
            # The clients retry every 50 ms while writes are refused: more than a page would.
            TELEMED_EVENT_RATE="1000",
            TELEMED_EVENT_BURST="1000",
        )
        nodes.append(subprocess.Popen([sys.executable, "-m", "telemed.cli", "serve"], env=env, preexec_fn=_die_with_parent()))
        urls.append(f"http://127.0.0.1:{port}")
    return urls, nodes


async def ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        await asyncio.sleep(0.05)


class Load:
    """The clients and what they were told."""

    def __init__(self, urls: list[str], http: aiohttp.ClientSession, interval: float) -> None:
        self.urls = urls
        self.http = http
        self.clients: list[socketio.AsyncClient] = []
        self.acked: dict[str, tuple[str, float]] = {}  # client id -> (visit, acknowledged at)
        self.sent_at: dict[str, float] = {}  # client id -> first sent at
        self.checked_in: list[str] = []
        self.acuity: dict[str, int] = {}
        self.unavailable = 0
        self.ack_ms: list[float] = []  # chat acknowledgements before the kill
        self.killed: float | None = None
        self.interval = interval
        self.stop = asyncio.Event()

    async def client(self, url: str, token: str, namespaces: list[str]) -> socketio.AsyncClient:
        while True:
            sio = socketio.AsyncClient(reconnection=False)
            try:
                await sio.connect(url, auth={"token": token}, namespaces=namespaces, transports=["websocket"],
                                  headers={"Origin": ORIGIN}, wait_timeout=5)
            except socketio.exceptions.ConnectionError:
                self.unavailable += 1
                await asyncio.sleep(0.1)
                continue
            self.clients.append(sio)
            return sio

    async def answered(self, sio: socketio.AsyncClient, namespace: str, event: str, data: Any) -> dict[str, Any]:
        """Send until the answer is not ``unavailable`` (a lost answer counts as one)."""
        while True:
            try:
                reply: dict[str, Any] = await sio.call(event, data, namespace=namespace, timeout=5)
            except socketio.exceptions.TimeoutError:
                reply = {"ok": False, "error": {"code": "unavailable"}}
            if reply["ok"] or reply["error"]["code"] != "unavailable":
                return reply
            self.unavailable += 1
            await asyncio.sleep(0.05)

    async def new_patient(self, url: str) -> tuple[str, socketio.AsyncClient]:
        while True:
            async with self.http.post(f"{url}/api/visits", json={},
                                      headers={"Authorization": f"Bearer {staff_token(Role.NURSE, 0)}"}) as r:
                if r.status == 201:
                    data = await r.json()
                    break
                if r.status != 503:
                    raise RuntimeError(f"creating a visit: {r.status} {await r.text()}")
            self.unavailable += 1
            await asyncio.sleep(0.05)
        sio = await self.client(url, data["patient_link"].split("#t=", 1)[1], ["/queue", "/chat"])
        reply = await self.answered(sio, "/queue", "check_in", CHECK_IN)
        # A retry of a check-in that was made (its answer lost, or not confirmed) is a conflict.
        if not reply["ok"] and reply["error"].get("details", {}).get("state") not in QUEUED:
            raise RuntimeError(f"check-in refused: {reply}")
        self.checked_in.append(data["visit_id"])
        return data["visit_id"], sio

    async def chat(self, sio: socketio.AsyncClient, visit: str, tag: str) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            cid = f"{tag}-{n}"
            self.sent_at[cid] = time.monotonic()
            reply = await self.answered(sio, "/chat", "send", {"visit_id": visit, "client_id": cid, "text": f"{tag} {n}"})
            if not reply["ok"]:
                raise RuntimeError(f"chat refused: {reply}")
            self.acked[cid] = (visit, time.monotonic())
            if self.killed is None:
                self.ack_ms.append((self.acked[cid][1] - self.sent_at[cid]) * 1000)
            await asyncio.sleep(self.interval)

    async def triage(self, nurse: socketio.AsyncClient, visits: list[str]) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            visit, acuity = visits[n % len(visits)], 1 + (n * 7) % 5
            reply = await self.answered(nurse, "/queue", "triage", {"visit_id": visit, "acuity": acuity})
            if not reply["ok"]:
                raise RuntimeError(f"triage refused: {reply}")
            self.acuity[visit] = acuity
            await asyncio.sleep(0.05)

    async def arrivals(self, url: str) -> None:
        while not self.stop.is_set():
            await self.new_patient(url)
            await asyncio.sleep(0.2)

    def expected_queue(self) -> list[str]:
        order = self.checked_in
        return sorted(order, key=lambda v: (self.acuity.get(v, DEFAULT_ACUITY), order.index(v)))

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


async def run(args: argparse.Namespace, group: SentinelGroup, urls: list[str]) -> str:
    async with aiohttp.ClientSession() as http:
        for url in urls:
            await until(lambda url=url: ready(http, url))
        load = Load(urls, http, args.interval)
        nurses = [await load.client(url, staff_token(Role.NURSE, i), ["/queue", "/chat"]) for i, url in enumerate(urls)]
        patients = [await load.new_patient(urls[i % 2]) for i in range(args.senders)]
        first = [visit for visit, _ in patients]
        tasks = [asyncio.create_task(load.chat(nurses[i % 2], visit, f"n{i}")) for i, visit in enumerate(first)]
        tasks += [asyncio.create_task(load.chat(sio, visit, f"p{i}")) for i, (visit, sio) in enumerate(patients)]
        tasks += [asyncio.create_task(load.triage(nurses[0], first)), asyncio.create_task(load.arrivals(urls[1]))]
        try:
            await asyncio.sleep(args.before)
            old = await group.master_port()
            killed = load.killed = time.monotonic()
            group.server(old).stop(kill=True)
            new = await group.wait_new_master(old)
            promoted = time.monotonic() - killed
            group.rejoin(old, new)

            async def written() -> bool:
                return any(sent >= killed and cid in load.acked for cid, sent in load.sent_at.items())

            await until(written)
            writes_ok = min(at for cid, (_, at) in load.acked.items() if load.sent_at[cid] >= killed) - killed
            await asyncio.sleep(args.after)
        finally:
            load.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.result()  # a refusal other than unavailable is a failure of the benchmark
        await load.close()

    direct = aioredis.Redis(port=new, decode_responses=True)
    try:
        stored: Counter[str] = Counter()
        for visit in first:
            for _, fields in await direct.xrange(keys.chat(visit)):
                stored[fields["cid"]] += 1
        queue = await direct.zrange(keys.queue(CLINIC), 0, -1)
    finally:
        await direct.aclose()
    lost = sum(1 for cid in load.acked if cid not in stored)
    duplicates = sum(1 for n in stored.values() if n > 1)
    order_ok = int(queue == load.expected_queue())
    print(
        f"killed 127.0.0.1:{old}; 127.0.0.1:{new} promoted after {promoted:.2f} s; {len(load.checked_in)} patients "
        f"checked in, {len(load.acked)} messages acknowledged",
        file=sys.stderr,
    )
    return (
        f"failover: replicas={args.replicas} min_replicas={args.min_replicas} down_after_ms={args.down_after_ms} "
        f"ack_p50_ms={statistics.median(load.ack_ms):.1f} promoted_s={promoted:.2f} writes_ok_s={writes_ok:.2f} "
        f"acked={len(load.acked)} acked_lost={lost} duplicates={duplicates} queue_order_ok={order_ok} "
        f"unavailable={load.unavailable}"
    )


async def wait_cost(writes: int) -> str:
    """The cost of ``WAIT``: scripted writes through :class:`Replication`, with
    0 and 1 replicas required, against a primary and its replica."""
    with tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp:
        primary = RedisServer(Path(tmp) / "p", args=SERVER_ARGS).start()
        replica = RedisServer(Path(tmp) / "r", args=(*SERVER_ARGS, "--replicaof", "127.0.0.1", str(primary.port)))
        try:
            replica.start()
            client = aioredis.Redis(port=primary.port, decode_responses=True)
            while (await client.info("replication")).get("slave0", {}).get("state") != "online":
                await asyncio.sleep(0.05)
            script = client.register_script("return redis.call('INCR', KEYS[1])")
            ms = {}
            for replicas in (0, 1):
                replication = Replication(client, Settings(redis_min_replicas=replicas, redis_wait_ms=1000))
                t0 = time.perf_counter()
                for _ in range(writes):
                    await replication.eval(script, ["bench:wait"], [])
                ms[replicas] = (time.perf_counter() - t0) / writes * 1000
            await client.aclose()
        finally:
            replica.stop()
            primary.stop()
    return f"wait_cost: writes={writes} ms_per_write_no_wait={ms[0]:.3f} ms_per_write_wait={ms[1]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=float, default=5.0, help="seconds of traffic before the primary is killed")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of traffic after writes are accepted again")
    parser.add_argument("--senders", type=int, default=4, help="patients chatting (each with a nurse who answers)")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between one sender's messages")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--down-after-ms", type=int, default=1000, help="Sentinel's down-after-milliseconds")
    parser.add_argument("--min-replicas", type=int, default=1, help="TELEMED_REDIS_MIN_REPLICAS of the nodes (0: no WAIT)")
    parser.add_argument("--wait-ms", type=int, default=500, help="TELEMED_REDIS_WAIT_MS of the nodes")
    parser.add_argument("--wait-cost", type=int, default=0, metavar="N",
                        help="instead: time N scripted writes with and without WAIT (no failover)")
    args = parser.parse_args()
    if args.wait_cost:
        print(asyncio.run(wait_cost(args.wait_cost)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        with SentinelGroup(Path(tmp) / "redis", replicas=args.replicas, down_after_ms=args.down_after_ms) as group:
            urls, nodes = start_nodes(group, Path(tmp), args.min_replicas, args.wait_ms)
            try:
                line = asyncio.run(run(args, group, urls))
            finally:
                for node in nodes:
                    node.terminate()
                for node in nodes:
                    try:
                        node.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        node.kill()
    print(line)


if __name__ == "__main__":
    main()
