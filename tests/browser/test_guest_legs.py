"""Guests' chart legs in Chromium (issue 13): an interpreter who agreed to be
recorded sends their own leg (web/guest_leg.js) and the worker records it under
their name and kind; a caregiver who declined is not recorded, and every page
of the call says so in words next to the recording indicator."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, check_in, guest_enters, invite_guest, let_in, recording_shown

NOT_RECORDED = "Maria Lopez (Caregiver or family) is not being recorded"


@pytest.mark.timeout(420)
def test_an_interpreter_is_recorded_and_a_caregiver_who_declined_is_said_not_to_be(ui: UI, node: Node, clinic: str) -> None:
    visit_id, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    interpreter = ui.page("interpreter", phone=True)
    caregiver = ui.page("caregiver", phone=True)
    check_in(patient, link, "Dolor de garganta")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Rosa Díaz")

    guest_enters(interpreter, invite_guest(doctor, "Marta Ruiz", language="es"), recording=True)
    let_in(doctor, interpreter, "Marta Ruiz")
    guest_enters(caregiver, invite_guest(doctor, "Maria Lopez", language=None, kind="caregiver"))
    let_in(doctor, caregiver, "Maria Lopez")

    # -- the interpreter's own leg records, labelled with their name and kind ----------------------
    index = node.wait_index(clinic, visit_id, lambda doc: any(r.get("kind") == "interpreter" for r in doc["recordings"]),
                            timeout=120)
    mine = next(r for r in index["recordings"] if r.get("kind") == "interpreter")
    assert (mine["role"], mine["name"]) == ("guest", "Marta Ruiz") and mine["file"] == f"recording-{mine['party']}-1.webm"
    recording_shown(interpreter)

    # -- the others are told who is not recorded; the caregiver sends no leg ------------------------
    for page in (doctor, patient, interpreter, caregiver):
        expect(page.locator("#recording-not")).to_have_text(NOT_RECORDED)
    assert not any(r.get("kind") == "caregiver" for r in node.recordings_index(clinic, visit_id)["recordings"])
    shoot(doctor, "guest-legs-doctor")
    shoot(patient, "guest-legs-patient")
    shoot(interpreter, "guest-legs-interpreter")
    shoot(caregiver, "guest-legs-caregiver")
