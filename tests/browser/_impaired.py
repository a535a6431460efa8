"""The impaired-network test bed for browser calls: a real coturn
(tests/turn_server.py) with an impairing UDP relay (tests/netem.py) in front
of it, both inside the browser tests' private network namespace, and a
``telemed dev`` node whose only TURN server is the relay, with
``TELEMED_ICE_POLICY=relay``: the pages' calls and chart legs and the media
worker's side of the legs use relayed candidates only, so every media packet
of every party crosses the relay, both ways. Signaling (the node's HTTP and
sockets, TCP) does not: blocking UDP leaves the pages connected to the node.

::

    pages ──UDP── relay (delay, jitter, loss, rate; or blocked) ──UDP── coturn ⇄ coturn ──┐
    worker ─UDP── relay ──────────────────────────────────────────UDP── coturn ⇄ ─────────┘

The relay runs as a process of its own (``python -m tests.netem``) so the test
process's Playwright loop never delays its packets; :meth:`Impaired.set_profile`
switches every path at run time (good / 3g / bad / blocked = drop everything,
see :data:`tests.netem.PROFILES`). Each party's path to coturn is impaired
once each way, so a page-to-page packet crosses the relay twice (the 3g
profile's 150 ms each way makes about 300 ms from one page to the other).

The namespace is the node's, made when it starts, with only loopback: the
ports the node is told (the relay's) are chosen before it exists, below the
kernel's ephemeral range, where nothing in a fresh namespace takes them.

Use it from tests/browser (import ``impaired_fixture, impaired_browser_fixture,
impaired_ui_fixture`` into the test module, then ask for ``impaired``,
``impaired_browser``, ``impaired_ui``: one test bed per module) or from bench/
(:func:`impaired_node`, a context manager).
"""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Browser, Playwright

from telemed.redis_server import _die_with_parent
from telemed.settings import Secret
from tests.browser import _netns
from tests.browser.conftest import ARGS, REPO, UI, Node, dev_node
from tests.netem import PROFILES
from tests.turn_server import TurnServer, free_udp_range

#: Ports of coturn's relayed addresses.
TURN_RELAY_PORTS = 40


class RelayProcess:
    """``python -m tests.netem`` in the namespace of ``netns_pid`` (None: the
    host's), on 127.0.0.1:``port``, relaying to ``upstream``; driven through
    its standard input. Dies with the test process."""

    def __init__(self, port: int, upstream: tuple[str, int], *, profile: str = "good", seed: int = 0,
                 netns_pid: int | None = None) -> None:
        self.port = port
        self.upstream = upstream
        self.profile = profile
        self.seed = seed
        self.netns_pid = netns_pid
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()

    def start(self, timeout: float = 20) -> RelayProcess:
        argv = [sys.executable, "-m", "tests.netem", "--port", str(self.port),
                "--upstream", f"{self.upstream[0]}:{self.upstream[1]}", "--profile", self.profile, "--seed", str(self.seed)]
        if self.netns_pid is not None:
            argv = _netns.command("enter", str(self.netns_pid)) + argv
        self.process = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        start_new_session=True, preexec_fn=_die_with_parent())
        threading.Thread(target=self._read, name="netem-relay-out", daemon=True).start()
        first = self._answer(timeout)
        if first != f"listening {self.port}":
            self.stop()
            raise RuntimeError(f"the impairing relay did not start on port {self.port}: {first!r}")
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _answer(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the impairing relay did not answer within {timeout:.0f} s") from None

    def command(self, line: str, timeout: float = 10) -> str:
        """Send one command; its answer line."""
        with self._lock:
            assert self.process is not None and self.process.stdin is not None, "the relay is not running"
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            answer = self._answer(timeout)
        if answer is None or answer.startswith("error"):
            raise RuntimeError(f"the impairing relay refused {line!r}: {answer!r}")
        return answer

    def set_profile(self, name: str) -> None:
        """Every path (and every new one) impaired as ``name`` says, from now on."""
        if name not in PROFILES:
            raise ValueError(f"no profile {name!r}: {', '.join(PROFILES)}")
        assert self.command(f"profile {name}") == f"ok {name}"
        self.profile = name

    def match(self, text: str, name: str) -> None:
        """Paths of clients whose TURN username contains ``text`` (a user id:
        ``<expiry>:<user>``) get profile ``name`` instead of the default."""
        if name not in PROFILES or not text or any(c.isspace() for c in text):
            raise ValueError(f"match {text!r} {name!r}: a text without spaces and one of {', '.join(PROFILES)}")
        assert self.command(f"match {text} {name}") == f"ok {text} {name}"

    def totals(self) -> dict[str, Any]:
        """What crossed the relay so far: ``{"up": {...}, "down": {...}, "profile"}``
        (up: from the clients to coturn; counters of :class:`tests.netem.LinkStats`)."""
        doc: dict[str, Any] = json.loads(self.command("totals"))
        return doc

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the relay's end of input: it closes and exits
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class Impaired:
    """The running test bed."""

    node: Node
    turn: TurnServer
    relay: RelayProcess

    def set_profile(self, name: str) -> None:
        """good / 3g / bad / blocked (or clean: nothing added), for every party's path, now."""
        self.relay.set_profile(name)

    def match(self, text: str, name: str) -> None:
        """A profile of its own for the paths of the clients whose TURN user
        contains ``text`` (e.g. a doctor's token ``sub``; ``:worker-`` for the
        media worker), so one party can be on a weak network and not the other."""
        self.relay.match(text, name)

    @property
    def profile(self) -> str:
        return self.relay.profile

    def totals(self) -> dict[str, Any]:
        return self.relay.totals()


class _Folders:
    """What :func:`dev_node` needs of pytest's ``tmp_path_factory``, for bench/."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=name + "-", dir=self.root))


@contextlib.contextmanager
def impaired_node(chromium: str, folders: pytest.TempPathFactory | Path, *, profile: str = "good", seed: int = 0,
                  name: str = "impaired-node", **settings: str) -> Iterator[Impaired]:
    """Start the test bed (``folders``: pytest's ``tmp_path_factory``, or a
    folder to work in); ``settings``: more ``TELEMED_*`` variables of the node."""
    factory = cast(pytest.TempPathFactory, _Folders(folders) if isinstance(folders, Path) else folders)
    secret = Secret(secrets.token_urlsafe(32))
    first, _ = free_udp_range(2 + TURN_RELAY_PORTS)
    relay_port, turn_port = first, first + 1
    env = {
        "TELEMED_TURN_URLS": f"turn:127.0.0.1:{relay_port}?transport=udp",
        "TELEMED_TURN_SECRET": secret.reveal(),
        "TELEMED_TURN_TTL": "1h",
        "TELEMED_ICE_POLICY": "relay",
        **settings,
    }
    # ``helpers`` (the relay, then coturn) are stopped after the node: its worker's
    # legs release their TURN allocations on the way out, and with coturn gone
    # each release waits out STUN's retransmissions (about 30 s) until the node
    # is killed. (coturn and the relay keep the node's namespace alive meanwhile.)
    with contextlib.ExitStack() as helpers, dev_node(chromium, factory, name=name, **env) as node:
        turn = TurnServer(factory.mktemp("coturn"), secret, port=turn_port, netns_pid=node.netns_pid)
        turn.relay_range = (first + 2, first + 1 + TURN_RELAY_PORTS)
        turn.start()
        helpers.callback(turn.stop)
        relay = RelayProcess(relay_port, ("127.0.0.1", turn_port), profile=profile, seed=seed,
                             netns_pid=node.netns_pid).start()
        helpers.callback(relay.stop)
        try:
            yield Impaired(node, turn, relay)
        finally:
            with contextlib.suppress(Exception):
                relay.set_profile("good")  # a test may have left the paths blocked


# -- pytest fixtures (import them into a test module) ----------------------------------------------


@pytest.fixture(scope="module", name="impaired")
def impaired_fixture(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Impaired]:
    """The test bed for the module's tests (one node, coturn and relay)."""
    with impaired_node(chromium, tmp_path_factory) as made:
        yield made


@pytest.fixture(scope="module", name="impaired_browser")
def impaired_browser_fixture(playwright: Playwright, impaired: Impaired) -> Iterator[Browser]:
    """Chromium in the test bed's namespace."""
    b = playwright.chromium.launch(executable_path=impaired.node.chromium, args=ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture(name="impaired_ui")
def impaired_ui_fixture(impaired: Impaired, impaired_browser: Browser, request: pytest.FixtureRequest) -> Iterator[UI]:
    """Pages on the test bed's node; every test starts on the good profile."""
    impaired.set_profile("good")
    made = UI(node=impaired.node, browser=impaired_browser, request=request)
    yield made
    made.close()
