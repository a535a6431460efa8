"""Snapshots: asked through Redis like a node would, answered by the worker
holding the leg with a JPEG of the bars in the chart, within a second."""

from __future__ import annotations

import asyncio
import json
import time

import cv2
import pytest
import redis.asyncio as aioredis

from media.worker import Worker
from telemed.exceptions import Conflict, NotFound
from telemed.media_protocol import MediaClient
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.media_harness import Browser, bar_errors, open_visit


async def connect(worker: Worker, browser: Browser, visit: str, role: str, sub: str) -> None:
    job = {"job": f"j-{role}", "visit": visit, "clinic": "c1", "role": role, "sub": sub, "sdp": await browser.offer()}
    await browser.accept(await worker.handle_offer(job))
    await browser.wait_connected()


async def test_snapshot_of_the_bars_is_a_jpeg_of_the_bars_and_blur_lowers_sharpness(
    redis: aioredis.Redis, settings: Settings, worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    sharp, blurred = Browser(size=(640, 480)), Browser(size=(640, 480), blur=True)
    media = MediaClient(redis)
    try:
        await connect(worker, sharp, visit, "patient", "p1")
        await connect(worker, blurred, visit, "doctor", "d1")
        await asyncio.sleep(1)
        timings, taken = [], []
        for role in ("patient", "doctor", "patient"):
            started = time.monotonic()
            taken.append(await media.snapshot(visit, role))
            timings.append(time.monotonic() - started)
        shots = {"patient": taken[0], "doctor": taken[1]}
    finally:
        await sharp.close()
        await blurred.close()
    assert max(timings) < 1.0, timings

    folder = settings.recordings_dir / "c1" / visit
    image = cv2.imread(str(folder / shots["patient"]["file"]))
    assert image.shape == (480, 640, 3)
    assert max(bar_errors(image)) < 40
    assert (shots["patient"]["width"], shots["patient"]["height"]) == (640, 480)
    # Variance of the Laplacian drops for the blurred camera; brightness is the same scene's.
    assert shots["doctor"]["sharpness"] < shots["patient"]["sharpness"] / 5, shots
    assert abs(shots["doctor"]["brightness"] - shots["patient"]["brightness"]) < 10
    assert 80 < shots["patient"]["brightness"] < 160

    chart = json.loads((folder / "recordings.json").read_text())
    assert [(s["id"], s["role"]) for s in chart["snapshots"]] == [
        (t["id"], role) for t, role in zip(taken, ("patient", "doctor", "patient"), strict=True)]
    assert not [p for p in (folder / "snapshots").iterdir() if p.suffix != ".jpg"]  # no temp files left


async def test_snapshot_needs_a_live_leg_with_video(redis: aioredis.Redis, settings: Settings, worker: Worker) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    media = MediaClient(redis)
    with pytest.raises(NotFound):
        await media.snapshot(visit, "patient")
    voice_only = Browser(video=False)
    try:
        await connect(worker, voice_only, visit, "patient", "p1")
        with pytest.raises(Conflict, match="no video"):
            await media.snapshot(visit, "patient")
    finally:
        await voice_only.close()
