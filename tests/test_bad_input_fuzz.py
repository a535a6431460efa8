"""Fuzzing every socket event (Hypothesis): whatever arrives gets a typed
reply and the connection and the visit go on. The scene and the helpers:
:mod:`tests.bad_input_scene`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.bad_input_scene import NAMESPACE, SENDER, TYPED, VALID, Env, V, alive, env_fixture, no_server_errors_fixture  # noqa: F401

# -- fuzz -------------------------------------------------------------------------------------
#
# Hypothesis drives the sockets from a worker thread. The fixtures (node, Redis,
# sockets) are async and function-scoped, so ``@given`` cannot decorate the test
# itself; instead the test defines a plain synchronous ``@given`` function and runs
# it with ``asyncio.to_thread``. Each example hands its socket call back to the
# test's event loop with ``asyncio.run_coroutine_threadsafe(...).result()`` and
# checks the reply in the thread; a failing example is shrunk and re-raised as
# usual. (``strategy.example()`` is not meant for tests, and pytest-asyncio's own
# ``@given`` support would rerun function-scoped fixtures' assumptions per example.)
# No example database (nothing written to the repository), no deadline.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)
IDS = st.sampled_from([V, "x" * 64, "x" * 65, "nope", "", "../x"]) | st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)
#: Stream ids within Redis' range (the overflow: test_bad_input_payloads.py's test_history_after_beyond_64_bits).
STREAM_IDS = st.from_regex(r"[0-9]{1,19}-[0-9]{1,19}", fullmatch=True)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "visit_id": IDS,
    "doctor": IDS,
    "client_id": IDS,
    "reason": st.text(max_size=600),
    "note": st.text(max_size=100),
    "text": st.text(max_size=200) | st.sampled_from(["a" * 4097, "é" * 2049, " "]),
    "sdp": st.text(max_size=200),
    "after": STREAM_IDS,
    "acuity": st.integers(-3, 9),
    "consent_visit": st.booleans(),
    "consent_recording": st.booleans(),
    "restart": st.booleans(),
    "role": st.sampled_from(["patient", "doctor", "nurse", "", "PATIENT"]),
    "call_id": IDS,
    "language": st.sampled_from(["en", "zh-CN", "zh-cn", "ko", "es", "es-419", "x-pseudo", "EN", "e", ""]) | st.text(max_size=20),
    "consent_version": st.sampled_from(["2026-11", "2020-01", "", "../x"]) | st.text(max_size=40),
    "on": st.booleans(),
    "audio_ms": st.integers(-5, 700_000) | st.floats(allow_nan=False),
    "relay": st.booleans(),
    "candidate": st.none() | st.fixed_dictionaries(
        {"candidate": st.text(max_size=50)},
        optional={"sdpMid": st.text(max_size=5) | st.none(), "sdpMLineIndex": st.integers(-2, 70), "usernameFragment": st.text(max_size=10), "x": JSON},
    ),
}


def payloads(event: str) -> st.SearchStrategy[Any]:
    """Arbitrary JSON; objects shaped like the event's schema with arbitrary or
    near-valid values; and, most often, the valid payload with some fields
    replaced by near-valid values, so that many get past validation into the
    handlers (visit checks, state machine, Redis, relay)."""
    valid = VALID[event][0]
    keys = list(valid)
    shaped = st.fixed_dictionaries({}, optional={k: FIELDS[k] | JSON for k in keys})
    near_valid = st.fixed_dictionaries({k: st.just(v) | FIELDS[k] for k, v in valid.items()})
    extra = st.dictionaries(st.text(max_size=8), JSON, min_size=1, max_size=2)
    with_extra = st.builds(lambda d, e: {**d, **e}, near_valid, extra)
    return st.one_of(JSON, shaped, with_extra, near_valid, near_valid, near_valid)


@pytest.mark.parametrize("event", list(VALID))
async def test_fuzz(env: Env, event: str, no_server_errors: None) -> None:
    loop = asyncio.get_running_loop()
    peer, ns = env.peer(SENDER[event]), NAMESPACE[event]
    codes: list[str] = []

    @hsettings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(payloads(event))
    def property_(payload: Any) -> None:
        reply = asyncio.run_coroutine_threadsafe(peer.call(ns, event, env.fill(payload)), loop).result(timeout=10)
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
        if not reply["ok"]:
            assert reply["error"]["code"] in TYPED, (payload, reply)
            assert isinstance(reply["error"]["message"], str), reply
        assert peer.sio.connected and ns in peer.sio.namespaces, payload
        codes.append("ok" if reply["ok"] else reply["error"]["code"])

    await asyncio.to_thread(property_)
    assert len(codes) >= 20 and "bad_request" in codes, codes  # it did run, and hit the validation
    await alive(env, peer, ns)
    # The other parties are fine too: the visit is still in progress.
    visit = (await env.nurse.ok("/queue", "get_visit", {"visit_id": env.visit_id}))["visit"]
    assert visit["state"] == "in_visit"
    await alive(env, env.patient, "/queue")
