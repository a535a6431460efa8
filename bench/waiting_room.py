"""Waiting-room benchmark: one node, one Redis, N patients plus nurses and doctors.

    python -m bench.waiting_room --patients 2000 --seconds 60

Starts a private redis-server and one ``telemed serve`` node (a separate
process, so its CPU and memory are its own), connects the patients, then for
``--seconds`` runs check-ins, acuity changes, admits, ends, leaves and chat.
Prints as its last line:

    waiting_room: patients=N p50_update_ms=… p99_update_ms=… chat_msgs_per_s=… chat_lost=… rss_mb=…

update = from sending a queue change to a patient receiving the position
update that carries that change's queue version. chat_lost = acknowledged
messages missing from the stored history (must be 0).

The load generator uses a small Socket.IO client over aiohttp websockets
(``bench/_sio.py``) rather than python-socketio's, so that thousands of
simulated patients cost the generator little and the figures are the node's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench._sio import MiniClient
from telemed.redis_server import RedisServer, free_port
from telemed.settings import Secret
from telemed.tokens import Role, mint

SECRET = Secret("bench-secret-" + "b" * 40)
CLINIC = "bench"
CHECK_IN = {"reason": "bench", "consent_visit": True, "consent_recording": False}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    def __init__(
        self, url: str, patients: int, seconds: float, http: aiohttp.ClientSession, rates: dict[str, float]
    ) -> None:
        self.url = url
        self.rates = rates
        self.n = patients
        self.seconds = seconds
        self.http = http
        self.sent_at: dict[int, float] = {}  # queue version -> when the change that made it was sent
        self.updates: list[tuple[int, float]] = []  # (version, received at)
        self.acked: dict[str, set[str]] = {}
        self.chat_sent = 0
        self.acks: list[float] = []
        self.lags: list[float] = []
        self.patients: dict[str, MiniClient] = {}
        self.tokens: dict[str, str] = {}

    def staff(self, role: Role, i: int) -> str:
        return mint(SECRET, role=role, name=f"{role.value}{i}", clinic=CLINIC, sub=f"{role.value}{i}", ttl=3600)[0]

    async def new_patient(self) -> tuple[str, MiniClient]:
        headers = {"Authorization": f"Bearer {self.staff(Role.NURSE, 0)}"}
        async with self.http.post(f"{self.url}/api/visits", json={}, headers=headers) as r:
            body = await r.json()
        vid, tok = body["visit_id"], body["patient_link"].split("#t=")[1]
        client = MiniClient(self.url, tok, ["/queue", "/chat"], self.http)
        client.on("/queue", "position", lambda d: self.updates.append((d["version"], time.monotonic())))
        await client.connect()
        self.patients[vid] = client
        self.acked[vid] = set()
        return vid, client

    async def check_in(self, vid: str, client: MiniClient) -> None:
        t = time.monotonic()
        reply = await client.call("/queue", "check_in", CHECK_IN)
        if reply.get("ok"):
            self.sent_at[reply["version"]] = t

    async def change(self, client: MiniClient, event: str, data: dict[str, object]) -> dict[str, object]:
        t = time.monotonic()
        reply = await client.call("/queue", event, data)
        self.acks.append((time.monotonic() - t) * 1000)
        if reply.get("ok") and reply.get("version") is not None:
            self.sent_at[int(reply["version"])] = t  # type: ignore[arg-type]
        return reply

    async def chat(self, vid: str, client: MiniClient, n: int) -> None:
        cid = f"{vid[:8]}-{n}"
        self.chat_sent += 1
        reply = await client.call("/chat", "send", {"visit_id": vid, "client_id": cid, "text": f"message {n}"})
        if reply.get("ok"):
            self.acked[vid].add(cid)

    async def setup(self) -> None:
        """Connect and check in the patients, connect the staff."""
        sem = asyncio.Semaphore(50)

        async def join() -> None:
            async with sem:
                vid, client = await self.new_patient()
                await self.check_in(vid, client)

        await asyncio.gather(*(join() for _ in range(self.n)))
        self.nurses = [MiniClient(self.url, self.staff(Role.NURSE, i), ["/queue", "/chat"], self.http) for i in range(4)]
        self.doctors = [MiniClient(self.url, self.staff(Role.DOCTOR, i), ["/queue"], self.http) for i in range(4)]
        for c in self.nurses + self.doctors:
            await c.connect()
        await asyncio.sleep(2.0)  # let the joining pushes drain

    async def run(self) -> dict[str, float]:
        """The load: changes and chat at the configured rates for ``seconds``."""
        nurses, doctors = self.nurses, self.doctors
        self.updates.clear()
        self.sent_at.clear()

        stop = time.monotonic() + self.seconds
        rng = random.Random(1)
        rates = self.rates

        async def every(rate: float, action) -> None:  # type: ignore[no-untyped-def]
            """Start ``action`` ``rate`` times a second (not waiting for each)."""
            if rate <= 0:
                return
            pending: set[asyncio.Task[None]] = set()
            next_at = time.monotonic()
            async def guarded() -> None:
                try:
                    await action()
                except (TimeoutError, ConnectionError, KeyError, IndexError):
                    pass  # the patient picked was admitted or left meanwhile: not acknowledged

            while time.monotonic() < stop:
                task = asyncio.ensure_future(guarded())
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += 1 / rate
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*pending, return_exceptions=True)

        chat_n = itertools.count()

        async def triage() -> None:
            nurse = rng.choice(nurses)
            vid = rng.choice(list(self.patients))
            await self.change(nurse, "triage", {"visit_id": vid, "acuity": rng.randint(1, 5)})

        async def admit_and_end() -> None:
            doctor = rng.choice(doctors)
            reply = await self.change(doctor, "admit", {})
            if reply.get("ok"):
                vid = reply["visit"]["visit_id"]  # type: ignore[index]
                await self.retire(vid)
                await asyncio.sleep(rng.uniform(0.5, 2.0))
                await self.change(doctor, "end", {"visit_id": vid})

        async def leave() -> None:
            vid = rng.choice(list(self.patients))
            client = self.patients[vid]
            await self.change(client, "leave", {})
            await self.retire(vid)

        async def arrive() -> None:
            if len(self.patients) < self.n:
                vid, client = await self.new_patient()
                await self.check_in(vid, client)

        async def chat() -> None:
            n = next(chat_n)
            vid = rng.choice(list(self.patients))
            if n % 2:
                await self.chat(vid, self.patients[vid], n)
            else:
                await self.chat(vid, nurses[n % len(nurses)], n)

        async def lag_monitor() -> None:
            """How late this process's own loop runs (it inflates every figure)."""
            while time.monotonic() < stop:
                t = time.monotonic()
                await asyncio.sleep(0.01)
                self.lags.append((time.monotonic() - t - 0.01) * 1000)

        await asyncio.gather(
            lag_monitor(),
            every(rates["triage"], triage),
            every(rates["admits"], admit_and_end),
            every(rates["leaves"], leave),
            every(rates["admits"] + rates["leaves"], arrive),
            every(rates["chat"], chat),
        )
        await asyncio.sleep(1.0)  # let the last updates and acks land

        latencies = [
            (received - self.sent_at[version]) * 1000
            for version, received in self.updates
            if version in self.sent_at and received >= self.sent_at[version]
        ]
        lost = 0
        for c in nurses + doctors:
            if c.ws is None or c.ws.closed:
                print(f"staff socket closed during the run: {c.close_reason} {c.ws.close_code if c.ws else ''}", file=sys.stderr)
        for vid, cids in self.acked.items():
            if cids:
                stored = await self.history(nurses[0], vid)
                lost += len(cids - stored)
        for c in list(self.patients.values()) + nurses + doctors:
            await c.close()
        q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
        return {
            "p50_update_ms": q[49],
            "p99_update_ms": q[98],
            "updates": len(latencies),
            "chat_msgs_per_s": sum(len(c) for c in self.acked.values()) / self.seconds,
            "chat_lost": lost,
        }

    async def retire(self, vid: str) -> None:
        """The patient is no longer waiting (admitted or left): stop counting them."""
        client = self.patients.pop(vid, None)
        if client is not None:
            await client.close()

    async def history(self, nurse: MiniClient, vid: str) -> set[str]:
        stored: set[str] = set()
        after = None
        while True:
            page = await nurse.call("/chat", "history", {"visit_id": vid, **({"after": after} if after else {})})
            stored |= {m["client_id"] for m in page["messages"]}
            if not page["more"]:
                return stored
            after = page["messages"][-1]["id"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    # Defaults: a very large clinic network (2000 waiting, ~100 doctors on
    # 10-minute visits admit ~0.17/s) with a 3x margin; see docs/benchmarks.md.
    parser.add_argument("--triage-per-s", type=float, default=1, help="acuity changes per second (nurses)")
    parser.add_argument("--admits-per-s", type=float, default=0.5, help="admits per second (each visit ends 0.5-2 s later)")
    parser.add_argument("--leaves-per-s", type=float, default=0.25, help="patients leaving the queue per second")
    parser.add_argument("--chat-per-s", type=float, default=50, help="chat messages per second (half from patients)")
    args = parser.parse_args()
    rates = {"triage": args.triage_per_s, "admits": args.admits_per_s, "leaves": args.leaves_per_s, "chat": args.chat_per_s}

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
        env.update(
            TELEMED_SECRET=SECRET.reveal(),
            REDIS_URL=redis.url,
            TELEMED_PORT=str(port),
            TELEMED_PUBLIC_URL=url,
            TELEMED_LOG_LEVEL=os.environ.get("BENCH_NODE_LOG", "WARNING"),
            TELEMED_EVENT_RATE="1000",
            TELEMED_EVENT_BURST="1000",
        )
        node = subprocess.Popen([sys.executable, "-m", "telemed.cli", "serve"], env=env)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                for _ in range(100):
                    try:
                        async with http.get(f"{url}/readyz") as r:
                            ready = r.status == 200
                        if ready:
                            break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                bench = Bench(url, args.patients, args.seconds, http, rates)
                peak = 0.0

                async def sample() -> None:
                    nonlocal peak
                    while True:
                        peak = max(peak, rss_mb(node.pid))
                        await asyncio.sleep(0.5)

                sampler = asyncio.ensure_future(sample())
                await bench.setup()
                profiler = None
                if os.environ.get("BENCH_PROFILE"):  # BENCH_PROFILE=/tmp/node.txt: py-spy's raw stacks
                    profiler = subprocess.Popen(
                        ["py-spy", "record", "--pid", str(node.pid), "--format", "raw",
                         "-o", os.environ["BENCH_PROFILE"], "--nonblocking"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )
                cpu0, own0, t0 = cpu_seconds(node.pid), time.process_time(), time.monotonic()
                result = await bench.run()
                wall = time.monotonic() - t0
                sampler.cancel()
                if profiler is not None:
                    profiler.send_signal(2)
                    profiler.wait(timeout=30)
                print(
                    f"under load: node cpu {100 * (cpu_seconds(node.pid) - cpu0) / wall:.0f}% of a core, "
                    f"generator {100 * (time.process_time() - own0) / wall:.0f}%, "
                    f"{result['updates']} updates, change acks p50 {statistics.median(bench.acks):.0f} ms "
                    f"max {max(bench.acks):.0f} ms, generator loop lag p99 "
                    f"{statistics.quantiles(bench.lags, n=100)[98]:.0f} ms",
                    file=sys.stderr,
                )
        finally:
            node.terminate()
            node.wait(timeout=15)
    print(
        f"waiting_room: patients={args.patients} p50_update_ms={result['p50_update_ms']:.1f} "
        f"p99_update_ms={result['p99_update_ms']:.1f} chat_msgs_per_s={result['chat_msgs_per_s']:.1f} "
        f"chat_lost={result['chat_lost']} rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
