"""The patient's language through a real node: given at check-in, stored on the
visit, shown to staff in the queue and the visit, written to the chart
(visit.json, FHIR) with the consent wording agreed to; bad tags and outdated
wordings refused in plain words, changing nothing."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fhir.resources.R4B.bundle import Bundle

from telemed import chart, consent, keys
from telemed.chart.fhir import unresolved_references
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token

CHECK_IN = {"reason": "sore throat", "consent_visit": True, "consent_recording": True}


async def patient_of(node: str, connect: Any, name: str = "Wang Fang") -> tuple[str, Any]:
    visit_id, ptok = await create_visit(node, token(Role.NURSE), patient_name=name)
    return visit_id, await connect(node, ptok, namespaces=["/queue"])


async def test_the_patients_language_is_stored_and_shown_to_staff(node: str, connect: Any, redis: aioredis.Redis) -> None:
    nurse = await connect(node, token(Role.NURSE, sub="n1"), namespaces=["/queue"])
    visit_id, patient = await patient_of(node, connect)

    reply = await patient.ok("/queue", "check_in", {**CHECK_IN, "language": "zh-cn"})

    assert reply["visit"]["language"] == "zh-CN"  # in canonical case
    stored = await redis.hgetall(keys.visit(visit_id))
    assert stored["language"] == "zh-CN"
    # The Chinese wording's current version (the English one while there was none: the pages fell back to it).
    shown = "zh-CN" if "zh-CN" in consent.CURRENT else "en"
    assert (stored["consent_language"], stored["consent_version"]) == (shown, consent.CURRENT[shown])
    # Staff: the queue entry (pushed, and asked for) and the visit itself.
    pushed = await nurse.wait_for("/queue", "queue", lambda q: any(v["visit_id"] == visit_id for v in q["queue"]))
    assert [v["language"] for v in pushed["queue"] if v["visit_id"] == visit_id] == ["zh-CN"]
    asked = await nurse.ok("/queue", "get_queue", {})
    assert [v["language"] for v in asked["queue"] if v["visit_id"] == visit_id] == ["zh-CN"]
    seen = await nurse.ok("/queue", "get_visit", {"visit_id": visit_id})
    assert seen["visit"]["language"] == "zh-CN"


async def test_without_a_language_the_visit_is_in_english(node: str, connect: Any, redis: aioredis.Redis) -> None:
    visit_id, patient = await patient_of(node, connect)
    reply = await patient.ok("/queue", "check_in", CHECK_IN)
    assert reply["visit"]["language"] == "en"
    assert await redis.hmget(keys.visit(visit_id), "language", "consent_language", "consent_version") == [
        "en", "en", consent.CURRENT["en"]]


async def test_a_language_without_a_wording_of_its_own_agreed_to_the_english_one(
    node: str, connect: Any, redis: aioredis.Redis
) -> None:
    visit_id, patient = await patient_of(node, connect)
    assert "fr" not in consent.CURRENT  # French: valid, but no page catalogue yet
    await patient.ok("/queue", "check_in", {**CHECK_IN, "language": "fr"})
    assert await redis.hmget(keys.visit(visit_id), "language", "consent_language", "consent_version") == [
        "fr", "en", consent.CURRENT["en"]]


async def test_a_bad_language_tag_is_refused_naming_the_field(node: str, connect: Any, redis: aioredis.Redis) -> None:
    visit_id, patient = await patient_of(node, connect)
    before = await redis.hgetall(keys.visit(visit_id))
    for tag in ("english", "en_US", "zh-CN-x-secret", "", 7):
        reply = await patient.call("/queue", "check_in", {**CHECK_IN, "language": tag})
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (tag, reply)
        assert reply["error"]["details"]["fields"] == ["language"]
    assert await redis.hgetall(keys.visit(visit_id)) == before  # still not checked in
    assert (await patient.ok("/queue", "check_in", {**CHECK_IN, "language": "ko"}))["visit"]["state"] == "waiting"


async def test_an_outdated_consent_wording_is_refused_in_plain_words(
    node: str, connect: Any, redis: aioredis.Redis
) -> None:
    visit_id, patient = await patient_of(node, connect)
    before = await redis.hgetall(keys.visit(visit_id))

    reply = await patient.call("/queue", "check_in", {**CHECK_IN, "language": "en", "consent_version": "2020-01"})

    assert reply["ok"] is False
    assert reply["error"] == {
        "code": "consent_outdated",
        "message": "The consent wording has changed. Please read it again.",
        "details": {"reason": "consent_outdated", "language": "en", "version": "2020-01", "current": consent.CURRENT["en"]},
    }
    assert await redis.hgetall(keys.visit(visit_id)) == before
    # A wording in a language the server has none for is no better.
    reply = await patient.call("/queue", "check_in", {**CHECK_IN, "consent_language": "fr", "consent_version": "2026-11"})
    assert reply["error"]["code"] == "consent_outdated"
    # Read again: the current wording is accepted.
    current = {**CHECK_IN, "language": "en", "consent_version": consent.CURRENT["en"]}
    assert (await patient.ok("/queue", "check_in", current))["visit"]["state"] == "waiting"


async def test_each_language_has_its_own_current_wording(node: str, connect: Any, redis: aioredis.Redis) -> None:
    """A check-in names the wording of its language; the version of one
    language means nothing in another."""
    for language, version in consent.CURRENT.items():
        visit_id, patient = await patient_of(node, connect)
        await patient.ok("/queue", "check_in", {**CHECK_IN, "language": language, "consent_version": version})
        assert await redis.hmget(keys.visit(visit_id), "consent_language", "consent_version") == [language, version]
    visit_id, patient = await patient_of(node, connect)
    bogus = {**CHECK_IN, "language": "en", "consent_language": "en", "consent_version": "ko-only-version"}
    assert (await patient.call("/queue", "check_in", bogus))["error"]["code"] == "consent_outdated"


async def wait_for_file(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path.name} was not written"
        await asyncio.sleep(0.1)


async def test_the_chart_records_the_language_and_the_wording_agreed_to(
    node: str, connect: Any, settings: Settings
) -> None:
    nurse = await connect(node, token(Role.NURSE, sub="n1"), namespaces=["/queue"])
    visit_id, patient = await patient_of(node, connect, "Kim Min-jun")
    # A Korean patient who read the English wording (the consent's language is its own).
    await patient.ok("/queue", "check_in", {**CHECK_IN, "language": "ko", "consent_language": "en",
                                            "consent_version": consent.CURRENT["en"]})
    await nurse.ok("/queue", "end", {"visit_id": visit_id})  # cancelled from the waiting room: the chart is written

    folder = settings.recordings_dir / "c1" / visit_id
    await wait_for_file(folder / chart.MANIFEST)
    visit = json.loads((folder / "visit.json").read_text())
    assert visit["language"] == "ko"
    assert {k: visit["consent"][k] for k in ("visit", "recording", "language", "version", "sha256")} == {
        "visit": True, "recording": True, "language": "en", "version": consent.CURRENT["en"],
        "sha256": consent.WORDINGS[("en", consent.CURRENT["en"])]}

    bundle = json.loads((folder / "fhir.json").read_text())
    Bundle.model_validate(bundle)
    assert unresolved_references(bundle) == []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
    [patient_entry] = by_type["Patient"]
    assert patient_entry["resource"]["communication"] == [{"language": {"coding": [
        {"system": "urn:ietf:bcp:47", "code": "ko", "display": "Korean"}]}, "preferred": True}]
    [encounter] = by_type["Encounter"]
    assert encounter["resource"]["subject"]["reference"] == patient_entry["fullUrl"]
    consents = [e["resource"] for e in by_type["Consent"]]
    assert len(consents) == 2
    for c in consents:
        assert c["sourceAttachment"]["language"] == "en"
        assert consent.CURRENT["en"] in c["sourceAttachment"]["title"]
        assert c["sourceAttachment"]["extension"][0]["valueString"] == consent.WORDINGS[("en", consent.CURRENT["en"])]
