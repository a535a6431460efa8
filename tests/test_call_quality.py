"""How calls go, as the pages report it over /call (``media_started``,
``call_quality``): validated, allowed to the visit's two parties only, kept
once per side and call, counted on /metrics, and summed up in the chart's
visit.json without any health data. Real node, real Redis, real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from telemed import call_quality, keys
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import Peer


async def visit_in_progress(node: str, connect: Any, doctor_sub: str = "d1") -> tuple[str, Peer, Peer]:
    doctor = await connect(node, token(Role.DOCTOR, sub=doctor_sub), namespaces=["/queue", "/call"])
    visit_id, patient_token = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, patient_token, namespaces=["/queue", "/call"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    return visit_id, patient, doctor


async def metrics(node: str) -> dict[str, float]:
    """The node's /metrics as {sample with labels: value}."""
    async with aiohttp.ClientSession() as http, http.get(f"{node}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def sample(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


async def test_media_started_is_kept_once_per_side_and_call_and_observed(node: str, connect: Any, redis: aioredis.Redis) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    first = await patient.ok("/call", "media_started", {"visit_id": visit_id, "call_id": "c-1", "audio_ms": 640, "video_ms": 910})
    assert first["recorded"] is True
    # The same side's same call again (a retry, a second tab): kept once.
    again = await patient.ok("/call", "media_started", {"visit_id": visit_id, "call_id": "c-1", "audio_ms": 99})
    assert again["recorded"] is False
    # The other side of that call, and the patient's next call (after a reload) count.
    assert (await doctor.ok("/call", "media_started", {"visit_id": visit_id, "call_id": "c-1", "audio_ms": 700}))["recorded"]
    assert (await patient.ok("/call", "media_started", {"visit_id": visit_id, "audio_ms": 2400}))["recorded"]

    m = await metrics(node)
    count = "telemed_call_time_to_media_seconds_count"
    assert m[sample(count, role="patient", kind="audio")] == 2
    assert m[sample(count, role="patient", kind="video")] == 1
    assert m[sample(count, role="doctor", kind="audio")] == 1
    assert m[sample("telemed_call_time_to_media_seconds_sum", role="patient", kind="audio")] == pytest.approx(0.64 + 2.4)
    assert m[sample("telemed_call_time_to_media_seconds_bucket", role="patient", kind="audio", le="1.0")] == 1
    stored = await redis.hgetall(keys.call_quality(visit_id))
    assert json.loads(stored["start|patient|c-1"]) == {"audio_ms": 640, "video_ms": 910}  # the first report
    assert 0 < await redis.ttl(keys.call_quality(visit_id)) <= keys.ENDED_VISIT_TTL


@pytest.mark.parametrize(("payload", "words"), [
    ({}, "say when the audio or the video started"),
    ({"audio_ms": None, "video_ms": None}, "say when the audio or the video started"),
    ({"audio_ms": 0}, "audio_ms: Input should be greater than 0"),
    ({"audio_ms": 600_000}, "audio_ms: Input should be less than 600000"),
    ({"video_ms": -5}, "video_ms: Input should be greater than 0"),
    ({"audio_ms": 640.5}, "audio_ms: Input should be a valid integer"),
    ({"audio_ms": 640.0}, "audio_ms: Input should be a valid integer"),
    ({"audio_ms": True}, "audio_ms: Input should be a valid integer"),
    ({"audio_ms": "640"}, "audio_ms: Input should be a valid integer"),
    ({"audio_ms": 640, "call_id": "a b"}, "call_id: String should match pattern"),
    ({"audio_ms": 640, "jitter": 3}, "jitter: Extra inputs are not permitted"),
])  # fmt: skip
async def test_media_started_is_validated(node: str, connect: Any, redis: aioredis.Redis, payload: dict[str, Any], words: str) -> None:
    visit_id, patient, _doctor = await visit_in_progress(node, connect)
    reply = await patient.call("/call", "media_started", {"visit_id": visit_id, **payload})
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]
    await patient.ok("/call", "media_started", {"visit_id": visit_id, "audio_ms": 599_999})  # the sentinel: the largest valid
    assert list(await redis.hgetall(keys.call_quality(visit_id))) == ["start|patient|-"]


@pytest.mark.parametrize(("payload", "words"), [
    ({}, "report ice_failed, relay, fallback or restart"),
    ({"ice_failed": False}, "report ice_failed, relay, fallback or restart"),
    ({"relay": None}, "report ice_failed, relay, fallback or restart"),
    ({"relay": "yes"}, "relay: Input should be a valid boolean"),
    ({"relay": 1}, "relay: Input should be a valid boolean"),
    ({"fallback": "video_off"}, "fallback: Input should be 'audio_only'"),
    ({"ice_failed": "true"}, "ice_failed: Input should be a valid boolean"),
])  # fmt: skip
async def test_call_quality_is_validated(node: str, connect: Any, payload: dict[str, Any], words: str) -> None:
    visit_id, patient, _doctor = await visit_in_progress(node, connect)
    reply = await patient.call("/call", "call_quality", {"visit_id": visit_id, **payload})
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]


async def test_call_quality_counts_calls_not_reports(node: str, connect: Any) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    got = await patient.ok("/call", "call_quality", {"visit_id": visit_id, "call_id": "c-1", "relay": True})
    assert got["recorded"] == ["relay"]
    # Reported again (every few seconds, as a page may): nothing new.
    assert (await patient.ok("/call", "call_quality", {"visit_id": visit_id, "call_id": "c-1", "relay": True}))["recorded"] == []
    got = await patient.ok("/call", "call_quality",
                           {"visit_id": visit_id, "call_id": "c-1", "ice_failed": True, "fallback": "audio_only"})
    assert got["recorded"] == ["ice_failed", "audio_only"]
    await doctor.ok("/call", "call_quality", {"visit_id": visit_id, "call_id": "c-1", "relay": False})
    await doctor.ok("/call", "call_quality", {"visit_id": visit_id, "call_id": "c-2", "relay": False})

    m = await metrics(node)
    assert m[sample("telemed_call_paths_total", role="patient", path="relay")] == 1
    assert m[sample("telemed_call_paths_total", role="doctor", path="direct")] == 2
    assert m[sample("telemed_call_ice_failures_total", role="patient")] == 1
    assert m[sample("telemed_call_fallbacks_total", role="patient", kind="audio_only")] == 1
    assert sample("telemed_call_ice_failures_total", role="doctor") not in m
    # No label names a clinic, a visit or a person.
    assert not [name for name in m if visit_id in name or "c1" in name or "d1" in name]


async def test_only_the_visit_s_parties_report_and_only_while_it_runs(node: str, connect: Any, redis: aioredis.Redis) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    other_visit, other_patient, other_doctor = await visit_in_progress(node, connect, doctor_sub="d2")
    for peer, event, payload in ((other_patient, "media_started", {"audio_ms": 500}), (other_doctor, "call_quality", {"relay": True}),
                                 (other_patient, "call_quality", {"fallback": "audio_only"})):
        reply = await peer.call("/call", event, {"visit_id": visit_id, **payload})
        assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    await doctor.ok("/queue", "end", {"visit_id": visit_id})
    late = await doctor.call("/call", "media_started", {"visit_id": visit_id, "audio_ms": 500})
    assert late["ok"] is False and late["error"]["code"] == "conflict"
    # The sentinel: the other visit's own patient is heard, and nothing reached the ended visit.
    await other_patient.ok("/call", "media_started", {"visit_id": other_visit, "audio_ms": 500})
    assert await redis.hgetall(keys.call_quality(visit_id)) == {}
    assert list(await redis.hgetall(keys.call_quality(other_visit))) == ["start|patient|-"]


async def test_a_visit_keeps_a_bounded_number_of_reports(redis: aioredis.Redis) -> None:
    quality = call_quality.CallQuality(redis)
    kept = [await quality.media_started("v1", "patient", f"call-{n}", 500, None) for n in range(call_quality.MAX_FIELDS + 5)]
    assert kept == [True] * call_quality.MAX_FIELDS + [False] * 5
    assert await redis.hlen(keys.call_quality("v1")) == call_quality.MAX_FIELDS


async def test_the_summary_has_counts_and_medians_only(redis: aioredis.Redis) -> None:
    assert await call_quality.summary(redis, "v1") is None
    q = call_quality.CallQuality(redis)
    await q.media_started("v1", "patient", "c-1", 600, 1000)
    await q.media_started("v1", "patient", "c-2", 900, None)
    await q.media_started("v1", "patient", "c-3", 3000, 2000)
    await q.media_started("v1", "doctor", "c-1", 500, 800)
    await q.report("v1", "patient", "c-1", call_quality.Report(relay=True, audio_only=True))
    await q.report("v1", "patient", "c-2", call_quality.Report(ice_failed=True, relay=False))
    await q.report("v1", "doctor", "c-1", call_quality.Report(relay=False))
    assert await call_quality.summary(redis, "v1") == {
        "calls": 3,
        "patient": {"calls_started": 3, "audio_ms_median": 900, "video_ms_median": 1500, "ice_failures": 1,
                    "relayed": 1, "direct": 1, "audio_only": 1},
        "doctor": {"calls_started": 1, "audio_ms_median": 500, "video_ms_median": 800, "ice_failures": 0,
                   "relayed": 0, "direct": 1, "audio_only": 0},
    }


async def test_visit_json_holds_the_call_quality_summary(node: str, connect: Any, settings: Settings) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    await patient.ok("/call", "media_started", {"visit_id": visit_id, "call_id": "c-1", "audio_ms": 800, "video_ms": 1200})
    await doctor.ok("/call", "media_started", {"visit_id": visit_id, "call_id": "c-1", "audio_ms": 700, "video_ms": 1100})
    await patient.ok("/call", "call_quality", {"visit_id": visit_id, "call_id": "c-1", "relay": True})
    await doctor.ok("/queue", "end", {"visit_id": visit_id})
    path = settings.recordings_dir / "c1" / visit_id / "visit.json"
    deadline = time.monotonic() + 30
    while not path.exists():  # the node writes the chart when the visit has ended
        assert time.monotonic() < deadline, "no visit.json"
        await asyncio.sleep(0.1)
    quality = json.loads(path.read_text())["call_quality"]
    assert quality["calls"] == 1
    assert quality["patient"]["audio_ms_median"] == 800 and quality["patient"]["relayed"] == 1
    assert quality["doctor"]["video_ms_median"] == 1100 and quality["doctor"]["direct"] == 0
    # Numbers under a fixed vocabulary only: nothing of the visit's content.
    fields = {"calls_started", "audio_ms_median", "video_ms_median", "ice_failures", "relayed", "direct", "audio_only"}
    assert set(quality) == {"calls", "patient", "doctor"}
    for side in ("patient", "doctor"):
        assert set(quality[side]) == fields
        assert all(v is None or type(v) is int for v in quality[side].values())


# -- call_status: each side's level and video, for the other party's page -------------------


async def test_call_status_reaches_the_other_party_only(start_node: Any, connect: Any) -> None:
    # The patient and the doctor on two nodes: the status crosses them as the signaling does.
    a, b = await start_node(), await start_node()
    doctor = await connect(b, token(Role.DOCTOR, sub="d1"), namespaces=["/queue", "/call"])
    visit_id, patient_token = await create_visit(a, token(Role.NURSE))
    patient = await connect(a, patient_token, namespaces=["/queue", "/call"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
    other_visit, other_patient, other_doctor = await visit_in_progress(a, connect, doctor_sub="d2")
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})

    await patient.ok("/call", "call_status", {"visit_id": visit_id, "call_id": "c-1", "level": "weak", "video": "paused"})
    got = await doctor.wait_for("/call", "call_status")
    assert got == {"visit_id": visit_id, "from": "patient", "call_id": "c-1", "level": "weak", "video": "paused"}
    await doctor.ok("/call", "call_status", {"visit_id": visit_id, "video": "on"})
    got = await patient.wait_for("/call", "call_status")
    assert got == {"visit_id": visit_id, "from": "doctor", "level": None, "video": "on"}
    # The sentinel: the other visit's status reaches its own doctor, and only it.
    await other_patient.ok("/call", "call_status", {"visit_id": other_visit, "level": "good", "video": "audio_only"})
    assert (await other_doctor.wait_for("/call", "call_status"))["visit_id"] == other_visit
    assert [e["visit_id"] for e in doctor.events[("/call", "call_status")]] == [visit_id]
    assert other_patient.events[("/call", "call_status")] == []
    assert len(patient.events[("/call", "call_status")]) == 1


@pytest.mark.parametrize(("payload", "words"), [
    ({"level": "weak"}, "video: Field required"),
    ({"video": "frozen"}, "video: Input should be 'on', 'camera_off', 'paused' or 'audio_only'"),
    ({"video": "on", "level": "bad"}, "level: Input should be 'good', 'fair', 'weak' or 'very_weak'"),
    ({"video": "on", "level": 2}, "level: Input should be 'good', 'fair', 'weak' or 'very_weak'"),
    ({"video": "on", "call_id": "a/b"}, "call_id: String should match pattern"),
    ({"video": "on", "rtt_ms": 300}, "rtt_ms: Extra inputs are not permitted"),
])  # fmt: skip
async def test_call_status_is_validated(node: str, connect: Any, payload: dict[str, Any], words: str) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    reply = await patient.call("/call", "call_status", {"visit_id": visit_id, **payload})
    assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
    assert words in reply["error"]["message"]
    # The sentinel: a valid status after the refused one is the first the doctor hears.
    await patient.ok("/call", "call_status", {"visit_id": visit_id, "level": "very_weak", "video": "camera_off"})
    got = await doctor.wait_for("/call", "call_status")
    assert (got["level"], got["video"]) == ("very_weak", "camera_off")
    assert len(doctor.events[("/call", "call_status")]) == 1


async def test_call_status_only_from_the_visit_s_parties_while_it_runs(node: str, connect: Any) -> None:
    visit_id, patient, doctor = await visit_in_progress(node, connect)
    other_visit, other_patient, other_doctor = await visit_in_progress(node, connect, doctor_sub="d2")
    for peer in (other_patient, other_doctor):
        reply = await peer.call("/call", "call_status", {"visit_id": visit_id, "level": "weak", "video": "on"})
        assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    # A nurse cannot even connect to /call.
    nurse_refused = False
    try:
        await connect(node, token(Role.NURSE), namespaces=["/call"])
    except Exception:
        nurse_refused = True
    assert nurse_refused
    await doctor.ok("/queue", "end", {"visit_id": visit_id})
    late = await patient.call("/call", "call_status", {"visit_id": visit_id, "level": "weak", "video": "on"})
    assert late["ok"] is False and late["error"]["code"] in ("conflict", "unauthorized"), late
    # The sentinel: a status of the running visit arrives; none of the refused ones did.
    await other_patient.ok("/call", "call_status", {"visit_id": other_visit, "level": "fair", "video": "on"})
    await other_doctor.wait_for("/call", "call_status")
    assert doctor.events[("/call", "call_status")] == [] and patient.events[("/call", "call_status")] == []


async def test_call_status_is_rate_limited_per_socket(node: str, connect: Any) -> None:
    from signaling.call_ns import STATUS_BURST

    visit_id, patient, doctor = await visit_in_progress(node, connect)
    replies = [await patient.call("/call", "call_status", {"visit_id": visit_id, "level": "weak", "video": "on"})
               for _ in range(STATUS_BURST + 3)]
    refused = [r for r in replies if not r["ok"]]
    assert 1 <= len(refused) <= 3, replies  # the burst passes; a token may come back meanwhile
    assert {r["error"]["code"] for r in refused} == {"rate_limited"}
    # The sentinel, once a token is back: the doctor got exactly the accepted ones and it.
    deadline = time.monotonic() + 10
    while not (await patient.call("/call", "call_status", {"visit_id": visit_id, "level": "very_weak", "video": "on"}))["ok"]:
        assert time.monotonic() < deadline, "the allowance never came back"
        await asyncio.sleep(0.2)
    await doctor.wait_for("/call", "call_status", lambda e: e["level"] == "very_weak")
    assert len(doctor.events[("/call", "call_status")]) == len(replies) - len(refused) + 1
    # The doctor's own socket has its own allowance.
    await doctor.ok("/call", "call_status", {"visit_id": visit_id, "level": "good", "video": "on"})
    await patient.wait_for("/call", "call_status")
