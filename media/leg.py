"""A chart leg: one participant's send-only peer connection to the worker,
recorded without decoding, transcribed (:mod:`media.transcriber`), with
snapshots on request.

Life cycle: ``answering`` (the offer is being applied) → ``connecting`` (the
answer went out) → ``live`` (media flows; the file opens at the first video
keyframe) → ``closed``. Closing is idempotent and always leaves nothing open:
the file is finished, the peer connection closed, the chart index updated and
the worker told (which removes the leg's Redis key).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription

from media import ice
from media.config import MediaSettings
from media.jobs import CODECS
from media.recorder import Recorder, probe_end
from media.snapshot import Snapshot, write_snapshot
from media.stt import PipelineConfig
from media.stt_model import SpeechModels
from media.tap import EncodedFrame, EncodedTap, attach
from media.transcriber import Transcriber
from telemed.chart import ChartIndex, Transcript, party_of, recording_name
from telemed.exceptions import BadRequest, Conflict, TelemedError, Unavailable
from telemed.media_protocol import Job

logger = logging.getLogger(__name__)


#: Frames kept while the file is being set up (about a second of audio and video).
MAX_EARLY = 100


class LegState(enum.StrEnum):
    ANSWERING = "answering"
    CONNECTING = "connecting"
    LIVE = "live"
    CLOSED = "closed"


#: The legal moves; anything else is a bug (:class:`RuntimeError`).
_NEXT = {
    LegState.ANSWERING: {LegState.CONNECTING, LegState.CLOSED},
    LegState.CONNECTING: {LegState.LIVE, LegState.CLOSED},
    LegState.LIVE: {LegState.CLOSED},
    LegState.CLOSED: set(),
}


class LegHost(Protocol):
    """What a leg needs from its worker."""

    worker_id: str
    speech: SpeechModels

    async def allocate_file(self, leg: ChartLeg) -> int: ...

    async def gone_workers(self, workers: set[str]) -> set[str]: ...

    async def leg_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None: ...

    async def leg_recording(self, leg: ChartLeg) -> None: ...

    async def stt_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None: ...

    def leg_closed(self, leg: ChartLeg) -> None: ...


def _preferences(kind: str) -> list[Any]:
    """Only the codec we record (plus RTX for video retransmissions)."""
    wanted = {CODECS[kind], "rtx"}
    caps = RTCRtpReceiver.getCapabilities(kind)
    assert caps is not None
    return [c for c in caps.codecs if c.name.lower() in wanted]


class ChartLeg:
    """One participant's leg: peer connection, taps, recorder, transcriber, snapshots.

    :param visit_start: wall time the visit started (its admit): 0 in the
        transcript. None: unknown, the leg's creation is used.
    :param language: the speaker's language (default: the job's).
    """

    def __init__(self, job: Job, kinds: set[str], settings: MediaSettings, host: LegHost, folder: Path,
                 visit_start: float | None = None, language: str | None = None) -> None:
        self.job = job
        self.language = language or job.language
        """The speaker's language: their transcript's and captions' model."""
        self.kinds = kinds
        self.settings = settings
        self.host = host
        self.folder = folder
        self.index = ChartIndex(folder)
        self.state = LegState.ANSWERING
        self.pc = RTCPeerConnection(ice.configuration(settings))
        self.taps: dict[str, EncodedTap] = {}
        self.recorder: Recorder | None = None
        self.file: str | None = None
        self.n: int | None = None
        self.created = time.time()
        self.visit_start = visit_start
        self.stt: Transcriber | None = None
        self.transcribed: asyncio.Task[None] | None = None
        """Set on close: the transcriber finishing its backlog."""
        self.last_media: float | None = None
        self.close_reason = ""
        self._snapshot_waiters: list[asyncio.Future[EncodedFrame]] = []
        self._early: list[EncodedFrame] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self._close_started = False
        self._announced: asyncio.Task[None] | None = None
        self.pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"ChartLeg({self.job.id})"

    @property
    def key(self) -> tuple[str, str]:
        return self.job.visit, self.job.role

    def _move(self, state: LegState) -> None:
        if state not in _NEXT[self.state]:
            raise RuntimeError(f"{self!r}: {self.state} -> {state} is not a legal move")
        self.state = state

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self!r} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- answering ---------------------------------------------------------------------

    async def answer(self) -> str:
        """Apply the offer and return the answer SDP. On any failure the leg is
        closed (nothing left open) and a :class:`TelemedError` raised."""
        try:
            for kind in sorted(self.kinds):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_preferences(kind))
            await self.pc.setRemoteDescription(RTCSessionDescription(self.job.sdp, "offer"))
            for transceiver in self.pc.getTransceivers():
                kind = transceiver.kind
                self.taps[kind] = attach(transceiver.receiver, kind, self._on_frame, self._on_track_end)
            answer = await self.pc.createAnswer()
            with ice.host_addresses(self.settings.addresses, self.settings.ports):
                await self.pc.setLocalDescription(answer)
            if not self.pc.localDescription or "a=candidate:" not in self.pc.localDescription.sdp:
                raise Unavailable("the worker has no usable media address")
            sdp = ice.announce(self.pc.localDescription.sdp, self.settings.announced_address)
        except BaseException as exc:
            reason = exc.message if isinstance(exc, TelemedError) else repr(exc)
            await self.close(f"answer failed: {reason}")
            if isinstance(exc, TelemedError) or not isinstance(exc, Exception):
                raise  # our own refusal, or a cancellation
            # What remains comes from aiortc applying the offer (ValueError,
            # OperationError, ...): the offer's fault as far as the browser can tell.
            logger.warning("ChartLeg(%s) refused the offer: %s", self.job.id, repr(exc))
            raise BadRequest(f"offer refused: {exc or type(exc).__name__}", fields=["sdp"]) from None
        self._move(LegState.CONNECTING)
        if "audio" in self.kinds:
            self.stt = self._transcriber()
        self._spawn(self._connect_deadline(), "connect-deadline")
        logger.info("ChartLeg(%s) answered (%s, %s of visit %s)", self.job.id, "+".join(sorted(self.kinds)), self.job.role, self.job.visit)
        return sdp

    def _transcriber(self) -> Transcriber:
        if self.visit_start is None:
            logger.warning("ChartLeg(%s) visit start unknown: transcript times count from the leg's start", self.job.id)
        return Transcriber(
            self.job.id,
            self.job.role,
            self.host.speech.for_language(self.language),
            PipelineConfig(gate=self.settings.stt_gate),
            Transcript(self.folder),
            self.visit_start if self.visit_start is not None else self.created,
            lambda event, data: self.host.stt_event(self, event, data),
            recording=lambda: self.file,
            backlog=round(self.settings.stt_backlog * 50),
            language=self.language,
            label=self.job.label,
        )

    def set_language(self, language: str) -> None:
        """The speaker speaks ``language`` from now on: recognised with its model
        from the next packet (the utterance in progress ends in the old one)."""
        self.language = language
        if self.stt is not None:
            self.stt.switch(language, self.host.speech.for_language(language))
        logger.info("ChartLeg(%s) language %s", self.job.id, language)

    async def _connect_deadline(self) -> None:
        await asyncio.sleep(self.settings.connect_timeout)
        if self.state is LegState.CONNECTING:
            await self.close("no connection")

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.debug("ChartLeg(%s) connection %s", self.job.id, state)
        if state == "connected" and self.state is LegState.CONNECTING:
            self._move(LegState.LIVE)
            self._spawn(self._start_recording(), "start-recording")
        elif state in ("failed", "closed") and self.state is not LegState.CLOSED:
            self.close_soon(f"connection {state}")

    # -- recording ---------------------------------------------------------------------

    async def _start_recording(self) -> None:
        try:
            roles_gone = await self._close_stale_files()
            if roles_gone:
                logger.info("ChartLeg(%s) previous files interrupted: %s", self.job.id, ", ".join(roles_gone))
            self.n = await self.host.allocate_file(self)
        except Exception:
            logger.exception("ChartLeg(%s) could not start recording", self.job.id)
            await self.close("recording failed")
            return
        if self.state is LegState.CLOSED:
            return
        self.file = recording_name(self.job.role, self.n)
        video = self.taps.get("video")
        self.recorder = Recorder(
            self.folder / self.file,
            self.kinds,
            keyframe_wait=self.settings.keyframe_wait,
            keyframe_interval=self.settings.keyframe_interval,
            cluster_ms=self.settings.cluster_ms,
            interleave_ms=self.settings.interleave_ms,
            on_open=self._on_file_open,
            need_keyframe=video.request_keyframe if video else None,
        )
        early, self._early = self._early, []
        for frame in early:
            self.recorder.push(frame)
        if video and not any(f.keyframe for f in early if f.kind == "video"):
            video.request_keyframe()
        await self.host.leg_recording(self)

    async def _close_stale_files(self) -> list[str]:
        """Files of this participant left ``recording`` by a dead worker: mark them interrupted."""
        doc = await asyncio.to_thread(self.index.read)
        owners = {r.get("worker", "") for r in doc["recordings"] if party_of(r) == self.job.role and r["state"] == "recording"}
        owners.discard(self.host.worker_id)
        if not owners:
            return []
        gone = await self.host.gone_workers(owners)
        if not gone:
            return []
        return await asyncio.to_thread(self.index.close_stale, self.job.role, lambda w: w in gone, probe_end)

    def _on_file_open(self, started_at: float) -> None:
        self._announced = self._spawn(self._announce_file(started_at), "file-open")

    async def _announce_file(self, started_at: float) -> None:
        assert self.file is not None
        entry = {
            "file": self.file,
            **self.job.label,
            "n": self.n,
            "worker": self.host.worker_id,
            "started_at": round(started_at, 3),
            "ended_at": None,
        }
        try:
            await asyncio.to_thread(self.index.start_recording, entry)
        except OSError:
            logger.exception("ChartLeg(%s) could not write the chart index", self.job.id)
        await self.host.leg_event(self, "recording", {"state": "started", "file": self.file})
        logger.info("ChartLeg(%s) recording started: %s", self.job.id, self.file)

    def _on_frame(self, frame: EncodedFrame) -> None:
        self.last_media = frame.arrival
        if frame.kind == "video" and frame.keyframe and self._snapshot_waiters:
            waiters, self._snapshot_waiters = self._snapshot_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(frame)
        if frame.kind == "audio" and self.stt is not None:
            self.stt.push(frame)
        if self.recorder is not None:
            self.recorder.push(frame)
        elif len(self._early) < MAX_EARLY:
            # Media can arrive while the file is being set up (a Redis round trip):
            # keep it, so the sender's first keyframe is not lost.
            self._early.append(frame)

    def _on_track_end(self) -> None:
        # RTCP BYE or the transport went away. One track ending (a camera turned
        # off with transceiver.stop()) leaves the other recording; all of them
        # ending means the sender is done with this leg.
        if self.state is LegState.LIVE and all(tap.ended for tap in self.taps.values()):
            self.close_soon("sender ended")

    # -- snapshots ---------------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        """Ask the sender for a key frame, decode that one frame into a JPEG in
        the chart, and measure it."""
        video = self.taps.get("video")
        if video is None:
            raise Conflict("this leg carries no video")
        if self.state is not LegState.LIVE:
            raise Conflict(f"the leg is {self.state.value}", state=self.state.value)
        waiter: asyncio.Future[EncodedFrame] = asyncio.get_running_loop().create_future()
        self._snapshot_waiters.append(waiter)
        deadline = time.monotonic() + self.settings.snapshot_timeout
        try:
            # Repeat the PLI: RTCP is not retransmitted, and one can be lost.
            while not waiter.done():
                video.request_keyframe()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable("no key frame arrived in time; try again")
                await asyncio.wait([waiter], timeout=min(0.3, remaining))
            frame = waiter.result()
        finally:
            if waiter in self._snapshot_waiters:
                self._snapshot_waiters.remove(waiter)
            waiter.cancel()
        snap = await asyncio.to_thread(write_snapshot, self.folder, frame.data, frame.arrival)
        entry = {**snap.to_dict(), **self.job.label, "worker": self.host.worker_id}
        await asyncio.to_thread(self.index.add_snapshot, entry)
        logger.info("ChartLeg(%s) snapshot %s (sharpness %.0f, brightness %.0f)", self.job.id, snap.id, snap.sharpness, snap.brightness)
        return snap

    # -- closing -----------------------------------------------------------------------

    def close_soon(self, reason: str) -> None:
        """Close from a callback (not awaitable there)."""
        if not self._close_started:
            self._spawn(self.close(reason), "close")

    async def close(self, reason: str = "closed") -> None:
        """Finish the file, close the peer connection, update the chart. Idempotent."""
        if self._close_started:
            await self._closed.wait()
            return
        self._close_started = True
        self.close_reason = reason
        self._move(LegState.CLOSED)
        try:
            for waiter in self._snapshot_waiters:
                waiter.cancel()
            if self.stt is not None:
                self.stt.close_input()  # the same last packet as the recording
            stats = self.recorder.close() if self.recorder is not None else None
            try:
                await self.pc.close()
            except Exception:
                logger.exception("ChartLeg(%s) peer connection did not close cleanly", self.job.id)
            if self._announced is not None:
                await asyncio.gather(self._announced, return_exceptions=True)  # the entry to finish
            if stats is not None and stats.started_at is not None:
                assert self.file is not None
                try:
                    await asyncio.to_thread(
                        self.index.finish_recording,
                        self.file,
                        state="complete",
                        ended_at=round(stats.started_at + stats.duration, 3),
                        duration=round(stats.duration, 3),
                        frames=stats.frames,
                        dropped=stats.dropped,
                        end_reason=reason,
                    )
                except OSError:
                    logger.exception("ChartLeg(%s) could not write the chart index", self.job.id)
                await self.host.leg_event(self, "recording", {"state": "stopped", "file": self.file, "reason": reason})
            if stats is not None and stats.started_at is None:
                # No media ever came: drop the empty file the number was reserved with.
                stats.path.unlink(missing_ok=True)
            if self.recorder is not None:
                try:
                    await self._close_stale_files()
                except Exception:
                    logger.exception("ChartLeg(%s) could not check for interrupted files", self.job.id)
            if self.stt is not None:
                # The last utterance, into the transcript. In the background: a
                # backlog of speech may take seconds, and a participant's new leg
                # waits for this one to close. The worker keeps the task.
                self.transcribed = asyncio.create_task(self.stt.close(), name=f"{self!r} transcript")
            current = asyncio.current_task()
            for task in list(self._tasks):
                if task is not current:
                    task.cancel()
        finally:
            self.host.leg_closed(self)
            self._closed.set()
            logger.info("ChartLeg(%s) closed: %s", self.job.id, reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()
