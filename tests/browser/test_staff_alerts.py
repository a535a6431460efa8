"""The staff page's opt-in alerts in Chromium: off by default (a patient
arriving makes no sound and no notification), turned on (the permission asked
then, granted here), a patient checking in and a patient writing in a chat the
nurse does not have open each make a sound (Web Audio) and a notification that
names nobody; a chat the nurse is reading does not; the choice is remembered
across a reload and turned off again. Where the browser does not allow
notifications, the page says so beside the switch. Also the staff page at
tablet sizes (the nurse's queue with a chat open, the doctor's visit with a
snapshot labelled by number and time, never by file name)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, ViewportSize, expect

from telemed.tokens import Role
from tests.browser.conftest import ARGS, SCREENSHOTS, UI, Node, check_a11y, dev_node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, recording_shown, send_chat

#: Records the notifications the page creates and the tones it starts (the
#: browser's own notification UI cannot be seen headless), then lets the real
#: API do its work.
RECORD = """
window.__alerts = { shown: [], tones: [] };
(() => {
  const NativeNotification = window.Notification;
  if (typeof NativeNotification === "function") {
    const Recorded = function (title, options) {
      window.__alerts.shown.push({ title, body: (options && options.body) || "", tag: (options && options.tag) || "" });
      return new NativeNotification(title, options);
    };
    Object.defineProperty(Recorded, "permission", { get: () => NativeNotification.permission });
    Recorded.requestPermission = (...args) => NativeNotification.requestPermission(...args);
    window.Notification = Recorded;
  }
  const NativeAudio = window.AudioContext;
  window.AudioContext = class extends NativeAudio {
    createOscillator() {
      const tone = super.createOscillator();
      const start = tone.start.bind(tone);
      tone.start = (...args) => {
        window.__alerts.tones.push({ state: this.state, frequency: tone.frequency.value });
        return start(...args);
      };
      return tone;
    }
  };
})();
"""

TOGGLE = "Sound and notification when a patient arrives or writes"
TABLETS: dict[str, ViewportSize] = {
    "tablet-portrait": {"width": 820, "height": 1180},
    "tablet-landscape": {"width": 1180, "height": 820},
}


def recorded(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => JSON.parse(JSON.stringify(window.__alerts))")
    return result


def shoot_tablet(page: Page, name: str) -> None:
    """Screenshots at tablet sizes (portrait and landscape), beside the phone and desktop ones,
    each audited like shoot()'s (axe-core, WCAG 2.1 A/AA)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for size, viewport in TABLETS.items():
        page.set_viewport_size(viewport)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True, animations="disabled")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} at {size}: the page scrolls sideways by {overflow}px"
        violations = check_a11y(page, f"{name}-{size}")
        assert not violations, violations
    if original:
        page.set_viewport_size(original)


def arrives(ui: UI, node: Node, clinic: str, name: str, reason: str) -> Page:
    _, link = node.create_visit(clinic, name)
    patient = ui.page(f"patient-{name}", phone=True)
    check_in(patient, link, reason)
    return patient


@pytest.mark.timeout(300)
def test_alerts_when_a_patient_arrives_or_writes(ui: UI, node: Node, clinic: str) -> None:
    nurse = ui.page("nurse", permissions=["notifications"])
    nurse.add_init_script(RECORD)
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Ana")))
    toggle = nurse.get_by_label(TOGGLE)
    expect(toggle).not_to_be_checked()  # off by default
    expect(nurse.locator("#queue-empty")).to_be_visible()

    # -- off: a patient arrives, nothing is sounded or shown (the row is the sentinel) -----------
    arrives(ui, node, clinic, "Ms. Off", "Cough")
    expect(nurse.locator("#queue-body tr", has_text="Ms. Off")).to_be_visible()
    assert recorded(nurse) == {"shown": [], "tones": []}

    # -- on: the permission is asked then (granted here); a sample of the sound ------------------
    toggle.check()
    state = nurse.locator("#alerts-state")
    expect(state).to_have_text(re.compile(r"^On: a sound and a notification\. Notifications never show a patient’s name"))
    nurse.wait_for_function("() => window.__alerts.tones.length === 2")
    assert nurse.evaluate("() => localStorage.getItem('telemed.staff.alerts')") == "on"
    assert_labelled(nurse)
    shoot(nurse, "staff-alerts-on")

    # -- a patient arrives: a notification that names nobody, and the sound ----------------------
    bell = arrives(ui, node, clinic, "Mr. Bell", "Chest pain when climbing stairs")
    expect(nurse.locator("#queue-body tr", has_text="Mr. Bell")).to_be_visible()
    nurse.wait_for_function("() => window.__alerts.shown.length === 1")
    got = recorded(nurse)
    assert got["shown"] == [
        {"title": "A patient is waiting", "body": "Open the telemed staff page to see the queue.", "tag": "telemed-arrival"}
    ]
    assert len(got["tones"]) == 4, got
    assert all(t["state"] == "running" for t in got["tones"]), got  # the AudioContext really played

    # -- the patient writes; the nurse has no chat open: a notification without the text ---------
    send_chat(bell, "The pain is getting worse")
    nurse.wait_for_function("() => window.__alerts.shown.length === 2")
    got = recorded(nurse)
    assert got["shown"][1] == {"title": "New message from a patient", "body": "Open the telemed staff page to read it.", "tag": "telemed-message"}
    assert "worse" not in str(got["shown"]) and "Bell" not in str(got["shown"])
    assert len(got["tones"]) == 5, got

    # -- the nurse reads that chat: a message there is no alert (the message is the sentinel) ----
    row = nurse.locator("#queue-body tr", has_text="Mr. Bell")
    row.get_by_role("button", name=re.compile("^Chat with Mr. Bell")).click()
    pane = nurse.locator(".chat-pane", has_text="Mr. Bell")
    expect(pane.locator(".chat-log")).to_contain_text("getting worse")
    send_chat(pane, "A nurse is with you, Mr. Bell.")
    expect(bell.locator(".chat-log")).to_contain_text("A nurse is with you")
    send_chat(bell, "Thank you")
    expect(pane.locator(".chat-log")).to_contain_text("Thank you")
    assert len(recorded(nurse)["shown"]) == 2
    shoot(nurse, "staff-alerts-chat")
    shoot_tablet(nurse, "staff-nurse-chat")

    # -- remembered across a reload; turned off, an arrival makes nothing ------------------------
    nurse.reload()
    toggle = nurse.get_by_label(TOGGLE)
    expect(toggle).to_be_checked()
    expect(state).to_have_text(re.compile(r"^On: a sound and a notification"))
    toggle.uncheck()
    expect(state).to_have_text("Off.")
    assert nurse.evaluate("() => localStorage.getItem('telemed.staff.alerts')") == "off"
    before = recorded(nurse)
    arrives(ui, node, clinic, "Ms. Quiet", "Headache")
    expect(nurse.locator("#queue-body tr", has_text="Ms. Quiet")).to_be_visible()
    assert recorded(nurse) == before

    # -- the doctor's visit at tablet sizes, with a snapshot labelled by number and time ---------
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Lee")))
    shoot_tablet(doctor, "staff-doctor-queue")
    admit(doctor, "Mr. Bell")
    recording_shown(doctor)
    doctor.get_by_role("button", name="Take snapshot").click()
    shot = doctor.locator("#gallery li").first
    expect(shot.locator(".shot-label")).to_have_text(re.compile(r"^Snapshot 1 · \d{1,2}:\d{2}"))
    expect(shot.locator("img.shot-stored")).to_have_attribute("alt", re.compile(r"^Snapshot 1 · .*, as stored in the chart$"))
    expect(shot).to_contain_text("The chart’s copy")
    expect(doctor.locator("#snapshot-help")).not_to_contain_text("cannot be opened")
    expect(doctor.locator("[data-screen=visit]")).not_to_contain_text("snapshots/")
    assert_labelled(doctor)
    doctor.wait_for_timeout(1000)  # a few frames in the video of the screenshots
    shoot(doctor, "staff-doctor-snapshot")
    shoot_tablet(doctor, "staff-doctor-visit")
    ui.assert_clean()


@pytest.mark.timeout(120)
def test_notifications_not_allowed_are_explained_beside_the_switch(ui: UI, node: Node, clinic: str) -> None:
    nurse = ui.page("nurse-no-permission", phone=True)
    nurse.add_init_script(RECORD)
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Bo")))
    nurse.get_by_label(TOGGLE).check()
    state = nurse.locator("#alerts-state")
    expect(state).to_have_text(re.compile(r"^On, with sound only: (your browser blocks notifications from this site|notifications were not allowed)"))
    expect(state).to_have_attribute("data-kind", "warning")
    shoot(nurse, "staff-alerts-refused")

    # The sound alone still alerts (a patient arriving is the event).
    nurse.wait_for_function("() => window.__alerts.tones.length === 2")
    arrives(ui, node, clinic, "Ms. Sound", "Earache")
    expect(nurse.locator("#queue-body tr", has_text="Ms. Sound")).to_be_visible()
    nurse.wait_for_function("() => window.__alerts.tones.length === 4")
    assert recorded(nurse)["shown"] == []
    ui.assert_clean()


@pytest.fixture(scope="module")
def locking_node(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A ``telemed dev`` whose staff pages lock after 5 seconds without input."""
    with dev_node(chromium, tmp_path_factory, name="alerts-lock-node", TELEMED_STAFF_LOCK_AFTER="5s") as started:
        yield started


@pytest.mark.timeout(180)
def test_a_message_in_an_open_chat_alerts_while_the_page_is_locked(
    locking_node: Node, clinic: str, playwright: Playwright, request: pytest.FixtureRequest
) -> None:
    node = locking_node
    browser = playwright.chromium.launch(executable_path=node.chromium, args=ARGS, headless=True)
    ui = UI(node=node, browser=browser, request=request)
    try:
        nurse = ui.page("nurse", permissions=["notifications"])
        nurse.add_init_script(RECORD)
        nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Ana")))
        patient = arrives(ui, node, clinic, "Ms. Lock", "Sprained ankle")
        # The nurse's page locks while the patient checks in (no input there): back to it.
        lock = nurse.get_by_role("dialog", name="Screen locked")
        expect(lock).to_be_visible(timeout=15000)
        nurse.get_by_role("button", name="I'm here — continue").click()
        row = nurse.locator("#queue-body tr", has_text="Ms. Lock")
        expect(row).to_be_visible()
        nurse.get_by_label(TOGGLE).check()
        expect(nurse.locator("#alerts-state")).to_have_text(re.compile(r"^On: a sound and a notification"))
        row.get_by_role("button", name=re.compile("^Chat with Ms. Lock")).click()
        expect(nurse.locator(".chat-pane", has_text="Ms. Lock")).to_be_visible()

        # Nobody is reading behind the lock: the open chat alerts, and the alert names nobody.
        expect(lock).to_be_visible(timeout=15000)
        send_chat(patient, "It is swelling up")
        nurse.wait_for_function("() => window.__alerts.shown.length === 1")
        shown = recorded(nurse)["shown"]
        assert shown == [{"title": "New message from a patient", "body": "Open the telemed staff page to read it.", "tag": "telemed-message"}]
        expect(nurse.get_by_text("It is swelling up")).to_be_hidden()
        ui.assert_clean()
    finally:
        ui.close()
        browser.close()
