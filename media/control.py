"""A worker's control stream: requests about the legs it holds, and the replies.

Requests (:class:`~telemed.media_protocol.ControlRequest`: snapshot, close,
language)
arrive on the worker's own stream ``tm:media:ctl:<worker>``, from a node
(:class:`~telemed.media_protocol.MediaClient`) or from another worker whose
new leg replaces one held here (:func:`ask_to_close`). The worker reads what
arrived after it started (plain XREAD: the stream is its alone). Each reply is
pushed to ``tm:media:reply:<req>``, where the asker waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from telemed.exceptions import NotFound, TelemedError
from telemed.media_protocol import ControlRequest, error_reply, keys, ok_reply

if TYPE_CHECKING:
    from media.leg import ChartLeg

logger = logging.getLogger(__name__)

FindLeg = Callable[[str, str], "ChartLeg | None"]
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


async def ask_to_close(redis: Any, worker_id: str, *, req: str, visit: str, role: str, job: str, reason: str) -> None:
    """Ask ``worker_id`` to close a participant's leg if it is still ``job``'s (no reply is read)."""
    request = ControlRequest(req=req, op="close", visit=visit, role=role, job=job, reason=reason)
    await redis.xadd(keys.control(worker_id), request.to_fields(), maxlen=keys.CONTROL_MAXLEN, approximate=True)


class ControlStream:
    """Reads one worker's control stream and answers each request.

    :param redis: a client with ``decode_responses=True``.
    :param since: wall time the worker started; earlier requests are not for it.
    :param find_leg: the leg held here for (visit, role), if any.
    :param spawn: runs a request's handling as a task the worker keeps track of.
    :param stopping: true once the worker is stopping.
    """

    def __init__(self, redis: Any, worker_id: str, since: float, find_leg: FindLeg, spawn: Spawn,
                 stopping: Callable[[], bool]) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.stream = keys.control(worker_id)
        self._last = f"{int(since * 1000)}-0"
        self._find_leg = find_leg
        self._spawn = spawn
        self._stopping = stopping

    async def run(self) -> None:
        """Read requests until the worker stops (or the task is cancelled)."""
        while not self._stopping():
            try:
                reply = await self.redis.xread({self.stream: self._last}, count=20, block=1000)
                for _, entries in reply or []:
                    for stream_id, fields in entries:
                        self._last = stream_id
                        self._spawn(self.handle(fields), f"control {stream_id}")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning("Worker(%s) cannot read control requests: %s", self.worker_id, exc)
                await asyncio.sleep(1)

    async def handle(self, fields: dict[str, str]) -> None:
        """Carry out one request and push its reply (if a reply is wanted)."""
        req, op = fields.get("req", ""), fields.get("op", "")
        try:
            request = ControlRequest.from_fields(fields)
            leg = self._find_leg(request.visit, request.role)
            if request.op == "snapshot":
                if leg is None:
                    raise NotFound("no chart leg of that participant here")
                snap = await leg.snapshot()
                result = ok_reply(visit_id=leg.job.visit, role=leg.job.role, **snap.to_dict())
            elif request.op == "language":
                if leg is None:
                    raise NotFound("no chart leg of that participant here")
                leg.set_language(request.language)
                result = ok_reply(language=leg.language)
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
            await self._reply(req, result)

    async def _reply(self, req: str, result: dict[str, Any]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.rpush(keys.reply(req), json.dumps(result))
            pipe.expire(keys.reply(req), keys.REPLY_TTL)
            await pipe.execute()
        except RedisError:
            logger.warning("Worker(%s) could not reply to %s", self.worker_id, req)
