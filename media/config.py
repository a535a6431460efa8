"""The media worker's settings: the deployment's :class:`~telemed.settings.Settings`
seen from a worker, plus the worker's own timings.

There is one source of configuration for nodes and workers: ``Settings``,
read from the environment once by the entry point (``telemed worker``,
``telemed dev``), or built from arguments (``python -m media``) or directly
(tests). :class:`MediaSettings` parses nothing: it holds that ``Settings``
(``base``) and names the parts a worker uses the way the worker's code reads
them (``addresses`` is ``base.media_addresses``, ...), and adds what no
deployment sets: the worker's id and the timings of its loops, which tests
and benchmarks change.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from telemed.exceptions import ConfigError
from telemed.settings import Secret, Settings, check_port_range


def default_worker_id() -> str:
    """``<host>-<pid>-<random>``: unique per process, readable in logs and Redis."""
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class MediaSettings:
    """Configuration of one media worker process."""

    base: Settings
    """The deployment's settings (Redis, chart folder, ICE servers, the
    ``TELEMED_MEDIA_*`` and speech-to-text variables): the properties below
    read them."""

    worker_id: str = field(default_factory=default_worker_id)
    """This worker's name in Redis (consumer name, leg owner, control stream)."""

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

    stt_gate: bool = True
    """Voice gate before the recogniser (off only to measure what it saves)."""

    stt_backlog: float = 10.0
    """Seconds of one speaker's audio that may wait for the recogniser; when
    more arrives it is dropped (not queued) until half of that has drained."""

    def __post_init__(self) -> None:
        for address in self.addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"not an IP address: {address!r} (TELEMED_MEDIA_ADDRESSES)") from None
        if self.announced_address:
            try:
                ipaddress.ip_address(self.announced_address)
            except ValueError:
                raise ConfigError(
                    f"not an IP address: {self.announced_address!r} (TELEMED_MEDIA_ANNOUNCED_ADDRESS)"
                ) from None
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("TELEMED_TURN_URLS is set but TELEMED_TURN_SECRET is not")
        if self.max_legs < 1:
            raise ConfigError("TELEMED_MEDIA_MAX_LEGS must be at least 1")
        if self.ports is not None:
            check_port_range(self.ports)
            first, last = self.ports
            per_leg = max(1, len(self.addresses))
            if (last - first + 1) < self.max_legs * per_leg:
                raise ConfigError(
                    f"TELEMED_MEDIA_PORTS {first}-{last} holds {last - first + 1} ports, too few for "
                    f"TELEMED_MEDIA_MAX_LEGS={self.max_legs} chart legs on {per_leg} address(es) "
                    f"(one port per leg and address): widen the range or lower TELEMED_MEDIA_MAX_LEGS"
                )
        if self.stt_backlog < 0.1:
            raise ConfigError("stt_backlog must be at least 0.1 s")
        _stt_models(self.base)  # a single model whose language cannot be told is refused now

    def with_(self, **changes: object) -> MediaSettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    # -- the deployment's settings, as the worker names them ----------------------------

    @property
    def redis_url(self) -> str:
        """Shared state: jobs, legs, control requests, Socket.IO fan-out."""
        return self.base.redis_url

    @property
    def recordings_dir(self) -> Path:
        """Root of the charts; a visit's files go to ``<root>/<clinic>/<visit>/``."""
        return self.base.recordings_dir

    @property
    def audit_log(self) -> Path:
        """The audit trail the node writes: a worker records its seals there."""
        return self.base.audit_path()

    @property
    def public_url(self) -> str:
        """The node's public base URL: the chart's FHIR export links its files there."""
        return self.base.public_url

    @property
    def addresses(self) -> tuple[str, ...]:
        """Local addresses offered as ICE host candidates. Empty: every interface
        except loopback (aioice's own choice)."""
        return self.base.media_addresses

    @property
    def announced_address(self) -> str:
        """Public address written into the answer in place of the host addresses."""
        return self.base.media_announced_address

    @property
    def keyframe_interval(self) -> float:
        """How often a recording asks its sender for a keyframe (its seek points); 0: never."""
        return self.base.keyframe_interval

    @property
    def stun_urls(self) -> tuple[str, ...]:
        """STUN servers for the worker's own gathering (aiortc uses the first)."""
        return self.base.stun_urls

    @property
    def turn_urls(self) -> tuple[str, ...]:
        """TURN servers (aiortc uses the first)."""
        return self.base.turn_urls

    @property
    def turn_secret(self) -> Secret:
        """TURN REST shared secret (coturn ``static-auth-secret``)."""
        return self.base.turn_secret

    @property
    def turn_ttl(self) -> float:
        """Lifetime of the TURN credentials the worker mints for itself."""
        return self.base.turn_ttl

    @property
    def ports(self) -> tuple[int, int] | None:
        """The UDP ports chart legs are received on (first, last), one per leg
        and host address; None: any port the system gives."""
        return self.base.media_ports

    @property
    def max_legs(self) -> int:
        """Legs one worker holds at most; it takes no new job while full."""
        return self.base.media_max_legs

    @property
    def stt_model(self) -> str:
        """The older single speech-to-text model setting (folded into :attr:`stt_models`)."""
        return self.base.stt_model

    @property
    def stt_models(self) -> dict[str, str]:
        """Speech-to-text model per language (a Vosk model folder or an installed
        package that ships one): ``TELEMED_STT_MODELS``, plus ``TELEMED_STT_MODEL``
        for the language its name says when that language is not named already.
        Empty: no speech-to-text."""
        return _stt_models(self.base)

    @property
    def captions_to_patient(self) -> bool:
        """Captions to both parties; otherwise only to the doctor's sockets."""
        return self.base.captions_to_patient


def _stt_models(base: Settings) -> dict[str, str]:
    from media.stt_model import language_of

    models = dict(base.stt_models)
    single = base.stt_model.strip()
    if single:
        language = language_of(single)
        if language is None:
            raise ConfigError(
                f"TELEMED_STT_MODEL: cannot tell the language of {single!r} from its name; "
                f"name it in TELEMED_STT_MODELS instead (e.g. TELEMED_STT_MODELS=en={single})"
            )
        models.setdefault(language, single)
    return models
