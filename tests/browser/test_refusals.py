"""What the patient sees when the page cannot go on: an expired link, the
link of a visit that is over, a link that is not one, a blocked camera."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import check_in


@pytest.mark.timeout(180)
def test_expired_used_and_broken_links_are_explained(ui: UI, node: Node, clinic: str) -> None:
    visit_id, _ = node.create_visit(clinic, "Old Link")
    expired = ui.page("expired-link", phone=True)
    expired.goto(node.patient_link(node.token(Role.PATIENT, clinic, visit=visit_id, ttl=-60)))
    expect(expired.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(expired.locator("#refused-text")).to_contain_text("Ask the clinic for a new one")
    expect(expired.locator("#connection")).to_have_attribute("data-state", "refused")
    shoot(expired, "patient-link-expired")

    _, link = node.create_visit(clinic, "Used Link")
    leaver = ui.page("leaver", phone=True)
    check_in(leaver, link, "Headache", recording=False)
    leaver.get_by_role("button", name="Leave the waiting room").click()
    leaver.get_by_role("button", name="Yes, leave").click()
    expect(leaver.get_by_role("heading", name="You left the waiting room")).to_be_visible()

    used = ui.page("used-link", phone=True)
    used.goto(link)
    expect(used.get_by_role("heading", name="This visit has ended")).to_be_visible()
    expect(used.locator("#refused-text")).to_contain_text("ask the clinic for a new link")
    shoot(used, "patient-link-used")

    broken = ui.page("broken-link", phone=True)
    broken.goto(node.url + "/visit#t=not-a-token")
    expect(broken.get_by_role("heading", name="This link does not work")).to_be_visible()
    ui.assert_clean()


@pytest.mark.timeout(180)
def test_blocked_camera_is_explained(ui: UI, node: Node, clinic: str, launch: Callable[..., Browser]) -> None:
    # No automatic "allow", and no permission granted: Chromium refuses the camera.
    refusing = launch(drop=("--use-fake-ui-for-media-stream",))
    page = ui.page("camera-denied", phone=True, browser=refusing, permissions=[])
    _, link = node.create_visit(clinic, "No Camera")
    page.goto(link)
    page.get_by_role("button", name="Test camera and microphone").click()
    expect(page.get_by_role("heading", name="Camera and microphone are blocked")).to_be_visible()
    expect(page.locator("#device-problem-text")).to_contain_text(re.compile("choose Allow", re.I))
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    shoot(page, "patient-camera-denied")
    # The patient can still check in and chat.
    page.get_by_role("button", name="Continue without camera (chat only)").click()
    page.get_by_label("I agree to have this visit by video").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_role("heading", name="You’re in the waiting room")).to_be_visible()
    ui.assert_clean()
