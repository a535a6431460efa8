"""The node's side of the staff roster: sign-ins and presence of staff, who is
with whom, patients online or not, routed patients whose doctor went off duty,
and what staff see of all that in the queue; and when a clinic's doctors on
duty, or free ones, changed (so its patients' estimates are pushed again).

The state is in Redis (:mod:`telemed.roster`, :mod:`telemed.triage_claims`,
:mod:`telemed.route_return`); this module only keeps, per socket on this node,
what it needs to release a claim or mark a patient offline when a socket goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from signaling import rooms
from signaling.hub import Hub
from telemed import duty, keys
from telemed.roster import Member, Roster
from telemed.route_return import Returned, RouteReturn
from telemed.tokens import Claims
from telemed.triage_claims import TriageClaims

logger = logging.getLogger(__name__)

NAMESPACE = "/queue"

#: A patient counts as online while a node refreshed them within this many
#: presence intervals (a node that died stops refreshing).
ONLINE_INTERVALS = 3


class StaffRoster:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.roster = Roster(hub.redis, hub.settings)
        self.claims = TriageClaims(hub.redis, hub.settings)
        self.returns = RouteReturn(hub.redis, hub.settings)
        #: (clinic, sub) -> staff sids of that person on this node
        self._staff: dict[tuple[str, str], set[str]] = {}
        #: visit -> patient sids on this node
        self._patients: dict[str, set[str]] = {}
        #: clinic -> its doctors on duty and busy when this node last looked
        self._at_work: dict[str, duty.DoctorsAtWork] = {}

    # -- sockets ---------------------------------------------------------------------

    async def staff_joined(self, sid: str, claims: Claims) -> None:
        self._staff.setdefault((claims.clinic, claims.sub), set()).add(sid)
        await self.roster.signed_in(claims.clinic, claims.sub, claims.name, claims.role)

    async def staff_left(self, sid: str, claims: Claims) -> bool:
        """A staff socket closed; True if it was the person's last one here (their
        claims are then released)."""
        sids = self._staff.get((claims.clinic, claims.sub), set())
        sids.discard(sid)
        if sids:
            return False
        self._staff.pop((claims.clinic, claims.sub), None)
        return await self.claims.release_all(claims.clinic, claims.sub) > 0

    async def patient_joined(self, visit_id: str, sid: str) -> None:
        self._patients.setdefault(visit_id, set()).add(sid)
        await self.hub.redis.zrem(keys.PATIENTS_OFFLINE, visit_id)

    async def patient_left(self, visit_id: str, sid: str) -> None:
        sids = self._patients.get(visit_id, set())
        sids.discard(sid)
        if not sids:
            self._patients.pop(visit_id, None)
            if await self.hub.redis.zscore(keys.PATIENTS_SEEN, visit_id) is not None:  # still queued
                await self.hub.redis.zadd(keys.PATIENTS_OFFLINE, {visit_id: int(time.time() * 1000)})

    async def refresh(self, staff: dict[str, set[str]], patients: Iterable[str]) -> None:
        """The presence heartbeat: staff seen now, these patients online."""
        await self.roster.mark_seen(staff)
        pipe = self.hub.redis.pipeline(transaction=False)
        here = list(patients)
        if here:
            pipe.zrem(keys.PATIENTS_OFFLINE, *here)
        # Gone longer than the grace period: ended as absent by now.
        gone_before = int((time.time() - self.hub.settings.grace_period - 60) * 1000)
        pipe.zremrangebyscore(keys.PATIENTS_OFFLINE, "-inf", gone_before)
        await pipe.execute()

    async def doctors_changed(self, clinics: Iterable[str]) -> list[str]:
        """Of these clinics, those whose doctors on duty or free ones changed since
        this node last looked (one looked at for the first time counts as changed):
        a doctor who went off duty, came back, or whose visit ended or began.
        Read as the wait estimate reads them (:func:`telemed.duty.doctors_at_work`)."""
        now = await duty.doctors_at_work(self.hub.redis, self.hub.settings, clinics)
        changed = [clinic for clinic, at_work in now.items() if self._at_work.get(clinic) != at_work]
        self._at_work = now
        return changed

    # -- what staff see ----------------------------------------------------------------

    async def decorate(self, clinic: str, snapshot: dict[str, Any]) -> None:
        """Add names, claims and online markers to a queue snapshot (in place)."""
        members = await self.roster.members(clinic)
        names = {m.sub: m.name for m in members}
        claimed = await self.claims.by_visit(clinic)
        rows: list[dict[str, Any]] = snapshot["queue"]
        online = await self.online([r["visit_id"] for r in rows])
        for row in rows:
            self._name_row(row, names)
            row["claimed_by"] = [{"sub": s, "name": names.get(s, "A nurse")} for s in claimed.get(row["visit_id"], [])]
            row["online"] = online.get(row["visit_id"], False)
        for row in snapshot.get("in_visit", []):
            self._name_row(row, names)
        snapshot["staff"] = [m.to_dict() for m in members]

    @staticmethod
    def _name_row(row: dict[str, Any], names: dict[str, str]) -> None:
        routed = row.get("routed_to")
        row["routed_to_name"] = names.get(routed, "A doctor not on the roster") if routed else None

    async def online(self, visit_ids: list[str]) -> dict[str, bool]:
        if not visit_ids:
            return {}
        pipe = self.hub.redis.pipeline(transaction=False)
        pipe.zmscore(keys.PATIENTS_SEEN, visit_ids)
        pipe.zmscore(keys.PATIENTS_OFFLINE, visit_ids)
        seen, offline = await pipe.execute()
        since = (time.time() - ONLINE_INTERVALS * self.hub.settings.presence_interval) * 1000
        return {
            vid: s is not None and float(s) >= since and off is None
            for vid, s, off in zip(visit_ids, seen, offline, strict=True)
        }

    async def claimed_by(self, clinic: str, visit_id: str) -> list[dict[str, str]]:
        """The nurses who have this patient open, by name."""
        subs = (await self.claims.by_visit(clinic)).get(visit_id, [])
        names = await self.roster.names(clinic)
        return [{"sub": s, "name": names.get(s, "A nurse")} for s in subs]

    # -- routed patients whose doctor went off duty -----------------------------------

    async def return_routed(self) -> list[Returned]:
        """Send back to the shared queue the patients whose doctor is gone, and tell
        the clinic's staff (a ``queue_notice``) on every node."""
        returned = await self.returns.sweep_once()
        for r in returned:
            visit = await self.hub.room.get(r.visit_id)
            doctor: Member | None = await self.roster.get(r.clinic, r.doctor)
            doctor_name = doctor.name if doctor else "The doctor"
            patient = visit.patient_name or "A patient"
            await self.hub.sio.emit(
                "queue_notice",
                {
                    "kind": "returned",
                    "visit_id": r.visit_id,
                    "patient_name": visit.patient_name or None,
                    "doctor": r.doctor,
                    "doctor_name": doctor_name,
                    "message": f"{patient} went back to the shared queue: {doctor_name} went off duty.",
                },
                room=rooms.staff(r.clinic),
                namespace=NAMESPACE,
            )
        return returned
