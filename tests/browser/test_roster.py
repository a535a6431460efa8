"""Routing by name in Chromium: the nurse picks a doctor from the clinic's
roster (on duty, free), another nurse sees who has the patient open, a route
to a doctor the clinic does not know is refused in words, and the doctor
admits the routed patient; a patient routed to a doctor who goes off duty
returns to the shared queue, and the nurse is told."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Playwright, expect

from telemed.tokens import Role
from tests.browser.conftest import ARGS, UI, Node, dev_node, shoot
from tests.browser.steps import admit, assert_labelled, check_in


@pytest.mark.timeout(240)
def test_nurse_routes_by_name_and_the_doctor_admits(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Ms. Han")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    nurse = ui.page("nurse")
    other = ui.page("nurse-bo", phone=True)

    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Lee")))
    expect(doctor.locator("#whoami")).to_have_text("Dr. Lee · doctor")
    check_in(patient, link, "Rash on both arms")
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Ana")))
    row = nurse.locator("#queue-body tr", has_text="Ms. Han")
    expect(row).to_contain_text("Online")

    # -- the picker: doctors by name, with their state; no ids anywhere -----------------------
    row.get_by_role("button", name="Triage Ms. Han").click()
    picker = nurse.get_by_label("Route to doctor")
    expect(picker.locator("option", has_text="Dr. Lee — on duty, free")).to_have_count(1)
    picker.select_option(label="Dr. Lee — on duty, free")
    nurse.get_by_role("button", name="Route", exact=True).click()
    expect(nurse.locator("#route-status")).to_have_text("Routed to Dr. Lee.")
    expect(row.locator('td[data-label="Doctor"]')).to_have_text("Dr. Lee")
    assert_labelled(nurse)
    shoot(nurse, "roster-routed")

    # -- a second nurse sees who is with the patient, and is warned on opening ---------------
    other.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Bo")))
    orow = other.locator("#queue-body tr", has_text="Ms. Han")
    expect(orow).to_contain_text("with Nurse Ana")
    orow.get_by_role("button", name="Triage Ms. Han").click()
    expect(other.locator("#triage-claimed")).to_have_text("Nurse Ana has this patient open too.")
    shoot(other, "roster-claimed")
    other.get_by_role("button", name="Close", exact=True).click()

    # -- a doctor the clinic does not know (a stale or tampered choice): refused in words -----
    # In one task of the page, so a queue push cannot rebuild the picker in between.
    nurse.evaluate(
        """() => { const select = document.querySelector('#route-doctor');
                   const o = document.createElement('option'); o.value = 'd-nobody'; o.textContent = 'Dr. Nobody';
                   select.append(o); select.value = 'd-nobody';
                   [...document.querySelectorAll('button')].find((b) => b.textContent.trim() === 'Route').click(); }"""
    )
    expect(nurse.locator("#route-status")).to_have_text("Not routed: That doctor is not on this clinic's roster.")
    expect(row.locator('td[data-label="Doctor"]')).to_have_text("Dr. Lee")  # unchanged
    shoot(nurse, "roster-unknown-refused")

    # -- the doctor admits the patient routed to him ---------------------------------------------
    admit(doctor, "Ms. Han")
    expect(patient.get_by_role("heading", name="Dr. Lee is ready")).to_be_visible()
    expect(nurse.locator("#active-list")).to_contain_text("Ms. Han with Dr. Lee")
    ui.assert_clean()


@pytest.fixture(scope="module")
def quick_return_node(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A second ``telemed dev`` where a doctor is off duty after 2 s and their
    routed patients return after 3 s."""
    with dev_node(
        chromium,
        tmp_path_factory,
        name="route-return-node",
        TELEMED_PRESENCE_INTERVAL="1s",
        TELEMED_ON_DUTY="2s",
        TELEMED_ROUTE_RETURN="3s",
    ) as started:
        yield started


@pytest.mark.timeout(240)
def test_a_patient_whose_doctor_goes_off_duty_returns_to_the_shared_queue(
    quick_return_node: Node, clinic: str, playwright: Playwright, request: pytest.FixtureRequest
) -> None:
    node = quick_return_node
    browser = playwright.chromium.launch(executable_path=node.chromium, args=ARGS, headless=True)
    ui = UI(node=node, browser=browser, request=request)
    try:
        _, link = node.create_visit(clinic, "Ms. Han")
        patient = ui.page("patient", phone=True)
        doctor = ui.page("doctor")
        nurse = ui.page("nurse")
        doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Lee")))
        expect(doctor.locator("#whoami")).to_have_text("Dr. Lee · doctor")
        check_in(patient, link, "Rash on both arms")
        nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Ana")))
        row = nurse.locator("#queue-body tr", has_text="Ms. Han")
        row.get_by_role("button", name="Triage Ms. Han").click()
        nurse.get_by_label("Route to doctor").select_option(label="Dr. Lee — on duty, free")
        nurse.get_by_role("button", name="Route", exact=True).click()
        expect(row.locator('td[data-label="Doctor"]')).to_have_text("Dr. Lee")
        nurse.get_by_role("button", name="Close", exact=True).click()

        doctor.close()  # Dr. Lee goes away
        notice = nurse.get_by_text("Ms. Han went back to the shared queue: Dr. Lee went off duty.")
        expect(notice).to_be_visible(timeout=30_000)
        expect(row.locator('td[data-label="Doctor"]')).to_have_text("Any doctor")
        shoot(nurse, "roster-returned")
        # The picker now says so too.
        row.get_by_role("button", name="Triage Ms. Han").click()
        expect(nurse.get_by_label("Route to doctor").locator("option", has_text="Dr. Lee — off duty")).to_have_count(1)
        ui.assert_clean()
    finally:
        ui.close()
        browser.close()
