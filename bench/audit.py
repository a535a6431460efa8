"""Audit trail benchmark: durable appends and a full verify on this machine.

    python -m bench.audit [--appends 2000] [--dir DIR]

Appends N records to a fresh log (each fsynced, head witness rewritten and its
folder fsynced, under the lock, as a node does), then verifies the whole log.
DIR is where the temporary log goes (default: the system's temp folder; use the
disk the recordings live on to measure that disk).

Prints as its last line::

    audit: appends=… appends_per_s=… ms_per_append=… verify_s=… ok=…
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from telemed.audit import Action, AuditLog, verify


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    p.add_argument("--appends", type=int, default=2000, help="records to append (default 2000)")
    p.add_argument("--dir", type=Path, default=None, help="folder for the temporary log")
    args = p.parse_args(argv)
    if args.appends < 1:
        p.error("--appends must be at least 1")
    n: int = args.appends
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        log = AuditLog(Path(tmp) / "audit" / "audit.jsonl")
        start = time.perf_counter()
        for i in range(n):
            log.append(
                Action.CHART_READ, actor_role="doctor", actor_sub="d1", clinic="c1", visit=f"v{i}", target="chat.jsonl"
            )
        took = time.perf_counter() - start
        t0 = time.perf_counter()
        report = verify(log.path)
        verify_s = time.perf_counter() - t0
    print(
        f"audit: appends={n} appends_per_s={n / took:.0f} ms_per_append={took / n * 1e3:.2f} "
        f"verify_s={verify_s:.3f} ok={report.ok}"
    )
    return 0 if report.ok and report.records == n else 1


if __name__ == "__main__":
    raise SystemExit(main())
