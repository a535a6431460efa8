"""Who may do what in a visit's call and as its guest: the authorisation table
of ``/call`` (the call's parties: the patient, the doctor, guests let in) and
``/guest``, with a column per guest kind (tests/authz_world.py), default deny.
The rest of the socket table is in test_authz.py.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.authz_world import (
    ACTORS,
    CONFLICT,
    FORBIDDEN,
    NAMESPACE,
    NOT_FOUND,
    OK,
    REFUSED,
    Actor,
    Connect,
    cells,
    check_cell,
)
from tests.test_authz import GRID as SOCKET_GRID

# Targets and states as in test_authz.py.
_call = [  # the parties of the visit in progress: its patient, its doctor, guests let in (a guest's signaling names `to`)
    ("own", "in_visit", OK, REFUSED, OK, REFUSED, OK, FORBIDDEN, OK),
    ("same", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("other", "in_visit", FORBIDDEN, REFUSED, FORBIDDEN, REFUSED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("own", "waiting", CONFLICT, REFUSED, CONFLICT, REFUSED, CONFLICT, FORBIDDEN, CONFLICT),
    ("same", "waiting", FORBIDDEN, REFUSED, CONFLICT, REFUSED, FORBIDDEN, FORBIDDEN, CONFLICT),
    ("missing", "-", FORBIDDEN, REFUSED, NOT_FOUND, REFUSED, FORBIDDEN, FORBIDDEN, NOT_FOUND),
    ("own", "ended", REFUSED, REFUSED, CONFLICT, REFUSED, REFUSED, REFUSED, CONFLICT),
]
#: leave_call and join_call: the same parties but the doctor, who leaves by ending the visit.
_leave = [_call[0][:4] + (FORBIDDEN,) + _call[0][5:], *_call[1:]]
_guest_elsewhere = [  # /guest events on a visit the actor is no guest of
    ("same", "waiting", REFUSED, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("other", "waiting", REFUSED, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("missing", "-", REFUSED, FORBIDDEN, FORBIDDEN, REFUSED, FORBIDDEN, FORBIDDEN, FORBIDDEN),
]

# fmt: off
#        event              target     state       patient    nurse      doctor     admin      interp.    lobby      clinician
GRID: list[tuple[str, ...]] = [
    # /call: the nurse n1 is no guest of these visits, so /call refuses them at connect ------------
    *[(ev, *row) for ev in ("offer", "answer", "candidate", "hangup", "ready", "call_status") for row in _call],
    *[(ev, *row) for ev in ("media_started", "call_quality", "call_peers") for row in _call],
    *[(ev, *row) for ev in ("leave_call", "join_call") for row in _leave],
    ("get_ice_servers",  "-",       "created",  OK,        REFUSED,   OK,        REFUSED,   OK,        OK,        OK),
    # /guest: a guest of the visit (the nurse n1 and the doctor d1 are none) -------------------
    ("get_guest",        "own",     "created",  REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   OK,        OK,        OK),
    ("get_guest",        "own",     "ended",    REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   REFUSED,   OK),
    *[("get_guest", *row) for row in _guest_elsewhere],
    ("join",             "own",     "waiting",  REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   CONFLICT,  OK,        CONFLICT),
    ("join",             "own",     "ended",    REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   REFUSED,   CONFLICT),
    *[("join", *row) for row in _guest_elsewhere],
    ("leave_visit",      "own",     "in_visit", REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   OK,        OK,        OK),
    ("leave_visit",      "own",     "ended",    REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   REFUSED,   CONFLICT),
    *[("leave_visit", *row) for row in _guest_elsewhere],
    ("participants",     "own",     "in_visit", REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   OK,        FORBIDDEN, OK),
    ("participants",     "own",     "ended",    REFUSED,   FORBIDDEN, FORBIDDEN, REFUSED,   REFUSED,   REFUSED,   OK),
    *[("participants", *row) for row in _guest_elsewhere],
]
# fmt: on

CELLS = cells(GRID)


def test_grid_covers_every_event() -> None:
    """The table names every handler of every namespace (no event left to chance)."""
    from signaling.call_ns import CallNamespace
    from signaling.chat_ns import ChatNamespace
    from signaling.guests_ns import GuestNamespace
    from signaling.media_ns import MediaNamespace
    from signaling.queue_ns import QueueNamespace

    handlers: dict[str, str] = {}
    for cls, ns in ((QueueNamespace, "/queue"), (ChatNamespace, "/chat"), (CallNamespace, "/call"),
                    (MediaNamespace, "/media"), (GuestNamespace, "/guest")):
        names = [n[3:] for n in dir(cls) if n.startswith("on_") and hasattr(getattr(cls, n), "__telemed_event__")]
        handlers.update(dict.fromkeys(names, ns))
    assert handlers == NAMESPACE
    assert {e for e, *_ in (*SOCKET_GRID, *GRID)} == set(NAMESPACE)
    assert all(len(row) == 3 + len(ACTORS) for row in (*SOCKET_GRID, *GRID))



@pytest.mark.parametrize(("role", "event", "target", "state", "expected"), CELLS)
async def test_authorization_table(
    node: str, connect: Connect, redis: aioredis.Redis, role: Actor, event: str, target: str, state: str, expected: str
) -> None:
    await check_cell(node, connect, redis, role, event, target, state, expected)
