"""A real coturn (Debian package ``coturn``) for the tests, on loopback.

It runs in the foreground (``turnserver`` never daemonizes unless told), with
its files (log, pid file, the SQLite user database it insists on opening) in
a private folder, and dies with the test process (``PR_SET_PDEATHSIG``, as
:class:`telemed.redis_server.RedisServer` does). Authentication is the TURN
REST scheme the project mints credentials for: ``use-auth-secret`` with
``static-auth-secret`` = the deployment's ``TELEMED_TURN_SECRET``.

Loopback peers are allowed (``--allow-loopback-peers``): every party of a test
call is on 127.0.0.1, which coturn refuses as a peer by default.

With ``netns_pid`` it runs in that process's network namespace (the browser
tests' private one, :mod:`tests.browser._netns`), and is probed from there.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from telemed.redis_server import _die_with_parent, free_port
from telemed.settings import Secret
from tests.browser import _netns

#: Where coturn logs one finished allocation's traffic (received/sent packets and bytes).
USAGE = re.compile(r"(peer )?usage: realm=<[^>]*>, username=<([^>]*)>, rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


def free_udp_range(size: int, low: int = 20000, high: int = 30000) -> tuple[int, int]:
    """``size`` consecutive UDP ports on loopback that are free now, below the
    kernel's ephemeral range (so nothing else takes them meanwhile by chance)."""
    import random

    for _ in range(200):
        first = random.randrange(low, high - size)
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first, first + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {size} free consecutive UDP ports between {low} and {high}")


class TurnServer:
    """``turnserver`` on 127.0.0.1: one listening port (UDP and TCP), relays
    on a private range of ports."""

    def __init__(self, directory: Path, secret: Secret, *, realm: str = "telemed.test", relay_ports: int = 40,
                 port: int | None = None, netns_pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.secret = secret
        self.realm = realm
        self.netns_pid = netns_pid
        self.port = port or free_port()
        self.relay_range = free_udp_range(relay_ports)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``turn:`` URL clients use (UDP)."""
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def log(self) -> Path:
        return self.directory / "turnserver.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 10.0) -> TurnServer:
        binary = shutil.which("turnserver")
        if binary is None:
            raise RuntimeError("coturn is not installed (apt-get install coturn)")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "-n",  # no configuration file: everything is here
            "--no-cli",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}",
            f"--min-port={self.relay_range[0]}",
            f"--max-port={self.relay_range[1]}",
            "--use-auth-secret",
            f"--static-auth-secret={self.secret.reveal()}",
            f"--realm={self.realm}",
            "--allow-loopback-peers",
            "--no-multicast-peers",
            "--no-tls",
            "--no-dtls",
            "--no-tcp-relay",
            f"--log-file={self.log}",
            "--simple-log",
            "--verbose",
            f"--pidfile={self.directory / 'turnserver.pid'}",
            f"--userdb={self.directory / 'turndb'}",
        ]
        if self.netns_pid is not None:
            args = _netns.command("enter", str(self.netns_pid)) + args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=_die_with_parent())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("turnserver exited at start:\n" + self.log_text()[-2000:])
            if _netns.call_in(self.netns_pid, self._answers):
                return self
        self.stop()
        raise RuntimeError(f"turnserver did not answer on port {self.port} within {timeout:.0f}s")

    def _answers(self) -> bool:
        """A STUN binding request to the listening port gets a response."""
        # type 0x0001 (binding request), length 0, the magic cookie, a transaction id
        request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"telemed-test"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(request, ("127.0.0.1", self.port))
                data = s.recv(2048)
            except OSError:
                return False
        return data[:2] == b"\x01\x01" and data[8:20] == b"telemed-test"

    def usage(self) -> list[tuple[str, str, int, int, int, int]]:
        """Per finished allocation, as coturn logged it: (kind, username, packets
        received, bytes received, packets sent, bytes sent). Kind ``client`` is
        the traffic between the client and coturn, ``peer`` the relayed
        traffic between coturn and the other side."""
        return [("peer" if m[1] else "client", m[2], int(m[3]), int(m[4]), int(m[5]), int(m[6]))
                for m in USAGE.finditer(self.log_text())]

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
