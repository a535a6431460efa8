"""``/call``: WebRTC signaling between the parties of a visit in progress.

The parties are the visit's patient, its doctor and the guests admitted into
it (:mod:`signaling.call_parties`), each pair a browser-to-browser call (a
full mesh of at most four). Offers, answers, ICE candidates, hang-ups and
``ready`` go to the party named in ``to``; without ``to`` the patient and the
doctor mean each other, as before guests. Every body a party receives names
the sender in ``from``. The server never looks inside an SDP beyond its size.

``peer`` tells the others when a party's call socket comes or goes, and when
it leaves the call (``leave_call``, the visit goes on) or comes back
(``join_call``); ``call_peers`` lists the others with names and whether they
are there now.

The parties report how their calls go (``media_started``, ``call_quality``):
kept once per side and call in the visit's call-quality summary
(:mod:`telemed.call_quality`) and counted on ``/metrics``. They tell each
other how their side of the call is (``call_status``: the connection's level,
whether video is sent, whether they are muted), to one party or to every
other, at most :data:`STATUS_RATE` a second per socket.
"""

from __future__ import annotations

import logging
from typing import Any

from signaling._base import AuthedNamespace, event
from signaling._ratelimit import TokenBucket
from signaling.call_parties import CALLERS, DOCTOR, PATIENT, CallParties, own_room
from signaling.hub import Hub
from signaling.ice import ice_config
from signaling.schemas import CallRef, CallStatus, Candidate, Empty, MediaStarted, QualityReport, Sdp, VisitRef
from telemed.call_quality import CallQuality, Report
from telemed.exceptions import BadRequest, Forbidden, RateLimited
from telemed.guests import GuestList, as_clinician
from telemed.tokens import Claims, Role

logger = logging.getLogger(__name__)

#: ``call_status`` events a socket may send per second on average (a page sends
#: one when its level, video or microphone changes, at most once a second)…
STATUS_RATE = 1.0
#: …and at once.
STATUS_BURST = 5

class CallNamespace(AuthedNamespace):
    roles = CALLERS

    def __init__(self, hub: Hub) -> None:
        super().__init__("/call", hub)
        self.quality = CallQuality(hub.redis)
        self.guests = GuestList(hub.redis, hub.settings)
        self.parties = CallParties(hub, self.guests)
        #: Per-socket limits of ``call_status``, by sid.
        self.status_buckets: dict[str, TokenBucket] = {}

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.NURSE and not await as_clinician(self.hub.redis, claims.clinic, claims.sub):
            raise Forbidden("a nurse takes part in a call only as a guest of the visit")
        if claims.role is Role.GUEST:
            assert claims.visit is not None
            await self.guests.of(claims, claims.visit)  # a guest of this visit, not removed (lobby too)
        await self.enter_room(sid, own_room(claims))
        await self.parties.connected(sid, claims)
        await self.emit("ice_servers", ice_config(self.hub.settings, claims.sub), to=sid)
        await self._announce(claims, "joined")

    async def left(self, sid: str, claims: Claims) -> None:
        self.status_buckets.pop(sid, None)
        await self.parties.disconnected(sid, claims)
        if own_room(claims) not in await self.parties.online([own_room(claims)]):
            await self._announce(claims, "left")

    async def _announce(self, claims: Claims, state: str) -> None:
        """Tell the other parties of each visit in progress this socket's party is
        in that it came or went (so they offer again after a reload), unless it
        left that call."""
        for visit_id, party in await self.parties.visits_of(claims):
            if party not in await self.parties.left_call(visit_id):
                await self.parties.announce(visit_id, party, state)

    @event(Empty, CALLERS)
    async def on_get_ice_servers(self, sid: str, claims: Claims, p: Empty) -> dict[str, Any]:
        return ice_config(self.hub.settings, claims.sub)

    @event(Sdp, CALLERS)
    async def on_offer(self, sid: str, claims: Claims, p: Sdp) -> dict[str, Any]:
        await self._relay(claims, "offer", p.visit_id, p.to, {"sdp": p.sdp, "restart": p.restart, **_call_id(p.call_id)})
        return {}

    @event(Sdp, CALLERS)
    async def on_answer(self, sid: str, claims: Claims, p: Sdp) -> dict[str, Any]:
        await self._relay(claims, "answer", p.visit_id, p.to, {"sdp": p.sdp, **_call_id(p.call_id)})
        return {}

    @event(Candidate, CALLERS)
    async def on_candidate(self, sid: str, claims: Claims, p: Candidate) -> dict[str, Any]:
        candidate = p.candidate.model_dump(exclude_none=True) if p.candidate else None
        await self._relay(claims, "candidate", p.visit_id, p.to, {"candidate": candidate, **_call_id(p.call_id)})
        return {}

    @event(CallRef, CALLERS)
    async def on_ready(self, sid: str, claims: Claims, p: CallRef) -> dict[str, Any]:
        """"I have no call with you (my page was reloaded): offer me one." """
        await self._relay(claims, "ready", p.visit_id, p.to, {})
        return {}

    @event(CallRef, CALLERS)
    async def on_hangup(self, sid: str, claims: Claims, p: CallRef) -> dict[str, Any]:
        await self._relay(claims, "hangup", p.visit_id, p.to, {})
        return {}

    @event(CallStatus, CALLERS)
    async def on_call_status(self, sid: str, claims: Claims, p: CallStatus) -> dict[str, Any]:
        """Own side of the call (level, video, microphone) for one party's page, or every other's."""
        bucket = self.status_buckets.setdefault(sid, TokenBucket(STATUS_RATE, STATUS_BURST))
        if not bucket.take():
            raise RateLimited("slow down: at most one call_status a second")
        visit, me = await self.parties.caller(claims, p.visit_id)
        body = {"visit_id": visit.id, "from": me, **_call_id(p.call_id), "level": p.level, "video": p.video,
                **({"audio": p.audio} if p.audio else {})}
        if p.to is not None:
            await self.emit("call_status", body, room=(await self.parties.target(visit, p.to, me)).room)
            return {}
        _, parties = await self.parties.everyone(visit.id)
        for party in parties:
            if party.party != me:
                await self.emit("call_status", body, room=party.room)
        return {}

    @event(VisitRef, CALLERS)
    async def on_call_peers(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """Every other party of the call now: who (name, kind, language) and whether there."""
        _, me = await self.parties.caller(claims, p.visit_id)
        _, parties = await self.parties.everyone(p.visit_id)
        others = [party for party in parties if party.party != me]
        online = await self.parties.online([party.room for party in others])
        left = await self.parties.left_call(p.visit_id)
        peers = [{"party": x.party, "kind": x.kind, "name": x.name, "language": x.language,
                  "online": x.room in online and x.party not in left} for x in others]
        return {"visit_id": p.visit_id, "self": me, "peers": peers}

    @event(VisitRef, CALLERS)
    async def on_leave_call(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """Out of the call, still in the visit (the others stop offering until ``join_call``)."""
        me = await self._leaver(claims, p.visit_id)
        if await self.parties.leave(p.visit_id, me):
            await self.parties.announce(p.visit_id, me, "left")
        return {}

    @event(VisitRef, CALLERS)
    async def on_join_call(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """Back in the call after ``leave_call``: the others offer again."""
        me = await self._leaver(claims, p.visit_id)
        if await self.parties.rejoin(p.visit_id, me):
            await self.parties.announce(p.visit_id, me, "joined")
        return {}

    async def _leaver(self, claims: Claims, visit_id: str) -> str:
        _, me = await self.parties.caller(claims, visit_id)
        if me == DOCTOR:
            raise Forbidden("the doctor leaves the call by ending the visit")
        return me

    @event(MediaStarted, CALLERS)
    async def on_media_started(self, sid: str, claims: Claims, p: MediaStarted) -> dict[str, Any]:
        """The page received another party's first media of a call: kept once
        per side and call, and observed in the time-to-media histogram."""
        side = await self._side(claims, p.visit_id)
        recorded = await self.quality.media_started(p.visit_id, side, p.call_id, p.audio_ms, p.video_ms)
        if recorded:
            for kind, ms in (("audio", p.audio_ms), ("video", p.video_ms)):
                if ms is not None:
                    self.hub.metrics.time_to_media.labels(side, kind).observe(ms / 1000)
        return {"recorded": recorded}

    @event(QualityReport, CALLERS)
    async def on_call_quality(self, sid: str, claims: Claims, p: QualityReport) -> dict[str, Any]:
        """What the page saw of its connection: each fact counted once per side and call."""
        side = await self._side(claims, p.visit_id)
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

    async def _side(self, claims: Claims, visit_id: str) -> str:
        """The caller's side in reports and metrics: patient, doctor, or guest (never who)."""
        _, me = await self.parties.caller(claims, visit_id)
        return me if me in (PATIENT, DOCTOR) else "guest"

    async def _relay(self, claims: Claims, name: str, visit_id: str, to: str | None, body: dict[str, Any]) -> None:
        visit, me = await self.parties.caller(claims, visit_id)
        if to is None:
            if me not in (PATIENT, DOCTOR):
                raise BadRequest("to: say which party of the call this is for", fields=["to"])
            to = DOCTOR if me == PATIENT else PATIENT
        target = await self.parties.target(visit, to, me)
        await self.emit(name, {"visit_id": visit.id, "from": me, **body}, room=target.room)


def _call_id(call_id: str | None) -> dict[str, str]:
    return {"call_id": call_id} if call_id else {}
