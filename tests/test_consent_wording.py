"""The consent wordings the pages show are the ones the server knows.

Every catalogue under web/locales/ that holds a consent wording is digested
(``consent.visit + "\\n" + consent.recording``); its ``(language,
consent.version)`` must be in telemed/consent.py with that digest, and be the
language's current version. So changing a wording without giving it a new
version fails here, and so does a new wording the server was not told about
(``python -m telemed.consent --digests web/locales`` prints the entries).
Until the English catalogue carries the wording, the English page's own
labels (web/patient.html) are what patients read, and are checked instead.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from telemed import consent, languages
from telemed.consent import ConsentOutdated, Wording, wordings

REPO = Path(__file__).resolve().parent.parent
LOCALES = REPO / "web" / "locales"


class _Labels(HTMLParser):
    """The text of ``<label for=...>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "label":
            self._open = dict(attrs).get("for") or None
            if self._open:
                self.labels[self._open] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self.labels[self._open] += data


def page_wording() -> Wording | None:
    """The English wording in web/patient.html's labels, if the page still has it in its markup."""
    parser = _Labels()
    parser.feed((REPO / "web" / "patient.html").read_text(encoding="utf-8"))
    visit, recording = (" ".join(parser.labels.get(k, "").split()) for k in ("consent-visit", "consent-recording"))
    if not visit or not recording:
        return None
    return Wording("en", consent.CURRENT["en"], visit, recording)


def shown() -> dict[str, Wording | list[str]]:
    found: dict[str, Wording | list[str]] = dict(wordings(LOCALES)) if LOCALES.is_dir() else {}
    if "en" not in found:
        page = page_wording()
        if page is not None:
            found["en"] = page
    return found


def test_english_is_shown_somewhere() -> None:
    assert isinstance(shown().get("en"), Wording), "no English consent wording in web/locales/ or web/patient.html"


@pytest.mark.parametrize("language", sorted(shown()))
def test_every_shown_wording_is_known_with_its_digest(language: str) -> None:
    wording = shown()[language]
    assert isinstance(wording, Wording), f"the {language} catalogue lacks {wording}"
    digest = hashlib.sha256(f"{wording.visit}\n{wording.recording}".encode()).hexdigest()
    known = consent.WORDINGS.get((language, wording.version))
    assert known is not None, (
        f"the {language} consent wording (version {wording.version}) is not in telemed/consent.py; "
        "run: python -m telemed.consent --digests web/locales")
    assert known == digest, (
        f"the {language} consent wording changed but its consent.version ({wording.version}) did not: "
        "give it a new version in the catalogue and add it to telemed/consent.py")
    assert consent.CURRENT.get(language) == wording.version, (
        f"the pages show {language} version {wording.version}; telemed/consent.py CURRENT says {consent.CURRENT.get(language)}")


def test_a_supported_language_with_a_catalogue_has_the_whole_wording_or_none_of_it() -> None:
    for language, wording in shown().items():
        if language in languages.SUPPORTED:
            assert isinstance(wording, Wording), f"the {language} catalogue lacks {wording}"


def test_the_table_is_well_formed() -> None:
    for (language, version), digest in consent.WORDINGS.items():
        assert languages.canonical(language) == language and version and len(digest) == 64
    for language, version in consent.CURRENT.items():
        assert (language, version) in consent.WORDINGS


def test_the_digests_script_prints_what_to_paste(tmp_path: Path) -> None:
    (tmp_path / "ko").mkdir()
    (tmp_path / "ko" / "patient.json").write_text(json.dumps(
        {"consent.version": "2026-12", "consent.visit": "화상 진료에 동의합니다.", "consent.recording": "녹화에 동의합니다."}))
    (tmp_path / "es.json").write_text(json.dumps({"consent": {"version": "2026-12", "visit": "Acepto."}}))
    out = subprocess.run([sys.executable, "-m", "telemed.consent", "--digests", str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    digest = hashlib.sha256("화상 진료에 동의합니다.\n녹화에 동의합니다.".encode()).hexdigest()
    assert f'    ("ko", "2026-12"): "{digest}",' in out.stdout
    assert '    "ko": "2026-12",' in out.stdout
    # Spanish has half a wording: said, and the exit status says so.
    assert "es: the catalogue lacks consent.recording" in out.stderr and out.returncode == 1


# -- choosing the wording at check-in --------------------------------------------------------


def test_the_current_english_wording_by_default() -> None:
    agreed = consent.resolve("en")
    assert (agreed.language, agreed.version) == ("en", consent.CURRENT["en"])


def test_a_language_without_a_wording_of_its_own_agreed_to_the_english_one() -> None:
    agreed = consent.resolve("fr")
    assert (agreed.language, agreed.version) == ("en", consent.CURRENT["en"])


def test_an_unknown_version_is_outdated_in_plain_words() -> None:
    with pytest.raises(ConsentOutdated) as caught:
        consent.resolve("en", "1999-01")
    assert caught.value.code == "consent_outdated"
    assert caught.value.message == "The consent wording has changed. Please read it again."
    assert caught.value.details == {"reason": "consent_outdated", "language": "en", "version": "1999-01",
                                    "current": consent.CURRENT["en"]}


def test_a_wording_named_in_a_language_that_has_none_is_outdated() -> None:
    with pytest.raises(ConsentOutdated):
        consent.resolve("en", consent.CURRENT["en"], consent_language="fr")


def test_every_page_language_has_its_own_wording_with_a_regional_speaker_served_by_it() -> None:
    for language in languages.SUPPORTED:
        if language in consent.CURRENT:
            assert consent.resolve(language).language == language
    if "es" in consent.CURRENT:
        assert consent.resolve("es-419").language == "es"


# -- language tags ------------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "canonical"), [
    ("en", "en"), ("zh-CN", "zh-CN"), ("zh-cn", "zh-CN"), ("ko", "ko"), ("es-419", "es-419"),
    ("zh-hant-tw", "zh-Hant-TW"), ("yue", "yue"), ("EN-us", "en-US"),
])
def test_language_tags_in_canonical_case(tag: str, canonical: str) -> None:
    assert languages.canonical(tag) == canonical


@pytest.mark.parametrize("tag", ["", "english", "e", "en_US", "en-", "zh-CN-x-private", "ko-KR-1996", "en US", "../x"])
def test_what_is_not_a_language_tag(tag: str) -> None:
    assert not languages.is_valid(tag)
    with pytest.raises(ValueError, match="not a language tag"):
        languages.canonical(tag)


def test_the_model_or_wording_that_serves_a_speaker() -> None:
    assert languages.best_match("zh-CN", {"zh", "en"}) == "zh"
    assert languages.best_match("zh", {"zh-CN", "en"}) == "zh-CN"
    assert languages.best_match("en-GB", {"en", "ko"}) == "en"
    assert languages.best_match("es", {"en", "ko"}) is None


@pytest.mark.parametrize("language", sorted(consent.GUEST_CURRENT))
def test_the_guests_wording_is_known_with_its_digest(language: str) -> None:
    """The guests' own wording (guest_consent.*, web/guest.html) is kept the same way."""
    wording = wordings(LOCALES, consent.GUEST_KEYS)[language]
    assert isinstance(wording, Wording), f"the {language} catalogue lacks {wording}"
    assert consent.GUEST_WORDINGS.get((language, wording.version)) == wording.sha256, (
        f"the {language} guests' consent wording changed but its guest_consent.version ({wording.version}) did not")
    assert consent.GUEST_CURRENT[language] == wording.version
    assert consent.resolve(language, guest=True).sha256 == wording.sha256
