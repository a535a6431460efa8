"""The virtual waiting room: visits and each clinic's queue, kept in Redis.

A clinic's queue is a sorted set ordered by acuity (ESI 1 = most urgent; an
untriaged patient counts as the default level) and then by arrival number.
Every change goes through one Lua script (see :mod:`telemed._scripts`), so two
doctors admitting at the same moment never get the same patient.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from telemed import _scripts, consent, duty, keys, languages
from telemed.estimate import ClinicLoad, WaitEstimate, estimate_waits
from telemed.exceptions import BadRequest, Conflict, NotFound, TooEarly
from telemed.replication import Replication
from telemed.settings import Settings
from telemed.tokens import check_id, new_id
from telemed.visits import QUEUED, Action, EndReason, State, Visit, transition_argv

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Change:
    """What a transition did: the states before and after, the queue version."""

    visit_id: str
    clinic: str
    before: State
    after: State
    version: int


class Position(NamedTuple):
    """One patient's place (a named tuple: thousands are made per push round,
    and a frozen dataclass took three times as long to make)."""

    visit_id: str
    position: int
    wait: WaitEstimate
    """What the patient is shown (telemed/estimate.py)."""


@dataclass(frozen=True)
class Positions:
    version: int
    """The queue's version when read (clients drop an update older than one they have)."""
    length: int
    doctors: int
    """Doctors on duty (seen within ``TELEMED_ON_DUTY``, :mod:`telemed.duty`)."""
    free: int
    """Of them, the ones in no visit."""
    places: list[Position]
    """The visits asked for that are queued, with position and estimate."""


def visits_of(rows: list[tuple[str, list[str]]]) -> list[Visit]:
    """The visits of rows read by :meth:`WaitingRoom.queue_rows` (a visit gone meanwhile has no fields)."""
    return [Visit.from_hash(vid, dict(zip(flat[::2], flat[1::2], strict=True))) for vid, flat in rows if flat]


class WaitingRoom:
    """Visits and queues of every clinic in one Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self.settings = settings
        self._check_in = redis.register_script(_scripts.CHECK_IN)
        self._triage = redis.register_script(_scripts.TRIAGE)
        self._route = redis.register_script(_scripts.ROUTE)
        self._admit = redis.register_script(_scripts.ADMIT)
        self._end = redis.register_script(_scripts.END)
        self._positions = redis.register_script(_scripts.POSITIONS)
        self._queue_visits = redis.register_script(_scripts.QUEUE_VISITS)
        self._extend_link = redis.register_script(_scripts.EXTEND_LINK)
        self._clinic_of: dict[str, str] = {}
        #: Changes people are told about wait for the replicas (telemed/replication.py).
        self._replication = Replication(redis, settings)

    # -- reading ---------------------------------------------------------------

    async def get(self, visit_id: str) -> Visit:
        h = await self.redis.hgetall(keys.visit(visit_id))
        if not h:
            raise NotFound("no such visit")
        return Visit.from_hash(visit_id, h)

    async def clinic_of(self, visit_id: str) -> str:
        """The clinic a visit belongs to (it never changes, so it is cached)."""
        clinic = self._clinic_of.get(visit_id)
        if clinic is None:
            clinic = await self.redis.hget(keys.visit(visit_id), "clinic")
            if clinic is None:
                raise NotFound("no such visit")
            if len(self._clinic_of) > 100_000:
                self._clinic_of.clear()
            self._clinic_of[visit_id] = clinic
        return clinic

    async def queue(self, clinic: str) -> list[Visit]:
        """The clinic's queue in order (acuity, then arrival)."""
        return visits_of(await self.queue_rows(clinic))

    async def queue_rows(self, clinic: str) -> list[tuple[str, list[str]]]:
        """The clinic's queue in order as read: (visit id, [field, value, ...]) rows
        for :func:`visits_of` (a caller making thousands of visits can make them a
        part at a time)."""
        prefix, suffix = keys.visit("\0").split("\0")
        rows: list[tuple[str, list[str]]] = await self._queue_visits(keys=[keys.queue(clinic)], args=[prefix, suffix])
        return rows

    async def _visits(self, ids: list[str]) -> list[Visit]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for vid in ids:
            pipe.hgetall(keys.visit(vid))
        hashes = await pipe.execute()
        return [Visit.from_hash(vid, h) for vid, h in zip(ids, hashes, strict=True) if h]

    async def in_visit(self, clinic: str) -> list[Visit]:
        """The clinic's visits in progress, oldest admit first."""
        return sorted(
            await self._visits(sorted(await self.redis.smembers(keys.in_visit(clinic)))),
            key=lambda v: v.admitted_at or 0,
        )

    async def doctors_on_duty(self, clinic: str) -> list[dict[str, str]]:
        """Doctors seen recently: ``[{sub, name}]``."""
        since = int(duty.since(self.settings) * 1000)
        subs = await self.redis.zrangebyscore(keys.doctors_on_duty(clinic), since, "+inf")
        names = await self.redis.hmget(keys.doctor_names(clinic), subs) if subs else []
        return [{"sub": s, "name": n or s} for s, n in zip(subs, names, strict=True)]

    async def queue_version(self, clinic: str) -> int:
        return int(await self.redis.get(keys.queue_version(clinic)) or 0)

    async def history(self, visit_id: str) -> list[dict[str, Any]]:
        return [json.loads(e) for e in await self.redis.lrange(keys.visit_history(visit_id), 0, -1)]

    async def doctor_visits(self, clinic: str, doctor_sub: str) -> list[str]:
        return sorted(await self.redis.smembers(keys.doctor_visits(clinic, doctor_sub)))

    # -- changing --------------------------------------------------------------

    async def create(
        self,
        clinic: str,
        *,
        reason: str = "",
        ttl: float | None = None,
        patient_name: str = "",
        scheduled_at: float | None = None,
        check_in_from: float | None = None,
    ) -> Visit:
        """Create a visit in state ``created``; the patient checks in later. It is
        listed as expected (and, with ``scheduled_at``, watched for a no-show) until
        then. A scheduled visit's check-in opens at ``check_in_from`` (default: the
        ``check_in_window`` setting before the time); earlier is refused."""
        check_id(clinic, "clinic")
        now = time.time()
        ttl = self.settings.patient_link_ttl if ttl is None else ttl
        visit_id = new_id()
        key = keys.visit(visit_id)
        fields = {
            "id": visit_id,
            "clinic": clinic,
            "state": State.CREATED.value,
            "created_at": repr(now),
            "expires_at": repr(now + ttl),
            "reason": reason,
            "patient_name": patient_name,
        }
        if scheduled_at is not None:
            if check_in_from is None:
                check_in_from = scheduled_at - self.settings.check_in_window
            fields["scheduled_at"] = repr(scheduled_at)
            fields["check_in_from"] = repr(check_in_from)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        # An unused visit disappears on its own; check-in removes the expiry.
        pipe.expire(key, int(ttl + keys.UNUSED_VISIT_SLACK))
        pipe.zadd(keys.expected(clinic), {visit_id: scheduled_at or 0})
        if scheduled_at is not None:
            pipe.zadd(keys.APPOINTMENTS_DUE, {visit_id: scheduled_at})
        await pipe.execute()
        await self._replication.confirm_key(key)
        self._clinic_of[visit_id] = clinic
        logger.info("Visit(%s) created in clinic %s", visit_id, clinic)
        return await self.get(visit_id)

    async def check_in(
        self,
        visit_id: str,
        *,
        patient_sub: str,
        patient_name: str,
        reason: str,
        consent_recording: bool,
        language: str = languages.DEFAULT,
        consent_version: str | None = None,
        consent_language: str | None = None,
    ) -> Change:
        """Put the patient in the queue; before a scheduled visit's ``check_in_from``
        raises :class:`TooEarly`.

        :param language: the patient's language (a tag, :mod:`telemed.languages`).
        :param consent_version: the consent wording the page showed; None: the
            current one of the consent's language.
        :param consent_language: the language of that wording; None: ``language``
            (or English where that language has no wording). An unknown wording
            raises :class:`telemed.consent.ConsentOutdated`.
        """
        try:
            language = languages.canonical(language)
            consent_language = None if consent_language is None else languages.canonical(consent_language)
        except ValueError as exc:
            raise BadRequest(f"language: {exc}", fields=["language"]) from None
        agreed = consent.resolve(language, consent_version, consent_language)
        clinic = await self.clinic_of(visit_id)
        r = await self._replication.eval(
            self._check_in,
            keys=[
                keys.visit(visit_id),
                keys.visit_history(visit_id),
                keys.queue(clinic),
                keys.queue_seq(clinic),
                keys.queue_version(clinic),
                keys.PATIENTS_SEEN,
                keys.expected(clinic),
                keys.APPOINTMENTS_DUE,
            ],
            args=[
                *self._rules(Action.CHECK_IN),
                self.settings.default_acuity,
                reason,
                "1",
                "1" if consent_recording else "0",
                agreed.version,
                patient_sub,
                patient_name,
                _scripts.PLACE_EPOCH_MS,
                language,
                agreed.language,
            ],
        )
        if r[0] == "too_early":
            raise TooEarly(
                "It is too early to check in for this appointment.",
                scheduled_at=float(r[1]),
                check_in_from=float(r[2]),
            )
        change = self._change(visit_id, clinic, r)
        # Not waited for: lost in a failover, it leaves the link's expiry (+1 day) on the visit.
        await self.redis.persist(keys.visit(visit_id))
        return change

    async def triage(
        self, visit_id: str, *, by: str, acuity: int | None = None, note: str | None = None
    ) -> Change:
        if acuity is None and note is None:
            raise BadRequest("give an acuity, a note, or both")
        if acuity is not None and not 1 <= acuity <= 5:
            raise BadRequest("acuity is an ESI level 1-5")
        clinic = await self.clinic_of(visit_id)
        r = await self._replication.eval(
            self._triage,
            keys=[
                keys.visit(visit_id),
                keys.visit_history(visit_id),
                keys.queue(clinic),
                keys.queue_version(clinic),
            ],
            args=[
                *self._rules(Action.TRIAGE),
                self.settings.default_acuity,
                "" if acuity is None else str(acuity),
                note or "",
                by,
                "0" if note is None else "1",
            ],
        )
        return self._change(visit_id, clinic, r)

    async def route(self, visit_id: str, *, by: str, doctor: str | None) -> Change:
        clinic = await self.clinic_of(visit_id)
        r = await self._replication.eval(
            self._route,
            keys=[keys.visit(visit_id), keys.visit_history(visit_id), keys.queue_version(clinic), keys.ROUTED],
            args=[*self._rules(Action.ROUTE), doctor or "", by, clinic],
        )
        return self._change(visit_id, clinic, r)

    async def admit(
        self, clinic: str, *, doctor: str, doctor_name: str, visit_id: str | None = None
    ) -> Change:
        """Admit the chosen patient, or the next one this doctor may take."""
        if visit_id is not None and await self.clinic_of(visit_id) != clinic:
            raise NotFound("no such visit")
        prefix, suffix = keys.visit("\0").split("\0")
        hprefix = keys.visit_history("\0").split("\0")[0]
        r = await self._replication.eval(
            self._admit,
            keys=[
                keys.queue(clinic),
                keys.queue_version(clinic),
                keys.doctor_visits(clinic, doctor),
                keys.PATIENTS_SEEN,
                keys.in_visit(clinic),
            ],
            args=[*self._rules(Action.ADMIT), doctor, doctor_name, visit_id or "", prefix, hprefix, suffix],
        )
        if r[0] == "empty":
            raise NotFound("nobody is waiting for you")
        return self._change(r[4] if r[0] == "ok" else (visit_id or ""), clinic, r)

    async def end(
        self,
        visit_id: str,
        *,
        by: str,
        reason: EndReason,
        absent_before_ms: int | None = None,
        not_started: bool = False,
    ) -> Change | None:
        """End a visit. With ``absent_before_ms``, only if its patient was not
        seen since then (the grace-period sweep); returns None if they were.
        With ``not_started`` (and for a no-show), only a visit not checked in yet."""
        action = Action.LEAVE if reason in (EndReason.LEFT, EndReason.ABSENT) else Action.END
        if not_started or reason is EndReason.NO_SHOW:
            action = Action.CALL_OFF
        clinic = await self.clinic_of(visit_id)
        r = await self._replication.eval(
            self._end,
            keys=[
                keys.visit(visit_id),
                keys.visit_history(visit_id),
                keys.queue(clinic),
                keys.queue_version(clinic),
                keys.durations(clinic),
                keys.PATIENTS_SEEN,
                keys.chat(visit_id),
                keys.chat_ids(visit_id),
                keys.in_visit(clinic),
                keys.CHARTS_PENDING,
                keys.expected(clinic),
                keys.APPOINTMENTS_DUE,
            ],
            args=[
                *self._rules(action),
                reason.value,
                by,
                keys.ENDED_VISIT_TTL,
                keys.DURATION_SAMPLES,
                keys.doctor_visits(clinic, ""),
                "" if absent_before_ms is None else str(absent_before_ms),
            ],
        )
        if r[0] == "present":
            return None
        change = self._change(visit_id, clinic, r)
        logger.info("Visit(%s) ended: %s (was %s)", visit_id, reason.value, change.before.value)
        return change

    async def positions(self, clinic: str, visit_ids: list[str]) -> Positions:
        """Where these visits stand in the clinic's queue, with their wait estimates
        (:func:`telemed.estimate.estimate_waits`, once for all of them)."""
        prefix, suffix = keys.visit("\0").split("\0")
        now = time.time()
        version, length, doctors, lengths, began, levels, *ranks = await self._positions(
            keys=[
                keys.queue(clinic),
                keys.durations(clinic),
                keys.doctors_on_duty(clinic),
                keys.queue_version(clinic),
                keys.in_visit(clinic),
            ],
            args=[int(now * 1000), duty.window_ms(self.settings), prefix, suffix, ",".join(visit_ids)],
        )
        load = ClinicLoad(
            doctors_on_duty=int(doctors),
            busy_for_s=sorted(max(0.0, now - float(b)) for b in began),
            visit_lengths_s=[float(x) for x in lengths],
            default_visit_s=self.settings.default_visit_minutes * 60,
            queued_by_acuity=[int(n) for n in levels],
        )
        queued_ids = [vid for vid, rank in zip(visit_ids, ranks, strict=True) if rank >= 0]
        queued_ranks = [rank for rank in ranks if rank >= 0]
        waits = estimate_waits(queued_ranks, load)
        places = list(map(Position, queued_ids, [rank + 1 for rank in queued_ranks], waits))
        return Positions(int(version), int(length), int(doctors), load.free, places)

    # -- expected visits and appointments ----------------------------------------

    async def expected(self, clinic: str) -> list[Visit]:
        """The clinic's visits created and not checked in yet: by appointment
        (unscheduled ones last), then creation. Entries of visits gone are dropped."""
        ids = await self.redis.zrange(keys.expected(clinic), 0, -1)
        visits = await self._visits(ids)
        live = [v for v in visits if v.state is State.CREATED]
        stale = set(ids) - {v.id for v in live}
        if stale:
            await self.redis.zrem(keys.expected(clinic), *stale)
        return sorted(live, key=lambda v: (v.scheduled_at is None, v.scheduled_at or 0, v.created_at))

    async def appointments_due(self, before: float) -> list[str]:
        """Scheduled visits not checked in whose time is before ``before`` (epoch s)."""
        ids: list[str] = await self.redis.zrangebyscore(keys.APPOINTMENTS_DUE, "-inf", f"({before!r}")
        return ids

    async def mark_no_show(self, clinic: str, visit_id: str) -> None:
        """Remember a no-show for the staff's "missed" list (the last :data:`keys.NO_SHOWS_KEPT`)."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(keys.no_shows(clinic), {visit_id: now})
        pipe.zremrangebyscore(keys.no_shows(clinic), "-inf", now - keys.NO_SHOWS_KEPT)
        await pipe.execute()

    async def no_shows(self, clinic: str) -> list[Visit]:
        """The clinic's recent no-shows, latest first."""
        since = time.time() - keys.NO_SHOWS_KEPT
        ids = await self.redis.zrevrangebyscore(keys.no_shows(clinic), "+inf", since)
        return await self._visits(ids)

    async def forget_appointment(self, visit_id: str) -> None:
        await self.redis.zrem(keys.APPOINTMENTS_DUE, visit_id)

    async def extend_link(self, visit_id: str, ttl: float) -> Visit:
        """A new link for a visit not checked in yet lasts ``ttl`` from now: so does the visit."""
        r = await self._extend_link(
            keys=[keys.visit(visit_id)], args=[repr(time.time() + ttl), int(ttl + keys.UNUSED_VISIT_SLACK)]
        )
        if r[0] == "not_found":
            raise NotFound("no such visit")
        if r[0] == "conflict":
            raise Conflict("the patient has already checked in", state=r[1])
        return await self.get(visit_id)

    # -- presence --------------------------------------------------------------

    async def doctor_joined(self, clinic: str, sub: str, name: str) -> None:
        await self.redis.hset(keys.doctor_names(clinic), sub, name)
        await self.mark_seen([], {clinic: {sub}})

    async def mark_seen(self, patients: list[str], doctors: dict[str, set[str]]) -> None:
        """Record that these patients' and doctors' sockets are connected now."""
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        if patients:
            # XX: a visit that ended is not brought back into the presence set.
            pipe.zadd(keys.PATIENTS_SEEN, {vid: now_ms for vid in patients}, xx=True)
        for clinic, subs in doctors.items():
            if subs:
                pipe.zadd(keys.doctors_on_duty(clinic), {sub: now_ms for sub in subs})
                # Doctors who left long ago: keep the set small.
                pipe.zremrangebyscore(keys.doctors_on_duty(clinic), "-inf", now_ms - 24 * 3600 * 1000)
        await pipe.execute()

    async def absent_patients(self, grace: float) -> tuple[list[str], int]:
        """Visits whose patient has not been seen for ``grace`` seconds."""
        cutoff = int((time.time() - grace) * 1000)
        return await self.redis.zrangebyscore(keys.PATIENTS_SEEN, "-inf", f"({cutoff}"), cutoff

    async def durations(self, clinic: str) -> list[float]:
        return [float(x) for x in await self.redis.lrange(keys.durations(clinic), 0, -1)]

    # -- clinic settings ---------------------------------------------------------

    async def walk_in_enabled(self, clinic: str) -> bool:
        value = await self.redis.hget(keys.clinic_settings(clinic), "walk_in")
        if value is None:
            return clinic in self.settings.walk_in_clinics
        return bool(value == "1")

    async def set_walk_in(self, clinic: str, enabled: bool) -> None:
        check_id(clinic, "clinic")
        await self.redis.hset(keys.clinic_settings(clinic), "walk_in", "1" if enabled else "0")

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _rules(action: Action) -> list[str]:
        rows = transition_argv(action)
        return [json.dumps(dict(zip(rows[::2], rows[1::2], strict=False))), repr(time.time())]

    @staticmethod
    def _change(visit_id: str, clinic: str, r: list[Any]) -> Change:
        status = r[0]
        if status == "not_found":
            raise NotFound("no such visit")
        if status == "conflict":
            raise Conflict(f"not allowed while the visit is {r[1]}", state=r[1])
        return Change(visit_id, clinic, State(r[1]), State(r[2]), int(r[3]))


def is_queued(state: State) -> bool:
    return state in QUEUED
