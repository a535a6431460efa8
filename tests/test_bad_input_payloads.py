"""Malformed payloads on every socket event, and the limits of specific fields:
a typed refusal (the exact code), never a crash, and the connection keeps
working. The scene and the helpers: :mod:`tests.bad_input_scene`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.bad_input_scene import (  # noqa: F401  (fixtures)
    CANDIDATE,
    CHECK_IN,
    NAMESPACE,
    NULLABLE,
    OPTIONAL,
    SENDER,
    VALID,
    Env,
    V,
    env_fixture,
    expect,
    no_server_errors_fixture,
)

# -- the control: valid payloads get their known outcome -------------------------------------


@pytest.mark.parametrize("event", list(VALID))
async def test_valid_payloads_control(env: Env, event: str) -> None:
    payload, code = VALID[event]
    who = SENDER[event]
    await expect(env, env.peer(who), NAMESPACE[event], event, payload, code)
    if event in ("leave", "get_queue", "get_ice_servers"):
        # An event without fields also takes no payload at all.
        await expect(env, env.peer(who), NAMESPACE[event], event, None, code)


# -- the same malformations on every event ------------------------------------------------------


def wrong_values(value: Any) -> dict[str, Any]:
    """Values of the wrong JSON type for a field whose valid example is ``value``."""
    out: dict[str, Any] = {"list": [], "object": {}, "number": 12345, "float": 1.5, "bool": True, "string": "x"}
    if isinstance(value, str):
        del out["string"]
        out["huge"] = "x" * 100_000  # every string field has a limit far below this
        out["list-of-the-valid-value"] = [value]
    elif isinstance(value, bool):
        del out["bool"]
        out["string-true"] = "true"
        out["one"] = 1
    elif isinstance(value, int):
        del out["number"]
        out["numeric-string"] = str(value)
        out["integral-float"] = float(value)
    elif isinstance(value, dict):
        del out["object"]  # {} is wrong here too, but as a missing field: see missing-*
    return out


def malformations(event: str) -> list[tuple[str, Any]]:
    valid, _ = VALID[event]
    cases: list[tuple[str, Any]] = [
        ("list", []),
        ("list-of-the-valid-payload", [valid]),
        ("string", "payload"),
        ("json-in-a-string", json.dumps(valid)),
        ("number", 42),
        ("float", 1.5),
        ("true", True),
        ("false", False),
        ("binary", b"\x00\x01binary"),
        ("extra-field", {**valid, "extra": 1}),
        ("extra-field-null", {**valid, "is_admin": None}),
        ("two-payloads", (valid, valid)),
    ]
    if valid:  # events with fields do not take a missing payload
        cases.append(("null", None))
    for key, value in valid.items():
        if (event, key) not in OPTIONAL:
            cases.append((f"missing-{key}", {k: v for k, v in valid.items() if k != key}))
        if (event, key) not in NULLABLE:
            cases.append((f"{key}-null", {**valid, key: None}))
        for name, wrong in wrong_values(value).items():
            if (event, key, name) != ("check_in", "consent_visit", "one"):  # see test_consent_visit_must_be_true
                cases.append((f"{key}-{name}", {**valid, key: wrong}))
    return cases


@pytest.mark.parametrize("event", list(VALID))
async def test_malformed_payloads(env: Env, event: str, no_server_errors: None) -> None:
    peer, ns = env.peer(SENDER[event]), NAMESPACE[event]
    cases = malformations(event)
    assert len(cases) >= 12
    for label, payload in cases:
        await expect(env, peer, ns, event, payload, "bad_request", f"{event}/{label}")
    # Nothing reached a handler: the visit is still in progress, untouched.
    visit = (await env.nurse.ok("/queue", "get_visit", {"visit_id": env.visit_id}))["visit"]
    assert (visit["state"], visit["acuity"], visit["triage_note"]) == ("in_visit", None, "")


# -- specific fields --------------------------------------------------------------------------

BAD_IDS = ["", "x" * 65, "x" * 100_000, "a b", "../etc", "a/b", "é", "x\n", "\nx", "x\x00", "{x}", "*", "x;y"]


@pytest.mark.parametrize("event", [e for e, (p, _) in VALID.items() if "visit_id" in p])
async def test_bad_visit_ids(env: Env, event: str, no_server_errors: None) -> None:
    peer, ns = env.peer(SENDER[event]), NAMESPACE[event]
    valid, _ = VALID[event]
    for bad in BAD_IDS:
        await expect(env, peer, ns, event, {**valid, "visit_id": bad}, "bad_request", repr(bad[:20]))
    # The longest well-formed id passes validation and reaches the visit lookup
    # (for a patient, any visit but their own is simply not theirs).
    await expect(env, peer, ns, event, {**valid, "visit_id": "x" * 64},
                 "forbidden" if SENDER[event] == "patient" else "not_found")


@pytest.mark.parametrize(
    "field", [("route", "doctor"), ("send", "client_id")], ids=lambda f: ".".join(f)
)
async def test_bad_other_ids(env: Env, field: tuple[str, str]) -> None:
    event, key = field
    peer, ns = env.peer(SENDER[event]), NAMESPACE[event]
    valid, _ = VALID[event]
    for bad in BAD_IDS:
        await expect(env, peer, ns, event, {**valid, key: bad}, "bad_request", repr(bad[:20]))


ACUITY_CASES = [
    (0, "bad_request"), (6, "bad_request"), (-1, "bad_request"), (10**20, "bad_request"), ("2", "bad_request"),
    (2.0, "bad_request"), (2.5, "bad_request"), (True, "bad_request"), ([2], "bad_request"), ({"esi": 2}, "bad_request"),
    (1, "conflict"), (5, "conflict"),  # valid: reaches the state check (the visit is in progress)
]  # fmt: skip


async def test_acuity(env: Env) -> None:
    for acuity, code in ACUITY_CASES:
        await expect(env, env.nurse, "/queue", "triage", {"visit_id": V, "acuity": acuity}, code, repr(acuity))


async def test_triage_needs_acuity_or_note(env: Env) -> None:
    for payload in ({"visit_id": V}, {"visit_id": V, "acuity": None, "note": None}):
        await expect(env, env.nurse, "/queue", "triage", payload, "bad_request")
    await expect(env, env.nurse, "/queue", "triage", {"visit_id": V, "note": "x" * 4001}, "bad_request")
    await expect(env, env.nurse, "/queue", "triage", {"visit_id": V, "note": "x" * 4000}, "conflict")


#: Chat text limits: 4096 bytes of UTF-8 (not characters), and not blank.
CHAT_TEXTS = [
    ("ascii-4096", "a" * 4096, "ok"),
    ("2-byte-4096", "é" * 2048, "ok"),
    ("3-byte-4095", "€" * 1365, "ok"),
    ("3-byte-4095+1", "€" * 1365 + "a", "ok"),
    ("4-byte-4096", "😀" * 1024, "ok"),
    ("one-char", "?", "ok"),
    ("padded", "  hi  ", "ok"),
    ("ascii-4097", "a" * 4097, "bad_request"),
    ("2-byte-4098", "é" * 2049, "bad_request"),
    ("2-byte-4096+1", "é" * 2048 + "a", "bad_request"),
    ("3-byte-4098", "€" * 1366, "bad_request"),
    ("4-byte-4096+1", "😀" * 1024 + "a", "bad_request"),
    ("4-byte-1100-chars", "😀" * 1100, "bad_request"),  # 1100 characters, 4400 bytes
    ("100kb", "x" * 100_000, "bad_request"),
    ("empty", "", "bad_request"),
    ("spaces", "     ", "bad_request"),
    ("whitespace", " \n\t\r ", "bad_request"),
    ("unicode-spaces", "\u3000\u00a0\u2003", "bad_request"),
    ("lone-surrogate", "\ud800", "bad_request"),
]


async def test_chat_text(env: Env) -> None:
    stored: list[tuple[str, str]] = []
    for i, (label, text, code) in enumerate(CHAT_TEXTS):
        payload = {"visit_id": V, "client_id": f"cid-{i}", "text": text}
        reply = await expect(env, env.nurse, "/chat", "send", payload, code, label)
        if code == "ok":
            # Stored and delivered exactly as sent.
            stored.append((reply["id"], text))
            got = await env.patient.wait_for("/chat", "message", lambda m, mid=reply["id"]: m["id"] == mid)
            assert got["text"] == text, label
        history = (await env.nurse.ok("/chat", "history", {"visit_id": env.visit_id}))["messages"]
        assert [(m["id"], m["text"]) for m in history] == stored, label  # nothing stored for a refusal



BAD_STREAM_IDS = ["abc", "1-", "-1", "1-2-3", "1", "", " 1-0", "1-0 ", "1-0\n", "$", "+", "-", "(1-0",
                  "1" * 21 + "-0", "0-" + "1" * 21, "１-0", 123, ["1-0"], {"ms": 1}]  # fmt: skip
GOOD_STREAM_IDS = ["0-0", "1732240000000-0", "18446744073709551615-0", None]
#: Well-formed by the pattern, but outside Redis' 64-bit stream ids.
HUGE_STREAM_IDS = ["99999999999999999999-0", "18446744073709551616-0", "0-18446744073709551616",
                   "18446744073709551615-18446744073709551615"]  # fmt: skip


async def test_history_after(env: Env, no_server_errors: None) -> None:
    for after in BAD_STREAM_IDS:
        await expect(env, env.nurse, "/chat", "history", {"visit_id": V, "after": after}, "bad_request", repr(after))
    for after in GOOD_STREAM_IDS:
        await expect(env, env.nurse, "/chat", "history", {"visit_id": V, "after": after}, "ok", repr(after))


async def test_history_after_beyond_64_bits(env: Env) -> None:
    for after in HUGE_STREAM_IDS:
        await expect(env, env.nurse, "/chat", "history", {"visit_id": V, "after": after}, "bad_request", after)


async def test_check_in_fields(env: Env) -> None:
    patient = env.patient
    for bad in (
        {**CHECK_IN, "consent_visit": False},  # consent to the video visit is required
        {**CHECK_IN, "consent_visit": "yes"},
        {**CHECK_IN, "consent_recording": "no"},
        {**CHECK_IN, "reason": "r" * 501},
    ):
        await expect(env, patient, "/queue", "check_in", bad, "bad_request", str(bad)[:60])
    await expect(env, patient, "/queue", "check_in", {**CHECK_IN, "reason": "r" * 500}, "conflict")


@pytest.mark.parametrize("consent", [1, 1.0])
async def test_consent_visit_must_be_true(env: Env, consent: Any) -> None:
    await expect(env, env.patient, "/queue", "check_in", {**CHECK_IN, "consent_visit": consent}, "bad_request")


async def test_sdp_and_candidate_limits(env: Env) -> None:
    doc = env.doctor
    for bad in ("", "x" * (64 * 1024 + 1), "x" * 200_000):
        await expect(env, doc, "/call", "offer", {"visit_id": V, "sdp": bad}, "bad_request", f"sdp of {len(bad)}")
    await expect(env, doc, "/call", "offer", {"visit_id": V, "sdp": "x" * (64 * 1024)}, "ok")
    assert len((await env.patient.wait_for("/call", "offer", lambda o: len(o["sdp"]) == 64 * 1024))["sdp"]) == 64 * 1024
    for bad in (
        {"candidate": "c" * 1025},
        {"candidate": "c", "sdpMLineIndex": 65},
        {"candidate": "c", "sdpMLineIndex": -1},
        {"candidate": "c", "sdpMLineIndex": "0"},
        {"candidate": "c", "sdpMid": "m" * 65},
        {"candidate": "c", "usernameFragment": "u" * 257},
        {"candidate": "c", "extra": 1},
        {"sdpMid": "0"},
        {"candidate": None},
        [CANDIDATE],
        "candidate:1 1 udp 1 192.0.2.1 1 typ host",
    ):
        await expect(env, doc, "/call", "candidate", {"visit_id": V, "candidate": bad}, "bad_request", str(bad)[:40])
    # The end-of-candidates marker is null, and is relayed as such.
    await expect(env, doc, "/call", "candidate", {"visit_id": V, "candidate": None}, "ok")
    assert (await env.patient.wait_for("/call", "candidate"))["candidate"] is None


async def test_admit_payloads(env: Env) -> None:
    # Admit has (optional) fields, so unlike get_queue it does not take a missing payload.
    await expect(env, env.doctor, "/queue", "admit", None, "bad_request")
    await expect(env, env.doctor, "/queue", "admit", {}, "not_found")  # nobody else is waiting
    await expect(env, env.doctor, "/queue", "admit", {"visit_id": None}, "not_found")
    await expect(env, env.doctor, "/queue", "admit", {"visit_id": ""}, "bad_request")
