"""Who may do what: the authorisation table, token checks, revocation, origins.

Everything runs against a real node and real Redis (see ``conftest.py``). The
socket table is data (:data:`GRID`): one row per event, target visit and visit
state, one column per role. Every cell is one test; anything the table does not
allow must be refused (default deny) and must leave Redis untouched.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis
import socketio

from telemed import keys
from telemed.tokens import Role
from tests.conftest import ORIGIN, SECRET, create_visit, token
from tests.peer import Peer, client_id

Connect = Callable[..., Awaitable[Peer]]

# -- helpers ----------------------------------------------------------------------------

CHECK_IN = {"reason": "sore throat", "consent_visit": True, "consent_recording": True}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
MISSING_VISIT = "no-such-visit-0000"

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
    return out


class World:
    """The visits of one table cell, created and brought to a state on demand."""

    def __init__(self, url: str, connect: Connect) -> None:
        self.url = url
        self.connect = connect
        self.visits: dict[str, tuple[str, str]] = {}
        self._patients: dict[str, Peer] = {}
        self._doctors: dict[str, Peer] = {}

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

    def actor_token(self, role: Role) -> str:
        return self.patient_token("own") if role is Role.PATIENT else staff_token(role)


# -- the socket table ---------------------------------------------------------------------

OK, FORBIDDEN, CONFLICT, NOT_FOUND = "ok", "forbidden", "conflict", "not_found"
#: The namespace refuses the connection itself (role not admitted, or dead token).
REFUSED = "refused"

NAMESPACE = {
    **dict.fromkeys(["check_in", "leave", "get_queue", "get_visit", "triage", "route", "admit", "end"], "/queue"),
    **dict.fromkeys(["get_roster", "claim", "release"], "/queue"),
    **dict.fromkeys(["send", "history"], "/chat"),
    **dict.fromkeys(["offer", "answer", "candidate", "hangup", "ready", "get_ice_servers"], "/call"),
    **dict.fromkeys(["leg_offer", "snapshot", "status"], "/media"),
}

ROLES = (Role.PATIENT, Role.NURSE, Role.DOCTOR, Role.ADMIN)

#: Who may open each namespace at all.
NAMESPACE_ROLES = {
    "/queue": {Role.PATIENT, Role.NURSE, Role.DOCTOR, Role.ADMIN},
    "/chat": {Role.PATIENT, Role.NURSE, Role.DOCTOR},
    "/call": {Role.PATIENT, Role.DOCTOR},
    "/media": {Role.PATIENT, Role.DOCTOR},
}

# Targets: "own" the acting patient's visit (for a doctor, the visit they admitted
# once in_visit), "same" another visit of the actor's clinic (admitted by another
# doctor once in_visit), "other" a visit of another clinic, "missing" a visit id
# that does not exist, "next" admit without a visit id, "-" the event names no
# visit (it acts on the patient's own visit / the staff member's clinic).
# State: the state the target (or, for "-"/"next", the patient's own visit) is in.
_queue_like = [  # triage and route: clinical staff of the clinic, on a queued visit
    ("own", "waiting", FORBIDDEN, OK, OK, FORBIDDEN),
    ("same", "waiting", FORBIDDEN, OK, OK, FORBIDDEN),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("missing", "-", FORBIDDEN, NOT_FOUND, NOT_FOUND, FORBIDDEN),
    ("own", "in_visit", FORBIDDEN, CONFLICT, CONFLICT, FORBIDDEN),
]
_claim = [  # claim and release: nurses of the clinic (who is with whom)
    ("own", "waiting", FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    ("same", "waiting", FORBIDDEN, OK, FORBIDDEN, FORBIDDEN),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("missing", "-", FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN),
]
_signal = [  # offer, answer, candidate, hangup: the patient and the admitting doctor, in_visit only
    ("own", "in_visit", OK, REFUSED, OK, REFUSED),
    ("same", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED),
    ("other", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED),
    ("own", "waiting", CONFLICT, REFUSED, CONFLICT, REFUSED),
    ("same", "waiting", FORBIDDEN, REFUSED, CONFLICT, REFUSED),
    ("missing", "-", FORBIDDEN, REFUSED, NOT_FOUND, REFUSED),
    ("own", "ended", REFUSED, REFUSED, CONFLICT, REFUSED),
]
_snapshot = [  # the doctor of the visit in progress (no worker runs here: no leg, not_found)
    ("own", "in_visit", FORBIDDEN, REFUSED, NOT_FOUND, REFUSED),
    ("same", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED),
    ("other", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED),
    ("own", "waiting", FORBIDDEN, REFUSED, CONFLICT, REFUSED),
    ("missing", "-", FORBIDDEN, REFUSED, NOT_FOUND, REFUSED),
    ("own", "ended", REFUSED, REFUSED, CONFLICT, REFUSED),
]
_chat = [  # send and history: the patient of the visit, nurses and doctors of its clinic
    ("own", "waiting", OK, OK, OK, REFUSED),
    ("same", "waiting", FORBIDDEN, OK, OK, REFUSED),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED),
    ("missing", "-", FORBIDDEN, NOT_FOUND, NOT_FOUND, REFUSED),
]

# fmt: off
#        event              target     state       patient    nurse      doctor     admin
GRID: list[tuple[str, str, str, str, str, str, str]] = [
    # /queue ------------------------------------------------------------------------------------
    ("check_in",        "-",       "created",  OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("check_in",        "-",       "waiting",  CONFLICT,  FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("leave",           "-",       "waiting",  OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("leave",           "-",       "in_visit", CONFLICT,  FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("get_queue",       "-",       "waiting",  FORBIDDEN, OK,        OK,        OK),
    ("get_visit",       "own",     "waiting",  OK,        OK,        OK,        OK),
    ("get_visit",       "same",    "waiting",  FORBIDDEN, OK,        OK,        OK),
    ("get_visit",       "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("get_visit",       "missing", "-",        FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ("get_visit",       "own",     "ended",    REFUSED,   OK,        OK,        OK),
    *[("triage", *row) for row in _queue_like],
    *[("route", *row) for row in _queue_like],
    ("admit",           "own",     "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN),
    ("admit",           "same",    "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN),
    ("admit",           "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("admit",           "missing", "-",        FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN),
    ("admit",           "next",    "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN),
    ("admit",           "own",     "in_visit", FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN),
    ("admit",           "same",    "in_visit", FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN),
    ("end",             "own",     "waiting",  FORBIDDEN, OK,        OK,        OK),
    ("end",             "same",    "waiting",  FORBIDDEN, OK,        OK,        OK),
    ("end",             "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("end",             "missing", "-",        FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ("end",             "own",     "in_visit", FORBIDDEN, FORBIDDEN, OK,        OK),
    ("end",             "same",    "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, OK),
    ("end",             "other",   "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("end",             "own",     "ended",    REFUSED,   CONFLICT,  CONFLICT,  CONFLICT),
    ("get_roster",      "-",       "waiting",  FORBIDDEN, OK,        OK,        OK),
    *[("claim", *row) for row in _claim],
    *[("release", *row) for row in _claim],
    # /chat -------------------------------------------------------------------------------------
    *[("send", *row) for row in _chat],
    ("send",            "own",     "ended",    REFUSED,   CONFLICT,  CONFLICT,  REFUSED),
    *[("history", *row) for row in _chat],
    # /call -------------------------------------------------------------------------------------
    *[(ev, *row) for ev in ("offer", "answer", "candidate", "hangup", "ready") for row in _signal],
    ("get_ice_servers", "-",       "created",  OK,        REFUSED,   OK,        REFUSED),
    # /media ------------------------------------------------------------------------------------
    *[("leg_offer", *row) for row in _signal],
    *[("snapshot", *row) for row in _snapshot],
    ("status",          "own",     "in_visit", OK,        REFUSED,   OK,        REFUSED),
    ("status",          "same",    "in_visit", FORBIDDEN, REFUSED,   FORBIDDEN, REFUSED),  # another doctor: no captions
    ("status",          "other",   "in_visit", FORBIDDEN, REFUSED,   FORBIDDEN, REFUSED),
    ("status",          "missing", "-",        FORBIDDEN, REFUSED,   NOT_FOUND, REFUSED),
]
# fmt: on

CELLS = [
    pytest.param(role, event, target, state, expected, id=f"{role.value}-{event}-{target}-{state}")
    for event, target, state, *outcomes in GRID
    for role, expected in zip(ROLES, outcomes, strict=True)
]


def test_grid_covers_every_event() -> None:
    """The table names every handler of every namespace (no event left to chance)."""
    from signaling.call_ns import CallNamespace
    from signaling.chat_ns import ChatNamespace
    from signaling.media_ns import MediaNamespace
    from signaling.queue_ns import QueueNamespace

    handlers: dict[str, str] = {}
    for cls, ns in ((QueueNamespace, "/queue"), (ChatNamespace, "/chat"), (CallNamespace, "/call"),
                    (MediaNamespace, "/media")):
        names = [n[3:] for n in dir(cls) if n.startswith("on_") and hasattr(getattr(cls, n), "__telemed_event__")]
        handlers.update(dict.fromkeys(names, ns))
    assert handlers == NAMESPACE
    assert {e for e, *_ in GRID} == set(NAMESPACE)
    assert all(len(row) == 3 + len(ROLES) for row in GRID)


def payload(event: str, visit_id: str | None) -> dict[str, Any]:
    ref = {} if visit_id is None else {"visit_id": visit_id}
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
        "ready": ref,
        "get_ice_servers": {},
        "leg_offer": {**ref, "sdp": "v=0 table leg"},
        "snapshot": ref,
        "status": ref,
    }[event]


async def check_effect(
    world: World, role: Role, event: str, target: str, visit_id: str | None, reply: dict[str, Any], redis: aioredis.Redis
) -> None:
    """What an allowed event must have done."""
    own = world.visits["own"][0]
    if event == "check_in":
        assert reply["visit"]["visit_id"] == own and reply["visit"]["state"] == "waiting"
    elif event == "leave":
        assert reply["visit"]["state"] == "ended" and reply["visit"]["end_reason"] == "left"
    elif event == "get_queue":
        ids = [v["visit_id"] for v in reply["queue"]]
        assert reply["clinic"] == "c1" and ids == [own]  # never another clinic's patient
    elif event == "get_roster":
        subs = {m["sub"] for m in reply["staff"]}
        assert {"n1", "d1", "a1"} >= subs and "dx" not in subs  # the clinic's own staff only
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
        assert reply["visit"]["state"] == "in_visit" and reply["visit"]["doctor"] == "d1"
        assert isinstance(reply["ice_servers"], list)
    elif event == "end":
        assert reply["visit"]["state"] == "ended"
    elif event == "send":
        stored = await redis.xrange(keys.chat(visit_id or ""), reply["id"], reply["id"])
        assert stored and stored[0][1]["text"] == "hello from the table" and reply["duplicate"] is False
    elif event == "history":
        assert [m["text"] for m in reply["messages"]] == [f"seed in {target}"]
    elif event in ("offer", "answer", "candidate", "hangup", "ready"):
        # Relayed to the other party of the visit.
        other = await (world.doctor("own") if role is Role.PATIENT else world.patient("own"))
        got = await other.wait_for("/call", event, lambda d: d["visit_id"] == visit_id and d["from"] == role.value)
        if event == "candidate":
            assert got["candidate"] == CANDIDATE
    elif event == "get_ice_servers":
        assert isinstance(reply["ice_servers"], list)
    elif event == "status":
        assert reply["recording"] == {"patient": False, "doctor": False}
    elif event == "leg_offer":
        jobs = await redis.xrange("tm:media:jobs")
        assert [(f["job"], f["visit"], f["role"]) for _, f in jobs] == [(reply["job"], visit_id, role.value)]
    else:  # pragma: no cover
        raise AssertionError(event)


@pytest.mark.parametrize(("role", "event", "target", "state", "expected"), CELLS)
async def test_authorization_table(
    node: str, connect: Connect, redis: aioredis.Redis, role: Role, event: str, target: str, state: str, expected: str
) -> None:
    ns = NAMESPACE[event]
    world = World(node, connect)
    await world.visit("own")  # the acting patient's link
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
        # Refused for the role, or (a patient whose visit ended) for a dead token.
        reason = "forbidden" if role not in NAMESPACE_ROLES[ns] else "unauthorized"
        await assert_refused_by_namespace(node, {"token": tok}, [ns], reason)
        return

    actor = await connect(node, tok, namespaces=[ns])
    before = await snapshot(redis, subject)
    reply = await actor.call(ns, event, payload(event, visit_id))
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


# -- HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "body_clinic", "status"),
    [
        ((Role.NURSE, "c1"), None, 201),
        ((Role.DOCTOR, "c1"), None, 201),
        ((Role.ADMIN, "c1"), None, 201),
        ((Role.NURSE, "c1"), "c1", 201),
        ((Role.NURSE, "c1"), "c2", 403),
        ((Role.ADMIN, "c1"), "c2", 403),
        ((Role.NURSE, "c2"), "c1", 403),
        ((Role.PATIENT, "c1"), None, 403),
        (None, None, 401),
    ],
    ids=lambda v: "-".join(x.value if isinstance(x, Role) else str(x) for x in v) if isinstance(v, tuple) else str(v),
)
async def test_http_create_visit(node: str, redis: aioredis.Redis, who: tuple[Role, str] | None, body_clinic: str | None, status: int) -> None:
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, who[1]))
    else:
        tok = staff_token(*who)
    before = set(await redis.keys(keys.visit("*")))
    body = {"reason": "rash"} | ({"clinic": body_clinic} if body_clinic else {})
    got, data = await http("POST", f"{node}/api/visits", tok, body)
    assert got == status, data
    after = set(await redis.keys(keys.visit("*")))
    if status == 201:
        claims = jwt.decode(data["patient_link"].split("#t=", 1)[1], SECRET.reveal(), algorithms=["HS256"])
        assert claims["clinic"] == "c1"  # the caller's clinic
        assert claims["visit"] == data["visit_id"] and claims["role"] == "patient"
        assert after - before == {keys.visit(data["visit_id"])}
    else:
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        assert after == before  # nothing created


@pytest.mark.parametrize(
    ("role", "tok_clinic", "url_clinic", "status"),
    [
        (Role.NURSE, "c1", "c1", 200),
        (Role.DOCTOR, "c1", "c1", 200),
        (Role.ADMIN, "c1", "c1", 200),
        (Role.NURSE, "c1", "c2", 403),
        (Role.DOCTOR, "c1", "c2", 403),
        (Role.ADMIN, "c1", "c2", 403),
        (Role.PATIENT, "c1", "c1", 403),
        (None, "c1", "c1", 401),
    ],
)
async def test_http_get_queue(node: str, connect: Connect, role: Role | None, tok_clinic: str, url_clinic: str, status: int) -> None:
    world = World(node, connect)
    own = await world.bring("own", "waiting")
    await world.bring("other", "waiting")
    tok = None if role is None else world.patient_token() if role is Role.PATIENT else staff_token(role, tok_clinic)
    got, data = await http("GET", f"{node}/api/clinics/{url_clinic}/queue", tok)
    assert got == status, data
    if status == 200:
        assert data["clinic"] == "c1" and [v["visit_id"] for v in data["queue"]] == [own]
    else:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


@pytest.mark.parametrize(
    ("role", "target", "status"),
    [
        (Role.PATIENT, "own", 200),
        (Role.PATIENT, "same", 403),
        (Role.PATIENT, "other", 403),
        (Role.PATIENT, "missing", 403),
        (Role.NURSE, "own", 200),
        (Role.DOCTOR, "same", 200),
        (Role.ADMIN, "own", 200),
        (Role.NURSE, "other", 403),
        (Role.DOCTOR, "other", 403),
        (Role.ADMIN, "other", 403),
        (Role.NURSE, "missing", 404),
        (None, "own", 401),
    ],
)
async def test_http_get_visit(node: str, connect: Connect, role: Role | None, target: str, status: int) -> None:
    world = World(node, connect)
    await world.visit("own")
    visit_id = MISSING_VISIT if target == "missing" else await world.bring(target, "waiting")
    tok = None if role is None else world.actor_token(role)
    got, data = await http("GET", f"{node}/api/visits/{visit_id}", tok)
    assert got == status, data
    if status == 200:
        assert data["visit"]["visit_id"] == visit_id and data["visit"]["state"] == "waiting"
        # The patient sees the patient view only; staff the staff view.
        assert ("patient_name" in data["visit"]) is (role is not Role.PATIENT)
    else:
        assert set(data) == {"error"}
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[status]


@pytest.mark.parametrize(
    ("revoker", "status"),
    [
        ((Role.ADMIN, "c1"), 200),
        ((Role.ADMIN, "c2"), 403),
        ((Role.NURSE, "c1"), 403),
        ((Role.DOCTOR, "c1"), 403),
        ((Role.PATIENT, "c1"), 403),
        (None, 401),
    ],
    ids=["admin-own-clinic", "admin-other-clinic", "nurse", "doctor", "patient", "no-token"],
)
async def test_http_revoke_permissions(node: str, connect: Connect, revoker: tuple[Role, str] | None, status: int) -> None:
    target = token(Role.NURSE, "c1", sub="n9")
    if revoker is None:
        tok = None
    elif revoker[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, "c1"))
    else:
        tok = token(revoker[0], revoker[1], sub="someone")
    got, data = await http("POST", f"{node}/api/tokens/revoke", tok, {"token": target})
    assert got == status, data
    jti = jwt.decode(target, options={"verify_signature": False})["jti"]
    if status == 200:
        assert data == {"revoked": jti}
        await assert_refused_by_namespace(node, {"token": target}, ["/queue"], "unauthorized")
    else:
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        # The target is untouched: it still connects.
        peer = await connect(node, target, namespaces=["/queue"])
        await peer.ok("/queue", "get_queue")


async def test_revoked_token_is_refused_everywhere(node: str, connect: Connect) -> None:
    admin = token(Role.ADMIN, "c1", sub="a1")
    nurse_token = token(Role.NURSE, "c1", sub="n1")
    nurse = await connect(node, nurse_token, namespaces=["/queue", "/chat"])
    await nurse.ok("/queue", "get_queue")
    assert (await http("GET", f"{node}/api/clinics/c1/queue", nurse_token))[0] == 200

    got, data = await http("POST", f"{node}/api/tokens/revoke", admin, {"token": nurse_token})
    assert got == 200, data

    # The open socket: its next event is refused, and the server then closes it.
    reply = await nurse.call("/queue", "get_queue")
    assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", reply
    for _ in range(100):
        if "/queue" not in nurse.sio.namespaces:
            break
        await asyncio.sleep(0.02)
    assert "/queue" not in nurse.sio.namespaces
    # Every namespace checks on every event, not only the one that noticed first.
    reply = await nurse.call("/chat", "history", {"visit_id": MISSING_VISIT})
    assert reply["error"]["code"] == "unauthorized", reply

    # A new connection, and HTTP, are refused.
    await assert_refused_by_namespace(node, {"token": nurse_token}, ["/queue", "/chat"], "unauthorized")
    got, data = await http("GET", f"{node}/api/clinics/c1/queue", nurse_token)
    assert (got, data["error"]["code"]) == (401, "unauthorized")

    # Revocation is per token: the same person with a new token is unaffected.
    fresh = await connect(node, token(Role.NURSE, "c1", sub="n1"), namespaces=["/queue"])
    await fresh.ok("/queue", "get_queue")


async def test_revoked_patient_link(node: str, connect: Connect) -> None:
    visit_id, patient_token = await create_visit(node, token(Role.NURSE, "c1"))
    patient = await connect(node, patient_token, namespaces=["/queue"])
    got, _ = await http("POST", f"{node}/api/tokens/revoke", token(Role.ADMIN, "c1"), {"token": patient_token})
    assert got == 200
    reply = await patient.call("/queue", "check_in", CHECK_IN)
    assert reply["error"]["code"] == "unauthorized", reply
    await assert_refused_by_namespace(node, {"token": patient_token}, ["/queue"], "unauthorized")
    assert (await http("GET", f"{node}/api/visits/{visit_id}", patient_token))[0] == 401


async def test_revoke_of_a_malformed_token_is_a_bad_request(node: str) -> None:
    got, data = await http("POST", f"{node}/api/tokens/revoke", token(Role.ADMIN, "c1"), {"token": "not-a-jwt"})
    assert (got, data["error"]["code"]) == (400, "bad_request"), (got, data)


#: The admin console's routes: (method, path under /api/clinics/<clinic>/, body).
ADMIN_ROUTES = {
    "get-settings": ("GET", "settings", None),
    "put-settings": ("PUT", "settings", {"walk_in": True}),
    "get-sessions": ("GET", "sessions", None),
    "sign-out": ("POST", "sessions/{jti}/sign-out", None),
    "get-audit": ("GET", "audit", None),
}


@pytest.mark.parametrize("route", sorted(ADMIN_ROUTES))
@pytest.mark.parametrize(
    ("who", "url_clinic", "status"),
    [
        ((Role.ADMIN, "c1"), "c1", 200),
        ((Role.ADMIN, "c2"), "c1", 403),
        ((Role.ADMIN, "c1"), "c2", 403),
        ((Role.NURSE, "c1"), "c1", 403),
        ((Role.DOCTOR, "c1"), "c1", 403),
        ((Role.PATIENT, "c1"), "c1", 403),
        (None, "c1", 401),
    ],
    ids=["admin-own", "admin-of-c2", "admin-url-c2", "nurse", "doctor", "patient", "no-token"],
)
async def test_http_admin_console(
    node: str, connect: Connect, redis: aioredis.Redis, route: str, who: tuple[Role, str] | None, url_clinic: str, status: int
) -> None:
    """Admin of the clinic only; nothing changes for anyone else."""
    method, path, body = ADMIN_ROUTES[route]
    target = token(Role.NURSE, "c1", sub="n9")
    await connect(node, target, namespaces=["/queue"])  # a live session to sign out
    jti = jwt.decode(target, options={"verify_signature": False})["jti"]
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, "c1"))
    else:
        tok = staff_token(*who)
    got, data = await http(method, f"{node}/api/clinics/{url_clinic}/{path.format(jti=jti)}", tok, body)
    assert got == status, data
    changed = bool(await redis.hgetall(keys.clinic_settings("c1"))) or bool(await redis.exists(keys.revoked(jti)))
    assert changed is (status == 200 and method != "GET"), data
    if status != 200:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


# -- tokens -----------------------------------------------------------------------------------

OTHER_SECRET = "another-secret-" + "y" * 40


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(role: str = "nurse", **changes: Any) -> dict[str, Any]:
    """Valid claims of a nurse of c1; ``changes`` set (or, with None, drop) claims."""
    now = int(time.time())
    out: dict[str, Any] = {"sub": "n1", "name": "Nurse", "role": role, "clinic": "c1", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def sign(payload: dict[str, Any], secret: str = SECRET.reveal(), alg: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg)


def hand_signed(
    header: dict[str, Any], payload: dict[str, Any], secret: str | None = SECRET.reveal(), digest: Any = hashlib.sha256
) -> str:
    """A JWT assembled by hand; with a secret, HMAC signed (SHA-256 unless told) whatever the header says."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    sig = "" if secret is None else b64(hmac.new(secret.encode(), signing_input.encode(), digest).digest())
    return f"{signing_input}.{sig}"


def flip_signature(tok: str) -> str:
    head, body, sig = tok.split(".")
    i = len(sig) // 2  # a middle character: every one of its bits is part of the MAC
    return f"{head}.{body}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1:]}"


def swap_payload(tok: str, **changes: Any) -> str:
    head, body, sig = tok.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return f"{head}.{b64({**data, **changes})}.{sig}"


def rs256_token() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims(), key, algorithm="RS256")


#: name -> token builder; ctx holds "own" (a c1 visit) and "other" (a c2 visit).
BAD_TOKENS: list[Any] = [
    pytest.param(lambda ctx: sign(claims(exp=int(time.time()) - 60, iat=int(time.time()) - 3660)), id="expired"),
    pytest.param(lambda ctx: sign(claims(exp=int(time.time()) - 1)), id="expired-just-now"),
    pytest.param(lambda ctx: flip_signature(sign(claims())), id="signature-flipped"),
    pytest.param(lambda ctx: swap_payload(sign(claims()), role="admin"), id="payload-role-changed-same-signature"),
    pytest.param(lambda ctx: swap_payload(sign(claims()), clinic="c2"), id="payload-clinic-changed-same-signature"),
    pytest.param(lambda ctx: swap_payload(sign(claims(role="patient", visit=ctx["own"])), visit=ctx["other"]), id="payload-visit-changed-same-signature"),
    pytest.param(lambda ctx: sign(claims(), secret=OTHER_SECRET), id="other-secret"),
    pytest.param(lambda ctx: hand_signed({"alg": "none", "typ": "JWT"}, claims(), secret=None), id="alg-none"),
    pytest.param(lambda ctx: hand_signed({"alg": "None", "typ": "JWT"}, claims(), secret=None), id="alg-None"),
    pytest.param(lambda ctx: hand_signed({"alg": "none", "typ": "JWT"}, claims()), id="alg-none-with-valid-mac"),
    pytest.param(lambda ctx: hand_signed({"alg": "RS256", "typ": "JWT"}, claims()), id="rs256-header-hmac-signature"),
    pytest.param(lambda ctx: rs256_token(), id="rs256-signed"),
    # (by hand: PyJWT warns that the test secret is short for SHA-512)
    pytest.param(lambda ctx: hand_signed({"alg": "HS512", "typ": "JWT"}, claims(), digest=hashlib.sha512), id="hs512-right-secret"),
    *[pytest.param(lambda ctx, c=c: sign(claims(**{c: None})), id=f"missing-{c}") for c in ("sub", "role", "clinic", "exp", "jti")],
    pytest.param(lambda ctx: sign(claims(role="superuser")), id="unknown-role"),
    pytest.param(lambda ctx: sign(claims(clinic="c1/../c2")), id="bad-clinic-id"),
    pytest.param(lambda ctx: sign(claims(sub="")), id="empty-sub"),
    pytest.param(
        lambda ctx: sign(claims(clinic="c1\n")),
        id="clinic-with-trailing-newline",
    ),
    pytest.param(lambda ctx: sign(claims(exp="tomorrow")), id="exp-not-a-number"),
    pytest.param(lambda ctx: sign(claims(nbf=int(time.time()) + 3600)), id="not-yet-valid"),
    pytest.param(lambda ctx: sign(claims(role="patient")), id="patient-without-visit"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit=ctx["other"])), id="patient-visit-of-other-clinic"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit=MISSING_VISIT)), id="patient-visit-missing"),
    pytest.param(lambda ctx: sign(claims(role="patient", visit="../x")), id="patient-visit-bad-id"),
    pytest.param(lambda ctx: sign(claims(name="x" * 5000)), id="oversized"),
    pytest.param(lambda ctx: "not-a-jwt", id="garbage"),
    pytest.param(lambda ctx: "a.b.c", id="three-garbage-parts"),
]


async def token_context(node: str) -> dict[str, str]:
    own, _ = await create_visit(node, token(Role.NURSE, "c1"))
    other, _ = await create_visit(node, token(Role.NURSE, "c2"))
    return {"own": own, "other": other}


async def test_control_tokens_are_accepted(node: str, connect: Connect) -> None:
    """The hand-made claims and signing used below are accepted when nothing is wrong,
    so each refusal in test_bad_token_is_refused is caused by its one defect."""
    ctx = await token_context(node)
    for tok in (sign(claims()), sign(claims(role="patient", visit=ctx["own"])), hand_signed({"alg": "HS256", "typ": "JWT"}, claims())):
        peer = await connect(node, tok, namespaces=["/queue", "/chat"])
        await peer.ok("/queue", "get_visit", {"visit_id": ctx["own"]})
        got, data = await http("GET", f"{node}/api/visits/{ctx['own']}", tok)
        assert got == 200, data
        await peer.close()


@pytest.mark.parametrize("build", BAD_TOKENS)
async def test_bad_token_is_refused(node: str, build: Callable[[dict[str, str]], str]) -> None:
    ctx = await token_context(node)
    tok = build(ctx)
    await assert_refused_by_namespace(node, {"token": tok}, ["/queue", "/chat"], "unauthorized")
    got, data = await http("GET", f"{node}/api/visits/{ctx['own']}", tok)
    assert (got, data) == (401, {"error": {"code": "unauthorized", "message": data["error"]["message"]}})


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": None}, {"token": 123}, {"token": ["x"]}, {"token": ""}, {"tok": "x"}, "a-string", ["a", "list"]],
    ids=["none", "empty", "token-null", "token-int", "token-list", "token-empty", "wrong-key", "string", "list"],
)
async def test_bad_auth_shape_is_refused(node: str, auth: Any) -> None:
    await assert_refused_by_namespace(node, auth, ["/queue", "/chat", "/call"], "unauthorized")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer  "])
async def test_http_bad_authorization_header(node: str, header: str) -> None:
    visit_id, _ = await create_visit(node, token(Role.NURSE, "c1"))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{node}/api/visits/{visit_id}", headers={"Authorization": header} if header else {}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"


async def test_role_refusal_is_per_namespace(node: str, connect: Connect) -> None:
    """Refused namespaces say forbidden; the others of the same attempt connect."""
    await assert_refused_by_namespace(node, {"token": staff_token(Role.NURSE)}, ["/call"], "forbidden")
    await assert_refused_by_namespace(node, {"token": staff_token(Role.ADMIN)}, ["/chat", "/call"], "forbidden")
    errors = await refusal(node, {"token": staff_token(Role.ADMIN)}, ["/queue", "/chat", "/call"])
    assert sorted(errors) == ["/call", "/chat"], errors  # /queue was accepted
    nurse = await connect(node, staff_token(Role.NURSE), namespaces=["/queue", "/chat"])
    await nurse.ok("/queue", "get_queue")


# -- isolation between clinics by subject -------------------------------------------------------


async def admitted_by_d1(node: str, connect: Connect) -> tuple[World, str]:
    world = World(node, connect)
    visit_id = await world.bring("own", "in_visit")  # admitted by d1 of c1
    return world, visit_id


async def test_same_sub_in_another_clinic_gets_no_visit_at_connect(node: str, connect: Connect) -> None:
    world, visit_id = await admitted_by_d1(node, connect)
    # The real d1 gets their visit back when reconnecting (the mechanism works)...
    d1 = await connect(node, token(Role.DOCTOR, "c1", sub="d1"), namespaces=["/queue"])
    await d1.ok("/queue", "get_queue")  # the ack comes after everything sent at connect
    assert any(v["visit_id"] == visit_id for v in d1.events[("/queue", "visit")])
    # ...a doctor of c2 who happens to be called d1 in their clinic's system must not.
    twin = await connect(node, token(Role.DOCTOR, "c2", sub="d1"), namespaces=["/queue"])
    await twin.ok("/queue", "get_queue")
    assert [v for v in twin.events[("/queue", "visit")] if v["visit_id"] == visit_id] == []


async def test_same_sub_in_another_clinic_gets_no_call_signaling(node: str, connect: Connect) -> None:
    world, visit_id = await admitted_by_d1(node, connect)
    twin = await connect(node, token(Role.DOCTOR, "c2", sub="d1"), namespaces=["/queue", "/call"])
    patient = await world.patient("own")
    await patient.ok("/call", "offer", {"visit_id": visit_id, "sdp": "v=0 private"})
    await (await world.doctor("own")).wait_for("/call", "offer")  # delivered to the real doctor
    # The twin's own patient offers after: the private offer, had it gone to the twin, would have come first.
    own_visit, own_token = await create_visit(node, token(Role.NURSE, "c2"))
    own_patient = await connect(node, own_token)
    await own_patient.ok("/queue", "check_in", CHECK_IN)
    await twin.ok("/queue", "admit", {"visit_id": own_visit})
    await own_patient.ok("/call", "offer", {"visit_id": own_visit, "sdp": "v=0 sentinel"})
    await twin.wait_for("/call", "offer", lambda o: o["sdp"] == "v=0 sentinel")
    assert [o["sdp"] for o in twin.events[("/call", "offer")]] == ["v=0 sentinel"]


# -- origin -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.test", "https://clinic.test", "http://clinic.test.evil.test", "http://clinic.test:8080", "null"]
)
async def test_foreign_origin_is_refused(node: str, connect: Connect, origin: str) -> None:
    tok = staff_token(Role.NURSE)
    errors = await refusal(node, {"token": tok}, ["/queue"], origin=origin)
    # Refused at the handshake, before any namespace: no namespace-level reason.
    assert list(errors) == ["/queue"] and not isinstance(errors["/queue"], dict), errors
    # The same token from the allowed origin connects (so the origin is the reason).
    peer = await connect(node, tok, namespaces=["/queue"])
    await peer.ok("/queue", "get_queue")


@pytest.mark.parametrize(
    ("who", "status", "listed"),
    [
        ((Role.NURSE, "c1"), 200, True),
        ((Role.DOCTOR, "c1"), 200, True),
        ((Role.ADMIN, "c1"), 200, True),
        ((Role.NURSE, "c2"), 200, False),  # their own clinic's list: without c1's chart
        ((Role.DOCTOR, "c2"), 200, False),
        ((Role.PATIENT, "c1"), 403, False),
        (None, 401, False),
    ],
    ids=["nurse", "doctor", "admin", "nurse-other-clinic", "doctor-other-clinic", "patient", "no-token"],
)
async def test_http_chart_list(node: str, redis: aioredis.Redis, who: tuple[Role, str] | None, status: int, listed: bool) -> None:
    from telemed.chart.index import ChartList

    await ChartList(redis).add({"id": "v-listed", "clinic": "c1", "state": "ended", "participants": [], "times": {"created": 1.0}})
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, who[1]))
    else:
        tok = staff_token(*who)
    got, data = await http("GET", f"{node}/api/charts", tok)
    assert got == status, data
    if status == 200:
        assert [c["visit_id"] for c in data["charts"]] == (["v-listed"] if listed else [])
    else:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


# -- invitations: the expected list, cancel, a fresh link ------------------------------------------------


@pytest.mark.parametrize(
    ("route", "role", "target", "status"),
    [
        (route, role, target, status)
        for route in ("expected", "cancel", "resend")
        for role, target, status in [
            (Role.NURSE, "own", 200),
            (Role.DOCTOR, "own", 200),
            (Role.ADMIN, "own", 200),
            (Role.NURSE, "other", 403),
            (Role.DOCTOR, "other", 403),
            (Role.ADMIN, "other", 403),
            (Role.PATIENT, "own", 403),
            (None, "own", 401),
        ]
    ],
    ids=lambda v: v.value if isinstance(v, Role) else str(v),
)
async def test_http_invitations(node: str, connect: Connect, redis: aioredis.Redis, route: str, role: Role | None, target: str, status: int) -> None:
    world = World(node, connect)
    own = await world.visit("own")
    other = await world.visit("other")
    visit_id = own if target == "own" else other
    tok = None if role is None else world.actor_token(role)
    before = await redis.hgetall(keys.visit(visit_id))
    if route == "expected":
        got, data = await http("GET", f"{node}/api/clinics/{'c1' if target == 'own' else 'c2'}/expected", tok)
    else:
        got, data = await http("POST", f"{node}/api/visits/{visit_id}/{route}", tok, {})
    assert got == status, data
    if status != 200:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        assert await redis.hgetall(keys.visit(visit_id)) == before  # nothing changed
    elif route == "expected":
        assert [v["visit_id"] for v in data["expected"]] == [own]
    elif route == "cancel":
        assert data["visit"]["state"] == "ended" and data["visit"]["end_reason"] == "cancelled"
    else:
        assert jwt.decode(data["patient_link"].split("#t=", 1)[1], SECRET.reveal(), algorithms=["HS256"])["visit"] == own
