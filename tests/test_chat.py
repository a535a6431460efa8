"""Triage chat: stored once per client id, acknowledged, replayed after a reconnect."""

from __future__ import annotations

import asyncio

from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import client_id


async def test_a_retried_message_is_stored_once(node: str, connect) -> None:
    visit_id, patient_token = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, patient_token)
    nurse = await connect(node, token(Role.NURSE))
    cid = client_id()
    msg = {"visit_id": visit_id, "client_id": cid, "text": "is this stored twice?"}
    first = await patient.ok("/chat", "send", msg)
    again = await patient.ok("/chat", "send", msg)
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["id"] == first["id"]
    history = (await nurse.ok("/chat", "history", {"visit_id": visit_id}))["messages"]
    assert [m["client_id"] for m in history] == [cid]
    # A later message is broadcast the same way: a rebroadcast retry would arrive before it.
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "sentinel"})
    await nurse.wait_for("/chat", "message", lambda m: m["text"] == "sentinel")
    assert [m["client_id"] for m in nurse.events[("/chat", "message")]][:-1] == [cid], "the retry is not broadcast again"


async def test_a_reconnecting_client_replays_what_it_missed_in_order(node: str, connect) -> None:
    visit_id, patient_token = await create_visit(node, token(Role.NURSE))
    nurse = await connect(node, token(Role.NURSE))
    patient = await connect(node, patient_token)
    await nurse.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "m0"})
    seen = await patient.wait_for("/chat", "message")
    await patient.close()

    missed = [f"m{i}" for i in range(1, 6)]
    for text in missed:
        await nurse.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": text})

    back = await connect(node, patient_token)
    replay = (await back.ok("/chat", "history", {"visit_id": visit_id, "after": seen["id"]}))["messages"]
    assert [m["text"] for m in replay] == missed
    ids = [m["id"] for m in replay]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    full = (await back.ok("/chat", "history", {"visit_id": visit_id}))["messages"]
    assert [m["text"] for m in full] == ["m0", *missed]


async def test_history_pages_through_a_long_chat(start_node, settings: Settings, connect) -> None:
    node = await start_node(settings.with_(event_rate=1000.0, event_burst=1000.0))
    visit_id, patient_token = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, patient_token)
    await asyncio.gather(
        *(patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": f"c{i}", "text": str(i)}) for i in range(250))
    )
    got, after = [], None
    while True:
        page = await patient.ok("/chat", "history", {"visit_id": visit_id, **({"after": after} if after else {})})
        got += page["messages"]
        if not page["more"]:
            break
        after = page["messages"][-1]["id"]
    assert len(got) == 250 and len({m["client_id"] for m in got}) == 250


async def test_staff_of_another_clinic_do_not_receive_the_chat(node: str, connect) -> None:
    visit_id, patient_token = await create_visit(node, token(Role.NURSE, "c1"))
    other = await connect(node, token(Role.NURSE, "c2"))
    own = await connect(node, token(Role.NURSE, "c1"))
    patient = await connect(node, patient_token)
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": "private"})
    await own.wait_for("/chat", "message")
    # A message of the other clinic, sent after: "private", had it been sent there, would have arrived first.
    other_visit, other_patient_token = await create_visit(node, token(Role.NURSE, "c2"))
    other_patient = await connect(node, other_patient_token)
    await other_patient.ok("/chat", "send", {"visit_id": other_visit, "client_id": client_id(), "text": "sentinel"})
    await other.wait_for("/chat", "message", lambda m: m["text"] == "sentinel")
    assert [m["text"] for m in other.events[("/chat", "message")]] == ["sentinel"]
