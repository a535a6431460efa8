"""Acknowledged means replicated: a chat message or a queue change is
acknowledged only once ``TELEMED_REDIS_MIN_REPLICAS`` replicas have it, so a
Sentinel failover (the primary lost, a replica promoted) loses nothing that was
acknowledged.

How: the change's script, a *barrier* and ``WAIT <replicas> <ms>`` go to Redis
in one pipeline, on one connection. ``WAIT`` waits until the replicas have every
write *its connection* made. The barrier (an ``INCR`` of one key) is such a
write, made after everything that was written before it by anyone, so ``WAIT``
covers the change even when this attempt wrote nothing: a retried chat message
whose client id is already stored, or a queue change that an earlier,
unconfirmed attempt already made (then answered ``conflict`` with the state it
reached). Without the barrier such a retry would be confirmed at once, before
the replicas had the first attempt's write.

When fewer replicas confirm within ``TELEMED_REDIS_WAIT_MS``, the change is
made all the same (the primary has it): whoever made it goes on (pushes to the
people who see it, the audit trail, the chart), but the request that made it —
a socket event or an HTTP call, each run inside :func:`acknowledging` — is
answered :class:`NotReplicated` (``unavailable``, "Not saved yet — trying
again") instead of ``ok``, because a failover right now could still lose it.
The client sends it again: a chat message with the same client id is stored
once (:mod:`telemed.chat`) and acknowledged once the replicas confirm; a queue
change is made once (the visit's state machine) and its retry answered once
confirmed (``ok``, or ``conflict`` naming the state the first attempt reached).
Chosen over acknowledging anyway (which would break the promise) and over
undoing the change (it is almost always kept: a replica that is late, not a
primary that is lost). docs/architecture.md, "Redis high availability".

Outside a request (the grace sweep, the no-show sweep, the command line)
nobody is acknowledged: an unconfirmed change is logged and work goes on.

With 0 replicas (one Redis, ``telemed dev``), nothing waits: the script runs
as it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from telemed.exceptions import Unavailable
from telemed.keys import REPLICATION_BARRIER
from telemed.settings import Settings

logger = logging.getLogger(__name__)

#: A replica whose last acknowledgement is older than this (seconds; replicas
#: acknowledge every second) does not count for readiness.
MAX_LAG_S = 2


class NotReplicated(Unavailable):
    """The primary has the change, but not enough replicas confirmed it in time."""

    def __init__(self) -> None:
        super().__init__("Not saved yet — trying again", retry=True)


class Acknowledgement:
    """The changes of one request: whether the replicas confirmed every one."""

    def __init__(self) -> None:
        self.confirmed = True


_request: ContextVar[Acknowledgement | None] = ContextVar("telemed_acknowledgement", default=None)


@contextmanager
def acknowledging() -> Iterator[Acknowledgement]:
    """Run one request's handler inside. Every change it makes that the replicas
    do not confirm in time clears the yielded ``confirmed``; the caller then
    answers :class:`NotReplicated` instead of the handler's result."""
    ack = Acknowledgement()
    token = _request.set(ack)
    try:
        yield ack
    finally:
        _request.reset(token)


class Replication:
    """The replicas' confirmation of the changes that are acknowledged.

    :param settings: ``redis_min_replicas`` (0: no waiting) and ``redis_wait_ms``.
    """

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.replicas = settings.redis_min_replicas
        self.wait_ms = settings.redis_wait_ms

    async def eval(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script``; return its result once the replicas have its writes
        (or, when they do not confirm in time, mark the request unconfirmed)."""
        if not self.replicas:
            return await script(keys=keys, args=args)
        try:
            result, confirmed = await self._eval(script, keys, args)
        except NoScriptError:
            # A promoted replica never loaded the script (scripts are not replicated).
            script.sha = await self.redis.script_load(script.script)
            result, confirmed = await self._eval(script, keys, args)
        self._check(confirmed)
        return result

    async def _eval(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> tuple[Any, int]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        return await self._confirmed(pipe)

    async def confirm_key(self, key: str) -> None:
        """Confirm a change made otherwise (a MULTI block) that left ``key`` behind.

        ``key`` is read on the connection that waits: were it missing there, the
        change was made on a primary lost since (a failover in between), and
        :class:`NotReplicated` is raised."""
        if not self.replicas:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(key)
        exists, confirmed = await self._confirmed(pipe)
        if not exists:
            logger.warning("a change was lost in a failover before it was confirmed")
            raise NotReplicated
        self._check(confirmed)

    async def _confirmed(self, pipe: Any) -> tuple[Any, int]:
        """Add the barrier and WAIT to ``pipe`` and run it: (first result, replicas)."""
        pipe.incr(REPLICATION_BARRIER)
        pipe.execute_command("WAIT", self.replicas, self.wait_ms)
        result, _, confirmed = await pipe.execute()
        return result, int(confirmed)

    def _check(self, confirmed: int) -> None:
        if confirmed < self.replicas:
            logger.warning("%d of %d replicas confirmed a change within %d ms", confirmed, self.replicas, self.wait_ms)
            ack = _request.get()
            if ack is not None:
                ack.confirmed = False


@dataclass(frozen=True)
class Health:
    """What ``/readyz`` says of Redis."""

    reachable: bool
    primary: bool
    """The server the client reaches takes writes (not a demoted primary)."""
    replicas: int
    """Replicas in sync (acknowledged within :data:`MAX_LAG_S`)."""

    def ready(self, needed: int) -> bool:
        return self.reachable and self.primary and self.replicas >= needed


async def health(redis: aioredis.Redis) -> Health:
    """Whether the primary is reachable and how many replicas keep up with it."""
    try:
        info = await redis.info("replication")
    except RedisError:
        return Health(False, False, 0)
    replicas = [
        v for k, v in info.items()
        if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online" and int(v.get("lag", 0)) <= MAX_LAG_S
    ]
    primary = info.get("role") == "master"
    if not primary:
        # A demoted primary that came back (idle connections still go there):
        # drop them, so the next ones ask the sentinels where the primary is.
        await redis.connection_pool.disconnect(inuse_connections=False)
    return Health(True, primary, len(replicas))
