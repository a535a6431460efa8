"""``/guest``: a visit's guest (an interpreter, a caregiver with a link; a
clinician guest with their staff token) checks in with their own consent,
waits in the visit's lobby, follows who is in the visit, and leaves.

Every event names the visit; the caller must be a guest of it (a guest token
of that visit, or a clinician invited by sub) and not removed. A guest token
is accepted here, in ``/chat`` (once admitted) and ``/call`` (its events once
admitted, :mod:`signaling.call_parties`) only; the queue and the media
namespaces refuse it at connect. Leaving the visit is leaving its call too.
"""

from __future__ import annotations

from typing import Any

from signaling._base import AuthedNamespace, event
from signaling.call_parties import CallParties
from signaling.guests_http import guest_room, participants, push, visit_room
from signaling.hub import Hub
from signaling.schemas import GuestCheckIn, VisitRef
from telemed.guests import GuestList, GuestState
from telemed.tokens import Claims, Role

#: Link guests, and the clinic's doctors and nurses as clinician guests.
GUESTS = frozenset({Role.GUEST, Role.NURSE, Role.DOCTOR})


class GuestNamespace(AuthedNamespace):
    roles = GUESTS

    def __init__(self, hub: Hub, guests: GuestList) -> None:
        super().__init__("/guest", hub)
        self.guests = guests
        self.call = CallParties(hub, guests)

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.GUEST:
            assert claims.visit is not None
            guest = await self.guests.of(claims, claims.visit)
            await self.enter_room(sid, guest_room(claims.visit, guest.id))
            await self.emit("guest", await self._welcome(guest.visit, guest.id), to=sid)

    async def _welcome(self, visit_id: str, guest_id: str) -> dict[str, Any]:
        """What the guest's page shows first: themselves, the visit, who invited them."""
        guest = await self.guests.get(visit_id, guest_id)
        visit = await self.hub.room.get(visit_id)
        return {
            **guest.for_self(),
            "visit_id": visit_id,
            "visit_state": visit.state.value,
            "invited_by_name": guest.invited_by_name or None,
            "doctor_name": visit.doctor_name or None,
        }

    async def _follow(self, sid: str, visit_id: str, guest_id: str, state: GuestState) -> None:
        await self.enter_room(sid, guest_room(visit_id, guest_id))
        if state is GuestState.ADMITTED:
            await self.enter_room(sid, visit_room(visit_id))
        else:
            await self.leave_room(sid, visit_room(visit_id))

    @event(VisitRef, GUESTS)
    async def on_get_guest(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        guest = await self.guests.of(claims, p.visit_id)
        await self._follow(sid, p.visit_id, guest.id, guest.state)
        return {"guest": await self._welcome(p.visit_id, guest.id)}

    @event(GuestCheckIn, GUESTS)
    async def on_join(self, sid: str, claims: Claims, p: GuestCheckIn) -> dict[str, Any]:
        guest = await self.guests.of(claims, p.visit_id)
        guest = await self.guests.check_in(
            p.visit_id, guest.id, consent_visit=p.consent_visit, consent_recording=p.consent_recording,
            language=p.language, consent_version=p.consent_version, consent_language=p.consent_language,
        )
        await self._follow(sid, p.visit_id, guest.id, guest.state)
        await push(self.hub, self.guests, p.visit_id, guest)
        if guest.state is GuestState.ADMITTED:  # joined directly
            await self.call.guest_in(p.visit_id, guest)
        return {"guest": guest.for_self()}

    @event(VisitRef, GUESTS)
    async def on_leave_visit(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        guest = await self.guests.of(claims, p.visit_id)
        was = guest.state
        guest = await self.guests.leave(p.visit_id, guest.id)
        await self._follow(sid, p.visit_id, guest.id, guest.state)
        await push(self.hub, self.guests, p.visit_id, guest)
        if was is GuestState.ADMITTED:  # out of the visit is out of its call
            await self.call.guest_out(p.visit_id, guest.id)
        return {"guest": guest.for_self()}

    @event(VisitRef, GUESTS)
    async def on_participants(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        await self.guests.require_admitted(claims, p.visit_id)
        visit = await self.hub.room.get(p.visit_id)
        return {"visit_id": p.visit_id, "participants": participants(visit, await self.guests.list(p.visit_id))}
