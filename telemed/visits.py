"""The visit's life cycle: states, the legal transitions, and the stored record.

The table below is the single source of the rules. The Lua scripts that change
a visit receive the rows of their action from it, so Python and Redis cannot
disagree about what is legal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class State(enum.StrEnum):
    CREATED = "created"
    """The visit exists (a link was issued); the patient has not checked in."""
    WAITING = "waiting"
    """In the queue, not yet triaged."""
    IN_TRIAGE = "in_triage"
    """In the queue; a nurse has set acuity or written a triage note."""
    READY = "ready"
    """In the queue and routed to a doctor (or to any doctor)."""
    IN_VISIT = "in_visit"
    """Admitted: patient and doctor are in the video visit."""
    ENDED = "ended"
    """Over, for any reason (see ``end_reason``). Final."""


#: States in which the patient holds a place in the clinic's queue.
QUEUED = frozenset({State.WAITING, State.IN_TRIAGE, State.READY})


class Action(enum.StrEnum):
    CHECK_IN = "check_in"
    TRIAGE = "triage"
    ROUTE = "route"
    ADMIT = "admit"
    LEAVE = "leave"
    END = "end"
    CALL_OFF = "call_off"
    """End a visit that has not started: staff cancel an expected visit, or a no-show."""


#: action -> {from state: to state}. Anything not listed is an illegal transition.
TRANSITIONS: dict[Action, dict[State, State]] = {
    Action.CHECK_IN: {State.CREATED: State.WAITING},
    Action.TRIAGE: {
        State.WAITING: State.IN_TRIAGE,
        State.IN_TRIAGE: State.IN_TRIAGE,
        State.READY: State.READY,
    },
    Action.ROUTE: {s: State.READY for s in QUEUED},
    Action.ADMIT: {s: State.IN_VISIT for s in QUEUED},
    Action.LEAVE: {s: State.ENDED for s in (State.CREATED, *QUEUED)},
    Action.END: {s: State.ENDED for s in State if s is not State.ENDED},
    Action.CALL_OFF: {State.CREATED: State.ENDED},
}


def transition_argv(action: Action) -> list[str]:
    """The action's rows flattened for a Lua script: ``[from, to, from, to, ...]``."""
    out: list[str] = []
    for src, dst in TRANSITIONS[action].items():
        out += [src.value, dst.value]
    return out


def next_state(action: Action, current: State) -> State | None:
    return TRANSITIONS[action].get(current)


class EndReason(enum.StrEnum):
    COMPLETED = "completed"
    """A doctor (or nurse) ended it."""
    LEFT = "left"
    """The patient left the waiting room."""
    ABSENT = "absent"
    """The patient's connection was gone longer than the grace period."""
    CANCELLED = "cancelled"
    """Staff cancelled it before it started."""
    NO_SHOW = "no_show"
    """A scheduled patient did not check in by the appointment plus the no-show time."""


def _num(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


@dataclass
class Visit:
    """A visit as stored in its Redis hash."""

    id: str
    clinic: str
    state: State
    created_at: float
    expires_at: float
    reason: str = ""
    consent_visit: bool = False
    consent_recording: bool = False
    consent_version: str = ""
    consent_language: str = ""
    """The language of the consent wording the patient agreed to (:mod:`telemed.consent`)."""
    language: str = ""
    """The patient's language (a BCP 47 tag, :mod:`telemed.languages`), given at check-in."""
    patient_sub: str = ""
    patient_name: str = ""
    checked_in_at: float | None = None
    seq: int | None = None
    acuity: int | None = None
    triage_note: str = ""
    triaged_by: str = ""
    routed_to: str = ""
    doctor: str = ""
    doctor_name: str = ""
    admitted_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    scheduled_at: float | None = None
    """The appointment (epoch seconds), for a visit booked for a time."""
    check_in_from: float | None = None
    """When its check-in opens: the clinic's check-in window before the
    appointment, fixed when it was booked (what the patient was told holds)."""

    @classmethod
    def from_hash(cls, visit_id: str, h: Mapping[str, str]) -> Visit:
        return cls(
            id=visit_id,
            clinic=h["clinic"],
            state=State(h["state"]),
            created_at=float(h["created_at"]),
            expires_at=float(h.get("expires_at") or 0),
            reason=h.get("reason", ""),
            consent_visit=h.get("consent_visit") == "1",
            consent_recording=h.get("consent_recording") == "1",
            consent_version=h.get("consent_version", ""),
            consent_language=h.get("consent_language", ""),
            language=h.get("language", ""),
            patient_sub=h.get("patient_sub", ""),
            patient_name=h.get("patient_name", ""),
            checked_in_at=_num(h.get("checked_in_at")),
            seq=int(h["seq"]) if h.get("seq") else None,
            acuity=int(h["acuity"]) if h.get("acuity") else None,
            triage_note=h.get("triage_note", ""),
            triaged_by=h.get("triaged_by", ""),
            routed_to=h.get("routed_to", ""),
            doctor=h.get("doctor", ""),
            doctor_name=h.get("doctor_name", ""),
            admitted_at=_num(h.get("admitted_at")),
            ended_at=_num(h.get("ended_at")),
            end_reason=h.get("end_reason", ""),
            scheduled_at=_num(h.get("scheduled_at")),
            check_in_from=_num(h.get("check_in_from")),
        )

    def for_staff(self) -> dict[str, object]:
        """What staff of the clinic see of the visit (queue and visit screens)."""
        return {
            "visit_id": self.id,
            "state": self.state.value,
            "reason": self.reason,
            "patient_name": self.patient_name,
            "acuity": self.acuity,
            "triage_note": self.triage_note,
            "routed_to": self.routed_to or None,
            "doctor": self.doctor or None,
            "doctor_name": self.doctor_name or None,
            "created_at": self.created_at,
            "checked_in_at": self.checked_in_at,
            "admitted_at": self.admitted_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason or None,
            "consent_recording": self.consent_recording,
            "language": self.language or None,
            "scheduled_at": self.scheduled_at,
            "check_in_from": self.check_in_from,
            "expires_at": self.expires_at,
        }

    def for_patient(self) -> dict[str, object]:
        """What the patient sees of their own visit."""
        return {
            "visit_id": self.id,
            "state": self.state.value,
            "reason": self.reason,
            "checked_in": self.checked_in_at is not None,
            "doctor_name": self.doctor_name or None,
            "end_reason": self.end_reason or None,
            "consent_recording": self.consent_recording,
            "language": self.language or None,
            "scheduled_at": self.scheduled_at,
            "check_in_from": self.check_in_from,
        }
