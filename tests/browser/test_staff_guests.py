"""The staff side of a visit's guests in Chromium: a nurse invites an
interpreter from the triage panel of a patient still in the waiting room (the
link works: the interpreter reaches the lobby, and the doctor lets them in once
the visit starts); a doctor invites a colleague as a clinician guest, who finds
the invitation on their own staff page and joins with their staff sign-in; the
admin names the clinic and the guest's page says "Video visit with <name>"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, check_in_in


def guest_consents(guest: Page, link: str | None = None) -> None:
    """A guest's way to the lobby: welcome, device check, consent to the visit."""
    if link:
        guest.goto(link)
    guest.get_by_role("button", name="Start").click()
    guest.get_by_role("button", name="Test camera and microphone").click()
    guest.get_by_role("button", name="It works, continue").click()
    guest.get_by_label("I agree to take part in this video visit").check()
    guest.get_by_role("button", name="Join the visit").click()
    expect(guest.get_by_role("heading", name="Waiting for the doctor to let you in")).to_be_visible()


@pytest.mark.timeout(300)
def test_a_nurse_invites_an_interpreter_from_triage(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    nurse = ui.page("nurse", permissions=["clipboard-read", "clipboard-write"])
    guest = ui.page("guest", phone=True)
    check_in_in(patient, link, "es", "Dolor de garganta")
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Ana Nurse")))
    nurse.get_by_role("button", name="Triage Rosa Díaz").click()
    panel = nurse.locator("#triage-guests")
    expect(panel.get_by_role("heading", name="People in this visit")).to_be_visible()
    expect(panel.get_by_text("No one else yet")).to_be_visible()

    # -- the form: the patient's language offered first; the guest waits for the doctor ------------
    panel.get_by_role("button", name="Invite someone").click()
    expect(panel.get_by_label("Who")).to_be_focused()
    expect(panel.get_by_label("Language they interpret")).to_have_value("es")
    expect(panel.get_by_text("They wait until the doctor starts the visit and lets them in.")).to_be_visible()
    expect(panel.get_by_label("Let them join without waiting")).to_have_count(0)
    panel.get_by_role("button", name="Create the link").click()
    expect(panel.locator("#triage-guest-form-error")).to_have_text("Please write the person’s name.")
    panel.get_by_label("Their name").fill("Marta Ruiz")
    shoot(nurse, "staff-guests-nurse-form")
    panel.get_by_role("button", name="Create the link").click()

    # -- the link: copy and QR, and the guest's state in words ------------------------------------
    box = panel.get_by_role("textbox", name="Guest link")
    guest_link = box.input_value()
    assert guest_link.startswith(f"{node.url}/guest#t=")
    expect(panel.get_by_text("Send this link to the Interpreter — Spanish")).to_be_visible()
    expect(panel.locator(".qr-wrap svg")).to_be_visible()
    panel.get_by_role("button", name="Copy the guest link").click()
    expect(panel.locator("#triage-guest-link-status")).to_have_text("Copied")
    assert nurse.evaluate("navigator.clipboard.readText()") == guest_link
    row = panel.locator("#triage-guests-list li", has_text="Marta Ruiz")
    expect(row).to_contain_text("Interpreter — Spanish · invited")
    assert_labelled(nurse)
    shoot(nurse, "staff-guests-nurse-link")

    # -- the link works: the interpreter reaches the lobby; the nurse sees them wait --------------
    guest_consents(guest, guest_link)
    expect(row).to_contain_text("Interpreter — Spanish · waiting to join")
    expect(row).to_contain_text("The doctor lets them in once the visit starts.")
    expect(row.get_by_role("button", name="Let Marta Ruiz in")).to_have_count(0)  # the doctor's to do
    expect(panel.get_by_role("textbox", name="Guest link")).to_have_count(0)
    shoot(nurse, "staff-guests-nurse-waiting")

    # -- the doctor starts the visit and finds the interpreter waiting -----------------------------
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Rosa Díaz")
    doctor_row = doctor.locator("#guests-list li", has_text="Marta Ruiz")
    expect(doctor_row).to_contain_text("Interpreter — Spanish · waiting to join")
    doctor_row.get_by_role("button", name="Let Marta Ruiz in").click()
    expect(doctor_row).to_contain_text("Interpreter — Spanish · in the visit")
    expect(guest.get_by_role("heading", name="You are in the visit")).to_be_visible()
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_a_colleague_joins_as_a_clinician_guest_from_their_staff_page(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Rosa Díaz")
    patient = ui.page("patient", phone=True)
    colleague = ui.page("colleague")
    doctor = ui.page("doctor")
    check_in(patient, link, "Chest pain")
    colleague.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Lee")))
    expect(colleague.locator("#connection")).to_have_attribute("data-state", "online")
    expect(colleague.locator("#guest-invitations")).to_be_hidden()
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Kim")))
    admit(doctor, "Rosa Díaz")

    # -- Dr. Kim invites a colleague: picked by name from the clinic's roster (not themselves) -----
    panel = doctor.locator("#guests-panel")
    panel.get_by_role("button", name="Invite someone").click()
    panel.get_by_label("Who").select_option("clinician")
    expect(panel.get_by_label("Their name")).to_be_hidden()
    colleagues = panel.get_by_label("Which colleague")
    expect(colleagues.locator("option", has_text="Dr. Kim")).to_have_count(0)
    panel.get_by_role("button", name="Invite", exact=True).click()
    expect(panel.locator("#guest-form-error")).to_have_text("Please choose the colleague.")
    colleagues.select_option(label="Dr. Lee — Doctor")
    shoot(doctor, "staff-guests-clinician-form")
    panel.get_by_role("button", name="Invite", exact=True).click()
    expect(panel.locator("#guests-status")).to_have_text("Dr. Lee is invited. They see it on their staff page.")
    row = panel.locator("#guests-list li", has_text="Dr. Lee")
    expect(row).to_contain_text("Clinician · invited")
    expect(panel.get_by_role("textbox", name="Guest link")).to_have_count(0)  # no link: their own sign-in

    # -- Dr. Lee's staff page: the invitation in words, and Join ------------------------------------
    invitation = colleague.locator("#guest-invitations")
    expect(invitation).to_contain_text("Dr. Kim invited you to join the visit of Rosa Díaz.")
    assert_labelled(colleague)
    shoot(colleague, "staff-guests-clinician-invited")
    with colleague.context.expect_page() as opened:
        invitation.get_by_role("button", name="Join", exact=True).click()
    guest = opened.value
    ui.watch(guest, "colleague-guest")
    expect(invitation).to_contain_text("The visit of Rosa Díaz opened in a new tab.")
    expect(guest.get_by_role("heading", name="You are invited to a video visit")).to_be_visible()
    expect(guest.locator("#welcome-by")).to_have_text("Dr. Kim invited you to join as: Clinician.")
    assert "#" not in guest.url  # the staff token left the address bar
    guest_consents(guest)

    # -- the same consent as every guest; Dr. Kim sees them wait and lets them in -------------------
    expect(row).to_contain_text("Clinician · waiting to join")
    expect(invitation).to_contain_text("You are waiting for the doctor to let you in.")
    row.get_by_role("button", name="Let Dr. Lee in").click()
    expect(row).to_contain_text("Clinician · in the visit")
    expect(guest.get_by_role("heading", name="You are in the visit")).to_be_visible()
    expect(invitation).to_contain_text("You are in this visit.")
    ui.assert_clean()


@pytest.mark.timeout(240)
def test_the_admin_names_the_clinic_and_the_guest_page_says_it(ui: UI, node: Node, clinic: str) -> None:
    ui.allowed.append(re.compile(r"status of 400 \(Bad Request\)"))  # the refused names below
    admin = ui.page("admin")
    admin.goto(node.staff_link(node.token(Role.ADMIN, clinic, name="Ada Admin")))
    admin.get_by_role("button", name="Administration").click()
    name = admin.get_by_label("Clinic name shown to patients and guests")
    expect(name).to_have_value("")
    save = admin.get_by_role("button", name="Save the name")

    # -- bad input: told in plain words beside the field ---------------------------------------------
    name.fill("N" * 61)
    save.click()
    expect(admin.locator("#admin-display_name-error")).to_have_text("The name can be at most 60 characters long.")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_be_focused()
    name.evaluate("(el) => { el.value = 'North\\u202eClinic'; }")  # a pasted right-to-left override
    save.click()
    expect(admin.locator("#admin-display_name-error")).to_have_text(
        "The name must be one line of plain text, without special characters.")
    shoot(admin, "staff-clinic-name-error")

    name.fill("  Clínica del Norte ")
    save.click()
    expect(admin.locator("#admin-display_name-said")).to_have_text(
        "Saved. Patients and guests now see “Video visit with Clínica del Norte”.")
    expect(admin.locator("#admin-display_name-error")).to_be_hidden()
    expect(name).to_have_value("Clínica del Norte")
    shoot(admin, "staff-clinic-name-saved")

    # -- the guest's and the patient's pages say it --------------------------------------------------
    visit_id, link = node.create_visit(clinic, "Rosa Díaz")
    nurse = node.token(Role.NURSE, clinic)
    invited = node.post(f"/api/visits/{visit_id}/guests", {"kind": "caregiver", "name": "Luis Díaz"}, nurse)
    guest = ui.page("guest", phone=True)
    guest.goto(invited["guest_link"])
    expect(guest.locator(".brand")).to_have_text("Video visit with Clínica del Norte")
    expect(guest.get_by_role("heading", name="You are invited to a video visit")).to_be_visible()
    shoot(guest, "staff-clinic-name-guest")
    patient = ui.page("patient", phone=True)
    patient.goto(link)
    expect(patient.locator(".brand")).to_have_text("Video visit with Clínica del Norte")
    ui.assert_clean()
