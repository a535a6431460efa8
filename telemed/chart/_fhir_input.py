"""The FHIR export's input: what a chart's files must hold to be exported, and
the chart as the resource builders (:mod:`telemed.chart.fhir`) see it. Every
check raises :class:`BundleError` naming the file and field.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from telemed import languages
from telemed.chart.fhir_codes import (
    FILE_SYSTEM,
    GUEST_RESOURCE,
    RESOURCE_OF_ROLE,
    SHA256_EXTENSION,
    SUBJECT_SYSTEM,
)
from telemed.chart.layout import content_type

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:telemed:fhir")
_HEX = re.compile(r"[0-9a-f]+")
_UNSIGNED_INT_MAX = 2**31 - 1  # Attachment.size is an R4 unsignedInt

R = TypeVar("R", bound=Resource)


class BundleError(ValueError):
    """The chart cannot be exported as valid FHIR; the message names the file and field."""


@dataclass(frozen=True)
class FileInfo:
    """What the bundle says of one chart file."""

    size: int
    """Bytes."""
    sha256: str
    """Hex digest (lower case), as the chart's own checks use it."""
    content_type: str
    sha1: str | None = None
    """Hex digest; FHIR's ``Attachment.hash`` is SHA-1, so without it the hash is left out."""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise BundleError(f"file size must not be negative, not {self.size}")
        for name, digest, length in (("sha256", self.sha256, 64), ("sha1", self.sha1, 40)):
            if digest is not None and (len(digest) != length or not _HEX.fullmatch(digest)):
                raise BundleError(f"{name} must be {length} lower-case hex digits, not {digest!r}")

    @classmethod
    def of(cls, data: bytes, content_type: str) -> FileInfo:
        """Size and both digests of a file's bytes."""
        return cls(len(data), hashlib.sha256(data).hexdigest(), content_type, hashlib.sha1(data).hexdigest())


@dataclass(frozen=True)
class TranscriptRef:
    """The transcript as the bundle describes it: its files and when it was spoken."""

    files: tuple[str, ...] = ("transcript.jsonl", "transcript.vtt")
    """Chart files that hold it, each one content attachment."""
    start: float | None = None
    """Wall time (Unix seconds) the first utterance began."""
    end: float | None = None
    """Wall time the last utterance ended."""
    recordings: tuple[str, ...] = ()
    """Recording files the words were heard in, linked from the document."""
    language: str = ""
    """BCP-47 tag of the speech's language (``ko``) when it is one; empty when
    unknown or when the speakers spoke several (see ``languages``)."""
    languages: tuple[str, ...] = ()
    """Every language the lines were recognised in, in order of first use."""

    @classmethod
    def from_lines(
        cls,
        lines: Iterable[Mapping[str, Any]],
        *,
        files: tuple[str, ...] = ("transcript.jsonl", "transcript.vtt"),
        language: str = "",
    ) -> TranscriptRef:
        """Summarise ``transcript.jsonl`` lines (``at`` is the wall time of ``start``).
        ``language`` defaults to the lines' own, when they all name the same one."""
        starts: list[float] = []
        ends: list[float] = []
        recordings: list[str] = []
        spoken: list[str] = []
        for i, line in enumerate(lines, 1):
            where = f"transcript.jsonl line {i}"
            at = _time(line, "at", where)
            starts.append(at)
            ends.append(at + max(0.0, _time(line, "end", where) - _time(line, "start", where)))
            file = line.get("recording")
            if isinstance(file, str) and file and file not in recordings:
                recordings.append(file)
            tag = line.get("language")
            if tag is not None:
                tag = _language(tag, where)
                if tag not in spoken:
                    spoken.append(tag)
        return cls(
            files=files,
            start=min(starts, default=None),
            end=max(ends, default=None),
            recordings=tuple(recordings),
            language=language or (spoken[0] if len(spoken) == 1 else ""),
            languages=tuple(spoken),
        )


# -- input checks -----------------------------------------------------------------


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BundleError(f"{where} must be an object, not {type(value).__name__}")
    return value


def _opt_time(d: Mapping[str, Any], key: str, where: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BundleError(f"{where}: {key!r} must be Unix seconds, not {value!r}")
    return float(value)


def _time(d: Mapping[str, Any], key: str, where: str) -> float:
    value = _opt_time(d, key, where)
    if value is None:
        raise BundleError(f"{where}: {key!r} is missing")
    return value


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BundleError(f"{where}: {key!r} must be a non-empty string, not {value!r}")
    return value


def _language(value: object, where: str) -> str:
    """A language tag from the chart (BCP 47, as :mod:`telemed.languages` takes them)."""
    if not isinstance(value, str) or not languages.is_valid(value):
        raise BundleError(f"{where}: 'language' must be a language tag such as ko or zh-CN, not {value!r}")
    return languages.canonical(value)


def _instant(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError) as exc:
        raise BundleError(f"time {t!r} is out of range") from exc


def _period(start: float | None, end: float | None, where: str) -> dict[str, str]:
    if start is not None and end is not None and end < start:
        raise BundleError(f"{where}: ends ({end}) before it starts ({start})")
    out = {}
    if start is not None:
        out["start"] = _instant(start)
    if end is not None:
        out["end"] = _instant(end)
    return out


def _make(model: type[R], data: dict[str, Any], where: str) -> R:
    """Validate one resource; a failure names the chart item it came from."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BundleError(f"{where} is not a valid FHIR {model.__name__}: {exc}") from exc


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


# -- the chart being exported --------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    role: str
    sub: str
    name: str
    url: str = ""
    """The bundle entry of the person's own resource (the patient's), if there is one."""
    kind: str = ""
    """A guest's kind (``interpreter``, ``caregiver``, ``clinician``); empty for others."""

    def ref(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": GUEST_RESOURCE[self.kind] if self.kind else RESOURCE_OF_ROLE[self.role],
            "identifier": {"system": SUBJECT_SYSTEM, "value": self.sub},
        }
        if self.url:
            out["reference"] = self.url
        if self.name:
            out["display"] = self.name
        return out


def _person(role: object, sub: object, name: object, where: str) -> _Person:
    if role not in RESOURCE_OF_ROLE:
        raise BundleError(f"{where}: unknown role {role!r}")
    if not isinstance(sub, str) or not sub:
        raise BundleError(f"{where}: 'sub' must be a non-empty string, not {sub!r}")
    if name is not None and not isinstance(name, str):
        raise BundleError(f"{where}: 'name' must be a string, not {name!r}")
    return _Person(str(role), sub, (name or "").strip())


class _Chart:
    """The visit's ids, people and files, shared by the resource builders."""

    def __init__(self, visit: Mapping[str, Any], files: Mapping[str, FileInfo], base_url: str) -> None:
        if visit.get("format") != 1:
            raise BundleError(f"visit.json: unknown format {visit.get('format')!r} (this code reads 1)")
        self.visit = visit
        self.id = _str(visit, "id", "visit.json")
        self.clinic = _str(visit, "clinic", "visit.json")
        self.files = files
        self.base_url = base_url.rstrip("/")
        self.people: list[_Person] = []
        #: Each person's ``visit.json`` entry (times in and out, consent), by (role, sub).
        self.entries: dict[tuple[str, str], Mapping[str, Any]] = {}
        for i, p in enumerate(visit.get("participants") or []):
            where = f"visit.json participants[{i}]"
            p = _mapping(p, where)
            person = _person(p.get("role"), p.get("sub"), p.get("name"), where)
            kind = p.get("kind") if p.get("type") == "guest" else None
            if kind is not None:
                if kind not in GUEST_RESOURCE:
                    raise BundleError(f"{where}: unknown guest kind {kind!r}")
                person = replace(person, kind=str(kind))
            if all((q.role, q.sub) != (person.role, person.sub) for q in self.people):
                self.people.append(person)
                self.entries[(person.role, person.sub)] = p
        # The patient is a resource of the bundle (their language is there), referenced by URL too.
        self.patient = next((p for p in self.people if p.role == "patient"), None)
        if self.patient is not None:
            patient = replace(self.patient, url=self.full_url("patient", self.patient.sub))
            self.people = [patient if p is self.patient else p for p in self.people]
            self.patient = patient
        self.encounter_url = self.full_url("encounter")

    def full_url(self, kind: str, key: str = "") -> str:
        return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.clinic}/{self.id}/{kind}/{key}')}"

    def encounter_ref(self) -> dict[str, Any]:
        return {"reference": self.encounter_url, "type": "Encounter"}

    def subject(self) -> dict[str, Any]:
        """``subject``: the patient, when the visit has one."""
        return {"subject": self.patient.ref()} if self.patient else {}

    def language(self) -> str:
        """The patient's language (``visit.json`` ``language``); empty when not recorded."""
        value = self.visit.get("language")
        return "" if value is None else _language(value, "visit.json")

    def person(self, role: str, sub: str | None = None) -> _Person | None:
        """The first participant with the role (and sub)."""
        return next((p for p in self.people if p.role == role and (sub is None or p.sub == sub)), None)

    def by_party(self, party: str) -> _Person | None:
        """The participant who is ``party`` in the call (``patient``, ``doctor``,
        a guest's id: ``visit.json`` ``party``); a party unknown there, None."""
        for (role, sub), entry in self.entries.items():
            if entry.get("party") == party:
                return self.person(role, sub)
        return None

    def known(self, person: _Person) -> _Person:
        """``person`` as the participants list knows them (their resource, their name if unnamed)."""
        found = self.person(person.role, person.sub)
        if found is None:
            return person
        return replace(person, url=found.url, name=person.name or found.name)

    def staff_by_sub(self, sub: str) -> _Person:
        """A staff member by sub; one missing from ``participants`` is still a Practitioner."""
        found = next((p for p in self.people if p.sub == sub and p.role != "patient"), None)
        return found or _Person("nurse", sub, "")

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/api/visits/{quote(self.id, safe='')}/files/{quote(name, safe='/')}"

    def attachment(self, name: str, *, creation: float | None = None, language: str = "") -> dict[str, Any]:
        """An Attachment of a chart file; without size and hash when ``files`` does not list it."""
        info = self.files.get(name)
        out: dict[str, Any] = {
            "contentType": info.content_type if info else content_type(name),
            "url": self.file_url(name),
            "title": name,
        }
        if language:
            out["language"] = language
        if creation is not None:
            out["creation"] = _instant(creation)
        if info:
            out["extension"] = [{"url": SHA256_EXTENSION, "valueString": info.sha256}]
            if info.size <= _UNSIGNED_INT_MAX:
                out["size"] = info.size
            if info.sha1:
                out["hash"] = base64.b64encode(bytes.fromhex(info.sha1)).decode()
        return out

    def file_identifier(self, name: str) -> list[dict[str, str]]:
        return [{"system": FILE_SYSTEM, "value": f"{self.id}/{name}"}]


