"""Chart browser benchmark: the list of a clinic with many charts.

    python -m bench.charts --visits 10000 [--requests 300] [--dir DIR]

Creates ``--visits`` sealed chart folders (``visit.json``, a short chat, the
FHIR export and the manifest, as the node writes them) for one clinic in a
fresh folder, rebuilds the chart index in a private redis-server from those
folders (as :mod:`telemed.chart.index` keeps it when the node writes a
chart), starts one ``telemed serve`` node on them and asks it, over HTTP with
a nurse's token, for random pages of 50 (``GET /api/charts?page=N``) and for
name searches (``GET /api/charts?q=<part of a surname>``), one at a time.
Each request is audited by the node, as in production. DIR is where the
folders go (default: the system's temp folder; use the recordings disk to
measure that disk).

Prints as its last line::

    charts: visits=… page_p50_ms=… page_p99_ms=… search_p50_ms=… search_p99_ms=… index_s=… create_s=…
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from telemed import chart
from telemed.chart.index import ChartList, folder_summaries
from telemed.redis_client import redis_client
from telemed.redis_server import RedisServer, free_port
from telemed.settings import Secret
from telemed.tokens import Role, mint

SECRET = Secret("bench-secret-" + "c" * 40)
CLINIC = "bench"
FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gustav", "Hana", "Ines", "Jomo", "Kai", "Lena", "Mateo",
         "Noor", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tove"]
LAST = ["Abara", "Brennan", "Castillo", "Dubois", "Eriksen", "Fontaine", "Gallagher", "Haddad", "Ivanova", "Jensen",
        "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi", "Santos", "Tanaka"]
DOCTORS = [(f"d{i}", f"Dr {FIRST[i]} {LAST[-i - 1]}") for i in range(8)]


def visit_record(i: int, rng: random.Random, t0: float) -> dict[str, object]:
    created = t0 + i * 90.0
    doctor = DOCTORS[i % len(DOCTORS)]
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return {
        "format": 1, "id": f"v{i:06d}", "clinic": CLINIC, "state": "ended", "end_reason": "completed",
        "reason": "bench", "acuity": 1 + i % 5, "triage": None,
        "consent": {"visit": True, "recording": False, "version": "1", "at": created + 5},
        "participants": [{"role": "patient", "sub": f"p{i}", "name": name},
                         {"role": "doctor", "sub": doctor[0], "name": doctor[1]}],
        "times": {"created": created, "checked_in": created + 5, "admitted": created + 30, "ended": created + 600},
        "history": [],
    }


def create(root: Path, visits: int) -> None:
    """``visits`` sealed chart folders under ``root/CLINIC``."""
    rng = random.Random(12)
    t0 = time.time() - visits * 90.0
    for i in range(visits):
        record = visit_record(i, rng, t0)
        where = chart.visit_folder(root, CLINIC, str(record["id"]))
        where.mkdir(parents=True)
        chart.write_json(where / chart.VISIT, record)
        chart.append_chat(where, [{"id": f"{int(t0 * 1000) + i}-0", "client_id": "c", "at": t0, "role": "patient",
                                   "sub": f"p{i}", "name": "", "text": "hello"}])
        chart.seal(where, "http://bench.test")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(url: str, visits: int, requests: int) -> tuple[list[float], list[float]]:
    nurse = mint(SECRET, role=Role.NURSE, name="Bench Nurse", clinic=CLINIC, sub="n1", ttl=3600)[0]
    headers = {"Authorization": f"Bearer {nurse}"}
    rng = random.Random(7)
    pages, searches = [], []
    async with aiohttp.ClientSession() as http:
        async def timed(query: str) -> float:
            start = time.perf_counter()
            async with http.get(f"{url}/api/charts?{query}", headers=headers) as r:
                body = await r.json()
                assert r.status == 200, body
            took = (time.perf_counter() - start) * 1000
            assert body["charts"] or "q=" in query, query
            return took

        for _ in range(5):  # warm up (connections, scripts)
            await timed("page=1")
        last_page = max(1, -(-visits // 50))
        for _ in range(requests):
            pages.append(await timed(f"page={rng.randint(1, last_page)}"))
            searches.append(await timed(f"q={rng.choice(LAST)[:5].lower()}"))
    return pages, searches


async def run(root: Path, visits: int, requests: int) -> str:
    start = time.perf_counter()
    await asyncio.to_thread(create, root, visits)
    create_s = time.perf_counter() - start
    with RedisServer(root / ".redis") as redis_server:
        redis = redis_client(redis_server.url)
        start = time.perf_counter()
        index = ChartList(redis)
        for record in await asyncio.to_thread(folder_summaries, root, CLINIC):
            await index.add(record)
        index_s = time.perf_counter() - start
        await redis.aclose()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_")}
        env.update(TELEMED_SECRET=SECRET.reveal(), REDIS_URL=redis_server.url, TELEMED_PORT=str(port),
                   TELEMED_PUBLIC_URL=url, TELEMED_RECORDINGS_DIR=str(root),
                   TELEMED_LOG_LEVEL=os.environ.get("BENCH_NODE_LOG", "WARNING"))
        node = subprocess.Popen([sys.executable, "-m", "telemed.cli", "serve"], env=env)
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(200):
                    try:
                        async with http.get(f"{url}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            pages, searches = await measure(url, visits, requests)
        finally:
            node.terminate()
            node.wait(timeout=30)
    return (f"charts: visits={visits} page_p50_ms={statistics.median(pages):.1f} page_p99_ms={percentile(pages, 99):.1f} "
            f"search_p50_ms={statistics.median(searches):.1f} search_p99_ms={percentile(searches, 99):.1f} "
            f"index_s={index_s:.1f} create_s={create_s:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.charts", description=__doc__.split("\n\n")[0])
    p.add_argument("--visits", type=int, default=10000, help="sealed chart folders to create (default 10000)")
    p.add_argument("--requests", type=int, default=300, help="timed requests of each kind (default 300)")
    p.add_argument("--dir", type=Path, default=None, help="folder for the chart folders")
    args = p.parse_args(argv)
    if args.visits < 1 or args.requests < 1:
        p.error("--visits and --requests must be at least 1")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(asyncio.run(run(Path(tmp), args.visits, args.requests)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
