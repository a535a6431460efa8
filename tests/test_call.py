"""Call signaling details: peers announced on (re)connect, "ready", call ids."""

from __future__ import annotations

from telemed.tokens import Role
from tests.conftest import create_visit, token

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}


async def in_visit(node: str, connect):
    doctor = await connect(node, token(Role.DOCTOR, sub="d1", name="Dr. One"))
    visit_id, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok)
    await patient.ok("/queue", "check_in", CHECK_IN)
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    return visit_id, ptok, patient, doctor


async def test_a_reloaded_patient_page_is_announced_to_the_doctor(node: str, connect) -> None:
    visit_id, ptok, patient, doctor = await in_visit(node, connect)
    await patient.close()
    left = await doctor.wait_for("/call", "peer", lambda e: e["state"] == "left")
    assert left == {"visit_id": visit_id, "from": "patient", "state": "left"}
    back = await connect(node, ptok)
    joined = await doctor.wait_for("/call", "peer", lambda e: e["state"] == "joined")
    assert joined["visit_id"] == visit_id
    # and the doctor reconnecting is announced to the patient
    await doctor.close()
    doctor2 = await connect(node, token(Role.DOCTOR, sub="d1"))
    assert (await back.wait_for("/call", "peer", lambda e: e["state"] == "joined"))["from"] == "doctor"
    # the doctor's visit comes back too
    assert (await doctor2.wait_for("/queue", "visit"))["visit_id"] == visit_id


async def test_ready_and_call_ids_are_relayed(node: str, connect) -> None:
    visit_id, _, patient, doctor = await in_visit(node, connect)
    await patient.ok("/call", "ready", {"visit_id": visit_id})
    assert await doctor.wait_for("/call", "ready") == {"visit_id": visit_id, "from": "patient"}
    await doctor.ok("/call", "offer", {"visit_id": visit_id, "sdp": "o", "call_id": "call-2"})
    assert (await patient.wait_for("/call", "offer"))["call_id"] == "call-2"
    await patient.ok("/call", "answer", {"visit_id": visit_id, "sdp": "a", "call_id": "call-2"})
    assert (await doctor.wait_for("/call", "answer"))["call_id"] == "call-2"
    await patient.ok("/call", "candidate", {"visit_id": visit_id, "candidate": None, "call_id": "call-2"})
    assert (await doctor.wait_for("/call", "candidate"))["call_id"] == "call-2"


async def test_staff_see_visits_in_progress_and_doctors_on_duty(node: str, connect) -> None:
    visit_id, _, _, _ = await in_visit(node, connect)
    nurse = await connect(node, token(Role.NURSE))
    snap = await nurse.ok("/queue", "get_queue")
    assert [v["visit_id"] for v in snap["in_visit"]] == [visit_id]
    assert snap["in_visit"][0]["doctor_name"] == "Dr. One"
    assert snap["doctors"] == [{"sub": "d1", "name": "Dr. One"}]
    assert snap["queue"] == []
