"""``visit.json`` ``participants``: everyone who took part, with what they agreed to.

:func:`telemed.chart.record.visit_record` lists the people it knows from the
visit and its chat (``role``, ``sub``, ``name``). :func:`with_guests` completes
each entry and adds the visit's guests (:mod:`telemed.guests`) who answered the
consent, so every entry says:

- ``type``: ``patient``, ``staff`` or ``guest``; ``kind``: a guest's kind
  (``interpreter``, ``caregiver``, ``clinician``), else None;
- ``language``: the patient's language, an interpreter's;
- ``consent``: ``{visit, recording, version, language, sha256, at}`` for the
  patient and each guest (what they agreed to, in which wording), else None;
- ``time_in`` / ``time_out``: when they came into the visit and went out (the
  patient and the doctor: the visit's admit and end; a guest: first let in,
  last out, or the visit's end if they were still in); None when never in;
- a guest's ``state`` at the end (``admitted``, ``left``, ``removed``...);
- ``party``: who they are in the call and on the chart's files (``patient``,
  ``doctor``, a guest's id), None for staff who were not in the call;
- ``recorded``: whether their chart leg may record them (the patient agreed to
  recording, and so did the guest); False for a guest who declined: "not
  recorded". None for staff who were not in the call;
- ``recordings``: the chart's recording files of them (``recordings.json``),
  in order.

A clinician guest keeps their staff role (``doctor``, ``nurse``) and ``sub``,
with ``type`` ``guest`` and ``kind`` ``clinician``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from telemed import consent
from telemed.chart.recordings import party_of
from telemed.guests import Guest, visit_ended
from telemed.visits import Visit

#: Order of the list: patient, doctor, nurses, guests (by invitation), others.
_ORDER = {"patient": 0, "doctor": 1, "nurse": 2, "admin": 3}


def _consent(agreed_visit: bool, recording: bool, version: str, language: str, at: float | None,
             *, guest: bool = False) -> dict[str, Any]:
    table = consent.GUEST_WORDINGS if guest else consent.WORDINGS
    return {"visit": agreed_visit, "recording": recording, "version": version, "language": language or None,
            "sha256": table.get((language, version)), "at": at}


def _guest_entry(guest: Guest, ended_at: float | None, patient_agreed: bool) -> dict[str, Any]:
    guest = visit_ended(guest, ended_at)
    return {
        "party": guest.id,
        "recorded": patient_agreed and guest.consent_recording,
        "role": guest.role,
        "sub": guest.sub,
        "name": guest.name,
        "type": "guest",
        "kind": guest.kind.value,
        "language": guest.language or None,
        "state": guest.state.value,
        "invited_by": guest.invited_by,
        "consent": _consent(guest.consent_visit, guest.consent_recording, guest.consent_version,
                            guest.consent_language, guest.checked_in_at, guest=True),
        "time_in": guest.joined_at,
        "time_out": guest.left_at if guest.joined_at is not None else None,
    }


def with_guests(people: Iterable[Mapping[str, Any]], visit: Visit, guests: Iterable[Guest],
                recordings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The record's ``participants``, completed, with the guests who answered the consent.

    :param recordings: the chart's ``recordings.json`` (:meth:`ChartIndex.read`),
        whose files are listed under the participant they recorded."""
    in_visit = visit.admitted_at
    agreed = bool(visit.consent_recording)
    guest_entries = [_guest_entry(g, visit.ended_at, agreed) for g in guests if g.checked_in_at is not None]
    as_guest = {(g["role"], g["sub"]) for g in guest_entries}
    out: list[dict[str, Any]] = []
    for p in people:
        role, sub = str(p.get("role", "")), str(p.get("sub", ""))
        if (role, sub) in as_guest:
            continue  # a guest who wrote in the chat: their guest entry says more
        entry: dict[str, Any] = {**p, "type": "patient" if role == "patient" else "staff", "kind": None,
                                 "language": None, "consent": None, "time_in": None, "time_out": None,
                                 "party": None, "recorded": None}
        if role == "patient" or (role == "doctor" and sub == visit.doctor):
            entry["party"], entry["recorded"] = role, agreed
        if role == "patient":
            entry["language"] = visit.language or None
            if visit.checked_in_at is not None:
                entry["consent"] = _consent(visit.consent_visit, visit.consent_recording, visit.consent_version,
                                            visit.consent_language, visit.checked_in_at)
        if (role == "patient" or (role == "doctor" and sub == visit.doctor)) and in_visit is not None:
            entry["time_in"], entry["time_out"] = in_visit, visit.ended_at
        out.append(entry)
    out.sort(key=lambda e: _ORDER.get(str(e["role"]), 9))
    files = [r for r in (recordings or {}).get("recordings") or [] if isinstance(r, Mapping)]
    for entry in (*out, *guest_entries):
        entry["recordings"] = [str(r.get("file")) for r in files if entry["party"] and party_of(r) == entry["party"]]
    return out + guest_entries
