"""Invitations and appointments over HTTP and sockets: ``scheduled_at`` read and
checked, the check-in window, where a scheduled patient stands in the queue,
the expected list (cancel, a fresh link) and no-shows."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import socketio

from telemed import keys
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import ORIGIN, NodeFactory, http, token
from tests.peer import Peer

CHECK_IN = {"reason": "r", "consent_visit": True, "consent_recording": False}



async def invite(node: str, **body: Any) -> dict[str, Any]:
    got, data = await http("POST", f"{node}/api/visits", token(Role.NURSE), body)
    assert got == 201, data
    return data  # type: ignore[no-any-return]


def link_token(data: dict[str, Any]) -> str:
    return str(data["patient_link"].split("#t=", 1)[1])


async def refusal_of(node: str, tok: str) -> dict[str, Any]:
    peer = Peer(node, tok, origin=ORIGIN, namespaces=["/queue"])
    refusals: list[dict[str, Any]] = []
    peer.sio.on("connect_error", refusals.append, namespace="/queue")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await peer.connect()
    return refusals[0]["data"]  # type: ignore[no-any-return]


# -- scheduled_at ---------------------------------------------------------------------------


async def test_scheduled_at_is_read_from_iso_8601_or_epoch(node: str) -> None:
    in_an_hour = datetime.now(timezone(timedelta(hours=2))).replace(microsecond=0) + timedelta(hours=1)
    data = await invite(node, patient_name="Ana", scheduled_at=in_an_hour.isoformat())
    assert data["scheduled_at"] == in_an_hour.timestamp()
    assert data["check_in_from"] == in_an_hour.timestamp() - 15 * 60
    # The link outlives the appointment's no-show time even with a short default.
    assert data["expires_at"] >= in_an_hour.timestamp() + 15 * 60
    zulu = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await invite(node, scheduled_at=zulu))["scheduled_at"] == datetime.fromisoformat(zulu).timestamp()
    epoch = int(time.time()) + 600
    data = await invite(node, scheduled_at=epoch)
    assert data["scheduled_at"] == epoch
    _, visit = await http("GET", f"{node}/api/visits/{data['visit_id']}", token(Role.NURSE))
    assert visit["visit"]["scheduled_at"] == epoch
    assert "scheduled_at" not in await invite(node)  # an invitation without a time


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("2026-13-40T25:00:00+01:00", "could not be read"),
        ("tomorrow at nine", "could not be read"),
        ((datetime.now() + timedelta(hours=1)).replace(microsecond=0).isoformat(), "time zone offset"),
        (int(time.time()) - 3600, "in the past"),
        (int(time.time()) + 30 * 86400, "at most 14 days ahead"),
        (int(time.time() * 1000) + 60_000, "not milliseconds"),
        (True, "date and time"),
        (["2026-11-27"], "date and time"),
        ("x" * 65, "date and time"),
    ],
)
async def test_a_bad_appointment_time_is_refused_in_plain_words(node: str, value: Any, words: str) -> None:
    got, data = await http("POST", f"{node}/api/visits", token(Role.NURSE), {"scheduled_at": value})
    assert got == 400, data
    assert data["error"]["code"] == "bad_request" and words in data["error"]["message"]
    assert data["error"]["details"] == {"field": "scheduled_at"}


async def test_a_link_that_would_expire_before_the_appointment_is_refused(node: str) -> None:
    got, data = await http(
        "POST", f"{node}/api/visits", token(Role.NURSE), {"scheduled_at": int(time.time()) + 7200, "ttl_minutes": 60}
    )
    assert got == 400 and "expire before the appointment" in data["error"]["message"]


# -- the check-in window ------------------------------------------------------------------


async def test_check_in_before_the_window_is_refused_with_the_times(node: str, connect, redis: aioredis.Redis) -> None:  # type: ignore[no-untyped-def]
    at = int(time.time()) + 3600
    data = await invite(node, patient_name="Ana", scheduled_at=at)
    patient = await connect(node, link_token(data))
    visit = await patient.wait_for("/queue", "visit")
    assert visit["state"] == "created" and visit["scheduled_at"] == at
    refused = await patient.call("/queue", "check_in", CHECK_IN)
    assert refused["error"] == {
        "code": "too_early",
        "message": "It is too early to check in for this appointment.",
        "details": {"scheduled_at": at, "check_in_from": at - 15 * 60},
    }
    # The window is the one the patient was told at booking: a later change of the
    # clinic's setting does not move it.
    await redis.hset(keys.clinic_settings("c1"), "check_in_window", "7200.0")
    assert (await patient.call("/queue", "check_in", CHECK_IN))["error"]["code"] == "too_early"
    # Booked under that setting, the same time is inside the window: checked in.
    data = await invite(node, patient_name="Bo", scheduled_at=at)
    assert data["check_in_from"] == at - 7200
    other = await connect(node, link_token(data))
    assert (await other.wait_for("/queue", "visit"))["check_in_from"] == at - 7200
    ok = await other.ok("/queue", "check_in", CHECK_IN)
    assert ok["visit"]["state"] == "waiting"


# -- where a scheduled patient stands ---------------------------------------------------------


async def test_an_early_scheduled_patient_ranks_at_the_appointment_and_a_late_one_at_arrival(node: str, connect) -> None:  # type: ignore[no-untyped-def]
    nurse = token(Role.NURSE)

    async def arrive(**body: Any) -> str:
        data = await invite(node, **body)
        patient = await connect(node, link_token(data))
        await patient.ok("/queue", "check_in", CHECK_IN)
        return str(data["visit_id"])

    before = await arrive(patient_name="walk-in before")
    appointment = time.time() + 1.5
    early = await arrive(patient_name="early", scheduled_at=appointment)
    meanwhile = await arrive(patient_name="walk-in meanwhile")
    late = await arrive(patient_name="late", scheduled_at=int(time.time()) - 120)
    # The rule is about the clock: wait until the appointment time has passed.
    await asyncio.sleep(max(0.0, appointment - time.time()) + 0.05)
    after = await arrive(patient_name="walk-in after")
    got, queue = await http("GET", f"{node}/api/clinics/c1/queue", nurse)
    assert got == 200
    assert [v["visit_id"] for v in queue["queue"]] == [before, meanwhile, late, early, after]
    # Within acuity first: triage the last arrival to ESI 2 and they lead.
    nurse_peer = await connect(node, nurse)
    await nurse_peer.ok("/queue", "triage", {"visit_id": early, "acuity": 2})
    _, queue = await http("GET", f"{node}/api/clinics/c1/queue", nurse)
    assert [v["visit_id"] for v in queue["queue"]] == [early, before, meanwhile, late, after]


# -- the expected list, cancel, a fresh link ---------------------------------------------------


async def test_expected_visits_are_listed_cancelled_and_re_sent(node: str, connect, redis: aioredis.Redis, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    nurse = token(Role.NURSE)
    other_staff = await connect(node, token(Role.DOCTOR))
    later = await invite(node, patient_name="Later", reason="follow-up", scheduled_at=int(time.time()) + 7200)
    # Every staff page of the clinic hears of the invitation at once.
    news = await other_staff.wait_for("/queue", "visit", lambda v: v["visit_id"] == later["visit_id"])
    assert news["state"] == "created" and news["patient_name"] == "Later"
    soon = await invite(node, patient_name="Soon", reason="rash", scheduled_at=int(time.time()) - 240)
    open_ = await invite(node, patient_name="Any time")
    got, data = await http("GET", f"{node}/api/clinics/c1/expected", nurse)
    assert got == 200
    rows = data["expected"]
    assert [r["patient_name"] for r in rows] == ["Soon", "Later", "Any time"]  # by appointment, none last
    assert [r["late"] for r in rows] == [False, False, False]
    assert rows[0]["reason"] == "rash" and rows[0]["late"] is False  # 4 min past: late after 5
    assert rows[1]["check_in_from"] == rows[1]["scheduled_at"] - 15 * 60 and rows[2]["check_in_from"] is None
    assert data["walk_in_link"] is None  # walk-in is off for c1
    await redis.hset(keys.clinic_settings("c1"), "walk_in", "1")  # its admin turns it on
    _, data = await http("GET", f"{node}/api/clinics/c1/expected", nurse)
    assert data["walk_in_link"] == "http://clinic.test/clinic/c1"

    # A fresh link works for the same visit; so does the first until it expires.
    got, fresh = await http("POST", f"{node}/api/visits/{later['visit_id']}/resend", nurse, {})
    assert got == 200 and fresh["visit_id"] == later["visit_id"] and fresh["patient_link"] != later["patient_link"]
    for tok in (link_token(fresh), link_token(later)):
        peer = await connect(node, tok)
        assert (await peer.wait_for("/queue", "visit"))["visit_id"] == later["visit_id"]
    # Both links are in the audit trail (who issued them, for which visit; no name).
    trail = [json.loads(line) for line in settings.audit_path().read_text().splitlines()]
    issued = [(r["action"], r["target"], r["actor"]["role"]) for r in trail if r.get("visit") == later["visit_id"]]
    assert issued == [("invite", "new", "nurse"), ("invite", "resend", "nurse")]
    assert "Later" not in settings.audit_path().read_text()

    # Cancelled: off the list, the patient on the page is told, the link says so afterwards.
    watching = await connect(node, link_token(soon))
    await watching.wait_for("/queue", "visit")
    got, cancelled = await http("POST", f"{node}/api/visits/{soon['visit_id']}/cancel", nurse, {})
    assert got == 200 and cancelled["visit"]["end_reason"] == "cancelled"
    told = await watching.wait_for("/queue", "visit", lambda v: v["state"] == "ended")
    assert told["end_reason"] == "cancelled"
    assert await refusal_of(node, link_token(soon)) == {
        "code": "unauthorized",
        "message": "this visit was cancelled by the clinic",
    }
    _, data = await http("GET", f"{node}/api/clinics/c1/expected", nurse)
    assert [r["patient_name"] for r in data["expected"]] == ["Later", "Any time"]

    # Checked in: no longer expected, and can be neither cancelled nor re-sent from the list.
    patient = await connect(node, link_token(open_))
    await patient.ok("/queue", "check_in", CHECK_IN)
    _, data = await http("GET", f"{node}/api/clinics/c1/expected", nurse)
    assert [r["patient_name"] for r in data["expected"]] == ["Later"]
    got, refused = await http("POST", f"{node}/api/visits/{open_['visit_id']}/cancel", nurse, {})
    assert got == 409 and refused["error"]["message"] == "The patient has already checked in: they are in the queue now."
    got, refused = await http("POST", f"{node}/api/visits/{open_['visit_id']}/resend", nurse, {})
    assert got == 409 and "already checked in" in refused["error"]["message"]


async def test_late_after_the_setting(start_node: NodeFactory, settings: Settings) -> None:
    node = await start_node(settings.with_(late_after=60.0))
    await invite(node, patient_name="Late", scheduled_at=int(time.time()) - 120)
    _, data = await http("GET", f"{node}/api/clinics/c1/expected", token(Role.NURSE))
    assert [r["late"] for r in data["expected"]] == [True]


# -- no-shows -----------------------------------------------------------------------------------


async def test_a_scheduled_patient_absent_past_the_no_show_time_is_marked_no_show(
    start_node: NodeFactory, settings: Settings, connect  # type: ignore[no-untyped-def]
) -> None:
    node = await start_node(settings.with_(no_show_after=60.0, presence_interval=0.2, grace_period=1.0))
    staff = await connect(node, token(Role.NURSE))
    future = await invite(node, patient_name="Future", scheduled_at=int(time.time()) + 3600)
    missed = await invite(node, patient_name="Missed", scheduled_at=int(time.time()) - 90)
    ended = await staff.wait_for("/queue", "visit", lambda v: v["visit_id"] == missed["visit_id"] and v["state"] == "ended", timeout=10)
    assert ended["state"] == "ended" and ended["end_reason"] == "no_show"
    assert await refusal_of(node, link_token(missed)) == {"code": "unauthorized", "message": "this appointment was missed"}
    _, data = await http("GET", f"{node}/api/clinics/c1/expected", token(Role.NURSE))
    assert [r["visit_id"] for r in data["expected"]] == [future["visit_id"]]
    assert [(r["patient_name"], r["end_reason"]) for r in data["missed"]] == [("Missed", "no_show")]
    _, visit = await http("GET", f"{node}/api/visits/{future['visit_id']}", token(Role.NURSE))
    assert visit["visit"]["state"] == "created"
    # The chart keeps the appointment; its FHIR bundle has it as a no-show.
    chart = settings.recordings_dir / "c1" / missed["visit_id"]
    fhir = await wait_for_file(chart / "fhir.json")
    assert json.loads((chart / "visit.json").read_text())["scheduled_at"] == missed["scheduled_at"]
    (appointment,) = [e["resource"] for e in json.loads(fhir)["entry"] if e["resource"]["resourceType"] == "Appointment"]
    assert appointment["status"] == "noshow"


async def wait_for_file(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written"
        await asyncio.sleep(0.05)
    return path.read_text()
