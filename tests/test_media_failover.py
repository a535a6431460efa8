"""A worker that dies mid-visit costs a gap, not the visit: real worker
processes take offers from the Redis stream; one is SIGKILLed, the browser
re-offers, the other continues in the next file; SIGTERM finishes a file."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
import redis.asyncio as aioredis

from telemed import keys as telemed_keys
from telemed.media_protocol import Job, MediaClient
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.media_harness import Browser, EmitLog, decode_recording, open_visit, spawn_worker

pytestmark = pytest.mark.slow


@pytest.fixture
async def processes() -> AsyncIterator[list[subprocess.Popen[Any]]]:
    procs: list[subprocess.Popen[Any]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def offer_through_redis(media: MediaClient, emits: EmitLog, browser: Browser, visit: str, job: str) -> None:
    """What the node does with a browser's offer: queue it, relay the answer."""
    await media.submit(Job(job=job, visit=visit, clinic="c1", role="patient", sub="p1", sdp=await browser.offer(), consent=True))
    reply = await emits.wait_for("leg_answer", room=f"leg:{job}", namespace="/media")
    assert reply["data"]["ok"], reply
    await browser.accept(reply["data"]["sdp"])
    await browser.wait_connected()


async def test_sigkilled_worker_leaves_a_playable_file_and_another_continues(
    redis: aioredis.Redis, redis_server: RedisServer, settings: Settings, tmp_path: Path,
    processes: list[subprocess.Popen[Any]],
) -> None:
    recordings = settings.recordings_dir
    workers = {}
    for name in ("wa", "wb"):
        workers[name] = await spawn_worker(redis_server.url, recordings, name, log=tmp_path / f"{name}.log")
        processes.append(workers[name])
    visit = await open_visit(WaitingRoom(redis, settings))
    media = MediaClient(redis)
    emits = await EmitLog(redis_server.url, telemed_keys.SOCKETIO_CHANNEL).start()
    first = Browser()
    second: Browser | None = None
    try:
        await offer_through_redis(media, emits, first, visit, "j1")
        await emits.wait_for("recording", room=f"media:{visit}")
        leg = await media.leg(visit, "patient")
        assert leg is not None
        doomed, survivor = leg["worker"], ({"wa", "wb"} - {leg["worker"]}).pop()
        await asyncio.sleep(10)

        workers[doomed].send_signal(signal.SIGKILL)
        killed_at = time.time()
        workers[doomed].wait()
        # The page sees its leg fail and re-offers, with the same camera and microphone.
        await first.close()
        second = first.again()
        await offer_through_redis(media, emits, second, visit, "j2")
        leg = await media.leg(visit, "patient")
        assert leg is not None and leg["worker"] == survivor
        await asyncio.sleep(4)

        # SIGTERM: the survivor finishes its file properly and exits cleanly.
        workers[survivor].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(workers[survivor].wait, 20) == 0
    finally:
        await first.close()
        if second is not None:
            await second.close()
        await emits.close()

    folder = recordings / "c1" / visit
    chart = json.loads((folder / "recordings.json").read_text())
    one, two = chart["recordings"]
    assert (one["file"], one["state"], one["worker"]) == ("recording-patient-1.webm", "interrupted", doomed)
    assert (two["file"], two["state"], two["worker"]) == ("recording-patient-2.webm", "complete", survivor)
    assert two["end_reason"] == "worker stopping"
    assert two["gap_before"] > 0 and two["started_at"] >= one["ended_at"]

    # The killed worker's file plays up to at most 3 s before the kill.
    got1 = await asyncio.to_thread(decode_recording, folder / one["file"])
    recorded_until = one["started_at"] + got1.duration
    assert killed_at - recorded_until <= 3, killed_at - recorded_until
    assert got1.duration >= 7
    assert got1.counters == sorted(set(got1.counters))
    assert abs(one["duration"] - got1.duration) < 0.1  # the chart says what the file holds

    # The next file continues the same camera, after the gap, and was finished (index, duration).
    got2 = await asyncio.to_thread(decode_recording, folder / two["file"])
    assert not got2.errors
    assert got2.counters[0] > got1.counters[-1]
    assert got2.duration > 3
    with av.open(str(folder / two["file"])) as container:
        assert container.duration is not None and abs(container.duration / 1e6 - got2.duration) < 0.1
    assert not await redis.exists(f"tm:media:leg:{{{visit}}}:patient")
