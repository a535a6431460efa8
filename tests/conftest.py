"""Fixtures: a real Redis server started by the tests, real nodes on free ports."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from media.config import MediaSettings
from media.worker import Worker
from signaling.app import make_app
from telemed.redis_server import RedisServer
from telemed.settings import Secret, Settings
from telemed.tokens import Role, mint
from tests.peer import Peer

SECRET = Secret("test-secret-" + "x" * 40)
ORIGIN = "http://clinic.test"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The tests' Redis. It fsyncs its log every second (the default), not on
    every write: no test stops or kills this server (those that do start their
    own, e.g. test_redis_restart.py with ``appendfsync="always"``), and an fsync
    per write cost about 3 ms, which made the Redis-bound tests 2-2.5x slower."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the tests' Redis, flushed before each test."""
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_server: RedisServer, tmp_path: Path) -> Settings:
    return Settings(
        secret=SECRET,
        redis_url=redis_server.url,
        public_url="http://clinic.test",
        allowed_origins=(ORIGIN,),
        recordings_dir=tmp_path / "recordings",
        grace_period=120.0,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NodeFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_node(redis: aioredis.Redis, settings: Settings) -> AsyncIterator[NodeFactory]:
    """Start real nodes (aiohttp on a free port); returns their base URL."""
    runners: list[web.AppRunner] = []

    async def start(s: Settings | None = None) -> str:
        app = make_app(s or settings)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture
async def node(start_node: NodeFactory) -> str:
    return await start_node()


WorkerFactory = Callable[..., Awaitable[Worker]]


@pytest.fixture
async def start_worker(redis: aioredis.Redis, redis_server: RedisServer, settings: Settings) -> AsyncIterator[WorkerFactory]:
    """Start in-process media workers on the test's Redis and chart folder,
    offering loopback; ``start_worker(**changes)`` changes their settings
    (a worker's own timings, or fields of the tests' :class:`Settings`)."""
    started: list[Worker] = []
    own = {f.name for f in dataclasses.fields(MediaSettings)}

    async def start(**changes: Any) -> Worker:
        base = settings.with_(media_addresses=("127.0.0.1",), **{k: v for k, v in changes.items() if k not in own})
        w = Worker(MediaSettings(base, **{k: v for k, v in changes.items() if k in own}))
        await w.start()
        started.append(w)
        return w

    yield start
    for w in reversed(started):
        await w.stop()


@pytest.fixture
async def worker(start_worker: WorkerFactory) -> Worker:
    return await start_worker()


def token(role: Role, clinic: str = "c1", *, name: str | None = None, visit: str | None = None, sub: str | None = None, ttl: float = 3600) -> str:
    return mint(SECRET, role=role, name=name or role.value.title(), clinic=clinic, visit=visit, sub=sub, ttl=ttl)[0]


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    """Peers registered here are disconnected after the test."""
    made: list[Peer] = []
    yield made
    for p in made:
        if p.sio.connected:
            await p.close()


@pytest.fixture
def connect(peers: list[Peer]) -> Callable[..., Awaitable[Peer]]:
    async def make(url: str, tok: str, **kw: object) -> Peer:
        if "namespaces" not in kw:
            kw["namespaces"] = namespaces_for(tok)
        peer = Peer(url, tok, origin=ORIGIN, **kw)  # type: ignore[arg-type]
        peers.append(peer)
        return await peer.connect()

    return make


async def create_visit(url: str, staff_token: str, **body: object) -> tuple[str, str]:
    """POST /api/visits; returns (visit_id, patient token)."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/visits", json=body, headers={"Authorization": f"Bearer {staff_token}"}) as r:
            assert r.status == 201, await r.text()
            data = await r.json()
    return data["visit_id"], data["patient_link"].split("#t=", 1)[1]


async def http(method: str, url: str, tok: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One HTTP request with a bearer token (or none): (status, JSON body)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, json=body, headers=headers) as r:
            return r.status, await r.json()


def namespaces_for(tok: str) -> list[str]:
    """The namespaces a role may open: staff other than doctors have no call."""
    import jwt

    role = jwt.decode(tok, options={"verify_signature": False})["role"]
    return {"patient": ["/queue", "/chat", "/call", "/media"], "doctor": ["/queue", "/chat", "/call", "/media"],
            "nurse": ["/queue", "/chat"], "admin": ["/queue"]}[role]


class NodeProcess:
    """``telemed serve`` as a real child process (so a test can SIGKILL it)."""

    def __init__(self, redis_url: str, port: int | None = None, **env: str) -> None:
        import os
        import subprocess
        import sys

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemed.cli", "serve"],
            env={
                **clean,
                "TELEMED_SECRET": SECRET.reveal(),
                "REDIS_URL": redis_url,
                "TELEMED_PORT": str(self.port),
                "TELEMED_PUBLIC_URL": ORIGIN,
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self, timeout: float = 15) -> NodeProcess:
        import asyncio
        import time

        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, "the node exited"
                try:
                    if await get_status(http, f"{self.url}/readyz") == 200:
                        return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("node not ready")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.kill()


@pytest.fixture
def node_processes(redis: aioredis.Redis, redis_server: RedisServer) -> Iterator[Callable[..., NodeProcess]]:
    made: list[NodeProcess] = []

    def start(**env: str) -> NodeProcess:
        made.append(NodeProcess(redis_server.url, **env))
        return made[-1]

    yield start
    for n in made:
        n.stop()


async def get_status(http, url: str) -> int:  # type: ignore[no-untyped-def]
    """GET and release the connection; the status code."""
    async with http.get(url) as r:
        await r.read()
        return int(r.status)
