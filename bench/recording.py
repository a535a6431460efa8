"""Recording benchmark: the worker's CPU per chart leg, against aiortc's MediaRecorder.

    python -m bench.recording --streams 8 --seconds 20

Sends N participant streams (640x480 30 fps VP8 at about 1 Mbit/s, plus Opus)
from a separate load-generator process that replays pre-encoded media (so
sending costs little and never re-encodes) to one worker process
(``python -m media``), through the real path (Redis job stream, emitter
answers, loopback ICE). Measures the worker process's CPU (all its threads)
over a steady window, then does the same with aiortc's MediaRecorder on
``--compare`` streams, and prints as its last line::

    recording: streams=N cpu_per_stream=... mediarecorder_cpu_per_stream=... ratio=... frames_kept_pct=...

CPU figures are fractions of one core. ``frames_kept_pct`` is the video frames
in the worker's files over the frames the senders sent.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
CLINIC = "bench"
FPS = 30
SIZE = (640, 480)
VIDEO_BITRATE = 1_000_000
GOP = 60

logger = logging.getLogger("bench.recording")


# -- the media the senders replay ---------------------------------------------------------


def make_media(path: Path, seconds: float = 10.0) -> None:
    """Encode once: moving bars and noise (so VP8 spends ~1 Mbit/s), and a tone."""
    width, height = SIZE
    vtb, atb = fractions.Fraction(1, 90000), fractions.Fraction(1, 48000)
    venc = av.CodecContext.create("libvpx", "w")
    venc.width, venc.height, venc.pix_fmt = width, height, "yuv420p"
    venc.time_base, venc.framerate = vtb, fractions.Fraction(FPS)
    venc.bit_rate, venc.gop_size = VIDEO_BITRATE, GOP
    venc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
                    "minrate": str(VIDEO_BITRATE), "maxrate": str(VIDEO_BITRATE), "bufsize": str(VIDEO_BITRATE)}
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format, aenc.bit_rate = 48000, "mono", "s16", 32000
    aenc.time_base = atb
    out = av.open(str(path), "w", format="webm")
    vs = out.add_mux_stream("vp8", width=width, height=height)
    ast = out.add_stream("libopus", rate=48000, layout="mono")
    rng = np.random.default_rng(1)
    base = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate([(255, 255, 255), (0, 255, 255), (255, 255, 0), (0, 255, 0),
                                (255, 0, 255), (0, 0, 255), (255, 0, 0), (0, 0, 0)]):
        base[:, i * width // 8:(i + 1) * width // 8] = colour
    frames = int(seconds * FPS)
    for n in range(frames):
        image = np.roll(base, n * 4, axis=1)
        image[height // 2:, :] = rng.integers(0, 255, (height - height // 2, width, 3), dtype=np.uint8) // 2 + 64
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts, frame.time_base = n * 3000, vtb
        for p in venc.encode(frame):
            packet = av.Packet(bytes(p))
            packet.pts = packet.dts = p.pts
            packet.time_base, packet.stream = vtb, vs
            packet.is_keyframe = bool(p.is_keyframe)
            out.mux(packet)
    samples = int(seconds * 48000)
    t = np.arange(samples) / 48000
    pcm = (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16)
    for k in range(0, samples - 960 + 1, 960):
        aframe = av.AudioFrame.from_ndarray(pcm[k:k + 960].reshape(1, -1), format="s16", layout="mono")
        aframe.sample_rate, aframe.pts, aframe.time_base = 48000, k, atb
        for p in aenc.encode(aframe):
            packet = av.Packet(bytes(p))
            packet.pts = packet.dts = k
            packet.time_base, packet.stream = atb, ast
            out.mux(packet)
    out.close()


def load_packets(path: Path) -> dict[str, list[tuple[bytes, float]]]:
    """Every packet of the file, per kind, as (data, seconds)."""
    out: dict[str, list[tuple[bytes, float]]] = {"audio": [], "video": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None and packet.time_base is not None:
                out[packet.stream.type].append((bytes(packet), float(packet.pts * packet.time_base)))
    return out


# -- the load generator --------------------------------------------------------------------


def replay_track(kind: str, packets: list[tuple[bytes, float]], loop_seconds: float) -> Any:
    """A track that hands pre-encoded packets to aiortc's sender in real time (no encoding)."""
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    clock = 48000 if kind == "audio" else 90000
    time_base = fractions.Fraction(1, clock)

    class Replay(MediaStreamTrack):
        def __init__(self) -> None:
            super().__init__()
            self.kind = kind
            self.sent = 0
            self._start: float | None = None

        async def recv(self) -> av.Packet:
            if self.readyState != "live":
                raise MediaStreamError
            loops, i = divmod(self.sent, len(packets))
            data, at = packets[i]
            at += loops * loop_seconds
            if self._start is None:
                self._start = time.time() - at
            await asyncio.sleep(max(0.0, self._start + at - time.time()))
            packet = av.Packet(data)
            packet.pts = round(at * clock)
            packet.time_base = time_base
            self.sent += 1
            return packet

    return Replay()


async def run_senders(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from media.ice import host_addresses, install
    from telemed import keys as telemed_keys
    from telemed.media_protocol import Job, MediaClient
    from tests.media_harness import EmitLog

    install()  # constrains the peers' gathering to loopback, as in a worker
    packets = load_packets(Path(args.media))
    loop_seconds = max(at for _, at in packets["video"]) + 1 / FPS
    redis = aioredis.from_url(args.redis_url, decode_responses=True)
    emits = await EmitLog(args.redis_url, telemed_keys.SOCKETIO_CHANNEL).start()
    media = MediaClient(redis)
    pcs, tracks = [], []

    async def leg(i: int) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connected = asyncio.Event()
        pc.on("connectionstatechange", lambda: pc.connectionState == "connected" and connected.set())
        for kind in ("audio", "video"):
            track = replay_track(kind, packets[kind], loop_seconds)
            tracks.append(track)
            pc.addTransceiver(track, direction="sendonly")
        with host_addresses(["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createOffer())
        job = f"bench-{i}"
        await media.submit(Job(job=job, visit=f"bench{i}", clinic=CLINIC, role="patient", sub=f"p{i}",
                           sdp=pc.localDescription.sdp, consent=True))
        reply = await emits.wait_for("leg_answer", room=f"leg:{job}", timeout=30)
        if not reply["data"].get("ok"):
            raise RuntimeError(f"leg {i} refused: {reply['data']}")
        await pc.setRemoteDescription(RTCSessionDescription(reply["data"]["sdp"], "answer"))
        await asyncio.wait_for(connected.wait(), 30)
        pcs.append(pc)

    await asyncio.gather(*(leg(i) for i in range(args.streams)))
    await redis.set("bench:connected", len(pcs))
    while not await redis.exists("bench:stop"):
        await asyncio.sleep(0.2)
    sent = {k: sum(t.sent for t in tracks if t.kind == k) for k in ("audio", "video")}
    for pc in pcs:
        await pc.close()
    Path(args.out).write_text(json.dumps(sent))
    await emits.close()
    await redis.aclose()


# -- aiortc's MediaRecorder, for comparison ------------------------------------------------------


async def run_mediarecorder(args: argparse.Namespace) -> None:
    """Answer the same jobs with aiortc's MediaRecorder (decode + re-encode to WebM)."""
    import redis.asyncio as aioredis
    import socketio
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRecorder

    from media.ice import host_addresses, install
    from telemed import keys as telemed_keys
    from telemed.media_protocol import keys

    install()  # constrains the peers' gathering to loopback, as in a worker
    redis = aioredis.from_url(args.redis_url, decode_responses=True)
    emitter = socketio.AsyncRedisManager(args.redis_url, channel=telemed_keys.SOCKETIO_CHANNEL, write_only=True)
    try:
        await redis.xgroup_create(keys.JOBS, keys.GROUP, id="0", mkstream=True)
    except Exception:
        pass
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    legs: list[tuple[Any, Any]] = []
    print("mediarecorder ready", flush=True)

    async def answer(fields: dict[str, str]) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        recorder = MediaRecorder(str(Path(args.out) / f"{fields['job']}.webm"))
        pc.on("track", recorder.addTrack)

        async def started() -> None:
            if pc.connectionState == "connected":
                await recorder.start()

        pc.on("connectionstatechange", started)
        await pc.setRemoteDescription(RTCSessionDescription(fields["sdp"], "offer"))
        with host_addresses(["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createAnswer())
        legs.append((pc, recorder))
        await emitter.emit("leg_answer", {"job": fields["job"], "ok": True, "sdp": pc.localDescription.sdp},
                           room=f"leg:{fields['job']}", namespace="/media")

    while not stop.is_set():
        reply = await redis.xreadgroup(keys.GROUP, "mediarecorder", {keys.JOBS: ">"}, count=10, block=200)
        for _, entries in reply or []:
            for stream_id, fields in entries:
                await answer(fields)
                await redis.xack(keys.JOBS, keys.GROUP, stream_id)
    for pc, recorder in legs:
        await recorder.stop()
        await pc.close()
    if emitter.redis is not None:
        await emitter.redis.aclose()
    await redis.aclose()


# -- the run -----------------------------------------------------------------------------------


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def video_frames(files: list[Path]) -> int:
    count = 0
    for path in files:
        try:
            with av.open(str(path)) as container:
                if container.streams.video:
                    count += sum(1 for p in container.demux(video=0) if p.size)
        except av.FFmpegError:
            pass
    return count


async def open_visits(redis_url: str, n: int) -> None:
    import redis.asyncio as aioredis

    from telemed import keys as telemed_keys

    redis = aioredis.from_url(redis_url, decode_responses=True)
    await redis.flushall()
    for i in range(n):
        await redis.hset(telemed_keys.visit(f"bench{i}"), mapping={
            "clinic": CLINIC, "state": "in_visit", "consent_recording": "1", "patient_sub": f"p{i}", "doctor": "d"})
    await redis.aclose()


async def wait_key(redis_url: str, key: str, value: int, timeout: float) -> None:
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while int(await redis.get(key) or 0) < value:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{key} did not reach {value}")
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


async def set_key(redis_url: str, key: str) -> None:
    import redis.asyncio as aioredis

    redis = aioredis.from_url(redis_url, decode_responses=True)
    await redis.set(key, 1)
    await redis.aclose()


def start(cmd: list[str], log: Path, ready: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    if ready:
        deadline = time.monotonic() + 30
        while ready not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[:4]} did not start:\n{log.read_text()}")
            time.sleep(0.05)
    return proc


def phase(kind: str, n: int, args: argparse.Namespace, redis_url: str, work: Path, media: Path) -> dict[str, float]:
    """Run n streams against one receiver process; its CPU per stream and frames kept."""
    out = work / kind
    out.mkdir()
    asyncio.run(open_visits(redis_url, n))
    if kind == "worker":
        cmd = [sys.executable]
        if args.profile:
            cmd += ["-m", "cProfile", "-o", str(args.profile)]
        cmd += ["-m", "media", "--redis-url", redis_url, "--recordings", str(out), "--id", "bench",
                "--address", "127.0.0.1", "--max-legs", str(n + 1), "--log-level", "WARNING"]
        if args.uvloop:
            cmd.append("--uvloop")
        receiver = start(cmd, work / f"{kind}.log", "worker bench ready")
    else:
        receiver = start([sys.executable, "-m", "bench.recording", "--role", "mediarecorder", "--redis-url", redis_url,
                          "--out", str(out)], work / f"{kind}.log", "mediarecorder ready")
    stats = work / f"{kind}-sent.json"
    sender = start([sys.executable, "-m", "bench.recording", "--role", "sender", "--redis-url", redis_url,
                    "--streams", str(n), "--media", str(media), "--out", str(stats)], work / f"{kind}-sender.log", None)
    try:
        asyncio.run(wait_key(redis_url, "bench:connected", n, 60))
        time.sleep(args.warmup)
        proc = psutil.Process(receiver.pid)
        cpu0, t0 = cpu_seconds(proc), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = cpu_seconds(proc), time.monotonic()
        asyncio.run(set_key(redis_url, "bench:stop"))
        sender.wait(60)
        time.sleep(1)  # let the legs see the senders go
    finally:
        if sender.poll() is None:
            sender.kill()
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(60)
    sent = json.loads(stats.read_text())
    kept = video_frames(sorted(out.rglob("*.webm")))
    result = {"cpu_per_stream": (cpu1 - cpu0) / (t1 - t0) / n, "frames_kept_pct": 100 * kept / max(1, sent["video"]),
              "sent_video": sent["video"], "kept_video": kept}
    print(f"{kind}: streams={n} " + " ".join(f"{k}={v:.4g}" for k, v in result.items()), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.recording", description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--compare", type=int, default=2, help="streams for aiortc's MediaRecorder (0: skip)")
    p.add_argument("--uvloop", action="store_true", help="run the worker on uvloop")
    p.add_argument("--profile", type=Path, help="cProfile the worker into this file")
    p.add_argument("--role", choices=["main", "sender", "mediarecorder"], default="main", help=argparse.SUPPRESS)
    p.add_argument("--redis-url", help=argparse.SUPPRESS)
    p.add_argument("--media", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.role == "sender":
        asyncio.run(run_senders(args))
        return 0
    if args.role == "mediarecorder":
        asyncio.run(run_mediarecorder(args))
        return 0

    from telemed.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        work = Path(tmp)
        media = work / "source.webm"
        make_media(media)
        with RedisServer(work / "redis") as redis:
            ours = phase("worker", args.streams, args, redis.url, work, media)
            theirs = phase("mediarecorder", args.compare, args, redis.url, work, media) if args.compare else None
    mr = theirs["cpu_per_stream"] if theirs else float("nan")
    print(f"recording: streams={args.streams} cpu_per_stream={ours['cpu_per_stream']:.4f} "
          f"mediarecorder_cpu_per_stream={mr:.4f} ratio={mr / ours['cpu_per_stream']:.1f} "
          f"frames_kept_pct={ours['frames_kept_pct']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
