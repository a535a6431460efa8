"""Who may do what on the sockets: the authorisation table of ``/queue``,
``/chat`` and ``/media``, and isolation between clinics. The table of
``/call`` and ``/guest`` (where guests act) is in test_authz_guests.py, the
HTTP routes in test_authz_http.py, token checks in test_authz_tokens.py; the
machinery they share in authz_world.py.

Everything runs against a real node and real Redis (see ``conftest.py``). The
socket table is data (:data:`GRID`): one row per event, target visit and visit
state, one column per actor (the roles, then the guest kinds of
:class:`tests.authz_world.GuestActor`). Every cell is one test; anything the
table does not allow must be refused (default deny) and must leave Redis untouched.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from telemed.tokens import Role
from tests.authz_world import (
    CHECK_IN,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    OK,
    REFUSED,
    Actor,
    Connect,
    World,
    cells,
    check_cell,
)
from tests.conftest import create_visit, token

# Targets: "own" the acting patient's visit (for a doctor, the visit they admitted
# once in_visit), "same" another visit of the actor's clinic (admitted by another
# doctor once in_visit), "other" a visit of another clinic, "missing" a visit id
# that does not exist, "next" admit without a visit id, "-" the event names no
# visit (it acts on the patient's own visit / the staff member's clinic).
# State: the state the target (or, for "-"/"next", the patient's own visit) is in.
_queue_like = [  # triage and route: clinical staff of the clinic, on a queued visit
    ("own", "waiting", FORBIDDEN, OK, OK, FORBIDDEN, REFUSED, REFUSED, OK),
    ("same", "waiting", FORBIDDEN, OK, OK, FORBIDDEN, REFUSED, REFUSED, OK),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, FORBIDDEN),
    ("missing", "-", FORBIDDEN, NOT_FOUND, NOT_FOUND, FORBIDDEN, REFUSED, REFUSED, NOT_FOUND),
    ("own", "in_visit", FORBIDDEN, CONFLICT, CONFLICT, FORBIDDEN, REFUSED, REFUSED, CONFLICT),
]
_claim = [  # claim and release: nurses of the clinic (who is with whom)
    ("own", "waiting", FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, FORBIDDEN),
    ("same", "waiting", FORBIDDEN, OK, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, FORBIDDEN),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, FORBIDDEN),
    ("missing", "-", FORBIDDEN, NOT_FOUND, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, FORBIDDEN),
]
_signal = [  # /media's leg_offer: the patient, the admitting doctor and guests let in (their own leg), in_visit only
    ("own", "in_visit", OK, FORBIDDEN, OK, REFUSED, OK, REFUSED, OK),
    ("same", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("other", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "waiting", CONFLICT, FORBIDDEN, CONFLICT, REFUSED, CONFLICT, REFUSED, CONFLICT),
    ("same", "waiting", FORBIDDEN, FORBIDDEN, CONFLICT, REFUSED, FORBIDDEN, REFUSED, CONFLICT),
    ("missing", "-", FORBIDDEN, NOT_FOUND, NOT_FOUND, REFUSED, FORBIDDEN, REFUSED, NOT_FOUND),
    ("own", "ended", REFUSED, FORBIDDEN, CONFLICT, REFUSED, REFUSED, REFUSED, CONFLICT),
]
_snapshot = [  # the doctor of the visit in progress (no worker runs here: no leg, not_found)
    ("own", "in_visit", FORBIDDEN, FORBIDDEN, NOT_FOUND, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("same", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("other", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "waiting", FORBIDDEN, FORBIDDEN, CONFLICT, REFUSED, FORBIDDEN, REFUSED, CONFLICT),
    ("missing", "-", FORBIDDEN, FORBIDDEN, NOT_FOUND, REFUSED, FORBIDDEN, REFUSED, NOT_FOUND),
    ("own", "ended", REFUSED, FORBIDDEN, CONFLICT, REFUSED, REFUSED, REFUSED, CONFLICT),
]
_caption_language = [  # the doctor of the visit in progress (no worker here: applies from the next leg)
    ("own", "in_visit", FORBIDDEN, FORBIDDEN, OK, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("same", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("other", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "waiting", FORBIDDEN, FORBIDDEN, CONFLICT, REFUSED, FORBIDDEN, REFUSED, CONFLICT),
    ("missing", "-", FORBIDDEN, FORBIDDEN, NOT_FOUND, REFUSED, FORBIDDEN, REFUSED, NOT_FOUND),
    ("own", "ended", REFUSED, FORBIDDEN, CONFLICT, REFUSED, REFUSED, REFUSED, CONFLICT),
]
_captions = [  # the patient of the visit turns their own captions on (any time before it ends)
    ("own", "created", OK, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "waiting", OK, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "in_visit", OK, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("same", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("other", "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("missing", "-", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("own", "ended", REFUSED, FORBIDDEN, FORBIDDEN, REFUSED, REFUSED, REFUSED, FORBIDDEN),
]
_chat = [  # send and history: the patient of the visit, nurses and doctors of its clinic
    ("own", "waiting", OK, OK, OK, REFUSED, OK, REFUSED, OK),
    ("same", "waiting", FORBIDDEN, OK, OK, REFUSED, FORBIDDEN, REFUSED, OK),
    ("other", "waiting", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN),
    ("missing", "-", FORBIDDEN, NOT_FOUND, NOT_FOUND, REFUSED, FORBIDDEN, REFUSED, NOT_FOUND),
]

# fmt: off
#        event              target     state       patient    nurse      doctor     admin      interp.    lobby      clinician
GRID: list[tuple[str, ...]] = [
    # /queue ------------------------------------------------------------------------------------
    ("check_in",         "-",       "created",  OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("check_in",         "-",       "waiting",  CONFLICT,  FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("leave",            "-",       "waiting",  OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("leave",            "-",       "in_visit", CONFLICT,  FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("get_queue",        "-",       "waiting",  FORBIDDEN, OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    ("get_visit",        "own",     "waiting",  OK,        OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    ("get_visit",        "same",    "waiting",  FORBIDDEN, OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    ("get_visit",        "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("get_visit",        "missing", "-",        FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND, REFUSED,   REFUSED,   NOT_FOUND),
    ("get_visit",        "own",     "ended",    REFUSED,   OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    *[("triage", *row) for row in _queue_like],
    *[("route", *row) for row in _queue_like],
    ("admit",            "own",     "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN, REFUSED,   REFUSED,   OK),
    ("admit",            "same",    "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN, REFUSED,   REFUSED,   OK),
    ("admit",            "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("admit",            "missing", "-",        FORBIDDEN, FORBIDDEN, NOT_FOUND, FORBIDDEN, REFUSED,   REFUSED,   NOT_FOUND),
    ("admit",            "next",    "waiting",  FORBIDDEN, FORBIDDEN, OK,        FORBIDDEN, REFUSED,   REFUSED,   OK),
    ("admit",            "own",     "in_visit", FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN, REFUSED,   REFUSED,   CONFLICT),
    ("admit",            "same",    "in_visit", FORBIDDEN, FORBIDDEN, CONFLICT,  FORBIDDEN, REFUSED,   REFUSED,   CONFLICT),
    ("end",              "own",     "waiting",  FORBIDDEN, OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    ("end",              "same",    "waiting",  FORBIDDEN, OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    ("end",              "other",   "waiting",  FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("end",              "missing", "-",        FORBIDDEN, NOT_FOUND, NOT_FOUND, NOT_FOUND, REFUSED,   REFUSED,   NOT_FOUND),
    ("end",              "own",     "in_visit", FORBIDDEN, FORBIDDEN, OK,        OK,        REFUSED,   REFUSED,   FORBIDDEN),
    ("end",              "same",    "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, OK,        REFUSED,   REFUSED,   FORBIDDEN),
    ("end",              "other",   "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   FORBIDDEN),
    ("end",              "own",     "ended",    REFUSED,   CONFLICT,  CONFLICT,  CONFLICT,  REFUSED,   REFUSED,   CONFLICT),
    ("get_roster",       "-",       "waiting",  FORBIDDEN, OK,        OK,        OK,        REFUSED,   REFUSED,   OK),
    *[("claim", *row) for row in _claim],
    *[("release", *row) for row in _claim],
    # /chat -------------------------------------------------------------------------------------
    *[("send", *row) for row in _chat],
    ("send",             "own",     "ended",    REFUSED,   CONFLICT,  CONFLICT,  REFUSED,   REFUSED,   REFUSED,   CONFLICT),
    *[("history", *row) for row in _chat],
    # /media ------------------------------------------------------------------------------------
    *[("leg_offer", *row) for row in _signal],
    *[("snapshot", *row) for row in _snapshot],
    ("status",           "own",     "in_visit", OK,        FORBIDDEN, OK,        REFUSED,   OK,        REFUSED,   OK),
    ("status",           "same",    "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   FORBIDDEN, REFUSED,   FORBIDDEN),  # another doctor: no captions
    ("status",           "other",   "in_visit", FORBIDDEN, FORBIDDEN, FORBIDDEN, REFUSED,   FORBIDDEN, REFUSED,   FORBIDDEN),
    ("status",           "missing", "-",        FORBIDDEN, NOT_FOUND, NOT_FOUND, REFUSED,   FORBIDDEN, REFUSED,   NOT_FOUND),
    *[("caption_language", *row) for row in _caption_language],
    *[("captions", *row) for row in _captions],
]
# fmt: on

CELLS = cells(GRID)


@pytest.mark.parametrize(("role", "event", "target", "state", "expected"), CELLS)
async def test_authorization_table(
    node: str, connect: Connect, redis: aioredis.Redis, role: Actor, event: str, target: str, state: str, expected: str
) -> None:
    await check_cell(node, connect, redis, role, event, target, state, expected)


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
