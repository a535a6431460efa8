"""Who is on duty: one rule (TELEMED_ON_DUTY) for the roster and the wait
estimate, and patients' estimates pushed when the doctors change, not only
when the queue does.

Real nodes, real Redis, real socket.io clients (tests/peer.py).
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from telemed import duty, keys
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token

CHECK_IN = {"reason": "cough", "consent_visit": True, "consent_recording": False}

NURSE = token(Role.NURSE, "c1", sub="n-ana", name="Nurse Ana")
DOCTOR = token(Role.DOCTOR, "c1", sub="d-lee", name="Dr. Lee")


async def checked_in(node: str, connect: Any, name: str) -> tuple[str, str, Any]:
    """A patient waiting in c1: (visit id, their token, their peer)."""
    visit_id, tok = await create_visit(node, NURSE, patient_name=name)
    patient = await connect(node, tok)
    await patient.ok("/queue", "check_in", CHECK_IN)
    return visit_id, tok, patient


async def lee_on_duty(nurse: Any) -> bool:
    staff = (await nurse.ok("/queue", "get_roster"))["staff"]
    return next(m["on_duty"] for m in staff if m["sub"] == "d-lee")


async def test_the_on_duty_setting_rules_the_roster_and_the_estimate_alike(
    start_node: Any, settings: Settings, connect: Any
) -> None:
    # Two nodes on one Redis, told different windows: what each says of the
    # same doctor, on its roster and in its patients' estimates, follows its setting.
    brief = await start_node(settings.with_(presence_interval=0.2, on_duty_window=1.0, route_return=600.0))
    long = await start_node(settings.with_(presence_interval=0.2, on_duty_window=600.0, route_return=600.0))
    _, _, han = await checked_in(brief, connect, "Ms. Han")
    _, ito_token, ito = await checked_in(long, connect, "Mr. Ito")
    for patient in (han, ito):
        assert (await patient.wait_for("/queue", "position"))["wait"] == "no_doctor"

    lee = await connect(long, DOCTOR, namespaces=["/queue"])
    for patient in (han, ito):
        pos = await patient.wait_for("/queue", "position", lambda p: p["wait"] != "no_doctor")
        assert (pos["doctors_on_duty"], pos["doctors_free"]) == (1, 1)  # Ms. Han next, Mr. Ito behind her
    han.clear()
    await lee.close()

    # On the brief node Dr. Lee is off duty once unseen for 1 s: on its roster
    # and for Ms. Han's estimate (pushed to her though the queue did not change).
    pos = await han.wait_for("/queue", "position", timeout=10)
    assert (pos["wait"], pos["doctors_on_duty"], pos["doctors_free"]) == ("no_doctor", 0, 0)
    ana_brief = await connect(brief, NURSE)
    assert await lee_on_duty(ana_brief) is False

    # On the long node he is still on duty, for the roster and the estimate
    # (Mr. Ito reconnects: a new socket is sent its position afresh).
    ana_long = await connect(long, NURSE)
    assert await lee_on_duty(ana_long) is True
    await ito.close()
    ito = await connect(long, ito_token)
    pos = await ito.wait_for("/queue", "position")
    assert (pos["position"], pos["wait"], pos["doctors_on_duty"], pos["doctors_free"]) == (2, "range", 1, 1)


async def test_a_doctor_coming_and_going_updates_the_estimate_without_a_queue_change(
    start_node: Any, settings: Settings, connect: Any
) -> None:
    node = await start_node(settings.with_(presence_interval=0.2, on_duty_window=1.0, route_return=600.0))
    _, _, han = await checked_in(node, connect, "Ms. Han")
    first = await han.wait_for("/queue", "position")
    assert (first["position"], first["wait"], first["doctors_on_duty"]) == (1, "no_doctor", 0)

    lee = await connect(node, DOCTOR, namespaces=["/queue"])
    came = await han.wait_for("/queue", "position", lambda p: p["wait"] != "no_doctor")
    assert (came["position"], came["wait"], came["doctors_on_duty"], came["doctors_free"]) == (1, "shortly", 1, 1)
    assert came["version"] == first["version"]  # the queue did not change

    han.clear()
    await lee.close()
    went = await han.wait_for("/queue", "position", timeout=10)
    assert (went["position"], went["wait"], went["doctors_on_duty"]) == (1, "no_doctor", 0)
    assert went["version"] == first["version"]


async def test_a_busy_doctor_going_off_duty_updates_the_estimate_of_those_waiting(
    start_node: Any, settings: Settings, connect: Any
) -> None:
    # Dr. Lee is in a visit with Ms. Han, Mr. Ito waits for a range; Dr. Lee's
    # connection goes (the visit stays open): Mr. Ito is told there is no estimate.
    node = await start_node(settings.with_(presence_interval=0.2, on_duty_window=1.0, route_return=600.0))
    han_visit, _, _ = await checked_in(node, connect, "Ms. Han")
    _, _, ito = await checked_in(node, connect, "Mr. Ito")
    lee = await connect(node, DOCTOR, namespaces=["/queue"])
    await lee.ok("/queue", "admit", {"visit_id": han_visit})
    waiting = await ito.wait_for("/queue", "position", lambda p: p["position"] == 1 and p["wait"] == "range")
    assert (waiting["doctors_on_duty"], waiting["doctors_free"]) == (1, 0)
    ito.clear()
    await lee.close()
    pos = await ito.wait_for("/queue", "position", timeout=10)
    assert (pos["wait"], pos["doctors_on_duty"], pos["version"]) == ("no_doctor", 0, waiting["version"])


async def test_doctors_at_work_reads_what_the_estimate_counts(redis: aioredis.Redis, settings: Settings) -> None:
    s = settings.with_(on_duty_window=30.0)
    now_ms = int(time.time() * 1000)
    await redis.zadd(keys.doctors_on_duty("c1"), {"d-lee": now_ms, "d-kim": now_ms - 5_000, "d-old": now_ms - 60_000})
    await redis.sadd(keys.doctor_visits("c1", "d-kim"), "v1")
    await redis.sadd(keys.doctor_visits("c1", "d-old"), "v2")  # in a visit, but off duty
    at_work = await duty.doctors_at_work(redis, s, ["c1", "c2", "c1"])
    assert at_work == {
        "c1": duty.DoctorsAtWork(on_duty=frozenset({"d-lee", "d-kim"}), busy=frozenset({"d-kim"})),
        "c2": duty.DoctorsAtWork(on_duty=frozenset(), busy=frozenset()),
    }
    assert at_work["c1"].free == {"d-lee"}
    # A shorter window: d-kim (seen 5 s ago) is off duty too.
    shorter = await duty.doctors_at_work(redis, settings.with_(on_duty_window=2.0), ["c1"])
    assert shorter["c1"].on_duty == {"d-lee"}
    assert await duty.doctors_at_work(redis, s, []) == {}
