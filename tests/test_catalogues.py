"""The pages' catalogues (web/locales/<language>/<bundle>.json) are complete
and agree with the pages: every language has every English key with the
same placeholders; every key a page or script names exists in English; the
English text left in the HTML (for a page without JavaScript) is the
catalogue's. Whether a rendered page shows only catalogue text is the
browser test's (the pseudo-locale check in tests/browser/test_languages.py)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"
LOCALES = WEB / "locales"
LANGUAGES = ("en", "es", "ko", "zh-CN")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}


def bundles() -> list[str]:
    return sorted(p.stem for p in (LOCALES / "en").glob("*.json"))


def catalogue(language: str, bundle: str) -> dict[str, object]:
    data = json.loads((LOCALES / language / f"{bundle}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def english() -> dict[str, object]:
    out: dict[str, object] = {}
    for bundle in bundles():
        part = catalogue("en", bundle)
        clash = set(out) & set(part)
        assert not clash, f"keys in two bundles: {sorted(clash)}"
        out.update(part)
    return out


def texts(value: object) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in dict(value).values()]  # type: ignore[call-overload]


def test_there_are_bundles() -> None:
    assert "common" in bundles()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("bundle", bundles())
def test_every_language_has_every_key_with_its_placeholders(language: str, bundle: str) -> None:
    en = catalogue("en", bundle)
    other = catalogue(language, bundle)
    missing = sorted(set(en) - set(other))
    extra = sorted(set(other) - set(en))
    assert not missing, f"{language}/{bundle}.json misses {missing}"
    assert not extra, f"{language}/{bundle}.json has keys English does not: {extra}"
    for key, value in other.items():
        assert isinstance(value, str | dict), key
        if isinstance(value, dict):
            assert "other" in value and set(value) <= PLURAL_FORMS, f"{language} {key}: plural forms {sorted(value)}"
        assert all(t.strip() for t in texts(value)), f"{language} {key} is empty"
        wanted = {p for t in texts(en[key]) for p in PLACEHOLDER.findall(t)}
        for text in texts(value):
            got = set(PLACEHOLDER.findall(text))
            assert got <= wanted, f"{language} {key}: unknown placeholders {sorted(got - wanted)}"
            if isinstance(value, str) or "count" not in wanted:
                assert got == wanted, f"{language} {key}: placeholders {sorted(got)}, English has {sorted(wanted)}"


KEY_CALL = re.compile(r"""\bt\(\s*["']([\w.-]+)["']""")


def test_every_key_a_script_names_exists_in_english() -> None:
    en = english()
    unknown = {
        f"{path.name}: {key}"
        for path in WEB.glob("*.js")
        for key in KEY_CALL.findall(path.read_text(encoding="utf-8"))
        if key not in en
    }
    assert not unknown, sorted(unknown)


class _Page(HTMLParser):
    """The data-i18n keys of a page with the text the HTML carries for each."""

    def __init__(self) -> None:
        super().__init__()
        self.bundles: list[str] = []
        self.keys: list[tuple[str, str]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self._open: list[tuple[str, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.bundles = (a.get("data-i18n-bundles") or "").split()
        for name, value in attrs:
            if name.startswith("data-i18n-") and name != "data-i18n-bundles" and value:
                self.attributes.append((name[len("data-i18n-") :], value, a.get(name[len("data-i18n-") :]) or ""))
        if tag in {"meta", "link", "input", "br", "img", "source", "track"}:
            return
        self._open.append((tag, a.get("data-i18n"), []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, key, parts = self._open.pop()
            if key:
                self.keys.append((key, "".join(parts)))
            if self._open:
                self._open[-1][2].extend(parts)
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def _normal(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("page", sorted(p.name for p in WEB.glob("*.html")))
def test_the_html_text_is_the_catalogues(page: str) -> None:
    parsed = _Page()
    parsed.feed((WEB / page).read_text(encoding="utf-8"))
    assert parsed.bundles, f"{page} names no catalogue bundles (<html data-i18n-bundles>)"
    assert set(parsed.bundles) <= set(bundles()), parsed.bundles
    en = english()
    assert parsed.keys, f"{page} has no data-i18n text"
    for key, text in parsed.keys:
        assert key in en, f"{page}: no English text for {key}"
        assert isinstance(en[key], str)
        assert _normal(text) == _normal(str(en[key])), f"{page} {key}: HTML says {text!r}, the catalogue {en[key]!r}"
    for attribute, key, value in parsed.attributes:
        assert key in en, f"{page}: no English text for {key} ({attribute})"
        assert _normal(value) == _normal(str(en[key])), f"{page} {attribute}={value!r}, the catalogue {key}={en[key]!r}"
