"""A visit's guest in Chromium: the doctor invites an interpreter from the visit
panel, the interpreter opens the link, checks their devices, consents, waits
in the lobby, is let in (the visit's people and chat), the patient sees
"Interpreter — Spanish", and the doctor removes them: the guest's page says so."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, guest_tour_to_lobby, send_chat
from tests.browser.test_languages import PSEUDO, Tour, localized


@pytest.mark.timeout(300)
def test_an_interpreter_joins_and_is_removed(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor", permissions=["clipboard-read", "clipboard-write"])
    guest = ui.page("guest", phone=True)
    check_in(patient, link, "Dolor de garganta")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Rosa Díaz")
    panel = doctor.locator("#guests-panel")
    expect(panel.get_by_text("No one else yet")).to_be_visible()

    # -- the doctor invites an interpreter: name and language are asked for ---------------------
    panel.get_by_role("button", name="Invite someone").click()
    panel.get_by_role("button", name="Create the link").click()
    expect(panel.locator("#guest-form-error")).to_have_text("Please write the person’s name.")
    expect(panel.get_by_label("Their name")).to_be_focused()
    panel.get_by_label("Their name").fill("Marta Ruiz")
    panel.get_by_role("button", name="Create the link").click()
    expect(panel.locator("#guest-form-error")).to_have_text("Please choose the language they interpret.")
    panel.get_by_label("Language they interpret").select_option("es")
    panel.get_by_role("button", name="Create the link").click()
    box = panel.get_by_role("textbox", name="Guest link")
    guest_link = box.input_value()
    assert guest_link.startswith(f"{node.url}/guest#t=")
    expect(panel.get_by_text("Send this link to the Interpreter — Spanish")).to_be_visible()
    panel.get_by_role("button", name="Copy the guest link").click()
    expect(panel.locator("#guest-link-status")).to_have_text("Copied")
    row = panel.locator("#guests-list li", has_text="Marta Ruiz")
    expect(row).to_contain_text("Interpreter — Spanish · invited")
    assert_labelled(doctor)
    shoot(doctor, "guests-doctor-invited")

    # -- the interpreter: welcome, devices, consent (visit yes, recording no), lobby -----------
    guest.goto(guest_link)
    expect(guest.get_by_role("heading", name="You are invited to a video visit")).to_be_visible()
    expect(guest.locator("#welcome-by")).to_have_text("Dr. Rivera invited you to join as: Interpreter — Spanish.")
    shoot(guest, "guests-guest-welcome")
    guest.get_by_role("button", name="Start").click()
    guest.get_by_role("button", name="Test camera and microphone").click()
    guest.get_by_role("button", name="It works, continue").click()
    guest.get_by_role("button", name="Join the visit").click()
    expect(guest.get_by_text("Please agree to the video visit to continue.")).to_be_visible()
    guest.get_by_label("I agree to take part in this video visit").check()
    shoot(guest, "guests-guest-consent")
    guest.get_by_role("button", name="Join the visit").click()
    expect(guest.get_by_role("heading", name="Waiting for the doctor to let you in")).to_be_visible()
    assert_labelled(guest)
    shoot(guest, "guests-guest-lobby")

    # -- the doctor lets them in ------------------------------------------------------------------
    expect(row).to_contain_text("Interpreter — Spanish · waiting to join")
    expect(row).to_contain_text("Did not agree to recording")
    expect(panel.get_by_role("textbox", name="Guest link")).to_have_count(0)  # opened and answered: the link goes
    row.get_by_role("button", name="Let Marta Ruiz in").click()
    expect(row).to_contain_text("Interpreter — Spanish · in the visit")
    shoot(doctor, "guests-doctor-admitted")
    expect(guest.get_by_role("heading", name="You are in the visit")).to_be_visible()
    expect(guest.locator("#video-note")).to_contain_text("The video will start when the doctor connects you")
    people = guest.locator("#people")
    expect(people).to_contain_text("Rosa Díaz")
    expect(people).to_contain_text("Dr. Rivera")
    expect(people).to_contain_text("Marta Ruiz — Interpreter — Spanish · in the visit")
    send_chat(guest, "Hola, soy la intérprete")
    expect(patient.locator(".chat-log")).to_contain_text("Hola, soy la intérprete")
    send_chat(patient, "Gracias")
    expect(guest.locator(".chat-log")).to_contain_text("Gracias")
    assert_labelled(guest)
    shoot(guest, "guests-guest-in")

    # -- the patient sees who else is in the visit, and why -----------------------------------
    patient_people = patient.locator("#people")
    expect(patient_people).to_contain_text("Marta Ruiz")
    expect(patient_people).to_contain_text("Interpreter — Spanish")
    shoot(patient, "guests-patient-people")

    # -- the doctor removes the interpreter (after a confirmation) --------------------------------
    row.get_by_role("button", name="Remove Marta Ruiz").click()
    expect(row.get_by_text("Remove Marta Ruiz from the visit? Their link stops working at once.")).to_be_visible()
    shoot(doctor, "guests-doctor-remove")
    row.get_by_role("button", name="Yes, remove").click()
    expect(panel.locator("#guests-status")).to_have_text("Marta Ruiz was removed.")
    expect(panel.locator("#guests-list li")).to_have_count(0)
    expect(guest.get_by_role("heading", name="The doctor removed you from the visit")).to_be_visible()
    expect(guest.locator("#refused-text")).to_have_text("This link no longer works.")
    expect(patient.locator("#people-panel")).to_be_hidden()
    shoot(guest, "guests-guest-removed")

    # The link is dead: opened again, it says so.
    again = ui.page("guest-again", phone=True)
    again.goto(guest_link)
    expect(again.get_by_role("heading", name="The doctor removed you from the visit")).to_be_visible()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("lang", ["es", PSEUDO])
def test_the_guest_screens_in_the_language(ui: UI, node: Node, clinic: str, lang: str) -> None:
    """The doctor's guest panel and every screen of the guest's page in ``lang``:
    photographed, audited, and (pseudo-language) without a word not from a catalogue."""
    seen = Tour(lang, ["Lin Mei", "Dr. Okafor", "Marta Ruiz", clinic])
    _, link = node.create_visit(clinic, "Lin Mei")
    patient = ui.page("patient", phone=True)
    check_in(patient, link, "Fever")
    doctor = ui.page("doctor", phone=True)
    doctor.goto(localized(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Okafor")), lang))
    doctor.locator("#queue-body [data-action=admit]").first.click()
    expect(doctor.locator("[data-screen=visit]")).to_be_visible()
    doctor.locator("#guest-invite").click()
    doctor.locator("#guest-submit").click()
    expect(doctor.locator("#guest-form-error")).to_be_visible()
    seen.look(doctor, "guests-form")
    doctor.locator("#guest-name").fill("Marta Ruiz")
    doctor.locator("#guest-language").select_option("es")
    doctor.locator("#guest-submit").click()
    guest_link = doctor.locator("#guest-link").input_value()
    seen.look(doctor, "guests-link")

    guest = ui.page("guest", phone=True)
    guest_tour_to_lobby(guest, localized(guest_link, lang), seen.look)
    row = doctor.locator("#guests-list li[data-state=waiting]")
    row.locator("button.btn-primary").click()
    expect(guest.locator("[data-screen=in]")).to_be_visible()
    expect(guest.locator("#people li")).to_have_count(3)
    seen.look(guest, "guest-in")
    seen.look(doctor, "guests-panel")
    guest.locator("#in-leave").click()
    expect(guest.locator("[data-screen=left]")).to_be_visible()
    seen.look(guest, "guest-left")
    assert not seen.problems, f"{lang}: {len(seen.problems)} problems\n\n" + "\n\n".join(seen.problems)
