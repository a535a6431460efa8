"""Calls of more than two (issue 13) in Chromium: the patient, the doctor and
an interpreter, each page with a connection to each other one (the mesh,
web/mesh.js), shown as tiles (web/tiles.js): media flows between every pair,
the tiles say who is who, the doctor pins the interpreter, the patient's mute
shows on their tile, the patient leaves the call and comes back, and the
doctor removes the interpreter."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, guest_enters, invite_guest, let_in, mesh_flows


def tile(page: Page, kind: str) -> Locator:
    return page.locator(f"#tiles .tile[data-kind={kind}]")


@pytest.mark.timeout(420)
def test_three_people_in_a_call(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    guest = ui.page("interpreter", phone=True)
    check_in(patient, link, "Dolor de garganta", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Rosa Díaz")
    mesh_flows(patient, "patient", 1)

    guest_link = invite_guest(doctor, "Marta Ruiz", language="es")
    guest_enters(guest, guest_link)
    let_in(doctor, guest, "Marta Ruiz")

    # -- media between every pair: two growing connections on each page -------------------------
    for page, who in ((doctor, "doctor"), (patient, "patient"), (guest, "interpreter")):
        mesh_flows(page, who, 2)

    # -- each tile says who and why -------------------------------------------------------------
    expect(tile(doctor, "patient")).to_contain_text("Rosa Díaz")
    expect(tile(doctor, "patient")).to_contain_text("Patient")
    expect(tile(doctor, "interpreter")).to_contain_text("Marta Ruiz")
    expect(tile(doctor, "interpreter")).to_contain_text("Interpreter — Spanish")
    expect(tile(patient, "doctor")).to_contain_text("Dr. Rivera")
    expect(tile(patient, "interpreter")).to_contain_text("Interpreter — Spanish")
    expect(tile(guest, "doctor")).to_contain_text("Dr. Rivera")
    expect(tile(guest, "patient")).to_contain_text("Rosa Díaz")
    expect(guest.locator("#video-note")).to_be_hidden()

    # -- the doctor pins the interpreter: their tile is the large one -----------------------------
    doctor.get_by_role("button", name="Pin Marta Ruiz").click()
    expect(tile(doctor, "interpreter")).to_have_class(re.compile(r"\bis-large\b"))
    expect(doctor.get_by_role("button", name="Unpin Marta Ruiz")).to_have_attribute("aria-pressed", "true")

    # -- the patient mutes: the flag is on the patient's tile on the others' pages ----------------
    patient.locator("#toggle-mic").click()
    expect(tile(doctor, "patient").locator(".tile-muted")).to_be_visible()
    expect(tile(doctor, "patient").locator(".tile-muted")).to_have_text("Muted")
    expect(tile(guest, "patient").locator(".tile-muted")).to_be_visible()
    expect(tile(doctor, "interpreter").locator(".tile-muted")).to_be_hidden()

    assert_labelled(doctor)
    assert_labelled(patient)
    assert_labelled(guest)
    shoot(doctor, "mesh-doctor")
    shoot(patient, "mesh-patient")
    shoot(guest, "mesh-interpreter")
    patient.locator("#toggle-mic").click()
    expect(tile(doctor, "patient").locator(".tile-muted")).to_be_hidden()

    # -- the patient leaves the call (not the visit), then comes back -----------------------------
    patient.locator("#leave-call").click()
    people = doctor.locator("#call-people")
    expect(people).to_have_text("Rosa Díaz left the call")
    expect(guest.locator("#call-people")).to_have_text("Rosa Díaz left the call")
    expect(patient.locator("#you-left")).to_be_visible()
    shoot(patient, "mesh-patient-left")
    patient.locator("#rejoin-call").click()
    expect(people).to_have_text("Rosa Díaz is back", timeout=60_000)
    for page, who in ((doctor, "doctor"), (patient, "patient"), (guest, "interpreter")):
        mesh_flows(page, who, 2)

    # -- the doctor removes the interpreter: their tile goes, their link is dead -----------------
    row = doctor.locator("#guests-list li", has_text="Marta Ruiz")
    row.get_by_role("button", name="Remove Marta Ruiz").click()
    row.get_by_role("button", name="Yes, remove").click()
    expect(guest.get_by_role("heading", name="The doctor removed you from the visit")).to_be_visible()
    expect(tile(doctor, "interpreter")).to_have_count(0)
    expect(tile(patient, "interpreter")).to_have_count(0)
    expect(doctor.locator("#call-people")).to_have_text("Marta Ruiz left the call")
    mesh_flows(doctor, "doctor", 1)
    ui.allowed.append(re.compile(r"status of 401 \(Unauthorized\)"))  # the dead link's refused request
    again = ui.page("interpreter-again", phone=True)
    again.goto(guest_link)
    expect(again.get_by_role("heading", name="The doctor removed you from the visit")).to_be_visible()
    ui.assert_clean()


#: The video caps of the page's connected call connections (bit/s; null: none).
VIDEO_CAPS = """() => (window.__pcs || []).filter((pc) => pc.connectionState === 'connected'
    && pc.getTransceivers().some((t) => t.direction === 'sendrecv'))
  .map((pc) => { const s = pc.getSenders().find((x) => x.track && x.track.kind === 'video');
                 const e = s ? s.getParameters().encodings || [] : [];
                 return e.length ? e[0].maxBitrate ?? null : null; })"""


@pytest.mark.timeout(600)
def test_four_people_hold_a_call(ui: UI, node: Node, clinic: str) -> None:
    """Patient, doctor, interpreter and caregiver: six connections, video and
    sound on every one, still flowing a minute later; each page caps the video
    it sends on each of its three connections at 1.7 Mbit/s / 3."""
    _, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    interpreter = ui.page("interpreter", phone=True)
    caregiver = ui.page("caregiver")
    check_in(patient, link, "Dolor de garganta", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Rosa Díaz")
    for guest, name, kind in ((interpreter, "Marta Ruiz", None), (caregiver, "Luis Díaz", "caregiver")):
        guest_link = invite_guest(doctor, name, language="es" if kind is None else None, kind=kind)
        guest_enters(guest, guest_link)
        let_in(doctor, guest, name)
    pages = ((doctor, "doctor"), (patient, "patient"), (interpreter, "interpreter"), (caregiver, "caregiver"))
    connections = {}
    for page, who in pages:
        connections[who] = {row["id"] for row in mesh_flows(page, who, 3, timeout=120)}
        expect(page.locator("#tiles .tile")).to_have_count(3)
    expect(tile(doctor, "caregiver")).to_contain_text("Luis Díaz")
    expect(tile(doctor, "caregiver")).to_contain_text("Caregiver or family")
    for page, who in pages:
        assert page.evaluate(VIDEO_CAPS) == [566_666] * 3, who
    shoot(caregiver, "mesh-four-caregiver")

    # A minute on: the same six connections, media still growing on each.
    doctor.wait_for_timeout(60_000)
    for page, who in pages:
        assert {row["id"] for row in mesh_flows(page, who, 3, timeout=60)} == connections[who], who
