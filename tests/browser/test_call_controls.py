"""The call's own controls (web/call_controls.js, web/local_tracks.js) with a
patient and a doctor in a call (and a guest's, on the guest page): the timer, the camera switch and the device
picker on a page with several fake cameras, a camera that stops by itself,
full screen, the doctor's "End visit" in the bar, and the patient leaving the
call and rejoining it.

Chromium's ``--use-fake-device-for-media-stream=device-count=3`` gives
"fake_device_0", "fake_device_1" and "fake_device_2". The second is a depth
camera: it plays in a <video> but WebRTC's encoder sends none of its frames
(even as the first camera of a call), so frames are checked on the first and
the third, and the second only for what the call puts on its sender."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser.conftest import SCREENSHOTS, UI, Node, shoot
from tests.browser.steps import (
    admit,
    assert_labelled,
    check_in,
    guest_enters,
    invite_guest,
    leg_sends,
    let_in,
    media_flows,
    mesh_flows,
    poll,
    recording_shown,
)

#: Chromium with three fake cameras (and its three fake microphones and speakers).
CAMERAS = "--use-fake-device-for-media-stream=device-count=3"

#: What each open peer connection of the page sends: the call (it receives too) or the chart leg (send only),
#: with the label and enabled flag of each sender's track and the video frames encoded so far.
SENDERS = """async () => {
  const out = [];
  for (const pc of (window.__pcs || [])) {
    if (pc.connectionState === 'closed' || pc.getTransceivers().length === 0) continue;
    const leg = pc.getTransceivers().every((t) => t.direction === 'sendonly');
    const row = {leg, state: pc.connectionState, video: null, audio: null, videoEnabled: null, audioEnabled: null, frames: 0};
    for (const sender of pc.getSenders()) {
      if (!sender.track) continue;
      row[sender.track.kind] = sender.track.label;
      row[sender.track.kind + 'Enabled'] = sender.track.enabled;
    }
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') row.frames += s.framesEncoded || 0;
    });
    out.push(row);
  }
  return out;
}"""


def senders(page: Page, *, leg: bool) -> dict[str, Any]:
    rows = [r for r in page.evaluate(SENDERS) if r["leg"] == leg and r["state"] == "connected"]
    assert rows, f"no connected {'chart leg' if leg else 'call'} on the page"
    return rows[-1]  # type: ignore[no-any-return]


def sends_camera(page: Page, label: str, *, leg: bool) -> None:
    """The call (or the chart leg) sends the camera ``label`` and encodes more and more of its frames."""
    first = poll(
        page,
        SENDERS,
        lambda rows: any(r["leg"] == leg and r["video"] == label and r["state"] == "connected" for r in rows),
        f"{'leg' if leg else 'call'} sends {label}",
    )
    start = next(r for r in first if r["leg"] == leg and r["video"] == label)["frames"]
    poll(
        page,
        SENDERS,
        lambda rows: any(r["leg"] == leg and r["video"] == label and r["frames"] > start + 30 for r in rows),
        f"{'leg' if leg else 'call'} encodes frames of {label}",
    )


#: A phone's cameras, as far as the page can tell: fake_device_0 faces the user, fake_device_2 away
#: (getSettings().facingMode, and getUserMedia's facingMode {exact}); and a camera the test makes
#: refuse to open (window.__refuse = {label, name}: "NotReadableError" as when another app holds it).
PHONE_CAMERAS = """(() => {
  const md = navigator.mediaDevices;
  const real = md.getUserMedia.bind(md);
  const facing = (label) => ({fake_device_0: 'user', fake_device_2: 'environment'})[label] || '';
  const settings = MediaStreamTrack.prototype.getSettings;
  MediaStreamTrack.prototype.getSettings = function () {
    const s = settings.call(this);
    if (this.kind === 'video' && facing(this.label)) s.facingMode = facing(this.label);
    return s;
  };
  md.getUserMedia = async (constraints) => {
    const video = constraints && constraints.video;
    if (video && typeof video === 'object') {
      const cameras = (await md.enumerateDevices()).filter((d) => d.kind === 'videoinput');
      const exact = video.facingMode && video.facingMode.exact;
      if (exact) {
        const camera = cameras.find((d) => facing(d.label) === exact);
        if (!camera) throw new DOMException('no such camera', 'OverconstrainedError');
        constraints = {...constraints, video: {...video, facingMode: undefined, deviceId: {exact: camera.deviceId}}};
      }
      const id = constraints.video.deviceId && constraints.video.deviceId.exact;
      const refuse = window.__refuse;
      if (refuse && id && (cameras.find((d) => d.deviceId === id) || {}).label === refuse.label) {
        throw new DOMException('refused by the test', refuse.name);
      }
    }
    return real(constraints);
  };
})();"""


def start_visit(ui: UI, node: Node, clinic: str, launch: Any, name: str, *, init: str = "") -> tuple[Page, Page, str]:
    """A patient (phone, three cameras) admitted by a doctor; both receive the other's video."""
    visit_id, link = node.create_visit(clinic, name)
    patient = ui.page(
        "patient", phone=True, browser=launch(drop=("--use-fake-device-for-media-stream",), add=(CAMERAS,))
    )
    if init:
        patient.context.add_init_script(init)
    doctor = ui.page("doctor")
    check_in(patient, link, "A rash on the back")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Haddad")))
    admit(doctor, name)
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    return patient, doctor, visit_id


def timer_runs(page: Page) -> None:
    timer = page.locator("#call-timer")
    expect(timer).to_be_visible()
    expect(timer).to_have_text(re.compile(r"^Call time \d\d:\d\d$"))
    before = timer.get_attribute("data-time")
    expect(timer).not_to_have_attribute("data-time", before or "")


@pytest.mark.timeout(300)
def test_timer_camera_switch_and_devices(ui: UI, node: Node, clinic: str, launch: Any) -> None:
    patient, doctor, _ = start_visit(ui, node, clinic, launch, "Rosa Campos")
    timer_runs(patient)
    timer_runs(doctor)
    recording_shown(patient)
    sends_camera(patient, "fake_device_0", leg=False)
    sends_camera(patient, "fake_device_0", leg=True)

    # -- the camera switch: the next camera, in the call and on the chart leg -------------------
    switch = patient.get_by_role("button", name="Switch camera")
    expect(switch).to_be_visible()
    switch.click()
    expect(patient.locator("#controls-status")).to_have_text("Now using the camera fake_device_1.")
    expect(switch).to_be_focused()
    poll(
        patient,
        SENDERS,
        lambda rows: len(rows) == 2 and all(r["video"] == "fake_device_1" for r in rows),
        "call and leg send fake_device_1",
    )
    switch.click()
    expect(patient.locator("#controls-status")).to_have_text("Now using the camera fake_device_2.")
    sends_camera(patient, "fake_device_2", leg=False)
    sends_camera(patient, "fake_device_2", leg=True)
    media_flows(doctor, "doctor after the patient's camera switch")
    leg_sends(patient, "patient after the camera switch")

    # -- the picker lists the devices by their names; camera off and mute carry over --------------
    patient.get_by_role("button", name="Turn camera off").click()
    patient.get_by_role("button", name="Mute microphone").click()
    patient.get_by_role("button", name="Devices").click()
    expect(patient.get_by_role("button", name="Devices")).to_have_attribute("aria-expanded", "true")
    panel = patient.get_by_role("region", name="Camera, microphone and speaker")
    camera = panel.get_by_label("Camera", exact=True)
    expect(camera).to_be_focused()
    expect(camera.locator("option")).to_have_text(["fake_device_0", "fake_device_1", "fake_device_2"])
    expect(camera).to_have_value(
        patient.evaluate("document.querySelector('#local-video').srcObject.getVideoTracks()[0].getSettings().deviceId")
    )
    microphone = panel.get_by_label("Microphone", exact=True)
    expect(microphone.locator("option")).to_contain_text(["Fake Audio Input 1", "Fake Audio Input 2"])
    expect(panel.get_by_label("Speaker", exact=True).locator("option")).to_contain_text(["Fake Audio Output 1"])
    camera.select_option(label="fake_device_0")
    expect(patient.locator("#controls-status")).to_have_text("Now using the camera fake_device_0.")
    microphone.select_option(label="Fake Audio Input 2")
    expect(patient.locator("#controls-status")).to_have_text("Now using the microphone Fake Audio Input 2.")
    call = poll(
        patient,
        SENDERS,
        lambda rows: any(not r["leg"] and r["audio"] == "Fake Audio Input 2" for r in rows),
        "call sends the new microphone",
    )
    sent = next(r for r in call if not r["leg"] and r["state"] == "connected")
    assert sent["videoEnabled"] is False and sent["audioEnabled"] is False, sent  # still off and muted
    expect(patient.get_by_role("button", name="Turn camera on")).to_be_visible()
    expect(patient.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(doctor.locator("#remote-paused")).to_contain_text("camera is off")
    panel.get_by_label("Speaker", exact=True).select_option(label="Fake Audio Output 1")
    expect(patient.locator("#controls-status")).to_have_text("The sound now plays on Fake Audio Output 1.")
    patient.get_by_role("button", name="Turn camera on").click()
    patient.get_by_role("button", name="Unmute microphone").click()
    media_flows(doctor, "doctor after the picker")
    shoot(patient, "call-controls-patient-devices")

    # -- a camera that stops by itself (unplugged): plain words, and the picker to choose another ---
    patient.get_by_role("button", name="Done").click()
    expect(patient.get_by_role("button", name="Devices")).to_be_focused()
    patient.evaluate(
        "document.querySelector('#local-video').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))"
    )
    expect(patient.get_by_role("alert").filter(has_text="Your camera stopped")).to_have_text(
        "Your camera stopped. Choose another one."
    )
    expect(camera).to_be_visible()
    expect(camera).to_be_focused()
    shoot(patient, "call-controls-patient-camera-stopped")
    camera.select_option(label="fake_device_2")
    expect(patient.locator("#controls-problem")).to_be_hidden()
    sends_camera(patient, "fake_device_2", leg=False)
    media_flows(doctor, "doctor after the camera was chosen again")

    # -- the doctor: timer, full screen, and "End visit" the bar's last button, asking first --------
    bar = doctor.locator("[data-screen=visit] .call-controls button:visible")
    expect(bar.last).to_have_text("End visit")
    expect(doctor.get_by_role("button", name="Switch camera")).to_be_hidden()  # one camera here
    doctor.get_by_role("button", name="Full screen").click()
    expect(doctor.get_by_role("button", name="Exit full screen")).to_be_visible()
    # The call's stage and its controls are full screen together.
    assert doctor.evaluate("""() => { const el = document.fullscreenElement;
      return Boolean(el) && el.contains(document.querySelector('.stage')) && el.contains(document.querySelector('#end-visit')); }""")
    doctor.screenshot(path=str(SCREENSHOTS / "call-controls-doctor-fullscreen-desktop.png"))
    doctor.get_by_role("button", name="Exit full screen").click()
    expect(doctor.get_by_role("button", name="Full screen")).to_be_visible()
    assert doctor.evaluate("document.fullscreenElement") is None
    shoot(doctor, "call-controls-doctor")
    for page in (patient, doctor):
        assert_labelled(page)
    doctor.get_by_role("button", name="End visit").click()
    expect(doctor.get_by_role("button", name="Yes, end the visit")).to_be_visible()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(patient.get_by_role("heading", name="Your visit has ended")).to_be_visible()
    expect(patient.locator("#call-timer")).to_be_hidden()
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_patient_leaves_and_rejoins(ui: UI, node: Node, clinic: str, launch: Any) -> None:
    patient, doctor, _ = start_visit(ui, node, clinic, launch, "Ines Duarte")
    recording_shown(patient)
    leg_sends(patient, "patient")
    leave = patient.get_by_role("button", name="Leave call")
    expect(leave).to_be_visible()
    leave.click()
    expect(patient.locator("#you-left")).to_have_text("You left the call")
    expect(patient.locator("#call-left")).to_contain_text("nobody sees or hears you")
    expect(patient.get_by_role("button", name="Rejoin the call")).to_be_focused()
    expect(patient.get_by_role("button", name="Mute microphone")).to_be_hidden()
    # Nothing of the patient goes out while they are out of the call: no call, no chart leg.
    poll(patient, SENDERS, lambda rows: rows == [], "the patient's connections closed")
    shoot(patient, "call-controls-patient-left")
    patient.get_by_role("button", name="Rejoin the call").click()
    expect(patient.locator("#controls-status")).to_have_text("You are back in the call.")
    expect(leave).to_be_focused()
    media_flows(patient, "patient after rejoining")
    media_flows(doctor, "doctor after the patient rejoined")
    leg_sends(patient, "patient after rejoining")
    timer_runs(patient)
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_phone_front_and_back_camera_and_failures(ui: UI, node: Node, clinic: str, launch: Any) -> None:
    """On a phone (cameras that say which way they face) the switch goes to the other side; a camera
    another app holds, or one the browser may not use, is said in plain words and the call keeps its camera."""
    patient, doctor, _ = start_visit(ui, node, clinic, launch, "Lena Park", init=PHONE_CAMERAS)
    sends_camera(patient, "fake_device_0", leg=False)
    switch = patient.get_by_role("button", name="Switch camera")
    switch.click()
    expect(patient.locator("#controls-status")).to_have_text("Now using the back camera.")
    expect(patient.locator("#local-video")).to_have_attribute("data-facing", "environment")  # not mirrored
    assert patient.evaluate("getComputedStyle(document.querySelector('#local-video')).transform") == "none"
    sends_camera(patient, "fake_device_2", leg=False)
    media_flows(doctor, "doctor after the switch to the back camera")

    patient.evaluate("window.__refuse = {label: 'fake_device_0', name: 'NotReadableError'}")
    switch.click()
    problem = patient.get_by_role("alert").filter(has_text="another app")
    expect(problem).to_have_text(
        "Your camera is being used by another app. Close that app, then choose the camera again."
    )
    expect(switch).to_be_focused()
    sends_camera(patient, "fake_device_2", leg=False)  # the back camera again, still sent
    shoot(patient, "call-controls-patient-camera-busy", sizes=("phone",))

    patient.evaluate("window.__refuse = {label: 'fake_device_0', name: 'NotAllowedError'}")
    patient.get_by_role("button", name="Devices").click()
    camera = patient.get_by_role("region", name="Camera, microphone and speaker").get_by_label("Camera", exact=True)
    camera.select_option(label="fake_device_0")
    expect(patient.get_by_role("alert").filter(has_text="not allowed")).to_contain_text(
        "The browser is not allowed to use your camera."
    )
    expect(camera).to_have_value(
        patient.evaluate("document.querySelector('#local-video').srcObject.getVideoTracks()[0].getSettings().deviceId")
    )
    sends_camera(patient, "fake_device_2", leg=False)

    patient.evaluate("window.__refuse = null")
    camera.select_option(label="fake_device_0")
    expect(patient.locator("#controls-status")).to_have_text("Now using the front camera.")
    expect(patient.locator("#controls-problem")).to_be_hidden()
    sends_camera(patient, "fake_device_0", leg=False)
    media_flows(doctor, "doctor after the front camera again")
    camera.press("Escape")  # the panel closes from the keyboard, back to its button
    expect(camera).to_be_hidden()
    expect(patient.get_by_role("button", name="Devices")).to_be_focused()
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_guest_leaves_the_call_and_rejoins(ui: UI, node: Node, clinic: str) -> None:
    """A guest has the same controls: Leave call closes their connections (they stay in the visit),
    the doctor is told; Rejoin brings media back both ways."""
    _, link = node.create_visit(clinic, "Tomás Gil")
    patient = ui.page("patient")
    doctor = ui.page("doctor")
    guest = ui.page("interpreter", phone=True)
    check_in(patient, link, "Dolor de espalda", recording=True)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    admit(doctor, "Tomás Gil")
    mesh_flows(patient, "patient", 1)
    guest_enters(guest, invite_guest(doctor, "Marta Ruiz", language="es"))
    let_in(doctor, guest, "Marta Ruiz")
    mesh_flows(guest, "interpreter", 2)
    timer_runs(guest)
    expect(guest.get_by_role("button", name="Devices")).to_be_visible()

    guest.get_by_role("button", name="Leave call").click()
    expect(guest.locator("#call-left")).to_contain_text("nobody sees or hears you")
    expect(guest.get_by_role("button", name="Rejoin the call")).to_be_focused()
    poll(guest, SENDERS, lambda rows: rows == [], "the interpreter's connections closed")
    expect(doctor.locator("#call-people")).to_have_text("Marta Ruiz left the call")
    expect(guest.get_by_role("button", name="Leave the visit")).to_be_visible()  # still in the visit
    shoot(guest, "call-controls-guest-left", sizes=("phone",))

    guest.get_by_role("button", name="Rejoin the call").click()
    expect(guest.locator("#controls-status")).to_have_text("You are back in the call.")
    mesh_flows(guest, "interpreter after rejoining", 2)
    mesh_flows(doctor, "doctor after the interpreter rejoined", 2)
    shoot(guest, "call-controls-guest", sizes=("phone",))
    ui.assert_clean()
