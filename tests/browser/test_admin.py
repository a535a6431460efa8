"""The admin's staff page: the queue without chat, triage or admit, and
cancelling a visit from its row (the patient's page says so)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import check_in


@pytest.mark.timeout(180)
def test_admin_cancels_a_visit(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Bo Admin")
    patient = ui.page("patient", phone=True)
    admin = ui.page("admin")
    check_in(patient, link, "Checking the admin page")
    admin.goto(node.staff_link(node.token(Role.ADMIN, clinic, name="Ada Admin")))
    expect(admin.locator("#whoami")).to_have_text("Ada Admin · admin")
    row = admin.locator("#queue-body tr", has_text="Bo Admin")
    expect(row).to_contain_text("Checking the admin page")
    # An admin's row has only Cancel; the chats column is not there.
    expect(row.get_by_role("button")).to_have_count(1)
    expect(admin.locator(".col-chats")).to_be_hidden()
    row.get_by_role("button", name="Cancel the visit of Bo Admin").click()
    # The inline confirmation: "No" puts the button back, "Yes" cancels.
    row.get_by_role("button", name="No").click()
    row.get_by_role("button", name="Cancel the visit of Bo Admin").click()
    shoot(admin, "admin-confirm")
    row.get_by_role("button", name="Yes").click()
    expect(admin.get_by_text("The visit was cancelled.")).to_be_visible()
    expect(patient.get_by_role("heading", name="The clinic cancelled this visit")).to_be_visible()
    expect(admin.locator("#queue-empty")).to_be_visible()
    ui.assert_clean()
