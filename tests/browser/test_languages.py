"""The pages in every language (issue 15), in Chromium at phone and desktop size.

A tour per language goes through every screen a visit shows: the landing
page, the walk-in form, the patient's device check, consent (refused once, so
its error shows), reason, waiting room with a nurse's chat message, the call
and its end; the staff page's sign-in, queue, triage with a chat open, an
interpreter invited from triage and the guest's page (welcome, consent refused
once, lobby), the invitation, the doctor's visit and summary, the chart browser's list and
record, and the admin console. Each screen is photographed
(test-artifacts/screenshots/lang-<language>-<screen>-{phone,desktop}.png) and
audited by axe-core at both sizes through ``shoot()``, must not scroll
sideways at 390 px, and has
the language on <html lang>. Nodes are found by ids and data attributes,
never by their (translated) words.

The pseudo-language tour (``?lang=x-pseudo``: every catalogue letter swapped
for an accented look-alike) fails on any ASCII word of two or more letters a
person could see or hear: visible text outside ``translate="no"`` (where
person data lives), the accessible names and hints (aria-label, placeholder,
title, alt; the test's own names and texts taken out of those first), the
options of visible selects and the page's title. Such a word did not come
from a catalogue.

Then a patient whose browser prefers Chinese: the pages are in Chinese
without anything touched, the staff's queue shows "中文（简体）", the chart's
FHIR export names zh-CN as the patient's language; and the switcher's choice
(Korean) lasts across reloads.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from telemed.tokens import Role
from tests.browser.conftest import REPO, UI, Node, shoot
from tests.browser.steps import guest_tour_to_lobby

LANGUAGES = ("en", "es", "ko", "zh-CN")
PSEUDO = "x-pseudo"
LOCALES = REPO / "web" / "locales"

#: Visible ASCII words (2+ letters) outside translate="no", and in the
#: accessible names and hints of visible elements: [word, where, the text].
ENGLISH_WORDS = """(people) => {
  const found = [];
  const word = /[A-Za-z]{2,}/g;
  const untranslated = (el) => el.closest('[translate="no"], script, style, noscript, template');
  const shown = (el) => el.checkVisibility({ visibilityProperty: true, checkVisibilityCSS: true });
  const where = (el) => {
    const parts = [];
    if (el === document.head) return "<title>";
    for (let e = el; e && e !== document.documentElement && parts.length < 4; e = e.parentElement) {
      let s = e.tagName.toLowerCase();
      if (e.id) { parts.unshift(`${s}#${e.id}`); break; }
      if (e.classList.length) s += "." + [...e.classList].slice(0, 2).join(".");
      if (e.dataset && e.dataset.i18n) s += `[data-i18n="${e.dataset.i18n}"]`;
      parts.unshift(s);
    }
    return parts.join(" > ");
  };
  const scan = (text, el, how) => {
    for (const m of text.matchAll(word)) found.push([m[0], `${how} of ${where(el)}`, text.trim().slice(0, 100)]);
  };
  const withoutPeople = (text) => people.reduce((t, p) => t.split(p).join(" "), text);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !untranslated(el) && shown(el)) scan(n.data, el, "text");
  }
  for (const el of document.body.querySelectorAll("[aria-label], [placeholder], [title], [alt]")) {
    if (untranslated(el) || !shown(el)) continue;
    for (const name of ["aria-label", "placeholder", "title", "alt"]) {
      if (el.hasAttribute(name)) scan(withoutPeople(el.getAttribute(name)), el, name);
    }
  }
  for (const select of document.body.querySelectorAll("select")) {
    if (untranslated(select) || !shown(select)) continue;
    for (const option of select.options) if (!untranslated(option)) scan(option.text, select, "option");
  }
  scan(withoutPeople(document.title), document.head, "text");
  return found;
}"""

#: How far the page scrolls sideways (0: it fits the viewport).
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def localized(url: str, lang: str) -> str:
    """``url`` with ``?lang=`` (before the fragment, which holds the token)."""
    base, hash_, fragment = url.partition("#")
    return f"{base}{'&' if '?' in base else '?'}lang={lang}{hash_}{fragment}"


@cache
def catalogue(lang: str) -> dict[str, Any]:
    """Every bundle of a language, merged (each key lives in one bundle)."""
    merged: dict[str, Any] = {}
    for path in sorted((LOCALES / lang).glob("*.json")):
        merged.update(json.loads(path.read_text()))
    return merged


@dataclass
class Tour:
    """One language's walk through the screens; what is wrong is collected and
    reported at the end, so one run shows every screen's problems."""

    lang: str
    people: list[str]
    problems: list[str] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)

    def look(self, page: Page, screen: str) -> None:
        expect(page.locator("html")).not_to_have_class(re.compile(r"\bi18n-pending\b"))
        expect(page.locator("html")).to_have_attribute("lang", "en-XA" if self.lang == PSEUDO else self.lang)
        self.screens.append(screen)
        try:
            shoot(page, f"lang-{self.lang}-{screen}")
        except AssertionError as failed:
            self.problems.append(str(failed))
        sideways = page.evaluate(SIDEWAYS)
        if sideways > 0:
            self.problems.append(f"{screen}: the page scrolls sideways by {sideways}px at 390 px")
        if self.lang == PSEUDO:
            words = page.evaluate(ENGLISH_WORDS, self.people)
            if words:
                listed = "\n".join(f"  {w!r} — {where}: {text!r}" for w, where, text in words)
                self.problems.append(f"{screen}: English words not from a catalogue ({page.url.split('#')[0]}):\n{listed}")


def tour(ui: UI, node: Node, clinic: str, lang: str) -> Tour:
    """Every screen of every page in ``lang``, at phone size (and audited at desktop size too)."""
    patient_name, reason, note = "Lin Mei", "Fever and cough", "Temp 38.2, no distress"
    nurse_name, doctor_name, admin_name, guest_name = "Ines Duarte", "Dr. Okafor", "Ada Brandt", "Marta Ruiz"
    first, hello, answer = "Is anyone there?", "Hello Lin, any shortness of breath?", "No, just the cough"
    seen = Tour(lang, [patient_name, reason, note, nurse_name, doctor_name, admin_name, guest_name, first, hello, answer, clinic])
    visit_id, link = node.create_visit(clinic, patient_name)

    # -- the public pages ---------------------------------------------------------------------
    home = ui.page("home", phone=True)
    home.goto(localized(f"{node.url}/", lang))
    seen.look(home, "home")
    home.goto(localized(f"{node.url}/clinic/{clinic}", lang))
    expect(home.locator("#walk-in-form")).to_be_visible()
    seen.look(home, "walk-in")

    # -- the patient: device check, consent (refused once), reason, waiting room ---------------
    patient = ui.page("patient", phone=True)
    patient.goto(localized(link, lang))
    expect(patient.locator("[data-screen=device]")).to_be_visible()
    patient.locator("#device-start").click()
    expect(patient.locator("#device-next")).to_be_visible()
    seen.look(patient, "device")
    patient.locator("#device-next").click()
    expect(patient.locator("[data-screen=consent]")).to_be_visible()
    patient.locator("#consent-form [type=submit]").click()
    expect(patient.locator("#consent-error")).to_be_visible()
    seen.look(patient, "consent")
    patient.locator("#consent-visit").check()
    patient.locator("#consent-recording").check()
    patient.locator("#consent-form [type=submit]").click()
    expect(patient.locator("[data-screen=reason]")).to_be_visible()
    patient.locator("#reason").fill(reason)
    seen.look(patient, "reason")
    patient.locator("#check-in").click()
    expect(patient.locator("[data-screen=waiting]")).to_be_visible()
    expect(patient.locator("#wait-position")).not_to_have_text("…")
    patient.locator(".chat-form textarea").fill(first)  # before any nurse reads: unread in the queue
    patient.locator(".chat-form textarea").press("Enter")
    expect(patient.locator(".chat-log")).to_contain_text(first)

    # -- the nurse: sign-in, queue, a chat, triage, the invitation ------------------------------
    nurse = ui.page("nurse", phone=True)
    nurse.goto(localized(f"{node.url}/staff", lang))
    expect(nurse.locator("[data-screen=signin]")).to_be_visible()
    seen.look(nurse, "staff-signin")
    nurse.locator("#signin-token").fill(node.token(Role.NURSE, clinic, name=nurse_name))
    nurse.locator("#signin-form [type=submit]").click()
    row = nurse.locator(f"#queue-body tr[data-visit='{visit_id}']")
    expect(row.locator(".badge")).to_be_visible()  # the unread count beside the Chat button
    seen.look(nurse, "staff-queue")
    row.locator("button[data-action=chat]").click()
    nurse.locator(".chat-pane .chat-form textarea").fill(hello)
    nurse.locator(".chat-pane .chat-form textarea").press("Enter")
    expect(patient.locator(".chat-log")).to_contain_text(hello)
    patient.locator(".chat-form textarea").fill(answer)
    patient.locator(".chat-form textarea").press("Enter")
    expect(nurse.locator(".chat-pane .chat-log")).to_contain_text(answer)
    seen.look(patient, "waiting")
    row.locator("button[data-action=triage]").click()
    expect(nurse.locator("#triage")).to_be_visible()
    nurse.locator("#triage-acuity").select_option("2")
    nurse.locator("#triage-note").fill(note)
    nurse.locator("#triage-form [type=submit]").click()
    expect(row).to_have_class(re.compile(r"\bacuity-2\b"))
    seen.look(nurse, "staff-triage")

    # -- an interpreter the nurse invites from triage: the guest's page up to the lobby -------------
    nurse.locator("#triage-guest-invite").click()
    nurse.locator("#triage-guest-name").fill(guest_name)
    nurse.locator("#triage-guest-language").select_option("es")
    nurse.locator("#triage-guest-submit").click()
    guest_link = nurse.locator("#triage-guest-link").input_value()
    seen.look(nurse, "staff-triage-guest")
    guest_tour_to_lobby(ui.page("guest", phone=True), localized(guest_link, lang), seen.look)

    nurse.locator("#open-invite").click()
    expect(nurse.locator("[data-screen=invite]")).to_be_visible()
    seen.look(nurse, "staff-invite")

    # -- the doctor: the visit both sides, its end, the summary --------------------------------
    doctor = ui.page("doctor", phone=True)
    doctor.goto(localized(node.staff_link(node.token(Role.DOCTOR, clinic, name=doctor_name)), lang))
    doctor.locator(f"#queue-body tr[data-visit='{visit_id}'] button[data-action=admit]").click()
    expect(doctor.locator("[data-screen=visit]")).to_be_visible()
    expect(patient.locator("[data-screen=call]")).to_be_visible()
    for page in (patient, doctor):
        expect(page.locator("#call-state")).to_have_attribute("data-state", "connected")
        expect(page.locator("#recording")).to_be_visible(timeout=60_000)
        expect(page.locator("#call-quality")).to_be_visible()  # the connection's level, in the language too
    doctor.locator("#snapshot").click()
    expect(doctor.locator("#gallery li")).to_have_count(1)
    seen.look(patient, "call")
    seen.look(doctor, "doctor-visit")
    doctor.locator("#end-visit").click()
    doctor.locator("#end-yes").click()
    expect(doctor.locator("[data-screen=summary]")).to_be_visible()
    # The end, or (a patient whose socket dropped as the visit ended) the ended visit's refusal.
    expect(patient.locator("[data-screen=ended]:not([hidden]), [data-screen=refused]:not([hidden])")).to_be_visible()
    seen.look(doctor, "doctor-summary")
    seen.look(patient, "ended")

    # -- the chart browser: the list, the record -------------------------------------------------
    doctor.locator("#open-charts").click()
    opener = doctor.locator(f"#charts-body button[data-visit='{visit_id}']")
    expect(opener).to_be_visible()
    seen.look(doctor, "charts")
    opener.click()
    expect(doctor.locator("#record-integrity")).not_to_have_attribute("data-state", "checking")
    seen.look(doctor, "chart-record")

    # -- the admin console ---------------------------------------------------------------------------
    admin = ui.page("admin", phone=True)
    admin.goto(localized(node.staff_link(node.token(Role.ADMIN, clinic, name=admin_name)), lang))
    admin.locator("#open-admin").click()
    expect(admin.locator("[data-screen=admin]")).to_be_visible()
    expect(admin.locator("#admin-audit-state")).to_have_attribute("data-kind", "ok")  # the trail checked and listed
    seen.look(admin, "admin")
    return seen


@pytest.mark.timeout(300)
@pytest.mark.parametrize("lang", [*LANGUAGES, PSEUDO])
def test_every_screen_in_the_language(ui: UI, node: Node, clinic: str, lang: str) -> None:
    seen = tour(ui, node, clinic, lang)
    assert not seen.problems, f"{lang}: {len(seen.problems)} problems on {len(seen.screens)} screens\n\n" + "\n\n".join(seen.problems)
    ui.assert_clean()


def heading_in(page: Page, screen: str, lang: str) -> None:
    """The screen's heading shows the language's catalogue text for its key."""
    heading = page.locator(f"[data-screen={screen}] h1")
    key = heading.get_attribute("data-i18n")
    assert key, f"the {screen} heading has no data-i18n key"
    expect(heading).to_have_text(catalogue(lang)[key])


def fhir_bundle(node: Node, clinic: str, visit_id: str, timeout: float = 40) -> dict[str, Any]:
    """The chart's FHIR Bundle, once the ended visit's chart has one."""
    path = node.chart(clinic, visit_id) / "fhir.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            bundle: dict[str, Any] = json.loads(path.read_text())
            return bundle
        except (OSError, ValueError):
            time.sleep(0.25)
    raise AssertionError(f"{path} was never written")


@pytest.mark.timeout(180)
def test_a_patient_whose_browser_prefers_chinese(ui: UI, node: Node, clinic: str) -> None:
    visit_id, link = node.create_visit(clinic, "Wang Fang")
    patient = ui.page("patient-zh", phone=True, locale="zh-CN")
    nurse = ui.page("nurse")
    nurse.goto(node.staff_link(node.token(Role.NURSE, clinic, name="Nurse Kim")))

    # -- Chinese without touching anything, all the way into the waiting room ---------------------
    patient.goto(link)
    expect(patient.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(patient.locator("[data-screen=device]")).to_be_visible()
    heading_in(patient, "device", "zh-CN")
    expect(patient.locator("[data-lang-switch] select")).to_have_value("zh-CN")
    patient.locator("#device-start").click()
    patient.locator("#device-next").click()
    heading_in(patient, "consent", "zh-CN")
    patient.locator("#consent-visit").check()
    patient.locator("#consent-form [type=submit]").click()
    patient.locator("#reason").fill("头痛三天")
    patient.locator("#check-in").click()
    expect(patient.locator("[data-screen=waiting]")).to_be_visible()
    heading_in(patient, "waiting", "zh-CN")

    # -- the staff see the patient's language in the queue, by its own name -----------------------
    row = nurse.locator(f"#queue-body tr[data-visit='{visit_id}']")
    expect(row).to_contain_text("中文（简体）")
    expect(row.locator("[lang='zh-CN']", has_text="中文（简体）")).to_have_attribute("translate", "no")
    shoot(nurse, "lang-queue-prefers-chinese")

    # -- and the chart's FHIR export carries it (Patient.communication, preferred) ----------------
    doctor = ui.page("doctor")
    doctor.goto(node.staff_link(node.token(Role.DOCTOR, clinic, name="Dr. Berg")))
    doctor.locator(f"#queue-body tr[data-visit='{visit_id}'] button[data-action=admit]").click()
    expect(patient.locator("[data-screen=call]")).to_be_visible()
    doctor.locator("#end-visit").click()
    doctor.locator("#end-yes").click()
    expect(doctor.locator("[data-screen=summary]")).to_be_visible()
    bundle = fhir_bundle(node, clinic, visit_id)
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 1, bundle
    [spoken] = patients[0]["communication"]
    assert spoken["preferred"] is True, patients[0]
    assert [(c["system"], c["code"]) for c in spoken["language"]["coding"]] == [("urn:ietf:bcp:47", "zh-CN")], patients[0]
    visit = json.loads((node.chart(clinic, visit_id) / "visit.json").read_text())
    assert visit["language"] == "zh-CN", visit
    ui.assert_clean()


@pytest.mark.timeout(120)
def test_the_language_chosen_with_the_switcher_lasts(ui: UI, node: Node, clinic: str) -> None:
    _, link = node.create_visit(clinic, "Park Jiwoo")
    patient = ui.page("patient-switch", phone=True, locale="zh-CN")
    patient.goto(link)
    expect(patient.locator("[data-screen=device]")).to_be_visible()
    heading_in(patient, "device", "zh-CN")

    switcher = patient.locator("[data-lang-switch] select")
    with patient.expect_navigation():
        switcher.select_option("ko")
    expect(patient.locator("html")).to_have_attribute("lang", "ko")
    expect(patient.locator("[data-screen=device]")).to_be_visible()
    heading_in(patient, "device", "ko")
    expect(patient.locator("[data-lang-switch] select")).to_have_value("ko")

    # The choice outlasts a reload (the browser still prefers Chinese).
    patient.reload()
    expect(patient.locator("[data-screen=device]")).to_be_visible()
    expect(patient.locator("html")).to_have_attribute("lang", "ko")
    heading_in(patient, "device", "ko")
    shoot(patient, "lang-switched-to-korean", sizes=("phone",))
    ui.assert_clean()
