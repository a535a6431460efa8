"""The admin console's routes on real nodes, Redis and socket clients: clinic
settings applied without restart, the live staff sessions with sign-out (at
once, on whichever node holds the socket), the audit trail's status, and the
staff pages' lock setting."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from telemed import keys
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import NodeFactory, create_visit, http, token
from tests.peer import Peer

ADMIN = token(Role.ADMIN, "c1", sub="a1", name="Ada Admin")



async def walk_in(url: str) -> int:
    status, _ = await http("POST", f"{url}/api/clinics/c1/walk-in", body={"name": "Walk In", "reason": "cough"})
    return status


async def test_settings_default_to_the_process_and_change_without_restart(node: str, redis: aioredis.Redis) -> None:
    status, data = await http("GET", f"{node}/api/clinics/c1/settings", ADMIN)
    assert status == 200, data
    assert data["settings"] == {"walk_in": False, "captions_to_patient": False, "link_lifetime": 86400.0,
                                "check_in_window": 900.0, "no_show_after": 900.0, "display_name": ""}
    assert await walk_in(node) == 404
    status, data = await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"walk_in": True, "link_lifetime": 3600})
    assert status == 200, data
    assert data["changed"] == ["link_lifetime", "walk_in"]
    assert data["settings"]["walk_in"] is True and data["settings"]["link_lifetime"] == 3600.0
    assert await walk_in(node) == 201
    # A new link lasts the clinic's lifetime now.
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{node}/api/visits", json={"reason": "x"}, headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            created = await r.json()
    ttl = await redis.ttl(keys.visit(created["visit_id"]))
    assert 3600 <= ttl <= 3600 + keys.UNUSED_VISIT_SLACK + 5
    # Off again: the walk-in link refuses at once.
    assert (await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"walk_in": False}))[0] == 200
    assert await walk_in(node) == 404


async def test_a_change_made_through_one_node_holds_on_another(start_node: NodeFactory) -> None:
    first, second = await start_node(), await start_node()
    assert (await http("PUT", f"{first}/api/clinics/c1/settings", ADMIN, {"walk_in": True}))[0] == 200
    assert await walk_in(second) == 201


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"walk_in": "yes"}, "Walk-in must be on or off."),
        ({"captions_to_patient": 1}, "Captions to the patient must be on or off."),
        ({"link_lifetime": 60}, "A link must last between 5 minutes and 14 days."),
        ({"check_in_window": 2 * 86400}, "Check-in can open at most 24 hours before the appointment."),
        ({"no_show_after": "soon"}, "The no-show time must be between 1 minute and 24 hours."),
        ({"colour": "red"}, "That is not a clinic setting."),
        ({}, "Send at least one setting to change."),
        ([1, 2], "Send at least one setting to change."),
    ],
)
async def test_bad_values_are_refused_in_plain_words(node: str, redis: aioredis.Redis, body: Any, words: str) -> None:
    status, data = await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, body)
    assert (status, data["error"]["code"], data["error"]["message"]) == (400, "bad_request", words)
    assert await redis.hgetall(keys.clinic_settings("c1")) == {}


async def test_a_settings_change_is_audited(node: str, settings: Settings) -> None:
    assert (await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"no_show_after": 600}))[0] == 200
    records = [json.loads(line) for line in settings.audit_path().read_text().splitlines()]
    assert records[-1]["action"] == "settings" and records[-1]["target"] == "no_show_after=600.0"
    assert records[-1]["actor"] == {"role": "admin", "sub": "a1"} and records[-1]["clinic"] == "c1"


# -- sessions --------------------------------------------------------------------------------


async def sessions(url: str) -> list[dict[str, Any]]:
    status, data = await http("GET", f"{url}/api/clinics/c1/sessions", ADMIN)
    assert status == 200, data
    rows: list[dict[str, Any]] = data["sessions"]
    return rows


async def wait_sessions(url: str, ok: Any) -> list[dict[str, Any]]:
    for _ in range(200):
        rows = await sessions(url)
        if ok(rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(rows)


async def closed(peer: Peer, timeout: float = 5) -> None:
    """Wait until the server has closed every namespace of ``peer``."""
    for _ in range(int(timeout / 0.02)):
        if not peer.sio.namespaces:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still open: {sorted(peer.sio.namespaces)}")


async def test_sessions_list_staff_by_name_on_every_node_and_forget_them_when_they_go(
    start_node: NodeFactory, connect: Any
) -> None:
    first, second = await start_node(), await start_node()
    nurse = await connect(first, token(Role.NURSE, "c1", sub="n1", name="Nora Nurse"), namespaces=["/queue", "/chat"])
    await connect(second, token(Role.DOCTOR, "c1", sub="d1", name="Dan Doctor"), namespaces=["/queue"])
    await connect(second, token(Role.NURSE, "c2", sub="n2", name="Other Clinic"), namespaces=["/queue"])
    await create_visit(first, token(Role.NURSE, "c1"))  # a patient is not staff
    rows = await sessions(first)
    assert sorted((r["name"], r["role"], r["windows"]) for r in rows) == [("Dan Doctor", "doctor", 1), ("Nora Nurse", "nurse", 1)]
    assert {r["nodes"][0] for r in rows} and len({r["nodes"][0] for r in rows}) == 2  # two servers
    assert all(not r["mine"] and r["since"] > 0 for r in rows)
    await nurse.close()
    await wait_sessions(first, lambda rows: [r["name"] for r in rows] == ["Dan Doctor"])


async def test_a_dead_nodes_sessions_drop_out(node: str, redis: aioredis.Redis, settings: Settings) -> None:
    stale = {"sid": "s1", "jti": "j1", "sub": "n1", "name": "Gone", "role": "nurse", "since": 1.0, "node": "x",
             "exp": 9e9, "seen": 1.0}
    await redis.hset(keys.staff_sessions("c1"), "s1", json.dumps(stale))
    assert await sessions(node) == []
    assert await redis.hexists(keys.staff_sessions("c1"), "s1") == 0


@pytest.fixture
def slow_presence(settings: Settings) -> Settings:
    """Presence refreshed every 15 s: a socket closed within 5 s was closed by the sign-out."""
    return settings.with_(presence_interval=15.0, grace_period=60.0)


async def test_sign_out_disconnects_at_once_on_the_node_holding_the_socket(
    start_node: NodeFactory, connect: Any, slow_presence: Settings, settings: Settings
) -> None:
    first, second = await start_node(slow_presence), await start_node(slow_presence)
    nurse_token = token(Role.NURSE, "c1", sub="n1", name="Nora Nurse")
    nurse = await connect(second, nurse_token, namespaces=["/queue", "/chat"])
    doctor = await connect(second, token(Role.DOCTOR, "c1", sub="d1", name="Dan Doctor"), namespaces=["/queue"])
    row = next(r for r in await sessions(first) if r["name"] == "Nora Nurse")

    status, data = await http("POST", f"{first}/api/clinics/c1/sessions/{row['session']}/sign-out", ADMIN)
    assert (status, data) == (200, {"signed_out": {"name": "Nora Nurse", "role": "nurse"}})
    error = await nurse.wait_for("/queue", "error")
    assert error["code"] == "unauthorized" and "revoked" in error["message"]
    await closed(nurse)
    # The others stay; the token is dead for a new connection too.
    await doctor.ok("/queue", "get_queue")
    assert [r["name"] for r in await sessions(first)] == ["Dan Doctor"]
    status, _ = await http("GET", f"{first}/api/clinics/c1/queue", nurse_token)
    assert status == 401
    records = [json.loads(line) for line in settings.audit_path().read_text().splitlines()]
    assert (records[-1]["action"], records[-1]["target"]) == ("revoke", row["session"])
    # Signing out again: already gone.
    status, data = await http("POST", f"{first}/api/clinics/c1/sessions/{row['session']}/sign-out", ADMIN)
    assert (status, data["error"]["message"]) == (404, "That person is no longer signed in.")


async def test_an_admin_cannot_sign_themselves_out_here(node: str, connect: Any) -> None:
    await connect(node, ADMIN, namespaces=["/queue"])
    row = (await sessions(node))[0]
    assert row["mine"] is True and row["name"] == "Ada Admin"
    status, data = await http("POST", f"{node}/api/clinics/c1/sessions/{row['session']}/sign-out", ADMIN)
    assert (status, data["error"]["code"]) == (400, "bad_request")
    assert "your own session" in data["error"]["message"]


# -- audit and lock ---------------------------------------------------------------------------


async def test_audit_status_and_last_events_of_the_clinic_only(node: str, settings: Settings) -> None:
    assert (await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"no_show_after": 600}))[0] == 200
    other = token(Role.ADMIN, "c2", sub="a2")
    assert (await http("PUT", f"{node}/api/clinics/c2/settings", other, {"walk_in": True}))[0] == 200
    status, data = await http("GET", f"{node}/api/clinics/c1/audit?fresh=1", ADMIN)
    assert status == 200, data
    audit = data["audit"]
    assert audit["ok"] is True and audit["records"] == 2 and audit["problems"] == []
    assert [(e["action"], e["role"], e["visit"]) for e in audit["events"]] == [("settings", "admin", "")]
    assert set(audit["events"][0]) == {"seq", "at", "action", "outcome", "role", "visit", "code"}
    assert data["retention"] == settings.retention
    # A damaged trail says so.
    path = settings.audit_path()
    path.write_text(path.read_text().replace('"settings"', '"admit"', 1))
    status, data = await http("GET", f"{node}/api/clinics/c1/audit?fresh=1", ADMIN)
    assert data["audit"]["ok"] is False and data["audit"]["problems"]


async def test_staff_pages_get_their_lock_time(start_node: NodeFactory, settings: Settings) -> None:
    url = await start_node(settings.with_(staff_lock_after=90.0))
    for role in (Role.NURSE, Role.DOCTOR, Role.ADMIN):
        assert await http("GET", f"{url}/api/staff/config", token(role, "c1")) == (200, {"lock_after": 90.0})
    _, patient = await create_visit(url, token(Role.NURSE, "c1"))
    assert (await http("GET", f"{url}/api/staff/config", patient))[0] == 403


async def test_a_live_node_sweeps_what_a_dead_one_left(
    start_node: NodeFactory, connect: Any, redis: aioredis.Redis, settings: Settings
) -> None:
    url = await start_node(settings.with_(presence_interval=0.2, grace_period=1.0))
    stale = {"sid": "s1", "jti": "j1", "sub": "n1", "name": "Gone", "role": "nurse", "since": 1.0, "node": "x",
             "exp": 9e9, "seen": 1.0}
    await redis.hset(keys.staff_sessions("c1"), "s1", json.dumps(stale))
    await connect(url, token(Role.NURSE, "c1", sub="n2"), namespaces=["/queue"])
    for _ in range(100):
        if not await redis.hexists(keys.staff_sessions("c1"), "s1"):
            break
        await asyncio.sleep(0.05)
    assert not await redis.hexists(keys.staff_sessions("c1"), "s1")
    assert await redis.hlen(keys.staff_sessions("c1")) == 1
