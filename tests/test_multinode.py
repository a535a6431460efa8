"""Several nodes on one Redis: the queue, the chat and call signaling cross nodes."""

from __future__ import annotations

from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import client_id


async def test_patient_nurse_and_doctor_on_three_nodes(start_node, connect) -> None:
    a, b, c = [await start_node() for _ in range(3)]
    nurse = await connect(b, token(Role.NURSE))
    doctor = await connect(c, token(Role.DOCTOR, sub="d1"))
    visit_id, patient_token = await create_visit(a, token(Role.NURSE))
    patient = await connect(a, patient_token)

    await patient.ok("/queue", "check_in", {"reason": "dizzy", "consent_visit": True, "consent_recording": False})
    await nurse.wait_for("/queue", "queue", lambda q: [v["visit_id"] for v in q["queue"]] == [visit_id])
    await doctor.wait_for("/queue", "queue", lambda q: [v["visit_id"] for v in q["queue"]] == [visit_id])
    assert (await patient.wait_for("/queue", "position"))["position"] == 1

    await nurse.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "from node b"})
    assert (await patient.wait_for("/chat", "message"))["text"] == "from node b"
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "from node a"})
    await nurse.wait_for("/chat", "message", lambda m: m["text"] == "from node a")
    await doctor.wait_for("/chat", "message", lambda m: m["text"] == "from node a")

    await nurse.ok("/queue", "triage", {"visit_id": visit_id, "acuity": 2})
    await doctor.wait_for("/queue", "queue", lambda q: q["queue"] and q["queue"][0]["acuity"] == 2)
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    await patient.wait_for("/queue", "visit", lambda v: v["state"] == "in_visit")
    await nurse.wait_for("/queue", "visit", lambda v: v["state"] == "in_visit")

    await doctor.ok("/call", "offer", {"visit_id": visit_id, "sdp": "offer-from-c"})
    assert (await patient.wait_for("/call", "offer"))["sdp"] == "offer-from-c"
    await patient.ok("/call", "answer", {"visit_id": visit_id, "sdp": "answer-from-a"})
    assert (await doctor.wait_for("/call", "answer"))["sdp"] == "answer-from-a"
