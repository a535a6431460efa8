"""The node's side of the media worker: queue an offer, find a leg, ask the
worker holding it for a snapshot. Only Redis in between, so any node can talk
to any worker.

A node handling the ``/media`` socket events would::

    job = Job(job=new_id(), visit=..., clinic=..., role=..., sub=..., sdp=..., consent=...)
    await sio.enter_room(sid, room_leg(job.id), namespace=NAMESPACE)
    await media.submit(job)
    # the worker emits "leg_answer" {job, ok, sdp | error} to room leg:<job>

    result = await media.snapshot(visit_id)      # {id, file, sharpness, brightness, ...}
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as aioredis

from telemed.exceptions import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    TelemedError,
    Unauthorized,
    Unavailable,
)
from telemed.media_protocol import keys
from telemed.media_protocol.jobs import ControlRequest, Job

_BY_CODE: dict[str, type[TelemedError]] = {
    cls.code: cls for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, RateLimited, Unavailable)
}


def error_from_dict(error: dict[str, Any]) -> TelemedError:
    """The exception a worker's ``{"code", "message", "details"}`` stands for."""
    cls = _BY_CODE.get(str(error.get("code")), TelemedError)
    return cls(str(error.get("message", "")), **dict(error.get("details") or {}))


class MediaClient:
    """Talks to the media workers through Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis

    async def submit(self, job: Job) -> str:
        """Queue a chart-leg offer for whichever worker takes it; returns the stream id."""
        stream_id: str = await self.redis.xadd(keys.JOBS, job.to_fields(), maxlen=keys.JOBS_MAXLEN, approximate=True)
        return stream_id

    async def leg(self, visit: str, role: str) -> dict[str, str] | None:
        """Who holds a participant's leg: {worker, job, file, started}, or None."""
        h: dict[str, str] = await self.redis.hgetall(keys.leg(visit, role))
        return h or None

    async def request(self, worker: str, op: str, timeout: float = 3.0, **fields: str) -> dict[str, Any]:
        """Send a control request to one worker and wait for its reply."""
        req = uuid.uuid4().hex
        request = ControlRequest.model_validate({"req": req, "op": op, **fields})
        await self.redis.xadd(keys.control(worker), request.to_fields(), maxlen=keys.CONTROL_MAXLEN, approximate=True)
        got = await self.redis.blpop([keys.reply(req)], timeout=timeout)
        if got is None:
            raise Unavailable("the media worker did not answer in time")
        reply: dict[str, Any] = json.loads(got[1])
        if not reply.get("ok"):
            raise error_from_dict(reply.get("error") or {})
        return reply

    async def snapshot(self, visit: str, role: str = "patient", timeout: float = 3.0) -> dict[str, Any]:
        """Capture a frame of a participant's video into the chart:
        ``{id, file, sharpness, brightness, width, height, taken_at}``."""
        leg = await self.leg(visit, role)
        if leg is None:
            raise NotFound("no chart leg is recording this participant")
        reply = await self.request(leg["worker"], "snapshot", timeout=timeout, visit=visit, role=role)
        reply.pop("ok", None)
        return reply

    async def set_language(self, visit: str, role: str, language: str, timeout: float = 3.0) -> bool:
        """Tell the worker holding a participant's leg that they speak ``language``
        from now on (their captions switch recogniser); False when no leg holds
        them (the next leg offer carries the language)."""
        leg = await self.leg(visit, role)
        if leg is None:
            return False
        try:
            await self.request(leg["worker"], "language", timeout=timeout, visit=visit, role=role, language=language)
        except NotFound:
            return False  # the leg closed meanwhile
        return True

    async def close_leg(self, visit: str, role: str, reason: str = "closed on request") -> None:
        """Ask the worker holding a participant's leg to close it (e.g. consent withdrawn)."""
        leg = await self.leg(visit, role)
        if leg is not None:
            await self.request(leg["worker"], "close", visit=visit, role=role, job=leg.get("job", ""), reason=reason)
