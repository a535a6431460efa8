"""A network change in the middle of a visit: UDP blocked for 45 s, then
restored (tests/browser/_impaired.py, profile ``blocked``), past the point
where the browsers give the connection up (ICE ``failed``, about 30 s). The
doctor's page restarts ICE on its own, again and again while the path stays
blocked, and the call comes back with media on both sides: the same peer
connections (ICE restarts, not a new call), the pages never reloaded. The
time it took is on /metrics; the chart legs come back too.

A 10 s block was a second case of this test; it asserted a subset of what the
45 s block asserts (there a restart was optional: the connection may resume by
itself before the first restart, made 4 s after "disconnected"), and the 45 s
block goes through that first restart too, so it was dropped to save its
minute of the suite."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser import _netns
from tests.browser._impaired import Impaired, impaired_browser_fixture, impaired_fixture, impaired_ui_fixture  # noqa: F401
from tests.browser.conftest import UI
from tests.browser.steps import CALL_STATS, admit, check_in, leg_sends, media_flows, poll, recording_shown

#: Set on each page once the call runs; a reload would lose it.
MARK = "() => { window.__beforeTheBlock = 'still here'; }"
MARKED = "() => window.__beforeTheBlock || null"



def metrics(impaired: Impaired) -> str:
    def fetch() -> str:
        with urllib.request.urlopen(impaired.node.url + "/metrics", timeout=20) as reply:
            return str(reply.read().decode())

    return _netns.call_in(impaired.node.netns_pid, fetch)


def restarts_observed(text: str, side: str) -> int:
    found = re.search(rf'^telemed_call_restart_seconds_count{{role="{side}"}} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


#: The ICE username fragment the doctor's page last offered (an ICE restart makes a new one), as the patient's call has it.
OFFERED_UFRAG = """() => {
  const pcs = (window.__pcs || []).filter((pc) => pc.connectionState !== 'closed'
    && pc.getTransceivers().some((t) => t.direction === 'sendrecv' || t.direction === 'recvonly'));
  const pc = pcs[pcs.length - 1];
  const found = pc && pc.remoteDescription && /a=ice-ufrag:(\\S+)/.exec(pc.remoteDescription.sdp);
  return found ? found[1] : null;
}"""


def call_id(page: Page) -> int:
    stats = page.evaluate(CALL_STATS)
    assert stats and stats["state"] == "connected", stats
    return int(stats["id"])


#: How long UDP stays blocked: past ICE failure (about 30 s).
BLOCKED_S = 45


@pytest.mark.timeout(420)
def test_udp_blocked_then_restored_the_call_comes_back_by_itself(impaired_ui: UI, impaired: Impaired) -> None:
    ui, node = impaired_ui, impaired.node
    clinic = "c-recovery"
    _, link = node.create_visit(clinic, "Ola Tunnel")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Dizzy spells")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Veld")))
    admit(doctor, "Ola Tunnel")
    expect(patient.get_by_role("heading", name="Dr. Veld is ready")).to_be_visible()
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    recording_shown(patient)
    pcs = {"patient": call_id(patient), "doctor": call_id(doctor)}
    for page in (patient, doctor):
        page.evaluate(MARK)
    restarts_before = restarts_observed(metrics(impaired), "doctor")
    ufrag_before = patient.evaluate(OFFERED_UFRAG)
    assert ufrag_before

    # -- UDP blocked: both pages lose the call (seen, not assumed) -------------------------------
    impaired.set_profile("blocked")
    blocked_at = time.monotonic()
    for page, who in ((patient, "patient"), (doctor, "doctor")):
        poll(page, CALL_STATS, lambda s: bool(s) and s["state"] != "connected", f"{who}: the call notices the block", timeout=60)
    expect(doctor.locator("#call-state")).not_to_have_attribute("data-state", "connected")
    # The relay dropped what the parties kept sending meanwhile.
    assert impaired.totals()["up"]["lost"] > 0
    # The browsers give up the connection; the restarts go on.
    poll(doctor, CALL_STATS, lambda s: bool(s) and s["state"] == "failed", "doctor: the call fails", timeout=60)
    time.sleep(max(0.0, BLOCKED_S - (time.monotonic() - blocked_at)))  # the scenario: the block lasts that long

    # -- restored: the call comes back without anyone doing anything -----------------------------
    impaired.set_profile("good")
    media_flows(patient, "patient after the block", timeout=120)
    media_flows(doctor, "doctor after the block", timeout=120)
    # The same peer connections (an ICE restart, not a new call), on pages never reloaded.
    assert {"patient": call_id(patient), "doctor": call_id(doctor)} == pcs
    for page in (patient, doctor):
        assert page.evaluate(MARKED) == "still here"
    expect(doctor.locator("#call-state")).to_have_attribute("data-state", "connected")
    # Past ICE failure only an ICE restart brings the call back.
    assert patient.evaluate(OFFERED_UFRAG) != ufrag_before
    # The time from the restart that brought the call back to media again, on /metrics.
    deadline = time.monotonic() + 30
    while restarts_observed(text := metrics(impaired), "doctor") <= restarts_before:
        assert time.monotonic() < deadline, [line for line in text.splitlines() if "restart" in line]
        time.sleep(0.5)
    # The chart legs (replaced by the pages when they drop) record again.
    leg_sends(patient, "patient's leg after the block", timeout=120)
    leg_sends(doctor, "doctor's leg after the block", timeout=120)
    ui.assert_clean()
