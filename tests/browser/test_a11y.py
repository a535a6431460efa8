"""Accessibility checks that the audit in ``shoot()`` (axe-core, WCAG 2.1 A/AA
on every screen photographed) cannot make by itself: the keyboard's focus ring
on a field marked invalid, and the one axe rule that needs the page's
stylesheets, which the pages' Content-Security-Policy keeps axe from reading
(css-orientation-lock, WCAG 1.3.4), run where the CSP is bypassed."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot

#: The computed focus ring of the focused element, and whether the browser shows focus there.
FOCUS = """() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  return { id: el.id, visible: el.matches(":focus-visible"), outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
           shadow: s.boxShadow, focus: getComputedStyle(document.documentElement).getPropertyValue("--focus").trim() };
}"""


@pytest.mark.timeout(90)
def test_the_focus_ring_shows_on_the_consent_box_marked_invalid(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Noor Haddad")
    patient = ui.page("patient", phone=True)
    patient.goto(link)
    patient.locator("#device-start").click()
    patient.locator("#device-next").click()
    # Continue without agreeing, by keyboard: the box is marked invalid and gets the focus.
    patient.locator("#consent-form [type=submit]").focus()
    patient.keyboard.press("Enter")
    box = patient.locator("#consent-visit")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_be_focused()
    focus = patient.evaluate(FOCUS)
    assert focus["visible"], focus
    assert focus["focus"] == "#0a3a80" and focus["outline"] == "solid 3px rgb(10, 58, 128)", focus  # the focus ring, not the red mark
    assert "rgb(179, 38, 30)" in focus["shadow"], focus  # the invalid mark stays, inside the ring
    shoot(patient, "a11y-consent-invalid-focused", sizes=("phone",))
    # Moving on with Tab, the box keeps its invalid mark.
    patient.keyboard.press("Tab")
    assert patient.evaluate("() => getComputedStyle(document.querySelector('#consent-visit')).outline") == "rgb(179, 38, 30) solid 2px"
    ui.assert_clean()


#: axe-core's css-orientation-lock alone, with the stylesheets preloaded: [outcome, nodes].
ORIENTATION = """async () => {
  const r = await axe.run(document, { runOnly: { type: "rule", values: ["css-orientation-lock"] }, preload: true });
  for (const outcome of ["violations", "incomplete", "passes", "inapplicable"]) {
    if (r[outcome].length) return [outcome, r[outcome][0].nodes.map((n) => n.target.join(" "))];
  }
  return ["none", []];
}"""


@pytest.mark.timeout(90)
def test_no_page_locks_the_screen_orientation(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Omar Said")
    pages = {
        "home": f"{node.url}/",
        "walk-in": f"{node.url}/clinic/{clinic}",
        "patient": link,
        "staff": node.staff_link(node.token(Role.NURSE, clinic)),
    }
    for name, url in pages.items():
        # Bypassing the CSP lets axe put the fetched stylesheets in <style> elements to read them.
        page = ui.page(f"orientation-{name}", phone=True, bypass_csp=True)
        page.goto(url)
        expect(page.locator("html")).not_to_have_class(re.compile(r"\bi18n-pending\b"))
        page.evaluate(AXE_SCRIPT)
        outcome, nodes = page.evaluate(ORIENTATION)
        assert outcome == "passes", f"{name}: css-orientation-lock {outcome}: {nodes}"  # read the stylesheets, found no lock
    ui.assert_clean()
