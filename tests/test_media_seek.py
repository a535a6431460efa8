"""Seekable recordings: the worker asks the sender for a keyframe every
``keyframe_interval`` seconds, so the WebM holds a seek point (a cue) that
often; without it the sender's keyframes are the first and those asked for after a loss. Real
aiortc peers send to two in-process workers at once, one with the interval
and one without; the files are read back and seeked with PyAV."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
import redis.asyncio as aioredis

from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory
from tests.media_harness import Browser, open_visit
from tests.test_media_recording import finished, job

SECONDS = 8.0
INTERVAL = 2.0


def keyframes_and_seek(path: Path, to: float) -> tuple[list[float], float]:
    """Times of the video keyframes, and where a seek to ``to`` seconds lands."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.time_base is not None
        base = float(video.time_base)
        keys = [float(p.pts) * base for p in container.demux(video) if p.pts is not None and p.is_keyframe]
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        container.seek(round(to / base), stream=video, backward=True, any_frame=False)
        landed = next(p.pts for p in container.demux(video) if p.pts is not None)
        assert landed is not None
        return keys, float(landed) * base


async def record(start_worker: WorkerFactory, redis: aioredis.Redis, settings: Settings, interval: float) -> Path:
    worker = await start_worker(keyframe_interval=interval)
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(job(visit, await browser.offer())))
        await browser.wait_connected()
        folder = settings.recordings_dir / "c1" / visit
        async with asyncio.timeout(10):
            while not (folder / "recording-patient-1.webm").exists():
                await asyncio.sleep(0.05)
        await asyncio.sleep(SECONDS)  # the length of the recording, not a wait for something to happen
    finally:
        await browser.close()
    await finished(folder, 1)
    return folder / "recording-patient-1.webm"


async def test_recordings_hold_a_seek_point_every_interval(start_worker: WorkerFactory, redis: aioredis.Redis, settings: Settings) -> None:
    steady, once = await asyncio.gather(record(start_worker, redis, settings, INTERVAL), record(start_worker, redis, settings, 0.0))
    keys, landed = await asyncio.to_thread(keyframes_and_seek, steady, SECONDS - 2)
    gaps = [b - a for a, b in zip(keys, keys[1:], strict=False)]
    assert len(keys) >= SECONDS / INTERVAL - 1, keys
    assert max(gaps) < INTERVAL + 1.0, keys  # asked every INTERVAL s, answered within a round trip (or asked again)
    assert SECONDS - 2 - INTERVAL - 1.0 <= landed <= SECONDS - 2, (landed, keys)
    # Without the interval the sender (libvpx: a keyframe every ~100 s) gives the first, and
    # another only when something asks (a lost packet's PLI): fewer seek points.
    keys_once, _ = await asyncio.to_thread(keyframes_and_seek, once, SECONDS - 2)
    assert keys_once[0] < 0.5 and len(keys_once) < len(keys), (keys_once, keys)
