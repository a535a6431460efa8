"""One speaker's live speech-to-text: a :class:`~media.stt.Pipeline` in a thread
of its own, fed from the event loop, reporting back to it.

- **Off the loop.** The tap hands each Opus packet over with one
  ``SimpleQueue.put`` on the event loop's thread; decoding, resampling, the
  gate and Vosk run in this speaker's thread (Vosk releases the GIL), so one
  speaker's recognition never holds up another leg's audio, the recording, or
  the loop.
- **Falling behind.** At most ``backlog`` packets (20 ms each) wait. When the
  queue is full, new packets are dropped, not queued, until it has drained to
  half: the recording is never touched, the recogniser catches up on what it
  has, and the hole in the timestamps ends the utterance there (nothing is
  glued across it). The parties get ``captions`` ``{state: "behind",
  waiting_s}`` when shedding starts and ``{state: "live", dropped_s}`` when
  it stops.
- **Results.** Each final goes to the transcript (:mod:`telemed.chart.transcript`,
  written by this thread) and, like partials, to the event loop, where one
  task emits them in the order they were made.
- **Times** of the speaker's timeline (0 = their first audio packet) become
  seconds since the visit started: the first packet's wall time is its
  arrival less what aiortc's jitter buffer held it
  (:data:`media.recorder.HOLD`, as the recording does).
- **Language.** The speaker is recognised with their language's model; every
  event and transcript line says which language. Without a model for it, the
  parties get ``captions`` ``{state: "unavailable", reason: "no_model",
  language}`` and the audio goes to the recording only. :meth:`Transcriber.switch`
  changes language mid-leg: the utterance in progress is finalised in the old
  language, and recognition goes on with the new model from the next packet
  (on the same timeline).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from media.recorder import HOLD
from media.stt import OPUS_RATE, Pipeline, PipelineConfig, Result
from media.stt_model import REASONS, ModelSource, SttUnavailable
from media.tap import EncodedFrame
from telemed.chart import Transcript
from telemed.languages import DEFAULT

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class _Switch:
    """In the queue: the speaker's language from here on."""

    language: str
    source: ModelSource


class Transcriber:
    """Speech-to-text of one speaker of a chart leg.

    :param name: for logs (the leg's job id).
    :param reference: wall time that is 0 in the transcript (the visit's start).
    :param emit: sends ``caption`` / ``captions`` events to the parties (awaited in order).
    :param recording: the name of the file the leg is recording to now, if any.
    :param backlog: packets that may wait for the recogniser.
    :param language: the speaker's language (``source`` is its model).
    :param label: who speaks, as each transcript line names them (``{role,
        party, kind, name}``, :attr:`telemed.media_protocol.Job.label`);
        default: ``{role}``.
    """

    def __init__(
        self,
        name: str,
        role: str,
        source: ModelSource,
        config: PipelineConfig,
        transcript: Transcript,
        reference: float,
        emit: Emit,
        recording: Callable[[], str | None] = lambda: None,
        backlog: int = 500,
        language: str = DEFAULT,
        label: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.role = role
        self.label = dict(label) if label is not None else {"role": role}
        self.source = source
        self.language = language
        """The language the speaker is recognised in (from the last :meth:`switch`)."""
        self.config = config
        self.transcript = transcript
        self.reference = reference
        self.recording = recording
        self.backlog = max(2, backlog)
        self.anchor: float | None = None
        """Wall time of the timeline's 0 (set by the first packet)."""
        self.pipeline: Pipeline | None = None
        self.dropped = 0
        self.unavailable: SttUnavailable | None = None
        self._emit = emit
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue: queue.SimpleQueue[EncodedFrame | _Switch | None] = queue.SimpleQueue()
        self._shedding = False
        self._shed_from = 0
        self._input_closed = False
        self._abandon = False
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._done = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"stt-{name}", daemon=True)
        self._thread.start()
        self._pump = self._loop.create_task(self._send(), name=f"{self!r} captions")

    def __repr__(self) -> str:
        return f"Transcriber({self.name})"

    # -- the event loop's side ---------------------------------------------------------

    def push(self, frame: EncodedFrame) -> None:
        """Take one audio packet (on the event loop's thread; never blocks)."""
        if self._input_closed:
            return
        if self.anchor is None:
            self.anchor = frame.arrival - HOLD["audio"]
        waiting = self._queue.qsize()
        if self._shedding and waiting <= self.backlog // 2:
            self._shedding = False
            lost = self.dropped - self._shed_from
            logger.warning("Transcriber(%s) caught up; %.1fs of audio went untranscribed", self.name, lost * 0.02)
            self._report("captions", {"state": "live", "dropped_s": round(lost * 0.02, 2), "language": self.language})
        if not self._shedding and waiting >= self.backlog:
            self._shedding = True
            self._shed_from = self.dropped
            logger.warning("Transcriber(%s) is %.0fs behind: dropping audio until it catches up", self.name, waiting * 0.02)
            self._report("captions", {"state": "behind", "waiting_s": round(waiting * 0.02, 2), "language": self.language})
        if self._shedding:
            self.dropped += 1
            return
        self._queue.put(frame)

    def switch(self, language: str, source: ModelSource) -> None:
        """The speaker speaks ``language`` from now on (on the event loop's thread)."""
        if self._input_closed or language == self.language:
            return
        self.language = language
        self._queue.put(_Switch(language, source))

    def close_input(self) -> None:
        """No more audio (the recording stops taking it at the same moment)."""
        if not self._input_closed:
            self._input_closed = True
            self._queue.put(None)

    async def close(self, timeout: float = 15.0) -> None:
        """Finish what is queued, finalise the utterance in progress, send the
        last events. After ``timeout`` the thread is told to stop at the next
        packet (it still finalises what it has)."""
        self.close_input()
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except TimeoutError:
            self._abandon = True
            logger.warning("Transcriber(%s) did not finish in %.0fs; abandoning its backlog", self.name, timeout)
            try:
                await asyncio.wait_for(asyncio.shield(self._done), 5)
            except TimeoutError:
                logger.error("Transcriber(%s) thread is stuck", self.name)
        self._outbox.put_nowait(None)
        await asyncio.gather(self._pump, return_exceptions=True)

    async def _send(self) -> None:
        while (item := await self._outbox.get()) is not None:
            event, data = item
            try:
                await self._emit(event, data)
            except Exception:
                logger.exception("Transcriber(%s) could not send %s", self.name, event)

    def _report(self, event: str, data: dict[str, Any]) -> None:
        """Queue an event (from either thread)."""
        if threading.get_ident() == self._loop_thread:
            self._outbox.put_nowait((event, data))
            return
        try:
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, (event, data))
        except RuntimeError:
            pass  # the loop is gone (process exiting)

    # -- the speaker's thread ----------------------------------------------------------

    def _run(self) -> None:
        language, source = self.language, self.source
        pipeline: Pipeline | None = None
        ready = False  # this language's model was asked for (and the parties told)
        first_ts: int | None = None
        offset = 0.0  # where the current pipeline's timeline starts on the speaker's
        try:
            item = self._queue.get()
            while item is not None and not self._abandon:
                if isinstance(item, _Switch):
                    if pipeline is not None:
                        for result in pipeline.finish():
                            self._result(result, language, offset)
                        self._log_done(pipeline)
                    language, source, pipeline, ready = item.language, item.source, None, False
                    item = self._queue.get()
                    continue
                if first_ts is None:
                    first_ts = item.timestamp
                if not ready:
                    ready = True
                    pipeline = self._start(source, language)
                    offset = (item.timestamp - first_ts) / OPUS_RATE
                if pipeline is not None:
                    for result in pipeline.push(item.data, item.timestamp):
                        self._result(result, language, offset)
                item = self._queue.get()
            if pipeline is not None:
                for result in pipeline.finish():
                    self._result(result, language, offset)
                self._report("captions", {"state": "stopped", "language": language})
                self._log_done(pipeline)
        except Exception:
            logger.exception("Transcriber(%s) failed", self.name)
            self._report("captions", {"state": "unavailable", "reason": "failed", "message": REASONS["failed"],
                                      "language": language})
        finally:
            try:
                self._loop.call_soon_threadsafe(self._finished)
            except RuntimeError:
                pass

    def _start(self, source: ModelSource, language: str) -> Pipeline | None:
        """A pipeline with ``language``'s model (waiting for it to load), or None
        (the parties are told why; the audio goes to the recording only)."""
        try:
            model = source.get()
        except SttUnavailable as exc:
            self.unavailable = exc
            self._report("captions", {"state": "unavailable", "reason": exc.reason, "message": REASONS.get(exc.reason, ""),
                                      "language": language})
            return None
        self.unavailable = None
        self.pipeline = pipeline = Pipeline(model, self.config)
        self._report("captions", {"state": "live", "language": language})
        return pipeline

    def _log_done(self, pipeline: Pipeline) -> None:
        st = pipeline.stats
        logger.info("Transcriber(%s) done: %.1fs heard, %.1fs recognised, finals %s, %.1fs dropped, %d late packets",
                    self.name, st.frames * self.config.frame_ms / 1000, st.fed_s, st.finals, self.dropped * 0.02, st.late)

    def _finished(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def _visit_time(self, t: float) -> float:
        assert self.anchor is not None
        return round(self.anchor + t - self.reference, 3)

    def _result(self, r: Result, language: str, offset: float) -> None:
        """Report a result of the pipeline whose timeline starts ``offset`` s into the speaker's."""
        start, end = self._visit_time(offset + r.start), self._visit_time(offset + r.end)
        caption: dict[str, Any] = {"final": r.final, "text": r.text, "start": start, "end": end, "language": language}
        if r.final:
            words = [{**w.to_dict(), "start": self._visit_time(offset + w.start), "end": self._visit_time(offset + w.end)}
                     for w in r.words]
            caption["words"] = words
        self._report("caption", caption)
        if not r.final or not r.text:
            return
        assert self.anchor is not None
        entry = {**self.label, "language": language, "start": start, "end": end, "text": r.text,
                 "words": caption["words"], "at": round(self.anchor + offset + r.start, 3), "recording": self.recording()}
        try:
            self.transcript.append(entry)
        except OSError:
            logger.exception("Transcriber(%s) could not write the transcript", self.name)
