"""The HTTP API: visits, queue, walk-in link, health, readiness and metrics."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.tokens import Role, verify
from tests.conftest import SECRET, create_visit, get_status, token


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_create_visit_returns_a_working_patient_link(node: str, connect) -> None:
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{node}/api/visits", json={"reason": "rash", "patient_name": "Ana"}, headers=auth(token(Role.DOCTOR)))
        assert r.status == 201
        body = await r.json()
    assert set(body) == {"visit_id", "patient_link", "expires_at"}
    assert body["patient_link"].startswith("http://clinic.test/visit#t=")
    claims = verify(SECRET, body["patient_link"].split("#t=")[1])
    assert (claims.role, claims.visit, claims.clinic, claims.name) == (Role.PATIENT, body["visit_id"], "c1", "Ana")
    assert body["expires_at"] > time.time() + 3600
    patient = await connect(node, body["patient_link"].split("#t=")[1])
    assert (await patient.wait_for("/queue", "visit"))["reason"] == "rash"


async def test_queue_route_lists_the_clinic_in_order(node: str, connect) -> None:
    ids = []
    for _ in range(3):
        vid, ptok = await create_visit(node, token(Role.NURSE))
        p = await connect(node, ptok)
        await p.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
        ids.append(vid)
    nurse = await connect(node, token(Role.NURSE))
    await nurse.ok("/queue", "triage", {"visit_id": ids[2], "acuity": 1})
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{node}/api/clinics/c1/queue", headers=auth(token(Role.ADMIN)))
        body = await r.json()
    assert r.status == 200
    assert [v["visit_id"] for v in body["queue"]] == [ids[2], ids[0], ids[1]]
    assert [v["position"] for v in body["queue"]] == [1, 2, 3]


async def test_walk_in_link_is_off_unless_the_clinic_allows_it(start_node, settings: Settings, redis: aioredis.Redis) -> None:
    node = await start_node(settings.with_(walk_in_clinics=("open",), walk_in_per_minute=3))
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{node}/api/clinics/closed/walk-in", json={"name": "Bo", "reason": "flu"})
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        r = await http.post(f"{node}/api/clinics/open/walk-in", json={"name": "Bo", "reason": "flu"})
        assert r.status == 201
        body = await r.json()
        claims = verify(SECRET, body["token"])
        assert (claims.role, claims.clinic, claims.visit, claims.name) == (Role.PATIENT, "open", body["visit_id"], "Bo")
        # Bad bodies are refused and still count against the rate limit window.
        r = await http.post(f"{node}/api/clinics/open/walk-in", json={"reason": "no name"})
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
        r = await http.post(f"{node}/api/clinics/open/walk-in", json={"name": "Cy"})
        assert r.status == 201
        r = await http.post(f"{node}/api/clinics/open/walk-in", json={"name": "Di"})
        assert r.status == 429 and (await r.json())["error"]["code"] == "rate_limited"
        # An admin can turn a clinic's link on at run time.
        await redis.hset("tm:clinic:closed", "walk_in", "1")
        r = await http.post(f"{node}/api/clinics/closed/walk-in", json={"name": "Ed"})
        assert r.status == 429  # same address, same window


async def test_bodies_that_are_not_json_or_too_big_get_typed_errors(node: str) -> None:
    async with aiohttp.ClientSession() as http:
        h = {**auth(token(Role.NURSE)), "Content-Type": "application/json"}
        r = await http.post(f"{node}/api/visits", data=b"{not json", headers=h)
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
        r = await http.post(f"{node}/api/visits", data=b"[1, 2]", headers=h)
        assert r.status == 400
        r = await http.post(f"{node}/api/visits", json={"reason": "x" * 501}, headers=h)
        assert r.status == 400 and "reason" in (await r.json())["error"]["message"]
        r = await http.post(f"{node}/api/visits", data=b"{" + b" " * 100_000 + b"}", headers=h)
        assert r.status == 413 and (await r.json())["error"]["code"] == "too_large"
        r = await http.get(f"{node}/api/nothing-here")
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_health_metrics_and_readiness_follow_redis(start_node, settings: Settings, tmp_path: Path, connect) -> None:
    with RedisServer(tmp_path / "own-redis") as own:
        node = await start_node(settings.with_(redis_url=own.url))
        vid, ptok = await create_visit(node, token(Role.NURSE))
        patient = await connect(node, ptok)
        await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": False})
        await patient.ok("/chat", "send", {"visit_id": vid, "client_id": "m1", "text": "hi"})
        await patient.wait_for("/queue", "position")
        async with aiohttp.ClientSession() as http:
            assert await get_status(http, f"{node}/healthz") == 200
            assert await get_status(http, f"{node}/readyz") == 200
            async with http.get(f"{node}/metrics") as r:
                text = await r.text()
            assert 'telemed_sockets{namespace="/queue",role="patient"} 1.0' in text
            assert "telemed_queue_length 1.0" in text and 'clinic=' not in text
            assert "telemed_chat_messages_total 1.0" in text
            own.stop()
            r = await http.get(f"{node}/readyz")
            assert r.status == 503 and (await r.json())["redis"] is False
            assert await get_status(http, f"{node}/healthz") == 200
            own.start()
            assert await get_status(http, f"{node}/readyz") == 200
