"""A chart-leg job as the node puts it on the stream, and the checks an offer
must pass before any peer connection is made for it.

The worker treats every field as hostile: the node checked the caller, but a
bug there (or a hand-written job) must still get a clear error and leave
nothing behind.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from aiortc import sdp as aiortc_sdp

from media.chart import safe_id
from telemed.exceptions import BadRequest

#: Largest offer accepted (the same limit as call signaling).
MAX_SDP = 64 * 1024

#: Candidates per media section; a browser offers a handful.
MAX_CANDIDATES = 32

#: The participants who send a chart leg.
ROLES = frozenset({"patient", "doctor"})

#: What the worker records; an offer without them is refused rather than
#: negotiated to a codec the recorder cannot remux.
CODECS = {"audio": "opus", "video": "vp8"}


@dataclass(frozen=True)
class Job:
    """One offer for a chart leg."""

    id: str
    """Chosen by the node; the answer goes to Socket.IO room ``leg:<id>``."""

    visit: str
    clinic: str

    role: str
    """``patient`` or ``doctor``: whose camera and microphone."""

    sub: str
    """The sender's subject (checked against the visit's record)."""

    sdp: str
    """The browser's offer, with its ICE candidates (gathering complete)."""

    consent: bool | None = None
    """Consent to recording as the node saw it; the visit's record in Redis decides."""

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Job:
        """Validate a job's stream fields; raises :class:`BadRequest`."""
        def get(name: str) -> str:
            value = fields.get(name)
            if not isinstance(value, str) or not value:
                raise BadRequest(f"job: {name} is missing", fields=[name])
            return value

        role = get("role")
        if role not in ROLES:
            raise BadRequest("job: role must be patient or doctor", fields=["role"])
        sdp = get("sdp")
        if len(sdp.encode("utf-8", "replace")) > MAX_SDP:
            raise BadRequest(f"offer: at most {MAX_SDP} bytes", fields=["sdp"])
        consent = fields.get("consent")
        return cls(
            id=safe_id(get("job"), "job"),
            visit=safe_id(get("visit"), "visit"),
            clinic=safe_id(get("clinic"), "clinic"),
            role=role,
            sub=safe_id(get("sub"), "sub"),
            sdp=sdp,
            consent=None if consent in (None, "") else consent in ("1", "true", "yes"),
        )


def _usable(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.endswith(".local")


def check_offer(sdp: str) -> set[str]:
    """Parse and vet an offer; returns the kinds it sends (``{"audio", "video"}``
    or one of them). Raises :class:`BadRequest` with what is wrong."""
    if "\x00" in sdp:
        raise BadRequest("offer: not an SDP (NUL byte)", fields=["sdp"])
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises anything from asserts to IndexError
        raise BadRequest(f"offer: not a valid SDP ({type(exc).__name__})", fields=["sdp"]) from None
    kinds: set[str] = set()
    for media in description.media:
        if media.kind not in CODECS:
            raise BadRequest(f"offer: a chart leg carries audio and video only, not {media.kind}", fields=["sdp"])
        if media.kind in kinds:
            raise BadRequest(f"offer: more than one {media.kind} section", fields=["sdp"])
        if media.direction not in ("sendonly", "sendrecv"):
            raise BadRequest(f"offer: the {media.kind} section does not send", fields=["sdp"])
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise BadRequest("offer: ICE credentials are missing", fields=["sdp"])
        if not media.dtls or not media.dtls.fingerprints:
            raise BadRequest("offer: DTLS fingerprint is missing", fields=["sdp"])
        if not media.rtcp_mux:
            raise BadRequest("offer: RTCP multiplexing is required", fields=["sdp"])
        if len(media.ice_candidates) > MAX_CANDIDATES:
            raise BadRequest(f"offer: more than {MAX_CANDIDATES} candidates", fields=["sdp"])
        if media.ice_candidates_complete and not any(_usable(c.ip) for c in media.ice_candidates):
            # aioice would drop the section's only component and gather nothing for it.
            raise BadRequest("offer: no usable ICE candidate (an IP address or a .local name)", fields=["sdp"])
        if not any(c.name.lower() == CODECS[media.kind] for c in media.rtp.codecs):
            raise BadRequest(f"offer: {media.kind} must offer {CODECS[media.kind].upper()}", fields=["sdp"])
        kinds.add(media.kind)
    if not kinds:
        raise BadRequest("offer: no audio or video section", fields=["sdp"])
    return kinds
