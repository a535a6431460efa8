"""The chart and audit commands of ``telemed`` (``chart verify|export|purge``,
``audit verify``): they run on a host that holds the recordings folder, and
each access goes into the audit trail with the OS user as the actor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from telemed.exceptions import ConfigError, Conflict, NotFound
from telemed.settings import Settings, parse_duration


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
    from telemed import chart
    from telemed.audit import AuditLog
    from telemed.chart import atomic_write

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
    with open(tmp, "wb") as f:
        chart.write_zip(where, f)
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
