"""The checks a chart-leg offer must pass before any peer connection is made
for it (the job itself, and its field checks, are
:class:`telemed.media_protocol.Job`).
"""

from __future__ import annotations

import ipaddress

from aiortc import sdp as aiortc_sdp

from telemed.exceptions import BadRequest

#: Candidates per media section; a browser offers a handful.
MAX_CANDIDATES = 32

#: What the worker records; an offer without them is refused rather than
#: negotiated to a codec the recorder cannot remux.
CODECS = {"audio": "opus", "video": "vp8"}


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
