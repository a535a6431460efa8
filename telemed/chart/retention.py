"""Retention: which charts are old enough to go, and removing them (audited).

A chart is removed once its visit ended more than the retention setting ago
(at least :data:`MIN_RETENTION`); a folder without ``visit.json`` (chat copied
for a visit whose chart was never written) once untouched for
:data:`ORPHAN_AFTER`. Every removal is recorded in the audit trail before the
files go, and happens under the chart lock, so no seal is half-way through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Set
from pathlib import Path

from telemed.audit import AuditLog
from telemed.chart.files import locked
from telemed.chart.layout import CHART_LOCK, VISIT

logger = logging.getLogger(__name__)


def ended_at(where: Path) -> float | None:
    """When the visit ended (``visit.json``), else when the folder last changed."""
    try:
        visit = json.loads((where / VISIT).read_text())
        ended = visit.get("times", {}).get("ended")
        if ended is not None:
            return float(ended)
    except (FileNotFoundError, ValueError, AttributeError):
        pass
    try:
        return where.stat().st_mtime
    except FileNotFoundError:
        return None


#: Shortest retention: longer than Redis keeps an ended visit (7 days), so no
#: chart is removed while a node or worker could still write it again.
MIN_RETENTION = 8 * 86400.0

#: A folder without ``visit.json`` (chat copied for a visit whose chart was
#: never written) is removed once it has not changed for this long, or the
#: retention if that is longer.
ORPHAN_AFTER = 30 * 86400.0


def expired(root: Path, older_than: float, now: float | None = None) -> list[tuple[str, str, Path]]:
    """Charts (clinic, visit, folder) whose visit ended more than ``older_than``
    seconds ago, and folders without ``visit.json`` untouched for
    :data:`ORPHAN_AFTER` (or ``older_than``, if longer)."""
    if older_than < MIN_RETENTION:
        raise ValueError(f"charts are kept at least {MIN_RETENTION / 86400:.0f} days")
    now = time.time() if now is None else now
    cutoff = now - older_than
    orphan_cutoff = now - max(older_than, ORPHAN_AFTER)
    out = []
    for clinic in sorted(root.iterdir()) if root.is_dir() else []:
        if clinic.name.startswith(".") or not clinic.is_dir() or clinic.is_symlink():
            continue
        for where in sorted(clinic.iterdir()):
            if where.name.startswith(".") or not where.is_dir() or where.is_symlink():
                continue
            at = ended_at(where)
            if at is None:
                continue
            if (where / VISIT).is_file() and at < cutoff:
                out.append((clinic.name, where.name, where))
            elif not (where / VISIT).exists() and _last_change(where) < orphan_cutoff:
                out.append((clinic.name, where.name, where))
    return out


def _last_change(where: Path) -> float:
    """The newest modification time of the folder and anything in it."""
    newest = where.stat().st_mtime
    for dirpath, _, filenames in os.walk(where):
        for name in filenames:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except FileNotFoundError:
                pass
    return newest


def remove(where: Path) -> None:
    """Delete a chart folder (under its lock, so no seal is half-way through it)."""
    with locked(where, CHART_LOCK):
        shutil.rmtree(where)


async def purge(root: Path, older_than: float, audit: AuditLog, actor: str = "system", sub: str = "",
                skip: Set[str] = frozenset()) -> list[str]:
    """Remove every chart whose visit ended more than ``older_than`` seconds ago
    (not those in ``skip``: charts still being written); each removal is
    audited before the files go."""
    removed = []
    for clinic, visit_id, where in await asyncio.to_thread(expired, root, older_than):
        if visit_id in skip:
            continue
        await audit.arecord("purge", actor_role=actor, actor_sub=sub, clinic=clinic, visit=visit_id, target=f"older_than={int(older_than)}s")
        await asyncio.to_thread(remove, where)
        removed.append(visit_id)
        logger.info("Chart(%s) removed (retention)", visit_id)
    return removed
