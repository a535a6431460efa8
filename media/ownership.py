"""What a worker owns in Redis: its presence, and its legs' keys.

- **Presence**: ``tm:media:worker:<id>`` (pid, host, legs, capacity, started,
  speech-to-text state) with a TTL of :data:`~telemed.media_protocol.keys.WORKER_TTL_BEATS`
  heartbeats, refreshed every heartbeat: a worker that dies counts as gone
  within seconds.
- **Legs**: ``tm:media:leg:{visit}:<role>`` names the worker holding a
  participant's leg and the leg's job, so the node knows where to send a
  snapshot request. Same TTL, refreshed every heartbeat only while the key
  still names this leg's job (a replacing leg on another worker may own it by
  now: then this one closes), and deleted on close only under that same
  condition.
- **File numbers**: ``tm:media:seq:{visit}:<role>`` numbers a participant's
  recordings across workers, never reused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from telemed.chart import recording_name
from telemed.media_protocol import keys

if TYPE_CHECKING:
    from media.leg import ChartLeg

logger = logging.getLogger(__name__)

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


class Ownership:
    """One worker's keys in Redis.

    :param redis: a client with ``decode_responses=True`` (typed ``Any``:
        redis-py's stubs cannot express str replies).
    """

    def __init__(self, redis: Any, worker_id: str, heartbeat: float) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.ttl = max(2, math.ceil(keys.WORKER_TTL_BEATS * heartbeat))
        """Seconds the presence and the legs' keys live without a refresh."""
        self._refresh_leg = redis.register_script(_REFRESH_LEG)
        self._release_leg = redis.register_script(_RELEASE_LEG)

    # -- presence ----------------------------------------------------------------------

    async def beat(self, *, legs: int, capacity: int, started: float, stt: str) -> None:
        """Announce (or keep announcing) this worker."""
        key = keys.worker(self.worker_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"pid": os.getpid(), "host": socket.gethostname(), "legs": legs,
                                "capacity": capacity, "started": repr(started), "stt": stt})
        pipe.expire(key, self.ttl)
        await pipe.execute()

    async def alive(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(keys.worker(worker_id)))

    async def gone(self, workers: set[str]) -> set[str]:
        """Those of ``workers`` whose presence has expired."""
        ordered = sorted(workers)
        alive = await asyncio.gather(*(self.redis.exists(keys.worker(w)) for w in ordered))
        return {w for w, a in zip(ordered, alive, strict=True) if not a}

    # -- legs --------------------------------------------------------------------------

    async def holder(self, visit: str, role: str) -> tuple[str | None, str | None]:
        """(worker, job) holding a participant's leg, each None if unknown."""
        owner, job = await self.redis.hmget(keys.leg(visit, role), ["worker", "job"])
        return owner, job

    async def claim(self, leg: ChartLeg) -> None:
        """Record ``leg`` as this participant's, replacing whatever was there."""
        key = keys.leg(leg.job.visit, leg.job.role)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping={"worker": self.worker_id, "job": leg.job.id, "started": repr(leg.created), "file": ""})
        pipe.expire(key, self.ttl)
        await pipe.execute()

    async def refresh(self, leg: ChartLeg) -> bool:
        """Keep ``leg``'s key alive; False if it names another job by now."""
        return bool(await self._refresh_leg(keys=[keys.leg(leg.job.visit, leg.job.role)], args=[leg.job.id, self.ttl]))

    async def record_file(self, leg: ChartLeg) -> None:
        """Note the file ``leg`` is recording to in its key."""
        try:
            await self.redis.hset(keys.leg(leg.job.visit, leg.job.role), "file", leg.file or "")
        except RedisError:
            logger.warning("Worker(%s) could not record the file of leg %s in Redis", self.worker_id, leg.job.id)

    async def release(self, leg: ChartLeg) -> None:
        """Delete ``leg``'s key if it is still its own (otherwise it expires)."""
        try:
            await self._release_leg(keys=[keys.leg(leg.job.visit, leg.job.role)], args=[leg.job.id])
        except RedisError:
            logger.warning("Worker(%s) could not release leg %s in Redis (it expires)", self.worker_id, leg.job.id)

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
