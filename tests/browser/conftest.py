"""Fixtures of the browser tests: a real ``telemed dev`` node (private Redis,
in-process media worker offering 127.0.0.1) and Debian's Chromium driven by
Playwright, with fake camera and microphone.

When the tests run as root, the node and every browser share a private
network namespace with only loopback (see :mod:`tests.browser._netns`).
Every browser test is marked ``browser`` (``pytest -m "not browser"`` leaves
them out). They are skipped, with the reason, only when Chromium is missing.

Environment: ``TELEMED_TEST_CHROMIUM`` (default ``/usr/bin/chromium``);
``TELEMED_TEST_NETNS=0`` keeps everything in the host's network. The node's
log and the screenshots go to ``test-artifacts/`` (screenshots of every page
open in a failed test to ``test-artifacts/failures/<test>/``). Every screen
``shoot()`` photographs is audited with axe-core (WCAG 2.1 A/AA, see
:mod:`tests.browser._axe`); pages prefer English unless a test asks otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from telemed.settings import Secret
from telemed.tokens import Role, mint, new_id
from tests.browser import _axe, _netns
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path(os.environ.get("TELEMED_TEST_CHROMIUM", "/usr/bin/chromium"))
HERE = Path(__file__).resolve().parent

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

#: Chromium's switches: fake devices (and the permission prompt answered "allow"),
#: loopback ICE candidates, nothing phoning home.
ARGS = [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

#: Waits for something the server or the other page must do (generous: a
#: loaded 2-core machine runs three pages, two calls and the worker at once).
WAIT_MS = 30_000

expect.set_options(timeout=WAIT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium through the web pages (tests/browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures know a test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# -- the node under test -------------------------------------------------------------


@dataclass
class Node:
    """A running ``telemed dev``; mints tokens with its secret and calls its HTTP API."""

    url: str
    secret: Secret
    recordings: Path
    proc: subprocess.Popen[bytes]
    netns_pid: int | None
    chromium: str
    log: Path

    def token(self, role: Role, clinic: str, *, name: str | None = None, visit: str | None = None, ttl: float = 3600) -> str:
        return mint(self.secret, role=role, name=name or f"{role.value.title()} Test", clinic=clinic, visit=visit, ttl=ttl)[0]

    def staff_link(self, token: str) -> str:
        return f"{self.url}/staff#t={token}"

    def patient_link(self, token: str) -> str:
        return f"{self.url}/visit#t={token}"

    def post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        """POST JSON to the node (from inside its namespace, when it has one)."""

        def send() -> dict[str, Any]:
            request = urllib.request.Request(
                self.url + path,
                data=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=20) as reply:
                result: dict[str, Any] = json.load(reply)
                return result

        return _netns.call_in(self.netns_pid, send)

    def create_visit(self, clinic: str, patient_name: str, reason: str = "") -> tuple[str, str]:
        """A new visit of ``clinic``; returns (visit id, patient link)."""
        nurse = self.token(Role.NURSE, clinic)
        created = self.post("/api/visits", {"clinic": clinic, "patient_name": patient_name, "reason": reason}, nurse)
        return created["visit_id"], created["patient_link"]

    def redis_url(self) -> str:
        """The node's private Redis (``telemed dev`` logs its port)."""
        found = re.search(rb"private Redis on port (\d+)", self.log.read_bytes())
        assert found, "telemed dev did not log its Redis port"
        return f"redis://127.0.0.1:{int(found.group(1))}/0"

    def close_leg(self, visit_id: str, role: str, reason: str) -> None:
        """Have the worker close a participant's chart leg, as when it loses one."""
        from telemed.exceptions import Unavailable
        from telemed.media_protocol import MediaClient

        async def close() -> None:
            client = aioredis.from_url(self.redis_url(), decode_responses=True)
            try:
                await MediaClient(client).close_leg(visit_id, role, reason=reason)
            except Unavailable:
                pass  # the worker's reply was late (a loaded machine); the caller checks the effect
            finally:
                await client.aclose()

        _netns.call_in(self.netns_pid, lambda: asyncio.run(close()))

    def chart(self, clinic: str, visit_id: str) -> Path:
        return self.recordings / clinic / visit_id

    def recordings_index(self, clinic: str, visit_id: str) -> dict[str, Any]:
        path = self.chart(clinic, visit_id) / "recordings.json"
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
            return doc
        except (OSError, ValueError):
            return {}

    def wait_index(self, clinic: str, visit_id: str, ok: Any, timeout: float = 40) -> dict[str, Any]:
        """Poll the visit's recordings.json until ``ok(doc)`` (files are written by the worker)."""
        deadline = time.monotonic() + timeout
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline:
            doc = self.recordings_index(clinic, visit_id)
            if doc and ok(doc):
                return doc
            time.sleep(0.25)
        raise AssertionError(f"recordings.json never got there: {json.dumps(doc)[:2000]}")


@pytest.fixture(scope="package")
def chromium() -> str:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium fonts-liberation), as `make test` does")
    return str(CHROMIUM)


def _chromium_wrapper(folder: Path, pid: int, chromium: str) -> str:
    """An executable that starts Chromium inside the node's network namespace
    (Playwright launches it and talks to it over pipes, which namespaces do not affect)."""
    path = folder / "chromium-in-netns"
    argv = " ".join(f"'{a}'" for a in _netns.command("enter", str(pid)))
    path.write_text(f"#!/bin/sh\nexec {argv} '{chromium}' \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture(scope="package")
def node(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """``telemed dev`` on a free port, with its own Redis, secret and chart folder."""
    with dev_node(chromium, tmp_path_factory) as started:
        yield started


@contextlib.contextmanager
def dev_node(chromium: str, tmp_path_factory: pytest.TempPathFactory, name: str = "browser-node", **settings: str) -> Iterator[Node]:
    """Start ``telemed dev`` (``settings``: more ``TELEMED_*`` variables); stop it after."""
    root = tmp_path_factory.mktemp("telemed-dev")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
    env.update(
        TELEMED_SECRET=secret,
        TELEMED_VAR_DIR=str(root / "var"),
        TELEMED_RECORDINGS_DIR=str(root / "recordings"),
        TELEMED_MEDIA_ADDRESSES="127.0.0.1",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    use_netns = os.environ.get("TELEMED_TEST_NETNS", "1") != "0" and _netns.available()
    argv = [sys.executable, "-m", "telemed.cli", "dev", "--port", str(port)]
    if use_netns:
        argv = _netns.command("new") + argv
    log_path = ARTIFACTS / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if re.match(rb"\s+walk-in\s", line):
                ready.set()

    reader = threading.Thread(target=drain, name="telemed-dev-log", daemon=True)
    reader.start()
    if not ready.wait(90):
        proc.kill()
        proc.wait()
        reader.join(5)
        log.close()
        raise RuntimeError(f"telemed dev did not start; see {log_path}")
    netns_pid = proc.pid if use_netns else None
    yield Node(
        url=f"http://127.0.0.1:{port}",
        secret=Secret(secret),
        recordings=root / "recordings",
        proc=proc,
        netns_pid=netns_pid,
        chromium=_chromium_wrapper(root, proc.pid, chromium) if use_netns else chromium,
        log=log_path,
    )
    proc.send_signal(signal.SIGINT)  # dev finishes the recordings and stops its Redis
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(5)
    proc.stdout.close()
    log.close()


# -- browsers ------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright, node: Node) -> Iterator[Browser]:
    """One Chromium for the package (Playwright gives it a fresh, temporary
    user-data-dir; each test works in its own contexts)."""
    b = playwright.chromium.launch(executable_path=node.chromium, args=ARGS, headless=True)
    yield b
    b.close()


#: Records every RTCPeerConnection a page makes, so tests can read getStats().
PC_SPY = """
window.__pcs = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};
"""

#: Console lines that are expected: refused sockets, the client's missing source map.
EXPECTED_CONSOLE = re.compile(r"WebSocket connection|socket\.io\.esm\.min\.js\.map")


@dataclass
class UI:
    """Browser contexts and pages of one test: watched for page errors,
    console errors and off-site requests; if the test fails, each page's
    screenshot and console go to ``test-artifacts/failures/<test>/``."""

    node: Node
    browser: Browser
    request: pytest.FixtureRequest
    contexts: list[BrowserContext] = field(default_factory=list)
    pages: dict[str, Page] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    console: dict[str, list[str]] = field(default_factory=dict)

    def page(self, name: str, *, phone: bool = False, browser: Browser | None = None, **options: Any) -> Page:
        """A page in a context of its own. Its browser prefers English
        (``locale="en-US"``) unless ``locale=`` says otherwise: the pages follow
        the browser's language, and the tests read English text."""
        options = {"locale": "en-US", **options}
        if phone:
            options = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2, **options}
        else:
            options = {"viewport": DESKTOP, **options}
        ctx = (browser or self.browser).new_context(**options)
        ctx.set_default_timeout(WAIT_MS)
        ctx.add_init_script(PC_SPY)
        self.contexts.append(ctx)
        page = ctx.new_page()
        self.watch(page, name)
        self.pages[name] = page
        return page

    def watch(self, page: Page, name: str) -> None:
        origin = self.node.url
        lines = self.console.setdefault(name, [])

        def console(message: Any) -> None:
            lines.append(f"{time.strftime('%H:%M:%S')} {message.type}: {message.text}")
            if message.type == "error" and not EXPECTED_CONSOLE.search(message.text):
                if not any(p.search(message.text) for p in self.allowed):
                    self.problems.append(f"{name} console: {message.text}")

        def off_site(request: Any) -> None:
            if not request.url.startswith((origin, "data:", "blob:", "about:")):
                self.problems.append(f"{name} off-site request: {request.url}")

        page.on("pageerror", lambda e: self.problems.append(f"{name} page error: {e}"))
        page.on("console", console)
        page.on("request", off_site)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)

    def close(self) -> None:
        report = getattr(self.request.node, "report_call", None)
        if report is not None and report.failed:
            folder = ARTIFACTS / "failures" / re.sub(r"[^\w.-]+", "_", self.request.node.name)
            folder.mkdir(parents=True, exist_ok=True)
            for name, page in self.pages.items():
                try:
                    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, timeout=5000)
                except Exception:
                    pass
            for name, lines in self.console.items():
                (folder / f"{name}.console.txt").write_text("\n".join(lines) + "\n")
            (folder / "problems.txt").write_text("\n".join(self.problems) + "\n")
        for ctx in self.contexts:
            try:
                ctx.close()
            except Exception:
                pass


@pytest.fixture
def ui(node: Node, browser: Browser, request: pytest.FixtureRequest) -> Iterator[UI]:
    made = UI(node=node, browser=browser, request=request)
    yield made
    made.close()


@pytest.fixture
def launch(playwright: Playwright, node: Node) -> Iterator[Any]:
    """Another Chromium with other switches (closed after the test):
    ``launch(drop=[...], add=[...])``."""
    launched: list[Browser] = []

    def start(*, drop: tuple[str, ...] = (), add: tuple[str, ...] = ()) -> Browser:
        args = [a for a in ARGS if a not in drop] + list(add)
        b = playwright.chromium.launch(executable_path=node.chromium, args=args, headless=True)
        launched.append(b)
        return b

    yield start
    for b in launched:
        b.close()


@pytest.fixture
def clinic() -> str:
    """A clinic of the test's own, so tests never see each other's queues."""
    return "c" + new_id()[:12]


def shoot(page: Page, name: str, sizes: tuple[str, ...] = ("phone", "desktop")) -> None:
    """Full-page screenshots at phone and desktop sizes under test-artifacts/screenshots/,
    and the accessibility audit (axe-core, WCAG 2.1 A/AA) at each size: the test
    fails listing every violation (axe's JSON goes to test-artifacts/axe/)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    found: list[str] = []
    for size in sizes:
        page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True, animations="disabled")
        found.append(check_a11y(page, f"{name}-{size}"))
    if original:
        page.set_viewport_size(original)
    problems = "\n".join(f for f in found if f)
    assert not problems, problems


def check_a11y(page: Page, shot: str) -> str:
    """axe-core's WCAG 2.1 A/AA violations of the page as it is, in words ("" if none)."""
    return _axe.audit(page, f'"{shot}" ({page.url.split("#")[0]})', ARTIFACTS / "axe" / f"{shot}.json")
