"""The chart leg through a real node: browsers offer over /media, a worker on
the same Redis answers, both parties hear that recording started, the doctor
takes a snapshot; refusals come back typed."""

from __future__ import annotations

import asyncio

from media.worker import Worker
from telemed.media_protocol import room_captions, room_media
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.media_harness import Browser


async def visit_in_progress(node: str, connect, consent: bool = True):  # type: ignore[no-untyped-def]
    doctor = await connect(node, token(Role.DOCTOR, sub="d1"), namespaces=["/queue", "/call", "/media"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok, namespaces=["/queue", "/call", "/media"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": consent})
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    return visit_id, patient, doctor


async def offer_leg(peer, visit_id: str, browser: Browser) -> dict:  # type: ignore[no-untyped-def]
    reply = await peer.ok("/media", "leg_offer", {"visit_id": visit_id, "sdp": await browser.offer()})
    answer = await peer.wait_for("/media", "leg_answer", lambda a: a["job"] == reply["job"], timeout=10)
    assert answer["ok"], answer
    await browser.accept(answer["sdp"])
    await browser.wait_connected()
    return answer


async def test_chart_leg_snapshot_and_recording_through_the_node(
    node: str, connect, worker: Worker, settings: Settings
) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    patient_cam, doctor_cam = Browser(size=(640, 480)), Browser()
    try:
        await offer_leg(patient, visit_id, patient_cam)
        await offer_leg(doctor, visit_id, doctor_cam)
        for peer in (patient, doctor):
            for role in ("patient", "doctor"):
                started = await peer.wait_for(
                    "/media", "recording", lambda e, r=role: e["role"] == r and e["state"] == "started", timeout=10
                )
                assert started["visit_id"] == visit_id
        await asyncio.sleep(1.0)
        shot = (await doctor.ok("/media", "snapshot", {"visit_id": visit_id}))["snapshot"]
        assert shot["sharpness"] > 0 and 0 < shot["brightness"] < 255
        assert (settings.recordings_dir / "c1" / visit_id / shot["file"]).is_file()
        refused = await patient.call("/media", "snapshot", {"visit_id": visit_id})
        assert refused["error"]["code"] == "forbidden"
    finally:
        await patient_cam.close()
        await doctor_cam.close()
    stopped = await doctor.wait_for(
        "/media", "recording", lambda e: e["role"] == "patient" and e["state"] == "stopped", timeout=40
    )
    folder = settings.recordings_dir / "c1" / visit_id
    assert (folder / stopped["file"]).stat().st_size > 10_000


async def test_no_leg_without_consent_or_outside_a_visit(node: str, connect, worker: Worker) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect, consent=False)
    browser = Browser()
    try:
        reply = await patient.call("/media", "leg_offer", {"visit_id": visit_id, "sdp": await browser.offer()})
        assert reply["error"]["code"] == "forbidden" and reply["error"]["details"]["reason"] == "no_consent"
        await doctor.ok("/queue", "end", {"visit_id": visit_id})
        late = await doctor.call("/media", "leg_offer", {"visit_id": visit_id, "sdp": "v=0"})
        assert late["error"]["code"] == "conflict"
        none = await doctor.call("/media", "snapshot", {"visit_id": visit_id})
        assert none["error"]["code"] == "conflict"
    finally:
        await browser.close()


async def test_snapshot_without_a_leg_is_not_found(node: str, connect, worker: Worker) -> None:
    visit_id, _, doctor = await visit_in_progress(node, connect)
    reply = await doctor.call("/media", "snapshot", {"visit_id": visit_id})
    assert reply["error"]["code"] == "not_found"


async def test_captions_reach_the_visits_doctor_and_not_the_patient(
    node: str, connect, worker: Worker, redis_server: RedisServer
) -> None:
    """The worker emits captions to ``media:<visit>:captions``: the node puts the
    visit's doctor there (a socket that connected before the admit, through
    ``status``; one that connects after, at once), never the patient or
    another doctor."""
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    await doctor.ok("/media", "status", {"visit_id": visit_id})
    late = await connect(node, token(Role.DOCTOR, sub="d1"), namespaces=["/media"])
    other = await connect(node, token(Role.DOCTOR, sub="d2"), namespaces=["/media"])
    refused = await other.call("/media", "status", {"visit_id": visit_id})
    assert refused["error"]["code"] == "forbidden"
    caption = {"visit_id": visit_id, "role": "patient", "final": True, "text": "목이 아파요", "start": 1.0, "end": 2.0}
    await worker.emit("caption", caption, room_captions(visit_id))
    for peer in (doctor, late):
        assert await peer.wait_for("/media", "caption", timeout=5) == caption
    await worker.emit("recording", {"visit_id": visit_id, "role": "patient", "state": "marker"}, room_media(visit_id))
    await patient.wait_for("/media", "recording", lambda e: e["state"] == "marker", timeout=5)
    # The marker went out after the caption, through the same channel: had the patient
    # been in the caption's room, it would have had the caption by now.
    assert patient.last("/media", "caption") is None
    assert other.last("/media", "caption") is None
