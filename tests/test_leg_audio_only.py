"""A chart leg that follows the call's audio-only rule (web/chart_leg.js):
while the call does not send video the page's leg sends none either (its
video sender's track replaced by none: no video RTP, no renegotiation, no
BYE), then takes it up again. At the worker, the recording keeps the
microphone through the pause, which the transcript needs, and the video
resumes in the same file."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from media.worker import Worker
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.media_harness import TONE_HZ, Browser, decode_recording, open_visit

PAUSE_S = 4.0


def job(visit: str, sdp: str) -> dict[str, str]:
    return {"job": "j1", "visit": visit, "clinic": "c1", "role": "patient", "sub": "p1", "sdp": sdp, "consent": "1"}


async def until(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def finished(folder: Path, timeout: float = 15) -> dict[str, Any]:
    index = folder / "recordings.json"
    deadline = time.monotonic() + timeout
    while True:
        recordings = json.loads(index.read_text())["recordings"] if index.exists() else []
        if recordings and all(r["state"] != "recording" for r in recordings):
            return {"recordings": recordings}
        assert time.monotonic() < deadline, recordings
        await asyncio.sleep(0.05)


async def test_a_leg_whose_video_pauses_keeps_recording_its_audio(
    redis: aioredis.Redis, settings: Settings, worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        await browser.accept(await worker.handle_offer(job(visit, await browser.offer())))
        await browser.wait_connected()
        leg = worker.legs[(visit, "patient")]
        await until(lambda: leg.file is not None and leg.taps["video"].frames > 45, "the leg records video")
        camera = next(s for s in browser.pc.getSenders() if s.track is not None and s.track.kind == "video")
        # What replaceTrack(null) does to the wire, in aiortc: the sender stays (its RTCP
        # goes on), its frames are dropped before they are encoded, no RTP leaves.
        camera._enabled = False
        paused_at = time.monotonic()
        heard = leg.taps["audio"].frames
        await until(lambda: leg.taps["audio"].frames > heard + 150, "audio goes on while the video is paused")
        await asyncio.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused_at)))
        seen = leg.taps["video"].frames
        camera._enabled = True  # the call's video is back: the leg's too
        paused_for = time.monotonic() - paused_at
        await until(lambda: leg.taps["video"].frames > seen + 45, "the video comes back on the same leg")
        assert worker.legs[(visit, "patient")] is leg  # the same leg, the same file
    finally:
        await browser.close()
    assert browser.video is not None and browser.video.first_sent and browser.video.last_sent
    wall = browser.video.last_sent - browser.video.first_sent + 1 / 30
    folder = settings.recordings_dir / "c1" / visit
    index = await finished(folder)
    assert [r["file"] for r in index["recordings"]] == ["recording-patient-1.webm"]
    got = await asyncio.to_thread(decode_recording, folder / "recording-patient-1.webm")
    assert not got.errors
    # The microphone, all along: as long as the sending lasted (±3 %), the tone in it.
    assert abs(got.audio_seconds - wall) <= 0.03 * wall, (got.audio_seconds, wall)
    assert abs(got.tone_hz - TONE_HZ) < 5
    # The video: a hole as long as the pause, frames on both sides of it, in order.
    gaps = [b - a for a, b in zip(got.video_pts, got.video_pts[1:], strict=False)]
    hole = max(gaps)
    assert paused_for - 0.3 <= hole <= paused_for + 1.0, (hole, paused_for)
    before = gaps.index(hole) + 1
    # (a frame or two of each side may not reach the file: before its first keyframe, at the close)
    assert before >= 25 and len(got.video_pts) - before >= 25, (before, len(got.video_pts))
    assert got.counters == sorted(set(got.counters))
    # The audio covers the hole: the file's sound runs on from before the pause to after it.
    assert got.audio_start is not None and got.audio_start <= got.video_pts[before - 1] and got.audio_end >= got.video_pts[before]
