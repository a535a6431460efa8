"""The scene of the malformed-input tests (``test_bad_input_*.py``): a typed
refusal, never a crash, and the connection keeps working.

All events are sent over real sockets to a real node (see ``conftest.py``). The
scene (:func:`env`) is one visit in progress: its patient checked in and was
admitted by doctor d1, and nurse n1 is on duty. In that state every *valid*
payload has a known, harmless outcome (``test_valid_payloads_control``), so each
``bad_request`` in those tests is caused by the one thing wrong with its payload.

The order of checks in ``signaling/_base.py`` decides the code: an unknown event
name is ``bad_request`` for anyone; then the role (``forbidden``, whatever the
payload); then the schema (``bad_request``); then the handler (visit checks and
state: ``forbidden``/``not_found``/``conflict``).

The test modules import :func:`env_fixture` and :func:`no_server_errors_fixture`
and ask for ``env`` and ``no_server_errors``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pytest

from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import Peer

CHECK_IN = {"reason": "cough", "consent_visit": True, "consent_recording": False, "language": "ko", "consent_version": "2026-11"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
V = "{visit}"  # replaced by the scene's visit id

NAMESPACE = {
    **dict.fromkeys(["check_in", "leave", "get_queue", "get_visit", "triage", "route", "admit", "end"], "/queue"),
    **dict.fromkeys(["send", "history"], "/chat"),
    **dict.fromkeys(["offer", "answer", "candidate", "hangup", "ready", "get_ice_servers"], "/call"),
    **dict.fromkeys(["media_started", "call_quality"], "/call"),
    **dict.fromkeys(["leg_offer", "snapshot", "status"], "/media"),
    **dict.fromkeys(["caption_language", "captions"], "/media"),
}

#: Who sends each event below (a role the event allows).
SENDER = {
    "check_in": "patient", "leave": "patient",
    "get_queue": "nurse", "get_visit": "nurse", "triage": "nurse", "route": "nurse", "end": "nurse",
    "admit": "doctor",
    "send": "nurse", "history": "nurse",
    "offer": "doctor", "answer": "doctor", "candidate": "doctor", "hangup": "doctor", "ready": "doctor", "get_ice_servers": "doctor",
    "media_started": "doctor", "call_quality": "doctor",
    "leg_offer": "doctor", "snapshot": "doctor", "status": "doctor",
    "caption_language": "doctor", "captions": "patient",
}  # fmt: skip

#: A valid payload of each event, and what it gets in the scene (the control).
VALID: dict[str, tuple[dict[str, Any], str]] = {
    "check_in": (CHECK_IN, "conflict"),  # already in the visit
    "leave": ({}, "conflict"),  # a visit in progress is not left, it is ended
    "get_queue": ({}, "ok"),
    "get_visit": ({"visit_id": V}, "ok"),
    "triage": ({"visit_id": V, "acuity": 2, "note": "febrile"}, "conflict"),
    "route": ({"visit_id": V, "doctor": "d1"}, "conflict"),
    "admit": ({"visit_id": V}, "conflict"),
    "end": ({"visit_id": V}, "forbidden"),  # a nurse cannot end a visit in progress
    "send": ({"visit_id": V, "client_id": "cid-1", "text": "hello"}, "ok"),
    "history": ({"visit_id": V, "after": "0-0"}, "ok"),
    "offer": ({"visit_id": V, "sdp": "v=0 offer", "restart": False}, "ok"),
    "answer": ({"visit_id": V, "sdp": "v=0 answer"}, "ok"),
    "candidate": ({"visit_id": V, "candidate": CANDIDATE}, "ok"),
    "hangup": ({"visit_id": V}, "ok"),
    "ready": ({"visit_id": V}, "ok"),
    "leg_offer": ({"visit_id": V, "sdp": "v=0 leg"}, "forbidden"),  # the scene's patient did not consent
    "snapshot": ({"visit_id": V, "role": "patient"}, "not_found"),  # no worker, no leg
    "status": ({"visit_id": V}, "ok"),
    "get_ice_servers": ({}, "ok"),
    "caption_language": ({"visit_id": V, "language": "ko"}, "ok"),  # no leg here: from the next one
    "captions": ({"visit_id": V, "on": True}, "ok"),
    "media_started": ({"visit_id": V, "audio_ms": 640}, "ok"),
    "call_quality": ({"visit_id": V, "relay": True}, "ok"),
}

#: Fields that may be left out, and fields that may be null (the schema as specified).
OPTIONAL = {("triage", "acuity"), ("triage", "note"), ("route", "doctor"), ("admit", "visit_id"),
            ("history", "after"), ("offer", "restart"), ("answer", "restart"), ("offer", "call_id"),
            ("answer", "call_id"), ("candidate", "call_id"), ("snapshot", "role"),
            ("check_in", "language"), ("check_in", "consent_version")}  # fmt: skip
NULLABLE = {("triage", "acuity"), ("triage", "note"), ("route", "doctor"), ("admit", "visit_id"),
            ("history", "after"), ("candidate", "candidate"), ("offer", "call_id"), ("answer", "call_id"),
            ("candidate", "call_id"), ("check_in", "consent_version")}  # fmt: skip

#: Every reply code a malformed or fuzzed payload may get in the scene. Never
#: "error" (an unhandled exception), "unauthorized" or "unavailable".
TYPED = {"bad_request", "forbidden", "not_found", "conflict", "consent_outdated"}


@dataclass
class Env:
    node: str
    visit_id: str
    patient: Peer
    nurse: Peer
    doctor: Peer

    def peer(self, who: str) -> Peer:
        return {"patient": self.patient, "nurse": self.nurse, "doctor": self.doctor}[who]

    def fill(self, value: Any) -> Any:
        """Replace the visit placeholder, deeply."""
        if value == V:
            return self.visit_id
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.fill(v) for v in value)
        return value


def relaxed(settings: Settings) -> Settings:
    """No per-socket event rate limit (if the server has one): this module sends
    hundreds of events on one socket on purpose."""
    limits = {"event_rate": 1e6, "event_burst": 1e6}
    return settings.with_(**{k: v for k, v in limits.items() if hasattr(settings, k)})


@pytest.fixture(name="env")
async def env_fixture(start_node: Any, settings: Settings, connect: Any) -> Env:
    node = await start_node(relaxed(settings))
    visit_id, patient_token = await create_visit(node, token(Role.NURSE), reason="fever", patient_name="Pat")
    patient = await connect(node, patient_token)
    nurse = await connect(node, token(Role.NURSE, sub="n1"))
    doctor = await connect(node, token(Role.DOCTOR, sub="d1"))
    await patient.ok("/queue", "check_in", CHECK_IN)
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    return Env(node, visit_id, patient, nurse, doctor)


@pytest.fixture(name="no_server_errors")
def no_server_errors_fixture(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail the test if the server logged an error (an unhandled exception)."""
    yield
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert errors == []


async def alive(env: Env, peer: Peer, ns: str) -> None:
    """Prove the socket still works: a valid call on the same namespace succeeds."""
    assert peer.sio.connected and ns in peer.sio.namespaces
    if ns == "/queue":
        data = {"visit_id": env.visit_id} if peer is env.patient else {}
        await peer.ok(ns, "get_visit" if peer is env.patient else "get_queue", data)
    elif ns == "/chat":
        await peer.ok(ns, "history", {"visit_id": env.visit_id})
    elif ns == "/media":
        await peer.ok(ns, "status", {"visit_id": env.visit_id})
    else:
        await peer.ok(ns, "get_ice_servers", {})


async def expect(env: Env, peer: Peer, ns: str, event: str, payload: Any, code: str, label: str = "") -> dict[str, Any]:
    """Send ``payload``; assert the exact reply code ("ok" or an error code) and that
    the socket still works afterwards."""
    reply = await peer.call(ns, event, env.fill(payload))
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), (label, reply)
    if code == "ok":
        assert reply["ok"] is True, (label, reply)
    else:
        assert reply["ok"] is False and reply["error"]["code"] == code, (label, reply)
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"], (label, reply)
        assert set(reply["error"]) <= {"code", "message", "details"}, (label, reply)
    await alive(env, peer, ns)
    return reply
