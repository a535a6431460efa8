"""The media worker: takes chart-leg offers from Redis, answers them, records,
and serves snapshot requests for the legs it holds.

- **Jobs** arrive on the stream :data:`telemed.media_protocol.keys.JOBS` (consumer group
  ``workers``). A worker reads one when it has room for another leg, answers
  it, publishes the answer to the browser (Socket.IO room ``leg:<job>`` in
  namespace ``/media``, through python-socketio's Redis emitter) and only then
  acknowledges and deletes the job. A job read by a worker that died before
  answering stays pending and is claimed by another after ``claim_idle``; one
  that failed :data:`MAX_DELIVERIES` times is dropped with an error.
- **Legs** are recorded in Redis (``tm:media:leg:{visit}:<role>`` → this
  worker and the job) with a short TTL refreshed every heartbeat, so the node
  knows where to send a snapshot request, and a worker that dies stops owning
  its legs within seconds.
- **Control** requests (snapshot, close) arrive on this worker's own stream
  ``tm:media:ctl:<worker>``; each reply is pushed to ``tm:media:reply:<req>``
  where the asker waits for it (see :mod:`telemed.media_protocol.client`).
- **One leg per participant**: a new offer from a participant who already has
  a leg replaces the old one (see :meth:`Worker.handle_offer`).
- **Speech-to-text**: one Vosk model per process, loaded in the background
  when the worker starts (:class:`media.stt.ModelSource`); each leg's audio is
  transcribed in a thread of its own (:mod:`media.transcriber`). Captions go
  to the doctor (room ``media:<visit>:staff``), or to both parties with
  ``captions_to_patient``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
import socketio
from redis.exceptions import RedisError, ResponseError

from media.config import MediaSettings
from media.jobs import check_offer
from media.leg import ChartLeg, LegState
from media.stt import ModelSource
from telemed import chart
from telemed import keys as telemed_keys
from telemed.audit import AuditLog, default_path
from telemed.chart import BundleError, recording_name, visit_folder
from telemed.exceptions import Conflict, Forbidden, NotFound, TelemedError, Unavailable
from telemed.media_protocol import (
    NAMESPACE,
    ControlRequest,
    Job,
    error_reply,
    keys,
    ok_reply,
    room_leg,
    room_media,
    room_staff,
)
from telemed.visits import State

logger = logging.getLogger(__name__)

#: A job whose handling killed (or timed out) this many workers is dropped.
MAX_DELIVERIES = 3

#: Refresh a leg's key only while it still names this leg's job; report otherwise.
_REFRESH_LEG = """
if redis.call('HGET', KEYS[1], 'job') == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: Delete a leg's key only if it still names this leg's job (a replacing leg
#: on another worker may own it by now).
_RELEASE_LEG = """
if redis.call('HGET', KEYS[1], 'job') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Worker:
    """One media worker process's state; drive it with :meth:`start` /
    :meth:`stop`, or call :meth:`handle_offer` directly (tests)."""

    def __init__(self, settings: MediaSettings, redis: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        # socket_timeout well above the 1 s blocking reads, so a Redis that stops
        # answering surfaces as an error instead of a hang.
        self.redis: Any = redis or aioredis.from_url(
            settings.redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=10
        )
        self._own_redis = redis is None
        self.emitter = socketio.AsyncRedisManager(settings.redis_url, channel=telemed_keys.SOCKETIO_CHANNEL, write_only=True)
        self.legs: dict[tuple[str, str], ChartLeg] = {}
        self.speech = ModelSource(settings.stt_model)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._answering = 0
        self._loops: list[asyncio.Task[Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._transcripts: set[asyncio.Task[None]] = set()
        self._releases: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.started = time.time()
        self._ttl = max(2, math.ceil(keys.WORKER_TTL_BEATS * settings.heartbeat))
        self._refresh_leg = self.redis.register_script(_REFRESH_LEG)
        self._release_leg = self.redis.register_script(_RELEASE_LEG)

    def __repr__(self) -> str:
        return f"Worker({self.worker_id})"

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Announce the worker and start taking jobs and control requests."""
        try:
            await self.redis.xgroup_create(keys.JOBS, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.speech.start()
        await self._beat()
        self._loops = [
            asyncio.create_task(self._jobs_loop(), name=f"{self!r} jobs"),
            asyncio.create_task(self._control_loop(), name=f"{self!r} control"),
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
        while self._answering and time.monotonic() < deadline:
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
                leg = ChartLeg(job, kinds, self.settings, self, folder, visit_start=_number(visit.get("admitted_at")))
                sdp = await leg.answer()
                self.legs[key] = leg
                try:
                    await self._claim(leg)
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
        expected = h.get("patient_sub", "") if job.role == "patient" else h.get("doctor", "")
        if expected and expected != job.sub:
            raise Forbidden(f"the sender is not this visit's {job.role}")
        return h

    async def _displace_remote(self, job: Job) -> None:
        """Ask the worker holding this participant's old leg (if alive) to close it."""
        owner, old_job = await self.redis.hmget(keys.leg(job.visit, job.role), ["worker", "job"])
        if owner and owner != self.worker_id and await self.redis.exists(keys.worker(owner)):
            await self.redis.xadd(
                keys.control(owner),
                {"req": f"displace-{job.id}", "op": "close", "visit": job.visit, "role": job.role,
                 "job": old_job or "", "reason": "replaced by a new leg"},
                maxlen=keys.CONTROL_MAXLEN,
                approximate=True,
            )
            logger.info("Worker(%s) asked %s to close its leg %s", self.worker_id, owner, old_job)

    async def _claim(self, leg: ChartLeg) -> None:
        key = keys.leg(leg.job.visit, leg.job.role)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"worker": self.worker_id, "job": leg.job.id, "started": repr(leg.created), "file": ""})
        pipe.expire(key, self._ttl)
        await pipe.execute()

    # -- what legs ask of the worker ---------------------------------------------------

    async def allocate_file(self, leg: ChartLeg) -> int:
        """The next file number of this participant, never reused (the counter is
        shared by all workers; the file is created exclusively, readable by the
        worker's user only, since it holds health data)."""
        key = keys.file_seq(leg.job.visit, leg.job.role)
        leg.folder.mkdir(parents=True, exist_ok=True)
        while True:
            n = int(await self.redis.incr(key))
            await self.redis.expire(key, keys.SEQ_TTL)
            try:
                fd = os.open(leg.folder / recording_name(leg.job.role, n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue  # a counter lost with a flushed Redis: skip files that exist
            os.close(fd)
            return n

    async def gone_workers(self, workers: set[str]) -> set[str]:
        ordered = sorted(workers)
        alive = await asyncio.gather(*(self.redis.exists(keys.worker(w)) for w in ordered))
        return {w for w, a in zip(ordered, alive, strict=True) if not a}

    async def leg_recording(self, leg: ChartLeg) -> None:
        try:
            await self.redis.hset(keys.leg(leg.job.visit, leg.job.role), "file", leg.file or "")
        except RedisError:
            logger.warning("Worker(%s) could not record the file of leg %s in Redis", self.worker_id, leg.job.id)

    async def leg_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None:
        await self.emit(event, {"visit_id": leg.job.visit, "role": leg.job.role, **data}, room_media(leg.job.visit))

    async def stt_event(self, leg: ChartLeg, event: str, data: dict[str, Any]) -> None:
        room = room_media(leg.job.visit) if self.settings.captions_to_patient else room_staff(leg.job.visit)
        await self.emit(event, {"visit_id": leg.job.visit, "role": leg.job.role, **data}, room)

    def leg_closed(self, leg: ChartLeg) -> None:
        if self.legs.get(leg.key) is leg:
            del self.legs[leg.key]
        finishing = self._spawn(self._reseal(leg), f"reseal {leg!r}")
        self._transcripts.add(finishing)
        finishing.add_done_callback(self._transcripts.discard)
        release = self._spawn(self._release(leg), f"release {leg!r}")
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
            audit = AuditLog(self.settings.audit_log or default_path(self.settings.recordings_dir))
            await asyncio.to_thread(chart.seal, leg.folder, self.settings.public_url, audit)
        except BundleError:
            pass  # logged by the seal (where, not what); the manifest is written
        except Exception:
            logger.exception("Worker(%s) could not reseal the chart of %s", self.worker_id, leg.job.visit)

    async def _release(self, leg: ChartLeg) -> None:
        try:
            await self._release_leg(keys=[keys.leg(leg.job.visit, leg.job.role)], args=[leg.job.id])
        except RedisError:
            logger.warning("Worker(%s) could not release leg %s in Redis (it expires)", self.worker_id, leg.job.id)

    async def emit(self, event: str, data: dict[str, Any], room: str) -> None:
        try:
            await self.emitter.emit(event, data, room=room, namespace=NAMESPACE)
        except Exception:
            logger.exception("Worker(%s) could not emit %s", self.worker_id, event)

    # -- the job stream ----------------------------------------------------------------

    def _has_room(self) -> bool:
        return len(self.legs) + self._answering < self.settings.max_legs

    async def _jobs_loop(self) -> None:
        idle_ms = int(self.settings.claim_idle * 1000)
        while not self._stopping:
            try:
                if not self._has_room():
                    await asyncio.sleep(0.5)
                    continue
                entries = await self._claim_abandoned(idle_ms)
                if not entries:
                    reply = await self.redis.xreadgroup(keys.GROUP, self.worker_id, {keys.JOBS: ">"}, count=1, block=1000)
                    entries = reply[0][1] if reply else []
                for stream_id, fields in entries:
                    self._answering += 1  # counted from now, so the loop does not over-take
                    self._spawn(self._run_job(stream_id, fields), f"job {stream_id}")
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted (e.g. a flushed Redis)
                    await self.redis.xgroup_create(keys.JOBS, keys.GROUP, id="0", mkstream=True)
                    continue
                logger.exception("Worker(%s) job loop", self.worker_id)
                await asyncio.sleep(1)
            except (RedisError, OSError) as exc:
                logger.warning("Worker(%s) cannot read jobs: %s", self.worker_id, exc)
                await asyncio.sleep(1)

    async def _claim_abandoned(self, idle_ms: int) -> list[tuple[str, dict[str, str] | None]]:
        """Jobs another worker read but never answered (it died): take one."""
        pending = await self.redis.xpending_range(keys.JOBS, keys.GROUP, min="-", max="+", count=10, idle=idle_ms)
        for p in pending:
            stream_id = p["message_id"]
            if p["times_delivered"] >= MAX_DELIVERIES:
                claimed = await self.redis.xclaim(keys.JOBS, keys.GROUP, self.worker_id, idle_ms, [stream_id])
                for sid, fields in claimed:
                    logger.warning("Worker(%s) drops job %s: delivered %d times", self.worker_id, sid, p["times_delivered"])
                    await self._reply_error(fields or {}, Unavailable("the offer could not be answered; offer again"))
                    await self._done(sid)
                continue
            claimed = await self.redis.xclaim(keys.JOBS, keys.GROUP, self.worker_id, idle_ms, [stream_id])
            if claimed:
                logger.info("Worker(%s) took over abandoned job %s", self.worker_id, stream_id)
                return list(claimed)
        return []

    async def _run_job(self, stream_id: str, fields: dict[str, str] | None) -> None:
        try:
            # The counter was raised by the loop; handle_offer raises it again.
            self._answering -= 1
            if not fields:
                return  # deleted while pending
            age = time.time() - int(stream_id.split("-", 1)[0]) / 1000
            if age > self.settings.job_ttl:
                logger.info("Worker(%s) drops job %s: %.0fs old", self.worker_id, stream_id, age)
                await self._reply_error(fields, Conflict("the offer expired; offer again"))
                return
            try:
                sdp = await self.handle_offer(fields)
            except TelemedError as exc:
                logger.info("Worker(%s) refused job %s: %s %s", self.worker_id, stream_id, exc.code, exc.message)
                await self._reply_error(fields, exc)
            except RedisError as exc:
                logger.warning("Worker(%s) cannot check job %s: %s", self.worker_id, stream_id, exc)
                await self._reply_error(fields, Unavailable("Redis is unavailable; offer again"))
            except Exception:
                logger.exception("Worker(%s) failed on job %s", self.worker_id, stream_id)
                await self._reply_error(fields, TelemedError("the worker failed on this offer"))
            else:
                await self.emit(
                    "leg_answer",
                    {"job": fields["job"], "ok": True, "visit_id": fields["visit"], "role": fields["role"], "sdp": sdp},
                    room_leg(fields["job"]),
                )
        finally:
            await self._done(stream_id)

    async def _reply_error(self, fields: Mapping[str, str], exc: TelemedError) -> None:
        job_id = fields.get("job")
        if not isinstance(job_id, str) or not job_id:
            return  # nobody to tell
        await self.emit("leg_answer", {"job": job_id, "ok": False, "error": exc.to_dict()}, room_leg(job_id))

    async def _done(self, stream_id: str) -> None:
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(keys.JOBS, keys.GROUP, stream_id)
            pipe.xdel(keys.JOBS, stream_id)
            await pipe.execute()
        except RedisError:
            logger.warning("Worker(%s) could not acknowledge job %s", self.worker_id, stream_id)

    # -- control requests --------------------------------------------------------------

    async def _control_loop(self) -> None:
        last = f"{int(self.started * 1000)}-0"
        stream = keys.control(self.worker_id)
        while not self._stopping:
            try:
                reply = await self.redis.xread({stream: last}, count=20, block=1000)
                for _, entries in reply or []:
                    for stream_id, fields in entries:
                        last = stream_id
                        self._spawn(self._control(fields), f"control {stream_id}")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Worker(%s) cannot read control requests: %s", self.worker_id, exc)
                await asyncio.sleep(1)

    async def _control(self, fields: dict[str, str]) -> None:
        req, op = fields.get("req", ""), fields.get("op", "")
        try:
            request = ControlRequest.from_fields(fields)
            leg = self.legs.get((request.visit, request.role))
            if request.op == "snapshot":
                if leg is None:
                    raise NotFound("no chart leg of that participant here")
                snap = await leg.snapshot()
                result = ok_reply(visit_id=leg.job.visit, role=leg.job.role, **snap.to_dict())
            else:  # close
                if leg is not None and request.job in ("", leg.job.id):
                    await leg.close(request.reason or "closed on request")
                result = ok_reply()
        except TelemedError as exc:
            result = error_reply(exc)
        except Exception:
            logger.exception("Worker(%s) control request %s failed", self.worker_id, op)
            result = error_reply(TelemedError("the worker failed on this request"))
        if req:
            try:
                pipe = self.redis.pipeline(transaction=True)
                pipe.rpush(keys.reply(req), json.dumps(result))
                pipe.expire(keys.reply(req), keys.REPLY_TTL)
                await pipe.execute()
            except RedisError:
                logger.warning("Worker(%s) could not reply to %s", self.worker_id, req)

    async def snapshot(self, visit_id: str, role: str = "patient") -> dict[str, Any]:
        """A snapshot of a leg held here (the control request's work, callable directly)."""
        leg = self.legs.get((visit_id, role))
        if leg is None:
            raise NotFound("no chart leg of that participant here")
        return (await leg.snapshot()).to_dict()

    # -- heartbeat ---------------------------------------------------------------------

    async def _beat(self) -> None:
        key = keys.worker(self.worker_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"pid": os.getpid(), "host": socket.gethostname(), "legs": len(self.legs),
                                "capacity": self.settings.max_legs, "started": repr(self.started),
                                "stt": self.speech.state.value})
        pipe.expire(key, self._ttl)
        await pipe.execute()

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
        legs = [leg for leg in self.legs.values() if leg.state is not LegState.CLOSED]
        if not legs:
            return
        pipe = self.redis.pipeline(transaction=False)
        for leg in legs:
            pipe.hget(telemed_keys.visit(leg.job.visit), "state")
        states = await pipe.execute()
        now = time.time()
        for leg, state in zip(legs, states, strict=True):
            owned = await self._refresh_leg(keys=[keys.leg(leg.job.visit, leg.job.role)], args=[leg.job.id, self._ttl])
            if not owned:
                leg.close_soon("replaced by a new leg")
            elif state != State.IN_VISIT.value:
                leg.close_soon(f"visit {state or 'gone'}")
            elif leg.state is LegState.LIVE and now - (leg.last_media or leg.created) > self.settings.media_timeout:
                leg.close_soon("no media")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
