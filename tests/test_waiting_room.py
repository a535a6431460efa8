"""The waiting room's rules, on a real Redis: order, atomic admits, the state machine."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from telemed import keys
from telemed.estimate import NO_DOCTOR, SHORTLY, WaitKind
from telemed.exceptions import BadRequest, Conflict, NotFound
from telemed.settings import Settings
from telemed.visits import TRANSITIONS, Action, EndReason, State
from telemed.waiting_room import WaitingRoom


async def checked_in(room: WaitingRoom, clinic: str = "c1", n: int = 1) -> list[str]:
    ids = []
    for i in range(n):
        v = await room.create(clinic)
        await room.check_in(v.id, patient_sub=f"p{i}", patient_name=f"P{i}", reason="", consent_recording=False)
        ids.append(v.id)
    return ids


async def order(room: WaitingRoom, clinic: str = "c1") -> list[str]:
    return [v.id for v in await room.queue(clinic)]


async def test_acuity_beats_arrival_and_equal_acuity_keeps_arrival(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    a, b, c, d = await checked_in(room, n=4)
    assert await order(room) == [a, b, c, d]
    await room.triage(c, by="n", acuity=1)
    await room.triage(d, by="n", acuity=5)
    await room.triage(a, by="n", acuity=3)
    await room.triage(b, by="n", acuity=1)
    # ESI 1 first, in arrival order (b came before c), then 3 (a), then 5 (d).
    assert await order(room) == [b, c, a, d]


async def test_reprioritising_keeps_arrival_order_within_a_level(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    a, b, c = await checked_in(room, n=3)
    await room.triage(c, by="n", acuity=2)
    await room.triage(a, by="n", acuity=2)
    await room.triage(c, by="n", acuity=3)
    await room.triage(c, by="n", acuity=2)
    assert await order(room) == [a, c, b]


async def test_concurrent_admits_never_share_a_patient(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    for _round in range(20):
        ids = await checked_in(room, n=3)
        results = await asyncio.gather(
            *(room.admit("c1", doctor=f"d{i}", doctor_name=f"D{i}") for i in range(5)), return_exceptions=True
        )
        admitted = [r.visit_id for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert sorted(admitted) == sorted(ids), "every patient admitted exactly once"
        assert len(refused) == 2 and all(isinstance(e, NotFound) for e in refused)
        assert await order(room) == []


async def test_two_doctors_choosing_the_same_patient(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    for _round in range(20):
        (vid,) = await checked_in(room)
        results = await asyncio.gather(
            room.admit("c1", doctor="d1", doctor_name="D1", visit_id=vid),
            room.admit("c1", doctor="d2", doctor_name="D2", visit_id=vid),
            return_exceptions=True,
        )
        wins = [r for r in results if not isinstance(r, BaseException)]
        assert len(wins) == 1
        assert isinstance([r for r in results if isinstance(r, BaseException)][0], Conflict)
        visit = await room.get(vid)
        assert visit.state is State.IN_VISIT and visit.doctor in {"d1", "d2"}
        assert len(await room.doctor_visits("c1", "d1")) + len(await room.doctor_visits("c1", "d2")) == _round + 1


async def test_admit_next_honours_routing(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    a, b = await checked_in(room, n=2)
    await room.route(a, by="n", doctor="d2")
    first = await room.admit("c1", doctor="d1", doctor_name="D1")
    assert first.visit_id == b
    with pytest.raises(NotFound):
        await room.admit("c1", doctor="d1", doctor_name="D1")
    second = await room.admit("c1", doctor="d2", doctor_name="D2")
    assert second.visit_id == a


async def test_illegal_transitions_are_refused_and_change_nothing(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    created = await room.create("c1")
    with pytest.raises(Conflict):
        await room.triage(created.id, by="n", acuity=2)
    with pytest.raises(Conflict):
        await room.admit("c1", doctor="d", doctor_name="D", visit_id=created.id)
    (vid,) = await checked_in(room)
    with pytest.raises(Conflict):
        await room.check_in(vid, patient_sub="p", patient_name="P", reason="", consent_recording=False)
    await room.admit("c1", doctor="d", doctor_name="D", visit_id=vid)
    for attempt in (
        room.triage(vid, by="n", acuity=1),
        room.route(vid, by="n", doctor=None),
        room.end(vid, by="p", reason=EndReason.LEFT),
    ):
        with pytest.raises(Conflict):
            await attempt
    await room.end(vid, by="d", reason=EndReason.COMPLETED)
    before = await room.get(vid)
    for attempt in (room.end(vid, by="d", reason=EndReason.COMPLETED), room.triage(vid, by="n", note="x")):
        with pytest.raises(Conflict):
            await attempt
    assert await room.get(vid) == before
    assert [h["to"] for h in await room.history(vid)] == ["waiting", "in_visit", "ended"]


def test_transition_table_never_goes_back() -> None:
    rank = {s: i for i, s in enumerate(State)}
    for action, rows in TRANSITIONS.items():
        for src, dst in rows.items():
            assert rank[dst] >= rank[src], (action, src, dst)
    assert all(State.ENDED not in rows for rows in TRANSITIONS.values())
    assert TRANSITIONS[Action.END].keys() == set(State) - {State.ENDED}


async def test_triage_needs_something_and_a_valid_level(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    (vid,) = await checked_in(room)
    with pytest.raises(BadRequest):
        await room.triage(vid, by="n")
    with pytest.raises(BadRequest):
        await room.triage(vid, by="n", acuity=6)
    await room.triage(vid, by="n", note="only a note")
    v = await room.get(vid)
    assert v.state is State.IN_TRIAGE and v.acuity is None and v.triage_note == "only a note"


async def test_positions_of_the_visits_asked_for(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings.with_(default_visit_minutes=10.0))
    a, b, c = await checked_in(room, n=3)
    gone = (await room.create("c1")).id
    first = await room.positions("c1", [c, a, gone])
    assert [(p.visit_id, p.position) for p in first.places] == [(c, 3), (a, 1)]
    assert (first.length, first.doctors, first.free) == (3, 0, 0)
    assert all(p.wait == NO_DOCTOR for p in first.places)  # nobody on duty: no estimate
    await room.triage(c, by="n", acuity=1)
    moved = await room.positions("c1", [a, b, c])
    assert {p.visit_id: p.position for p in moved.places} == {c: 1, a: 2, b: 3}
    assert moved.version > first.version


async def test_wait_estimate_reads_doctors_who_is_busy_visit_lengths_and_levels(
    redis: aioredis.Redis, settings: Settings
) -> None:
    room = WaitingRoom(redis, settings.with_(default_visit_minutes=10.0))
    await room.mark_seen([], {"c1": {"d1", "d2"}})
    (done,) = await checked_in(room)
    await room.admit("c1", doctor="d1", doctor_name="D1")
    # One visit of 1 minute: too few to replace the 10-minute setting.
    await redis.hset(keys.visit(done), "admitted_at", repr(time.time() - 60))
    await room.end(done, by="d1", reason=EndReason.COMPLETED)
    assert [round(d) for d in await room.durations("c1")] == [60]

    a, b = await checked_in(room, n=2)
    both_free = await room.positions("c1", [a, b])
    assert (both_free.doctors, both_free.free) == (2, 2)
    assert [p.wait.kind for p in both_free.places] == [WaitKind.SHORTLY, WaitKind.SHORTLY]

    await room.admit("c1", doctor="d1", doctor_name="D1")  # a is with d1
    c, d = await checked_in(room, n=2)
    one_free = await room.positions("c1", [b, c, d])
    assert (one_free.doctors, one_free.free) == (2, 1)
    wait = {p.visit_id: p.wait for p in one_free.places}
    assert wait[b] == SHORTLY
    assert wait[c].kind is WaitKind.RANGE and 480 <= wait[c].expected_s <= 840  # d1's visit: about the setting
    assert wait[d].expected_s > wait[c].expected_s

    # Triaged to level 5, d is given more room upwards (more urgent patients may come first).
    await room.triage(d, by="n", acuity=5)
    as_level_5 = {p.visit_id: p.wait for p in (await room.positions("c1", [d])).places}[d]
    assert as_level_5.high_s > wait[d].high_s + 600

    # A doctor not seen for 30 s is off duty: nobody is free any more.
    await redis.zadd(keys.doctors_on_duty("c1"), {"d2": int((time.time() - 60) * 1000)})
    d2_gone = await room.positions("c1", [b])
    assert (d2_gone.doctors, d2_gone.free) == (1, 0)
    assert d2_gone.places[0].wait.kind is WaitKind.RANGE
