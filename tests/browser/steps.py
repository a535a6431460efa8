"""What a person does on the pages, and what the tests read back from them
(getStats of the call and of the chart leg)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
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


def invite_guest(doctor: Page, name: str, *, language: str | None = "es", kind: str | None = None) -> str:
    """The doctor invites a guest from the visit's "People in this visit" panel
    (an interpreter of ``language`` unless ``kind`` is another option's value);
    returns the guest's link."""
    panel = doctor.locator("#guests-panel")
    panel.get_by_role("button", name="Invite someone").click()
    if kind:
        panel.get_by_label("Who", exact=True).select_option(kind)
    panel.get_by_label("Their name").fill(name)
    if language:
        panel.get_by_label("Language they interpret").select_option(language)
    panel.get_by_role("button", name="Create the link").click()
    link: str = panel.get_by_role("textbox", name="Guest link").input_value()
    return link


def guest_enters(guest: Page, link: str, *, recording: bool = False) -> None:
    """A guest's way in: welcome, device check, consent to the visit (and, if
    ``recording``, to being recorded), the lobby."""
    guest.goto(link)
    guest.locator("#welcome-next").click()
    guest.locator("#device-start").click()
    guest.locator("#device-next").click()
    guest.locator("#consent-visit").check()
    if recording:
        guest.locator("#consent-recording").check()
    guest.locator("#join").click()
    expect(guest.locator("[data-screen=lobby]")).to_be_visible()


def guest_tour_to_lobby(guest: Page, url: str, look: Callable[[Page, str], None]) -> None:
    """A guest's screens up to the lobby, each shown to ``look`` (a language
    tour): welcome, device check, consent refused once (its error), the lobby."""
    guest.goto(url)
    expect(guest.locator("[data-screen=welcome]")).to_be_visible()
    look(guest, "guest-welcome")
    guest.locator("#welcome-next").click()
    guest.locator("#device-start").click()
    guest.locator("#device-next").click()
    guest.locator("#join").click()
    expect(guest.locator("#consent-error")).to_be_visible()
    look(guest, "guest-consent")
    guest.locator("#consent-visit").check()
    guest.locator("#join").click()
    expect(guest.locator("[data-screen=lobby]")).to_be_visible()
    look(guest, "guest-lobby")


def let_in(doctor: Page, guest: Page, name: str) -> None:
    """The doctor lets a guest in from the lobby; the guest's page shows the visit."""
    doctor.locator("#guests-list li", has_text=name).get_by_role("button", name=f"Let {name} in").click()
    expect(guest.locator("[data-screen=in]")).to_be_visible()


#: Every connected call connection of the page that receives, with its inbound bytes.
PEER_STATS = """async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState === 'connected'
    && pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly'));
  const out = [];
  for (const pc of pcs) {
    const row = {id: window.__pcs.indexOf(pc), audio: 0, video: 0, frames: 0};
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      if (s.kind === 'video') { row.video += s.bytesReceived || 0; row.frames += s.framesDecoded || 0; }
      else row.audio += s.bytesReceived || 0;
    });
    out.push(row);
  }
  return out;
}"""


def mesh_flows(page: Page, who: str, peers: int, timeout: float = 90) -> list[dict[str, Any]]:
    """``peers`` call connections of the page are connected and inbound audio
    and video grow on each of them. Returns the last figures."""
    deadline = time.monotonic() + timeout
    first: dict[int, dict[str, Any]] = {}
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = page.evaluate(PEER_STATS)
        grown = 0
        for row in last:
            before = first.setdefault(row["id"], row)
            if row["video"] > before["video"] + 20_000 and row["frames"] > before["frames"] + 10 and row["audio"] > before["audio"] + 1_000:
                grown += 1
        if len(last) >= peers and grown >= peers:
            return last
        page.wait_for_timeout(500)
    raise AssertionError(f"{who}: inbound audio and video did not grow on {peers} connections in {timeout:.0f} s; first {first}, last {last}")
