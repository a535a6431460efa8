"""The chart as a FHIR R4 Bundle: validity, references, mapping, determinism, bad input."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from telemed.chart.fhir import (
    ENCOUNTER_STATUS,
    ESI_PRIORITY,
    SHA256_EXTENSION,
    BundleError,
    FileInfo,
    TranscriptRef,
    build_bundle,
    unresolved_references,
)
from telemed.visits import State

BASE = "https://clinic.example"
T0 = 1767000000.0


def full_visit() -> dict[str, Any]:
    return {
        "format": 1,
        "id": "v-abc",
        "clinic": "north",
        "state": "ended",
        "end_reason": "completed",
        "reason": "sore throat since yesterday",
        "language": "ko",
        "acuity": 3,
        "triage": {"note": "fever 38.2, no dyspnoea", "by": "nurse-7", "at": T0 + 100.5},
        "consent": {"visit": True, "recording": True, "version": "2026-01", "language": "ko",
                    "sha256": hashlib.sha256(b"words").hexdigest(), "at": T0 + 10},
        "participants": [
            {"role": "patient", "sub": "p-1a2b", "name": "Min-jun Kim"},
            {"role": "nurse", "sub": "nurse-7", "name": "Nurse Park"},
            {"role": "doctor", "sub": "dr-seo", "name": "Dr. Seo"},
        ],
        "times": {"created": T0, "checked_in": T0 + 10, "admitted": T0 + 200, "ended": T0 + 800},
        "history": [
            {"at": T0 + 10, "from": "created", "to": "waiting", "action": "check_in", "by": "p-1a2b"},
            {"at": T0 + 100.5, "from": "waiting", "to": "in_triage", "action": "triage", "by": "nurse-7"},
            {"at": T0 + 150, "from": "in_triage", "to": "ready", "action": "route", "by": "nurse-7"},
            {"at": T0 + 200, "from": "ready", "to": "in_visit", "action": "admit", "by": "dr-seo"},
            {"at": T0 + 800, "from": "in_visit", "to": "ended", "action": "end", "by": "dr-seo"},
        ],
    }


def full_chat() -> list[dict[str, Any]]:
    lines = [
        ("nurse", "nurse-7", "Nurse Park", "How long have you had the fever?"),
        ("patient", "p-1a2b", "Min-jun Kim", "Since yesterday evening."),
        ("nurse", "nurse-7", "Nurse Park", "The doctor will see you shortly."),
    ]
    return [
        {"id": f"{int((T0 + 105 + i) * 1000)}-0", "client_id": f"c-{i}", "at": T0 + 105 + i,
         "role": role, "sub": sub, "name": name, "text": text}
        for i, (role, sub, name, text) in enumerate(lines)
    ]  # fmt: skip


def full_recordings() -> dict[str, Any]:
    return {
        "recordings": [
            {"file": "recording-patient-1.webm", "role": "patient", "n": 1, "started_at": T0 + 205,
             "ended_at": T0 + 400, "duration": 195.0, "state": "interrupted", "gap_before": None},
            {"file": "recording-patient-2.webm", "role": "patient", "n": 2, "started_at": T0 + 404.5,
             "ended_at": T0 + 790, "duration": 385.5, "state": "complete", "gap_before": 4.5},
        ],
        "snapshots": [
            {"id": "s1", "file": "snapshots/s1.jpg", "role": "patient", "taken_at": T0 + 300,
             "width": 640, "height": 480, "sharpness": 150.2, "brightness": 120.0},
        ],
    }  # fmt: skip


def transcript_lines() -> list[dict[str, Any]]:
    return [
        {"role": "patient", "start": 12.3, "end": 14.1, "text": "목이 아파요", "words": [], "at": T0 + 212.3,
         "recording": "recording-patient-1.webm"},
        {"role": "doctor", "start": 220.0, "end": 223.5, "text": "입을 벌려 보세요", "words": [], "at": T0 + 420.0,
         "recording": "recording-doctor-1.webm"},
    ]  # fmt: skip


def chart_files() -> dict[str, FileInfo]:
    names = {
        "recording-patient-1.webm": "video/webm",
        "recording-patient-2.webm": "video/webm",
        "snapshots/s1.jpg": "image/jpeg",
        "transcript.jsonl": "application/x-ndjson",
        "transcript.vtt": "text/vtt",
    }
    return {name: FileInfo.of(f"bytes of {name}".encode(), ctype) for name, ctype in names.items()}


def build_full(**changes: Any) -> dict[str, Any]:
    visit = full_visit()
    visit.update(changes)
    return build_bundle(
        visit,
        full_chat(),
        full_recordings(),
        TranscriptRef.from_lines(transcript_lines(), language="ko"),
        chart_files(),
        base_url=BASE,
    )


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def full_url_of(bundle: dict[str, Any], kind: str) -> str:
    (url,) = [e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]
    return str(url)


def test_full_visit_is_a_valid_bundle_with_every_resource() -> None:
    bundle = build_full()

    again = Bundle.model_validate_json(json.dumps(bundle))
    assert json.loads(again.model_dump_json()) == bundle
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert Counter(e["resource"]["resourceType"] for e in bundle["entry"]) == {
        "Encounter": 1,
        "Patient": 1,
        "Observation": 2,
        "Consent": 2,
        "Communication": 3,
        "Media": 3,
        "DocumentReference": 1,
    }
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])


def test_every_reference_resolves_and_points_at_the_encounter() -> None:
    bundle = build_full()
    encounter = full_url_of(bundle, "Encounter")

    assert unresolved_references(bundle) == []
    for kind in ("Communication", "Media", "Observation"):
        assert {r["encounter"]["reference"] for r in resources(bundle, kind)} == {encounter}
    (doc,) = resources(bundle, "DocumentReference")
    assert doc["context"]["encounter"] == [{"reference": encounter, "type": "Encounter"}]


def test_unresolved_references_finds_a_dangling_one() -> None:
    bundle = copy.deepcopy(build_full())
    del bundle["entry"][0]  # the Encounter

    dangling = unresolved_references(bundle)

    assert len(dangling) == 1 and dangling[0].startswith("urn:uuid:")


def test_encounter_of_a_completed_visit() -> None:
    (enc,) = resources(build_full(), "Encounter")

    assert enc["status"] == "finished"
    assert enc["class"]["code"] == "VR"
    assert enc["identifier"] == [{"system": "urn:telemed:visit", "value": "v-abc"}]
    assert enc["period"] == {"start": "2025-12-29T09:23:20Z", "end": "2025-12-29T09:33:20Z"}
    assert enc["priority"]["coding"][0]["code"] == "UR"
    assert enc["reasonCode"] == [{"text": "sore throat since yesterday"}]
    assert enc["subject"]["identifier"] == {"system": "urn:telemed:subject", "value": "p-1a2b"}
    assert enc["subject"]["display"] == "Min-jun Kim"
    types = {p["individual"]["identifier"]["value"]: p["type"][0]["coding"][0]["code"] for p in enc["participant"]}
    assert types == {"nurse-7": "SPRF", "dr-seo": "PPRF"}
    assert [h["status"] for h in enc["statusHistory"]] == ["planned", "arrived", "triaged", "in-progress"]
    assert enc["statusHistory"][-1]["period"] == {"start": "2025-12-29T09:23:20Z", "end": "2025-12-29T09:33:20Z"}


def test_the_patient_is_a_resource_with_their_preferred_language() -> None:
    bundle = build_full(language="zh-CN")
    patient_url = full_url_of(bundle, "Patient")

    (patient,) = resources(bundle, "Patient")
    assert patient["identifier"] == [{"system": "urn:telemed:subject", "value": "p-1a2b"}]
    assert patient["name"] == [{"text": "Min-jun Kim"}]
    assert patient["communication"] == [{"language": {"coding": [
        {"system": "urn:ietf:bcp:47", "code": "zh-CN", "display": "Chinese (China)"}]}, "preferred": True}]
    # Everything about the patient points at the entry (and still names the identifier).
    (enc,) = resources(bundle, "Encounter")
    assert enc["subject"]["reference"] == patient_url and enc["subject"]["identifier"]["value"] == "p-1a2b"
    assert {c["patient"]["reference"] for c in resources(bundle, "Consent")} == {patient_url}
    comms = resources(bundle, "Communication")
    assert comms[1]["sender"]["reference"] == patient_url
    assert all(patient_url in {r.get("reference") for r in c["recipient"]} for c in (comms[0], comms[2]))
    assert unresolved_references(bundle) == []


def test_a_chart_from_before_languages_has_a_patient_without_one() -> None:
    visit = full_visit()
    del visit["language"]
    visit["consent"] = {"visit": True, "recording": True, "version": "2026-01", "at": T0 + 10}

    bundle = build_bundle(visit, [], None, None, {}, base_url=BASE)

    (patient,) = resources(bundle, "Patient")
    assert "communication" not in patient
    assert all("sourceAttachment" not in c for c in resources(bundle, "Consent"))


def test_the_consents_name_the_wording_agreed_to() -> None:
    bundle = build_full()
    sha = hashlib.sha256(b"words").hexdigest()

    for consent in resources(bundle, "Consent"):
        assert consent["sourceAttachment"] == {
            "contentType": "text/plain", "language": "ko", "title": "Consent wording, version 2026-01 (Korean)",
            "extension": [{"url": SHA256_EXTENSION, "valueString": sha}]}
        assert consent["policy"] == [{"uri": "urn:telemed:consent-policy:2026-01"}]


def test_a_transcript_in_two_languages_names_both() -> None:
    lines = transcript_lines()
    lines[0]["language"], lines[1]["language"] = "ko", "en"
    ref = TranscriptRef.from_lines(lines)
    assert (ref.language, ref.languages) == ("", ("ko", "en"))

    bundle = build_bundle(full_visit(), [], None, ref, chart_files(), base_url=BASE)

    (doc,) = resources(bundle, "DocumentReference")
    assert all("language" not in c["attachment"] for c in doc["content"])
    assert doc["description"].endswith("Languages: Korean, English.")
    lines[1]["language"] = "ko"
    one = TranscriptRef.from_lines(lines)
    assert (one.language, one.languages) == ("ko", ("ko",))


def test_communications_follow_the_chat_in_order() -> None:
    bundle = build_full()
    chat = full_chat()

    comms = resources(bundle, "Communication")

    assert [c["payload"][0]["contentString"] for c in comms] == [m["text"] for m in chat]
    assert [c["identifier"][0]["value"] for c in comms] == [f"v-abc/{m['id']}" for m in chat]
    assert comms[1]["sender"]["identifier"]["value"] == "p-1a2b"
    assert comms[1]["sender"]["type"] == "Patient"
    assert {r["identifier"]["value"] for r in comms[1]["recipient"]} == {"nurse-7", "dr-seo"}
    assert comms[0]["sent"] == "2025-12-29T09:21:45Z"


def test_media_attachments_carry_url_size_and_hashes() -> None:
    bundle = build_full()
    data = b"bytes of recording-patient-1.webm"

    media = {m["content"]["title"]: m for m in resources(bundle, "Media")}

    first = media["recording-patient-1.webm"]["content"]
    assert first["url"] == f"{BASE}/api/visits/v-abc/files/recording-patient-1.webm"
    assert first["size"] == len(data)
    assert first["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert first["extension"] == [{"url": SHA256_EXTENSION, "valueString": hashlib.sha256(data).hexdigest()}]
    assert media["snapshots/s1.jpg"]["content"]["url"] == f"{BASE}/api/visits/v-abc/files/snapshots/s1.jpg"
    assert media["snapshots/s1.jpg"]["type"]["coding"][0]["code"] == "image"
    assert (media["snapshots/s1.jpg"]["width"], media["snapshots/s1.jpg"]["height"]) == (640, 480)


def test_an_interrupted_recording_is_stopped_with_a_note() -> None:
    media = {m["content"]["title"]: m for m in resources(build_full(), "Media")}

    interrupted, complete = media["recording-patient-1.webm"], media["recording-patient-2.webm"]

    assert interrupted["status"] == "stopped"
    assert "interrupted" in interrupted["note"][0]["text"]
    assert complete["status"] == "completed"
    assert complete["duration"] == 385.5
    assert "4.5 s gap" in complete["note"][0]["text"]


def test_transcript_document_links_its_files_and_recordings() -> None:
    bundle = build_full()
    (doc,) = resources(bundle, "DocumentReference")
    media_urls = {e["resource"]["content"]["title"]: e["fullUrl"] for e in bundle["entry"] if "content" in e["resource"]
                  and e["resource"]["resourceType"] == "Media"}  # fmt: skip

    assert [c["attachment"]["title"] for c in doc["content"]] == ["transcript.jsonl", "transcript.vtt"]
    assert doc["content"][1]["attachment"]["contentType"] == "text/vtt"
    assert doc["content"][0]["attachment"]["language"] == "ko"
    # recording-doctor-1.webm is not in recordings.json, so only the patient's file is linked
    assert doc["context"]["related"] == [{"reference": media_urls["recording-patient-1.webm"], "type": "Media"}]
    assert doc["context"]["period"] == {"start": "2025-12-29T09:23:32.300000Z", "end": "2025-12-29T09:27:03.500000Z"}


def test_consents_and_observations() -> None:
    bundle = build_full(consent={"visit": True, "recording": False, "version": "2026-01", "at": T0 + 10})

    consents = {c["scope"]["coding"][0]["code"]: c for c in resources(bundle, "Consent")}
    observations = {o["code"]["text"]: o for o in resources(bundle, "Observation")}

    assert consents["treatment"]["status"] == "active"
    assert consents["patient-privacy"]["status"] == "rejected"
    assert consents["patient-privacy"]["policy"] == [{"uri": "urn:telemed:consent-policy:2026-01"}]
    assert consents["patient-privacy"]["patient"]["identifier"]["value"] == "p-1a2b"
    esi = observations["ESI triage level"]
    assert esi["code"]["coding"][0] == {"system": "http://loinc.org", "code": "75636-1",
                                        "display": "Emergency severity index [ESI]"}  # fmt: skip
    assert esi["valueCodeableConcept"]["coding"][0]["code"] == "LA21753-1"
    assert esi["performer"][0]["identifier"]["value"] == "nurse-7"
    assert observations["Triage note"]["valueString"] == "fever 38.2, no dyspnoea"


def test_the_same_chart_gives_identical_json() -> None:
    first = json.dumps(build_full(), ensure_ascii=False)
    second = json.dumps(build_full(), ensure_ascii=False)
    other = build_full(id="v-other")

    assert first == second
    assert {e["fullUrl"] for e in other["entry"]}.isdisjoint(e["fullUrl"] for e in json.loads(first)["entry"])


def test_a_visit_that_ended_in_the_waiting_room() -> None:
    visit = full_visit()
    visit.update(
        end_reason="left",
        acuity=None,
        triage=None,
        participants=[{"role": "patient", "sub": "p-1a2b", "name": ""}],
        times={"created": T0, "checked_in": T0 + 10, "admitted": None, "ended": T0 + 60},
        history=[
            {"at": T0 + 10, "from": "created", "to": "waiting", "action": "check_in", "by": "p-1a2b"},
            {"at": T0 + 60, "from": "waiting", "to": "ended", "action": "leave", "by": "p-1a2b"},
        ],
    )

    bundle = build_bundle(visit, [], None, None, {}, base_url="")

    Bundle.model_validate(bundle)
    assert unresolved_references(bundle) == []
    assert Counter(e["resource"]["resourceType"] for e in bundle["entry"]) == {"Encounter": 1, "Patient": 1, "Consent": 2}
    (enc,) = resources(bundle, "Encounter")
    assert enc["status"] == "cancelled"
    assert enc["period"] == {"start": "2025-12-29T09:20:10Z", "end": "2025-12-29T09:21:00Z"}
    assert "priority" not in enc and "participant" not in enc
    assert enc["subject"] == {"reference": full_url_of(bundle, "Patient"), "type": "Patient",
                              "identifier": {"system": "urn:telemed:subject", "value": "p-1a2b"}}
    # The patient's language, from visit.json.
    (patient,) = resources(bundle, "Patient")
    assert patient["communication"][0]["language"]["coding"] == [
        {"system": "urn:ietf:bcp:47", "code": "ko", "display": "Korean"}]
    assert enc["extension"] == [{"url": "urn:telemed:fhir:end-reason", "valueCode": "left"}]
    assert [h["status"] for h in enc["statusHistory"]] == ["planned", "arrived"]


def test_a_link_that_expired_unused() -> None:
    visit = full_visit()
    visit.update(
        state="ended", end_reason="expired", reason="", acuity=None, triage=None, participants=[],
        consent={"visit": False, "recording": False, "version": "", "at": None},
        times={"created": T0, "checked_in": None, "admitted": None, "ended": T0 + 86400},
        history=[{"at": T0 + 86400, "from": "created", "to": "ended", "action": "end", "by": "system"}],
    )  # fmt: skip

    bundle = build_bundle(visit, [], None, None, {}, base_url=BASE)

    (entry,) = bundle["entry"]
    enc = entry["resource"]
    assert enc["status"] == "cancelled" and "subject" not in enc and "reasonCode" not in enc
    assert enc["period"] == {"start": "2025-12-29T09:20:00Z", "end": "2025-12-30T09:20:00Z"}


@pytest.mark.parametrize(
    ("acuity", "priority", "answer"),
    [
        (1, "EM", "LA21567-5"),
        (2, "UR", "LA21752-3"),
        (3, "UR", "LA21753-1"),
        (4, "R", "LA21754-9"),
        (5, "R", "LA21755-6"),
        (None, None, None),
    ],
)
def test_acuity_maps_to_priority_and_esi_answer(acuity: int | None, priority: str | None, answer: str | None) -> None:
    bundle = build_full(acuity=acuity)

    (enc,) = resources(bundle, "Encounter")
    esi = [o for o in resources(bundle, "Observation") if o["code"]["text"] == "ESI triage level"]

    assert (enc["priority"]["coding"][0]["code"] if "priority" in enc else None) == priority
    assert ([o["valueCodeableConcept"]["coding"][0]["code"] for o in esi] or [None]) == [answer]


def test_priority_never_rises_with_the_esi_level() -> None:
    rank = {"EM": 0, "UR": 1, "R": 2}
    codes = [rank[ESI_PRIORITY[level][0]] for level in range(1, 6)]
    assert codes == sorted(codes)


def test_every_live_visit_state_has_an_encounter_status() -> None:
    assert set(ENCOUNTER_STATUS) == {s.value for s in State} - {State.ENDED.value}


def test_an_ongoing_visit_is_in_progress() -> None:
    visit = full_visit()
    visit.update(
        state="in_visit", end_reason=None, times={**visit["times"], "ended": None}, history=visit["history"][:-1]
    )

    bundle = build_bundle(visit, full_chat(), None, None, {}, base_url=BASE)

    (enc,) = resources(bundle, "Encounter")
    assert enc["status"] == "in-progress" and "end" not in enc["period"]


def test_a_file_missing_from_the_listing_is_said_so() -> None:
    files = chart_files()
    del files["snapshots/s1.jpg"]

    bundle = build_bundle(full_visit(), [], full_recordings(), None, files, base_url=BASE)

    (snap,) = [m for m in resources(bundle, "Media") if m["content"]["title"] == "snapshots/s1.jpg"]
    assert "hash" not in snap["content"] and "size" not in snap["content"]
    assert snap["content"]["contentType"] == "image/jpeg"
    assert "missing" in snap["note"][0]["text"]


def test_a_chat_line_without_a_time_is_refused() -> None:
    chat = full_chat()
    del chat[1]["at"]

    with pytest.raises(BundleError, match=r"chat\.jsonl line 2 .*'at' is missing"):
        build_bundle(full_visit(), chat, None, None, {}, base_url=BASE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v, c, r: v.update(acuity=7), "acuity must be an ESI level"),
        (lambda v, c, r: v.update(format=2), "unknown format"),
        (lambda v, c, r: v["times"].update(ended=None), "times.ended is missing"),
        (lambda v, c, r: v["times"].update(ended=v["times"]["admitted"] - 1), "ends .* before it starts"),
        (lambda v, c, r: v["history"][2].update({"from": "waiting"}), "goes from 'waiting'"),
        (lambda v, c, r: v["participants"].append({"role": "surgeon", "sub": "x"}), "unknown role 'surgeon'"),
        (lambda v, c, r: v["consent"].update(recording="yes"), "'recording' must be true or false"),
        (lambda v, c, r: v.update(language="Korean"), "'language' must be a language tag"),
        (lambda v, c, r: v["consent"].update(language="ko_KR"), "'language' must be a language tag"),
        (lambda v, c, r: v["consent"].update(sha256="abc"), "'sha256' must be 64"),
        (lambda v, c, r: c[0].update(text=""), "'text' must be a non-empty string"),
        (lambda v, c, r: c.append(dict(c[0])), "two Communication entries"),
        (lambda v, c, r: r["recordings"][0].update(state="paused"), "unknown state 'paused'"),
        (lambda v, c, r: r["snapshots"][0].update(width=0), "not a valid FHIR Media"),
    ],
)
def test_broken_input_raises_a_clear_error(change: Any, message: str) -> None:
    visit, chat, recordings = full_visit(), full_chat(), full_recordings()
    change(visit, chat, recordings)

    with pytest.raises(BundleError, match=message):
        build_bundle(visit, chat, recordings, None, chart_files(), base_url=BASE)


def test_file_info_checks_its_digests() -> None:
    info = FileInfo.of(b"abc", "text/plain")
    assert info.sha1 == hashlib.sha1(b"abc").hexdigest() and info.size == 3

    with pytest.raises(BundleError, match="sha256"):
        FileInfo(3, "ABC", "text/plain")


def test_transcript_ref_from_lines() -> None:
    ref = TranscriptRef.from_lines(transcript_lines())

    assert (ref.start, ref.end) == (T0 + 212.3, T0 + 423.5)
    assert ref.recordings == ("recording-patient-1.webm", "recording-doctor-1.webm")
    assert TranscriptRef.from_lines([]).start is None


# -- appointments ---------------------------------------------------------------------------------


def test_a_booked_visit_has_an_appointment_linked_from_the_encounter() -> None:
    bundle = build_full(scheduled_at=T0 + 600)
    Bundle.model_validate(bundle)
    assert unresolved_references(bundle) == []
    (appointment,) = resources(bundle, "Appointment")
    (encounter,) = resources(bundle, "Encounter")
    assert encounter["appointment"] == [{"reference": full_url_of(bundle, "Appointment")}]
    assert appointment["status"] == "fulfilled"
    assert appointment["start"] == "2025-12-29T09:30:00Z" and appointment["end"] == "2025-12-29T09:45:00Z"
    assert appointment["minutesDuration"] == 15
    assert appointment["participant"] == [
        {"actor": {"reference": full_url_of(bundle, "Patient"), "type": "Patient",
                   "identifier": {"system": "urn:telemed:subject", "value": "p-1a2b"}, "display": "Min-jun Kim"},
         "status": "accepted"}
    ]  # fmt: skip
    assert appointment["reasonCode"] == [{"text": "sore throat since yesterday"}]
    assert appointment["identifier"] == [{"system": "urn:telemed:visit", "value": "v-abc"}]


def test_a_visit_without_an_appointment_has_none() -> None:
    bundle = build_full(scheduled_at=None)
    assert resources(bundle, "Appointment") == []
    assert "appointment" not in resources(bundle, "Encounter")[0]


def test_a_no_show_is_an_appointment_without_a_patient_reference() -> None:
    visit = full_visit()
    visit.update(
        state="ended", end_reason="no_show", acuity=None, triage=None, participants=[], scheduled_at=T0 + 3600,
        consent=None, times={"created": T0, "checked_in": None, "admitted": None, "ended": T0 + 3600 + 900},
        history=[{"at": T0 + 4500, "from": "created", "to": "ended", "action": "end:no_show", "by": "system"}],
    )  # fmt: skip
    bundle = build_bundle(visit, [], None, None, {}, base_url=BASE)
    Bundle.model_validate(bundle)
    (appointment,) = resources(bundle, "Appointment")
    assert appointment["status"] == "noshow"
    # Nobody checked in, so no patient id is known: the participant is the subject by type.
    assert appointment["participant"][0]["type"][0]["coding"][0]["code"] == "SBJ"
    assert resources(bundle, "Encounter")[0]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("state", "end_reason", "admitted", "status"),
    [
        ("created", "", None, "booked"),
        ("waiting", "", None, "checked-in"),
        ("ended", "cancelled", None, "cancelled"),
        ("ended", "left", None, "cancelled"),
    ],
)
def test_appointment_status_follows_the_visit(state: str, end_reason: str, admitted: float | None, status: str) -> None:
    from telemed.chart.fhir import _appointment_status

    assert _appointment_status({"state": state, "end_reason": end_reason}, admitted) == status


def test_a_scheduled_at_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(BundleError, match="scheduled_at"):
        build_full(scheduled_at="tomorrow")
