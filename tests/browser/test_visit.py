"""The whole visit through the three pages in Chromium: check-in, nurse chat
and triage, admit, two-way video and audio, the chart leg recording both
sides, a snapshot, the end and its summary."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, assert_labelled, check_in, leg_sends, media_flows, recording_shown, send_chat


@pytest.mark.timeout(300)
def test_whole_visit(ui: UI, node: Node, clinic: str) -> None:
    visit_id, link = node.create_visit(clinic, "Ana Lima")
    nurse = ui.page("nurse")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")

    # -- the patient checks in; the nurse chats, sets acuity and routes ------------------
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Joy")))
    check_in(patient, link, "Sore throat for three days", shots="patient")
    row = nurse.locator("#queue-body tr", has_text="Ana Lima")
    expect(row).to_contain_text("Sore throat for three days")
    row.get_by_role("button", name=re.compile("^Chat with Ana Lima")).click()
    pane = nurse.locator(".chat-pane", has_text="Ana Lima")
    send_chat(pane, "Hello Ana, do you have a fever?")
    expect(patient.locator(".chat-log")).to_contain_text("do you have a fever?")
    send_chat(patient, "Yes, 38.5 since yesterday")
    expect(pane.locator(".chat-log")).to_contain_text("38.5 since yesterday")

    row.get_by_role("button", name="Triage Ana Lima").click()
    nurse.get_by_label("Acuity (ESI level)").select_option("2")
    nurse.get_by_label("Triage note").fill("Fever 38.5, odynophagia; rule out abscess")
    nurse.get_by_role("button", name="Save triage").click()
    expect(row).to_contain_text("ESI 2")
    nurse.get_by_role("button", name="Route", exact=True).click()
    expect(row).to_contain_text("Ready for doctor")
    expect(patient.locator("#wait-state")).to_contain_text("ready to see a doctor")
    shoot(patient, "patient-waiting")
    shoot(nurse, "nurse-triage")

    # -- the doctor admits: video and audio both ways ----------------------------------------
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Rivera")))
    drow = doctor.locator("#queue-body tr", has_text="Ana Lima")
    expect(drow).to_contain_text("ESI 2")
    expect(drow).to_contain_text("rule out abscess")
    shoot(doctor, "doctor-queue")
    admit(doctor, "Ana Lima")
    expect(patient.get_by_role("heading", name="Dr. Rivera is ready")).to_be_visible()
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    expect(patient.locator("#call-state")).to_have_text("Call connected")
    expect(doctor.locator("#call-state")).to_have_text("Call connected")
    # Each page shows its own camera muted (no echo of its own microphone), the other's video not.
    for page in (patient, doctor):
        assert page.evaluate("[document.querySelector('#local-video').muted, document.querySelector('#remote-video').muted]") == [True, False]

    # -- the chart leg: both pages send to the worker, both show the recording -----------------
    recording_shown(patient)
    recording_shown(doctor)
    for page, who in ((patient, "patient"), (doctor, "doctor")):
        leg = leg_sends(page, who)
        assert sorted(leg["kinds"]) == ["audio", "video"], leg
        assert leg["maxBitrate"] == 300_000, leg
        assert leg["count"] == 1, leg
    # The patient's language beside their facts; the doctor's own (the page's by default), changed
    # during the call, switches the recogniser of the doctor's leg at once.
    expect(doctor.locator("#visit-language [lang='en']")).to_have_text("English")
    expect(doctor.get_by_label("I speak")).to_have_value("en")
    doctor.get_by_label("I speak").select_option("ko")
    expect(doctor.locator("#caption-language-said")).to_have_text("Your words are now captioned in Korean.")

    # -- a snapshot of the patient's video, into the chart and the gallery ---------------------
    doctor.get_by_role("button", name="Take snapshot").click()
    shot = doctor.locator("#gallery li").first
    expect(shot.locator(".shot-label")).to_have_text(re.compile(r"^Snapshot 1 · \d{1,2}:\d{2}"))  # no file name
    expect(shot).to_contain_text(re.compile(r"Sharpness \d+ · brightness \d+"))
    expect(doctor.locator("#snapshot-state")).to_contain_text("Snapshot saved to the chart")
    # The chart's own JPEG, fetched through the chart file route, replaces the screen preview.
    stored = shot.locator("img.shot-stored")
    expect(stored).to_have_attribute("src", re.compile(r"^blob:"))
    doctor.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=stored.element_handle())
    width, height = stored.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    expect(shot).to_contain_text(f"{width}×{height}")  # the worker's JPEG, not the scaled screen grab
    expect(shot).to_contain_text("The chart’s copy")
    expect(shot).not_to_contain_text("snapshots/")
    name = shot.get_attribute("data-file")
    assert name and (node.chart(clinic, visit_id) / name).stat().st_size > 1000
    send_chat(doctor.get_by_role("group", name=re.compile("Chat with")), "I can see you well.")
    expect(patient.locator("#call-chat-slot .chat-log")).to_contain_text("I can see you well.")
    doctor.wait_for_timeout(1000)  # a few more frames in the videos of the screenshots
    shoot(patient, "patient-call")
    shoot(doctor, "doctor-visit")
    for page in (patient, doctor, nurse):
        assert_labelled(page)
    # Keyboard: the snapshot button is reached with Tab from the camera toggle.
    doctor.get_by_role("button", name="Turn camera off").focus()
    doctor.keyboard.press("Tab")
    expect(doctor.get_by_role("button", name="Take snapshot")).to_be_focused()

    # -- the end, the summary, and what is on disk ----------------------------------------------
    doctor.get_by_role("button", name="End visit").click()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(doctor.get_by_role("heading", name="Visit summary")).to_be_visible()
    summary = doctor.locator("#summary")
    expect(summary).to_contain_text("ESI 2")
    expect(summary).to_contain_text(re.compile(r"Chat messages\s*3"))
    expect(summary).to_contain_text(re.compile(r"Recordings\s*The patient’s video and your video"))
    expect(summary).to_contain_text(re.compile(r"Snapshots\s*Snapshot 1 · \d{1,2}:\d{2}"))
    expect(summary).to_contain_text(re.compile(r"Outcome\s*Completed"))
    expect(summary).not_to_contain_text(name)  # no file names
    expect(summary).to_contain_text(re.compile(r"Transcript\s*(No speech was captioned|\d+ caption lines?|Captions were unavailable)"))
    expect(patient.get_by_role("heading", name="Your visit has ended")).to_be_visible()
    expect(patient.locator("#recording")).to_be_hidden()
    shoot(doctor, "doctor-summary")
    shoot(patient, "patient-ended")

    index = node.wait_index(
        clinic,
        visit_id,
        lambda doc: {r["role"] for r in doc.get("recordings", []) if r["state"] == "complete"} == {"patient", "doctor"},
    )
    for role in ("patient", "doctor"):
        files = [r["file"] for r in index["recordings"] if r["role"] == role]
        assert sum((node.chart(clinic, visit_id) / f).stat().st_size for f in files) > 10_000, index
    assert [s["file"] for s in index.get("snapshots", [])] == [name]

    # The link of a visit that ended no longer opens it.
    again = ui.page("used-link", phone=True)
    again.goto(link)
    expect(again.get_by_role("heading", name="This visit has ended")).to_be_visible()
    ui.assert_clean()


#: Peer connections of a page that only send (chart legs), open or not.
SEND_ONLY = """() => (window.__pcs || []).filter((pc) => pc.connectionState !== 'closed'
  && pc.getTransceivers().length > 0 && pc.getTransceivers().every((t) => t.direction === 'sendonly')).length"""


@pytest.mark.timeout(180)
def test_no_recording_without_consent(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Dana Private")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Follow-up", recording=False)
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Berg")))
    admit(doctor, "Dana Private")
    expect(doctor.locator("#visit-consent")).to_have_text("No")
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    # The call works; nothing goes to the media worker and nothing says "recording".
    assert patient.evaluate(SEND_ONLY) == 0 and doctor.evaluate(SEND_ONLY) == 0
    expect(patient.locator("#recording")).to_be_hidden()
    expect(doctor.locator("#recording")).to_be_hidden()
    expect(doctor.get_by_role("button", name="Take snapshot")).to_be_disabled()
    expect(doctor.locator("#snapshot-state")).to_have_text("No snapshots: the patient did not agree to recording.")
    expect(doctor.locator("#captions-state")).to_contain_text("did not agree to recording and transcription")
    doctor.get_by_role("button", name="End visit").click()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(doctor.locator("#summary")).to_contain_text(re.compile(r"Recordings\s*None \(no recording consent\)"))
    ui.assert_clean()
