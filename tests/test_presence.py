"""The grace period: a patient whose connection drops keeps their place for a while."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

from telemed import keys
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import ORIGIN, create_visit, token
from tests.peer import Peer

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}


async def queue_ids(peer) -> list[str]:
    return [v["visit_id"] for v in (await peer.ok("/queue", "get_queue"))["queue"]]


async def test_a_patient_back_within_the_grace_period_keeps_their_place(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(grace_period=1.5, presence_interval=0.2))
    nurse = await connect(node, token(Role.NURSE))
    first, t1 = await create_visit(node, token(Role.NURSE))
    second, t2 = await create_visit(node, token(Role.NURSE))
    p1 = await connect(node, t1)
    await p1.ok("/queue", "check_in", CHECK_IN)
    p2 = await connect(node, t2)
    await p2.ok("/queue", "check_in", CHECK_IN)
    await p1.close()
    await asyncio.sleep(0.8)
    back = await connect(node, t1)
    pos = await back.wait_for("/queue", "position")
    assert pos["position"] == 1, "the place is kept and pushed again on reconnect"
    # Beyond the grace period, but connected all along. The sweep that ends a third
    # patient, gone after the first came back, would have ended the first before it
    # (absent patients are ended longest-gone first).
    third, t3 = await create_visit(node, token(Role.NURSE))
    p3 = await connect(node, t3)
    await p3.ok("/queue", "check_in", CHECK_IN)
    await p3.close()
    await nurse.wait_for("/queue", "visit", lambda v: v["visit_id"] == third and v["state"] == "ended")
    assert await queue_ids(nurse) == [first, second]
    assert not [v for v in nurse.events[("/queue", "visit")] if v["visit_id"] != third and v["state"] == "ended"]


async def test_a_patient_gone_beyond_the_grace_period_loses_their_place(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(grace_period=0.6, presence_interval=0.1))
    nurse = await connect(node, token(Role.NURSE))
    gone, t1 = await create_visit(node, token(Role.NURSE))
    stays, t2 = await create_visit(node, token(Role.NURSE))
    p1 = await connect(node, t1)
    await p1.ok("/queue", "check_in", CHECK_IN)
    p2 = await connect(node, t2)
    await p2.ok("/queue", "check_in", CHECK_IN)
    assert (await p2.wait_for("/queue", "position"))["position"] == 2
    await p1.close()
    moved = await p2.wait_for("/queue", "position", lambda p: p["position"] == 1, timeout=5)
    assert moved["visit_id"] == stays
    assert await queue_ids(nurse) == [stays]
    ended = await nurse.wait_for("/queue", "visit", lambda v: v["visit_id"] == gone and v["state"] == "ended")
    assert ended["end_reason"] == "absent"


async def test_sockets_of_revoked_tokens_and_ended_visits_are_closed(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(grace_period=1.0, presence_interval=0.2))
    nurse_token = token(Role.NURSE)
    nurse = await connect(node, nurse_token)
    _, ptok = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, ptok)
    await patient.ok("/queue", "check_in", CHECK_IN)
    visit_id = (await patient.wait_for("/queue", "visit"))["visit_id"]
    admin = await connect(node, token(Role.ADMIN))
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{node}/api/tokens/revoke", json={"token": nurse_token},
                            headers={"Authorization": f"Bearer {token(Role.ADMIN)}"})
        assert r.status == 200
    await admin.ok("/queue", "end", {"visit_id": visit_id})
    for _ in range(50):
        if not nurse.sio.connected and not patient.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not nurse.sio.connected and not patient.sio.connected
    assert (await nurse.wait_for("/queue", "error"))["message"] == "token revoked"
    assert admin.sio.connected


async def test_a_socket_open_for_long_still_counts_against_its_tokens_limit(
    start_node, settings: Settings, connect, redis
) -> None:
    interval = 0.5
    node = await start_node(settings.with_(connections_per_token=1, presence_interval=interval))
    tok = token(Role.NURSE)
    await connect(node, tok, namespaces=["/queue"])
    [key] = await redis.keys(keys.connections("*", "/queue"))
    [(sid, opened)] = await redis.zrange(key, 0, -1, withscores=True)
    # An entry not refreshed for three intervals stops counting (its node died):
    # wait until the heartbeat refreshed it past that.
    while await redis.zscore(key, sid) < opened + 3 * interval * 1000 + 100:
        await asyncio.sleep(0.05)
    again = Peer(node, tok, origin=ORIGIN, namespaces=["/queue"])
    errors: list[dict[str, dict[str, str]]] = []
    again.sio.on("connect_error", errors.append, namespace="/queue")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect()
    assert errors and errors[0]["data"]["code"] == "rate_limited"
