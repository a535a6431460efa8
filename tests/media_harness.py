"""Synthetic participants for tests and benchmarks: an aiortc peer that sends
what a browser's chart leg sends, and the checks that read it back.

The video is colour bars with the frame number drawn as text (for people) and
as a strip of black and white blocks (for :func:`read_counter`, which survives
VP8 compression); the audio is a 440 Hz tone, or speech made by espeak-ng
(:func:`speech_wav`) played by aiortc's ``MediaPlayer`` (:class:`Stamped`
tells when each moment of it was sent). Not shipped: tests and benchmarks
import it from here.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from numpy.typing import NDArray

from media import ice

#: Bar colours, left to right, as BGR (OpenCV's order).
BARS_BGR: list[tuple[int, int, int]] = [
    (255, 255, 255),  # white
    (0, 255, 255),  # yellow
    (255, 255, 0),  # cyan
    (0, 255, 0),  # green
    (255, 0, 255),  # magenta
    (0, 0, 255),  # red
    (255, 0, 0),  # blue
    (0, 0, 0),  # black
]

#: Bits of the frame counter strip.
COUNTER_BITS = 16

#: Fractions of the height: bars above BARS_END, text up to TEXT_END, counter strip below.
BARS_END, TEXT_END = 0.6, 0.75

TONE_HZ = 440.0


def bars_image(width: int, height: int) -> NDArray[np.uint8]:
    image = np.zeros((height, width, 3), np.uint8)
    bar_w = width / len(BARS_BGR)
    for i, colour in enumerate(BARS_BGR):
        image[: int(height * BARS_END), int(i * bar_w) : int((i + 1) * bar_w)] = colour
    image[int(height * BARS_END) : int(height * TEXT_END)] = (128, 128, 128)
    return image


def draw_counter(image: NDArray[np.uint8], n: int) -> None:
    height, width = image.shape[:2]
    top, strip = int(height * BARS_END), int(height * TEXT_END)
    cv2.putText(image, f"{n:06d}", (4, strip - 4), cv2.FONT_HERSHEY_SIMPLEX, (strip - top) / 30, (0, 0, 0), 2)
    block = width // COUNTER_BITS
    for bit in range(COUNTER_BITS):
        value = 255 if (n >> (COUNTER_BITS - 1 - bit)) & 1 else 0
        image[strip:, bit * block : (bit + 1) * block] = value


def read_counter(image: NDArray[Any]) -> int:
    """The frame number drawn by :func:`draw_counter` (BGR or grey image)."""
    height, width = image.shape[:2]
    strip = int(height * TEXT_END)
    y = (strip + height) // 2
    block = width // COUNTER_BITS
    grey = image if image.ndim == 2 else image.mean(axis=2)
    n = 0
    for bit in range(COUNTER_BITS):
        x = bit * block + block // 2
        n = (n << 1) | int(grey[y - 2 : y + 3, x - 2 : x + 3].mean() > 127)
    return n


def bar_errors(image: NDArray[Any]) -> list[float]:
    """Per bar: the largest channel difference between the centre of the bar and its colour."""
    height, width = image.shape[:2]
    bar_w = width / len(BARS_BGR)
    y = int(height * BARS_END / 2)
    out = []
    for i, colour in enumerate(BARS_BGR):
        x = int((i + 0.5) * bar_w)
        patch = image[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3).mean(axis=0)
        out.append(float(np.abs(patch - np.array(colour)).max()))
    return out


class BarsTrack(VideoStreamTrack):
    """Colour bars with a frame counter, at 30 fps; ``blur`` softens them."""

    def __init__(self, width: int = 320, height: int = 240, blur: bool = False) -> None:
        super().__init__()
        self.base = bars_image(width, height)
        self.blur = blur
        self.sent = 0
        self.first_sent: float | None = None
        self.last_sent: float | None = None

    def following(self) -> BarsTrack:
        """A new track continuing this one's frames and clock (aiortc stops a
        track when its peer connection closes; a browser's camera goes on)."""
        track = BarsTrack(self.base.shape[1], self.base.shape[0], self.blur)
        track.sent, track.first_sent, track.last_sent = self.sent, self.first_sent, self.last_sent
        if hasattr(self, "_start"):
            track._start, track._timestamp = self._start, self._timestamp
        return track

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = self.base.copy()
        draw_counter(image, self.sent)
        if self.blur:
            image = np.asarray(cv2.GaussianBlur(image, (21, 21), 8), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        now = time.time()
        self.first_sent = self.first_sent or now
        self.last_sent = now
        self.sent += 1
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames."""

    rate = 48000

    def __init__(self) -> None:
        super().__init__()
        self.samples = 0
        self._t0: float | None = None

    def following(self) -> ToneTrack:
        """A new track continuing this one's samples and clock."""
        track = ToneTrack()
        track.samples, track._t0 = self.samples, self._t0
        return track

    async def recv(self) -> av.AudioFrame:
        n = self.rate // 50
        if self._t0 is None:
            self._t0 = time.time()
        else:
            await asyncio.sleep(max(0.0, self._t0 + (self.samples + n) / self.rate - time.time()))
        t = (np.arange(n) + self.samples) / self.rate
        pcm = (np.sin(2 * math.pi * TONE_HZ * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self.samples += n
        return frame


@dataclass(frozen=True)
class Spoken:
    """One sentence of a :func:`speech_wav`: where its voice is, in seconds of the file."""

    text: str
    start: float
    end: float


def speak(text: str, voice: str = "ko", rate: int = 48000) -> NDArray[np.int16]:
    """``text`` spoken by espeak-ng (``apt-get install espeak-ng``), mono s16 at ``rate``."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", voice, "-w", wav.name, text], check=True, capture_output=True)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        with av.open(wav.name) as container:
            chunks = [f.to_ndarray()[0] for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16)


def speech_wav(path: Path, script: Iterable[float | str], *, voice: str = "ko", noise: float = 0.0, seed: int = 0,
               rate: int = 48000) -> list[Spoken]:
    """Write a WAV (mono, ``rate``) of sentences (``str``, spoken by espeak-ng)
    and pauses (``float``, seconds); returns where each sentence's voice is.
    ``noise``: standard deviation (in s16 units) of a noise floor under it all,
    like a real microphone's (0: digital silence)."""
    parts: list[NDArray[np.int16]] = []
    spoken: list[Spoken] = []
    at = 0
    for item in script:
        if isinstance(item, str):
            pcm = speak(item, voice, rate)
            loud = np.nonzero(np.abs(pcm.astype(np.int32)) > 300)[0]
            if len(loud):
                spoken.append(Spoken(item, (at + loud[0]) / rate, (at + loud[-1] + 1) / rate))
        else:
            pcm = np.zeros(round(item * rate), np.int16)
        parts.append(pcm)
        at += len(pcm)
    signal = np.concatenate(parts).astype(np.float64)
    if noise:
        signal += np.random.default_rng(seed).normal(0.0, noise, len(signal))
    pcm16 = np.clip(signal, -32768, 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        for k in range(0, len(pcm16), rate // 50):
            frame = av.AudioFrame.from_ndarray(pcm16[k:k + rate // 50].reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = k
            frame.time_base = fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return spoken


def opus_packets(path: Path, bitrate: int = 32000) -> list[tuple[bytes, int]]:
    """A WAV encoded as a sender would: Opus packets of 20 ms with their
    timestamps (48 kHz units, from 0)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48000, frame_size=960)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 48000, "mono", "s16", bitrate
    encoder.time_base = fractions.Fraction(1, 48000)
    frames: list[av.AudioFrame] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            frames += resampler.resample(frame)
    frames += resampler.resample(None)
    packets: list[tuple[bytes, int]] = []
    for n, frame in enumerate(f for f in frames if f.samples == 960):  # the last, short one is left out
        frame.pts = n * 960
        for packet in encoder.encode(frame):
            packets.append((bytes(packet), len(packets) * 960))
    return packets


class Stamped(MediaStreamTrack):
    """Passes another track's frames on, noting when its media time 0 was sent:
    moment ``t`` of the source left at ``origin + t`` (wall clock)."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.origin: float | None = None
        self.last_sent: float | None = None

    async def recv(self) -> Any:
        frame = await self.source.recv()
        now = time.time()
        if self.origin is None and frame.pts is not None and frame.time_base is not None:
            self.origin = now - float(frame.pts * frame.time_base)
        self.last_sent = now
        return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class Browser:
    """A participant's browser side of a chart leg: a send-only aiortc peer."""

    def __init__(self, *, video: bool = True, audio: bool = True, size: tuple[int, int] = (320, 240), blur: bool = False,
                 addresses: Iterable[str] = ("127.0.0.1",), tracks: tuple[Any, Any] | None = None,
                 configuration: RTCConfiguration | None = None) -> None:
        self.configuration = configuration or RTCConfiguration(iceServers=[])
        self.pc = RTCPeerConnection(self.configuration)
        self.addresses = tuple(addresses)
        if tracks is not None:
            self.audio, self.video = tracks
        else:
            self.video = BarsTrack(*size, blur=blur) if video else None
            self.audio = ToneTrack() if audio else None
        for track in (self.audio, self.video):
            if track is not None:
                self.pc.addTransceiver(track, direction="sendonly")
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()
            elif self.pc.connectionState in ("failed", "closed"):
                self.failed.set()

    def again(self) -> Browser:
        """A new peer connection with the same camera and microphone: what a
        page does when its leg failed and it re-offers."""
        audio = self.audio.following() if self.audio is not None else None
        video = self.video.following() if self.video is not None else None
        return Browser(addresses=self.addresses, tracks=(audio, video), configuration=self.configuration)

    async def offer(self) -> str:
        """The offer, with every candidate (gathering complete), as a browser should send it."""
        offer = await self.pc.createOffer()
        ice.install()  # as a worker does when it starts: what constrains gathering to self.addresses
        with ice.host_addresses(self.addresses):
            await self.pc.setLocalDescription(offer)
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def wait_connected(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class Decoded:
    """What a recording holds, read back."""

    video_pts: list[float] = field(default_factory=list)
    counters: list[int] = field(default_factory=list)
    worst_bar_error: float = 0.0
    audio_seconds: float = 0.0
    audio_start: float | None = None
    audio_end: float = 0.0
    tone_hz: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def video_end(self) -> float:
        return self.video_pts[-1] if self.video_pts else 0.0

    @property
    def duration(self) -> float:
        return max(self.video_end + (1 / 30 if self.video_pts else 0), self.audio_end)


def decode_recording(path: Path, check_every: int = 1) -> Decoded:
    """Decode a (possibly truncated) recording fully, video and audio."""
    out = Decoded()
    try:
        with av.open(str(path)) as container:
            for i, vframe in enumerate(container.decode(video=0)):
                assert vframe.pts is not None and vframe.time_base is not None
                out.video_pts.append(float(vframe.pts * vframe.time_base))
                image = vframe.to_ndarray(format="bgr24")
                out.counters.append(read_counter(image))
                if i % check_every == 0:
                    out.worst_bar_error = max(out.worst_bar_error, *bar_errors(image))
    except (av.FFmpegError, IndexError) as exc:
        out.errors.append(f"video: {exc}")
    pcm: list[NDArray[Any]] = []
    try:
        with av.open(str(path)) as container:
            if container.streams.audio:
                for aframe in container.decode(audio=0):
                    assert aframe.pts is not None and aframe.time_base is not None
                    start = float(aframe.pts * aframe.time_base)
                    if out.audio_start is None:
                        out.audio_start = start
                    out.audio_seconds += aframe.samples / aframe.sample_rate
                    out.audio_end = start + aframe.samples / aframe.sample_rate
                    pcm.append(aframe.to_ndarray()[0])
    except (av.FFmpegError, IndexError) as exc:
        out.errors.append(f"audio: {exc}")
    if pcm:
        signal = np.concatenate(pcm)[: 48000 * 2].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
        out.tone_hz = float(np.argmax(spectrum) * 48000 / len(signal))
    return out


# -- the rest of the world, as tests see it ------------------------------------------


async def open_visit(room: Any, *, clinic: str = "c1", consent: bool = True, admit: bool = True,
                     patient: str = "p1", doctor: str = "d1", language: str = "ko") -> str:
    """A visit through the real waiting room: created, checked in (with or
    without consent to recording) and, with ``admit``, in progress. The
    patient's language is Korean by default: the harness's speech is
    (espeak-ng -v ko), and so is the one model the tests install."""
    visit = await room.create(clinic, reason="test")
    await room.check_in(visit.id, patient_sub=patient, patient_name="Pat", reason="test", consent_recording=consent,
                        language=language)
    if admit:
        await room.admit(clinic, doctor=doctor, doctor_name="Doc", visit_id=visit.id)
    return str(visit.id)


class EmitLog:
    """Every Socket.IO emit published through Redis (what nodes would relay)."""

    def __init__(self, redis_url: str, channel: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(redis_url, decode_responses=True)
        self._channel = channel
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> EmitLog:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._listen(pubsub))
        return self

    async def _listen(self, pubsub: Any) -> None:
        import json

        try:
            async for message in pubsub.listen():
                data = json.loads(message["data"])
                data["received_at"] = time.time()
                if data.get("method") == "emit":
                    if isinstance(data.get("data"), list) and len(data["data"]) == 1:
                        data["data"] = data["data"][0]  # one argument, as the browser receives it
                    async with self._arrived:
                        self.messages.append(data)
                        self._arrived.notify_all()
        finally:
            await pubsub.aclose()

    def find(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event and all(m.get(k) == v for k, v in match.items())]

    async def wait_for(self, event: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The first emit of ``event`` whose fields (room, namespace, ...) match."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: bool(self.find(event, **match))), timeout)
        return self.find(event, **match)[0]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._redis.aclose()


async def spawn_worker(redis_url: str, recordings: Path, worker_id: str, *extra: str, log: Path | None = None,
                 timeout: float = 20) -> Any:
    """``python -m media`` as a child process logging to ``log``; returns once it is ready."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    log = log or recordings.parent / f"{worker_id}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "media", "--redis-url", redis_url, "--recordings", str(recordings), "--id", worker_id,
             "--address", "127.0.0.1", "--claim-idle", "2", "--heartbeat", "1", *extra],
            cwd=repo, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(repo)},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"worker {worker_id} ready" in log.read_text():
            return proc
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("worker did not start:\n" + log.read_text())
