"""Encoded frames, taken from an aiortc receiver before its decoder.

aiortc's :class:`~aiortc.RTCRtpReceiver` reassembles each complete encoded
frame in its jitter buffer and hands it, on the event loop's thread, to a
decoder thread through a :class:`queue.Queue` (``put((codec, frame))``; a
``None`` tells the thread to stop). :func:`attach` puts an
:class:`EncodedTap` in that queue's place before the receiver starts: frames
go to our sink instead, nothing is ever decoded, and the decoder thread
aiortc still starts simply waits for its ``None``.

This touches one private attribute of aiortc (checked on attach, covered by
the tests) because the receiver offers no public hook before the decoder;
everything else it does (SRTP, jitter buffer, NACK, RTCP reports, the RTP
timestamp unwrapping) is kept.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as the sender produced it."""

    kind: str
    """``"audio"`` or ``"video"``."""

    codec: str
    """Codec name as negotiated: ``"opus"``, ``"VP8"``."""

    data: bytes
    """The frame: an Opus packet, or a VP8 frame with the RTP payload descriptors removed."""

    timestamp: int
    """RTP timestamp relative to the first frame this receiver got, wrap-around
    already unwrapped (``clock_rate`` units: 48 kHz audio, 90 kHz video)."""

    clock_rate: int
    """Units of ``timestamp`` per second."""

    arrival: float
    """Wall time (``time.time()``) at which the frame was complete."""

    keyframe: bool
    """Decodable on its own (always true for Opus)."""


Sink = Callable[[EncodedFrame], None]


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) if ``data`` is a VP8 key frame (RFC 6386 section 9.1), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = (data[6] | data[7] << 8) & 0x3FFF
    height = (data[8] | data[9] << 8) & 0x3FFF
    return width, height


class EncodedTap:
    """Stands in for a receiver's decoder queue (the two methods it uses)."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str, sink: Sink, on_end: Callable[[], None] | None = None) -> None:
        self.receiver = receiver
        self.kind = kind
        self.sink = sink
        self.on_end = on_end
        self.frames = 0
        self.keyframes = 0
        self.ended = False
        # What aiortc's idle decoder thread blocks on until it is told to stop.
        self._stop: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- the queue interface the receiver and its decoder thread use ----------------

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stop.put(None)
            if not self.ended:
                self.ended = True
                if self.on_end is not None:
                    self.on_end()
            return
        codec, frame = item
        data = frame.data
        name = codec.name
        keyframe = True if self.kind == "audio" else (name == "VP8" and vp8_keyframe_size(data) is not None)
        self.frames += 1
        self.keyframes += keyframe
        try:
            self.sink(EncodedFrame(self.kind, name, data, frame.timestamp, codec.clockRate, time.time(), keyframe))
        except Exception:
            # A failing sink must not take the receiver (and the leg's RTCP) down with it.
            logger.exception("EncodedTap(%s) sink failed", self.kind)

    def get(self, block: bool = True, timeout: float | None = None) -> None:
        return self._stop.get(block, timeout)

    # -- feedback to the sender -------------------------------------------------------

    def request_keyframe(self) -> None:
        """Send a PLI to the sender of this (video) receiver, if it has sent anything yet."""
        sources = self.receiver.getSynchronizationSources()
        if not sources:
            return
        ssrc = max(sources, key=lambda s: s.timestamp).source
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def attach(receiver: RTCRtpReceiver, kind: str, sink: Sink, on_end: Callable[[], None] | None = None) -> EncodedTap:
    """Route ``receiver``'s encoded frames to ``sink`` (on the event loop's
    thread) instead of its decoder. Call after ``setRemoteDescription`` and
    before the connection starts the receiver."""
    if not hasattr(receiver, _QUEUE_ATTR) or not hasattr(receiver, _THREAD_ATTR):
        raise RuntimeError("this aiortc version has no decoder queue to tap; see media/tap.py")
    if getattr(receiver, _THREAD_ATTR) is not None:
        raise RuntimeError("the receiver already started decoding")
    tap = EncodedTap(receiver, kind, sink, on_end)
    setattr(receiver, _QUEUE_ATTR, tap)
    return tap
