"""``/queue``: check-in, the waiting room, triage, routing, admit and end."""

from __future__ import annotations

import logging
from typing import Any

from signaling import rooms
from signaling._base import STAFF, AuthedNamespace, event
from signaling.hub import Hub
from signaling.ice import ice_config
from signaling.notifier import QueueNotifier
from signaling.schemas import Admit, CheckIn, Empty, Route, Triage, VisitRef
from signaling.sessions import StaffSessions
from telemed.exceptions import Forbidden
from telemed.roster import Member
from telemed.tokens import Claims, Role
from telemed.visits import QUEUED, EndReason, State

logger = logging.getLogger(__name__)

PATIENT = frozenset({Role.PATIENT})
CLINICAL = frozenset({Role.NURSE, Role.DOCTOR})
DOCTOR = frozenset({Role.DOCTOR})
NURSE = frozenset({Role.NURSE})


def routed_reply(doctor: Member | None, route_return: float) -> dict[str, Any]:
    """The routed doctor by name, and a notice for the nurse if they are off duty."""
    if doctor is None:
        return {"doctor": None}
    reply: dict[str, Any] = {"doctor": doctor.to_dict()}
    if not doctor.on_duty:
        minutes = max(1, round(route_return / 60))
        reply["notice"] = (
            f"{doctor.name} is off duty right now. The patient goes back to the shared queue "
            f"if {doctor.name} is not back within {minutes} minute{'s' if minutes != 1 else ''}."
        )
    return reply


class QueueNamespace(AuthedNamespace):
    def __init__(self, hub: Hub, notifier: QueueNotifier) -> None:
        super().__init__("/queue", hub)
        self.notifier = notifier
        #: This node's staff sockets in the admin console's session list.
        self.sessions = StaffSessions(hub, self.local)

    async def joined(self, sid: str, claims: Claims) -> None:
        room = self.hub.room
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            await self.enter_room(sid, rooms.patient(claims.visit))
            self.notifier.patient_joined(claims.clinic, claims.visit, sid)
            await self.notifier.roster.patient_joined(claims.visit, sid)
            visit = await room.get(claims.visit)
            await self.emit("visit", visit.for_patient(), to=sid)
            if visit.state in QUEUED:
                # Back within the grace period: keep the place, get the position.
                await room.mark_seen([visit.id], {})
                self.notifier.touch(visit.clinic)  # staff everywhere see them online
            return
        await self.notifier.roster.staff_joined(sid, claims)
        await self.sessions.add(sid, claims)
        await self.enter_room(sid, rooms.staff(claims.clinic))
        self.notifier.staff_joined(claims.clinic, sid)
        await self.enter_room(sid, rooms.user(claims.clinic, claims.sub))
        await self.emit("queue", await self.notifier.snapshot(claims.clinic), to=sid)
        if claims.role is Role.DOCTOR:
            await room.doctor_joined(claims.clinic, claims.sub, claims.name)
            for visit_id in await room.doctor_visits(claims.clinic, claims.sub):
                await self.emit("visit", (await room.get(visit_id)).for_staff(), to=sid)
            self.notifier.touch(claims.clinic)  # one more doctor on duty: shorter waits
        else:
            self.notifier.touch(claims.clinic)  # the roster shows them on duty

    async def left(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            self.notifier.patient_left(claims.clinic, claims.visit, sid)
            await self.notifier.roster.patient_left(claims.visit, sid)
            self.notifier.touch(claims.clinic)  # staff see them offline
        else:
            self.notifier.staff_left(claims.clinic, sid)
            await self.sessions.remove(sid, claims)
            if await self.notifier.roster.staff_left(sid, claims):
                self.notifier.touch(claims.clinic)  # their claims are gone

    async def resync(self) -> None:
        """Push this node's clients their current state again (after a Redis outage)."""
        for sid, claims in list(self.local.items()):
            if claims.role is Role.PATIENT:
                assert claims.visit is not None
                visit = await self.hub.room.get(claims.visit)
                await self.emit("visit", visit.for_patient(), to=sid)
                if visit.state in QUEUED:
                    await self.hub.room.mark_seen([visit.id], {})
        self.notifier.forget_sent()
        for clinic in self.notifier.clinics():
            self.notifier.touch(clinic, tell_others=False)

    # -- patient -------------------------------------------------------------------

    @event(CheckIn, PATIENT)
    async def on_check_in(self, sid: str, claims: Claims, p: CheckIn) -> dict[str, Any]:
        assert claims.visit is not None
        change = await self.hub.room.check_in(
            claims.visit,
            patient_sub=claims.sub,
            patient_name=claims.name,
            reason=p.reason,
            consent_recording=p.consent_recording,
            language=p.language,
            consent_version=p.consent_version,
            consent_language=p.consent_language,
        )
        visit = await self.hub.room.get(claims.visit)
        await self.notifier.visit_changed(visit)
        return {"visit": visit.for_patient(), "version": change.version}

    @event(Empty, PATIENT)
    async def on_leave(self, sid: str, claims: Claims, p: Empty) -> dict[str, Any]:
        assert claims.visit is not None
        change = await self.hub.room.end(claims.visit, by=claims.sub, reason=EndReason.LEFT)
        self.hub.metrics.visits_ended.labels(EndReason.LEFT.value).inc()
        await self.hub.ended(claims.visit, claims, EndReason.LEFT.value)
        visit = await self.hub.room.get(claims.visit)
        await self.notifier.visit_changed(visit)
        return {"visit": visit.for_patient(), "version": change.version if change else None}

    # -- staff -----------------------------------------------------------------------

    @event(Empty, STAFF)
    async def on_get_queue(self, sid: str, claims: Claims, p: Empty) -> dict[str, Any]:
        return await self.notifier.snapshot(claims.clinic)

    @event(VisitRef, frozenset(Role))
    async def on_get_visit(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, frozenset(Role))
        visit = await self.hub.room.get(p.visit_id)
        if claims.role is Role.PATIENT:
            return {"visit": visit.for_patient()}
        return {"visit": visit.for_staff(), "history": await self.hub.room.history(p.visit_id)}

    @event(Triage, CLINICAL)
    async def on_triage(self, sid: str, claims: Claims, p: Triage) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, CLINICAL)
        change = await self.hub.room.triage(p.visit_id, by=claims.sub, acuity=p.acuity, note=p.note)
        return await self._changed(p.visit_id, change.version)

    @event(Route, CLINICAL)
    async def on_route(self, sid: str, claims: Claims, p: Route) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, CLINICAL)
        # Only a doctor on the clinic's roster (else not_found, in words a nurse reads).
        doctor = await self.notifier.roster.roster.doctor(claims.clinic, p.doctor) if p.doctor else None
        change = await self.hub.room.route(p.visit_id, by=claims.sub, doctor=p.doctor)
        result = await self._changed(p.visit_id, change.version)
        return {**result, **routed_reply(doctor, self.hub.settings.route_return)}

    @event(Empty, STAFF)
    async def on_get_roster(self, sid: str, claims: Claims, p: Empty) -> dict[str, Any]:
        members = await self.notifier.roster.roster.members(claims.clinic)
        return {"staff": [m.to_dict() for m in members]}

    @event(VisitRef, NURSE)
    async def on_claim(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """A nurse opened this patient (chat or triage): others see "with <name>"."""
        await self.hub.authorize_visit(claims, p.visit_id, NURSE)
        roster = self.notifier.roster
        others = [c for c in await roster.claimed_by(claims.clinic, p.visit_id) if c["sub"] != claims.sub]
        await roster.claims.claim(claims.clinic, p.visit_id, claims.sub)
        self.notifier.touch(claims.clinic)
        return {"others": others}

    @event(VisitRef, NURSE)
    async def on_release(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, NURSE)
        if await self.notifier.roster.claims.release(claims.clinic, p.visit_id, claims.sub):
            self.notifier.touch(claims.clinic)
        return {}

    @event(Admit, DOCTOR)
    async def on_admit(self, sid: str, claims: Claims, p: Admit) -> dict[str, Any]:
        if p.visit_id is not None:
            await self.hub.authorize_visit(claims, p.visit_id, DOCTOR)
        change = await self.hub.room.admit(
            claims.clinic, doctor=claims.sub, doctor_name=claims.name, visit_id=p.visit_id
        )
        self.hub.metrics.admits.inc()
        logger.info("Visit(%s) admitted by %s", change.visit_id, claims.sub)
        await self.hub.audit_event("admit", claims, change.visit_id)
        result = await self._changed(change.visit_id, change.version)
        return {**result, **ice_config(self.hub.settings, claims.sub)}

    @event(VisitRef, STAFF)
    async def on_end(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        await self.hub.authorize_visit(claims, p.visit_id, STAFF)
        visit = await self.hub.room.get(p.visit_id)
        if visit.state is State.IN_VISIT:
            if claims.role is Role.NURSE or (claims.role is Role.DOCTOR and claims.sub != visit.doctor):
                raise Forbidden("only the visit's doctor (or an admin) can end a visit in progress")
            reason = EndReason.COMPLETED
        else:
            reason = EndReason.CANCELLED
        change = await self.hub.room.end(p.visit_id, by=claims.sub, reason=reason)
        self.hub.metrics.visits_ended.labels(reason.value).inc()
        await self.hub.ended(p.visit_id, claims, reason.value)
        return await self._changed(p.visit_id, change.version if change else None)

    async def _changed(self, visit_id: str, version: int | None) -> dict[str, Any]:
        """After a change: push it, and reply with the visit and the queue version."""
        visit = await self.hub.room.get(visit_id)
        await self.notifier.visit_changed(visit)
        return {"visit": visit.for_staff(), "version": version}
