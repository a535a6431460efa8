"""The authorisation table's machinery, shared by tests/test_authz*.py and
tests/test_guests.py: the actors (roles and guest kinds), the world of visits
each cell builds on a real node and Redis, every event's payload and what an
allowed one must have done, and one cell's run (:func:`check_cell`).

The guest columns (telemed/guests.py) are guests of the acting patient's visit
("own"), seated before the visit moves: an interpreter with a link who joined
directly (in the visit), a caregiver with a link waiting in the lobby, and a
clinician guest (doctor d4 of the clinic, with their staff token, in the visit).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio

from telemed import keys
from telemed.tokens import Role
from tests.conftest import ORIGIN, create_visit, token
from tests.peer import Peer, client_id

Connect = Callable[..., Awaitable[Peer]]
# -- helpers ----------------------------------------------------------------------------

CHECK_IN = {"reason": "sore throat", "consent_visit": True, "consent_recording": True}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
MISSING_VISIT = "no-such-visit-0000"
GUEST_CONSENT = {"consent_visit": True, "consent_recording": True}


class GuestActor(enum.Enum):
    """The guest columns of the table (see the module's docstring)."""

    INTERPRETER = "interpreter"
    LOBBY = "lobby"
    CLINICIAN = "clinician"


Actor = Role | GuestActor


def role_of(actor: Actor) -> Role:
    """The role of an actor's token (a clinician guest's is their staff token)."""
    if isinstance(actor, Role):
        return actor
    return Role.DOCTOR if actor is GuestActor.CLINICIAN else Role.GUEST


def sub_of(actor: Actor) -> str:
    return "d4" if actor is GuestActor.CLINICIAN else {Role.DOCTOR: "d1", Role.NURSE: "n1", Role.ADMIN: "a1"}.get(role_of(actor), "")

#: Clinic of each target visit, and who admits it when it is brought to in_visit:
#: "own" is the acting patient's visit (admitted by the acting doctor d1), "same"
#: another visit of the same clinic (admitted by another doctor, d2), "other" a
#: visit of another clinic.
VISIT_CLINIC = {"own": "c1", "same": "c1", "other": "c2"}
ADMITTER = {"own": ("c1", "d1"), "same": ("c1", "d2"), "other": ("c2", "dx")}


def staff_token(role: Role, clinic: str = "c1") -> str:
    sub = {Role.NURSE: "n1", Role.DOCTOR: "d1", Role.ADMIN: "a1"}[role]
    return token(role, clinic, sub=sub)


async def refusal(url: str, auth: Any, namespaces: list[str], origin: str | None = ORIGIN) -> dict[str, Any]:
    """Try to connect; assert that it fails and return the ``connect_error``
    payload received for each namespace."""
    sio = socketio.AsyncClient(reconnection=False)
    errors: dict[str, Any] = {}
    sio.on("connect_error", lambda ns, *data: errors.setdefault(ns, data[0] if data else None), namespace="*")
    accepted = False
    try:
        await sio.connect(
            url,
            auth=auth,
            namespaces=namespaces,
            transports=["websocket"],
            headers={"Origin": origin} if origin else {},
            wait_timeout=5,
        )
        accepted = True
    except socketio.exceptions.ConnectionError:
        pass
    finally:
        await sio.disconnect()
        http = sio.eio.http  # left open by the client when the handshake fails
        if http is not None and not http.closed:
            await http.close()
    assert not accepted, f"the connection was accepted on {namespaces}"
    return errors


async def assert_refused_by_namespace(url: str, auth: Any, namespaces: list[str], code: str) -> None:
    """Refused by each namespace's connect handler (not by the transport), with a
    typed reason: ``connect_error`` carries ``{message, data: {code, message}}``."""
    errors = await refusal(url, auth, namespaces)
    assert sorted(errors) == sorted(namespaces), errors
    for error in errors.values():
        assert isinstance(error, dict) and isinstance(error.get("data"), dict), errors
        assert error["data"]["code"] == code and isinstance(error["message"], str), errors


async def http(method: str, url: str, tok: str | None = None, json_body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {tok}"} if tok is not None else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=json_body, headers=headers) as r:
            return r.status, await r.json()


async def snapshot(redis: aioredis.Redis, visit_id: str | None) -> dict[str, Any]:
    """Everything an event could change: the visit, its chat and history, the queues."""
    out: dict[str, Any] = {
        "queues": [await redis.zrange(keys.queue(c), 0, -1, withscores=True) for c in ("c1", "c2")],
        "claims": [await redis.hgetall(keys.triage_claims(c)) for c in ("c1", "c2")],
    }
    if visit_id is not None:
        out["visit"] = await redis.hgetall(keys.visit(visit_id))
        out["chat"] = await redis.xlen(keys.chat(visit_id))
        out["history"] = await redis.lrange(keys.visit_history(visit_id), 0, -1)
        out["call_quality"] = await redis.hgetall(keys.call_quality(visit_id))
        out["guests"] = {k: await redis.hgetall(k) for k in sorted(await redis.keys(keys.guest(visit_id, "*")))}
        out["call_left"] = await redis.smembers(keys.call_left(visit_id))
    return out


class World:
    """The visits of one table cell, created and brought to a state on demand."""

    def __init__(self, url: str, connect: Connect) -> None:
        self.url = url
        self.connect = connect
        self.visits: dict[str, tuple[str, str]] = {}
        self._patients: dict[str, Peer] = {}
        self._doctors: dict[str, Peer] = {}
        self.guest_tokens: dict[GuestActor, str] = {}
        self.guest_ids: dict[GuestActor, str] = {}

    async def visit(self, key: str) -> str:
        if key not in self.visits:
            clinic = VISIT_CLINIC[key]
            self.visits[key] = await create_visit(
                self.url, token(Role.NURSE, clinic), reason=f"{key} reason", patient_name=f"Patient {key}"
            )
        return self.visits[key][0]

    def patient_token(self, key: str = "own") -> str:
        return self.visits[key][1]

    async def patient(self, key: str) -> Peer:
        if key not in self._patients:
            await self.visit(key)
            self._patients[key] = await self.connect(self.url, self.patient_token(key))
        return self._patients[key]

    async def doctor(self, key: str) -> Peer:
        """The doctor who admits visit ``key``."""
        if key not in self._doctors:
            clinic, sub = ADMITTER[key]
            self._doctors[key] = await self.connect(
                self.url, token(Role.DOCTOR, clinic, sub=sub), namespaces=["/queue", "/call"]
            )
        return self._doctors[key]

    async def bring(self, key: str, state: str) -> str:
        visit_id = await self.visit(key)
        if state == "created":
            return visit_id
        await (await self.patient(key)).ok("/queue", "check_in", CHECK_IN)
        if state == "waiting":
            return visit_id
        doctor = await self.doctor(key)
        await doctor.ok("/queue", "admit", {"visit_id": visit_id})
        if state == "in_visit":
            return visit_id
        assert state == "ended", state
        await doctor.ok("/queue", "end", {"visit_id": visit_id})
        return visit_id

    async def seat_guests(self) -> None:
        """Invite the guest columns into the own visit (by nurse n1) and let them join."""
        visit_id = await self.visit("own")
        # d4 signs in once, so the clinic's roster knows them (a clinician guest is chosen from it).
        await self.connect(self.url, token(Role.DOCTOR, "c1", sub="d4", name="Dr Guest"), namespaces=["/queue"])
        bodies = {
            GuestActor.INTERPRETER: {"kind": "interpreter", "name": "Interpreter", "language": "es", "direct_join": True},
            GuestActor.LOBBY: {"kind": "caregiver", "name": "Caregiver"},
            GuestActor.CLINICIAN: {"kind": "clinician", "staff_sub": "d4", "direct_join": True},
        }
        for actor, body in bodies.items():
            status, data = await http("POST", f"{self.url}/api/visits/{visit_id}/guests", staff_token(Role.NURSE), body)
            assert status == 201, data
            tok = data["guest_link"].split("#t=", 1)[1] if data["guest_link"] else token(Role.DOCTOR, "c1", sub="d4")
            self.guest_tokens[actor] = tok
            self.guest_ids[actor] = data["guest"]["guest_id"]
            peer = await self.connect(self.url, tok, namespaces=["/guest"])
            await peer.ok("/guest", "join", {"visit_id": visit_id, **GUEST_CONSENT})
            await peer.close()

    def actor_token(self, actor: Actor) -> str:
        if isinstance(actor, GuestActor):
            return self.guest_tokens[actor]
        return self.patient_token("own") if actor is Role.PATIENT else staff_token(actor)

    def party(self, actor: Actor) -> str:
        """The actor's party in the own visit's call (signaling/call_parties.py)."""
        if isinstance(actor, GuestActor):
            return self.guest_ids[actor]
        return actor.value


# -- the socket table ---------------------------------------------------------------------

OK, FORBIDDEN, CONFLICT, NOT_FOUND = "ok", "forbidden", "conflict", "not_found"
#: The namespace refuses the connection itself (role not admitted, or dead token).
REFUSED = "refused"

NAMESPACE = {
    **dict.fromkeys(["check_in", "leave", "get_queue", "get_visit", "triage", "route", "admit", "end"], "/queue"),
    **dict.fromkeys(["get_roster", "claim", "release"], "/queue"),
    **dict.fromkeys(["send", "history"], "/chat"),
    **dict.fromkeys(["offer", "answer", "candidate", "hangup", "ready", "get_ice_servers"], "/call"),
    **dict.fromkeys(["media_started", "call_quality", "call_status", "call_peers", "leave_call", "join_call"], "/call"),
    **dict.fromkeys(["leg_offer", "snapshot", "status", "caption_language", "captions"], "/media"),
    **dict.fromkeys(["get_guest", "join", "leave_visit", "participants"], "/guest"),
}

ROLES = (Role.PATIENT, Role.NURSE, Role.DOCTOR, Role.ADMIN)
#: The table's columns: the roles, then the guests.
ACTORS: tuple[Actor, ...] = (*ROLES, *GuestActor)

#: Who may open each namespace at all.
NAMESPACE_ROLES = {
    "/queue": {Role.PATIENT, Role.NURSE, Role.DOCTOR, Role.ADMIN},
    "/chat": {Role.PATIENT, Role.NURSE, Role.DOCTOR},
    "/call": {Role.PATIENT, Role.DOCTOR, Role.GUEST, Role.NURSE},  # a nurse only as a clinician guest
    "/media": {Role.PATIENT, Role.DOCTOR},
    "/guest": {Role.NURSE, Role.DOCTOR, Role.GUEST},
}

# Targets: "own" the acting patient's visit (for a doctor, the visit they admitted
# once in_visit), "same" another visit of the actor's clinic (admitted by another
# doctor once in_visit), "other" a visit of another clinic, "missing" a visit id
# that does not exist, "next" admit without a visit id, "-" the event names no
# visit (it acts on the patient's own visit / the staff member's clinic).
# State: the state the target (or, for "-"/"next", the patient's own visit) is in.


#: Call signaling a guest sends names its party: the table's guests send to the patient.
TO_PATIENT = {"offer", "answer", "candidate", "hangup", "ready"}


def payload(event: str, visit_id: str | None, actor: Actor | None = None) -> dict[str, Any]:
    ref = {} if visit_id is None else {"visit_id": visit_id}
    if isinstance(actor, GuestActor) and event in TO_PATIENT:
        ref["to"] = "patient"
    return {
        "check_in": CHECK_IN,
        "leave": {},
        "get_queue": {},
        "get_roster": {},
        "claim": ref,
        "release": ref,
        "get_visit": ref,
        "triage": {**ref, "acuity": 2},
        "route": {**ref, "doctor": "d1"},
        "admit": ref,
        "end": ref,
        "send": {**ref, "client_id": client_id(), "text": "hello from the table"},
        "history": ref,
        "offer": {**ref, "sdp": "v=0 table offer"},
        "answer": {**ref, "sdp": "v=0 table answer"},
        "candidate": {**ref, "candidate": CANDIDATE},
        "hangup": ref,
        "call_status": {**ref, "level": "good", "video": "on"},
        "ready": ref,
        "call_peers": ref,
        "leave_call": ref,
        "join_call": ref,
        "get_ice_servers": {},
        "media_started": {**ref, "audio_ms": 640},
        "call_quality": {**ref, "relay": True},
        "leg_offer": {**ref, "sdp": "v=0 table leg"},
        "snapshot": ref,
        "get_guest": ref,
        "join": {**ref, **GUEST_CONSENT},
        "leave_visit": ref,
        "participants": ref,
        "status": ref,
        "caption_language": {**ref, "language": "ko"},
        "captions": {**ref, "on": True},
    }[event]



async def check_effect(
    world: World, actor: Actor, event: str, target: str, visit_id: str | None, reply: dict[str, Any], redis: aioredis.Redis
) -> None:
    """What an allowed event must have done."""
    own = world.visits["own"][0]
    role = role_of(actor)
    if event == "check_in":
        assert reply["visit"]["visit_id"] == own and reply["visit"]["state"] == "waiting"
    elif event == "leave":
        assert reply["visit"]["state"] == "ended" and reply["visit"]["end_reason"] == "left"
    elif event == "get_queue":
        ids = [v["visit_id"] for v in reply["queue"]]
        assert reply["clinic"] == "c1" and ids == [own]  # never another clinic's patient
    elif event == "get_roster":
        subs = {m["sub"] for m in reply["staff"]}
        assert {"n1", "d1", "a1", "d4"} >= subs and "dx" not in subs  # the clinic's own staff only
    elif event == "claim":
        assert reply["others"] == [] and await redis.hexists(keys.triage_claims("c1"), f"{visit_id}|n1")
    elif event == "release":
        assert not await redis.hexists(keys.triage_claims("c1"), f"{visit_id}|n1")
    elif event == "get_visit":
        assert reply["visit"]["visit_id"] == visit_id
        if role is Role.PATIENT:
            assert "patient_name" not in reply["visit"] and "history" not in reply
        else:
            assert reply["visit"]["patient_name"].startswith("Patient ") and isinstance(reply["history"], list)
    elif event == "triage":
        assert reply["visit"]["acuity"] == 2 and reply["visit"]["state"] == "in_triage"
    elif event == "route":
        assert reply["visit"]["routed_to"] == "d1" and reply["visit"]["state"] == "ready"
    elif event == "admit":
        expected_id = own if target == "next" else visit_id
        assert reply["visit"]["visit_id"] == expected_id
        assert reply["visit"]["state"] == "in_visit" and reply["visit"]["doctor"] == sub_of(actor)
        assert isinstance(reply["ice_servers"], list)
    elif event == "end":
        assert reply["visit"]["state"] == "ended"
    elif event == "send":
        stored = await redis.xrange(keys.chat(visit_id or ""), reply["id"], reply["id"])
        assert stored and stored[0][1]["text"] == "hello from the table" and reply["duplicate"] is False
    elif event == "history":
        assert [m["text"] for m in reply["messages"]] == [f"seed in {target}"]
    elif event in ("offer", "answer", "candidate", "hangup", "ready", "call_status"):
        # Relayed to the other party of the visit (a guest's: to the patient; a status: to everyone).
        other = await (world.doctor("own") if role is Role.PATIENT else world.patient("own"))
        party = world.party(actor)
        got = await other.wait_for("/call", event, lambda d: d["visit_id"] == visit_id and d["from"] == party)
        if event == "candidate":
            assert got["candidate"] == CANDIDATE
    elif event == "call_peers":
        everyone = {"patient", "doctor", *(world.guest_ids[g] for g in (GuestActor.INTERPRETER, GuestActor.CLINICIAN)
                                           if g in world.guest_ids)}
        assert reply["self"] == world.party(actor)
        assert {p["party"] for p in reply["peers"]} == everyone - {reply["self"]}  # the lobby's guest is in no call
        assert all(p["name"] for p in reply["peers"])
        # The table's patient and doctor have their call page open (the guests only their /guest one).
        assert {p["party"] for p in reply["peers"] if p["online"]} == {"patient", "doctor"} - {reply["self"]}
    elif event == "leave_call":
        assert await redis.smembers(keys.call_left(visit_id or "")) == {world.party(actor)}
    elif event == "join_call":
        assert await redis.smembers(keys.call_left(visit_id or "")) == set()
    elif event == "get_ice_servers":
        assert isinstance(reply["ice_servers"], list)
    elif event in ("media_started", "call_quality"):
        kept = await redis.hgetall(keys.call_quality(visit_id or ""))
        side = "guest" if isinstance(actor, GuestActor) else role.value
        assert list(kept) == [f"{'start' if event == 'media_started' else 'path'}|{side}|-"]
    elif event == "status":  # no worker here: nobody records; every guest seated consented (the lobby's is not in)
        in_visit = set(world.guest_ids.values()) - {world.guest_ids.get(GuestActor.LOBBY)}
        assert reply["recording"] == dict.fromkeys({"patient", "doctor", *in_visit}, False)
        assert reply["not_recorded"] == []
    elif event == "caption_language":
        assert (reply["language"], reply["applies"]) == ("ko", "next_leg")  # no leg records the doctor here
    elif event == "captions":
        assert reply["on"] is True
    elif event == "leg_offer":
        jobs = await redis.xrange("tm:media:jobs")
        assert [(f["job"], f["visit"], f["role"]) for _, f in jobs] == [(reply["job"], visit_id, world.party(actor))]
    elif event == "get_guest":
        assert reply["guest"]["visit_id"] == own and reply["guest"]["kind"] == {
            GuestActor.INTERPRETER: "interpreter", GuestActor.LOBBY: "caregiver", GuestActor.CLINICIAN: "clinician"}[actor]
    elif event == "join":
        assert reply["guest"]["state"] == "waiting" and reply["guest"]["consent_visit"] is True
    elif event == "leave_visit":
        assert reply["guest"]["state"] == "left"
    elif event == "participants":
        assert [p["type"] for p in reply["participants"]][-2:] == ["guest", "guest"]  # the interpreter, the clinician
    else:  # pragma: no cover
        raise AssertionError(event)




def cells(grid: list[tuple[str, ...]]) -> list[Any]:
    """One test per cell of ``grid`` (rows: event, target, state, then an outcome per actor)."""
    import pytest

    return [
        pytest.param(role, event, target, state, expected, id=f"{role.value}-{event}-{target}-{state}")
        for event, target, state, *outcomes in grid
        for role, expected in zip(ACTORS, outcomes, strict=True)
    ]


async def check_cell(
    node: str, connect: Connect, redis: aioredis.Redis, role: Actor, event: str, target: str, state: str, expected: str
) -> None:
    """One cell of the table: ``role`` sends ``event`` on ``target`` in ``state``; ``expected`` happens."""
    ns = NAMESPACE[event]
    world = World(node, connect)
    await world.visit("own")  # the acting patient's link
    if isinstance(role, GuestActor):
        await world.seat_guests()
    visit_id: str | None
    if target in VISIT_CLINIC:
        visit_id = await world.bring(target, state)
        subject: str | None = visit_id
    elif target == "missing":
        visit_id, subject = MISSING_VISIT, None
    else:  # "-" and "next": the patient's own visit, and another clinic's queue for contrast
        subject = await world.bring("own", state)
        visit_id = None
        if event == "get_queue" or target == "next":
            await world.bring("other", "waiting")
    if event == "history" and target in VISIT_CLINIC:
        await (await world.patient(target)).ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": f"seed in {target}"})

    if event == "route" and target in VISIT_CLINIC:
        # Routes name d1, who must be on c1's roster (signed in once) to be routed to.
        await connect(node, token(Role.DOCTOR, "c1", sub="d1"), namespaces=["/queue"])
    if event == "release" and visit_id is not None:  # a claim to release (or to leave alone)
        await redis.hset(keys.triage_claims(VISIT_CLINIC.get(target, "c1")), f"{visit_id}|n1", 1)

    tok = world.actor_token(role)
    if expected == REFUSED:
        # A patient's or guest's token whose visit ended is dead (checked first); else
        # refused for the role, or (a guest the doctor has not let in, at /chat) for their state.
        reason = "unauthorized" if state == "ended" and role_of(role).visit_bound else "forbidden"
        await assert_refused_by_namespace(node, {"token": tok}, [ns], reason)
        return

    actor = await connect(node, tok, namespaces=[ns])
    before = await snapshot(redis, subject)
    reply = await actor.call(ns, event, payload(event, visit_id, role))
    if expected == OK:
        assert reply["ok"] is True, reply
        await check_effect(world, role, event, target, visit_id, reply, redis)
    else:
        assert reply["ok"] is False and reply["error"]["code"] == expected, reply
        assert set(reply) == {"ok", "error"}  # nothing of the visit leaks with a refusal
        assert await snapshot(redis, subject) == before  # default deny: nothing changed
        err = await actor.wait_for(ns, "error", lambda e: e["event"] == event)
        assert err["code"] == expected
        assert actor.sio.connected and ns in actor.sio.namespaces  # a refusal is not a disconnect
        if ns == "/call" and state == "in_visit" and target in VISIT_CLINIC:
            await assert_not_relayed(world, target, event)


async def assert_not_relayed(world: World, key: str, event: str) -> None:
    """Neither party of visit ``key`` received ``event``. Each party then gets a
    marker from the other, sent after the refusal over the same node and Redis
    channel: anything relayed by the refused event would have arrived first."""
    patient, doctor = await world.patient(key), await world.doctor(key)
    visit_id = world.visits[key][0]
    marker = "answer" if event == "hangup" else "hangup"
    await doctor.ok("/call", marker, payload(marker, visit_id))
    await patient.ok("/call", marker, payload(marker, visit_id))
    await patient.wait_for("/call", marker, lambda d: d["from"] == "doctor")
    await doctor.wait_for("/call", marker, lambda d: d["from"] == "patient")
    assert patient.events[("/call", event)] == [] and doctor.events[("/call", event)] == []

