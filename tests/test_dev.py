"""``telemed dev`` as users run it (real processes): a taken port, signals in
every phase, SIGKILL, a second one on the same ``var/``, a Redis an earlier
run left behind, and the other commands finding it with no environment."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
import redis as redis_sync

from telemed import cli
from telemed.dev import DevFolder
from telemed.exceptions import ConfigError
from telemed.redis_server import RedisServer, free_port
from telemed.settings import Secret, Settings
from telemed.tokens import verify

TELEMED = [sys.executable, "-X", "faulthandler", "-m", "telemed.cli"]  # SIGABRT shows where it hangs

#: How long anything here may take (a dev start is ~1-2 s).
PATIENCE = 20.0


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any telemed setting (as in a fresh terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
    return {**env, **extra}


def wait_for(check: Callable[[], bool], what: str, timeout: float = PATIENCE, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"telemed dev exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def redis_servers_on(directory: Path) -> list[psutil.Process]:
    """Live (not zombie) redis-server processes whose working directory is ``directory``."""
    found = []
    for p in psutil.process_iter(["name", "status"]):
        try:
            if p.info["name"].startswith("redis-server") and p.info["status"] != psutil.STATUS_ZOMBIE and Path(p.cwd()) == directory.resolve():
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE  # exited; its new parent has not reaped it
    except psutil.NoSuchProcess:
        return True


class Dev:
    """One ``telemed dev`` process; output in a file (read after it exits)."""

    def __init__(self, var: Path, port: int, cwd: Path, *, env_var_dir: bool = True, **extra: str) -> None:
        self.var, self.port = var, port
        self.log = cwd / f"dev-{port}-{time.monotonic_ns()}.log"
        env = clean_env(TELEMED_VAR_DIR=str(var), **extra) if env_var_dir else clean_env(**extra)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*TELEMED, "dev", "--port", str(port)], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        wait_for(lambda: (self.var / "dev.json").exists() and DevFolder(self.var).info() is not None, "dev.json", proc=self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)
            self.proc.wait()
            raise AssertionError(f"telemed dev did not stop:\n{self.output()}") from None


@pytest.fixture
def devs(tmp_path: Path) -> Iterator[Callable[..., Dev]]:
    """Start ``telemed dev`` processes; every one, and any Redis left on their
    folders, is stopped afterwards."""
    started: list[Dev] = []

    def start(var: Path | None = None, *, port: int = 0, env_var_dir: bool = True, **extra: str) -> Dev:
        dev = Dev(var or tmp_path / "var", port or free_port(), tmp_path, env_var_dir=env_var_dir, **extra)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        if dev.proc.poll() is None:
            dev.proc.kill()
            dev.proc.wait()
    for var in {dev.var for dev in started}:
        for p in redis_servers_on(var / "redis"):
            p.kill()


def test_a_taken_port_is_a_one_line_error_at_once(devs: Callable[..., Dev], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = time.monotonic()
        dev = devs(port=taken.getsockname()[1])
        assert dev.proc.wait(timeout=PATIENCE) == 2
    assert time.monotonic() - started < 5
    lines = dev.output().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("telemed: port ") and "already in use" in lines[0], lines
    assert not (tmp_path / "var" / "redis.pid").exists()
    assert redis_servers_on(tmp_path / "var" / "redis") == []


async def test_the_nodes_own_bind_error_is_a_clear_error(settings: Settings) -> None:
    """A port taken between the check and the node's bind: the start-up error
    ends ``_serve`` (nothing hangs), and is one clear sentence."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            await asyncio.wait_for(cli._serve(settings.with_(port=port, gc_tuning=False)), PATIENCE)


def test_sigkill_leaves_no_redis_behind(devs: Callable[..., Dev], tmp_path: Path) -> None:
    dev = devs()
    dev.wait_ready()
    [redis] = redis_servers_on(tmp_path / "var" / "redis")
    assert redis.pid == int((tmp_path / "var" / "redis.pid").read_text().split()[0])
    dev.proc.kill()
    dev.proc.wait()
    wait_for(lambda: gone(redis), "the private Redis to exit", timeout=10)


@pytest.mark.parametrize("phase", ["dev.lock", "redis.pid", "dev.json"])
def test_a_stop_signal_in_any_phase_stops_everything(devs: Callable[..., Dev], tmp_path: Path, phase: str) -> None:
    """SIGTERM as soon as the lock is taken, as soon as Redis runs, once it serves."""
    var = tmp_path / "var"
    dev = devs()
    wait_for(lambda: (var / phase).exists(), phase, proc=dev.proc)
    assert dev.stop(signal.SIGTERM) == 0, dev.output()
    assert "Traceback" not in dev.output(), dev.output()
    wait_for(lambda: redis_servers_on(var / "redis") == [], "no Redis on var/redis", timeout=10)
    assert not (var / "dev.json").exists() and not (var / "redis.pid").exists()
    assert not DevFolder(var).running()


def test_a_second_dev_on_the_same_folder_is_refused(devs: Callable[..., Dev], tmp_path: Path) -> None:
    first = devs()
    first.wait_ready()
    second = devs()
    assert second.proc.wait(timeout=PATIENCE) == 2
    assert f"another `telemed dev` (pid {first.proc.pid}) is running on {tmp_path / 'var'}" in second.output()
    # The first is untouched: still published, one Redis, still serving.
    assert DevFolder(tmp_path / "var").info() is not None
    assert len(redis_servers_on(tmp_path / "var" / "redis")) == 1
    assert first.stop() == 0


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "unrecorded"])
def test_a_redis_an_earlier_run_left_is_stopped_first(devs: Callable[..., Dev], tmp_path: Path, recorded: bool) -> None:
    """An earlier run's Redis still serves var/redis (killed by an older version,
    which left it running): it is stopped (AOF flushed) before a new one starts
    on the same data, recorded in var/redis.pid or not."""
    var = tmp_path / "var"
    orphan = RedisServer(var / "redis", die_with_parent=False).start()  # its own session, no death signal: as older versions left it
    assert orphan.process is not None
    try:
        with redis_sync.Redis.from_url(orphan.url) as client:
            client.set("kept", "yes")
        if recorded:
            DevFolder(var).record_redis(orphan.process.pid, orphan.port)
        dev = devs()
        dev.wait_ready()
        assert orphan.process.wait(timeout=PATIENCE) == 0  # SIGTERM: a clean shutdown
        [serving] = redis_servers_on(var / "redis")
        info = DevFolder(var).info()
        assert info is not None and serving.pid != orphan.process.pid
        with redis_sync.Redis.from_url(info.redis_url) as client:
            assert client.get("kept") == b"yes"
        assert "a Redis of an earlier run" in dev.output()
        assert dev.stop() == 0
    finally:
        orphan.stop()


def run_cli(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TELEMED, *args], env=clean_env(**extra), cwd=cwd, capture_output=True, text=True, timeout=60)


async def test_the_commands_find_a_running_dev_with_no_environment(devs: Callable[..., Dev], tmp_path: Path) -> None:
    dev = devs(env_var_dir=False)  # ./var of its folder, as `make run` does
    await asyncio.to_thread(dev.wait_ready)
    out = await asyncio.to_thread(run_cli, ["token", "--role", "doctor", "--name", "X", "--clinic", "demo"], tmp_path)
    assert out.returncode == 0, out.stderr
    link = await asyncio.to_thread(run_cli, ["visit", "create", "--clinic", "demo"], tmp_path)
    assert link.returncode == 0, link.stderr
    assert link.stdout.startswith(f"{dev.base}/visit#t=")
    visit = verify(Secret((tmp_path / "var" / "secret").read_text().strip()), link.stdout.strip().split("#t=")[1]).visit
    doctor = {"Authorization": f"Bearer {out.stdout.strip()}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dev.base}/api/visits/{visit}", headers=doctor) as r:
            assert r.status == 200  # the token is signed with the node's secret; the visit is in its Redis
            assert (await r.json())["visit"]["visit_id"] == visit
        async with http.get(f"{dev.base}/api/visits/{visit}", headers={"Authorization": doctor["Authorization"][:-2] + "xx"}) as r:
            assert r.status == 401  # the route does check
    assert "Commands run here" in dev.output() and "export REDIS_URL=redis://127.0.0.1:" in dev.output()

    assert await asyncio.to_thread(dev.stop) == 0
    assert not (tmp_path / "var" / "dev.json").exists()
    out = await asyncio.to_thread(run_cli, ["token", "--role", "doctor", "--name", "X", "--clinic", "demo"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "telemed: TELEMED_SECRET is not set: start `telemed dev` in this folder, or set it to the secret your nodes use"
    )


async def test_a_node_stopped_at_any_moment_of_its_start_up_ends(settings: Settings) -> None:
    """Stopping right after start-up began (its tasks mid-way through their
    first Redis calls, where redis-py can swallow a cancellation) still ends."""
    from aiohttp import web

    from signaling.app import make_app

    before = asyncio.all_tasks()
    for steps in range(40):
        runner = web.AppRunner(make_app(settings))
        await runner.setup()
        started = asyncio.all_tasks() - before
        assert started, "the node started no background task: nothing to stop"
        for _ in range(steps):
            await asyncio.sleep(0)
        await asyncio.wait_for(runner.cleanup(), 5)  # a swallowed cancellation hangs here
        assert all(task.done() for task in started), [t.get_name() for t in started if not t.done()]


def test_a_dev_started_with_its_own_secret_is_not_second_guessed(devs: Callable[..., Dev], tmp_path: Path) -> None:
    """``telemed dev`` with TELEMED_SECRET: var/secret is not what it signs with,
    so the commands take Redis and the URL from it but ask for the secret."""
    secret = "q" * 48
    dev = devs(TELEMED_SECRET=secret)
    dev.wait_ready()
    var = str(tmp_path / "var")
    out = run_cli(["token", "--role", "doctor", "--name", "X", "--clinic", "demo"], tmp_path, TELEMED_VAR_DIR=var)
    assert out.returncode == 2
    assert f"the `telemed dev` running on {var} (pid {dev.proc.pid}) was started with its own; set the same here" in out.stderr
    link = run_cli(["visit", "create", "--clinic", "demo"], tmp_path, TELEMED_VAR_DIR=var, TELEMED_SECRET=secret)
    assert link.returncode == 0, link.stderr
    assert verify(Secret(secret), link.stdout.strip().split(f"{dev.base}/visit#t=")[1]).clinic == "demo"
    assert "# TELEMED_SECRET: the one this server was started with" in dev.output()
