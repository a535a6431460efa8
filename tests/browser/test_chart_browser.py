"""The chart browser in Chromium, after a real visit (nurse chat and triage, a
doctor's video visit with both chart legs recording, a snapshot): the list
finds it by name, the record shows every part, a transcript line seeks the
recording, the integrity check passes, FHIR and zip download, another
clinic's nurse finds nothing, and every read is in the audit trail."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from telemed import chart
from telemed.tokens import Role
from tests.browser.conftest import UI, Node, shoot
from tests.browser.steps import admit, check_in, media_flows, poll, recording_shown, send_chat

#: Where in the patient's recording the transcript line is (seconds).
LINE_AT = 4.0


def open_charts(page: Page) -> None:
    page.get_by_role("button", name="Charts", exact=True).click()
    expect(page.get_by_role("heading", name="Charts", exact=True)).to_be_visible()


@pytest.mark.timeout(300)
def test_chart_browser_after_a_real_visit(ui: UI, node: Node, clinic: str) -> None:
    visit_id, link = node.create_visit(clinic, "Marta Quispe")
    folder = node.chart(clinic, visit_id)
    nurse = ui.page("nurse")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")

    # -- a real visit: chat, triage, video with both chart legs, a snapshot ---------------------
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Ines")))
    check_in(patient, link, "Dizzy spells since Monday")
    row = nurse.locator("#queue-body tr", has_text="Marta Quispe")
    row.get_by_role("button", name=re.compile("^Chat with Marta Quispe")).click()
    pane = nurse.locator(".chat-pane", has_text="Marta Quispe")
    send_chat(pane, "Hello Marta, any fainting?")
    expect(patient.locator(".chat-log")).to_contain_text("any fainting?")
    send_chat(patient, "No fainting, only dizzy")
    expect(pane.locator(".chat-log")).to_contain_text("only dizzy")
    row.get_by_role("button", name="Triage Marta Quispe").click()
    nurse.get_by_label("Acuity (ESI level)").select_option("3")
    nurse.get_by_label("Triage note").fill("BP 100/60, no syncope")
    nurse.get_by_role("button", name="Save triage").click()
    expect(row).to_contain_text("ESI 3")

    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Okafor")))
    admit(doctor, "Marta Quispe")
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    recording_shown(doctor)
    started = node.wait_index(clinic, visit_id, lambda d: {r["role"] for r in d.get("recordings", [])} == {"patient", "doctor"})
    files = {r["role"]: r for r in started["recordings"]}
    # The transcript as the worker writes it (real speech recognition is too slow here).
    transcript = chart.Transcript(folder)
    for role, offset, text in (("patient", LINE_AT, "It started on Monday morning"), ("doctor", 1.0, "Let me look at your eyes")):
        at = files[role]["started_at"] + offset
        transcript.append({"role": role, "start": offset, "end": offset + 1.5, "text": text, "words": [], "at": at,
                           "recording": files[role]["file"]})
    doctor.get_by_role("button", name="Take snapshot").click()
    expect(doctor.locator("#snapshot-state")).to_contain_text("Snapshot saved to the chart")
    # Enough of a recording to seek in: the patient's video plays past the line's place.
    poll(doctor, "() => document.querySelector('#remote-video').currentTime", lambda t: t > LINE_AT + 3, "the call to run")
    doctor.get_by_role("button", name="End visit").click()
    doctor.get_by_role("button", name="Yes, end the visit").click()
    expect(doctor.get_by_role("heading", name="Visit summary")).to_be_visible()
    node.wait_index(clinic, visit_id, lambda d: [r["state"] for r in d["recordings"]] == ["complete", "complete"])
    audit = node.recordings / ".audit" / "audit.jsonl"
    poll(doctor, "() => 1", lambda _: chart.verify(folder, audit).ok, "the chart sealed with its recordings")

    # -- the list: found by a piece of the name --------------------------------------------------
    open_charts(doctor)
    rows = doctor.locator("#charts-body tr")
    expect(rows.first).to_contain_text("Marta Quispe")
    doctor.get_by_label("Search by patient name").fill("quis")
    doctor.get_by_role("button", name="Show charts").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Dr. Okafor")
    expect(rows.first).to_contain_text("ESI 3")
    expect(doctor.locator("#charts-page")).to_have_text("Page 1 of 1 · 1 chart")
    shoot(doctor, "chart-browser-list")

    # -- the record: every part ------------------------------------------------------------------
    rows.first.get_by_role("button", name="Open the chart of Marta Quispe").click()
    expect(doctor.get_by_role("heading", name="Chart of Marta Quispe")).to_be_visible()
    expect(doctor.locator("#record-integrity")).to_have_text(re.compile(r"Intact: all \d+ files match the seal\."))
    summary = doctor.locator("#record-summary")
    for text in ("Dizzy spells since Monday", "ESI 3 — Urgent", "BP 100/60, no syncope — Nurse Ines", "Wording version",
                 "recording and transcription: yes", "Marta Quispe (Patient)", "Dr. Okafor (Doctor)", "Nurse Ines (Nurse)",
                 "Ended (completed)"):
        expect(summary).to_contain_text(text)
    # The patient's language, and the consent wording's version and language (the page's: English).
    expect(summary).to_contain_text(re.compile(r"Patient’s language\s*English"))
    expect(summary.locator(".consent-wording")).to_have_text(re.compile(r"^Wording version \S+ \(English\)$"))
    timeline = doctor.locator("#record-timeline li")
    expect(timeline.first).to_contain_text("Checked in: Waiting")
    expect(doctor.locator("#record-timeline")).to_contain_text("Admitted: In visit — Dr. Okafor")
    expect(doctor.locator("#record-chat")).to_contain_text("Hello Marta, any fainting?")
    expect(doctor.locator("#record-chat")).to_contain_text("No fainting, only dizzy")
    videos = doctor.locator("#record-recordings video")
    expect(videos).to_have_count(2)
    expect(doctor.locator("#record-snapshots")).to_contain_text(re.compile(r"Sharpness \d+ · brightness \d+"))
    expect(doctor.locator("#record-snapshots .shot-label")).to_have_text(re.compile(r"^Snapshot 1 · \d{1,2}:\d{2}"))  # no file name
    shot = doctor.locator("#record-snapshots img")
    doctor.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=shot.element_handle())
    expect(doctor.locator("#record-transcript")).to_contain_text("Patient: It started on Monday morning")
    expect(doctor.locator("#record-transcript")).to_contain_text("Doctor: Let me look at your eyes")

    # -- a transcript line seeks the recording it is in ------------------------------------------
    video = doctor.locator(f"#record-recordings video[data-file='{files['patient']['file']}']")
    doctor.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle())
    assert video.evaluate("v => v.currentTime") < 1
    line = doctor.get_by_role("button", name=re.compile(r"^Play from here: [\d:]+ Patient:"))
    line.focus()
    doctor.keyboard.press("Enter")  # keyboard reachable
    position = poll(doctor, f"() => {{ const v = document.querySelector(\"video[data-file='{files['patient']['file']}']\"); return !v.seeking && v.currentTime; }}",
                    lambda t: t is not False and t >= LINE_AT - 0.5, "the recording to seek")
    assert LINE_AT - 0.5 <= position < LINE_AT + 3, position
    video.evaluate("v => v.pause()")
    shoot(doctor, "chart-browser-record")

    # -- downloads ---------------------------------------------------------------------------------
    with doctor.expect_download() as got:
        doctor.get_by_role("button", name="Whole chart (zip)").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes()))
    assert archive.testzip() is None
    names = {n.split("/", 1)[1] for n in archive.namelist()}
    assert {"visit.json", "chat.jsonl", "transcript.jsonl", "manifest.json", files["patient"]["file"], files["doctor"]["file"]} <= names
    expect(doctor.locator("#record-download-status")).to_contain_text("download started")
    with doctor.expect_download() as got:
        doctor.get_by_role("button", name="FHIR record (JSON)").click()
    assert json.loads(Path(got.value.path()).read_bytes())["resourceType"] == "Bundle"

    # -- another clinic's nurse finds nothing ------------------------------------------------------
    other = ui.page("other-clinic", phone=True)
    other.goto(node.staff_link(node.token(Role.NURSE, clinic + "x", name="Nurse Elsewhere")))
    open_charts(other)
    expect(other.locator("#charts-empty")).to_have_text("No charts match these filters.")
    expect(other.locator("#charts-body tr")).to_have_count(0)
    shoot(other, "chart-browser-empty", sizes=("phone",))

    # -- every read is in the audit trail, with ids only -------------------------------------------
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    mine = {(r["action"], r["target"]) for r in records if r["visit"] == visit_id and r["actor"]["role"] == "doctor"}
    assert {("chart_read", ""), ("chart_verify", "ok"), ("export", "zip"), ("chart_link", "fhir.json"),
            ("file_download", "chat.jsonl"), ("file_download", "transcript.jsonl"),
            ("file_download", files["patient"]["file"])} <= mine, mine
    assert any(r["action"] == "chart_list" and r["clinic"] == clinic + "x" for r in records)
    text = audit.read_text()
    assert "Marta" not in text and "fainting" not in text and "Monday" not in text

    # -- a changed file is said in words, never by its file name -----------------------------------
    changed = next((node.chart(clinic, visit_id) / "snapshots").iterdir())
    changed.write_bytes(changed.read_bytes() + b"x")
    doctor.get_by_role("button", name="Back to the list").click()
    doctor.get_by_role("button", name="Open the chart of Marta Quispe").click()
    integrity = doctor.locator("#record-integrity")
    expect(integrity).to_contain_text("A snapshot has changed since the chart was sealed.")
    expect(integrity).not_to_contain_text("snapshots/")
    shoot(doctor, "chart-browser-changed")
    ui.assert_clean()
