"""The chart leg follows the call's audio-only rule in the browser: when the
patient's call stops sending video (here the patient chooses audio only;
the network fallback raises the same "videopausedchange"), the patient's
leg to the media worker stops sending its video too while its microphone
goes on, and takes the video up again with the call. The worker side of
such a leg (the recording keeps the sound) is tests/test_leg_audio_only.py."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node
from tests.browser.steps import admit, check_in, leg_sends, media_flows, poll, recording_shown

#: The page's connected chart leg: whether its video sender has a track, and the bytes sent per kind.
LEG_SENDING = """async () => {
  const legs = (window.__pcs || []).filter((pc) => pc.connectionState === 'connected'
    && pc.getTransceivers().length > 0 && pc.getTransceivers().every((t) => t.direction === 'sendonly'));
  const pc = legs[legs.length - 1];
  if (!pc) return null;
  const out = {pc: window.__pcs.indexOf(pc), videoTrack: false, audio: 0, video: 0};
  for (const t of pc.getTransceivers()) if (t.receiver.track.kind === 'video') out.videoTrack = Boolean(t.sender.track);
  (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') out[s.kind] += s.bytesSent || 0; });
  return out;
}"""


@pytest.mark.timeout(240)
def test_the_patient_s_leg_sends_no_video_while_the_call_sends_none(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Uma Quiet")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Follow-up")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Sato")))
    admit(doctor, "Uma Quiet")
    media_flows(patient, "patient")
    recording_shown(patient)
    leg_sends(patient, "patient")
    first = poll(patient, LEG_SENDING, lambda s: bool(s) and s["videoTrack"] and s["video"] > 0, "the leg sends video")

    patient.get_by_role("button", name="Switch to audio only").click()
    expect(patient.locator("#own-paused")).to_be_visible()
    paused = poll(patient, LEG_SENDING, lambda s: bool(s) and not s["videoTrack"], "the leg's video sender lets go of the camera")
    assert paused["pc"] == first["pc"]  # the same leg: no new offer, no new file
    # The microphone goes on: audio bytes keep growing on the leg.
    poll(patient, LEG_SENDING, lambda s: bool(s) and s["audio"] > paused["audio"] + 8000, "the leg's audio goes on")

    patient.get_by_role("button", name="Turn video back on").click()
    back = poll(patient, LEG_SENDING, lambda s: bool(s) and s["videoTrack"], "the leg's video sender has the camera again")
    poll(patient, LEG_SENDING, lambda s: bool(s) and s["video"] > back["video"] + 20_000, "the leg sends video again")
    assert back["pc"] == first["pc"]
    ui.assert_clean()
