"""A node killed with SIGKILL under traffic: clients move to another node and
nobody loses their place or an acknowledged chat message."""

from __future__ import annotations

import asyncio
import contextlib

import socketio

from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import client_id

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}


async def test_sigkill_a_node_under_traffic(node_processes, connect) -> None:
    a = await node_processes(TELEMED_GRACE="30s").ready()
    b = await node_processes(TELEMED_GRACE="30s").ready()
    nurse = await connect(b.url, token(Role.NURSE))
    patients = []
    for i in range(6):
        vid, ptok = await create_visit(b.url, token(Role.NURSE))
        p = await connect(a.url, ptok)
        await p.ok("/queue", "check_in", CHECK_IN)
        if i % 2:
            await nurse.ok("/queue", "triage", {"visit_id": vid, "acuity": 2})
        patients.append((vid, ptok, p))
    order_before = [v["visit_id"] for v in (await nurse.ok("/queue", "get_queue"))["queue"]]

    # Chat traffic from every patient while node A dies.
    acked: dict[str, set[str]] = {vid: set() for vid, _, _ in patients}
    unacked: dict[str, list[tuple[str, str]]] = {vid: [] for vid, _, _ in patients}

    async def chatter(vid: str, peer) -> None:
        for n in range(1000):
            cid = client_id()
            msg = {"visit_id": vid, "client_id": cid, "text": f"{vid[:6]}-{n}"}
            try:
                reply = await peer.call("/chat", "send", msg, timeout=1)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError):
                unacked[vid].append((cid, msg["text"]))
                return
            if reply["ok"]:
                acked[vid].add(cid)
            await asyncio.sleep(0.01)

    senders = [asyncio.create_task(chatter(vid, p)) for vid, _, p in patients]
    await asyncio.sleep(0.5)
    a.kill()
    await asyncio.gather(*senders)
    assert all(acked.values()), "traffic flowed before the kill"

    # The patients reconnect to node B and retry what was not acknowledged.
    for vid, ptok, old in patients:
        with contextlib.suppress(Exception):
            await old.close()
        p = await connect(b.url, ptok)
        assert (await p.wait_for("/queue", "visit"))["state"] in {"waiting", "in_triage"}
        for cid, text in unacked[vid]:
            reply = await p.ok("/chat", "send", {"visit_id": vid, "client_id": cid, "text": text})
            acked[vid].add(cid)
            assert reply["id"]

    order_after = [v["visit_id"] for v in (await nurse.ok("/queue", "get_queue"))["queue"]]
    assert order_after == order_before, "everyone still queued, in the same order"
    for vid, _, _ in patients:
        stored: list[str] = []
        after = None
        while True:
            page = await nurse.ok("/chat", "history", {"visit_id": vid, **({"after": after} if after else {})})
            stored += [m["client_id"] for m in page["messages"]]
            if not page["more"]:
                break
            after = page["messages"][-1]["id"]
        assert len(stored) == len(set(stored)), "no message stored twice"
        assert acked[vid] <= set(stored), "every acknowledged message is there"
