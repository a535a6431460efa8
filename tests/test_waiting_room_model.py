"""A Hypothesis state machine drives the real waiting room (Lua on a real Redis)
and checks it against a plain Python model: FIFO within an acuity level, no
duplicates, nobody lost; a scheduled patient who checks in early ranks at the
appointment time (after everyone who arrives before it), one who is late at
arrival, one too early is refused and not queued."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from telemed import keys
from telemed.exceptions import Conflict, NotFound, TooEarly
from telemed.redis_server import RedisServer
from telemed.settings import Secret, Settings
from telemed.visits import EndReason
from telemed.waiting_room import WaitingRoom

DEFAULT_ACUITY = 3


class WaitingRoomMachine(RuleBasedStateMachine):
    server: RedisServer  # set by the test

    queued = Bundle("queued")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = aioredis.from_url(self.server.url, decode_responses=True)
        self.run(self.redis.flushall())
        self.room = WaitingRoom(self.redis, Settings(secret=Secret("x" * 40), redis_url=self.server.url))
        # visit id -> [acuity or None, place]; away = disconnected patients. A place is
        # (0, arrival number) for an arrival, (1, appointment) for an early scheduled
        # check-in: appointments are at least a minute ahead, so after every arrival
        # of a run (which lasts well under that).
        self.model: dict[str, list[Any]] = {}
        self.arrivals = 0
        self.base = time.time() + 60
        self.booked = 0
        self.away: set[str] = set()
        self.admitted: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    def expected(self) -> list[str]:
        return sorted(self.model, key=lambda v: (self.model[v][0] or DEFAULT_ACUITY, self.model[v][1]))

    def _check_in(self, visit_id: str) -> None:
        self.run(self.room.check_in(visit_id, patient_sub="p", patient_name="P", reason="", consent_recording=False))

    @rule(target=queued)
    def check_in(self) -> str:
        visit = self.run(self.room.create("c1"))
        self._check_in(visit.id)
        self.arrivals += 1
        self.model[visit.id] = [None, (0, self.arrivals)]
        return visit.id

    @rule(target=queued, minutes=st.integers(0, 14))
    def check_in_early_for_appointment(self, minutes: int) -> str:
        # Within the 15-minute window; a distinct millisecond per booking.
        self.booked += 1
        at = self.base + minutes * 60 + self.booked / 1000
        visit = self.run(self.room.create("c1", scheduled_at=at))
        self._check_in(visit.id)
        self.model[visit.id] = [None, (1, at)]
        return visit.id

    @rule(target=queued, minutes=st.integers(1, 120))
    def check_in_late_for_appointment(self, minutes: int) -> str:
        visit = self.run(self.room.create("c1", scheduled_at=time.time() - minutes * 60))
        self._check_in(visit.id)
        self.arrivals += 1
        self.model[visit.id] = [None, (0, self.arrivals)]
        return visit.id

    @rule(minutes=st.integers(16, 600))
    def check_in_too_early(self, minutes: int) -> None:
        visit = self.run(self.room.create("c1", scheduled_at=self.base + minutes * 60))
        try:
            self._check_in(visit.id)
        except TooEarly as exc:
            assert exc.details["check_in_from"] == visit.scheduled_at - 15 * 60
        else:
            raise AssertionError("a check-in before the window was accepted")
        assert self.run(self.room.get(visit.id)).state.value == "created"

    @rule(vid=consumes(queued))
    def leave(self, vid: str) -> None:
        if vid in self.model:
            self.run(self.room.end(vid, by="p", reason=EndReason.LEFT))
            del self.model[vid]
            self.away.discard(vid)

    @rule(vid=queued, acuity=st.integers(1, 5))
    def set_acuity(self, vid: str, acuity: int) -> None:
        try:
            self.run(self.room.triage(vid, by="n", acuity=acuity))
        except Conflict:
            assert vid not in self.model
            return
        assert vid in self.model
        self.model[vid][0] = acuity

    @rule()
    def admit_next(self) -> None:
        try:
            change = self.run(self.room.admit("c1", doctor="d", doctor_name="D"))
        except NotFound:
            assert not self.model
            return
        assert change.visit_id == self.expected()[0]
        del self.model[change.visit_id]
        self.away.discard(change.visit_id)
        self.admitted.add(change.visit_id)

    @rule(vid=queued)
    def admit_chosen(self, vid: str) -> None:
        try:
            self.run(self.room.admit("c1", doctor="d", doctor_name="D", visit_id=vid))
        except Conflict:
            assert vid not in self.model
            return
        del self.model[vid]
        self.away.discard(vid)
        self.admitted.add(vid)

    @rule(vid=queued)
    def disconnect(self, vid: str) -> None:
        if vid in self.model:
            # Last seen long ago: as if the grace period had passed for this one.
            self.run(self.redis.zadd(keys.PATIENTS_SEEN, {vid: int((time.time() - 3600) * 1000)}, xx=True))
            self.away.add(vid)

    @rule(vid=queued)
    def reconnect(self, vid: str) -> None:
        self.run(self.room.mark_seen([vid], {}))
        self.away.discard(vid)

    @rule()
    def grace_sweep(self) -> None:
        gone, cutoff = self.run(self.room.absent_patients(60))
        ended = set()
        for vid in gone:
            try:
                if self.run(self.room.end(vid, by="system", reason=EndReason.ABSENT, absent_before_ms=cutoff)):
                    ended.add(vid)
            except Conflict:
                pass
        assert ended == self.away
        for vid in ended:
            del self.model[vid]
        self.away.clear()

    @invariant()
    def queue_matches_the_model(self) -> None:
        ids = self.run(self.redis.zrange(keys.queue("c1"), 0, -1))
        assert len(ids) == len(set(ids)), "no duplicates"
        assert ids == self.expected(), "acuity first, then arrival; nobody lost"
        assert not (set(ids) & self.admitted)


def test_waiting_room_state_machine(redis_server: RedisServer) -> None:
    WaitingRoomMachine.server = redis_server
    machine = WaitingRoomMachine.TestCase
    machine.settings = settings(
        max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=list(HealthCheck)
    )
    machine().runTest()
