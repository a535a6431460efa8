"""What a person does on the pages, and what the tests read back from them
(getStats of the call and of the chart leg)."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import Page, expect

#: The call's connection: the page's newest open peer connection that receives.
CALL_STATS = """async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState !== 'closed'
    && pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly'));
  const pc = pcs[pcs.length - 1];
  if (!pc) return null;
  const out = {id: window.__pcs.indexOf(pc), state: pc.connectionState, audioBytes: 0, videoBytes: 0, frames: 0, audioSamples: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') {
      out.videoBytes += s.bytesReceived || 0;
      out.frames += s.framesDecoded || 0;
    } else {
      out.audioBytes += s.bytesReceived || 0;
      out.audioSamples += s.totalSamplesReceived || 0;
    }
  });
  return out;
}"""

#: The chart leg: connected peer connections that only send.
LEG_STATS = """async () => {
  const legs = (window.__pcs || []).filter((pc) => pc.connectionState === 'connected'
    && pc.getTransceivers().length > 0 && pc.getTransceivers().every((t) => t.direction === 'sendonly'));
  const pc = legs[legs.length - 1];
  if (!pc) return null;
  const out = {count: legs.length, kinds: [], maxBitrate: null, bytesSent: 0};
  for (const sender of pc.getSenders()) {
    if (!sender.track) continue;
    out.kinds.push(sender.track.kind);
    if (sender.track.kind === 'video') {
      const encodings = sender.getParameters().encodings || [];
      out.maxBitrate = encodings.length ? encodings[0].maxBitrate ?? null : null;
    }
  }
  (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') out.bytesSent += s.bytesSent || 0; });
  return out;
}"""


def poll(page: Page, script: str, ok: Any, what: str, timeout: float = 45) -> Any:
    """Evaluate ``script`` until ``ok(value)``; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if ok(value):
            return value
        page.wait_for_timeout(500)
    raise AssertionError(f"{what}: gave up after {timeout:.0f} s; last {value}")


def media_flows(page: Page, who: str, timeout: float = 60) -> dict[str, Any]:
    """The call is connected and inbound video (bytes and decoded frames) and
    audio (bytes and samples) keep growing on this page's current call
    connection (a new connection, after a reload, starts the count again).
    Returns the first and last figures."""
    deadline = time.monotonic() + timeout
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = page.evaluate(CALL_STATS)
        if not last or last["state"] != "connected":
            first = None
        elif first is None or first["id"] != last["id"]:
            first = last
        elif (
            last["videoBytes"] > first["videoBytes"] + 20_000
            and last["frames"] > first["frames"] + 10
            and last["audioBytes"] > first["audioBytes"] + 1_000
            and last["audioSamples"] > first["audioSamples"] + 8_000
        ):
            return {"first": first, "last": last}
        page.wait_for_timeout(500)
    raise AssertionError(f"{who}: inbound audio and video did not grow in {timeout:.0f} s; first {first}, last {last}")


def leg_sends(page: Page, who: str, timeout: float = 60) -> dict[str, Any]:
    """This page's chart leg is connected, sends audio and video (bytes grow),
    and its video is capped at the leg's bitrate."""
    first = poll(page, LEG_STATS, lambda s: bool(s), f"{who}: chart leg connected", timeout)
    last = poll(page, LEG_STATS, lambda s: bool(s) and s["bytesSent"] > first["bytesSent"] + 20_000,
                f"{who}: chart leg sends", timeout)
    return last


def check_in(page: Page, link: str, reason: str, *, recording: bool = True, shots: str | None = None) -> None:
    """The patient's way in: device check, consent, reason, check-in."""
    from tests.browser.conftest import shoot

    page.goto(link)
    expect(page.get_by_role("heading", name="Check your camera and microphone")).to_be_visible()
    page.get_by_role("button", name="Test camera and microphone").click()
    expect(page.get_by_role("button", name="It works, continue")).to_be_visible()
    if shots:
        shoot(page, f"{shots}-device")
    page.get_by_role("button", name="It works, continue").click()
    page.get_by_label("I agree to have this visit by video").check()
    if recording:
        page.get_by_label("I agree that the visit may be recorded").check()
    if shots:
        shoot(page, f"{shots}-consent")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Reason for your visit").fill(reason)
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_role("heading", name="You’re in the waiting room")).to_be_visible()
    expect(page.locator("#wait-position")).not_to_have_text("…")


def check_in_in(page: Page, link: str, language: str, reason: str, *, recording: bool = True) -> None:
    """The patient's way in on a page shown in ``language`` (the link with
    ``?lang=``): the same steps as :func:`check_in`, found by their ids."""
    page.goto(link.replace("/visit#", f"/visit?lang={language}#"))
    page.locator("#device-start").click()
    page.locator("#device-next").click()
    page.locator("#consent-visit").check()
    if recording:
        page.locator("#consent-recording").check()
    page.locator("#consent-form [type=submit]").click()
    page.locator("#reason").fill(reason)
    page.locator("#check-in").click()
    expect(page.locator("[data-screen=waiting]")).to_be_visible()
    expect(page.locator("#wait-position")).not_to_have_text("…")


def send_chat(scope: Any, text: str) -> None:
    box = scope.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def admit(doctor: Page, patient_name: str) -> None:
    doctor.get_by_role("button", name=f"Admit {patient_name}").click()
    expect(doctor.get_by_role("heading", name=f"Visit with {patient_name}")).to_be_visible()


def recording_shown(page: Page, text: str | re.Pattern[str] = "this visit is recorded") -> None:
    indicator = page.locator("#recording")
    expect(indicator).to_be_visible(timeout=60_000)
    expect(indicator).to_contain_text(text, timeout=60_000)


#: Visible controls without a name a screen reader could say.
UNLABELLED = """() => [...document.querySelectorAll('button, input, select, textarea, meter, video, img')]
  .filter((el) => el.getClientRects().length > 0 && el.type !== 'hidden')
  .filter((el) => !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.getAttribute('alt')
                    || (el.labels && el.labels.length) || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map((el) => el.outerHTML.slice(0, 100))"""


def assert_labelled(page: Page) -> None:
    missing = page.evaluate(UNLABELLED)
    assert not missing, f"controls without a label: {missing}"
