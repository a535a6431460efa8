"""Pydantic models of every inbound socket event and HTTP body.

Models forbid unknown fields and are strict about types, so a malformed
payload is refused with a ``bad_request`` error naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from telemed import languages
from telemed.clinic_config import LIMITS as CLINIC_LIMITS

#: Visit, clinic and user ids.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")]

def _stream_id(value: str) -> str:
    ms, seq = (int(part) for part in value.split("-"))
    if ms >= 2**64 or seq >= 2**64 - 1:
        raise ValueError("not a stream id")
    return value


#: A Redis stream id, e.g. ``1732240000000-0`` (each part a 64-bit number).
StreamId = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$"), AfterValidator(_stream_id)
]

#: Largest chat message, in UTF-8 bytes.
CHAT_MAX_BYTES = 4096

#: Largest SDP accepted for relay (a browser's offer with simulcast is ~10 KB).
SDP_MAX_CHARS = 64 * 1024


def _utf8_at_most(limit: int):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        if len(value.encode("utf-8")) > limit:
            raise ValueError(f"at most {limit} bytes of UTF-8")
        return value

    return check


def _must_be_true(value: bool) -> bool:
    if value is not True:
        raise ValueError("consent to the video visit is required")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _language(value: str) -> str:
    return languages.canonical(value)


#: A language tag (``en``, ``zh-CN``, ``es-419``), stored in canonical case (telemed/languages.py).
Language = Annotated[str, StringConstraints(max_length=16), AfterValidator(_language)]

#: A consent wording's version (``consent.version`` of a page's catalogue).
ConsentVersion = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]

ChatText = Annotated[str, AfterValidator(_not_blank), AfterValidator(_utf8_at_most(CHAT_MAX_BYTES))]
Reason = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]
Note = Annotated[str, StringConstraints(max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Empty(Event):
    pass


class VisitRef(Event):
    visit_id: Id


# -- /queue ---------------------------------------------------------------------


class CheckIn(Event):
    reason: Reason
    consent_visit: Annotated[bool, AfterValidator(_must_be_true)] = Field(
        description="the patient agreed to the video visit"
    )
    consent_recording: bool = Field(description="recording and transcription into the chart")
    language: Language = Field(default=languages.DEFAULT, description="the patient's language")
    consent_version: ConsentVersion | None = Field(
        default=None, description="the consent wording the page showed; default: the current one"
    )
    consent_language: Language | None = Field(
        default=None, description="the language of that wording, if not `language` (a page fell back to English)"
    )


class Triage(Event):
    visit_id: Id
    acuity: Annotated[int, Field(ge=1, le=5)] | None = None
    note: Note | None = None


class Route(Event):
    visit_id: Id
    doctor: Id | None = None


class Admit(Event):
    visit_id: Id | None = None


# -- /chat ------------------------------------------------------------------------


class ChatSend(Event):
    visit_id: Id
    client_id: Id
    text: ChatText


class ChatHistory(Event):
    visit_id: Id
    after: StreamId | None = None


# -- /call ------------------------------------------------------------------------


#: A party of a visit's call: ``patient``, ``doctor`` or an admitted guest's id
#: (signaling/call_parties.py). Absent: the patient and the doctor mean each other.
To = Annotated[Id | None, Field(default=None, description="the party this is for; none: the patient <-> doctor pair")]


class CallRef(Event):
    """``ready`` and ``hangup``, to one party of the call."""

    visit_id: Id
    to: To


class Sdp(Event):
    visit_id: Id
    to: To
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=SDP_MAX_CHARS)]
    restart: bool = False
    call_id: Id | None = Field(default=None, description="the offerer's id of this peer connection")


class IceCandidate(Event):
    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=64)] | None = None  # noqa: N815 (WebRTC's name)
    sdpMLineIndex: Annotated[int, Field(ge=0, le=64)] | None = None  # noqa: N815
    usernameFragment: Annotated[str, StringConstraints(max_length=256)] | None = None  # noqa: N815


class Candidate(Event):
    visit_id: Id
    to: To
    candidate: IceCandidate | None = Field(description="null marks the end of candidates")
    call_id: Id | None = None


#: Times to first media, in whole milliseconds: above 0, below ten minutes.
MediaMs = Annotated[int, Field(gt=0, lt=600_000)]


class MediaStarted(Event):
    """A page received the other side's first media of a call."""

    visit_id: Id
    call_id: Id | None = Field(default=None, description="the call's id (as in its offer); none: the page's one call")
    audio_ms: MediaMs | None = Field(default=None, description="ms from the admit (or the call's start) to the first audio")
    video_ms: MediaMs | None = Field(default=None, description="... to the first video frame")

    @model_validator(mode="after")
    def _some_media(self) -> MediaStarted:
        if self.audio_ms is None and self.video_ms is None:
            raise ValueError("say when the audio or the video started (audio_ms, video_ms)")
        return self


class QualityReport(Event):
    """What a page saw of its call's connection (getStats and the ICE state)."""

    visit_id: Id
    call_id: Id | None = None
    ice_failed: bool = Field(default=False, description="the connection failed (ICE state failed)")
    relay: bool | None = Field(default=None, description="the selected candidate pair is a TURN relay")
    fallback: Literal["audio_only"] | None = Field(default=None, description="video paused to keep the sound")
    restart: int | None = Field(default=None, ge=1, le=1000, description="the call's nth recovery by ICE restarts (with restart_ms)")
    restart_ms: MediaMs | None = Field(default=None, description="ms from the ICE restart that brought the call back to media again")

    @model_validator(mode="after")
    def _something(self) -> QualityReport:
        if (self.restart is None) != (self.restart_ms is None):
            raise ValueError("restart and restart_ms go together")
        if not self.ice_failed and self.relay is None and self.fallback is None and self.restart is None:
            raise ValueError("report ice_failed, relay, fallback or restart")
        return self


class CallStatus(Event):
    """How one party's side of the call is, for the other parties' pages: the
    connection's level (web/call_quality.js), whether it sends video, whether it is muted."""

    visit_id: Id
    to: Id | None = Field(default=None, description="one party; none: every other party of the call")
    call_id: Id | None = None
    level: Literal["good", "fair", "weak", "very_weak"] | None = Field(
        default=None, description="the connection's level as the page measures it; none: not measured yet"
    )
    video: Literal["on", "camera_off", "paused", "audio_only"] = Field(
        description="own video: sent, camera off, paused to keep the sound clear, or audio only by choice"
    )
    audio: Literal["on", "muted"] | None = Field(default=None, description="own microphone; none: not said")


# -- /media -------------------------------------------------------------------------


class LegOffer(Event):
    visit_id: Id
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=SDP_MAX_CHARS)]
    language: Language = Field(
        default=languages.DEFAULT,
        description="the doctor's caption language (the patient's leg uses the visit's language)",
    )


class CaptionLanguage(Event):
    """The doctor's speech is in another language from now on."""

    visit_id: Id
    language: Language


class CaptionsChoice(Event):
    """The patient turns live captions on or off for themselves."""

    visit_id: Id
    on: bool


class SnapshotRequest(Event):
    visit_id: Id
    role: Literal["patient", "doctor"] = "patient"


# -- /guest (telemed/guests.py) ---------------------------------------------------------


class GuestCheckIn(Event):
    """A guest agrees to the visit (required) and answers about recording, in the
    wording their page showed (checked as a patient's, telemed/consent.py)."""

    visit_id: Id
    consent_visit: Annotated[bool, AfterValidator(_must_be_true)]
    consent_recording: bool
    language: Language = Field(default=languages.DEFAULT, description="the language of the guest's page")
    consent_version: ConsentVersion | None = None
    consent_language: Language | None = None


# -- HTTP ------------------------------------------------------------------------


class CreateVisit(Event):
    clinic: Id | None = None
    reason: Reason = ""
    patient_name: Name | None = None
    ttl_minutes: Annotated[int, Field(ge=5, le=60 * 24 * 14)] | None = None
    scheduled_at: Any = Field(
        default=None,
        description="the appointment: ISO 8601 with offset, or epoch seconds; read (with plain-words "
        "errors) by telemed.appointments.parse_when",
    )


class Resend(Event):
    """A fresh link for a visit not checked in yet."""

    ttl_minutes: Annotated[int, Field(ge=5, le=60 * 24 * 14)] | None = None


class WalkIn(Event):
    name: Name
    reason: Reason = ""


class GuestInvite(Event):
    """``POST /api/visits/{visit}/guests``: invite a guest into the visit."""

    kind: Literal["interpreter", "caregiver", "clinician"]
    name: Name | None = Field(default=None, description="who they are (a clinician's name comes from the roster)")
    language: Language | None = Field(default=None, description="an interpreter's language (required for them)")
    direct_join: bool = Field(default=False, description="join without waiting in the lobby")
    staff_sub: Id | None = Field(default=None, description="a clinician guest: the staff member's id on the roster")


class Revoke(Event):
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _bounds(name: str) -> Any:
    low, high, _ = CLINIC_LIMITS[name]
    return Field(ge=low, le=high)


class ClinicSettingsChange(Event):
    """``PUT /api/clinics/{clinic}/settings``: the clinic settings to change
    (durations in seconds; bounds and plain-word messages in telemed.clinic_config)."""

    walk_in: bool | None = None
    captions_to_patient: bool | None = None
    link_lifetime: Annotated[float, _bounds("link_lifetime")] | None = None
    check_in_window: Annotated[float, _bounds("check_in_window")] | None = None
    no_show_after: Annotated[float, _bounds("no_show_after")] | None = None


class ChartQuery(BaseModel):
    """``GET /api/charts``: query strings, so numbers arrive as text (not strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: Annotated[float, Field(ge=0, le=1e11)] | None = Field(default=None, alias="from")
    to: Annotated[float, Field(ge=0, le=1e11)] | None = None
    state: Literal["", "created", "waiting", "in_triage", "ready", "in_visit", "ended"] = ""
    doctor: Id | Literal[""] = ""
    q: Annotated[str, StringConstraints(max_length=120)] = ""
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
