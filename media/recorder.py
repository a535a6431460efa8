"""One participant's encoded audio and video, remuxed into a WebM file.

No decoding and no encoding: each :class:`~media.tap.EncodedFrame` becomes one
:class:`av.Packet` with its RTP timestamp as pts. The file is Matroska (WebM
profile, so browsers play it in the chart) written to stay readable if the
process dies: a cluster is closed at least every ``cluster_ms`` and flushed to
disk, and the muxer holds one stream's packets at most ``interleave_ms``
waiting for the other's. A truncated file then plays up to its last complete
cluster.

Time: each stream is anchored at the wall time its first frame arrived, less
the time aiortc's jitter buffer held it; from then on its pts are its own RTP
timestamps (the sender's media clock), so a late or lost packet shifts
nothing. A stream whose timestamps drift from wall time by more than
:data:`MAX_DRIFT` (a sender restarting its clock) is re-anchored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from media.tap import EncodedFrame, vp8_keyframe_size

logger = logging.getLogger(__name__)

#: How long aiortc's jitter buffer holds a complete frame before handing it
#: on: audio waits for 4 more 20 ms packets (prefetch), video for the first
#: packet of the next frame. Subtracted from arrival times so that audio and
#: video line up.
HOLD = {"audio": 0.080, "video": 1 / 30}

#: A stream whose timestamps say something other than the wall clock by more
#: than this is re-anchored to the wall clock.
MAX_DRIFT = 5.0

#: Frames of audio held while waiting for the first video keyframe (at most
#: ``keyframe_wait`` seconds' worth arrive; this bounds a misbehaving sender).
MAX_PENDING = 500

#: Used when a recording has to start before any video keyframe arrived;
#: VP8 decoders take the real size from the first key frame.
PLACEHOLDER_SIZE = (640, 480)

FORMAT = "webm"  # the chart names its files recording-<role>-<n>.webm (telemed.chart.layout)

_OPUS_FRAME_MS = [10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4


def opus_samples(data: bytes) -> int:
    """Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 section 3.1)."""
    if not data:
        return 0
    toc = data[0]
    count = toc & 0x03
    frames = 1 if count == 0 else 2 if count in (1, 2) else (data[1] & 0x3F if len(data) > 1 else 0)
    return int(_OPUS_FRAME_MS[toc >> 3] * 48 * frames)


@dataclass
class _Stream:
    kind: str
    clock_rate: int
    time_base: Fraction
    stream: Any = None
    first_ts: int | None = None
    offset: int = 0
    last_pts: int = -1
    end_pts: int = 0
    frames: int = 0
    dropped: int = 0


@dataclass
class RecordingStats:
    """What a finished recording holds."""

    path: Path
    """The file."""

    started_at: float | None
    """Wall time of the file's t = 0 (None: nothing was recorded)."""

    ended_at: float | None
    """Wall time of the last frame written."""

    duration: float
    """Seconds of media in the file (the longest stream)."""

    frames: dict[str, int] = field(default_factory=dict)
    """Frames written, per kind."""

    dropped: dict[str, int] = field(default_factory=dict)
    """Frames not written, per kind (before the first keyframe, out of order, muxer errors)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path.name,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": round(self.duration, 3),
            "frames": dict(self.frames),
            "dropped": dict(self.dropped),
        }


class Recorder:
    """Writes the encoded frames pushed into it to ``path``.

    :param kinds: the kinds the leg carries (``{"audio", "video"}``); each
        becomes one stream of the file.
    :param on_open: called once with the file's start time when it is created.
    :param need_keyframe: called (at most every half second) while video waits
        for a keyframe, and once ``keyframe_interval`` seconds passed since the
        last one: every keyframe is a cue (a seek point) of the file, so a
        player seeks without decoding from the start.
    """

    def __init__(
        self,
        path: Path,
        kinds: set[str],
        *,
        keyframe_wait: float = 2.0,
        keyframe_interval: float = 0.0,
        cluster_ms: int = 1000,
        interleave_ms: int = 1000,
        on_open: Any = None,
        need_keyframe: Any = None,
    ) -> None:
        self.path = path
        self.kinds = kinds
        self.keyframe_wait = keyframe_wait
        self.keyframe_interval = keyframe_interval
        self.cluster_ms = cluster_ms
        self.interleave_ms = interleave_ms
        self.on_open = on_open
        self.need_keyframe = need_keyframe
        self.container: Any = None
        self.closed = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.size = PLACEHOLDER_SIZE
        self._streams = {
            kind: _Stream(kind, rate, Fraction(1, rate))
            for kind, rate in ((k, 48000 if k == "audio" else 90000) for k in sorted(kinds))
        }
        self._pending: list[EncodedFrame] = []
        self._first_arrival: float | None = None
        self._last_pli = 0.0
        self._last_keyframe: float | None = None  # arrival of the last keyframe written

    # -- input ------------------------------------------------------------------------

    def push(self, frame: EncodedFrame) -> None:
        """Take one frame (called on the event loop's thread by the taps)."""
        if self.closed or frame.kind not in self._streams:
            return
        s = self._streams[frame.kind]
        if self._first_arrival is None:
            self._first_arrival = frame.arrival
        if self.container is None:
            if frame.kind == "video" and frame.keyframe:
                self.size = vp8_keyframe_size(frame.data) or PLACEHOLDER_SIZE
                self._open(frame)
            elif frame.kind == "video":
                s.dropped += 1
                self._ask_keyframe(frame.arrival)
                return
            elif "video" not in self._streams or frame.arrival - self._first_arrival >= self.keyframe_wait:
                self._open(frame)
            else:
                if len(self._pending) < MAX_PENDING:
                    self._pending.append(frame)
                else:
                    s.dropped += 1
                return
        if s.first_ts is None and frame.kind == "video" and not frame.keyframe:
            # The file started without video (no keyframe in time): video joins at its first keyframe.
            s.dropped += 1
            self._ask_keyframe(frame.arrival)
            return
        if frame.kind == "video" and self.keyframe_interval > 0:
            if frame.keyframe:
                self._last_keyframe = frame.arrival
            elif self._last_keyframe is not None and frame.arrival - self._last_keyframe >= self.keyframe_interval:
                self._ask_keyframe(frame.arrival)  # the next seek point
        self._write(s, frame)

    def _ask_keyframe(self, now: float) -> None:
        if self.need_keyframe is not None and now - self._last_pli >= 0.5:
            self._last_pli = now
            self.need_keyframe()

    # -- output -----------------------------------------------------------------------

    def _open(self, trigger: EncodedFrame | None) -> None:
        options = {
            # Close a cluster (and write it out) at least this often, so a killed
            # process leaves all but the last cluster on disk.
            "cluster_time_limit": str(self.cluster_ms),
            # The Matroska muxer has no periodic index; keep the header honest.
            "flush_packets": "1",
            "max_interleave_delta": str(self.interleave_ms * 1000),
        }
        self.container = av.open(str(self.path), "w", format=FORMAT, container_options=options)
        if "video" in self._streams:
            width, height = self.size
            self._streams["video"].stream = self.container.add_mux_stream("vp8", width=width, height=height)
        if "audio" in self._streams:
            # A stream with an (unused) Opus encoder context: opening it is what
            # produces the OpusHead that WebM players require (~1 ms, no encoding).
            self._streams["audio"].stream = self.container.add_stream("libopus", rate=48000, layout="stereo")
        pending, self._pending = self._pending, []
        self.started_at = min(f.arrival - HOLD[f.kind] for f in [*pending, *([trigger] if trigger else [])])
        logger.info("Recorder(%s) started (%dx%d)", self.path.name, *self.size)
        if self.on_open is not None:
            self.on_open(self.started_at)
        for frame in pending:
            self._write(self._streams[frame.kind], frame)

    def _write(self, s: _Stream, frame: EncodedFrame) -> None:
        assert self.started_at is not None
        clock = s.clock_rate
        since_start = frame.arrival - HOLD[frame.kind] - self.started_at
        if s.first_ts is None:
            s.first_ts = frame.timestamp
            s.offset = max(0, round(since_start * clock)) - frame.timestamp
        pts = frame.timestamp + s.offset
        if abs(pts / clock - since_start) > MAX_DRIFT:
            logger.warning("Recorder(%s) %s timestamps drifted by %.1fs; re-anchored", self.path.name, s.kind, pts / clock - since_start)
            s.offset = max(s.last_pts + 1, round(since_start * clock)) - frame.timestamp
            pts = frame.timestamp + s.offset
        if pts <= s.last_pts:
            s.dropped += 1
            return
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = s.time_base
        packet.stream = s.stream
        if s.kind == "video":
            packet.is_keyframe = frame.keyframe
            duration = 0
        else:
            duration = opus_samples(frame.data)
            packet.duration = duration
        try:
            self.container.mux(packet)
        except av.FFmpegError as exc:
            s.dropped += 1
            logger.warning("Recorder(%s) dropped a %s frame: %s", self.path.name, s.kind, exc)
            return
        s.last_pts = pts
        s.end_pts = pts + duration
        s.frames += 1
        self.ended_at = frame.arrival

    # -- end --------------------------------------------------------------------------

    def close(self) -> RecordingStats:
        """Finish the file (trailer, index, duration). Idempotent."""
        if not self.closed:
            self.closed = True
            if self.container is None and self._pending:
                self._open(None)
            if self.container is not None:
                try:
                    self.container.close()
                except av.FFmpegError as exc:
                    logger.warning("Recorder(%s) could not finish the file: %s", self.path.name, exc)
                logger.info("Recorder(%s) finished: %s", self.path.name, self._summary())
        return self.stats()

    def stats(self) -> RecordingStats:
        duration = max((s.end_pts / s.clock_rate for s in self._streams.values() if s.frames), default=0.0)
        return RecordingStats(
            path=self.path,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration=duration,
            frames={k: s.frames for k, s in self._streams.items()},
            dropped={k: s.dropped for k, s in self._streams.items()},
        )

    def _summary(self) -> str:
        return ", ".join(f"{k} {s.frames} frames ({s.dropped} dropped)" for k, s in self._streams.items())


def probe_end(path: Path) -> float:
    """Seconds of media in a (possibly truncated) recording: the end of its last readable packet."""
    end = 0.0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is None or packet.time_base is None:
                    continue
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except (av.FFmpegError, OSError) as exc:
        logger.info("Recorder probe of %s stopped: %s", path.name, exc)
    return end
