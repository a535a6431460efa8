"""Languages: the ones the pages are written in, and what a language tag may be.

A tag is BCP 47 in the short form browsers and speech models use: a language
(``en``, ``ko``, ``yue``), optionally a script (``zh-Hant``) and a region
(``zh-CN``, ``es-419``). Anything longer (variants, extensions, private use)
is refused rather than half understood. Tags are case-insensitive; they are
stored in the canonical case (``zh-cn`` becomes ``zh-CN``), so one language is
one string everywhere (the visit, the transcript, FHIR).
"""

from __future__ import annotations

import re

#: The languages the pages have catalogues for (``web/locales/``), English first.
SUPPORTED: tuple[str, ...] = ("en", "zh-CN", "ko", "es")

#: The language of a visit, a consent or a speaker when none is given.
DEFAULT = "en"

#: Display names for FHIR codings (the names of the IETF BCP 47 value set);
#: other valid tags are exported with their code alone.
NAMES: dict[str, str] = {
    "en": "English",
    "zh-CN": "Chinese (China)",
    "zh": "Chinese",
    "ko": "Korean",
    "es": "Spanish",
}

#: FHIR's code system for languages.
BCP47_SYSTEM = "urn:ietf:bcp:47"

_TAG = re.compile(r"([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?", re.IGNORECASE)

#: What a client is told when a tag is refused.
INVALID = "not a language tag such as en, ko, es or zh-CN"


def canonical(tag: str) -> str:
    """``tag`` in canonical case (``zh-cn`` -> ``zh-CN``, ``zh-hant-tw`` -> ``zh-Hant-TW``).

    :raises ValueError: ``tag`` is not a language tag this project takes (:data:`INVALID`).
    """
    m = _TAG.fullmatch(tag) if isinstance(tag, str) else None
    if m is None:
        raise ValueError(INVALID)
    language, script, region = m.groups()
    return "-".join(p for p in (language.lower(), script and script.title(), region and region.upper()) if p)


def is_valid(tag: str) -> bool:
    try:
        canonical(tag)
    except ValueError:
        return False
    return True


def primary(tag: str) -> str:
    """The language subtag alone (``zh-CN`` -> ``zh``)."""
    return tag.split("-", 1)[0].lower()


def best_match(tag: str, available: set[str] | frozenset[str] | list[str] | tuple[str, ...]) -> str | None:
    """The entry of ``available`` that serves ``tag``: the tag itself, else its
    language alone (a ``zh`` model for a ``zh-CN`` speaker), else an entry of the
    same language (a ``zh-CN`` model for a ``zh`` speaker); None if none does."""
    if tag in available:
        return tag
    language = primary(tag)
    if language in available:
        return language
    same = sorted(a for a in available if primary(a) == language)
    return same[0] if same else None


def display(tag: str) -> str:
    """A tag's display name for FHIR (empty when the table has none)."""
    return NAMES.get(tag, "")
