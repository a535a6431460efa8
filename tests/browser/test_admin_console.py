"""The admin console in Chromium: the clinic's settings take effect at once
(walk-in off: the walk-in page refuses), bad values are refused beside the
field in plain words, the audit trail's state, signing a nurse out closes her
page; and the staff pages' inactivity lock (on a node with a short lock)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Playwright, expect

from telemed.tokens import Role
from tests.browser.conftest import ARGS, UI, Node, dev_node, shoot
from tests.browser.steps import assert_labelled, check_in


def walk_in(page: Page, node: Node, clinic: str, name: str) -> None:
    page.goto(f"{node.url}/clinic/{clinic}")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Continue").click()


@pytest.mark.timeout(240)
def test_admin_changes_settings_and_signs_a_nurse_out(ui: UI, node: Node, clinic: str) -> None:
    # Refusals the test provokes: the walk-in link when off (404), an out-of-bounds value (400).
    ui.allowed.append(re.compile(r"status of (404 \(Not Found\)|400 \(Bad Request\))"))
    nurse = ui.page("nurse")
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nora Nurse")))
    expect(nurse.locator("#connection")).to_have_attribute("data-state", "online")
    admin = ui.page("admin")
    admin.goto(node.staff_link(node.token(Role.ADMIN, clinic, name="Ada Admin")))
    expect(admin.locator("#whoami")).to_have_text("Ada Admin · admin")
    expect(admin.locator("#connection")).to_have_attribute("data-state", "online")
    admin.get_by_role("button", name="Administration").click()
    expect(admin.get_by_role("heading", name="Clinic administration")).to_be_visible()

    # Signed-in staff by name; the admin's own row has no Sign out.
    sessions = admin.locator("#admin-sessions-body")
    expect(sessions.locator("li", has_text="Nora Nurse")).to_contain_text("Nurse")
    mine = sessions.locator("li", has_text="Ada Admin (you)")
    expect(mine).to_have_count(1)
    expect(mine.get_by_role("button")).to_have_count(0)

    # Walk-in on, at once: the walk-in page checks a patient in.
    walk_in_box = admin.get_by_label("Walk-in link open")
    expect(walk_in_box).not_to_be_checked()
    walk_in_box.check()
    expect(admin.locator("#admin-walk_in-said")).to_have_text("Walk-in is on: the walk-in link works now.")
    patient = ui.page("walk-in", phone=True)
    walk_in(patient, node, clinic, "Wally Walker")
    expect(patient.get_by_role("heading", name="Check your camera and microphone")).to_be_visible()  # on the patient's page
    # ...and off, at once: the same page refuses.
    walk_in_box.uncheck()
    expect(admin.locator("#admin-walk_in-said")).to_have_text("Walk-in is off: the walk-in link refuses check-ins now.")
    late = ui.page("walk-in-late", phone=True)
    walk_in(late, node, clinic, "Late Walker")
    expect(late.get_by_text("This clinic has no walk-in link")).to_be_visible()

    # A value out of bounds: refused beside the field, in words; nothing saved.
    lifetime = admin.get_by_label("Patient links last (hours)")
    lifetime.fill("1000")
    admin.get_by_role("button", name="Save times").click()
    expect(admin.locator("#admin-link_lifetime-error")).to_have_text("A link must last between 5 minutes and 14 days.")
    expect(lifetime).to_have_attribute("aria-invalid", "true")
    expect(admin.locator("#admin-times-said")).to_have_text("Not saved: fix the time marked above.")
    lifetime.fill("48")
    admin.get_by_label("Check-in opens before the appointment (minutes)").fill("20")
    admin.get_by_role("button", name="Save times").click()
    expect(admin.locator("#admin-times-said")).to_have_text(
        "Saved. New links last 2 days; check-in opens 20 minutes before; no-show after 15 minutes."
    )
    expect(admin.locator("#admin-link_lifetime-error")).to_be_hidden()

    # The audit trail: intact, with the settings changes among the latest events (no names).
    admin.get_by_role("button", name="Check again").click()
    expect(admin.locator("#admin-audit-state")).to_have_text(re.compile(r"^Intact: all \d+ records check out"))
    events = admin.locator("#admin-events-body")
    expect(events.locator("tr", has_text="Clinic settings changed")).to_have_count(3)
    expect(events).not_to_contain_text("Ada Admin")
    expect(admin.locator("#admin-retention")).to_contain_text("Charts are kept")
    assert_labelled(admin)
    shoot(admin, "admin-console")

    # Sign the nurse out: confirm inline; her page closes at once.
    row = sessions.locator("li", has_text="Nora Nurse")
    row.get_by_role("button", name="Sign out Nora Nurse").click()
    row.get_by_role("button", name="No").click()
    row.get_by_role("button", name="Sign out Nora Nurse").click()
    shoot(admin, "admin-sign-out-confirm", sizes=("phone",))
    row.get_by_role("button", name="Yes, sign out").click()
    expect(admin.locator("#admin-sessions-said")).to_have_text("Nora Nurse was signed out. Their screens closed.")
    expect(sessions.locator("li", has_text="Nora Nurse")).to_have_count(0)
    expect(nurse.get_by_text("Your sign-in was revoked.", exact=False)).to_be_visible()
    expect(events.locator("tr", has_text="Staff member signed out")).to_have_count(1)
    ui.assert_clean()


@pytest.fixture(scope="module")
def locking_node(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A second ``telemed dev`` whose staff pages lock after 3 seconds without input."""
    with dev_node(chromium, tmp_path_factory, name="staff-lock-node", TELEMED_STAFF_LOCK_AFTER="3s") as started:
        yield started


@pytest.mark.timeout(240)
def test_an_idle_staff_page_locks_and_the_queue_stays_live_underneath(
    locking_node: Node, clinic: str, playwright: Playwright, request: pytest.FixtureRequest
) -> None:
    browser = playwright.chromium.launch(executable_path=locking_node.chromium, args=ARGS, headless=True)
    ui = UI(node=locking_node, browser=browser, request=request)
    try:
        _, first = locking_node.create_visit(clinic, "Lena Locke")
        _, second = locking_node.create_visit(clinic, "Sam Second")
        nurse = ui.page("nurse")
        nurse.goto(locking_node.staff_link(locking_node.token(Role.NURSE, clinic, name="Nora Nurse")))
        patient = ui.page("patient", phone=True)
        check_in(patient, first, "Rash on the arm")
        # Attached, not visible: the check-in can take longer than the 3 s the page waits before it locks.
        expect(nurse.locator("#queue-body tr", has_text="Lena Locke")).to_be_attached()

        # No input: the lock covers the page and the patient's name is gone from view.
        lock = nurse.get_by_role("dialog", name="Screen locked")
        expect(lock).to_be_visible(timeout=15000)
        expect(lock).to_contain_text("locked after 3 seconds without use")
        expect(nurse.get_by_text("Lena Locke")).to_be_hidden()
        expect(nurse.locator("#main")).to_be_hidden()
        shoot(nurse, "staff-locked")

        # The socket stays up: a patient who checks in meanwhile is there on return.
        other = ui.page("patient-2", phone=True)
        check_in(other, second, "Headache")
        expect(nurse.locator("#connection")).to_have_attribute("data-state", "online")
        expect(nurse.locator("#queue-body tr", has_text="Sam Second")).to_be_attached()
        expect(nurse.locator("#queue-body tr", has_text="Sam Second")).to_be_hidden()
        nurse.get_by_role("button", name="I'm here — continue").click()
        expect(lock).to_be_hidden()
        expect(nurse.locator("#queue-body tr", has_text="Sam Second")).to_be_visible()
        expect(nurse.locator("#queue-body tr", has_text="Lena Locke")).to_be_visible()

        # Input keeps it unlocked; idle again, it locks again (phone size too).
        nurse.set_viewport_size({"width": 390, "height": 844})
        expect(lock).to_be_visible(timeout=15000)
        nurse.keyboard.press("Enter")  # the focused button: continue
        expect(lock).to_be_hidden()
        ui.assert_clean()
    finally:
        ui.close()
        browser.close()
