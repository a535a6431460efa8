"""The patient's page reloads in the waiting room and again in the visit:
the place in line, the chat and the visit (call and chart leg) come back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, check_in, leg_sends, media_flows, recording_shown, send_chat


@pytest.mark.timeout(300)
def test_patient_reloads_mid_wait_and_mid_visit(ui: UI, node: Node, clinic: str) -> None:
    _, first_link = node.create_visit(clinic, "Bea First")
    visit_id, link = node.create_visit(clinic, "Carl Second")
    first = ui.page("first-patient", phone=True)
    patient = ui.page("patient", phone=True)
    nurse = ui.page("nurse")
    check_in(first, first_link, "Cough", recording=False)
    check_in(patient, link, "Rash on both arms")
    expect(patient.locator("#wait-position")).to_have_text("2")

    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic)))
    nurse.locator("#queue-body tr", has_text="Carl Second").get_by_role("button", name=re.compile("^Chat with Carl")).click()
    send_chat(nurse.locator(".chat-pane", has_text="Carl Second"), "Is the rash itchy?")
    expect(patient.locator(".chat-log")).to_contain_text("Is the rash itchy?")

    # -- reload in the waiting room: same place, same chat (each message once) -------------
    patient.reload()
    expect(patient.get_by_role("heading", name="You’re in the waiting room")).to_be_visible()
    expect(patient.locator("#wait-position")).to_have_text("2")
    expect(patient.locator("#wait-eta")).not_to_have_text("…")
    expect(patient.locator(".chat-log .msg")).to_have_count(1)
    expect(first.locator("#wait-position")).to_have_text("1 — you’re next")
    shoot(patient, "patient-waiting-after-reload", sizes=("phone",))

    # -- the doctor admits; then the patient's page reloads mid-visit -----------------------
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Okafor")))
    admit(doctor, "Carl Second")
    expect(patient.get_by_role("heading", name="Dr. Okafor is ready")).to_be_visible()
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    recording_shown(patient)
    leg_sends(patient, "patient")

    patient.reload()
    expect(patient.get_by_role("heading", name="Dr. Okafor is ready")).to_be_visible()
    media_flows(patient, "patient after reload")
    media_flows(doctor, "doctor after the patient's reload")
    recording_shown(patient)  # from `status` on load, then the new leg's events
    recording_shown(doctor)
    leg = leg_sends(patient, "patient after reload")
    assert leg["count"] == 1, leg
    expect(patient.locator("#call-chat-slot .chat-log .msg")).to_have_count(1)
    # The new leg records into the patient's next file; the first one was closed properly.
    node.wait_index(
        clinic,
        visit_id,
        lambda doc: any(r["file"] == "recording-patient-2.webm" for r in doc["recordings"])
        and any(r["file"] == "recording-patient-1.webm" and r["state"] == "complete" for r in doc["recordings"]),
    )

    # -- the network drops and comes back: the sockets reconnect, the leg is offered anew -----
    patient.context.set_offline(True)
    expect(patient.locator("#connection")).to_have_attribute("data-state", "reconnecting", timeout=60_000)
    patient.context.set_offline(False)
    expect(patient.locator("#connection")).to_have_attribute("data-state", "online", timeout=60_000)
    node.wait_index(clinic, visit_id, lambda doc: any(r["file"] == "recording-patient-3.webm" for r in doc["recordings"]))
    assert leg_sends(patient, "patient after the network drop")["count"] == 1
    media_flows(patient, "patient after the network drop")

    # -- the doctor's page reloads too: the visit, the call and the doctor's leg come back ----
    doctor.reload()
    expect(doctor.get_by_role("heading", name="Visit with Carl Second")).to_be_visible()
    media_flows(doctor, "doctor after own reload")
    media_flows(patient, "patient after the doctor's reload")
    recording_shown(doctor)
    assert leg_sends(doctor, "doctor after own reload")["count"] == 1

    # -- the worker drops the patient's leg (as when it dies): the page offers a new one -------
    node.close_leg(visit_id, "patient", reason="dropped by the test")
    node.wait_index(
        clinic,
        visit_id,
        lambda doc: any(r["file"] == "recording-patient-4.webm" for r in doc["recordings"])
        and any(r["file"] == "recording-patient-3.webm" and r.get("end_reason") == "dropped by the test" for r in doc["recordings"]),
        timeout=90,
    )
    assert leg_sends(patient, "patient after its leg was dropped")["count"] == 1
    recording_shown(patient)

    doctor.get_by_role("button", name="End visit").click()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(patient.get_by_role("heading", name="Your visit has ended")).to_be_visible()
    expect(first.locator("#wait-position")).to_have_text("1 — you’re next")
    ui.assert_clean()
