"""One process of simulated patients for ``bench.waiting_room`` (its share of
them): creates their visits, connects and checks them in, and while the
benchmark runs makes their share of the patients' own traffic (leaving, chat,
new arrivals in place of those admitted or gone), timestamping each position
update as it arrives.

The patients live in processes of their own so that the process sending the
changes (and timing when they were sent) is not the one busy receiving
thousands of updates per change. Times are ``time.monotonic()``, one clock for
every process of the machine.

Spoken with the parent over stdin/stdout, one JSON object a line:
``{"ready": n}`` once connected; then ``{"run": {...}}`` in, ``{"done": {...}}`` out.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
from typing import Any

import aiohttp

from bench._sio import MiniClient
from bench._wr_common import CHECK_IN, Recorder, every, lag_monitor, nurse_token

WAITING = frozenset({"waiting", "in_triage", "ready"})


class Patients:
    def __init__(
        self, urls: list[str], share: int, index: int, procs: int, http: aiohttp.ClientSession, *, deflate: bool = False
    ) -> None:
        self.urls = urls
        self.deflate = deflate
        self.share = share
        self.http = http
        self.rec = Recorder()
        self.clients: dict[str, MiniClient] = {}
        #: k-th patient of this process connects to node (k * procs + index) % nodes
        self._placement = (k * procs + index for k in itertools.count())
        self._retiring: set[asyncio.Task[None]] = set()

    async def new_patient(self) -> tuple[str, MiniClient]:
        url = self.urls[next(self._placement) % len(self.urls)]
        headers = {"Authorization": f"Bearer {nurse_token()}"}
        async with self.http.post(f"{url}/api/visits", json={}, headers=headers) as r:
            body = await r.json()
        vid, tok = body["visit_id"], body["patient_link"].split("#t=")[1]
        client = MiniClient(url, tok, ["/queue", "/chat"], deflate=self.deflate)
        client.on("/queue", "position", lambda d, t: self.rec.updates.append((d["version"], t)))
        client.on("/queue", "visit", lambda d, t: self._visit(vid, d))
        await client.connect()
        return vid, client

    def _visit(self, vid: str, visit: dict[str, Any]) -> None:
        """Admitted (or ended): no longer a waiting patient of this process."""
        if visit.get("state") not in WAITING and visit.get("state") != "created":
            task = asyncio.ensure_future(self.retire(vid))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def arrive(self) -> None:
        vid, client = await self.new_patient()
        t = time.monotonic()
        reply = await client.call("/queue", "check_in", CHECK_IN)
        if reply.get("ok"):
            self.rec.sent(reply["version"], t)
            self.clients[vid] = client
            self.rec.acked[vid] = set()
        else:
            await client.close()

    async def retire(self, vid: str) -> None:
        client = self.clients.pop(vid, None)
        if client is not None:
            await client.close()

    async def setup(self) -> None:
        sem = asyncio.Semaphore(50)

        async def join() -> None:
            async with sem:
                await self.arrive()

        await asyncio.gather(*(join() for _ in range(self.share)))

    async def run(self, stop: float, rates: dict[str, float], seed: int) -> None:
        rng = random.Random(seed)
        chat_n = itertools.count()

        async def leave() -> None:
            vid = rng.choice(list(self.clients))
            await self.rec.change(self.clients[vid], "leave", {})
            await self.retire(vid)

        async def refill() -> None:
            if len(self.clients) < self.share:
                await self.arrive()

        async def chat() -> None:
            vid = rng.choice(list(self.clients))
            await self.rec.chat(vid, self.clients[vid], f"p{seed}-{next(chat_n)}")

        await asyncio.gather(
            lag_monitor(stop, self.rec.lags),
            every(stop, rates["leaves"], leave),
            # twice the rate patients go (admitted or left), so the room stays full
            every(stop, 2 * (rates["admits"] + rates["leaves"]), refill),
            every(stop, rates["chat"], chat),
        )

    async def close(self) -> None:
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", required=True, help="comma-separated node URLs")
    parser.add_argument("--share", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate, as browsers do")
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        patients = Patients(args.urls.split(","), args.share, args.index, args.procs, http, deflate=args.deflate)
        await patients.setup()
        say({"ready": len(patients.clients)})
        order = json.loads(await reader.readline())["run"]
        patients.rec.updates.clear()
        patients.rec.sent_at.clear()
        cpu0 = time.process_time()
        await patients.run(order["stop"], order["rates"], order["seed"])
        cpu = time.process_time() - cpu0
        await asyncio.sleep(1.0)  # the last updates and acks
        say({"done": {**patients.rec.to_json(), "cpu_s": cpu}})
        await patients.close()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main())
    else:
        uvloop.run(main())
