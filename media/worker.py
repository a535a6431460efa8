"""The media worker: takes chart-leg offers from Redis, answers them, records,
and serves snapshot requests for the legs it holds. :class:`Worker` ties its
parts together:

- **Jobs** (:mod:`media.jobs_stream`): offers read from a Redis Stream by a
  consumer group, only while the worker has room; answered, then acknowledged.
- **Control** (:mod:`media.control`): snapshot and close requests on the
  worker's own stream, each answered on the asker's reply list.
- **Ownership** (:mod:`media.ownership`): the worker's presence and its legs'
  keys in Redis, refreshed every heartbeat, so the node knows where to send a
  snapshot request and a worker that dies stops owning its legs within seconds.
- **One leg per participant**: a new offer from a participant who already has
  a leg replaces the old one (see :meth:`Worker.handle_offer`).
- **Speech-to-text**: one Vosk model per language and process, loaded in the
  background when the worker starts (:class:`media.stt_model.SpeechModels`);
  each leg's audio is transcribed in a thread of its own
  (:mod:`media.transcriber`) with the model of its speaker's language: the
  patient's is the visit's language, the doctor's the one their offer named
  (changed by a ``language`` control request). Captions go to room
  ``media:<visit>:captions`` (the doctor, and a patient who turned them on), or
  to both parties when the visit's clinic shows captions to the patient (the
  clinic's setting in Redis, :mod:`telemed.clinic_config`, read when each leg
  starts; the process setting ``captions_to_patient`` is its default).

Starting the worker also installs the one change it makes to aioice
(:func:`media.ice.install`) and checks the aiortc internals its taps rely on
(:func:`media.tap.check`): both are refused, with a clear error, for versions
other than the pinned ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from media import ice, tap
from media.config import MediaSettings
from media.control import ControlStream, ask_to_close
from media.jobs import check_offer
from media.jobs_stream import JobStream
from media.leg import ChartLeg, LegState
from media.ownership import Ownership
from media.stt_model import SpeechModels
from telemed import chart, clinic_config
from telemed import keys as telemed_keys
from telemed.audit import AuditLog
from telemed.chart import BundleError, visit_folder
from telemed.emitter import ExternalEmitter
from telemed.exceptions import Conflict, Forbidden, NotFound, Unavailable
from telemed.guests import GuestState
from telemed.media_protocol import NAMESPACE, Job, keys, room_captions, room_media
from telemed.redis_client import redis_client
from telemed.visits import State

logger = logging.getLogger(__name__)

class Worker:
    """One media worker process's state; drive it with :meth:`start` /
    :meth:`stop`, or call :meth:`handle_offer` directly (tests)."""

    def __init__(self, settings: MediaSettings, redis: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        # socket_timeout well above the 1 s blocking reads, so a Redis that stops
        # answering surfaces as an error instead of a hang.
        self.redis: Any = redis or redis_client(settings.base, socket_timeout=10)
        self._own_redis = redis is None
        self.emitter = ExternalEmitter(settings.base, channel=telemed_keys.SOCKETIO_CHANNEL)
        self.legs: dict[tuple[str, str], ChartLeg] = {}
        self.speech = SpeechModels(settings.stt_models)
        self.started = time.time()
        self.ownership = Ownership(self.redis, self.worker_id, settings.heartbeat)
        self.jobs = JobStream(
            self.redis, self.worker_id, claim_idle=settings.claim_idle, job_ttl=settings.job_ttl,
            answer=self.handle_offer, emit=self.emit, has_room=self._has_room, spawn=self._spawn,
            stopping=lambda: self._stopping,
        )
        self.control = ControlStream(
            self.redis, self.worker_id, self.started, find_leg=lambda visit, role: self.legs.get((visit, role)),
            spawn=self._spawn, stopping=lambda: self._stopping,
        )
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: Per leg: its captions go to the patient too (the clinic's setting when it started).
        self._captions_to_patient: dict[tuple[str, str], bool] = {}
        self._answering = 0
        self._loops: list[asyncio.Task[Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transcripts: set[asyncio.Task[None]] = set()
        self._releases: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def __repr__(self) -> str:
        return f"Worker({self.worker_id})"

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _has_room(self) -> bool:
        return len(self.legs) + self._answering + self.jobs.taken < self.settings.max_legs

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Announce the worker and start taking jobs and control requests."""
        ice.install()
        tap.check()
        await self.jobs.create_group()
        self.speech.start()
        await self._beat()
        self._loops = [
            asyncio.create_task(self.jobs.run(), name=f"{self!r} jobs"),
            asyncio.create_task(self.control.run(), name=f"{self!r} control"),
            asyncio.create_task(self._heartbeat_loop(), name=f"{self!r} heartbeat"),
        ]
        logger.info("Worker(%s) started (addresses %s, announced %s, up to %d legs)", self.worker_id,
                    ",".join(self.settings.addresses) or "all but loopback", self.settings.announced_address or "-",
                    self.settings.max_legs)

    async def stop(self) -> None:
        """Stop taking work and finish every file properly (SIGTERM)."""
        if self._stopping:
            return
        self._stopping = True
        for task in self._loops:
            task.cancel()
        # The loops also check _stopping, in case a Redis call swallowed the cancellation.
        await self._wait_tasks(self._loops)
        # Offers being answered right now finish (they are short), then every leg closes.
        deadline = time.monotonic() + 5
        while (self._answering or self.jobs.taken) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.gather(*(leg.close("worker stopping") for leg in list(self.legs.values())), return_exceptions=True)
        if self._transcripts:
            # Each finishes its speaker's queued audio (bounded by Transcriber.close's timeout).
            await asyncio.wait(self._transcripts, timeout=30)
        if self._releases:
            # The legs' keys go now rather than when they expire (cancelled mid-call, a
            # release whose script Redis had not cached yet would leave its key behind).
            await asyncio.wait(self._releases, timeout=3)
        for task in list(self._tasks):
            task.cancel()
        await self._wait_tasks(list(self._tasks))
        try:
            await self.redis.delete(keys.worker(self.worker_id), keys.control(self.worker_id))
        except RedisError:
            logger.warning("Worker(%s) could not remove its presence from Redis", self.worker_id)
        if self.emitter.redis is not None:
            await self.emitter.redis.aclose()
        if self._own_redis:
            await self.redis.aclose()
        logger.info("Worker(%s) stopped", self.worker_id)

    async def _wait_tasks(self, tasks: list[asyncio.Task[Any]], timeout: float = 5) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            logger.warning("Worker(%s) task %s did not stop", self.worker_id, task.get_name())

    # -- offers ------------------------------------------------------------------------

    async def handle_offer(self, job: Job | Mapping[str, str]) -> str:
        """Answer a chart-leg offer; returns the answer SDP.

        Refused with a :class:`TelemedError` (nothing left open) when the job or
        offer is malformed (``bad_request``), the visit does not exist
        (``not_found``), is not in progress (``conflict``), the patient has not
        consented to recording or the sender is not a party of the visit
        (``forbidden``), or the worker is full (``unavailable``).

        A participant who already has a leg gets the new one and the old one is
        closed (here, or by its worker through a control request): a second
        offer almost always means the browser lost the first leg (network
        change, reload, a worker that died) and the old one has not timed out
        yet, and refusing it would leave a gap in the recording until it does.
        Only that participant's authenticated socket can make the offer, so
        nobody else can displace a leg.
        """
        if not isinstance(job, Job):
            job = Job.from_fields(job)
        kinds = check_offer(job.sdp)
        visit = await self._check_visit(job)
        key = (job.visit, job.role)
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._answering += 1
        try:
            async with lock:
                if self._stopping:
                    raise Unavailable("the worker is stopping; offer again")
                old = self.legs.get(key)
                if old is None and len(self.legs) >= self.settings.max_legs:
                    raise Unavailable("the worker is full; offer again")
                if old is not None:
                    await old.close("replaced by a new leg")
                else:
                    await self._displace_remote(job)
                folder = visit_folder(self.settings.recordings_dir, job.clinic, job.visit)
                self._captions_to_patient[key] = await self._clinic_captions(job.clinic)
                # The patient speaks the visit's language (the visit's record decides, not the job).
                language = (visit.get("language") or job.language) if job.role == "patient" else job.language
                leg = ChartLeg(job, kinds, self.settings, self, folder, visit_start=_number(visit.get("admitted_at")),
                               language=language)
                sdp = await leg.answer()
                self.legs[key] = leg
                try:
                    await self.ownership.claim(leg)
                except RedisError:
                    await leg.close("redis unavailable")
                    raise Unavailable("Redis is unavailable; offer again") from None
                return sdp
        finally:
            self._answering -= 1
            if not lock.locked() and key not in self.legs:
                self._locks.pop(key, None)

    async def _check_visit(self, job: Job) -> dict[str, str]:
        """The visit's hash, if this job may open a leg for it."""
        h: dict[str, str] = await self.redis.hgetall(telemed_keys.visit(job.visit))
        if not h:
            raise NotFound("no such visit")
        if h.get("clinic") != job.clinic:
            raise Forbidden("the visit belongs to another clinic")
        state = h.get("state", "")
        if state != State.IN_VISIT.value:
            raise Conflict(f"no chart leg while the visit is {state}", state=state)
        if h.get("consent_recording") != "1" or job.consent is False:
            raise Forbidden("the patient has not consented to recording", reason="no_consent")
        if job.guest:
            await self._check_guest(job)
            return h
        expected = h.get("patient_sub", "") if job.role == "patient" else h.get("doctor", "")
        if expected and expected != job.sub:
            raise Forbidden(f"the sender is not this visit's {job.role}")
        return h

    async def _check_guest(self, job: Job) -> None:
        """A guest's leg: they are in the visit now (admitted) and agreed to be recorded."""
        g: dict[str, str] = await self.redis.hgetall(telemed_keys.guest(job.visit, job.role))
        if not g or g.get("sub") != job.sub:
            raise Forbidden("the sender is not this guest of the visit")
        if g.get("state") != GuestState.ADMITTED.value:
            raise Conflict("the guest is not in the visit", state=State.IN_VISIT.value, guest_state=g.get("state", ""))
        if g.get("consent_recording") != "1":
            raise Forbidden("this guest did not consent to recording", reason="no_consent")

    async def _displace_remote(self, job: Job) -> None:
        """Ask the worker holding this participant's old leg (if alive) to close it."""
        owner, old_job = await self.ownership.holder(job.visit, job.role)
        if owner and owner != self.worker_id and await self.ownership.alive(owner):
            await ask_to_close(self.redis, owner, req=f"displace-{job.id}", visit=job.visit, role=job.role,
                               job=old_job or "", reason="replaced by a new leg")
            logger.info("Worker(%s) asked %s to close its leg %s", self.worker_id, owner, old_job)

    async def snapshot(self, visit_id: str, role: str = "patient") -> dict[str, Any]:
        """A snapshot of a leg held here (the control request's work, callable directly)."""
        leg = self.legs.get((visit_id, role))
        if leg is None:
            raise NotFound("no chart leg of that participant here")
        return (await leg.snapshot()).to_dict()

    # -- what legs ask of the worker (media.leg.LegHost) ------------------------------

    async def allocate_file(self, leg: ChartLeg) -> int:
        return await self.ownership.allocate_file(leg)

    async def gone_workers(self, workers: set[str]) -> set[str]:
        return await self.ownership.gone(workers)

    async def leg_recording(self, leg: ChartLeg) -> None:
        await self.ownership.record_file(leg)

    async def leg_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None:
        await self.emit(event, {"visit_id": leg.job.visit, **_speaker(leg.job), **data}, room_media(leg.job.visit))

    async def stt_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None:
        to_patient = self._captions_to_patient.get((leg.job.visit, leg.job.role), self.settings.captions_to_patient)
        room = room_media(leg.job.visit) if to_patient else room_captions(leg.job.visit)
        await self.emit(event, {"visit_id": leg.job.visit, **_speaker(leg.job), **data}, room)

    async def _clinic_captions(self, clinic: str) -> bool:
        """Whether the clinic shows captions to the patient now (its admin's
        choice, else the process setting); the default if Redis cannot say."""
        try:
            return (await clinic_config.get(self.redis, self.settings.base, clinic)).captions_to_patient
        except RedisError as exc:
            logger.warning("Worker(%s) could not read the clinic's settings: %s", self.worker_id, type(exc).__name__)
            return self.settings.captions_to_patient

    def leg_closed(self, leg: ChartLeg) -> None:
        if self.legs.get(leg.key) is leg:
            del self.legs[leg.key]
            self._captions_to_patient.pop(leg.key, None)
        finishing = self._spawn(self._reseal(leg), f"reseal {leg!r}")
        self._transcripts.add(finishing)
        finishing.add_done_callback(self._transcripts.discard)
        release = self._spawn(self.ownership.release(leg), f"release {leg!r}")
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    async def _reseal(self, leg: ChartLeg) -> None:
        """Once the leg's last words are in the transcript: if the visit's chart
        was sealed already (the visit ended before this leg finished writing),
        seal it again so its manifest and FHIR export cover the final files."""
        if leg.transcribed is not None:
            await asyncio.gather(leg.transcribed, return_exceptions=True)
        if not (leg.folder / chart.VISIT).is_file():
            return  # the node seals when it writes visit.json, after the visit
        try:
            audit = AuditLog(self.settings.audit_log)
            await asyncio.to_thread(chart.seal, leg.folder, self.settings.public_url, audit)
        except BundleError:
            pass  # logged by the seal (where, not what); the manifest is written
        except Exception:
            logger.exception("Worker(%s) could not reseal the chart of %s", self.worker_id, leg.job.visit)

    async def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        try:
            await self.emitter.emit(event, data, room=room, namespace=NAMESPACE)
        except Exception:
            logger.exception("Worker(%s) could not emit %s", self.worker_id, event)

    # -- heartbeat ---------------------------------------------------------------------

    async def _beat(self) -> None:
        await self.ownership.beat(legs=len(self.legs), capacity=self.settings.max_legs, started=self.started,
                                  stt=self.speech.state.value)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.heartbeat)
            try:
                await self._beat()
                await self._check_legs()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Worker(%s) heartbeat failed: %s", self.worker_id, exc)
            except Exception:
                logger.exception("Worker(%s) heartbeat", self.worker_id)

    async def _check_legs(self) -> None:
        """Close the legs whose key another leg took, whose visit is over, whose
        guest left or was removed, or that stopped receiving media."""
        legs = [leg for leg in self.legs.values() if leg.state is not LegState.CLOSED]
        if not legs:
            return
        pipe = self.redis.pipeline(transaction=False)
        for leg in legs:
            pipe.hget(telemed_keys.visit(leg.job.visit), "state")
            if leg.job.guest:  # a guest's leg lasts while they are in the visit
                pipe.hget(telemed_keys.guest(leg.job.visit, leg.job.role), "state")
            else:
                pipe.echo("")
        replies = await pipe.execute()
        now = time.time()
        for leg, state, guest_state in zip(legs, replies[::2], replies[1::2], strict=True):
            if not await self.ownership.refresh(leg):
                leg.close_soon("replaced by a new leg")
            elif state != State.IN_VISIT.value:
                leg.close_soon(f"visit {state or 'gone'}")
            elif leg.job.guest and guest_state != GuestState.ADMITTED.value:
                leg.close_soon(f"guest {guest_state or 'gone'}")
            elif leg.state is LegState.LIVE and now - (leg.last_media or leg.created) > self.settings.media_timeout:
                leg.close_soon("no media")


def _speaker(job: Job) -> dict[str, str]:
    """Whose leg an event is about: ``role`` the party (``patient``, ``doctor``,
    or a guest's id, what pages key on); a guest's also say their ``kind`` and
    ``name`` (pages know the patient and the doctor by role)."""
    if job.guest:
        return {"role": job.role, "kind": job.kind, "name": job.name}
    return {"role": job.role}


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
