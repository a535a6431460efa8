"""The doctor's captions panel and snapshot gallery, fed with the events the
server sends (captions that the worker does not produce yet, shots that are
blurred or dark), rendered in the real page and stylesheet."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import UI, Node, shoot

SHOW = """async () => {
  const { CaptionsPanel } = await import('/static/captions.js');
  const { SnapshotGallery } = await import('/static/snapshots.js');
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== 'visit';
  document.querySelector('#visit-title').textContent = 'Visit with Test Patient';
  const captions = new CaptionsPanel(document.querySelector('#captions'), document.querySelector('#captions-state'));
  captions.reset('v1', { consent: true });
  window.__panel = captions;
  captions.applyState({ visit_id: 'v1', state: 'on' });
  captions.applyCaption({ visit_id: 'v1', role: 'patient', final: false, text: 'my throat' });
  captions.applyCaption({ visit_id: 'v1', role: 'patient', final: true, text: 'my throat hurts since yesterday' });
  captions.applyCaption({ visit_id: 'v1', role: 'doctor', final: true, text: 'open your mouth please' });
  captions.applyCaption({ visit_id: 'v1', role: 'patient', final: false, text: 'like this' });
  captions.applyCaption({ visit_id: 'other', role: 'patient', final: true, text: 'not this visit' });
  let retakes = 0;
  const gallery = new SnapshotGallery(document.querySelector('#gallery'), { onRetake: () => { retakes++; window.__retakes = retakes; } });
  const t = Date.now() / 1000;
  gallery.add({ id: 'a', file: 'snapshots/a.jpg', sharpness: 212.4, brightness: 101.2, width: 640, height: 480, taken_at: t }, null);
  gallery.add({ id: 'b', file: 'snapshots/b.jpg', sharpness: 12.9, brightness: 96, width: 640, height: 480, taken_at: t }, null);
  gallery.add({ id: 'c', file: 'snapshots/c.jpg', sharpness: 180, brightness: 21.5, width: 640, height: 480, taken_at: t }, null);
  return captions.describe();
}"""


@pytest.mark.timeout(120)
def test_captions_and_snapshot_warnings(ui: UI, node: Node) -> None:
    page = ui.page("doctor-panels")
    page.goto(node.url + "/staff")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate(SHOW) == "2 caption lines (the chart keeps the transcript)"

    lines = page.locator("#captions li")
    expect(lines).to_have_count(3)
    expect(lines.nth(0)).to_have_text("Patient: my throat hurts since yesterday")
    expect(lines.nth(1)).to_have_text("You: open your mouth please")
    expect(lines.nth(2)).to_have_class("caption caption-patient caption-partial")
    expect(lines.nth(2)).to_have_attribute("aria-hidden", "true")
    expect(page.locator("#captions-state")).to_have_text("Live")

    shots = page.locator("#gallery li")
    expect(shots).to_have_count(3)
    dark, blurred, good = shots.nth(0), shots.nth(1), shots.nth(2)
    expect(dark).to_contain_text("Too dark")
    expect(blurred).to_contain_text("Blurred — retake?")
    expect(good).not_to_contain_text("retake")
    expect(good).to_contain_text("Sharpness 212 · brightness 101 · 640×480")
    expect(good.get_by_role("button", name="Retake")).to_have_count(0)
    blurred.get_by_role("button", name="Retake").focus()
    page.keyboard.press("Enter")  # keyboard only
    assert page.evaluate("window.__retakes") == 1
    shoot(page, "doctor-panels")

    page.evaluate("window.__panel.applyState({ visit_id: 'v1', state: 'unavailable', message: 'no speech model' })")
    expect(page.locator("#captions-state")).to_have_text("Captions unavailable: no speech model. The visit and its recording go on.")
    assert page.evaluate("window.__panel.describe()") == "Captions were unavailable"
    ui.assert_clean()
