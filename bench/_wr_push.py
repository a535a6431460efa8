"""The node's CPU for one position push round at N patients, without sockets:

    python -m bench._wr_push --patients 5000

A private redis-server with N checked-in patients, four doctors on duty (two
in visits) and ten visit lengths; a :class:`~signaling.notifier.QueueNotifier`
holding every patient, whose sockets are stand-ins that take the frame and
write nothing (so the figure is the push's own work: the positions script
call, the estimates, the comparisons with what was sent, the packets and the
checks of ``_fanout.write_now``, not the kernel's writes, ~10 µs each on the
development machine). Each round admits the first patient (everyone behind
moves up: N updates) and pushes, then pushes again with nothing changed (the
fixed part of every round). CPU is the process's, so the figure does not
depend on what else the machine runs as much as ``bench.waiting_room``'s
do. To compare commits, run it from a worktree of each (PYTHONPATH). Last line:

    wr_push: patients=N full_push_cpu_ms=… unchanged_push_cpu_ms=… (median of --rounds)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from signaling.notifier import QueueNotifier
from telemed import _gc, keys
from telemed.redis_server import RedisServer
from telemed.settings import Secret, Settings
from telemed.waiting_room import WaitingRoom

CLINIC = "c"


class _Transport:
    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        pass


class _Socket:
    """What ``_fanout.write_now`` looks at of an idle engine.io socket."""

    closing = closed = upgrading = False
    last_ping = None

    def __init__(self, idle_writer: asyncio.Future[Any]) -> None:
        response = type("Response", (), {"_writer": type("Writer", (), {"transport": _Transport()})(),
                                         "closed": False, "compress": 0})()
        self.telemed_ws = type("WS", (), {"_sock": response})()
        self.queue = type("Queue", (), {"_getters": [idle_writer], "empty": lambda self: True})()


class _Hub:
    def __init__(self, redis: Any, settings: Settings, room: WaitingRoom) -> None:
        self.redis, self.settings, self.room = redis, settings, room
        eio = type("Eio", (), {"sockets": {}, "ping_timeout": 20, "_async": {}, "telemed_fanout": True})()
        manager = type("Manager", (), {"eio_sid_from_sid": lambda self, sid, namespace: "e" + sid})()
        self.sio = type("Sio", (), {"eio": eio, "manager": manager})()
        self.metrics = type("Metrics", (), {"set_queue_length": lambda self, clinic, n: None})()


async def run(url: str, patients: int, rounds: int) -> str:
    redis = aioredis.from_url(url, decode_responses=True)
    settings = Settings(secret=Secret("bench-" + "x" * 44), redis_url=url, public_url="http://bench",
                        recordings_dir=Path(tempfile.gettempdir()) / "wr-push")
    room = WaitingRoom(redis, settings)
    ids: list[str] = []
    limit = asyncio.Semaphore(100)

    async def arrive(i: int) -> None:
        async with limit:
            visit = await room.create(CLINIC)
            await room.check_in(visit.id, patient_sub=f"p{i}", patient_name="P", reason="bench", consent_recording=False)
            ids.append(visit.id)

    await asyncio.gather(*(arrive(i) for i in range(patients + rounds + 2)))
    now_ms = time.time() * 1000
    await redis.zadd(keys.doctors_on_duty(CLINIC), {f"d{d}": now_ms for d in range(4)})
    await redis.rpush(keys.durations(CLINIC), *[400 + 30 * x for x in range(10)])
    for d in range(2):
        await room.admit(CLINIC, doctor=f"d{d}", doctor_name="D")
    hub = _Hub(redis, settings, room)
    notifier = QueueNotifier(hub)  # type: ignore[arg-type]
    idle = asyncio.get_running_loop().create_future()
    for vid in ids:
        notifier.patient_joined(CLINIC, vid, vid)
        hub.sio.eio.sockets["e" + vid] = _Socket(idle)
    await notifier._push_positions_now(CLINIC)  # everyone's first position
    full, unchanged = [], []
    for i in range(rounds):
        await room.admit(CLINIC, doctor=f"d{i % 4}", doctor_name="D")  # the first patient: everyone moves up
        cpu = time.process_time()
        await notifier._push_positions_now(CLINIC)
        full.append((time.process_time() - cpu) * 1000)
        cpu = time.process_time()
        await notifier._push_positions_now(CLINIC)
        unchanged.append((time.process_time() - cpu) * 1000)
    await redis.aclose()
    return (f"wr_push: patients={patients} full_push_cpu_ms={statistics.median(full):.1f} "
            f"unchanged_push_cpu_ms={statistics.median(unchanged):.1f} (median of {rounds})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    _gc.tune()  # as the node
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp)) as server:
        import uvloop

        print(uvloop.run(run(server.url, args.patients, args.rounds)))


if __name__ == "__main__":
    main()
