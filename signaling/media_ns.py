"""``/media``: the chart leg (recording and transcription) and snapshots.

A party of a visit in progress, with the patient's consent to recording,
offers a send-only peer connection for a media worker. The node queues the
offer for whichever worker takes it (Redis Stream) and puts the socket in the
job's room; the worker answers there (``leg_answer``) and tells both parties
when recording starts and stops (``recording``, room ``media:<visit>``).
Live captions (``caption``, ``captions``) go to room ``media:<visit>:captions``:
the doctor's sockets, and the patient's once they turn captions on themselves
(``captions`` ``{on}``); with the clinic's ``captions_to_patient`` they go to
both parties' room instead. Each speaker is transcribed in their language: the
patient in the visit's, the doctor in the one their leg offer names, changed
during the call with ``caption_language``.
Snapshots are asked of the worker that holds the patient's leg.

Guests in the visit (admitted link guests, and clinician guests with their
staff token, :meth:`telemed.guests.GuestList.of`) send a chart leg too, if
they agreed to be recorded (else ``forbidden``): keyed by their guest id, the
job naming their kind and name for the labels, an interpreter transcribed in
their language. ``status`` says whose legs record now, by party, and who in
the visit is not recorded (``not_recorded``: a guest who declined, by name and
kind), which :func:`tell_not_recorded` also pushes as a ``recording`` event
when the visit's people change.
"""

from __future__ import annotations

import logging
from typing import Any

from signaling._base import AuthedNamespace, event
from signaling.hub import Hub
from signaling.schemas import CaptionLanguage, CaptionsChoice, LegOffer, SnapshotRequest, VisitRef
from telemed import languages
from telemed.exceptions import Conflict, Forbidden, NotFound
from telemed.guests import Guest, GuestList, GuestState
from telemed.media_protocol import NAMESPACE, Job, MediaClient, room_captions, room_leg, room_media
from telemed.tokens import Claims, Role, new_id
from telemed.visits import State, Visit

logger = logging.getLogger(__name__)

PARTIES = frozenset({Role.PATIENT, Role.DOCTOR})
#: Who may send a chart leg: the parties, and guests (link guests; nurses and doctors as clinician guests).
SENDERS = frozenset({Role.PATIENT, Role.DOCTOR, Role.NURSE, Role.GUEST})
DOCTOR = frozenset({Role.DOCTOR})
PATIENT = frozenset({Role.PATIENT})


def not_recorded(guests: list[Guest]) -> list[dict[str, str]]:
    """The people in the visit now who are not recorded: admitted guests who declined."""
    return [{"party": g.id, "kind": g.kind.value, "name": g.name} for g in guests
            if g.state is GuestState.ADMITTED and not g.consent_recording]


async def tell_not_recorded(hub: Hub, visit_id: str, guests: list[Guest]) -> None:
    """Tell every ``/media`` socket of the visit who in it is not recorded (a
    ``recording`` event without a ``role``): call when the visit's people change."""
    await hub.sio.emit("recording", {"visit_id": visit_id, "not_recorded": not_recorded(guests)},
                       room=room_media(visit_id), namespace=NAMESPACE)


class MediaNamespace(AuthedNamespace):
    roles = SENDERS

    def __init__(self, hub: Hub) -> None:
        super().__init__(NAMESPACE, hub)
        self.media = MediaClient(hub.redis)
        self.guests = GuestList(hub.redis, hub.settings)

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            await self._follow(sid, claims, claims.visit)
        elif claims.role is Role.DOCTOR:
            for visit_id in await self.hub.room.doctor_visits(claims.clinic, claims.sub):
                await self._follow(sid, claims, visit_id)
        elif claims.role is Role.GUEST:  # let in by the doctor (refused in the lobby, as at /chat)
            assert claims.visit is not None
            await self.hub.authorize_visit(claims, claims.visit, SENDERS)
            await self._follow(sid, claims, claims.visit, guest=True)
        # A clinician guest follows their visit once `status` or `leg_offer` found them in it.

    async def _follow(self, sid: str, claims: Claims, visit_id: str, guest: bool = False) -> None:
        """Put the socket where the workers' events for the visit arrive: every
        party and guest gets ``recording``; the doctor's sockets get captions."""
        await self.enter_room(sid, room_media(visit_id))
        if claims.role is Role.DOCTOR and not guest:
            await self.enter_room(sid, room_captions(visit_id))

    async def _guest(self, claims: Claims, visit_id: str, in_progress: bool = False) -> tuple[Visit, Guest]:
        """The caller as a guest in ``visit_id`` now (admitted), and the visit."""
        if claims.role is Role.GUEST:
            await self.hub.authorize_visit(claims, visit_id, frozenset({Role.GUEST}))
        else:
            await self.hub.authorize_visit(claims, visit_id, SENDERS)
        guest = await self.guests.require_admitted(claims, visit_id)
        visit = await self.hub.room.get(visit_id)
        if in_progress and visit.state is not State.IN_VISIT:
            raise Conflict(f"no chart leg while the visit is {visit.state.value}", state=visit.state.value)
        return visit, guest

    async def _is_guest(self, claims: Claims, visit_id: str) -> bool:
        """Whether the caller acts as a guest of the visit (not as its patient or doctor)."""
        if claims.role is Role.PATIENT:
            return False
        if claims.role is Role.DOCTOR:
            await self.hub.authorize_visit(claims, visit_id, PARTIES)
            if claims.sub == (await self.hub.room.get(visit_id)).doctor:
                return False
            try:  # another doctor of the clinic: a guest only if invited (else refused as before)
                await self.guests.of(claims, visit_id)
            except Forbidden:
                return False
        return True

    async def _party(self, claims: Claims, visit_id: str, in_progress: bool = False) -> Visit:
        """The visit, if ``claims`` is its patient or its doctor (another doctor
        of the clinic must not hear its captions), and, if asked, in progress."""
        await self.hub.authorize_visit(claims, visit_id, PARTIES)
        visit = await self.hub.room.get(visit_id)
        if in_progress and visit.state is not State.IN_VISIT:
            raise Conflict(f"no chart leg while the visit is {visit.state.value}", state=visit.state.value)
        if claims.role is Role.DOCTOR and claims.sub != visit.doctor:
            raise Forbidden("another doctor is in this visit")
        return visit

    async def _visit_in_progress(self, claims: Claims, visit_id: str) -> Visit:
        return await self._party(claims, visit_id, in_progress=True)

    @event(LegOffer, SENDERS)
    async def on_leg_offer(self, sid: str, claims: Claims, p: LegOffer) -> dict[str, Any]:
        if await self._is_guest(claims, p.visit_id):
            return await self._guest_leg(sid, claims, p)
        visit = await self._visit_in_progress(claims, p.visit_id)
        if not visit.consent_recording:
            raise Forbidden("the patient did not consent to recording", reason="no_consent")
        # The patient speaks the visit's language; the doctor the one their page names.
        language = p.language if claims.role is Role.DOCTOR else (visit.language or languages.DEFAULT)
        name = visit.doctor_name if claims.role is Role.DOCTOR else visit.patient_name
        job = Job(job=new_id(), visit=visit.id, clinic=visit.clinic, role=claims.role.value, sub=claims.sub,
                  sdp=p.sdp, consent=visit.consent_recording, language=language, kind=claims.role.value, name=name)
        await self._submit(sid, claims, job)
        return {"job": job.id}

    async def _guest_leg(self, sid: str, claims: Claims, p: LegOffer) -> dict[str, Any]:
        """A guest's leg: with the patient's consent and their own; an interpreter
        is transcribed in the language they interpret, others in the one their page names."""
        visit, guest = await self._guest(claims, p.visit_id, in_progress=True)
        if not visit.consent_recording:
            raise Forbidden("the patient did not consent to recording", reason="no_consent")
        if not guest.consent_recording:
            raise Forbidden("you chose not to be recorded, so nothing of you goes into the chart",
                            reason="no_consent")
        job = Job(job=new_id(), visit=visit.id, clinic=visit.clinic, role=guest.id, sub=guest.sub, sdp=p.sdp,
                  consent=True, language=guest.language or p.language, kind=guest.kind.value, name=guest.name)
        await self._submit(sid, claims, job, guest=True)
        return {"job": job.id}

    async def _submit(self, sid: str, claims: Claims, job: Job, guest: bool = False) -> None:
        await self.enter_room(sid, room_leg(job.id))
        await self._follow(sid, claims, job.visit, guest=guest)
        await self.media.submit(job)
        logger.info("Visit(%s) chart leg offered by the %s (job %s)", job.visit, job.kind, job.id)

    @event(VisitRef, SENDERS)
    async def on_status(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """Which participants' chart legs are recording now, by party (a
        reloaded page shows the recording indicator from this), and who in the
        visit is not recorded (``not_recorded``: ``[{party, kind, name}]``)."""
        guest = await self._is_guest(claims, p.visit_id)
        if guest:
            await self._guest(claims, p.visit_id)
        else:
            await self._party(claims, p.visit_id)
        await self._follow(sid, claims, p.visit_id, guest=guest)
        guests = await self.guests.list(p.visit_id)
        parties = ["patient", "doctor", *(g.id for g in guests if g.state is GuestState.ADMITTED)]
        legs = {party: await self.media.leg(p.visit_id, party) for party in parties}
        return {"recording": {party: bool(leg and leg.get("file")) for party, leg in legs.items()},
                "not_recorded": not_recorded(guests)}

    @event(SnapshotRequest, DOCTOR)
    async def on_snapshot(self, sid: str, claims: Claims, p: SnapshotRequest) -> dict[str, Any]:
        visit = await self._visit_in_progress(claims, p.visit_id)
        await self._follow(sid, claims, visit.id)
        try:
            shot = await self.media.snapshot(visit.id, p.role)
        except NotFound:
            raise NotFound(f"no chart leg is recording the {p.role}'s video") from None
        logger.info("Visit(%s) snapshot %s taken", visit.id, shot.get("id"))
        return {"snapshot": shot}

    @event(CaptionLanguage, DOCTOR)
    async def on_caption_language(self, sid: str, claims: Claims, p: CaptionLanguage) -> dict[str, Any]:
        """The doctor speaks another language: their leg's captions switch
        recogniser now (``applies: "now"``), or, with no leg recording them,
        from the next leg offer, which names the language (``"next_leg"``)."""
        visit = await self._visit_in_progress(claims, p.visit_id)
        await self._follow(sid, claims, visit.id)
        now = await self.media.set_language(visit.id, "doctor", p.language)
        logger.info("Visit(%s) doctor's caption language set (%s)", visit.id, "now" if now else "next leg")
        return {"language": p.language, "applies": "now" if now else "next_leg"}

    @event(CaptionsChoice, PATIENT)
    async def on_captions(self, sid: str, claims: Claims, p: CaptionsChoice) -> dict[str, Any]:
        """The patient turns live captions on or off for this socket (WCAG 1.2.4),
        whatever the clinic's setting. A page that reconnects sends it again."""
        await self._party(claims, p.visit_id)
        if p.on:
            await self.enter_room(sid, room_captions(p.visit_id))
        else:
            await self.leave_room(sid, room_captions(p.visit_id))
        return {"on": p.on}
