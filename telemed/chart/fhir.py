"""A visit's chart as a FHIR R4 Bundle, so a clinic's record system can import it.

The bundle is built from what the chart folder holds (``visit.json``,
``chat.jsonl``, ``recordings.json``, the transcript) with the ``fhir.resources``
models of FHIR 4.3.0 (R4B, whose resources here are the R4 shapes clinics
integrate with), so content that is not valid FHIR raises instead of being
exported. Nothing here reads a file or the clock: the same chart always gives
the same JSON, byte for byte, because every ``fullUrl`` is a UUID5 of the visit
id and what the entry is.

What the bundle holds (type ``collection``):

- one ``Encounter``: class ``VR`` (virtual), status ``finished``, or
  ``cancelled`` when the patient was never admitted; ``priority`` from the ESI
  acuity (:data:`ESI_PRIORITY`); ``statusHistory`` from the visit's history;
  ``subject`` the Patient below;
- a ``Patient`` (when the visit has one): their identifier and name, and
  ``communication``: the language they used (``urn:ietf:bcp:47``, preferred);
- an ``Appointment`` when the visit was booked for a time (``scheduled_at``),
  referenced from ``Encounter.appointment``: ``start`` the booked time, ``end``
  :data:`APPOINTMENT_MINUTES` later; status ``fulfilled`` once admitted,
  ``noshow`` for a no-show, ``cancelled`` for a visit that ended otherwise
  before its admit, ``booked`` / ``checked-in`` while not over;
- an ``Observation`` of the ESI level (LOINC 75636-1 with its LOINC answer) and
  one of the triage note (a text code: no LOINC code was confirmed for it);
- a ``Consent`` each for the visit (scope ``treatment``) and the recording
  (scope ``patient-privacy``): ``active`` when given, ``rejected`` when refused;
  ``sourceAttachment`` names the wording agreed to: its language, its version
  and the SHA-256 of its words (:mod:`telemed.consent`);
- a ``Communication`` per chat message, in chat order;
- a ``Media`` per recording file (video; an interrupted file is ``stopped``
  with a note) and per snapshot (image);
- a ``DocumentReference`` for the transcript (its JSONL and VTT files, with
  their language when the speakers spoke one).

Staff are not resources of their own: they are references by identifier
(system :data:`SUBJECT_SYSTEM`, value = the token's ``sub``), the way the
clinic's own system knows them. The patient is a ``Patient`` entry (it carries
their language), and references to them name both the entry and the identifier.

Attachments point at the chart file route (``{base_url}/api/visits/{visit}/
files/{name}``) and carry ``size`` and ``hash``. FHIR's ``hash`` is the base64
SHA-1 of the file, which cannot be derived from the SHA-256 the chart keeps, so
:class:`FileInfo` takes both (:meth:`FileInfo.of` computes them); the SHA-256
goes along in the extension :data:`SHA256_EXTENSION` (hex).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.media import Media
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource

from telemed.chart._fhir_input import (
    BundleError,
    FileInfo,
    TranscriptRef,
    _Chart,
    _coding,
    _instant,
    _make,
    _mapping,
    _opt_time,
    _period,
    _Person,
    _person,
    _str,
    _time,
)
from telemed.chart.fhir_codes import (
    ACT_CODE,
    ACT_PRIORITY,
    APPOINTMENT_MINUTES,
    CHAT_SYSTEM,
    CLINIC_SYSTEM,
    ENCOUNTER_STATUS,
    END_REASON_EXTENSION,
    ESI_ANSWERS,
    ESI_CODE,
    ESI_PRIORITY,
    GUEST_PARTICIPANT_TYPE,
    LOINC,
    MEDIA_TYPE,
    OBSERVATION_CATEGORY,
    PARTICIPANT_TYPE,
    PARTICIPATION_MODE,
    PARTICIPATION_TYPE,
    RECORDING_STATUS,
    RESOURCE_OF_ROLE,
    SHA256_EXTENSION,
    SUBJECT_SYSTEM,
    VISIT_SYSTEM,
)
from telemed.chart.fhir_consent import consents as _consents
from telemed.languages import BCP47_SYSTEM
from telemed.languages import display as language_name
from telemed.visits import State

__all__ = [
    "BundleError", "FileInfo", "TranscriptRef", "build_bundle", "unresolved_references",
    # the tables, for callers that read the export
    "ENCOUNTER_STATUS", "ESI_PRIORITY", "SHA256_EXTENSION",
]

# -- resources ---------------------------------------------------------------------


def _final_status(admitted: float | None) -> str:
    """An ended visit's Encounter status: ``cancelled`` when the patient was never admitted."""
    return "finished" if admitted is not None else "cancelled"


def _state(value: object, where: str) -> str:
    if value not in {s.value for s in State}:
        raise BundleError(f"{where}: unknown visit state {value!r}")
    return str(value)


def _status_history(chart: _Chart, created: float, final: str) -> list[dict[str, Any]]:
    """Past Encounter statuses from the visit's transitions (the current one is ``status``)."""
    out: list[dict[str, Any]] = []
    state, status, since = State.CREATED.value, ENCOUNTER_STATUS[State.CREATED], created
    for i, h in enumerate(chart.visit.get("history") or []):
        where = f"visit.json history[{i}]"
        h = _mapping(h, where)
        src, dst, at = _state(h.get("from"), where), _state(h.get("to"), where), _time(h, "at", where)
        if src != state:
            raise BundleError(f"{where}: goes from {src!r}, but the visit was {state!r} then")
        new = final if dst == State.ENDED else ENCOUNTER_STATUS[dst]
        if new != status:
            out.append({"status": status, "period": _period(since, at, where)})
            status, since = new, at
        state = dst
    if chart.visit.get("history") and state != chart.visit.get("state"):
        raise BundleError(f"visit.json: history ends in {state!r}, but the state is {chart.visit.get('state')!r}")
    return out


def _encounter(chart: _Chart) -> Encounter:
    visit = chart.visit
    state = _state(visit.get("state"), "visit.json state")
    times = _mapping(visit.get("times") or {}, "visit.json times")
    created = _time(times, "created", "visit.json times")
    checked_in = _opt_time(times, "checked_in", "visit.json times")
    admitted = _opt_time(times, "admitted", "visit.json times")
    ended = _opt_time(times, "ended", "visit.json times")
    if state == State.ENDED and ended is None:
        raise BundleError("visit.json: the visit has ended but times.ended is missing")
    status = _final_status(admitted) if state == State.ENDED else ENCOUNTER_STATUS[state]
    start = next(t for t in (admitted, checked_in, created) if t is not None)

    data: dict[str, Any] = {
        "identifier": [{"system": VISIT_SYSTEM, "value": chart.id}],
        "status": status,
        "class": {"system": ACT_CODE, "code": "VR", "display": "virtual"},
        "period": _period(start, ended, "visit.json times"),
        "serviceProvider": {
            "type": "Organization",
            "identifier": {"system": CLINIC_SYSTEM, "value": chart.clinic},
        },
        **chart.subject(),
    }
    history = _status_history(chart, created, status)
    if history:
        data["statusHistory"] = history
    acuity = _acuity(visit)
    if acuity is not None:
        code, display = ESI_PRIORITY[acuity]
        data["priority"] = _coding(ACT_PRIORITY, code, display)
    reason = _str(visit, "reason", "visit.json", required=False).strip()
    if reason:
        data["reasonCode"] = [{"text": reason}]
    participants = [_participant(chart, p) for p in chart.people if p.kind or p.role in PARTICIPANT_TYPE]
    if participants:
        data["participant"] = participants
    end_reason = visit.get("end_reason")
    if end_reason:
        data["extension"] = [{"url": END_REASON_EXTENSION, "valueCode": end_reason}]
    if _scheduled_at(visit) is not None:
        data["appointment"] = [{"reference": chart.full_url("appointment")}]
    return _make(Encounter, data, "visit.json")


def _participant(chart: _Chart, person: _Person) -> dict[str, Any]:
    """An Encounter participant: their type (a guest's by kind: an interpreter is a
    ``TRANSLATOR``), who, and when they were in the visit (``time_in``/``time_out``)."""
    code = GUEST_PARTICIPANT_TYPE[person.kind] if person.kind else PARTICIPANT_TYPE[person.role]
    out: dict[str, Any] = {"type": [_coding(PARTICIPATION_TYPE, *code)], "individual": person.ref()}
    entry = chart.entries.get((person.role, person.sub)) or {}
    where = f"visit.json participants ({person.role} {person.sub})"
    time_in, time_out = _opt_time(entry, "time_in", where), _opt_time(entry, "time_out", where)
    if time_in is not None:
        out["period"] = _period(time_in, time_out, where)
    return out


def _language_concept(tag: str) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": BCP47_SYSTEM, "code": tag}
    if language_name(tag):
        coding["display"] = language_name(tag)
    return {"coding": [coding]}


def _patient(chart: _Chart) -> tuple[str, Patient] | None:
    """The patient: who (identifier, name) and the language they used, preferred."""
    if chart.patient is None:
        return None
    data: dict[str, Any] = {"identifier": [{"system": SUBJECT_SYSTEM, "value": chart.patient.sub}]}
    if chart.patient.name:
        data["name"] = [{"text": chart.patient.name}]
    language = chart.language()
    if language:
        data["communication"] = [{"language": _language_concept(language), "preferred": True}]
    return chart.patient.url, _make(Patient, data, "visit.json participants (the patient)")


def _scheduled_at(visit: Mapping[str, Any]) -> float | None:
    return _opt_time(visit, "scheduled_at", "visit.json")


def _appointment_status(visit: Mapping[str, Any], admitted: float | None) -> str:
    state = visit.get("state")
    if admitted is not None:
        return "fulfilled"
    if state == State.ENDED:
        return "noshow" if visit.get("end_reason") == "no_show" else "cancelled"
    return "booked" if state == State.CREATED else "checked-in"


def _appointment(chart: _Chart) -> tuple[str, Appointment] | None:
    """The booking, for a visit that had an appointment time."""
    at = _scheduled_at(chart.visit)
    if at is None:
        return None
    times = _mapping(chart.visit.get("times") or {}, "visit.json times")
    admitted = _opt_time(times, "admitted", "visit.json times")
    patient = {"actor": chart.patient.ref()} if chart.patient else {"type": [_coding(PARTICIPATION_TYPE, "SBJ", "subject")]}
    data: dict[str, Any] = {
        "identifier": [{"system": VISIT_SYSTEM, "value": chart.id}],
        "status": _appointment_status(chart.visit, admitted),
        "start": _instant(at),
        "end": _instant(at + APPOINTMENT_MINUTES * 60),
        "minutesDuration": APPOINTMENT_MINUTES,
        "created": _instant(_time(times, "created", "visit.json times")),
        "participant": [{**patient, "status": "accepted"}],
    }
    reason = _str(chart.visit, "reason", "visit.json", required=False).strip()
    if reason:
        data["reasonCode"] = [{"text": reason}]
    return chart.full_url("appointment"), _make(Appointment, data, "visit.json scheduled_at")


def _acuity(visit: Mapping[str, Any]) -> int | None:
    acuity = visit.get("acuity")
    if acuity is None:
        return None
    if isinstance(acuity, bool) or not isinstance(acuity, int) or acuity not in ESI_PRIORITY:
        raise BundleError(f"visit.json: acuity must be an ESI level 1-5 or null, not {acuity!r}")
    return acuity


def _observations(chart: _Chart) -> Iterator[tuple[str, Observation]]:
    """The ESI level and the triage note, each when the visit has one."""
    triage = chart.visit.get("triage")
    base: dict[str, Any] = {"status": "final", "encounter": chart.encounter_ref(), **chart.subject()}
    note = ""
    if triage is not None:
        triage = _mapping(triage, "visit.json triage")
        note = _str(triage, "note", "visit.json triage", required=False).strip()
        at = _opt_time(triage, "at", "visit.json triage")
        if at is not None:
            base["effectiveDateTime"] = _instant(at)
        by = _str(triage, "by", "visit.json triage", required=False)
        if by:
            base["performer"] = [chart.staff_by_sub(by).ref()]
    acuity = _acuity(chart.visit)
    if acuity is not None:
        answer, display = ESI_ANSWERS[acuity]
        data = {
            **base,
            "category": [_coding(OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": {**_coding(LOINC, *ESI_CODE), "text": "ESI triage level"},
            "valueCodeableConcept": {**_coding(LOINC, answer, display), "text": f"ESI {acuity}"},
        }
        yield chart.full_url("observation", "acuity"), _make(Observation, data, "visit.json acuity")
    if note:
        data = {**base, "code": {"text": "Triage note"}, "valueString": note}
        yield chart.full_url("observation", "triage-note"), _make(Observation, data, "visit.json triage")


def _communications(chart: _Chart, chat: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Communication]]:
    for i, message in enumerate(chat, 1):
        where = f"chat.jsonl line {i}"
        message = _mapping(message, where)
        mid = _str(message, "id", where)
        where = f"{where} (id {mid})"
        sender = chart.known(_person(message.get("role"), message.get("sub"), message.get("name"), where))
        data: dict[str, Any] = {
            "identifier": [{"system": CHAT_SYSTEM, "value": f"{chart.id}/{mid}"}],
            "status": "completed",
            "medium": [_coding(PARTICIPATION_MODE, "ONLINEWRIT", "online written")],
            **chart.subject(),
            "encounter": chart.encounter_ref(),
            "sent": _instant(_time(message, "at", where)),
            "sender": sender.ref(),
            "payload": [{"contentString": _str(message, "text", where)}],
        }
        recipients = [p.ref() for p in chart.people if p.sub != sender.sub]
        if recipients:
            data["recipient"] = recipients
        yield chart.full_url("chat", mid), _make(Communication, data, where)


def _media(chart: _Chart, recordings: Mapping[str, Any]) -> Iterator[tuple[str, Media]]:
    """A Media per recording file, then per snapshot, in the index's order."""
    for i, r in enumerate(recordings.get("recordings") or []):
        where = f"recordings.json recordings[{i}]"
        r = _mapping(r, where)
        file = _str(r, "file", where)
        where = f"recordings.json {file}"
        state = r.get("state")
        if state not in RECORDING_STATUS:
            raise BundleError(f"{where}: unknown state {state!r}")
        started, ended = _opt_time(r, "started_at", where), _opt_time(r, "ended_at", where)
        duration = _opt_time(r, "duration", where)
        gap = _opt_time(r, "gap_before", where)
        notes = []
        if state == "interrupted":
            held = f"; the file holds {duration:.1f} s" if duration is not None else ""
            notes.append(f"Recording interrupted: its media worker stopped before the visit ended{held}.")
        elif state == "recording":
            notes.append("Still being recorded when the chart was exported.")
        if gap is not None and gap > 0:
            notes.append(f"{gap:.1f} s gap since this participant's previous recording (connection re-established).")
        data = _media_base(chart, r, file, "video", "Video", where, started)
        data["status"] = RECORDING_STATUS[str(state)]
        if started is not None or ended is not None:
            data["createdPeriod"] = _period(started, ended, where)
        if duration is not None:
            data["duration"] = duration
        data["note"] = data.get("note", []) + [{"text": n} for n in notes]
        yield chart.full_url("media", file), _make(Media, _drop_empty(data), where)

    for i, s in enumerate(recordings.get("snapshots") or []):
        where = f"recordings.json snapshots[{i}]"
        s = _mapping(s, where)
        file = _str(s, "file", where)
        where = f"recordings.json {file}"
        taken = _opt_time(s, "taken_at", where)
        data = _media_base(chart, s, file, "image", "Image", where, taken)
        data["status"] = "completed"
        if taken is not None:
            data["createdDateTime"] = _instant(taken)
        for key in ("width", "height"):
            if s.get(key) is not None:
                data[key] = s[key]
        yield chart.full_url("media", file), _make(Media, _drop_empty(data), where)


def _media_base(
    chart: _Chart, entry: Mapping[str, Any], file: str, kind: str, display: str, where: str, creation: float | None
) -> dict[str, Any]:
    role = entry.get("role")
    if role not in RESOURCE_OF_ROLE:
        raise BundleError(f"{where}: unknown role {role!r}")
    data: dict[str, Any] = {
        "identifier": chart.file_identifier(file),
        "type": _coding(MEDIA_TYPE, kind, display),
        "encounter": chart.encounter_ref(),
        "content": chart.attachment(file, creation=creation),
    }
    party = entry.get("party")
    guest = isinstance(party, str) and party not in ("patient", "doctor")  # a guest's file: by their id
    person = chart.by_party(str(party)) if guest else chart.person(str(role))
    if person:
        data["subject"] = person.ref()
    if file not in chart.files:
        data["note"] = [{"text": "The file is missing from the chart folder."}]
    return data


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v != []}


def _document(chart: _Chart, transcript: TranscriptRef, recorded: Iterable[str]) -> DocumentReference:
    if not transcript.files:
        raise BundleError("transcript: no files to attach")
    ended = chart.visit.get("state") == State.ENDED
    context: dict[str, Any] = {"encounter": [chart.encounter_ref()]}
    if transcript.start is not None or transcript.end is not None:
        context["period"] = _period(transcript.start, transcript.end, "transcript")
    recorded = set(recorded)
    related = [
        {"reference": chart.full_url("media", f), "type": "Media"} for f in transcript.recordings if f in recorded
    ]
    if related:
        context["related"] = related
    spoken = ", ".join(language_name(t) or t for t in transcript.languages)
    data: dict[str, Any] = {
        "identifier": chart.file_identifier(transcript.files[0]),
        "status": "current",
        "docStatus": "final" if ended else "preliminary",
        "type": {"text": "Visit transcript (automatic speech recognition)"},
        **chart.subject(),
        "description": "Machine transcript of the visit's speech; not reviewed by a clinician."
        + (f" Languages: {spoken}." if spoken else ""),
        "content": [{"attachment": chart.attachment(name, language=transcript.language)} for name in transcript.files],
        "context": context,
    }
    when = _opt_time(chart.visit.get("times") or {}, "ended", "visit.json times") or transcript.end
    if when is not None:
        data["date"] = _instant(when)
    return _make(DocumentReference, _drop_empty(data), "transcript")


# -- the bundle --------------------------------------------------------------------


def build_bundle(
    visit: Mapping[str, Any],
    chat: Sequence[Mapping[str, Any]],
    recordings: Mapping[str, Any] | None,
    transcript: TranscriptRef | None,
    files: Mapping[str, FileInfo],
    *,
    base_url: str,
) -> dict[str, Any]:
    """The chart as a FHIR R4 ``collection`` Bundle, JSON-ready.

    :param visit: ``visit.json``.
    :param chat: the lines of ``chat.jsonl``, in order.
    :param recordings: ``recordings.json``, or None when the visit has none.
    :param transcript: the transcript, or None when there is none.
    :param files: chart file name (``snapshots/s1.jpg``) -> its size, digests and
        content type; a referenced file missing here is exported without size
        and hash (and its Media says it is missing).
    :param base_url: where the chart file route is served (``https://clinic.example``);
        empty for server-relative URLs.
    :raises BundleError: the input breaks the chart's contract, or would make invalid FHIR.

    CPU-bound (about half a millisecond per chat message): run it in an executor.
    """
    chart = _Chart(_mapping(visit, "visit.json"), files, base_url)
    entries: list[tuple[str, Resource]] = [(chart.encounter_url, _encounter(chart))]
    patient = _patient(chart)
    if patient is not None:
        entries.append(patient)
    appointment = _appointment(chart)
    if appointment is not None:
        entries.append(appointment)
    entries += _observations(chart)
    entries += _consents(chart)
    entries += _communications(chart, chat)
    recorded: list[str] = []
    if recordings is not None:
        recordings = _mapping(recordings, "recordings.json")
        entries += _media(chart, recordings)
        recorded = [r.get("file") for r in recordings.get("recordings") or []]
    if transcript is not None:
        entries.append((chart.full_url("document", "transcript"), _document(chart, transcript, recorded)))

    seen: set[str] = set()
    for url, resource in entries:
        if url in seen:
            raise BundleError(f"two {resource.get_resource_type()} entries for one chart item ({url})")
        seen.add(url)
    times = _mapping(chart.visit.get("times") or {}, "visit.json times")
    stamp = max(t for t in (_opt_time(times, k, "visit.json times") for k in times) if t is not None)
    data = {
        "identifier": {"system": "urn:ietf:rfc:3986", "value": chart.full_url("bundle")},
        "type": "collection",
        "timestamp": _instant(stamp),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
    bundle = _make(Bundle, data, "the bundle")
    out: dict[str, Any] = json.loads(bundle.model_dump_json())
    dangling = unresolved_references(out)
    if dangling:
        raise BundleError(f"references to no entry: {', '.join(dangling)}")
    return out


def unresolved_references(bundle: Mapping[str, Any]) -> list[str]:
    """Every ``urn:uuid:`` reference in the bundle that is no entry's ``fullUrl`` (empty when all resolve)."""
    full_urls = {e.get("fullUrl") for e in bundle.get("entry") or [] if isinstance(e, Mapping)}
    dangling: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    if value.startswith("urn:uuid:") and value not in full_urls and value not in dangling:
                        dangling.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bundle.get("entry") or [])
    return dangling
