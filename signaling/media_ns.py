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
"""

from __future__ import annotations

import logging
from typing import Any

from signaling._base import AuthedNamespace, event
from signaling.hub import Hub
from signaling.schemas import CaptionLanguage, CaptionsChoice, LegOffer, SnapshotRequest, VisitRef
from telemed import languages
from telemed.exceptions import Conflict, Forbidden, NotFound
from telemed.media_protocol import NAMESPACE, Job, MediaClient, room_captions, room_leg, room_media
from telemed.tokens import Claims, Role, new_id
from telemed.visits import State, Visit

logger = logging.getLogger(__name__)

PARTIES = frozenset({Role.PATIENT, Role.DOCTOR})
DOCTOR = frozenset({Role.DOCTOR})
PATIENT = frozenset({Role.PATIENT})


class MediaNamespace(AuthedNamespace):
    roles = PARTIES

    def __init__(self, hub: Hub) -> None:
        super().__init__(NAMESPACE, hub)
        self.media = MediaClient(hub.redis)

    async def joined(self, sid: str, claims: Claims) -> None:
        if claims.role is Role.PATIENT:
            assert claims.visit is not None
            await self._follow(sid, claims, claims.visit)
        else:
            for visit_id in await self.hub.room.doctor_visits(claims.clinic, claims.sub):
                await self._follow(sid, claims, visit_id)

    async def _follow(self, sid: str, claims: Claims, visit_id: str) -> None:
        """Put the socket where the workers' events for the visit arrive: both
        parties get ``recording``; the doctor's sockets get captions."""
        await self.enter_room(sid, room_media(visit_id))
        if claims.role is Role.DOCTOR:
            await self.enter_room(sid, room_captions(visit_id))

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

    @event(LegOffer, PARTIES)
    async def on_leg_offer(self, sid: str, claims: Claims, p: LegOffer) -> dict[str, Any]:
        visit = await self._visit_in_progress(claims, p.visit_id)
        if not visit.consent_recording:
            raise Forbidden("the patient did not consent to recording", reason="no_consent")
        # The patient speaks the visit's language; the doctor the one their page names.
        language = p.language if claims.role is Role.DOCTOR else (visit.language or languages.DEFAULT)
        job = Job(job=new_id(), visit=visit.id, clinic=visit.clinic, role=claims.role.value, sub=claims.sub,
                  sdp=p.sdp, consent=visit.consent_recording, language=language)
        await self.enter_room(sid, room_leg(job.id))
        await self._follow(sid, claims, visit.id)
        await self.media.submit(job)
        logger.info("Visit(%s) chart leg offered by the %s (job %s)", visit.id, claims.role.value, job.id)
        return {"job": job.id}

    @event(VisitRef, PARTIES)
    async def on_status(self, sid: str, claims: Claims, p: VisitRef) -> dict[str, Any]:
        """Which participants' chart legs are recording now (a reloaded page
        shows the recording indicator from this)."""
        await self._party(claims, p.visit_id)
        await self._follow(sid, claims, p.visit_id)
        legs = {role: await self.media.leg(p.visit_id, role) for role in ("patient", "doctor")}
        return {"recording": {role: bool(leg and leg.get("file")) for role, leg in legs.items()}}

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
