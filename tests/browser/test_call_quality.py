"""What the people in a call see and do on a weak network (web/call_quality.js,
call.js, call_view.js): the connection's level in words on both pages, the
patient's level on the doctor's, video paused to keep the sound clear (by
choice, or by the fallback on a bad path) and shown as such on the other
page, and the pages' reports of how the call went (visit.json)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser._impaired import Impaired, impaired_browser_fixture, impaired_fixture, impaired_ui_fixture  # noqa: F401
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, media_flows, poll

#: Packets of the page's call connection: audio received and sent, and what its video sender sends.
PACKETS = """async () => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState !== 'closed'
    && pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly'));
  const pc = pcs[pcs.length - 1];
  if (!pc) return null;
  const out = {state: pc.connectionState, audioReceived: 0, audioSent: 0, framesDecoded: 0, videoSending: null};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioReceived += s.packetsReceived || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded += s.framesDecoded || 0;
    if (s.type === 'outbound-rtp' && s.kind === 'audio') out.audioSent += s.packetsSent || 0;
  });
  const video = pc.getTransceivers().find((t) => t.receiver.track.kind === 'video');
  out.videoSending = Boolean(video && video.sender.track);
  return out;
}"""


#: The level the page shows, and the call's figures over four seconds as call_quality.js reads them.
LEVEL = """async () => {
  const q = await import('/static/call_quality.js');
  const pc = window.__pcs.filter((p) => p.connectionState === 'connected'
    && p.getTransceivers().some((t) => t.direction === 'sendrecv')).pop();
  const before = q.readStats(await pc.getStats());
  await new Promise((r) => setTimeout(r, 4000));
  const {counters, ...reading} = q.readStats(await pc.getStats(), before.counters);
  return {level: document.querySelector('#call-quality').dataset.level, reading};
}"""


def packets(page: Page) -> dict[str, Any]:
    got: dict[str, Any] = page.evaluate(PACKETS)
    return got


def wait_visit_json(chart: Path, timeout: float = 40) -> dict[str, Any]:
    path = chart / "visit.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "no visit.json"
        time.sleep(0.25)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def end_visit(doctor: Page) -> None:
    doctor.get_by_role("button", name="End visit").click()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(doctor.get_by_role("heading", name="Visit summary")).to_be_visible()


#: The pure parts of web/call_quality.js on sample figures.
RULES = """async () => {
  const q = await import('/static/call_quality.js');
  const levels = {
    loopback: q.levelOf({rttMs: 2, lossPct: 0, outKbps: 2500, fps: 24}),
    threeG: q.levelOf({rttMs: 330, lossPct: 1.2, outKbps: 260, fps: 20}),
    bad: q.levelOf({rttMs: 640, lossPct: 5.5, outKbps: 120, fps: null}),
    badPaused: q.levelOf({rttMs: 640, lossPct: 5.5}),
    lost: q.levelOf({rttMs: 2500, lossPct: 30}),
    lowFps: q.levelOf({rttMs: 10, lossPct: 0, fps: 2}),
    nothing: q.levelOf({}),
  };
  const smoother = new q.LevelSmoother(2);
  const smoothed = ['good', 'weak', 'good', 'fair', 'good', 'good'].map((l) => smoother.push(l));
  // The fallback, one reading every 2 s.
  const rule = new q.FallbackRule();
  const run = (samples, from) => samples.map((s, i) => rule.update(s, from + 2000 * i));
  const ok = {outKbps: 900, rttMs: 40, lossPct: 0};
  const bad = {outKbps: 120, rttMs: 640, lossPct: 6};
  const badHigh = {outKbps: 400, rttMs: 640, lossPct: 6};
  const calmLow = {outKbps: 90, rttMs: 40, lossPct: 0};
  return {
    levels,
    smoothed,
    steady: run([ok, ok, ok], 0),
    shortDip: run([bad, bad, ok, bad, bad, ok], 10000),   // below 150 for < 4 s at a time: nothing
    pause: run([bad, bad, bad], 30000),                   // 4 s below: pause
    badStays: run([bad, bad, bad, bad, bad, bad, bad], 40000),
    highResume: run([badHigh, badHigh, badHigh, badHigh, badHigh], 60000),  // > 300 for 8 s: resume
    rampExempt: run([calmLow, calmLow, calmLow, calmLow], 72000),  // low but calm just after: ramping
    pauseAgain: run([bad, bad, bad], 90000),
    calmResume: run([calmLow, calmLow, calmLow, calmLow, calmLow], 100000),  // calm for 8 s: a try
    failedTry: run([bad, bad, bad], 110000),  // the try fell back at once
    calmNeeded: rule.calmNeededMs,
  };
}"""


@pytest.mark.timeout(120)
def test_levels_and_fallback_rule(ui: UI, node: Node) -> None:
    page = ui.page("rules")
    page.goto(node.url + "/")
    got = page.evaluate(RULES)
    assert got["levels"] == {"loopback": "good", "threeG": "fair", "bad": "weak", "badPaused": "weak",
                             "lost": "very_weak", "lowFps": "weak", "nothing": None}
    # Down at once, up only after two better readings in a row.
    assert got["smoothed"] == ["good", "weak", "weak", "fair", "fair", "good"]
    assert got["steady"] == [None, None, None]
    assert got["shortDip"] == [None] * 6
    assert got["pause"] == [None, None, "pause"]
    assert got["badStays"] == [None] * 7
    assert got["highResume"] == [None, None, None, None, "resume"]
    assert got["rampExempt"] == [None] * 4
    assert got["pauseAgain"] == [None, None, "pause"]
    assert got["calmResume"] == [None, None, None, None, "resume"]
    assert got["failedTry"] == [None, None, "pause"]
    assert got["calmNeeded"] == 16000  # the next try asks for twice the calm
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_patient_chooses_audio_only(ui: UI, node: Node, clinic: str) -> None:
    visit_id, link = node.create_visit(clinic, "Lea Quiet")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Follow-up", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Osei")))
    admit(doctor, "Lea Quiet")
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")

    # Both see their connection in words; the doctor sees the patient's too.
    for page in (patient, doctor):
        expect(page.locator("#call-quality")).to_be_visible()
        # (Loopback is good, but a loaded machine may decode few frames: any level, in words.)
        expect(page.locator("#call-quality")).to_have_text(re.compile(r"^Your connection is (good|fair|weak|very weak)"))
        expect(page.locator("#call-quality")).to_have_attribute("data-level", re.compile(r"^(good|fair|weak|very_weak)$"))
    expect(doctor.locator("#peer-quality")).to_have_text(re.compile(r"^The patient’s connection: (good|fair|weak|very weak)$"))
    expect(patient.locator("#peer-quality")).to_have_text(re.compile(r"^The doctor’s connection: (good|fair|weak|very weak)$"))
    expect(doctor.locator("#remote-paused")).to_be_hidden()
    shoot(patient, "call-quality-patient")
    shoot(doctor, "call-quality-doctor")

    # The patient picks audio only: no video is sent, the doctor is told so instead of a frozen picture.
    patient.get_by_role("button", name="Switch to audio only").click()
    expect(patient.get_by_role("button", name="Turn video back on")).to_be_visible()
    expect(patient.locator("#own-paused")).to_have_text("Audio only: you are heard but not seen.")
    paused = doctor.locator("#remote-paused")
    expect(paused).to_have_text("The patient switched to audio only. You can still hear each other.")
    expect(paused).to_have_attribute("data-video", "audio_only")
    assert packets(patient)["videoSending"] is False
    # The sound still flows to the doctor.
    first = packets(doctor)
    poll(doctor, PACKETS, lambda p: p["audioReceived"] > first["audioReceived"] + 150, "doctor: audio keeps arriving")
    shoot(patient, "call-audio-only-patient")
    shoot(doctor, "call-audio-only-doctor")
    assert_labelled(patient)

    # Video back: the note goes, frames arrive again.
    patient.get_by_role("button", name="Turn video back on").click()
    expect(paused).to_be_hidden()
    expect(patient.locator("#own-paused")).to_be_hidden()
    assert packets(patient)["videoSending"] is True
    frames = packets(doctor)["framesDecoded"]
    poll(doctor, PACKETS, lambda p: p["framesDecoded"] > frames + 20, "doctor: the patient's video is back")
    # The doctor turns the camera off: the patient reads so instead of a black picture.
    doctor.get_by_role("button", name="Turn camera off").click()
    expect(patient.locator("#remote-paused")).to_have_text("The doctor’s camera is off.")
    doctor.get_by_role("button", name="Turn camera on").click()
    expect(patient.locator("#remote-paused")).to_be_hidden()

    # Both pages reported how the call went: in visit.json once the visit ends.
    end_visit(doctor)
    quality = wait_visit_json(node.chart(clinic, visit_id))["call_quality"]
    assert quality["calls"] == 1, quality
    for side in ("patient", "doctor"):
        assert quality[side]["calls_started"] == 1, quality
        assert 0 < quality[side]["audio_ms_median"] < 60_000, quality
        assert 0 < quality[side]["video_ms_median"] < 60_000, quality
        assert quality[side]["direct"] == 1 and quality[side]["relayed"] == 0, quality
        assert quality[side]["audio_only"] == 0, quality  # a choice, not a fallback
    ui.assert_clean()


#: The doctor's page on the clinic's good network: straight to coturn, not
#: across the impairing relay (only the patient's path is bad).
DIRECT_TURN = """(() => {
  const Wrapped = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Wrapped {
    constructor(config, ...rest) {
      if (config && config.iceServers) {
        const urls = (u) => [].concat(u).map((url) => url.replace(':%d?', ':%d?'));
        config = {...config, iceServers: config.iceServers.map((s) => ({...s, urls: urls(s.urls)}))};
      }
      super(config, ...rest);
    }
  };
})();"""


@pytest.mark.timeout(420)
def test_bad_network_pauses_video_keeps_audio(impaired_ui: UI, impaired: Impaired) -> None:
    ui, node = impaired_ui, impaired.node
    clinic = "c-weak-1"
    visit_id, link = node.create_visit(clinic, "Tomas Far")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    doctor.context.add_init_script(DIRECT_TURN % (impaired.relay.port, impaired.turn.port))
    check_in(patient, link, "Cough", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Haas")))
    admit(doctor, "Tomas Far")
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    expect(patient.locator("#own-paused")).to_be_hidden()

    # The patient's path turns bad: 150 kbit/s, 300 ms, 5 % loss each way.
    impaired.set_profile("bad")
    weak = re.compile(r"^(weak|very_weak)$")
    expect(patient.locator("#call-quality")).to_have_attribute("data-level", weak, timeout=60_000)
    expect(patient.locator("#call-quality")).to_contain_text(re.compile(r"Your connection is (very )?weak"))
    own = patient.locator("#own-paused")
    expect(own).to_have_attribute("data-reason", "network", timeout=90_000)
    expect(own).to_contain_text("Your video is paused to keep the sound clear.")
    remote = doctor.locator("#remote-paused")
    expect(remote).to_have_text("Video paused to keep the sound clear. You can still hear the patient.", timeout=30_000)
    expect(doctor.locator("#peer-quality")).to_have_text(re.compile(r"^The patient’s connection: (very )?weak$"))
    assert packets(patient)["videoSending"] is False
    # Once video is paused, what is left (sound at 5 % loss, 600 ms round trip) is weak, not very weak.
    level = poll(patient, LEVEL, lambda got: got["level"] == "weak", "patient: weak once video is paused", timeout=60)
    assert level["reading"]["lossPct"] < 12 and level["reading"]["rttMs"] < 1500, level
    shoot(patient, "call-weak-patient")
    shoot(doctor, "call-weak-doctor")

    # Audio continues both ways: each page receives at least 90 % of the audio packets the other
    # sent (the senders' counts read half a second before the receivers': the packets in flight
    # count in both windows).
    def counts() -> tuple[int, int, int, int]:
        p_sent, d_sent = packets(patient)["audioSent"], packets(doctor)["audioSent"]
        doctor.wait_for_timeout(500)
        return p_sent, d_sent, packets(doctor)["audioReceived"], packets(patient)["audioReceived"]

    before = counts()
    poll(patient, PACKETS, lambda p: p["audioSent"] > before[0] + 1500, "patient: 1,500 audio packets sent", timeout=90)
    after = counts()
    p_sent, d_sent, d_got, p_got = (a - b for a, b in zip(after, before, strict=True))
    assert d_got >= 0.9 * p_sent, f"the doctor received {d_got} of the patient's {p_sent} audio packets"
    assert p_got >= 0.9 * d_sent, f"the patient received {p_got} of the doctor's {d_sent} audio packets"
    expect(own).to_have_attribute("data-reason", "network")  # still paused on the bad path

    # The path recovers: video comes back by itself.
    impaired.set_profile("good")
    expect(own).to_be_hidden(timeout=90_000)
    expect(remote).to_be_hidden(timeout=30_000)
    frames = packets(doctor)["framesDecoded"]
    poll(doctor, PACKETS, lambda p: p["framesDecoded"] > frames + 30, "doctor: the patient's video is back", timeout=60)
    expect(patient.locator("#call-quality")).not_to_have_attribute("data-level", weak, timeout=60_000)
    media_flows(doctor, "doctor after the bad path")

    # The fallback and the relayed path are in the visit's call-quality summary.
    end_visit(doctor)
    quality = wait_visit_json(node.chart(clinic, visit_id))["call_quality"]
    assert quality["patient"]["audio_only"] == 1 and quality["patient"]["relayed"] == 1, quality
    assert quality["patient"]["calls_started"] == 1 and quality["doctor"]["calls_started"] == 1, quality
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_audio_only_lasts_into_a_new_call(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Omar Still")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Rash", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Sato")))
    admit(doctor, "Omar Still")
    media_flows(doctor, "doctor")
    patient.get_by_role("button", name="Switch to audio only").click()
    expect(doctor.locator("#remote-paused")).to_have_attribute("data-video", "audio_only")

    # The doctor's page reloads: a new call, which the patient answers without video, as chosen.
    doctor.reload()
    expect(doctor.get_by_role("heading", name="Visit with Omar Still")).to_be_visible()
    expect(doctor.locator("#remote-paused")).to_have_attribute("data-video", "audio_only")
    expect(doctor.locator("#call-state")).to_have_attribute("data-state", "connected")
    first = packets(doctor)
    poll(doctor, PACKETS, lambda p: p["audioReceived"] > first["audioReceived"] + 150, "doctor: audio in the new call")
    assert packets(patient)["videoSending"] is False

    # The patient's page reloads: the choice lasts (this tab), the next call is audio only too.
    patient.reload()
    expect(patient.get_by_role("button", name="Turn video back on")).to_be_visible()
    expect(patient.locator("#call-state")).to_have_attribute("data-state", "connected")
    expect(doctor.locator("#remote-paused")).to_have_attribute("data-video", "audio_only")
    assert packets(patient)["videoSending"] is False

    # Video back within that call (no renegotiation): the doctor decodes the patient's frames.
    patient.get_by_role("button", name="Turn video back on").click()
    expect(doctor.locator("#remote-paused")).to_be_hidden()
    frames = packets(doctor)["framesDecoded"]
    poll(doctor, PACKETS, lambda p: p["framesDecoded"] > frames + 20, "doctor: the patient's video in the new call")
    ui.assert_clean()
