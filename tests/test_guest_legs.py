"""Guests' chart legs (issue 13): an admitted guest who agreed to be recorded
sends their own leg over /media, recorded and transcribed under their name and
kind; one who declined is refused and listed as not recorded; removal closes
the leg; visit.json and FHIR say whose files are whose.

Real redis-server, node, media worker (with the Korean Vosk model) and an
aiortc peer as the interpreter's browser, speaking Korean made by espeak-ng.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiortc.contrib.media import MediaPlayer

from media.worker import Worker
from telemed.chart import Transcript, visit_folder
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import token
from tests.media_harness import Browser, Stamped, speech_wav
from tests.test_guests import Connect, Visit, assert_refused_by_namespace, link_token
from tests.test_stt import MODEL

INTERPRETER = {"kind": "interpreter", "name": "Min-jun Park", "language": "ko"}
CAREGIVER = {"kind": "caregiver", "name": "Maria Lopez"}
DOCTOR = token(Role.DOCTOR, sub="d1", name="Dr Ana Lee")


async def chart_of(settings: Settings, visit: Visit) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """visit.json and fhir.json once the node has written the chart (after the end)."""
    folder = visit_folder(settings.recordings_dir, "c1", visit.id)
    for _ in range(600):
        if (folder / "fhir.json").exists():
            break
        await visit.doctor.sio.sleep(0.05)
    return json.loads((folder / "visit.json").read_text()), json.loads((folder / "fhir.json").read_text()), folder


async def test_an_interpreters_leg_is_recorded_and_transcribed_under_their_name_until_removed(
    node: str, connect: Connect, start_worker: Any, settings: Settings, tmp_path: Path
) -> None:
    worker: Worker = await start_worker(stt_model=MODEL, heartbeat=1.0)
    visit = await Visit(node, connect).start()
    _, gid, tok = await visit.guest(INTERPRETER)
    doctor = await connect(node, DOCTOR, namespaces=["/media"])
    interpreter = await connect(node, tok, namespaces=["/media"])
    wav = tmp_path / "interpreter.wav"
    speech_wav(wav, [0.5, "어제부터 머리가 아파요", 2.0])
    track = Stamped(MediaPlayer(str(wav)).audio)
    browser = Browser(tracks=(track, None))
    try:
        reply = await interpreter.ok("/media", "leg_offer", {"visit_id": visit.id, "sdp": await browser.offer()})
        answer = await interpreter.wait_for("/media", "leg_answer", lambda a: a["job"] == reply["job"], timeout=10)
        assert answer["ok"], answer
        await browser.accept(answer["sdp"])
        await browser.wait_connected()
        started = await doctor.wait_for("/media", "recording", lambda e: e.get("role") == gid and e["state"] == "started",
                                        timeout=15)
        assert (started["kind"], started["name"], started["file"]) == ("interpreter", "Min-jun Park", f"recording-{gid}-1.webm")
        caption = await doctor.wait_for("/media", "caption", lambda c: c.get("role") == gid and c["final"] and c["text"],
                                        timeout=30)
        assert (caption["kind"], caption["name"], caption["language"]) == ("interpreter", "Min-jun Park", "ko")
        status = await interpreter.ok("/media", "status", {"visit_id": visit.id})
        assert status["recording"][gid] is True and status["not_recorded"] == []
        await visit.act(gid, "remove")
        stopped = await doctor.wait_for("/media", "recording", lambda e: e.get("role") == gid and e["state"] == "stopped",
                                        timeout=15)
        assert stopped["reason"] == "guest removed"
    finally:
        await browser.close()
    # The closed leg's last words are in before the sentinel: the patient's consent keeps the visit recordable.
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    record, bundle, folder = await chart_of(settings, visit)
    lines = [line for line in Transcript(folder).read() if line.get("party") == gid]
    assert lines and all((line["role"], line["kind"], line["name"], line["language"]) ==
                         ("guest", "interpreter", "Min-jun Park", "ko") for line in lines)
    assert "<v Min-jun Park (Interpreter)>" in (folder / "transcript.vtt").read_text()
    index = json.loads((folder / "recordings.json").read_text())
    mine = [r for r in index["recordings"] if r.get("party") == gid]
    assert [(r["file"], r["kind"], r["name"]) for r in mine] == [(f"recording-{gid}-1.webm", "interpreter", "Min-jun Park")]
    people = {p.get("party"): p for p in record["participants"]}
    assert people[gid]["recordings"] == [f"recording-{gid}-1.webm"] and people[gid]["recorded"] is True
    assert people[gid]["state"] == "removed" and people[gid]["time_out"] is not None
    media = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"
             and e["resource"]["content"]["url"].endswith(f"recording-{gid}-1.webm")]
    assert media and media[0]["subject"]["display"] == "Min-jun Park"
    assert worker.legs == {}


async def declined_caregiver(visit: Visit, node: str, connect: Connect) -> tuple[Any, str]:
    """A caregiver who agreed to the visit but not to recording, let in: (their /media peer, guest id)."""
    invited = await visit.invite(CAREGIVER)
    gid, tok = invited["guest"]["guest_id"], link_token(invited["guest_link"])
    lobby = await connect(node, tok, namespaces=["/guest"])
    await lobby.ok("/guest", "join", {"visit_id": visit.id, "consent_visit": True, "consent_recording": False})
    # In the lobby /media is refused, as /chat is.
    await assert_refused_by_namespace(node, {"token": tok}, ["/media"], "forbidden")
    await visit.act(gid, "admit")
    return await connect(node, tok, namespaces=["/media"]), gid


async def test_a_caregiver_who_declined_is_refused_and_listed_as_not_recorded(
    node: str, connect: Connect, worker: Worker, settings: Settings
) -> None:
    visit = await Visit(node, connect).start()
    caregiver, gid = await declined_caregiver(visit, node, connect)
    browser = Browser()
    try:
        refused = await caregiver.call("/media", "leg_offer", {"visit_id": visit.id, "sdp": await browser.offer()})
    finally:
        await browser.close()
    assert refused["error"]["code"] == "forbidden" and refused["error"]["details"]["reason"] == "no_consent"
    assert "not to be recorded" in refused["error"]["message"]
    status = await caregiver.ok("/media", "status", {"visit_id": visit.id})
    assert status["not_recorded"] == [{"party": gid, "kind": "caregiver", "name": "Maria Lopez"}]
    assert status["recording"] == {"patient": False, "doctor": False, gid: False}
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    record, bundle, _ = await chart_of(settings, visit)
    people = {p.get("party"): p for p in record["participants"]}
    maria = people[gid]
    assert (maria["recorded"], maria["recordings"], maria["consent"]["recording"]) == (False, [], False)
    assert maria["time_in"] is not None and maria["time_out"] == record["times"]["ended"]
    assert people["patient"]["recorded"] is True and people["doctor"]["recorded"] is True
    consents = sorted((c.get("performer", [{}])[0].get("display", "patient"), c["scope"]["coding"][0]["code"], c["status"])
                      for c in (e["resource"] for e in bundle["entry"]) if c["resourceType"] == "Consent")
    assert ("Maria Lopez", "patient-privacy", "rejected") in consents and ("Maria Lopez", "treatment", "active") in consents
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    periods = {p["individual"].get("display"): p.get("period", {}) for p in encounter["participant"]}
    assert "start" in periods["Maria Lopez"] and "end" in periods["Maria Lopez"]


async def test_the_others_are_told_when_someone_not_recorded_comes_in(node: str, connect: Connect) -> None:
    """Admitting a guest who declined pushes ``recording`` {not_recorded} to the visit's /media sockets."""
    visit = await Visit(node, connect).start()
    doctor = await connect(node, DOCTOR, namespaces=["/media"])
    _, gid = await declined_caregiver(visit, node, connect)
    told = await doctor.wait_for("/media", "recording", lambda e: e.get("not_recorded"), timeout=5)
    assert told == {"visit_id": visit.id, "not_recorded": [{"party": gid, "kind": "caregiver", "name": "Maria Lopez"}]}
