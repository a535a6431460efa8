"""Seekable recordings: what a keyframe every N seconds costs, and how long
Chromium takes to seek to minute 15 of a 20-minute recording.

    python -m bench.seek [--minutes 20] [--interval 5] [--cost-seconds 60]

**Cost.** ``--cost-seconds`` of a camera-like picture (textured background
panning slowly, a moving face-sized blob, sensor noise, 640×480, 30 fps) are encoded with libvpx VP8 as a browser's chart
leg sends it (real-time, rate-controlled to 300 kbit/s, the leg's
``maxBitrate``): once with a keyframe only at the start, once with a keyframe
every ``--interval`` seconds. The rate control holds the bitrate either way,
so the cost shows as quality: printed are the bitrate each reaches, its
quality (PSNR of the luma against the source), the size of a keyframe
against an inter frame, and the share of the bits spent on the extra keyframes.

**Seek.** Two ``--minutes`` recordings are made by the project's own
:class:`media.recorder.Recorder` (the muxer, clusters and cues a worker
writes) from encoded VP8 (320×240, 15 fps: 20 minutes encode in well under a
minute) and Opus frames, handed to it as a leg's taps hand them, with their
arrival times; when the recorder asks for a keyframe (its ``need_keyframe``,
a PLI on a live leg) the next frame is encoded as one, as a sender does. One
file with ``keyframe_interval`` set, one without. Each is served with Range
by aiohttp's file response (as the chart file route serves it) to Debian's
Chromium (headless, via Playwright), which loads the ``<video>``'s metadata,
seeks to 15:00, and times from setting ``currentTime`` to ``seeked``.

Prints as its last line::

    seek: minutes=… interval_s=… seek_ms=… seek_no_interval_ms=… kbps=…/… psnr_db=…/… keyframe_bits_pct=…
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aiohttp import web

from media.recorder import HOLD, Recorder
from media.tap import EncodedFrame
from tests.media_harness import draw_counter

CHROMIUM = "/usr/bin/chromium"
TARGET = 15 * 60.0


def pattern(width: int, height: int) -> Callable[[int], np.ndarray[Any, Any]]:
    """Frame ``n`` of a camera-like picture: a textured background that pans
    slowly, a moving face-sized blob, sensor noise, and a frame counter (a
    keyframe of it costs what a camera's does; bars alone compress to nothing)."""
    rng = np.random.default_rng(5)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height + 80, width + 120, 3), dtype=np.uint8), (0, 0), 2.5)
    texture = (30 + (texture - texture.min()) * (190 / max(1, int(texture.max()) - int(texture.min())))).astype(np.uint8)

    def frame(n: int) -> np.ndarray[Any, Any]:
        x, y = int(60 + 50 * np.sin(n / 90)), int(40 + 30 * np.cos(n / 120))
        image = texture[y:y + height, x:x + width].copy()
        centre = (width // 2 + int(width / 12 * np.sin(n / 25)), height // 2 + int(height / 20 * np.cos(n / 33)))
        cv2.ellipse(image, centre, (width // 7, height // 4), 0, 0, 360, (90, 130, 200), -1)
        noise = rng.normal(0, 2.0, image.shape)
        noisy: np.ndarray[Any, Any] = np.clip(image + noise, 0, 255).astype(np.uint8)
        draw_counter(noisy, n)
        return noisy

    return frame


def encoder(width: int, height: int, fps: int, bitrate: int) -> Any:
    """libvpx VP8 as WebRTC runs it: real-time, rate-controlled to ``bitrate``."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.bit_rate = bitrate
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0", "g": "100000",
                     "minrate": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate)}
    return codec


def encode(codec: Any, image: np.ndarray[Any, Any], n: int, key: bool) -> list[Any]:
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
    frame.pts = n
    if key:
        frame.pict_type = av.video.frame.PictureType.I
    return list(codec.encode(frame))


def psnr(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass
class Cost:
    kbps: float
    psnr: float
    """Mean luma PSNR against the source, dB."""
    keyframes: int
    key_bytes: float
    """Mean size of a keyframe after the first."""
    delta_bytes: float
    """Mean size of the other frames."""


def cost(seconds: float, interval: float, bitrate: int = 300_000) -> Cost:
    """What ``seconds`` of the picture at 640x480 30 fps become, with a keyframe
    every ``interval`` seconds (0: only the first)."""
    width, height, fps = 640, 480, 30
    make = pattern(width, height)
    codec = encoder(width, height, fps, bitrate)
    decoder = av.CodecContext.create("libvpx", "r")
    keys: list[int] = []
    deltas: list[int] = []
    scores = []
    every = round(interval * fps) if interval else 0
    for n in range(round(seconds * fps)):
        source = make(n)
        for packet in encode(codec, source, n, key=n == 0 or bool(every and n % every == 0)):
            (keys if packet.is_keyframe else deltas).append(packet.size)
            for decoded in decoder.decode(packet):
                luma = decoded.to_ndarray(format="gray")
                scores.append(psnr(luma, cv2.cvtColor(source, cv2.COLOR_BGR2GRAY)))
    return Cost(kbps=(sum(keys) + sum(deltas)) * 8 / seconds / 1000, psnr=statistics.fmean(scores), keyframes=len(keys),
                key_bytes=statistics.fmean(keys[1:]) if len(keys) > 1 else 0.0, delta_bytes=statistics.fmean(deltas))


def opus_tone() -> list[bytes]:
    """One second of a 440 Hz tone as 50 Opus packets of 20 ms."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48000, "mono", "s16", 32000
    codec.time_base = fractions.Fraction(1, 48000)
    t = np.arange(48000) / 48000
    samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    packets = []
    for i in range(50):
        frame = av.AudioFrame.from_ndarray(samples[None, i * 960:(i + 1) * 960], format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, i * 960
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


def frames(minutes: float, fps: int, asked: Callable[[], bool]) -> Iterator[EncodedFrame]:
    """A leg's frames in arrival order: VP8 (keyframe when ``asked()``) and Opus."""
    width, height = 320, 240
    make = pattern(width, height)
    codec = encoder(width, height, fps, 300_000)
    tone = opus_tone()
    t0 = time.time() - minutes * 60 - 60
    total = minutes * 60
    n_video, n_audio = 0, 0
    while True:
        tv, ta = n_video / fps, n_audio * 0.020
        if min(tv, ta) >= total:
            return
        if tv <= ta:
            for packet in encode(codec, make(n_video), n_video, key=n_video == 0 or asked()):
                yield EncodedFrame("video", "VP8", bytes(packet), n_video * (90000 // fps), 90000, t0 + tv + HOLD["video"], bool(packet.is_keyframe))
            n_video += 1
        else:
            yield EncodedFrame("audio", "opus", tone[n_audio % len(tone)], n_audio * 960, 48000, t0 + ta + HOLD["audio"], True)
            n_audio += 1


def synthesize(path: Path, minutes: float, interval: float, fps: int = 15) -> int:
    """A ``minutes`` recording written by the Recorder; returns its video keyframes."""
    wanted = [False]

    def asked() -> bool:
        was, wanted[0] = wanted[0], False
        return was

    recorder = Recorder(path, {"audio", "video"}, keyframe_interval=interval, need_keyframe=lambda: wanted.__setitem__(0, True))
    keys = 0
    for frame in frames(minutes, fps, asked):
        keys += frame.kind == "video" and frame.keyframe
        recorder.push(frame)
    recorder.close()
    return keys


PAGE = """<!doctype html><meta charset="utf-8"><video id="v" preload="metadata" muted></video>"""

SEEK = """async ([src, target]) => {
  const v = document.querySelector('#v');
  v.src = src;
  await new Promise((ok, fail) => { v.onloadedmetadata = ok; v.onerror = () => fail(new Error('cannot load')); });
  const t0 = performance.now();
  v.currentTime = target;
  await new Promise((ok) => { v.onseeked = ok; });
  return { ms: performance.now() - t0, at: v.currentTime, duration: v.duration };
}"""


async def serve(folder: Path) -> tuple[web.AppRunner, str, list[str]]:
    ranges: list[str] = []

    async def file(request: web.Request) -> web.StreamResponse:
        ranges.append(request.headers.get("Range", "-"))
        return web.FileResponse(folder / request.match_info["name"], headers={"Content-Type": "video/webm"})

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/files/{name}", file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", ranges


def seek_in_chromium(url: str, names: list[str], repeats: int) -> dict[str, list[dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[dict[str, float]]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            for name in names:
                out[name] = []
                for _ in range(repeats):  # a fresh page each time: nothing cached
                    context = browser.new_context()
                    page = context.new_page()
                    page.goto(url + "/")
                    out[name].append(page.evaluate(SEEK, [f"{url}/files/{name}", TARGET]))
                    context.close()
        finally:
            browser.close()
    return out


async def run(minutes: float, interval: float, cost_seconds: float, repeats: int) -> str:
    once = await asyncio.to_thread(cost, cost_seconds, 0)
    steady = await asyncio.to_thread(cost, cost_seconds, interval)
    for name, c in (("keyframe only at the start", once), (f"keyframe every {interval:g} s", steady)):
        print(f"{name}: {c.kbps:.0f} kbit/s, PSNR {c.psnr:.2f} dB, {c.keyframes} keyframes"
              + (f" of {c.key_bytes / 1000:.1f} kB (an inter frame: {c.delta_bytes / 1000:.2f} kB)" if c.key_bytes else ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        keys_steady = await asyncio.to_thread(synthesize, folder / "steady.webm", minutes, interval)
        keys_once = await asyncio.to_thread(synthesize, folder / "once.webm", minutes, 0.0)
        print(f"synthesized 2 x {minutes:g} min in {time.perf_counter() - start:.0f} s: keyframes {keys_steady} and {keys_once}; "
              f"{(folder / 'steady.webm').stat().st_size / 1e6:.1f} MB and {(folder / 'once.webm').stat().st_size / 1e6:.1f} MB")
        runner, url, ranges = await serve(folder)
        try:
            seeks = await asyncio.to_thread(seek_in_chromium, url, ["steady.webm", "once.webm"], repeats)
        finally:
            await runner.cleanup()
        for name, results in seeks.items():
            print(f"{name}: " + ", ".join(f"{r['ms']:.0f} ms to {r['at']:.1f} s of {r['duration']:.0f} s" for r in results))
        print(f"range requests: {len(ranges)}")
    steady_ms = statistics.median(r["ms"] for r in seeks["steady.webm"])
    once_ms = statistics.median(r["ms"] for r in seeks["once.webm"])
    return (f"seek: minutes={minutes:g} interval_s={interval:g} seek_ms={steady_ms:.0f} seek_no_interval_ms={once_ms:.0f} "
            f"kbps={once.kbps:.0f}/{steady.kbps:.0f} psnr_db={once.psnr:.2f}/{steady.psnr:.2f} "
            f"keyframe_bits_pct={steady.key_bytes * (steady.keyframes - 1) * 8 / (steady.kbps * 1000 * cost_seconds) * 100:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.seek", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20, help="length of the recordings (default 20)")
    p.add_argument("--interval", type=float, default=5, help="seconds between keyframes (default 5)")
    p.add_argument("--cost-seconds", type=float, default=60, help="seconds encoded to measure the cost (default 60)")
    p.add_argument("--repeats", type=int, default=3, help="seeks per file, each in a fresh page (default 3)")
    args = p.parse_args(argv)
    if args.minutes * 60 <= TARGET:
        p.error("--minutes must be more than 15 (the seek goes to 15:00)")
    print(asyncio.run(run(args.minutes, args.interval, args.cost_seconds, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
