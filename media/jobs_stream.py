"""The job stream, as a worker reads it.

Jobs (chart-leg offers, :class:`~telemed.media_protocol.Job`) arrive on the
stream :data:`telemed.media_protocol.keys.JOBS`, read by the consumer group
``workers``. A worker reads one only when it has room for another leg,
answers it, publishes the answer to the browser (Socket.IO event
``leg_answer`` to room ``leg:<job>``) and only then acknowledges and deletes
the job. A job read by a worker that died before answering stays pending and
is claimed by another after ``claim_idle``; one that failed
:data:`MAX_DELIVERIES` times is dropped with an error, and one older than
``job_ttl`` is dropped because its browser has given up on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from redis.exceptions import RedisError, ResponseError

from telemed.exceptions import Conflict, TelemedError, Unavailable
from telemed.media_protocol import keys, room_leg

logger = logging.getLogger(__name__)

#: A job whose handling killed (or timed out) this many workers is dropped.
MAX_DELIVERIES = 3

Answer = Callable[[Mapping[str, str]], Awaitable[str]]
Emit = Callable[[str, dict[str, Any], str], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


class JobStream:
    """Takes jobs off the stream for one worker and answers each.

    :param redis: a client with ``decode_responses=True``.
    :param answer: answers a job's fields with an SDP, or raises a :class:`TelemedError`.
    :param emit: publishes a Socket.IO event to a room of ``/media``.
    :param has_room: whether the worker can take one more job now.
    :param spawn: runs a job as a task the worker keeps track of.
    :param stopping: true once the worker is stopping.
    """

    def __init__(self, redis: Any, worker_id: str, *, claim_idle: float, job_ttl: float, answer: Answer, emit: Emit,
                 has_room: Callable[[], bool], spawn: Spawn, stopping: Callable[[], bool]) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.claim_idle = claim_idle
        self.job_ttl = job_ttl
        self.taken = 0
        """Jobs read from the stream and not handed to ``answer`` yet (they count
        against the worker's room from the moment they are read)."""
        self._answer = answer
        self._emit = emit
        self._has_room = has_room
        self._spawn = spawn
        self._stopping = stopping

    async def create_group(self) -> None:
        """The consumer group (and the stream), if they do not exist yet."""
        try:
            await self.redis.xgroup_create(keys.JOBS, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        """Read jobs until the worker stops (or the task is cancelled)."""
        idle_ms = int(self.claim_idle * 1000)
        while not self._stopping():
            try:
                if not self._has_room():
                    await asyncio.sleep(0.5)
                    continue
                entries = await self._claim_abandoned(idle_ms)
                if not entries:
                    reply = await self.redis.xreadgroup(keys.GROUP, self.worker_id, {keys.JOBS: ">"}, count=1, block=1000)
                    entries = reply[0][1] if reply else []
                for stream_id, fields in entries:
                    self.taken += 1  # counted from now, so the loop does not over-take
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
            # Counted by the loop until now; answering counts it on the worker's side.
            self.taken -= 1
            if not fields:
                return  # deleted while pending
            age = time.time() - int(stream_id.split("-", 1)[0]) / 1000
            if age > self.job_ttl:
                logger.info("Worker(%s) drops job %s: %.0fs old", self.worker_id, stream_id, age)
                await self._reply_error(fields, Conflict("the offer expired; offer again"))
                return
            try:
                sdp = await self._answer(fields)
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
                await self._emit(
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
        await self._emit("leg_answer", {"job": job_id, "ok": False, "error": exc.to_dict()}, room_leg(job_id))

    async def _done(self, stream_id: str) -> None:
        """Acknowledge and delete a job: it is answered (or dropped)."""
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(keys.JOBS, keys.GROUP, stream_id)
            pipe.xdel(keys.JOBS, stream_id)
            await pipe.execute()
        except RedisError:
            logger.warning("Worker(%s) could not acknowledge job %s", self.worker_id, stream_id)
