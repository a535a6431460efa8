"""Inviting a patient from the staff page: the link (copy, QR code), the
appointment the patient sees before check-in opens, the expected list with
cancelling, and a no-show showing up as missed."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.sync_api import expect

from telemed import keys
from telemed.tokens import Role
from tests.browser import _netns
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import assert_labelled

#: The clinic's (and the browsers') time zone: not the machine's, so the page's
#: conversion of local time is what is tested.
ZONE = "Asia/Seoul"
LOCAL = {"timezone_id": ZONE, "locale": "en-GB"}


def clinic_setting(node: Node, clinic: str, name: str, value: str) -> None:
    """Set a clinic setting as the admin console stores it (in the node's Redis)."""

    def store() -> None:
        with redis.Redis.from_url(node.redis_url()) as r:
            r.hset(keys.clinic_settings(clinic), name, value)

    _netns.call_in(node.netns_pid, store)


@pytest.mark.timeout(240)
def test_staff_invites_a_patient_with_an_appointment(ui: UI, node: Node, clinic: str) -> None:
    clinic_setting(node, clinic, "walk_in", "1")
    nurse = ui.page("nurse", permissions=["clipboard-read", "clipboard-write"], **LOCAL)
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nina Nurse")))
    expect(nurse.locator("#whoami")).to_have_text("Nina Nurse · nurse")
    expect(nurse.locator("#expected-empty")).to_be_visible()
    nurse.get_by_role("button", name="Invite a patient").click()
    expect(nurse.get_by_role("heading", name="Invite a patient")).to_be_visible()
    form = nurse.locator("[data-screen=invite]")
    # Walk-in is on for this clinic: its standing link and QR code are there too.
    expect(form.get_by_role("textbox", name="Walk-in link")).to_have_value(f"{node.url}/clinic/{clinic}")
    expect(form.get_by_role("img", name="QR code of the walk-in link")).to_be_visible()

    # A name is needed: said next to the form, not at the top of the page.
    nurse.get_by_role("button", name="Create the link").click()
    expect(nurse.locator("#invite-error")).to_have_text("Enter the patient's name.")
    expect(form.get_by_label("Patient name")).to_be_focused()

    at = (datetime.now(ZoneInfo(ZONE)) + timedelta(hours=2)).replace(second=0, microsecond=0)
    opens = at - timedelta(minutes=15)
    form.get_by_label("Patient name").fill("Ines Invite")
    form.get_by_label("Reason for the visit").fill("Blood test results")
    form.get_by_label("Appointment time").fill(at.strftime("%Y-%m-%dT%H:%M"))
    expect(nurse.locator("#invite-when-help")).to_contain_text(ZONE)
    nurse.get_by_role("button", name="Create the link").click()

    expect(nurse.get_by_role("heading", name="Link for Ines Invite")).to_be_visible()
    expect(nurse.locator("#invite-appointment")).to_contain_text(at.strftime("%H:%M"))
    expect(nurse.locator("#invite-appointment")).to_contain_text(f"Check-in opens {opens.strftime('%a %-d %b')}, {opens.strftime('%H:%M')}")
    link = form.get_by_role("textbox", name="Patient link").input_value()
    assert link.startswith(f"{node.url}/visit#t=")
    expect(nurse.get_by_role("img", name="QR code of the patient link")).to_be_visible()
    nurse.get_by_role("button", name="Copy the patient link").click()
    expect(nurse.locator("#invite-link-status")).to_have_text("Copied")
    assert nurse.evaluate("navigator.clipboard.readText()") == link
    assert_labelled(nurse)
    shoot(nurse, "invite-link")

    # The expected list on the waiting-room screen.
    nurse.get_by_role("button", name="Back to the waiting room").click()
    row = nurse.locator("#expected-list li", has_text="Ines Invite")
    expect(row).to_contain_text("Blood test results")
    expect(row).to_contain_text(at.strftime("%H:%M"))
    shoot(nurse, "invite-expected")

    # The patient opens the link from the page: before the window, the time.
    patient = ui.page("patient", phone=True, **LOCAL)
    patient.goto(link)
    expect(patient.get_by_role("heading", name="Your appointment")).to_be_visible()
    expect(patient.locator("#appointment-when")).to_contain_text(at.strftime("%-d %B at %H:%M"))
    expect(patient.locator("#appointment-opens")).to_contain_text(opens.strftime("%H:%M"))
    assert_labelled(patient)
    shoot(patient, "invite-appointment")

    # Cancelled from the list (inline confirmation): the patient's page says so.
    row.get_by_role("button", name="Cancel the visit of Ines Invite").click()
    row.get_by_role("button", name="Keep it").click()
    expect(row.get_by_role("button", name="Keep it")).to_have_count(0)
    row.get_by_role("button", name="Cancel the visit of Ines Invite").click()
    shoot(nurse, "invite-cancel-confirm")
    row.get_by_role("button", name="Yes, cancel it").click()
    expect(patient.get_by_role("heading", name="The clinic cancelled this visit")).to_be_visible()
    expect(row).to_have_count(0)
    expect(nurse.locator("#expected-empty")).to_be_visible()
    ui.assert_clean()


@pytest.mark.timeout(180)
def test_a_no_show_is_marked_and_shown_as_missed(ui: UI, node: Node, clinic: str) -> None:
    nurse = ui.page("nurse", **LOCAL)
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nina Nurse")))
    expect(nurse.locator("#expected-empty")).to_be_visible()
    # The appointment was 90 s ago; the no-show time is still the default (15 minutes).
    created = node.post(
        "/api/visits",
        {"patient_name": "Ola Absent", "reason": "Check-up", "scheduled_at": int(time.time()) - 90},
        node.token(Role.NURSE, clinic),
    )
    # Listed at once (the invitation reaches every staff page), then missed: once the
    # clinic's admin chooses one minute, the next sweep (each presence interval, 5 s)
    # finds it past. (Set afterwards, so no race with the sweep and no wait for it.)
    expect(nurse.locator("#expected-list li", has_text="Ola Absent")).to_be_visible()
    clinic_setting(node, clinic, "no_show_after", "60.0")
    expect(nurse.locator("#expected-list li", has_text="Ola Absent")).to_have_count(0)
    missed = nurse.locator(".missed")
    expect(missed.locator("summary")).to_have_text("Missed (1)")
    missed.locator("summary").click()
    expect(missed.locator("li", has_text="Ola Absent")).to_contain_text("No-show")
    shoot(nurse, "invite-missed")
    patient = ui.page("patient", phone=True, **LOCAL)
    patient.goto(created["patient_link"])
    expect(patient.get_by_role("heading", name="Your appointment time has passed")).to_be_visible()
    ui.assert_clean()
