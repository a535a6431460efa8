"""Encoded frames, taken from an aiortc receiver before its decoder.

aiortc's :class:`~aiortc.RTCRtpReceiver` reassembles each complete encoded
frame in its jitter buffer and hands it, on the event loop's thread, to a
decoder thread through a :class:`queue.Queue` (``put((codec, frame))``; a
``None`` tells the thread to stop). :func:`attach` puts an
:class:`EncodedTap` in that queue's place before the receiver starts: frames
go to our sink instead, nothing is ever decoded, and the decoder thread
aiortc still starts simply waits for its ``None``.

This touches one private (name-mangled) attribute of aiortc because the
receiver offers no public hook before the decoder; everything else it does
(SRTP, jitter buffer, NACK, RTCP reports, the RTP timestamp unwrapping) is
kept. What that rests on (the receiver creates the queue, puts frames in it
only once its decoder thread exists, stops the thread with ``None``, and the
thread only calls ``get``; and the PLI sender :meth:`EncodedTap.request_keyframe`
uses) is checked by :func:`check` against aiortc 1.16.0's source
(:data:`RELIES_ON`), which the worker calls when it starts and :func:`attach`
before its first tap: another version stops with
:class:`media._pinned.DependencyChanged`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver, rtcrtpreceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import _pinned

logger = logging.getLogger(__name__)

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"

#: SHA-256 of the aiortc 1.16.0 source the tap relies on.
RELIES_ON = {
    "decoder_worker": "d500d4e567d6846c0bd1b501685ec5dd65202563280a01b25e2c014c2273c3eb",
    "RTCRtpReceiver.__init__": "3e3b7b5cefbaac6f32d31c024a5ecf70093b55e60db6a3b4f4f900400688ccb9",
    "RTCRtpReceiver.receive": "d6d8d8d7a0bf4e95f3fb7cb78cf275d0a5f50c4912e0cb8498272008779916ef",
    "RTCRtpReceiver._handle_rtp_packet": "4e54983d021a6336d80c29490f82f9a6dd531c0d3179b2daed818120c5ece238",
    "RTCRtpReceiver.__stop_decoder": "108105d17e257dba61a4e9cd00e443ca32dce3d0bd7407f1af2fd9d127f10afc",
    "RTCRtpReceiver._send_rtcp_pli": "ae74c43d50f6eb7bd6d5d6fbafe46e507f937e651db022d04206926ed21c7184",
}

_checked = False


def relied_on() -> dict[str, Callable[..., Any]]:
    """The aiortc functions :data:`RELIES_ON` describes, as installed."""
    receiver = rtcrtpreceiver.RTCRtpReceiver
    return {
        "decoder_worker": rtcrtpreceiver.decoder_worker,
        "RTCRtpReceiver.__init__": receiver.__init__,
        "RTCRtpReceiver.receive": receiver.receive,
        "RTCRtpReceiver._handle_rtp_packet": receiver._handle_rtp_packet,
        "RTCRtpReceiver.__stop_decoder": getattr(receiver, "_RTCRtpReceiver__stop_decoder", lambda: None),
        "RTCRtpReceiver._send_rtcp_pli": receiver._send_rtcp_pli,
    }


def check() -> None:
    """Check aiortc's source against :data:`RELIES_ON` (once; later calls do nothing).
    Raises :class:`~media._pinned.DependencyChanged`."""
    global _checked
    if not _checked:
        _pinned.check("aiortc", relied_on(), RELIES_ON, "media/tap.py")
        _checked = True


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
    check()
    if not hasattr(receiver, _QUEUE_ATTR) or not hasattr(receiver, _THREAD_ATTR):
        raise RuntimeError("this aiortc version has no decoder queue to tap; see media/tap.py")
    if getattr(receiver, _THREAD_ATTR) is not None:
        raise RuntimeError("the receiver already started decoding")
    tap = EncodedTap(receiver, kind, sink, on_end)
    setattr(receiver, _QUEUE_ATTR, tap)
    return tap
