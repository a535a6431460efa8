"""Recording a chart leg without re-encoding: a real aiortc peer sends bars and a
tone over loopback to an in-process worker; the file is read back with PyAV."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from media.worker import Worker
from telemed import keys as telemed_keys
from telemed.media_protocol import keys
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.media_harness import TONE_HZ, Browser, EmitLog, decode_recording, open_visit


@pytest.fixture
async def emits(redis_server: RedisServer) -> AsyncIterator[EmitLog]:
    log = await EmitLog(redis_server.url, telemed_keys.SOCKETIO_CHANNEL).start()
    yield log
    await log.close()


def job(visit: str, sdp: str, role: str = "patient", job_id: str = "j1", sub: str = "p1") -> dict[str, str]:
    return {"job": job_id, "visit": visit, "clinic": "c1", "role": role, "sub": sub, "sdp": sdp, "consent": "1"}


async def finished(folder: Path, count: int, timeout: float = 10) -> dict[str, Any]:
    """``recordings.json`` once it lists ``count`` recordings and none is still being
    written (the worker marks a file complete after closing it)."""
    index = folder / "recordings.json"
    async with asyncio.timeout(timeout):
        while True:
            recordings = json.loads(index.read_text())["recordings"] if index.exists() else []
            if len(recordings) == count and all(r["state"] != "recording" for r in recordings):
                return {"recordings": recordings}
            await asyncio.sleep(0.05)


async def test_ten_second_leg_records_what_was_sent(
    redis: aioredis.Redis, settings: Settings, worker: Worker, emits: EmitLog
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(job(visit, await browser.offer())))
        await browser.wait_connected()
        started = await emits.wait_for("recording", room=f"media:{visit}", namespace="/media")
        assert started["data"] == {"visit_id": visit, "role": "patient", "state": "started", "file": "recording-patient-1.webm"}
        leg = await redis.hgetall(keys.leg(visit, "patient"))
        assert leg["worker"] == worker.worker_id and leg["job"] == "j1"
        await asyncio.sleep(10)
    finally:
        await browser.close()
    assert browser.video is not None and browser.video.first_sent and browser.video.last_sent
    wall = browser.video.last_sent - browser.video.first_sent + 1 / 30
    sent = browser.video.sent
    stopped = await emits.wait_for("recording", room=f"media:{visit}", data={
        "visit_id": visit, "role": "patient", "state": "stopped", "file": "recording-patient-1.webm", "reason": "sender ended"})
    assert stopped
    async with asyncio.timeout(5):  # the leg is forgotten once closed
        while await redis.exists(keys.leg(visit, "patient")):
            await asyncio.sleep(0.05)

    folder = settings.recordings_dir / "c1" / visit
    got = await asyncio.to_thread(decode_recording, folder / "recording-patient-1.webm")
    assert not got.errors
    # >= 95 % of the frames sent, in order, each once, and the pictures are the bars.
    assert len(got.counters) >= 0.95 * sent, (len(got.counters), sent)
    assert got.counters == sorted(set(got.counters))
    assert got.counters[-1] < sent
    assert got.worst_bar_error < 40
    # Timestamps: frame k sits at k/30 s after the first one (the sender's clock), and the
    # file lasts as long as the sending did (±2 %).
    k0, t0 = got.counters[0], got.video_pts[0]
    assert max(abs((t - t0) - (k - k0) / 30) for k, t in zip(got.counters, got.video_pts, strict=True)) < 0.01
    assert abs(got.duration - wall) <= 0.02 * wall, (got.duration, wall)
    # The tone is there, for as long.
    assert abs(got.tone_hz - TONE_HZ) < 5
    assert abs(got.audio_seconds - wall) <= 0.02 * wall, (got.audio_seconds, wall)
    # Both streams start with the file (streams are aligned by arrival, so the
    # sender's first-frame encoding latency shows: 50-110 ms with aiortc's VP8).
    assert got.audio_start is not None and abs(got.audio_start - got.video_pts[0]) < 0.25

    chart = json.loads((folder / "recordings.json").read_text())
    [entry] = chart["recordings"]
    assert entry["file"] == "recording-patient-1.webm" and entry["state"] == "complete" and entry["n"] == 1
    assert abs((entry["ended_at"] - entry["started_at"]) - wall) <= 0.02 * wall
    assert entry["frames"]["video"] == len(got.counters)


def drop_rtp(pc: Any, kind: str, rate: float, seed: int = 4) -> list[int]:
    """Lose ``rate`` of the RTP packets a peer sends for ``kind`` (retransmissions
    included, so the loss is real), like a lossy network would."""
    rng = random.Random(seed)
    dropped: list[int] = []
    sender = next(s for s in pc.getSenders() if s.track is not None and s.track.kind == kind)
    transport = sender.transport
    original = transport._send_rtp

    async def lossy(data: bytes) -> None:
        is_rtp = len(data) > 1 and not 192 <= data[1] <= 223
        if is_rtp and rng.random() < rate:
            dropped.append(len(data))
            return
        await original(data)

    transport._send_rtp = lossy
    return dropped


async def test_lost_packets_cost_frames_not_the_file(
    redis: aioredis.Redis, settings: Settings, worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(job(visit, await browser.offer())))
        await browser.wait_connected()
        dropped = drop_rtp(browser.pc, "video", 0.03)
        await asyncio.sleep(5)
    finally:
        await browser.close()
    await finished(settings.recordings_dir / "c1" / visit, 1)
    assert dropped
    assert browser.video is not None
    got = await asyncio.to_thread(decode_recording, settings.recordings_dir / "c1" / visit / "recording-patient-1.webm")
    assert not got.errors
    assert got.counters == sorted(set(got.counters))
    # Most frames survive, and time still runs true across the holes.
    assert len(got.counters) >= 0.5 * browser.video.sent
    k0, t0 = got.counters[0], got.video_pts[0]
    assert max(abs((t - t0) - (k - k0) / 30) for k, t in zip(got.counters, got.video_pts, strict=True)) < 0.01


async def test_a_camera_turned_off_leaves_the_microphone_recording(
    redis: aioredis.Redis, settings: Settings, worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(job(visit, await browser.offer())))
        await browser.wait_connected()
        await asyncio.sleep(1.5)
        camera = next(s for s in browser.pc.getSenders() if s.track is not None and s.track.kind == "video")
        await camera.stop()  # RTCP BYE for the video only
        await asyncio.sleep(0.5)
        leg = worker.legs[(visit, "patient")]
        assert leg.taps["video"].ended and not leg.taps["audio"].ended
        heard = leg.taps["audio"].frames
        await asyncio.sleep(1)
        assert leg.taps["audio"].frames > heard + 30
    finally:
        await browser.close()
    await finished(settings.recordings_dir / "c1" / visit, 1)
    got = await asyncio.to_thread(decode_recording, settings.recordings_dir / "c1" / visit / "recording-patient-1.webm")
    assert got.video_end < 2.2 and got.audio_end > 2.8
