"""``/call``: WebRTC signaling between the two parties of a visit in progress.

Offers, answers, ICE candidates and hang-ups are relayed only between the
visit's patient and the doctor who admitted them, and only while the visit is
in progress. The server never looks inside an SDP beyond its size.

The same two parties report how their call goes (``media_started``,
``call_quality``): kept once per side and call in the visit's call-quality
summary (:mod:`telemed.call_quality`) and counted on ``/metrics``. They tell
each other how their side of the call is (``call_status``: the connection's
level, whether video is sent), relayed like the signaling, at most
:data:`STATUS_RATE` a second per socket.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from signaling import rooms
from signaling._base import AuthedNamespace, event
from signaling._ratelimit import TokenBucket
from signaling.hub import Hub
from signaling.ice import ice_config
from signaling.schemas import CallStatus, Candidate, Empty, MediaStarted, QualityReport, Sdp, VisitRef
from telemed import keys
from telemed.call_quality import CallQuality, Report
from telemed.exceptions import Conflict, Forbidden, NotFound, RateLimited
from telemed.tokens import Claims, Role
from telemed.visits import State

logger = logging.getLogger(__name__)

PARTIES = frozenset({Role.PATIENT, Role.DOCTOR})

#: ``call_status`` events a socket may send per second on average (a page sends
#: one when its level or video changes, at most once a second)…
STATUS_RATE = 1.0
#: …and at once.
STATUS_BURST = 5


class CallNamespace(AuthedNamespace):
    roles = PARTIES

    def __init__(self, hub: Hub) -> None:
        super().__init__("/call", hub)
        self.quality = CallQuality(hub.redis)
        #: Per-socket limits of ``call_status``, by sid.
        self.status_buckets: dict[str, TokenBucket] = {}

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            await self.enter_room(sid, rooms.patient(claims.visit))
        else:
            await self.enter_room(sid, rooms.user(claims.clinic, claims.sub))
        await self.emit("ice_servers", ice_config(self.hub.settings, claims.sub), to=sid)
        await self._announce(claims, "joined")

    async def left(self, sid: str, claims: Claims) -> None:
        self.status_buckets.pop(sid, None)
        await self._announce(claims, "left")

    async def _announce(self, claims: Claims, state: str) -> None:
        """Tell the other party of each visit in progress that this one's call
        socket came or went, so the doctor can offer again after a reload."""
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            visits = [claims.visit]
        else:
            visits = await self.hub.room.doctor_visits(claims.clinic, claims.sub)
        for visit_id in visits:
            redis: Any = self.hub.redis
            visit_state, doctor = await redis.hmget(keys.visit(visit_id), ["state", "doctor"])
            if visit_state != State.IN_VISIT.value or not doctor:
                continue
            body = {"visit_id": visit_id, "from": claims.role.value, "state": state}
            to = rooms.user(claims.clinic, doctor) if claims.role is Role.PATIENT else rooms.patient(visit_id)
            await self.emit("peer", body, room=to)

    @event(Empty, PARTIES)
    async def on_get_ice_servers(self, sid: str, claims: Claims, p: Empty) -> dict[str, Any]:
        return ice_config(self.hub.settings, claims.sub)

    @event(Sdp, PARTIES)
    async def on_offer(self, sid: str, claims: Claims, p: Sdp) -> dict[str, Any]:
        await self._relay(claims, "offer", p, {"sdp": p.sdp, "restart": p.restart, **_call_id(p.call_id)})
        return {}

    @event(Sdp, PARTIES)
    async def on_answer(self, sid: str, claims: Claims, p: Sdp) -> dict[str, Any]:
        await self._relay(claims, "answer", p, {"sdp": p.sdp, **_call_id(p.call_id)})
        return {}

    @event(Candidate, PARTIES)
    async def on_candidate(self, sid: str, claims: Claims, p: Candidate) -> dict[str, Any]:
        candidate = p.candidate.model_dump(exclude_none=True) if p.candidate else None
        await self._relay(claims, "candidate", p, {"candidate": candidate, **_call_id(p.call_id)})
        return {}

    @event(VisitRef, PARTIES)
    async def on_ready(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """"I have no call (my page was reloaded): offer me one." """
        await self._relay(claims, "ready", p, {})
        return {}

    @event(VisitRef, PARTIES)
    async def on_hangup(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        await self._relay(claims, "hangup", p, {})
        return {}

    @event(CallStatus, PARTIES)
    async def on_call_status(self, sid: str, claims: Claims, p: CallStatus) -> dict[str, Any]:
        """Own side of the call (level, video) for the other party's page."""
        bucket = self.status_buckets.setdefault(sid, TokenBucket(STATUS_RATE, STATUS_BURST))
        if not bucket.take():
            raise RateLimited("slow down: at most one call_status a second")
        await self._relay(claims, "call_status", p, {"level": p.level, "video": p.video, **_call_id(p.call_id)})
        return {}

    @event(MediaStarted, PARTIES)
    async def on_media_started(self, sid: str, claims: Claims, p: MediaStarted) -> dict[str, Any]:
        """The page received the other side's first media of a call: kept once
        per side and call, and observed in the time-to-media histogram."""
        await self._party(claims, p.visit_id)
        side = claims.role.value
        recorded = await self.quality.media_started(p.visit_id, side, p.call_id, p.audio_ms, p.video_ms)
        if recorded:
            for kind, ms in (("audio", p.audio_ms), ("video", p.video_ms)):
                if ms is not None:
                    self.hub.metrics.time_to_media.labels(side, kind).observe(ms / 1000)
        return {"recorded": recorded}

    @event(QualityReport, PARTIES)
    async def on_call_quality(self, sid: str, claims: Claims, p: QualityReport) -> dict[str, Any]:
        """What the page saw of its connection: each fact counted once per side and call."""
        await self._party(claims, p.visit_id)
        side = claims.role.value
        restart = (p.restart, p.restart_ms) if p.restart is not None and p.restart_ms is not None else None
        report = Report(ice_failed=p.ice_failed, relay=p.relay, audio_only=p.fallback == "audio_only", restart=restart)
        new = await self.quality.report(p.visit_id, side, p.call_id, report)
        m = self.hub.metrics
        for name in new:
            if name == "ice_failed":
                m.ice_failures.labels(side).inc()
            elif name in ("relay", "direct"):
                m.call_paths.labels(side, name).inc()
            elif name == "restart" and p.restart_ms is not None:
                m.restart_time.labels(side).observe(p.restart_ms / 1000)
            else:
                m.fallbacks.labels(side, name).inc()
        return {"recorded": new}

    async def _party(self, claims: Claims, visit_id: str) -> str:
        """Check that the caller is a party of ``visit_id``, in progress; the
        visit's doctor."""
        await self.hub.authorize_visit(claims, visit_id, PARTIES)
        redis: Any = self.hub.redis
        state, doctor = await redis.hmget(keys.visit(visit_id), ["state", "doctor"])
        if state is None:
            raise NotFound("no such visit")
        if state != State.IN_VISIT.value:
            raise Conflict(f"no call while the visit is {state}", state=state)
        if claims.role is Role.DOCTOR and claims.sub != doctor:
            raise Forbidden("another doctor is in this visit")
        return str(doctor)

    async def _relay(self, claims: Claims, name: str, p: BaseModel, body: dict[str, Any]) -> None:
        visit_id: str = p.visit_id  # type: ignore[attr-defined]
        doctor = await self._party(claims, visit_id)
        to = rooms.user(claims.clinic, doctor) if claims.role is Role.PATIENT else rooms.patient(visit_id)
        await self.emit(name, {"visit_id": visit_id, "from": claims.role.value, **body}, room=to)


def _call_id(call_id: str | None) -> dict[str, str]:
    return {"call_id": call_id} if call_id else {}
