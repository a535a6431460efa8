"""The whole visit over real sockets: create, check in, triage, admit, call, end."""

from __future__ import annotations

import pytest
import socketio

from telemed.tokens import Role
from tests.conftest import ORIGIN, create_visit, token
from tests.peer import Peer, client_id


async def test_full_visit(node: str, connect) -> None:
    nurse = await connect(node, token(Role.NURSE, sub="n1"))
    doctor = await connect(node, token(Role.DOCTOR, sub="d1", name="Dr. Kim"))

    visit_id, patient_token = await create_visit(node, token(Role.NURSE), reason="cough", patient_name="Ana")
    patient = await connect(node, patient_token)
    first = await patient.wait_for("/queue", "visit")
    assert first["state"] == "created"

    reply = await patient.ok("/queue", "check_in", {"reason": "cough for 3 days", "consent_visit": True, "consent_recording": True})
    assert reply["visit"]["state"] == "waiting"
    pos = await patient.wait_for("/queue", "position")
    assert (pos["visit_id"], pos["position"]) == (visit_id, 1)
    assert (pos["wait"], pos["doctors_on_duty"], pos["doctors_free"]) == ("shortly", 1, 1)  # Dr. Kim is free

    # The nurse sees the patient in the queue, chats, and triages.
    q = await nurse.wait_for("/queue", "queue", lambda d: any(v["visit_id"] == visit_id for v in d["queue"]))
    entry = next(v for v in q["queue"] if v["visit_id"] == visit_id)
    assert entry["reason"] == "cough for 3 days" and entry["patient_name"] == "Ana"

    sent = await nurse.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "Hello, any fever?"})
    got = await patient.wait_for("/chat", "message")
    assert got["text"] == "Hello, any fever?" and got["id"] == sent["id"] and got["role"] == "nurse"
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "Yes, 38.5"})
    await nurse.wait_for("/chat", "message", lambda m: m["text"] == "Yes, 38.5")

    t = await nurse.ok("/queue", "triage", {"visit_id": visit_id, "acuity": 2, "note": "febrile, cough"})
    assert t["visit"]["state"] == "in_triage" and t["visit"]["acuity"] == 2
    r = await nurse.ok("/queue", "route", {"visit_id": visit_id, "doctor": "d1"})
    assert r["visit"]["state"] == "ready" and r["visit"]["routed_to"] == "d1"

    # The doctor admits the next patient: this one.
    admitted = await doctor.ok("/queue", "admit", {})
    assert admitted["visit"]["visit_id"] == visit_id and admitted["visit"]["state"] == "in_visit"
    assert isinstance(admitted["ice_servers"], list)
    assert (await patient.wait_for("/queue", "visit", lambda v: v["state"] == "in_visit"))["doctor_name"] == "Dr. Kim"

    # Signaling is relayed between the two parties.
    await doctor.ok("/call", "offer", {"visit_id": visit_id, "sdp": "v=0 offer"})
    offer = await patient.wait_for("/call", "offer")
    assert offer == {"visit_id": visit_id, "from": "doctor", "sdp": "v=0 offer", "restart": False}
    await patient.ok("/call", "answer", {"visit_id": visit_id, "sdp": "v=0 answer"})
    assert (await doctor.wait_for("/call", "answer"))["sdp"] == "v=0 answer"
    cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    await patient.ok("/call", "candidate", {"visit_id": visit_id, "candidate": cand})
    assert (await doctor.wait_for("/call", "candidate"))["candidate"] == cand
    await doctor.ok("/call", "candidate", {"visit_id": visit_id, "candidate": None})
    assert (await patient.wait_for("/call", "candidate"))["candidate"] is None
    await doctor.ok("/call", "offer", {"visit_id": visit_id, "sdp": "v=0 restart", "restart": True})
    assert (await patient.wait_for("/call", "offer", lambda o: o["restart"]))["sdp"] == "v=0 restart"
    await patient.ok("/call", "hangup", {"visit_id": visit_id})
    assert (await doctor.wait_for("/call", "hangup"))["from"] == "patient"

    # The nurse cannot end a visit in progress; the doctor can.
    refused = await nurse.call("/queue", "end", {"visit_id": visit_id})
    assert refused["error"]["code"] == "forbidden"
    ended = await doctor.ok("/queue", "end", {"visit_id": visit_id})
    assert ended["visit"]["state"] == "ended" and ended["visit"]["end_reason"] == "completed"
    assert (await patient.wait_for("/queue", "visit", lambda v: v["state"] == "ended"))["end_reason"] == "completed"

    # The patient's link no longer works: events are refused, and so is a new connection.
    late = await patient.call("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "still there?"})
    assert late["error"]["code"] == "unauthorized"
    again = Peer(node, patient_token, origin=ORIGIN, namespaces=["/queue"])
    refusals: list[dict] = []
    again.sio.on("connect_error", refusals.append, namespace="/queue")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect()
    assert refusals[0]["data"] == {"code": "unauthorized", "message": "this visit has ended"}
