"""The consent wordings a patient may agree to: one version per language at a time.

The wording itself lives in the pages' catalogues (``web/locales/``): the keys
``consent.visit`` and ``consent.recording`` are the two sentences the patient
agrees to, ``consent.version`` names that wording. The server keeps, per
language and version, the SHA-256 of the wording (:data:`WORDINGS`), and which
version is current (:data:`CURRENT`). A check-in names the language and version
the patient read; the chart records both, so a record says which words were
agreed to, and an old page (a wording since changed) is refused with
:class:`ConsentOutdated` instead of being recorded as agreeing to words it did
not show.

tests/test_consent_wording.py digests every catalogue and fails unless its
``(language, consent.version)`` is here with that digest: changing a wording
without a new version cannot pass. To add or change a wording, give it a new
``consent.version`` in the catalogue and paste what this prints::

    python -m telemed.consent --digests web/locales
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telemed import languages
from telemed.exceptions import BadRequest

#: (language, version) -> SHA-256 (hex) of ``consent.visit + "\n" + consent.recording``.
#: Entries are never removed while a chart may name them.
WORDINGS: dict[tuple[str, str], str] = {
    ("en", "2026-11"): "96bb62d4735718560436505e8436fe33947c3a7884ff77bd0564c3908c296ae6",
    ("es", "2026-11"): "d5eacb9a979a4c579596cee0a6208a36226c6d10cc44e948a6a340e35ba6460e",
    ("ko", "2026-11"): "2db9fe25ff8ed55081eb6a03e82cae0bc2ea5416bcbc0ea3c3ea624bdb115f0b",
    ("zh-CN", "2026-11"): "a72ff146a2acc14b0804fda861161b1999dc48a386418a165574cf5272ccdf0d",
}

#: Language -> the version its pages show now (a check-in without a version agreed to this one).
CURRENT: dict[str, str] = {
    "en": "2026-11",
    "es": "2026-11",
    "ko": "2026-11",
    "zh-CN": "2026-11",
}

#: Catalogue keys of the wording.
KEYS = ("consent.version", "consent.visit", "consent.recording")

#: A visit's guests (an interpreter, a caregiver: telemed/guests.py) agree to a
#: wording of their own (their voice and image, into the patient's record), kept
#: the same way under the keys ``guest_consent.*``.
GUEST_WORDINGS: dict[tuple[str, str], str] = {
    ("en", "2026-11"): "7cc5a4f465ac3563a2b8f747753501ad4b9dbda4e782bac7eaf9fd66a4c63b10",
    ("es", "2026-11"): "e44bb25f8c166adc48e8fda127acf7925c44bd527d9d87e8a2e9a3c1503d7e3c",
    ("ko", "2026-11"): "a41524d841550ccaedeff73a5541bd514d194f028382dc289b4f4af2a9b8e228",
    ("zh-CN", "2026-11"): "2522eef52aab8c7ca8a1bbf26e9ceb7719f051b739b80315a0ae83924833be19",
}
GUEST_CURRENT: dict[str, str] = {
    "en": "2026-11",
    "es": "2026-11",
    "ko": "2026-11",
    "zh-CN": "2026-11",
}
GUEST_KEYS = ("guest_consent.version", "guest_consent.visit", "guest_consent.recording")


class ConsentOutdated(BadRequest):
    """The check-in names a consent wording the server does not know (an old
    page, or a wording changed without a new version): the patient must read
    the current one. Details: ``reason`` (``consent_outdated`` too, as other
    refusals name theirs), ``language``, ``version``, ``current``."""

    code = "consent_outdated"


@dataclass(frozen=True)
class Consent:
    """Which wording a patient agreed to."""

    language: str
    version: str
    sha256: str


def digest(visit: str, recording: str) -> str:
    """The SHA-256 (hex) that identifies a wording: both sentences, one line each."""
    return hashlib.sha256(f"{visit}\n{recording}".encode()).hexdigest()


def current(language: str) -> str | None:
    """The current version of ``language``'s wording, if it has one."""
    return CURRENT.get(language)


def resolve(language: str, version: str | None = None, consent_language: str | None = None, *,
            guest: bool = False) -> Consent:
    """The wording a check-in agreed to (``guest``: a guest's, :data:`GUEST_WORDINGS`).

    :param language: the patient's language (a canonical tag).
    :param version: the ``consent.version`` the page showed; None: the current one.
    :param consent_language: the language of the wording shown, when it is not
        ``language``. None: ``language``, or, if that language has no wording of
        its own, English (the pages show English where a catalogue lacks a key).
    :raises ConsentOutdated: no such wording (in plain words for the patient).
    """
    table, current = (GUEST_WORDINGS, GUEST_CURRENT) if guest else (WORDINGS, CURRENT)
    if consent_language is None:
        consent_language = languages.best_match(language, tuple(current)) or languages.DEFAULT
    version = version or current.get(consent_language)
    sha = table.get((consent_language, version)) if version else None
    if sha is None or version is None:
        raise ConsentOutdated(
            "The consent wording has changed. Please read it again.",
            reason="consent_outdated",
            language=consent_language,
            version=version,
            current=current.get(consent_language),
        )
    return Consent(consent_language, version, sha)


# -- the catalogues -------------------------------------------------------------------


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not ({"one", "other"} & set(value)):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def read_catalogues(folder: Path) -> dict[str, dict[str, Any]]:
    """Every language's catalogue under ``folder``, flat keys: ``<lang>.json``,
    or the bundles ``<lang>/*.json`` merged."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        out.setdefault(path.stem, {}).update(_flatten(json.loads(path.read_text(encoding="utf-8"))))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        for path in sorted(sub.glob("*.json")):
            out.setdefault(sub.name, {}).update(_flatten(json.loads(path.read_text(encoding="utf-8"))))
    return out


@dataclass(frozen=True)
class Wording:
    """One catalogue's consent wording."""

    language: str
    version: str
    visit: str
    recording: str

    @property
    def sha256(self) -> str:
        return digest(self.visit, self.recording)


def wordings(folder: Path, names: tuple[str, str, str] = KEYS) -> dict[str, Wording | list[str]]:
    """Per catalogue language: its wording (``names``: the keys of version, visit,
    recording; :data:`GUEST_KEYS` for the guests'), or the consent keys it lacks
    (a language whose catalogue has none of them is left out)."""
    out: dict[str, Wording | list[str]] = {}
    for language, keys in read_catalogues(folder).items():
        present = [k for k in names if isinstance(keys.get(k), str) and keys[k]]
        if not present:
            continue
        if len(present) < len(names):
            out[language] = [k for k in names if k not in present]
            continue
        out[language] = Wording(language, keys[names[0]], keys[names[1]], keys[names[2]])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m telemed.consent", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--digests", metavar="FOLDER", type=Path, required=True,
                        help="the catalogues' folder (web/locales): print their entries for WORDINGS and CURRENT")
    args = parser.parse_args(argv)
    found = wordings(args.digests)
    status = 0
    print("# Entries for telemed/consent.py (keep the older versions in WORDINGS: charts name them)")
    print("WORDINGS = {")
    for language, w in sorted(found.items()):
        if isinstance(w, Wording):
            known = WORDINGS.get((language, w.version))
            note = "" if known in (None, w.sha256) else "  # CHANGED without a new consent.version"
            print(f'    ("{language}", "{w.version}"): "{w.sha256}",{note}')
    print("}")
    print("CURRENT = {")
    for language, w in sorted(found.items()):
        if isinstance(w, Wording):
            print(f'    "{language}": "{w.version}",')
    print("}")
    for language, w in sorted(found.items()):
        if isinstance(w, list):
            print(f"{language}: the catalogue lacks {', '.join(w)}", file=sys.stderr)
            status = 1
    guests = {lang: w for lang, w in wordings(args.digests, GUEST_KEYS).items() if isinstance(w, Wording)}
    if guests:
        print("GUEST_WORDINGS = {")
        for language, w in sorted(guests.items()):
            print(f'    ("{language}", "{w.version}"): "{w.sha256}",')
        print("}")
    return status


if __name__ == "__main__":
    sys.exit(main())
