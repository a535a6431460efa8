"""The staff roster, routing by name, who is with whom, patients online.

Real node, real Redis, real socket.io clients (tests/peer.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from telemed import keys
from telemed.roster import UNKNOWN_DOCTOR
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token

CHECK_IN = {"reason": "cough", "consent_visit": True, "consent_recording": False}


def nurse(sub: str = "n-ana", name: str = "Nurse Ana", clinic: str = "c1") -> str:
    return token(Role.NURSE, clinic, sub=sub, name=name)


def doctor(sub: str = "d-lee", name: str = "Dr. Lee", clinic: str = "c1") -> str:
    return token(Role.DOCTOR, clinic, sub=sub, name=name)


async def waiting_patient(node: str, connect: Any, name: str = "Ms. Han") -> tuple[str, Any]:
    visit_id, tok = await create_visit(node, nurse(), patient_name=name)
    patient = await connect(node, tok)
    await patient.ok("/queue", "check_in", CHECK_IN)
    return visit_id, patient


def row(snapshot: dict[str, Any], visit_id: str) -> dict[str, Any] | None:
    return next((r for r in snapshot["queue"] if r["visit_id"] == visit_id), None)


async def test_the_roster_is_filled_from_sign_ins(node: str, connect: Any) -> None:
    ana = await connect(node, nurse())
    await connect(node, doctor(), namespaces=["/queue"])
    await connect(node, doctor("d-kim", "Dr. Kim", clinic="c2"), namespaces=["/queue"])
    staff = (await ana.ok("/queue", "get_roster"))["staff"]
    assert [(m["sub"], m["name"], m["role"], m["on_duty"], m["busy"]) for m in staff] == [
        ("d-lee", "Dr. Lee", "doctor", True, False),  # doctors first
        ("n-ana", "Nurse Ana", "nurse", True, False),
    ]  # never another clinic's staff
    snapshot = await ana.ok("/queue", "get_queue")
    assert {m["name"] for m in snapshot["staff"]} == {"Dr. Lee", "Nurse Ana"}


async def test_a_doctor_in_a_visit_is_busy(node: str, connect: Any) -> None:
    visit_id, _ = await waiting_patient(node, connect)
    lee = await connect(node, doctor(), namespaces=["/queue"])
    await lee.ok("/queue", "admit", {"visit_id": visit_id})
    staff = (await lee.ok("/queue", "get_roster"))["staff"]
    assert [(m["name"], m["busy"]) for m in staff if m["role"] == "doctor"] == [("Dr. Lee", True)]


async def test_a_route_to_a_doctor_the_clinic_does_not_know_is_refused_readably(
    node: str, connect: Any, redis: aioredis.Redis
) -> None:
    visit_id, _ = await waiting_patient(node, connect)
    ana = await connect(node, nurse())
    await connect(node, doctor("d-kim", "Dr. Kim", clinic="c2"), namespaces=["/queue"])
    # A typo, a nurse, and a doctor of another clinic: none is this clinic's doctor.
    for target in ("d-leee", "n-ana", "d-kim"):
        reply = await ana.call("/queue", "route", {"visit_id": visit_id, "doctor": target})
        assert reply == {"ok": False, "error": {"code": "not_found", "message": UNKNOWN_DOCTOR}}
    visit = await redis.hgetall(keys.visit(visit_id))
    assert visit["state"] == "waiting" and not visit.get("routed_to")
    assert not await redis.hexists(keys.ROUTED, visit_id)


async def test_a_route_names_the_doctor(node: str, connect: Any) -> None:
    visit_id, _ = await waiting_patient(node, connect)
    await connect(node, doctor(), namespaces=["/queue"])
    ana = await connect(node, nurse())
    reply = await ana.ok("/queue", "route", {"visit_id": visit_id, "doctor": "d-lee"})
    assert reply["doctor"]["name"] == "Dr. Lee" and reply["doctor"]["on_duty"] is True
    assert "notice" not in reply
    snapshot = await ana.wait_for("/queue", "queue", lambda s: (row(s, visit_id) or {}).get("routed_to") == "d-lee")
    assert row(snapshot, visit_id)["routed_to_name"] == "Dr. Lee"  # type: ignore[index]


async def test_a_route_to_an_off_duty_doctor_is_allowed_and_the_nurse_is_told(
    start_node: Any, settings: Settings, connect: Any
) -> None:
    node = await start_node(settings.with_(presence_interval=0.1, on_duty_window=0.3, route_return=600.0))
    visit_id, _ = await waiting_patient(node, connect)
    lee = await connect(node, doctor(), namespaces=["/queue"])
    await lee.close()
    ana = await connect(node, nurse())
    # Off duty once not seen for the window: the roster says so.
    async def lee_off_duty() -> bool:
        staff = (await ana.ok("/queue", "get_roster"))["staff"]
        return any(m["sub"] == "d-lee" and not m["on_duty"] for m in staff)

    while not await lee_off_duty():
        await asyncio.sleep(0.05)
    reply = await ana.ok("/queue", "route", {"visit_id": visit_id, "doctor": "d-lee"})
    assert reply["visit"]["routed_to"] == "d-lee"
    assert reply["notice"].startswith("Dr. Lee is off duty right now.")
    assert "10 minutes" in reply["notice"]


async def test_a_patient_whose_doctor_went_off_duty_returns_to_the_shared_queue(
    start_node: Any, settings: Settings, connect: Any, redis: aioredis.Redis
) -> None:
    node = await start_node(settings.with_(presence_interval=0.1, on_duty_window=0.3, route_return=0.5))
    han, _ = await waiting_patient(node, connect, "Ms. Han")
    ito, _ = await waiting_patient(node, connect, "Mr. Ito")
    lee = await connect(node, doctor(), namespaces=["/queue"])
    await connect(node, doctor("d-kim", "Dr. Kim"), namespaces=["/queue"])  # stays
    ana = await connect(node, nurse())
    await ana.ok("/queue", "route", {"visit_id": ito, "doctor": "d-kim"})
    await ana.ok("/queue", "route", {"visit_id": han, "doctor": "d-lee"})
    await lee.close()
    notice = await ana.wait_for("/queue", "queue_notice", timeout=10)
    assert notice["kind"] == "returned" and notice["visit_id"] == han
    assert notice["message"] == "Ms. Han went back to the shared queue: Dr. Lee went off duty."
    visit = await ana.wait_for("/queue", "visit", lambda v: v["visit_id"] == han and v["routed_to"] is None)
    assert visit["state"] == "ready"
    history = (await ana.ok("/queue", "get_visit", {"visit_id": han}))["history"]
    assert history[-1]["action"] == "route" and history[-1]["by"] == "system"
    # The sweep that returned Ms. Han looked at Mr. Ito too: his doctor is here.
    assert (await redis.hgetall(keys.visit(ito)))["routed_to"] == "d-kim"
    assert await redis.hgetall(keys.ROUTED) == {ito: "c1"}
    assert [n["visit_id"] for n in ana.events[("/queue", "queue_notice")]] == [han]
    # Back in the shared queue: any doctor may admit her next.
    park = await connect(node, doctor("d-park", "Dr. Park"), namespaces=["/queue"])
    assert (await park.ok("/queue", "admit", {}))["visit"]["visit_id"] == han


async def test_a_nurse_with_a_patient_open_is_shown_to_other_nurses(node: str, connect: Any) -> None:
    visit_id, _ = await waiting_patient(node, connect)
    ana = await connect(node, nurse())
    bo = await connect(node, nurse("n-bo", "Nurse Bo"))
    assert (await ana.ok("/queue", "claim", {"visit_id": visit_id}))["others"] == []
    await bo.wait_for("/queue", "queue", lambda s: [c["name"] for c in row(s, visit_id)["claimed_by"]] == ["Nurse Ana"])  # type: ignore[index]
    # A second nurse may still open the patient, and is told who else has them.
    second = await bo.ok("/queue", "claim", {"visit_id": visit_id})
    assert second["others"] == [{"sub": "n-ana", "name": "Nurse Ana"}]
    await ana.ok("/queue", "release", {"visit_id": visit_id})
    await bo.wait_for("/queue", "queue", lambda s: [c["name"] for c in row(s, visit_id)["claimed_by"]] == ["Nurse Bo"])  # type: ignore[index]
    # Nurse Bo goes away: her claim goes with her.
    ana.clear()
    await bo.close()
    await ana.wait_for("/queue", "queue", lambda s: row(s, visit_id)["claimed_by"] == [])  # type: ignore[index]


async def test_a_doctor_cannot_claim(node: str, connect: Any) -> None:
    visit_id, _ = await waiting_patient(node, connect)
    lee = await connect(node, doctor(), namespaces=["/queue"])
    reply = await lee.call("/queue", "claim", {"visit_id": visit_id})
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden"


async def test_the_queue_shows_whether_a_patient_is_online(node: str, connect: Any) -> None:
    visit_id, patient = await waiting_patient(node, connect)
    ana = await connect(node, nurse())
    seen = await ana.wait_for("/queue", "queue", lambda s: row(s, visit_id) is not None)
    assert row(seen, visit_id)["online"] is True
    ana.clear()
    await patient.close()
    # Waits for the first snapshot that still lists the patient with a changed
    # mark: a patient still shown online after leaving times this out.
    after = await ana.wait_for("/queue", "queue", lambda s: (row(s, visit_id) or {}).get("online") is not True)
    assert row(after, visit_id)["online"] is False


async def test_an_admitted_visit_is_no_longer_watched_for_return(
    start_node: Any, settings: Settings, connect: Any, redis: aioredis.Redis
) -> None:
    node = await start_node(settings.with_(presence_interval=0.1, on_duty_window=0.3, route_return=600.0))
    visit_id, _ = await waiting_patient(node, connect)
    lee = await connect(node, doctor(), namespaces=["/queue"])
    ana = await connect(node, nurse())
    await ana.ok("/queue", "route", {"visit_id": visit_id, "doctor": "d-lee"})
    assert await redis.hgetall(keys.ROUTED) == {visit_id: "c1"}
    await lee.ok("/queue", "admit", {"visit_id": visit_id})
    # The sweep forgets it while Dr. Lee is still on duty (he is in the visit).
    while await redis.hexists(keys.ROUTED, visit_id):
        await asyncio.sleep(0.05)
    assert (await redis.hgetall(keys.visit(visit_id)))["state"] == "in_visit"
