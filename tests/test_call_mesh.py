"""A visit's call as a full mesh (issue 13): the patient, the doctor and the
guests let in, each pair signalled through ``/call`` with ``to`` and ``from``
(signaling/call_parties.py). Real Redis, real nodes (several: every party on
its own), real Socket.IO clients; a SIGKILLed node for presence."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from telemed.settings import Settings
from tests.authz_world import CANDIDATE, Connect
from tests.conftest import NodeFactory
from tests.peer import Peer
from tests.test_guests import Visit

CALL = ["/call"]


@dataclass
class Mesh:
    """A visit in progress: its patient, doctor and an admitted interpreter, each
    with a call socket on a node of their own."""

    visit: Visit
    gid: str
    """The interpreter's party (their guest id)."""
    guest_token: str
    guest_page: Peer
    patient: Peer
    doctor: Peer
    interpreter: Peer
    nodes: tuple[str, str, str]

    @property
    def id(self) -> str:
        return self.visit.id


async def mesh(start_node: NodeFactory, connect: Connect, settings: Settings | None = None) -> Mesh:
    a, b, c = [await start_node(settings) for _ in range(3)]
    visit = await Visit(a, connect).start()
    page, gid, tok = await visit.guest()
    patient = await connect(a, visit.patient.token, namespaces=CALL)
    doctor = await connect(b, visit.doctor.token, namespaces=CALL)
    interpreter = await connect(c, tok, namespaces=CALL)
    return Mesh(visit, gid, tok, page, patient, doctor, interpreter, (a, b, c))


def call_events(peer: Peer, event: str) -> list[Any]:
    return list(peer.events[("/call", event)])


async def test_signaling_with_to_reaches_only_that_party_from_the_sender(start_node: NodeFactory, connect: Connect) -> None:
    m = await mesh(start_node, connect)
    v, gid = m.id, m.gid
    # The doctor offers to the interpreter (the earlier party of that pair)...
    await m.doctor.ok("/call", "offer", {"visit_id": v, "to": gid, "sdp": "v=0 doctor-interpreter", "call_id": "d-i"})
    assert await m.interpreter.wait_for("/call", "offer") == {
        "visit_id": v, "from": "doctor", "sdp": "v=0 doctor-interpreter", "restart": False, "call_id": "d-i"}
    await m.interpreter.ok("/call", "answer", {"visit_id": v, "to": "doctor", "sdp": "v=0 interpreter-answer", "call_id": "d-i"})
    assert await m.doctor.wait_for("/call", "answer") == {
        "visit_id": v, "from": gid, "sdp": "v=0 interpreter-answer", "call_id": "d-i"}
    await m.interpreter.ok("/call", "candidate", {"visit_id": v, "to": "doctor", "candidate": CANDIDATE, "call_id": "d-i"})
    assert await m.doctor.wait_for("/call", "candidate") == {
        "visit_id": v, "from": gid, "candidate": CANDIDATE, "call_id": "d-i"}
    # ...and the interpreter to the patient (guests come before the patient).
    await m.interpreter.ok("/call", "offer", {"visit_id": v, "to": "patient", "sdp": "v=0 interpreter-patient", "call_id": "i-p"})
    assert (await m.patient.wait_for("/call", "offer"))["from"] == gid
    await m.patient.ok("/call", "answer", {"visit_id": v, "to": gid, "sdp": "v=0 patient-answer", "call_id": "i-p"})
    assert (await m.interpreter.wait_for("/call", "answer", lambda a: a["call_id"] == "i-p"))["from"] == "patient"
    await m.patient.ok("/call", "candidate", {"visit_id": v, "to": gid, "candidate": None, "call_id": "i-p"})
    assert await m.interpreter.wait_for("/call", "candidate") == {
        "visit_id": v, "from": "patient", "candidate": None, "call_id": "i-p"}
    await m.patient.ok("/call", "ready", {"visit_id": v, "to": gid})
    assert await m.interpreter.wait_for("/call", "ready") == {"visit_id": v, "from": "patient"}

    # Sentinels, sent after everything above: the patient <-> doctor pair without `to`, as before guests.
    await m.doctor.ok("/call", "offer", {"visit_id": v, "sdp": "v=0 sentinel"})
    await m.patient.wait_for("/call", "offer", lambda o: o["sdp"] == "v=0 sentinel")
    await m.patient.ok("/call", "hangup", {"visit_id": v})
    assert await m.doctor.wait_for("/call", "hangup") == {"visit_id": v, "from": "patient"}
    await m.patient.ok("/call", "hangup", {"visit_id": v, "to": gid})
    await m.interpreter.wait_for("/call", "hangup")
    # Each got what was addressed to them, and nothing else.
    assert [(o["from"], o["sdp"]) for o in call_events(m.patient, "offer")] == [
        (gid, "v=0 interpreter-patient"), ("doctor", "v=0 sentinel")]
    assert [o["from"] for o in call_events(m.interpreter, "offer")] == ["doctor"]
    assert call_events(m.doctor, "offer") == [] and call_events(m.doctor, "ready") == []
    assert [a["from"] for a in call_events(m.doctor, "answer")] == [gid]
    assert call_events(m.patient, "candidate") == [] and call_events(m.patient, "answer") == []
    assert call_events(m.interpreter, "hangup") == [{"visit_id": v, "from": "patient"}]


async def test_a_guest_not_let_in_has_no_call_until_admitted(start_node: NodeFactory, connect: Connect) -> None:
    a, b = await start_node(), await start_node()
    visit = await Visit(a, connect).start()
    _, gid, tok = await visit.guest({"kind": "caregiver", "name": "Luis Díaz"}, admit=False)
    lobby = await connect(b, tok, namespaces=CALL)  # the lobby may open the call page, and wait
    doctor = await connect(a, visit.doctor.token, namespaces=CALL)
    patient = await connect(b, visit.patient.token, namespaces=CALL)
    for event, body in (("offer", {"to": "patient", "sdp": "v=0 early"}), ("call_peers", {}), ("leave_call", {}),
                        ("call_status", {"video": "on"}), ("media_started", {"audio_ms": 500})):
        reply = await lobby.call("/call", event, {"visit_id": visit.id, **body})
        assert reply["error"] == {"code": "forbidden", "message": "the doctor has not let you in yet",
                                  "details": {"reason": "guest_not_admitted"}}, (event, reply)
    reply = await doctor.call("/call", "offer", {"visit_id": visit.id, "to": gid, "sdp": "v=0 early"})
    assert reply["error"]["code"] == "conflict" and reply["error"]["message"] == "Luis Díaz is not in the call"

    await visit.act(gid, "admit")  # with their call page open: the others hear they joined
    for peer in (doctor, patient):
        assert await peer.wait_for("/call", "peer", lambda e: e["from"] == gid) == {
            "visit_id": visit.id, "from": gid, "state": "joined"}
    await doctor.ok("/call", "offer", {"visit_id": visit.id, "to": gid, "sdp": "v=0 now"})
    assert (await lobby.wait_for("/call", "offer"))["sdp"] == "v=0 now"
    assert [o["sdp"] for o in call_events(patient, "offer")] == []  # the early offer never went anywhere


async def test_to_must_be_another_party_of_the_call(start_node: NodeFactory, connect: Connect) -> None:
    m = await mesh(start_node, connect)
    v = m.id
    other = await Visit(m.nodes[0], connect).start(admitted=False)  # another visit of the clinic
    _, other_gid, _ = await other.guest({"kind": "caregiver", "name": "Someone Else"}, admit=False)
    cases = [
        (m.doctor, {"to": "doctor"}, "conflict", "you cannot send this to yourself"),
        (m.doctor, {"to": "no-such-party"}, "conflict", "that person is not in the call"),
        (m.doctor, {"to": other_gid}, "conflict", "that person is not in the call"),  # a guest of another visit
        (m.interpreter, {}, "bad_request", "to: say which party of the call this is for"),
        (m.interpreter, {"to": "a b"}, "bad_request", "to: String should match pattern"),
        (m.patient, {"to": 7}, "bad_request", "to: Input should be a valid string"),
    ]
    for peer, body, code, words in cases:
        reply = await peer.call("/call", "offer", {"visit_id": v, "sdp": "v=0 refused", **body})
        assert reply["ok"] is False and reply["error"]["code"] == code and words in reply["error"]["message"], (body, reply)
    await m.guest_page.ok("/guest", "leave_visit", {"visit_id": v})  # out of the visit: out of the call
    await m.doctor.wait_for("/call", "peer", lambda e: e["from"] == m.gid and e["state"] == "left")
    reply = await m.doctor.call("/call", "candidate", {"visit_id": v, "to": m.gid, "candidate": None})
    assert reply["error"]["message"] == "Marta Ruiz is not in the call"
    # The sentinel: a good offer after the refused ones is the first anyone receives.
    await m.doctor.ok("/call", "offer", {"visit_id": v, "sdp": "v=0 sentinel"})
    await m.patient.wait_for("/call", "offer")
    assert [o["sdp"] for o in call_events(m.patient, "offer")] == ["v=0 sentinel"]
    assert call_events(m.interpreter, "offer") == [] and call_events(m.doctor, "offer") == []


async def test_call_peers_names_everyone_else_and_who_is_there(start_node: NodeFactory, connect: Connect) -> None:
    m = await mesh(start_node, connect)
    await m.visit.guest({"kind": "caregiver", "name": "Luis Díaz"}, admit=False)  # in the lobby: in no call
    doctor = {"party": "doctor", "kind": "doctor", "name": "Dr Ana Lee", "language": None, "online": True}
    interpreter = {"party": m.gid, "kind": "interpreter", "name": "Marta Ruiz", "language": "es", "online": True}
    patient = {"party": "patient", "kind": "patient", "name": "Rosa Díaz", "language": "es", "online": True}
    got = await m.doctor.ok("/call", "call_peers", {"visit_id": m.id})
    assert got == {"ok": True, "visit_id": m.id, "self": "doctor", "peers": [interpreter, patient]}
    got = await m.interpreter.ok("/call", "call_peers", {"visit_id": m.id})
    assert (got["self"], got["peers"]) == (m.gid, [doctor, patient])
    got = await m.patient.ok("/call", "call_peers", {"visit_id": m.id})
    assert (got["self"], got["peers"]) == ("patient", [doctor, interpreter])

    await m.patient.close()
    await m.doctor.wait_for("/call", "peer", lambda e: e == {"visit_id": m.id, "from": "patient", "state": "left"})
    got = await m.interpreter.ok("/call", "call_peers", {"visit_id": m.id})
    assert got["peers"] == [doctor, {**patient, "online": False}]


async def test_peers_hear_who_comes_leaves_and_is_removed(start_node: NodeFactory, connect: Connect) -> None:
    m = await mesh(start_node, connect)
    v, gid = m.id, m.gid

    def peer_log(peer: Peer, party: str) -> list[str]:
        return [e["state"] for e in call_events(peer, "peer") if e["from"] == party and e["visit_id"] == v]

    # The interpreter's call page closes and opens again (on another node).
    await m.interpreter.close()
    for p in (m.doctor, m.patient):
        await p.wait_for("/call", "peer", lambda e: e == {"visit_id": v, "from": gid, "state": "left"})
    interpreter = await connect(m.nodes[0], m.guest_token, namespaces=CALL)
    for p in (m.doctor, m.patient):
        await p.wait_for("/call", "peer", lambda e: e == {"visit_id": v, "from": gid, "state": "joined"})

    # The patient leaves the call, not the visit; a reload meanwhile does not bring them back.
    await m.patient.ok("/call", "leave_call", {"visit_id": v})
    for p in (m.doctor, interpreter):
        await p.wait_for("/call", "peer", lambda e: e == {"visit_id": v, "from": "patient", "state": "left"})
    got = await m.doctor.ok("/call", "call_peers", {"visit_id": v})
    assert {p["party"]: p["online"] for p in got["peers"]} == {gid: True, "patient": False}
    reloaded = await connect(m.nodes[1], m.visit.patient.token, namespaces=CALL)
    await m.patient.close()
    await reloaded.ok("/call", "join_call", {"visit_id": v})
    for p in (m.doctor, interpreter):
        await p.wait_for("/call", "peer", lambda e: e == {"visit_id": v, "from": "patient", "state": "joined"})
    # Neither the reload nor the old page's close was told (both came before the join, on the same path).
    assert peer_log(m.doctor, "patient") == peer_log(interpreter, "patient") == ["left", "joined"]
    got = await m.doctor.ok("/call", "call_peers", {"visit_id": v})
    assert {p["party"]: p["online"] for p in got["peers"]} == {gid: True, "patient": True}
    refused = await m.doctor.call("/call", "leave_call", {"visit_id": v})
    assert refused["error"]["code"] == "forbidden"  # the doctor leaves by ending the visit

    # The doctor removes the interpreter: the others hear they left; their call socket is closed.
    await m.visit.act(gid, "remove")
    # (the doctor's call page opened before the interpreter's: it heard them join first)
    await m.doctor.wait_for("/call", "peer", lambda e: peer_log(m.doctor, gid) == ["joined", "left", "joined", "left"])
    await reloaded.wait_for("/call", "peer", lambda e: peer_log(reloaded, gid) == ["left"])
    await interpreter.wait_for("/call", "error", lambda e: e["code"] == "unauthorized")
    got = await m.doctor.ok("/call", "call_peers", {"visit_id": v})
    assert [p["party"] for p in got["peers"]] == ["patient"]


async def test_call_status_with_audio_reaches_every_other_party(start_node: NodeFactory, connect: Connect) -> None:
    m = await mesh(start_node, connect)
    v, gid = m.id, m.gid
    await m.interpreter.ok("/call", "call_status", {"visit_id": v, "video": "camera_off", "audio": "muted"})
    for p in (m.doctor, m.patient):
        assert await p.wait_for("/call", "call_status") == {
            "visit_id": v, "from": gid, "level": None, "video": "camera_off", "audio": "muted"}
    # To one party only.
    await m.doctor.ok("/call", "call_status", {"visit_id": v, "to": gid, "level": "good", "video": "on", "audio": "on"})
    assert (await m.interpreter.wait_for("/call", "call_status"))["audio"] == "on"
    await m.doctor.ok("/call", "call_status", {"visit_id": v, "to": "patient", "level": "fair", "video": "on"})
    await m.patient.wait_for("/call", "call_status", lambda s: s["from"] == "doctor")
    assert [s["level"] for s in call_events(m.patient, "call_status") if s["from"] == "doctor"] == ["fair"]
    assert call_events(m.interpreter, "call_status") == [
        {"visit_id": v, "from": "doctor", "level": "good", "video": "on", "audio": "on"}]
    reply = await m.patient.call("/call", "call_status", {"visit_id": v, "video": "on", "audio": "loud"})
    assert reply["error"]["code"] == "bad_request" and "audio: Input should be 'on' or 'muted'" in reply["error"]["message"]


async def test_the_end_of_the_visit_reaches_guest_pages_at_once(start_node: NodeFactory, connect: Connect, settings: Settings) -> None:
    # Sockets of an ended visit's links are closed at each presence round; a minute apart here
    # (after the one at the node's start), while every wait below gives up after 5 s: what
    # arrives was pushed at the end.
    slow = settings.with_(presence_interval=60.0, grace_period=120.0, on_duty_window=120.0, route_return=300.0)
    a, b = await start_node(slow), await start_node(slow)
    visit = await Visit(a, connect).start()
    _, _, in_tok = await visit.guest()
    _, _, lobby_tok = await visit.guest({"kind": "caregiver", "name": "Luis Díaz"}, admit=False)
    pages = [await connect(b, tok, namespaces=["/guest"]) for tok in (in_tok, lobby_tok)]
    for page in pages:
        await page.ok("/guest", "get_guest", {"visit_id": visit.id})  # following their visit
    await visit.doctor.ok("/queue", "end", {"visit_id": visit.id})
    for page in pages:
        ended = await page.wait_for("/guest", "error", lambda e: e["code"] == "unauthorized")
        assert ended == {"event": "", "code": "unauthorized", "message": "this visit has ended"}


async def test_a_killed_node_s_call_sockets_stop_counting(start_node: NodeFactory, connect: Connect, settings: Settings,
                                              node_processes: Any) -> None:
    """A node SIGKILLed with a party's call socket: that party is no longer online
    once its entry goes stale (three presence intervals), with no disconnect seen."""
    fast = settings.with_(presence_interval=0.5)
    a = await start_node(fast)
    doomed = await node_processes(TELEMED_PRESENCE_INTERVAL="0.5s").ready(timeout=60)  # a loaded machine starts slowly
    visit = await Visit(a, connect).start()
    await connect(doomed.url, visit.patient.token, namespaces=CALL)
    doctor = await connect(a, visit.doctor.token, namespaces=CALL)

    async def patient_online() -> bool:
        got = await doctor.ok("/call", "call_peers", {"visit_id": visit.id})
        return bool(got["peers"][0]["online"])

    assert await patient_online()
    doomed.kill()
    deadline = time.monotonic() + 15
    while await patient_online():
        assert time.monotonic() < deadline, "the dead node's socket still counts"
        await asyncio.sleep(0.2)
