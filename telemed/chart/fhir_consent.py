"""The Consent resources of a visit's FHIR Bundle (:mod:`telemed.chart.fhir`):
the patient's consents to the visit and to recording, and each guest's own
pair, with the wording they read (its language, version and digest)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from fhir.resources.R4B.consent import Consent

from telemed.chart._fhir_input import (
    BundleError,
    _Chart,
    _coding,
    _instant,
    _language,
    _make,
    _mapping,
    _opt_time,
    _Person,
    _str,
)
from telemed.chart.fhir_codes import CONSENT_ACTION, CONSENT_POLICY, CONSENT_SCOPE, LOINC, SHA256_EXTENSION
from telemed.languages import display as language_name


def consents(chart: _Chart) -> Iterator[tuple[str, Consent]]:
    """The visit and recording consents, once the patient has answered them."""
    consent = chart.visit.get("consent")
    if consent is None:
        return
    consent = _mapping(consent, "visit.json consent")
    at = _opt_time(consent, "at", "visit.json consent")
    if at is None:
        return  # never asked (the patient did not check in)
    if chart.patient is None:
        raise BundleError("visit.json: a consent is recorded but no participant is the patient")
    yield from _consent_pair(chart, consent, at, "visit.json consent", "")
    for person in chart.people:
        given = chart.entries.get((person.role, person.sub), {}).get("consent") if person.kind else None
        if given is None:
            continue
        where = f"visit.json participants ({person.kind} {person.sub}) consent"
        given = _mapping(given, where)
        guest_at = _opt_time(given, "at", where)
        if guest_at is not None:  # a guest who answered the consent: their own pair, they the performer
            yield from _consent_pair(chart, given, guest_at, where, person.sub, performer=person)


def _consent_pair(chart: _Chart, consent: Mapping[str, Any], at: float, where: str, key: str,
                  performer: _Person | None = None) -> Iterator[tuple[str, Consent]]:
    """The visit and recording Consents of one person (the patient; ``performer``: a guest)."""
    assert chart.patient is not None
    version = _str(consent, "version", where, required=False).strip()
    policy: dict[str, Any] = (
        {"policy": [{"uri": CONSENT_POLICY + quote(version, safe="")}]}
        if version
        else {"policyRule": {"text": "Clinic consent form (version not recorded)"}}
    )
    policy.update(_wording(consent, version))
    kinds = (
        ("visit", "treatment", "Treatment", {"code": [{"text": "Telehealth video visit"}]}),
        (
            "recording",
            "patient-privacy",
            "Privacy Consent",
            {
                "action": [
                    {**_coding(CONSENT_ACTION, "collect", "Collect"), "text": "Record the visit's audio and video"}
                ]
            },
        ),
    )
    for which, scope, scope_display, provision in kinds:
        given = consent.get(which)
        if not isinstance(given, bool):
            raise BundleError(f"{where}: {which!r} must be true or false, not {given!r}")
        data = {
            "status": "active" if given else "rejected",
            "scope": _coding(CONSENT_SCOPE, scope, scope_display),
            "category": [_coding(LOINC, "59284-0", "Consent Document")],
            "patient": chart.patient.ref(),
            "dateTime": _instant(at),
            **policy,
            "provision": {"type": "permit", **provision},
        }
        if performer is not None:
            data["performer"] = [performer.ref()]
        url_key = f"{key}/{which}" if key else which
        yield chart.full_url("consent", url_key), _make(Consent, data, f"{where}.{which}")


def _wording(consent: Mapping[str, Any], version: str) -> dict[str, Any]:
    """``sourceAttachment``: the wording the patient read (its language, version, digest)."""
    language = consent.get("language")
    if language is None:
        return {}
    language = _language(language, "visit.json consent")
    attachment: dict[str, Any] = {
        "contentType": "text/plain",
        "language": language,
        "title": f"Consent wording, version {version or 'not recorded'} ({language_name(language) or language})",
    }
    sha = consent.get("sha256")
    if sha is not None:
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError(f"visit.json consent: 'sha256' must be 64 lower-case hex digits, not {sha!r}")
        attachment["extension"] = [{"url": SHA256_EXTENSION, "valueString": sha}]
    return {"sourceAttachment": attachment}
