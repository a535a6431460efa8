"""What travels between nodes and media workers through Redis: a chart-leg
job, a control request, and its reply. Both sides validate with these models,
so a field means one thing everywhere.

The worker treats every field of a job as hostile: the node checked the
caller, but a bug there (or a hand-written job) must still get a clear error
and leave nothing behind. The offer's SDP is vetted by the worker itself
(``media.jobs.check_offer``), with the SDP parser of the media stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from telemed import languages
from telemed.chart.layout import safe_id
from telemed.exceptions import BadRequest, TelemedError

#: Largest offer accepted (the same limit as call signaling).
MAX_SDP = 64 * 1024

#: The visit's two fixed parties; every other chart leg is a guest's, keyed by their guest id.
ROLES = frozenset({"patient", "doctor"})

#: What kind of participant a leg's sender is (a guest's kind, :class:`telemed.guests.Kind`).
KINDS = frozenset({"patient", "doctor", "interpreter", "caregiver", "clinician"})

#: Longest display name a job carries (a guest's name is at most 120 characters).
MAX_NAME = 200


#: A guest's id (:func:`telemed.tokens.new_id`: hex).
_GUEST_ID = re.compile(r"[0-9a-f]{16,64}")


def check_party(value: str) -> str:
    """A leg's party: ``patient``, ``doctor``, or a guest's id."""
    if value not in ROLES and not _GUEST_ID.fullmatch(value):
        raise BadRequest("job: role must be patient, doctor or a guest id", fields=["role"])
    return value

_IDS = ("job", "visit", "clinic", "sub")


class Job(BaseModel):
    """One offer for a chart leg, as the node puts it on the job stream."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: str = Field(alias="job")
    """Chosen by the node; the answer goes to Socket.IO room ``leg:<id>``."""

    visit: str
    clinic: str

    role: str
    """Whose camera and microphone: the party (``patient``, ``doctor``, or a
    guest's id), which keys the leg, its files and its events."""

    kind: str = ""
    """``patient``, ``doctor``, or the guest's kind (:data:`KINDS`); empty: the role's."""

    name: str = ""
    """The sender's display name, for the labels of their files, transcript and captions."""

    sub: str
    """The sender's subject (checked against the visit's record)."""

    sdp: str
    """The browser's offer, with its ICE candidates (gathering complete)."""

    consent: bool | None = None
    """Consent to recording as the node saw it; the visit's record in Redis decides."""

    language: str = languages.DEFAULT
    """The speaker's language (a tag): the doctor's choice on their page; for the
    patient, the visit's language (which the worker reads from the visit)."""

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        try:
            return languages.canonical(value)
        except ValueError:
            raise ValueError(f"job: language is {languages.INVALID}") from None

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        try:
            return check_party(value)
        except BadRequest:
            raise ValueError("job: role must be patient, doctor or a guest id") from None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value and value not in KINDS:
            raise ValueError("job: kind must be one of " + ", ".join(sorted(KINDS)))
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return value.strip()[:MAX_NAME]

    @property
    def guest(self) -> bool:
        """The leg is a guest's (an interpreter, a caregiver, a clinician)."""
        return self.role not in ROLES

    @property
    def label(self) -> dict[str, str]:
        """Who the leg is, as the chart's recordings index and transcript lines
        name them: ``{role, party, kind, name}``, ``role`` being the chart's
        (``patient``, ``doctor``, or ``guest`` for every guest, whose party is
        their guest id, as in ``visit.json``)."""
        return {"role": "guest" if self.guest else self.role, "party": self.role, "kind": self.kind or self.role,
                "name": self.name}

    @field_validator("sdp")
    @classmethod
    def _sdp_size(cls, value: str) -> str:
        if len(value.encode("utf-8", "replace")) > MAX_SDP:
            raise ValueError(f"offer: at most {MAX_SDP} bytes")
        return value

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Job:
        """Validate a job's stream fields; raises :class:`BadRequest` naming the field."""
        for name in (*_IDS, "role", "sdp"):
            value = fields.get(name)
            if not isinstance(value, str) or not value:
                raise BadRequest(f"job: {name} is missing", fields=[name])
        check_party(str(fields["role"]))
        for name in _IDS:
            safe_id(str(fields[name]), name)
        consent = fields.get("consent")
        language = fields.get("language") or languages.DEFAULT
        try:
            return cls.model_validate({**{k: fields[k] for k in (*_IDS, "role", "sdp")}, "language": language,
                                       "kind": fields.get("kind") or "", "name": fields.get("name") or "",
                                       "consent": None if consent in (None, "") else consent in ("1", "true", "yes")})
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "job"
            raise BadRequest(str(error["msg"]).removeprefix("Value error, "), fields=[name]) from None

    def to_fields(self) -> dict[str, str]:
        """The job's stream fields (what :meth:`from_fields` reads)."""
        return {"job": self.id, "visit": self.visit, "clinic": self.clinic, "role": self.role, "sub": self.sub,
                "sdp": self.sdp, "consent": "" if self.consent is None else ("1" if self.consent else "0"),
                "language": self.language, "kind": self.kind, "name": self.name}


class ControlRequest(BaseModel):
    """A request to the worker holding a leg, on that worker's control stream."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    req: str = ""
    """Where the reply goes (``keys.reply(req)``); empty: no reply wanted."""

    op: Literal["snapshot", "close", "language"]
    visit: str
    role: str

    language: str = ""
    """``language`` only: the speaker's language from now on (a tag)."""

    job: str = ""
    """``close`` only: close the leg only if it is still this job's."""

    reason: str = ""
    """``close`` only: told to the participant."""

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> ControlRequest:
        op = fields.get("op")
        if op not in ("snapshot", "close", "language"):
            raise BadRequest(f"no such operation: {op!r}", fields=["op"])
        if op == "language" and not languages.is_valid(str(fields.get("language", ""))):
            raise BadRequest(f"control request: language is {languages.INVALID}", fields=["language"])
        try:
            return cls.model_validate(dict(fields))
        except ValidationError as exc:
            raise BadRequest("control request: " + str(exc.errors()[0]["msg"]), fields=["control"]) from None

    def to_fields(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v != "" or k in ("op", "visit", "role")}


def ok_reply(**fields: Any) -> dict[str, Any]:
    """A successful control reply."""
    return {"ok": True, **fields}


def error_reply(exc: TelemedError) -> dict[str, Any]:
    """A failed control reply: the typed error the asker raises again (:func:`error_from_dict`)."""
    return {"ok": False, "error": exc.to_dict()}
