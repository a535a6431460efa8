"""The ``var/`` folder of ``telemed dev``: who runs on it, its private Redis,
and what the other commands read to find the running server.

- ``dev.lock``: ``flock``-ed by the running ``telemed dev`` for its whole life
  (the kernel drops the lock when the process dies, however it dies), so a
  second one on the same folder is refused. It holds the pid, for the message.
- ``redis.pid``: pid and port of the private ``redis-server`` while it runs. A
  start that finds a Redis of an earlier run still serving ``redis/`` stops it
  first (never two servers appending to the same AOF).
- ``dev.json``: how to reach the running server (Redis URL, public URL, which
  secret), written once it serves and removed when it stops. ``telemed token``,
  ``visit create``, ``clinic set`` and the chart commands use it when
  ``TELEMED_SECRET`` / ``REDIS_URL`` are unset and the lock is held.
- ``secret``: the generated token secret (0600), kept across runs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shlex
import signal
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from telemed.exceptions import ConfigError
from telemed.settings import Secret, Settings

logger = logging.getLogger(__name__)

LOCK = "dev.lock"
REDIS_PID = "redis.pid"
INFO = "dev.json"
SECRET = "secret"
REDIS_DIR = "redis"

#: How long a Redis of an earlier run gets to exit after SIGTERM, then after SIGKILL.
STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0


@dataclass(frozen=True)
class DevInfo:
    """What a running ``telemed dev`` tells the other commands (``dev.json``)."""

    pid: int
    redis_url: str
    public_url: str
    recordings_dir: str
    audit_log: str
    own_secret: bool
    """True: the tokens are signed with ``var/secret``; False: with the
    ``TELEMED_SECRET`` the server was started with (not written anywhere)."""


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _is_redis_on(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is a live ``redis-server`` serving ``directory``: Redis
    changes its working directory to its ``--dir``, and its process title
    (``/proc/<pid>/cmdline``) starts with the binary's name."""
    proc = Path("/proc") / str(pid)
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        cwd = os.readlink(proc / "cwd")
        title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split()
    except (OSError, IndexError):
        return False
    if state in ("Z", "X") or not title or not Path(title[0]).name.startswith("redis-server"):
        return False
    return Path(cwd) == directory.resolve()


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; its parent has not reaped it yet


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class DevFolder:
    """``telemed dev``'s folder (``TELEMED_VAR_DIR``, default ``./var``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock_fd: int | None = None

    @property
    def redis_dir(self) -> Path:
        return self.root / REDIS_DIR

    @property
    def locked(self) -> bool:
        """Whether this object holds the folder's lock."""
        return self._lock_fd is not None

    # -- the lock ------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the folder for this process's life, or refuse with a clear error."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"another `telemed dev` (pid {holder}) is running on {self.root}: stop it first, "
                "or give this one its own TELEMED_VAR_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # drops the lock

    def running(self) -> bool:
        """Whether some process (this one included) holds the folder's lock."""
        try:
            fd = os.open(self.root / LOCK, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # -- the secret ----------------------------------------------------------------------

    def secret(self, create: bool = True) -> Secret:
        """The generated secret, made (0600) on first use when ``create``."""
        path = self.root / SECRET
        if not path.exists():
            if not create:
                raise ConfigError(f"{path} is gone: restart `telemed dev`")
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, secrets.token_urlsafe(48), 0o600)
        return Secret(path.read_text().strip())

    # -- what the CLI reads --------------------------------------------------------------

    def publish(self, info: DevInfo) -> None:
        _write_atomic(self.root / INFO, json.dumps(asdict(info), indent=1) + "\n")

    def unpublish(self) -> None:
        (self.root / INFO).unlink(missing_ok=True)

    def info(self) -> DevInfo | None:
        """The running ``telemed dev``'s details; None when none runs on this folder
        (a ``dev.json`` without the lock held is left from a killed run)."""
        try:
            data = json.loads((self.root / INFO).read_text())
        except (OSError, ValueError):
            return None
        if not self.running():
            return None
        try:
            return DevInfo(**data)
        except TypeError:
            raise ConfigError(f"{self.root / INFO} is not what this version of telemed writes: restart `telemed dev`") from None

    def fill(self, settings: Settings, env: Mapping[str, str]) -> Settings:
        """What ``env`` leaves unset (``TELEMED_SECRET``, ``REDIS_URL``,
        ``TELEMED_PUBLIC_URL``, the recordings and audit paths), taken from the
        ``telemed dev`` running on this folder, if one is."""
        info = self.info()
        if info is None:
            return settings

        def unset(name: str) -> bool:
            return not env.get(name, "").strip()

        changes: dict[str, object] = {}
        if unset("TELEMED_SECRET") and info.own_secret:
            changes["secret"] = self.secret(create=False)
        if unset("REDIS_URL"):
            changes["redis_url"] = info.redis_url
        if unset("TELEMED_PUBLIC_URL"):
            changes["public_url"] = info.public_url
        if unset("TELEMED_RECORDINGS_DIR"):
            changes["recordings_dir"] = Path(info.recordings_dir)
        if unset("TELEMED_AUDIT_LOG") and info.audit_log:
            changes["audit_log"] = Path(info.audit_log)
        return settings.with_(**changes)

    def missing(self, name: str, what: str, *, named: bool) -> str:
        """The error for a command missing ``name``: right next to ``telemed dev``
        and in production (never "generate a new secret", which running nodes
        would refuse). ``named``: the folder came from ``TELEMED_VAR_DIR``."""
        info = self.info()
        if info is not None and name == "TELEMED_SECRET" and not info.own_secret:
            return (
                f"TELEMED_SECRET is not set: the `telemed dev` running on {self.root} (pid {info.pid}) "
                "was started with its own; set the same here"
            )
        where = f"with TELEMED_VAR_DIR={self.root}" if named else "in this folder"
        return f"{name} is not set: start `telemed dev` {where}, or set it to {what}"

    def exports(self, settings: Settings, own_secret: bool) -> str:
        """The banner's lines for running the other commands from elsewhere."""
        secret = (
            f'  export TELEMED_SECRET="$(cat {shlex.quote(str((self.root / SECRET).resolve()))})"\n'
            if own_secret
            else "  # TELEMED_SECRET: the one this server was started with\n"
        )
        return (
            f"Commands run here (var folder {self.root}) use this server by themselves; elsewhere first:\n"
            f"{secret}"
            f"  export REDIS_URL={shlex.quote(settings.redis_url)}\n"
            f"  export TELEMED_PUBLIC_URL={shlex.quote(settings.public_url)}\n"
        )

    # -- the private Redis ---------------------------------------------------------------

    def record_redis(self, pid: int, port: int) -> None:
        _write_atomic(self.root / REDIS_PID, f"{pid} {port}\n")

    def forget_redis(self) -> None:
        (self.root / REDIS_PID).unlink(missing_ok=True)

    def stop_stale_redis(self) -> None:
        """Stop every ``redis-server`` still serving ``redis/`` (an earlier run's,
        killed before it could stop it): the recorded one, and any other found in
        ``/proc``. SIGTERM first (Redis flushes its AOF), SIGKILL if it hangs.
        Call it holding the lock, before starting a new one."""
        candidates: set[int] = set()
        try:
            candidates.add(int((self.root / REDIS_PID).read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
        candidates.update(int(p.name) for p in Path("/proc").glob("[0-9]*") if p.name.isdigit())
        for pid in sorted(candidates):
            if pid == os.getpid() or not _is_redis_on(pid, self.redis_dir):
                continue
            logger.warning("a Redis of an earlier run (pid %s) still serves %s: stopping it", pid, self.redis_dir)
            for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, KILL_TIMEOUT)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                except PermissionError:
                    raise ConfigError(f"a redis-server of another user (pid {pid}) serves {self.redis_dir}") from None
                if _wait_gone(pid, timeout):
                    break
            else:
                raise ConfigError(f"the redis-server of an earlier run (pid {pid}) on {self.redis_dir} does not stop")
        self.forget_redis()
