"""The impaired-network test bed (tests/browser/_impaired.py): a visit's call
and both chart legs go through coturn only, across the impairing relay, and
a profile switched at run time applies to the live call."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser._impaired import Impaired, impaired_browser_fixture, impaired_fixture, impaired_ui_fixture  # noqa: F401
from tests.browser.conftest import UI
from tests.browser.steps import admit, check_in, leg_sends, media_flows, poll, recording_shown

#: Every connected peer connection of the page: its kind (call: receives;
#: leg: only sends), the types of its selected pair's candidates and the pair's RTT.
PATHS = """async () => {
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState !== 'connected') continue;
    const kind = pc.getTransceivers().every((t) => t.direction === 'sendonly') ? 'leg' : 'call';
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) continue;
    out.push({kind, local: stats.get(pair.localCandidateId).candidateType,
              remote: stats.get(pair.remoteCandidateId).candidateType, rtt: pair.currentRoundTripTime ?? null});
  }
  return out;
}"""


def paths(page: Page) -> list[dict[str, object]]:
    found: list[dict[str, object]] = page.evaluate(PATHS)
    return found


@pytest.mark.timeout(300)
def test_a_visit_goes_only_through_coturn_across_the_relay(impaired_ui: UI, impaired: Impaired) -> None:
    ui, node = impaired_ui, impaired.node
    clinic = "c-impaired-1"
    _, link = node.create_visit(clinic, "Ines Relay")
    patient = ui.page("patient", phone=True)
    doctor = ui.page("doctor")
    check_in(patient, link, "Sore throat")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Lund")))
    before = impaired.totals()
    admit(doctor, "Ines Relay")
    expect(patient.get_by_role("heading", name="Dr. Lund is ready")).to_be_visible()
    media_flows(patient, "patient")
    media_flows(doctor, "doctor")
    recording_shown(patient)
    leg_sends(patient, "patient")
    leg_sends(doctor, "doctor")

    # Relay-only: the call's and each leg's selected pair is relayed on both ends
    # (the worker too gathers only its TURN allocation).
    for page, who in ((patient, "patient"), (doctor, "doctor")):
        found = poll(page, PATHS, lambda p: sorted(x["kind"] for x in p) == ["call", "leg"], f"{who}: call and leg paths")
        assert all(x["local"] == "relay" and x["remote"] == "relay" for x in found), (who, found)

    # The media crossed the relay: far more than the few STUN/TURN packets of the set-up.
    after = impaired.totals()
    assert after["up"]["delivered"] - before["up"]["delivered"] > 1000, after
    assert after["down"]["delivered"] - before["down"]["delivered"] > 1000, after
    assert after["profile"] == "good"

    # A new profile applies to the live call: on 3g each of the four crossings
    # of the relay on the way from a page to the other and back adds 150 ms.
    impaired.set_profile("3g")
    assert impaired.totals()["profile"] == "3g"
    poll(doctor, PATHS, lambda p: any(x["kind"] == "call" and (x["rtt"] or 0) >= 0.6 for x in p),
         "doctor: the call's round trip grows past 600 ms on the 3g profile", timeout=60)
    media_flows(patient, "patient on 3g", timeout=90)
    ui.assert_clean()
