"""Waiting-room benchmark: one Redis, one or more nodes, N patients plus nurses and doctors.

    python -m bench.waiting_room --patients 5000 --seconds 30
    python -m bench.waiting_room --patients 5000 --nodes 2

Starts a private redis-server and ``--nodes`` ``telemed serve`` processes
(each its own process, so CPU and memory figures are each node's), connects
the patients (spread over the nodes with no load balancer: each patient picks
one), then for ``--seconds`` runs check-ins, acuity changes, admits, ends,
leaves and chat. Prints as its last line:

    waiting_room: patients=N nodes=K p50_update_ms=… p99_update_ms=… chat_msgs_per_s=… chat_lost=… rss_mb=… node_cpu_pct=…

update = from sending a queue change to a patient receiving the position
update that carries that change's queue version. chat_lost = acknowledged
messages missing from the stored history (must be 0). rss_mb and
node_cpu_pct (of one core, over the run) are per node, separated by ``/``.

The generator: the patients live in ``--client-procs`` processes of their own
(``bench/_wr_patients.py``), so this process, which sends the staff's changes
and times them, is not the one receiving thousands of updates per change; the
clients speak Socket.IO on a bare asyncio protocol (``bench/_sio.py``) and
time each update when its bytes arrive, before parsing it.

``BENCH_PROFILE=/tmp/node.txt`` records the first node with py-spy (raw
stacks); ``BENCH_DUMP=/tmp/wr.json`` writes every change's send time and every
update's arrival (``time.monotonic()``, the clock of every process here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bench._sio import MiniClient
from bench._wr_common import CLINIC, SECRET, Recorder, every, lag_monitor, staff_token
from telemed import keys
from telemed.redis_server import RedisServer, free_port
from telemed.tokens import Role


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quantiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=100) if len(values) > 1 else [0.0] * 99


class Staff:
    """The nurses and doctors (in this process): triage, admits and ends, nurse chat."""

    def __init__(self, urls: list[str], redis: Any, *, deflate: bool = False) -> None:
        self.redis = redis
        self.rec = Recorder()
        self.nurses = [
            MiniClient(urls[i % len(urls)], staff_token(Role.NURSE, i), ["/queue", "/chat"], deflate=deflate) for i in range(4)
        ]
        self.doctors = [
            MiniClient(urls[i % len(urls)], staff_token(Role.DOCTOR, i), ["/queue"], deflate=deflate) for i in range(4)
        ]

    async def connect(self) -> None:
        for c in self.nurses + self.doctors:
            await c.connect()

    async def queued(self) -> str:
        """A patient waiting now (any of them, whichever process holds them)."""
        vid: str | None = await self.redis.zrandmember(keys.queue(CLINIC))
        if vid is None:
            raise KeyError("nobody waiting")
        return vid

    async def run(self, stop: float, rates: dict[str, float]) -> None:
        rng = random.Random(1)
        chat_n = itertools.count()

        async def triage() -> None:
            vid = await self.queued()
            await self.rec.change(rng.choice(self.nurses), "triage", {"visit_id": vid, "acuity": rng.randint(1, 5)})

        async def admit_and_end() -> None:
            doctor = rng.choice(self.doctors)
            reply = await self.rec.change(doctor, "admit", {})
            if reply.get("ok"):
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                await self.rec.change(doctor, "end", {"visit_id": reply["visit"]["visit_id"]})

        async def chat() -> None:
            n = next(chat_n)
            await self.rec.chat(await self.queued(), self.nurses[n % len(self.nurses)], f"n-{n}")

        await asyncio.gather(
            lag_monitor(stop, self.rec.lags),
            every(stop, rates["triage"], triage),
            every(stop, rates["admits"], admit_and_end),
            every(stop, rates["chat"], chat),
        )

    async def history(self, vid: str) -> set[str]:
        stored: set[str] = set()
        after = None
        nurses = itertools.cycle(self.nurses)
        while True:
            page = await next(nurses).call("/chat", "history", {"visit_id": vid, **({"after": after} if after else {})})
            if not page.get("ok", True):
                if page["error"]["code"] not in ("rate_limited", "unavailable"):
                    raise RuntimeError(f"chat history of a visit: {page['error']['message']}")
                await asyncio.sleep(0.1)  # thousands of visits to read back (the per-socket event limit)
                continue
            stored |= {m["client_id"] for m in page["messages"]}
            if not page["more"]:
                return stored
            after = page["messages"][-1]["id"]

    async def chat_lost(self, acked: dict[str, set[str]]) -> int:
        lost = 0
        for vid, cids in acked.items():
            if cids:
                lost += len(cids - await self.history(vid))
        return lost

    async def close(self) -> None:
        for c in self.nurses + self.doctors:
            if c.closed:
                print(f"staff socket closed during the run: {c.close_reason}", file=sys.stderr)
            await c.close()


async def start_patients(urls: list[str], n: int, procs: int, deflate: bool) -> list[asyncio.subprocess.Process]:
    shares = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench._wr_patients", "--urls", ",".join(urls), "--share", str(share),
            "--index", str(i), "--procs", str(procs), *(["--deflate"] if deflate else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 30,
        )
        for i, share in enumerate(shares)
    ]
    for child in children:
        assert child.stdout is not None
        line = await child.stdout.readline()
        if not line:
            raise RuntimeError("a patient process failed to start (see its error above)")
        json.loads(line)["ready"]
    return children


async def run(args: argparse.Namespace, urls: list[str], nodes: list[subprocess.Popen[bytes]], redis_url: str) -> str:
    rates = {"triage": args.triage_per_s, "admits": args.admits_per_s, "leaves": args.leaves_per_s, "chat": args.chat_per_s}
    redis = aioredis.from_url(redis_url, decode_responses=True)
    children = await start_patients(urls, args.patients, args.client_procs, args.deflate)
    staff = Staff(urls, redis, deflate=args.deflate)
    await staff.connect()
    await asyncio.sleep(2.0)  # let the joining pushes drain
    peak = [0.0] * len(nodes)

    async def sample() -> None:
        while True:
            peak[:] = [max(p, rss_mb(n.pid)) for p, n in zip(peak, nodes, strict=True)]
            await asyncio.sleep(0.5)

    sampler = asyncio.ensure_future(sample())
    profiler = None
    if os.environ.get("BENCH_PROFILE"):  # BENCH_PROFILE=/tmp/node.txt: py-spy's raw stacks of the first node
        profiler = subprocess.Popen(
            ["py-spy", "record", "--pid", str(nodes[0].pid), "--format", "raw", "-o", os.environ["BENCH_PROFILE"],
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    cpu0 = [cpu_seconds(n.pid) for n in nodes]
    own0, t0 = time.process_time(), time.monotonic()
    stop = t0 + args.seconds
    per_child = {**rates, "leaves": rates["leaves"] / args.client_procs, "admits": rates["admits"] / args.client_procs,
                 "chat": rates["chat"] / 2 / args.client_procs}
    for i, child in enumerate(children):
        assert child.stdin is not None
        child.stdin.write(json.dumps({"run": {"stop": stop, "rates": per_child, "seed": 100 + i}}).encode() + b"\n")
        await child.stdin.drain()
    await staff.run(stop, {**rates, "chat": rates["chat"] / 2})
    await asyncio.sleep(1.0)  # let the last updates and acks land
    wall = time.monotonic() - t0
    node_cpu = [100 * (cpu_seconds(n.pid) - c) / wall for n, c in zip(nodes, cpu0, strict=True)]
    own_cpu = time.process_time() - own0
    sampler.cancel()
    if profiler is not None:
        profiler.send_signal(2)
        profiler.wait(timeout=30)
    merged = Recorder()
    merged.merge(staff.rec.to_json())
    child_cpu, child_lag_p99 = 0.0, 0.0
    for child in children:
        assert child.stdout is not None
        done = json.loads(await child.stdout.readline())["done"]
        merged.merge(done)
        child_cpu += done["cpu_s"]
        child_lag_p99 = max(child_lag_p99, quantiles(done["lags"])[98])
    latencies = [
        (arrived - merged.sent_at[version]) * 1000
        for version, arrived in merged.updates
        if version in merged.sent_at and arrived >= merged.sent_at[version]
    ]
    if os.environ.get("BENCH_DUMP"):  # BENCH_DUMP=/tmp/wr.json: every change's send time and every update's arrival
        Path(os.environ["BENCH_DUMP"]).write_text(json.dumps({"sent_at": merged.sent_at, "updates": merged.updates}))
    lost = await staff.chat_lost(merged.acked)
    await staff.close()
    for child in children:
        await child.wait()
    await redis.aclose()
    q = quantiles(latencies)
    print(
        f"under load: node cpu {' / '.join(f'{c:.0f}' for c in node_cpu)}% of a core, generator "
        f"{100 * (own_cpu + child_cpu) / wall:.0f}% ({args.client_procs} patient processes), {len(latencies)} updates, "
        f"change acks p50 {statistics.median(merged.acks):.0f} ms max {max(merged.acks):.0f} ms, generator loop lag "
        f"p99 {quantiles(staff.rec.lags)[98]:.0f} ms (staff) {child_lag_p99:.0f} ms (patients); "
        f"ran from monotonic {t0:.1f} to {stop:.1f}",
        file=sys.stderr,
    )
    chat_per_s = sum(len(c) for c in merged.acked.values()) / args.seconds
    return (
        f"waiting_room: patients={args.patients} nodes={len(nodes)} p50_update_ms={q[49]:.1f} "
        f"p99_update_ms={q[98]:.1f} chat_msgs_per_s={chat_per_s:.1f} chat_lost={lost} "
        f"rss_mb={'/'.join(f'{p:.0f}' for p in peak)} node_cpu_pct={'/'.join(f'{c:.0f}' for c in node_cpu)}"
    )


def start_nodes(count: int, redis_url: str, tmp: Path, extra_env: list[str]) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    urls, nodes = [], []
    for _ in range(count):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
        env.update(
            TELEMED_SECRET=SECRET.reveal(),
            REDIS_URL=redis_url,
            TELEMED_PORT=str(port),
            TELEMED_PUBLIC_URL=url,
            TELEMED_RECORDINGS_DIR=str(tmp / "recordings"),
            TELEMED_LOG_LEVEL=os.environ.get("BENCH_NODE_LOG", "WARNING"),
            TELEMED_EVENT_RATE="1000",
            TELEMED_EVENT_BURST="1000",
        )
        env.update(item.split("=", 1) for item in extra_env)  # type: ignore[misc]
        nodes.append(subprocess.Popen([sys.executable, "-m", "telemed.cli", "serve"], env=env))
        urls.append(url)
    return urls, nodes


async def wait_ready(urls: list[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for url in urls:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/readyz") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the node at {url} did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--nodes", type=int, default=1, help="signaling nodes; each patient connects to one")
    parser.add_argument("--client-procs", type=int, default=2, help="processes holding the simulated patients")
    # Defaults: a very large clinic network (2000 waiting, ~100 doctors on
    # 10-minute visits admit ~0.17/s) with a 3x margin; see docs/benchmarks.md.
    parser.add_argument("--triage-per-s", type=float, default=1, help="acuity changes per second (nurses)")
    parser.add_argument("--admits-per-s", type=float, default=0.5, help="admits per second (each visit ends 0.5-2 s later)")
    parser.add_argument("--leaves-per-s", type=float, default=0.25, help="patients leaving the queue per second")
    parser.add_argument("--chat-per-s", type=float, default=50, help="chat messages per second (half from patients)")
    parser.add_argument("--deflate", action="store_true",
                        help="clients offer permessage-deflate, as browsers do (the node then compresses what it queues)")
    parser.add_argument("--node-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the nodes, e.g. TELEMED_GC_TUNING=off (repeatable)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        urls, nodes = start_nodes(args.nodes, redis.url, Path(tmp), args.node_env)
        try:
            run_loop(wait_ready(urls))
            line = run_loop(run(args, urls, nodes, redis.url))
        finally:
            for node in nodes:
                node.terminate()
            for node in nodes:
                try:
                    node.wait(timeout=15)
                except subprocess.TimeoutExpired:  # a node too busy to stop (a loaded machine): not left behind
                    node.kill()
                    node.wait()
    print(line)


def run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


if __name__ == "__main__":
    main()
