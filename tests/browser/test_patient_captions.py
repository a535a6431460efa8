"""Live captions on the patient's page, as the patient's own choice (WCAG
1.2.4), and what the captions panel says per speaker: one speaker's language
without a speech model is said for that speaker while the other's captions
go on, in the page's language. Also the chat log's list semantics (WCAG 1.3.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, check_in_in, media_flows, recording_shown
from tests.browser.test_captions import CAPTION_S, speech_wav

#: A panel on the patient's page fed with the events the worker sends, and a chat box with one message.
FEED = """async () => {
  const { CaptionsPanel } = await import('/static/captions.js');
  const { ChatClient, ChatView } = await import('/static/chat.js');
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== 'call';
  for (const id of ['captions-panel', 'captions-body']) document.getElementById(id).hidden = false;
  const panel = new CaptionsPanel(document.querySelector('#captions'), document.querySelector('#captions-state'), { me: 'patient' });
  panel.reset('v1');
  window.__panel = panel;
  panel.applyState({ visit_id: 'v1', role: 'doctor', state: 'unavailable', reason: 'no_model', language: 'ko' });
  panel.applyState({ visit_id: 'v1', role: 'patient', state: 'live', language: 'es' });
  panel.applyCaption({ visit_id: 'v1', role: 'patient', final: true, text: 'me duele la garganta', language: 'es' });
  const me = { sub: 'p1', role: 'patient', name: 'Ana' };
  const socket = { connected: false, on() {} };
  const view = new ChatView(new ChatClient(socket, { me }), 'v1', { me });
  view.client.onChange = () => view.render();
  document.querySelector('#call-chat-slot').append(view.el);
  view.client.receive({ id: '1-0', client_id: 'c1', visit_id: 'v1', sender: 'n1', role: 'nurse', name: 'Nurse Joy', text: 'Hola', ts: Date.now() / 1000 });
}"""

SAID = {
    "en": {
        "live": "Live",
        "doctor": "Captions are not available in Korean for the doctor.",
        "you": "You:",
        "nobody": "Captions unavailable. The visit and its recording go on.",
        "self": "Captions are not available in Spanish for what you say.",
    },
    "es": {
        "live": "En vivo",
        "doctor": "No hay subtítulos disponibles en coreano para el médico.",
        "you": "Usted:",
        "nobody": "Subtítulos no disponibles. La consulta y su grabación continúan.",
        "self": "No hay subtítulos disponibles en español para lo que usted dice.",
    },
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lang", sorted(SAID))
def test_each_speaker_has_their_own_captions_state(ui: UI, node: Node, lang: str) -> None:
    said = SAID[lang]
    page = ui.page("patient", phone=True)
    page.goto(f"{node.url}/visit?lang={lang}")  # no link: the page only loads its modules
    expect(page.locator("[data-screen=refused]")).to_be_visible()
    page.evaluate(FEED)

    # The doctor's language has no model: said for the doctor; the patient's captions go on.
    expect(page.locator("#captions-state")).to_have_attribute("data-state", "live")
    expect(page.locator("#captions-state")).to_have_text(said["live"])
    note = page.locator(".captions-speaker[data-role=doctor]")
    expect(note).to_have_text(said["doctor"])
    line = page.locator("#captions li").first
    expect(line.locator(".caption-who")).to_have_text(said["you"])
    expect(line.locator(".caption-text")).to_have_attribute("lang", "es")
    expect(line.locator(".caption-text")).to_have_attribute("translate", "no")

    # The chat log is a container with role=log around a list whose items stay list items.
    log = page.get_by_role("log")
    expect(log.get_by_role("list")).to_have_count(1)
    expect(log.get_by_role("listitem")).to_have_count(1)
    expect(log.get_by_role("listitem")).to_contain_text("Hola")
    shoot(page, f"patient-captions-per-speaker-{lang}", sizes=("phone",))

    # Both speakers without a model (other languages): nobody's captions, each said.
    page.evaluate("window.__panel.applyState({ visit_id: 'v1', role: 'patient', state: 'unavailable', reason: 'no_model', language: 'es' })")
    expect(page.locator("#captions-state")).to_have_attribute("data-state", "unavailable")
    expect(page.locator("#captions-state")).to_have_text(said["nobody"])
    expect(page.locator(".captions-speaker[data-role=patient]")).to_have_text(said["self"])
    expect(note).to_have_text(said["doctor"])
    # The doctor's leg stopping does not pause the patient's captions once they are back.
    page.evaluate("""() => {
      window.__panel.applyState({ visit_id: 'v1', role: 'patient', state: 'live', language: 'es' });
      window.__panel.applyState({ visit_id: 'v1', role: 'doctor', state: 'stopped' });
    }""")
    expect(page.locator("#captions-state")).to_have_text(said["live"])
    expect(page.locator(".captions-speaker")).to_have_count(0)
    ui.assert_clean()


@pytest.mark.timeout(300)
def test_the_patient_turns_live_captions_on_and_off(
    ui: UI, node: Node, clinic: str, launch: Callable[..., Browser], tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path)
    speaking = launch(add=(f"--use-file-for-fake-audio-capture={wav}",))
    visit_id, link = node.create_visit(clinic, "Min-jun Kim")
    patient = ui.page("patient", phone=True, browser=speaking)
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Seo")))
    check_in_in(patient, link, "ko", "목이 아파요")
    admit(doctor, "Min-jun Kim")
    media_flows(doctor, "doctor (the patient's speech)")
    recording_shown(patient, "녹화 중")

    # The clinic does not send patients captions: the switch is there, off.
    switch = patient.get_by_label("실시간 자막 보기")  # "Show live captions"
    expect(switch).to_be_visible()
    expect(switch).not_to_be_checked()
    expect(patient.locator("#captions")).to_be_hidden()

    # Turned on: the patient's own Korean speech, marked as Korean, "You:" in Korean.
    switch.check()
    line = patient.locator("#captions .caption-patient:not(.caption-partial)").first
    expect(line).to_be_visible(timeout=CAPTION_S * 1000)
    expect(line.locator(".caption-who")).to_have_text("나:")
    expect(line.locator(".caption-text")).to_have_attribute("lang", "ko")
    expect(line.locator(".caption-text")).not_to_be_empty()
    expect(patient.locator("#captions-error")).to_be_hidden()

    # The doctor's page speaks English, which has no model here: said for the doctor
    # (a new leg of the doctor's announces it), while the patient's captions go on.
    node.close_leg(visit_id, "doctor", reason="dropped by the test")
    expect(patient.locator(".captions-speaker[data-role=doctor]")).to_have_text("의사의 말은 영어 자막을 사용할 수 없어요.", timeout=90_000)
    expect(patient.locator("#captions-state")).not_to_have_attribute("data-state", "unavailable")
    shoot(patient, "patient-captions-on", sizes=("phone",))

    # Off: hidden, and still off after a reload (the choice lasts for the tab).
    switch.uncheck()
    expect(patient.locator("#captions")).to_be_hidden()
    patient.reload()
    expect(patient.locator("[data-screen=call]")).to_be_visible()
    expect(patient.get_by_label("실시간 자막 보기")).not_to_be_checked()
    expect(patient.locator("#captions")).to_be_hidden()
    ui.assert_clean()
