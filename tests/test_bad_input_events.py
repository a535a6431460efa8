"""Which check comes first (role, then payload, then visit), unknown and
reserved event names, and refusals of events sent without an ack. The scene
and the helpers: :mod:`tests.bad_input_scene`."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import socketio

from telemed.tokens import Role
from tests.bad_input_scene import NAMESPACE, Env, V, alive, env_fixture, expect, no_server_errors_fixture  # noqa: F401
from tests.conftest import create_visit, token
from tests.peer import Peer

# -- which check comes first ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "event", "payload"),
    [
        ("nurse", "admit", "garbage"),
        ("nurse", "admit", {"visit_id": "../x", "extra": 1}),
        ("patient", "get_queue", [1, 2]),
        ("patient", "triage", {"acuity": 99}),
        ("patient", "end", None),
        ("doctor", "check_in", {"consent_visit": "maybe"}),
        ("nurse", "leave", 42),
    ],
)
async def test_role_is_checked_before_the_payload(env: Env, who: str, event: str, payload: Any) -> None:
    """A role that may not send an event is told so, whatever it sent."""
    await expect(env, env.peer(who), NAMESPACE[event], event, payload, "forbidden")


async def test_payload_is_checked_before_the_visit(env: Env) -> None:
    """For an allowed role, a malformed id is a bad request even on a visit that is not theirs."""
    other_id, _ = await create_visit(env.node, token(Role.NURSE, "c2"))
    await expect(env, env.patient, "/queue", "get_visit", {"visit_id": "../" + other_id}, "bad_request")
    await expect(env, env.patient, "/queue", "get_visit", {"visit_id": other_id}, "forbidden")
    await expect(env, env.nurse, "/chat", "send", {"visit_id": other_id, "client_id": "c", "text": ""}, "bad_request")
    await expect(env, env.nurse, "/chat", "send", {"visit_id": other_id, "client_id": "c", "text": "hi"}, "forbidden")


UNKNOWN_EVENTS = [
    ("/queue", "nope"),
    ("/queue", ""),
    ("/queue", "x" * 10_000),
    ("/queue", "check_in "),
    ("/queue", "CHECK_IN"),
    ("/queue", "on_check_in"),
    ("/queue", "send"),  # a /chat event on /queue
    ("/chat", "admit"),  # a /queue event on /chat
    ("/call", "history"),
    ("/queue", "joined"),  # methods of the namespace that are not events
    ("/queue", "trigger_event"),
    ("/queue", "_fail"),
    ("/chat", "error"),
    ("/call", "message"),
]


@pytest.mark.parametrize("who", ["patient", "nurse", "doctor"])
async def test_unknown_events(env: Env, who: str, no_server_errors: None) -> None:
    peer = env.peer(who)
    for ns, name in UNKNOWN_EVENTS:
        if ns not in peer.namespaces:
            continue
        reply = await expect(env, peer, ns, name, {"visit_id": V}, "bad_request", name[:20])
        assert len(reply["error"]["message"]) <= 200  # a long name is not echoed whole
        err = await peer.wait_for(ns, "error", lambda e, n=name: e["event"] == n[:64])
        assert err["code"] == "bad_request"


# -- without an ack ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "ns", "event", "payload", "code"),
    [
        ("nurse", "/queue", "triage", {"visit_id": V, "acuity": 0}, "bad_request"),
        ("nurse", "/chat", "send", [], "bad_request"),
        ("doctor", "/call", "offer", None, "bad_request"),
        ("patient", "/queue", "nope", None, "bad_request"),
        ("patient", "/queue", "get_queue", {}, "forbidden"),
    ],
)
async def test_error_event_without_ack(env: Env, who: str, ns: str, event: str, payload: Any, code: str) -> None:
    """A client that did not ask for an ack still hears about the failure."""
    peer = env.peer(who)
    await peer.sio.emit(event, env.fill(payload), namespace=ns)
    err = await peer.wait_for(ns, "error", lambda e: e["event"] == event)
    assert err["code"] == code and isinstance(err["message"], str)
    await alive(env, peer, ns)


async def test_valid_event_without_ack_is_silent(env: Env) -> None:
    await env.nurse.sio.emit("get_queue", {}, namespace="/queue")
    await alive(env, env.nurse, "/queue")
    assert env.nurse.events[("/queue", "error")] == []


# -- event names the server reserves ------------------------------------------------------------


async def call_or_none(peer: Peer, ns: str, event: str, data: Any) -> Any:
    try:
        return await peer.call(ns, event, data, timeout=2)
    except socketio.exceptions.TimeoutError:
        return None


@pytest.mark.parametrize("name", ["disconnect", "connect"])
async def test_reserved_event_names_are_unknown_events(env: Env, name: str) -> None:
    reply = await call_or_none(env.nurse, "/queue", name, {"token": "x"})
    gc.collect()  # surface a never-retrieved task exception in this test, not a later one
    assert isinstance(reply, dict) and reply.get("ok") is False and reply["error"]["code"] == "bad_request", reply
    await alive(env, env.nurse, "/queue")
