"""Speech-to-text: the pipeline that turns one speaker's Opus packets into
partial and final results (the model it runs is loaded by :mod:`media.stt_model`).

**Pipeline** (:class:`Pipeline`, synchronous, one per speaker, run off the
event loop by :mod:`media.transcriber`)::

    Opus packet ──▶ decoder (PyAV) ──▶ resampler (16 kHz mono s16)
        ──▶ 30 ms frames ──▶ voice gate (webrtcvad) ──▶ Vosk recogniser

The gate opens when 3 of the last 5 frames are voiced and feeds the
recogniser the 300 ms before that (word onsets are quiet); it closes after
300 ms of non-speech and the utterance is finalised right then, rather than
when Vosk's own end-pointing (0.5 s of trailing silence and more) would.
Silence between utterances never reaches the recogniser.

**Time.** Results are in seconds on the speaker's *timeline*: 0 is the first
audio packet, and packets are placed by their RTP timestamps (the sender's
clock), so a late packet shifts nothing. A gap in the timestamps of up to
``max_fill_ms`` (lost packets) is filled with silence; a longer one (the
sender paused, or audio was shed because recognition fell behind) ends the
utterance and the timeline jumps.

**Replay.** With the model's dithering off (:mod:`media.stt_model`),
recognition is a function of the audio: :func:`replay` re-derives a chart's
transcript from its recording, which is how the tests prove the live path
dropped and reordered nothing.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import vosk
import webrtcvad

from media.recorder import opus_samples

logger = logging.getLogger(__name__)

#: What the recogniser takes.
SAMPLE_RATE = 16000

#: Opus's RTP clock (and the unit of packet timestamps).
OPUS_RATE = 48000


@dataclass(frozen=True)
class PipelineConfig:
    """How one speaker's audio is gated and recognised. The same configuration
    gives the same results from the same packets (live, or from a recording)."""

    gate: bool = True
    """Voice gate on. Off, every frame reaches the recogniser and utterances end
    only at Vosk's own end-points (benchmarks compare the two)."""

    vad_mode: int = 2
    """webrtcvad aggressiveness, 0 (keeps most) to 3 (keeps least)."""

    frame_ms: int = 30
    """Frames the gate judges (webrtcvad takes 10, 20 or 30 ms)."""

    start_window: int = 5
    """The gate opens when ``start_voiced`` of the last ``start_window`` frames are voiced..."""

    start_voiced: int = 3

    preroll_ms: int = 300
    """...and feeds the recogniser this much audio from before that moment."""

    end_ms: int = 300
    """Non-speech that ends an utterance (and finalises it)."""

    max_utterance_s: float = 15.0
    """An utterance is finalised after this long even if the speaker goes on
    (bounds what a crash can lose and how long a caption stays partial)."""

    feed_ms: int = 120
    """Audio handed to the recogniser per call."""

    partial_ms: int = 240
    """A partial result is asked for after every this much fed speech (0: none;
    asking costs well under a millisecond and changes no final)."""

    max_fill_ms: int = 300
    """Timestamp gaps up to this are filled with silence; longer ones end the utterance."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    conf: float

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end, "conf": self.conf}


@dataclass(frozen=True, slots=True)
class Result:
    """A partial or final result, in seconds on the speaker's timeline."""

    final: bool
    text: str
    start: float
    """Partial: where the utterance began; final: the first word's start."""
    end: float
    """Partial: the audio heard so far; final: the last word's end."""
    words: tuple[Word, ...] = ()
    """Finals only: each word with its timing and confidence (0-1)."""
    cause: str = ""
    """Finals only: ``gate`` (the speaker stopped), ``endpoint`` (Vosk's own),
    ``limit`` (``max_utterance_s``), ``gap`` (a hole in the audio), ``end`` (no more audio)."""


@dataclass
class PipelineStats:
    packets: int = 0
    late: int = 0
    """Packets dropped for arriving after a later one (or twice)."""
    undecodable: int = 0
    filled_ms: int = 0
    jumps: int = 0
    frames: int = 0
    """Gate frames seen."""
    fed_s: float = 0.0
    """Audio that reached the recogniser."""
    finals: dict[str, int] = field(default_factory=dict)


def _resampler() -> av.AudioResampler:
    return av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)


class Pipeline:
    """One speaker's Opus packets in, results out. Synchronous and deterministic:
    the same packets with the same configuration give the same results.

    :param model: a ``vosk.Model`` (shared; this pipeline makes its own recogniser).
    """

    def __init__(self, model: Any, config: PipelineConfig | None = None) -> None:
        self.config = c = config or PipelineConfig()
        self.stats = PipelineStats()
        self._frame_samples = SAMPLE_RATE * c.frame_ms // 1000
        self._frame_bytes = 2 * self._frame_samples
        self._feed_bytes = self._frame_bytes * max(1, c.feed_ms // c.frame_ms)
        self._partial_bytes = 2 * SAMPLE_RATE * c.partial_ms // 1000
        self._end_frames = max(1, c.end_ms // c.frame_ms)
        self._max_samples = int(c.max_utterance_s * SAMPLE_RATE)
        self._max_fill = OPUS_RATE * c.max_fill_ms // 1000
        self._vad = webrtcvad.Vad(c.vad_mode) if c.gate else None
        self._decoder = av.CodecContext.create("opus", "r")
        self._resampler = _resampler()
        self._rec = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        self._rec.SetWords(True)
        # Input, on the timeline (16 kHz samples).
        self._first_ts: int | None = None
        self._last_ts = -1
        self._next_ts = 0
        self._pcm = bytearray()
        self._pos = 0  # timeline sample of self._pcm[0]
        self._skip = 0  # bytes to drop before the next frame (back onto the frame grid after a jump)
        # The gate.
        self._open = False
        self._preroll: deque[tuple[int, bytes]] = deque(maxlen=max(1, c.preroll_ms // c.frame_ms))
        self._voiced: deque[bool] = deque(maxlen=c.start_window)
        self._quiet = 0
        # The recogniser: what it was given, and where on the timeline that is.
        self._feed = bytearray()
        self._fed = 0  # samples given to the recogniser, ever (Vosk's word times count these)
        self._seg_fed = 0  # ...when the current contiguous run of audio began
        self._seg_pos = 0  # ...and that run's start on the timeline
        self._utt_start = 0  # timeline sample where the current utterance began
        self._utt_fed = 0  # samples of it given
        self._since_partial = 0
        self._partial = ""
        self._out: list[Result] = []

    # -- input ---------------------------------------------------------------------

    def push(self, data: bytes, timestamp: int) -> list[Result]:
        """One Opus packet with its timestamp (48 kHz units, any origin)."""
        self.stats.packets += 1
        if self._first_ts is None:
            self._first_ts = self._next_ts = timestamp
        if timestamp <= self._last_ts:
            self.stats.late += 1
            return self._take()
        gap = timestamp - self._next_ts
        if 0 < gap <= self._max_fill:
            self.stats.filled_ms += gap * 1000 // OPUS_RATE
            self._pcm += bytes(2 * round(gap * SAMPLE_RATE / OPUS_RATE))
        elif gap > self._max_fill:
            self._jump(timestamp)
        self._last_ts = timestamp
        self._next_ts = timestamp + (opus_samples(data) or OPUS_RATE // 50)
        try:
            frames = self._decoder.decode(av.Packet(data))
        except av.FFmpegError:
            self.stats.undecodable += 1  # the next packet finds the hole and fills it
            self._next_ts = timestamp
            return self._take()
        for frame in frames:
            self._resample(frame)
        self._frames()
        return self._take()

    def finish(self) -> list[Result]:
        """No more audio: finalise what is in progress."""
        self._resample(None)
        self._frames()
        if self._open:
            self._finalise("end")
        return self._take()

    def _take(self) -> list[Result]:
        out, self._out = self._out, []
        return out

    def _resample(self, frame: av.AudioFrame | None) -> None:
        for out in self._resampler.resample(frame):
            self._pcm += out.to_ndarray().tobytes()

    def _jump(self, timestamp: int) -> None:
        """A hole too long to fill: end the utterance, move the timeline on."""
        self.stats.jumps += 1
        self._resample(None)  # the audio before the hole, then a fresh resampler
        self._frames()
        self._resampler = _resampler()
        self._pcm.clear()
        if self._open:
            self._finalise("gap")
        self._close_gate()
        assert self._first_ts is not None
        # Frames stay on the grid they would have had without the hole (so what
        # follows it is framed, gated and fed as a recording without it would be).
        pos = round((timestamp - self._first_ts) * SAMPLE_RATE / OPUS_RATE)
        self._skip = 2 * (-pos % self._frame_samples)
        self._pos = pos + self._skip // 2

    # -- the gate ------------------------------------------------------------------

    def _frames(self) -> None:
        if self._skip:
            dropped = min(self._skip, len(self._pcm))
            del self._pcm[:dropped]
            self._skip -= dropped
            if self._skip:
                return
        n, size = 0, self._frame_bytes
        while len(self._pcm) - n >= size:
            self._frame(bytes(self._pcm[n:n + size]))
            n += size
            self._pos += self._frame_samples
        del self._pcm[:n]

    def _frame(self, frame: bytes) -> None:
        self.stats.frames += 1
        if self._vad is None:
            if not self._open:
                self._begin(self._pos)
            self._give(frame)
            return
        voiced = bool(self._vad.is_speech(frame, SAMPLE_RATE))
        if not self._open:
            self._preroll.append((self._pos, frame))
            self._voiced.append(voiced)
            if voiced and sum(self._voiced) >= self.config.start_voiced:
                self._begin(self._preroll[0][0])
                for _, f in self._preroll:
                    self._give(f)
                self._preroll.clear()
                self._voiced.clear()
            return
        self._give(frame)
        self._quiet = 0 if voiced else self._quiet + 1
        if self._quiet >= self._end_frames:
            self._finalise("gate")
            self._close_gate()

    def _close_gate(self) -> None:
        self._open = False
        self._quiet = 0
        self._preroll.clear()
        self._voiced.clear()

    def _begin(self, pos: int) -> None:
        """The gate opened: audio from ``pos`` on reaches the recogniser, contiguously."""
        self._open = True
        self._quiet = 0
        self._seg_fed, self._seg_pos = self._fed, pos
        self._utt_start, self._utt_fed = pos, 0

    # -- the recogniser ----------------------------------------------------------------

    def _give(self, frame: bytes) -> None:
        self._feed += frame
        if len(self._feed) >= self._feed_bytes:
            self._accept()
        if self._utt_fed >= self._max_samples:
            self._finalise("limit")

    def _accept(self) -> None:
        if not self._feed:
            return
        data, self._feed = bytes(self._feed), bytearray()
        samples = len(data) // 2
        self._fed += samples
        self._utt_fed += samples
        self._since_partial += len(data)
        self.stats.fed_s += samples / SAMPLE_RATE
        if self._rec.AcceptWaveform(data):
            self._final(json.loads(self._rec.Result()), "endpoint")
        elif self._partial_bytes and self._since_partial >= self._partial_bytes:
            self._since_partial = 0
            text = str(json.loads(self._rec.PartialResult()).get("partial", "")).strip()
            if text and text != self._partial:
                self._partial = text
                self._out.append(Result(False, text, self._seconds(self._utt_start), self._seconds(self._here())))

    def _finalise(self, cause: str) -> None:
        self._accept()
        self._final(json.loads(self._rec.FinalResult()), cause)

    def _final(self, raw: dict[str, Any], cause: str) -> None:
        """The recogniser closed an utterance (we asked, or at its own end-point)."""
        self._since_partial = 0
        words = tuple(
            Word(str(w["word"]), self._timeline(float(w["start"])), self._timeline(float(w["end"])), round(float(w["conf"]), 3))
            for w in raw.get("result", [])
        )
        text = str(raw.get("text", "")).strip()
        shown, self._partial = self._partial, ""
        began, self._utt_start, self._utt_fed = self._utt_start, self._here(), 0
        if not text and not shown:
            return  # nothing heard, nothing shown: nothing to say
        self.stats.finals[cause] = self.stats.finals.get(cause, 0) + 1
        start = words[0].start if words else self._seconds(began)
        end = words[-1].end if words else self._seconds(self._here())
        self._out.append(Result(True, text, start, end, words, cause))

    def _here(self) -> int:
        """The timeline sample just after what the recogniser was given."""
        return self._seg_pos + (self._fed - self._seg_fed)

    def _timeline(self, vosk_seconds: float) -> float:
        """Vosk's word time (seconds of audio it was given, ever) on the timeline."""
        return round((self._seg_pos + vosk_seconds * SAMPLE_RATE - self._seg_fed) / SAMPLE_RATE, 3)

    @staticmethod
    def _seconds(samples: int) -> float:
        return round(samples / SAMPLE_RATE, 3)


# -- offline ---------------------------------------------------------------------------


def recorded_packets(path: Path) -> Iterable[tuple[bytes, int, float]]:
    """A recording's Opus packets as ``(data, timestamp at 48 kHz, seconds in the
    file)``, in order, up to the end of what a truncated file holds."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                if packet.pts is None or packet.time_base is None or not packet.size:
                    continue
                seconds = packet.pts * packet.time_base
                yield bytes(packet), round(seconds * OPUS_RATE), float(seconds)
    except av.FFmpegError as exc:
        logger.info("stt: reading %s stopped: %s", path.name, exc)


def replay(path: Path, model: Any, config: PipelineConfig | None = None) -> tuple[float | None, list[Result]]:
    """Run a recording's audio through a fresh :class:`Pipeline`: the results
    the live pipeline produced from the same packets. Returns where the
    timeline's 0 is in the file (seconds; None without audio) and the results."""
    pipeline = Pipeline(model, config)
    origin: float | None = None
    results: list[Result] = []
    for data, timestamp, seconds in recorded_packets(path):
        if origin is None:
            origin = seconds
        results.extend(pipeline.push(data, timestamp))
    results.extend(pipeline.finish())
    return origin, results
