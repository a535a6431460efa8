"""The patient's estimated wait in plain words (the rule: telemed/estimate.py):
nothing promised while no doctor is on duty, "shortly" for the first patient
once a doctor is free, a range for the one behind, and a range for the first in
line once that doctor is busy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, check_in

A_RANGE = re.compile(r"^(less than \d+ minutes|\d+–\d+ minutes)$")


@pytest.mark.timeout(240)
def test_the_waiting_room_shows_an_honest_wait(ui: UI, node: Node, clinic: str) -> None:
    _, first_link = node.create_visit(clinic, "Ada First")
    _, second_link = node.create_visit(clinic, "Ben Second")
    first = ui.page("first-patient", phone=True)
    second = ui.page("second-patient")
    check_in(first, first_link, "Sore throat", recording=False)
    expect(first.locator("#wait-eta")).to_have_text("We’ll know once a doctor is online")
    shoot(first, "patient-wait-no-doctor", sizes=("phone",))
    check_in(second, second_link, "Back pain", recording=False)
    expect(second.locator("#wait-position")).to_have_text("2")

    # A doctor comes on duty and is free: the first patient is next, the second waits for a visit.
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Osei")))
    expect(first.locator("#wait-eta")).to_have_text("Next — a doctor will be with you shortly")
    expect(second.locator("#wait-eta")).to_have_text(A_RANGE)
    shoot(first, "patient-wait-shortly")
    shoot(second, "patient-wait-range")

    # Dr. Osei admits Ada: Ben is first in line, but waits for that visit to end.
    admit(doctor, "Ada First")
    expect(second.locator("#wait-position")).to_have_text("1 — you’re next")
    expect(second.locator("#wait-eta")).to_have_text(A_RANGE)
    expect(second.locator("#wait-eta")).not_to_have_class(re.compile("wait-soon"))
