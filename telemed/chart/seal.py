"""Sealing a chart, and checking a sealed one.

Sealing (:func:`seal`) derives ``fhir.json`` from the folder's files and then
writes ``manifest.json``: every file with its size and SHA-256. Who seals: the
node, when it finalises an ended visit, and a worker, when it finishes writing
into an already-sealed folder (a recording closes and the last transcript
lines arrive a few seconds after the visit ends). Sealing is idempotent and
runs under the chart lock, so the last one to seal leaves the manifest of what
is there. Each seal is recorded in the audit trail with the manifest's
SHA-256, and :func:`verify` checks against it: a manifest recomputed by
someone who can write the folder does not verify.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemed.audit import AuditLog
from telemed.chart import fhir
from telemed.chart.files import locked, read_jsonl, write_json
from telemed.chart.layout import (
    CHART_LOCK,
    CHAT,
    FHIR,
    FORMAT,
    MANIFEST,
    RECORDINGS,
    TRANSCRIPT,
    TRANSCRIPT_VTT,
    VISIT,
    chart_files,
    content_type,
)

logger = logging.getLogger(__name__)


def digest(path: Path) -> tuple[int, str, str]:
    """Size, SHA-256 and SHA-1 (hex) of a file, read once."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest(), sha1.hexdigest()


def seal(where: Path, base_url: str, audit: AuditLog | None = None) -> dict[str, Any] | None:
    """Write ``fhir.json`` and ``manifest.json`` from what the folder holds now,
    and record the manifest's SHA-256 in the audit trail (``seal``), so that a
    manifest recomputed later by someone else does not verify. Returns the
    manifest, or None if the folder has no ``visit.json`` yet (the visit has not
    been finalised). Raises :class:`telemed.fhir.BundleError` for a chart that
    cannot be exported (the manifest is still written and recorded)."""
    with locked(where, CHART_LOCK):
        return _seal(where, base_url, audit)


def _seal(where: Path, base_url: str, audit: AuditLog | None) -> dict[str, Any] | None:
    try:
        visit = json.loads((where / VISIT).read_text())
    except FileNotFoundError:
        return None
    # Each file is read once: the export needs its digests, and so does the manifest.
    infos: dict[str, fhir.FileInfo] = {}
    for name in chart_files(where):
        if name != FHIR:
            size, sha256, sha1 = digest(where / name)
            infos[name] = fhir.FileInfo(size=size, sha256=sha256, sha1=sha1, content_type=content_type(name))
    error: fhir.BundleError | None = None
    try:
        bundle = fhir.build_bundle(
            visit,
            read_jsonl(where / CHAT),
            _read_json(where / RECORDINGS),
            _transcript(where),
            infos,
            base_url=base_url,
        )
        data = write_json(where / FHIR, bundle)
        infos[FHIR] = fhir.FileInfo(size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_type=content_type(FHIR))
    except fhir.BundleError as exc:
        error = exc
        # An older export would describe files that changed since: none is better.
        (where / FHIR).unlink(missing_ok=True)
        # Only where the problem is: the rest of the message may quote chart content.
        logger.error("Chart(%s) has no FHIR export: a problem in %s", where.name, str(exc).split(":", 1)[0][:80])
    files = [{"name": name, "size": info.size, "sha256": info.sha256} for name, info in sorted(infos.items())]
    manifest = {"format": FORMAT, "visit": visit.get("id"), "clinic": visit.get("clinic"), "sealed_at": round(time.time(), 3), "files": files}
    written = write_json(where / MANIFEST, manifest)
    if audit is not None:
        audit.append("seal", actor_role="system", clinic=where.parent.name, visit=where.name,
                     target=f"sha256:{hashlib.sha256(written).hexdigest()}")
    if error is not None:
        raise error
    return manifest


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        raise fhir.BundleError(f"{path.name}: not JSON") from None


def _transcript(where: Path) -> fhir.TranscriptRef | None:
    lines = read_jsonl(where / TRANSCRIPT)
    if not lines and not (where / TRANSCRIPT).exists():
        return None
    names = tuple(n for n in (TRANSCRIPT, TRANSCRIPT_VTT) if (where / n).exists())
    return fhir.TranscriptRef.from_lines(lines, files=names)


# -- checking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    name: str
    kind: str
    """``missing`` (listed, not there), ``changed`` (size or SHA-256 differ),
    ``unlisted`` (there, not listed), ``no_manifest``, ``bad_manifest``,
    ``unsealed`` (the audit trail has no seal of it)."""
    message: str


@dataclass
class Verification:
    folder: Path
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def sealed_manifest(audit_path: Path, clinic: str, visit_id: str) -> str | None:
    """SHA-256 of the manifest the visit's chart was last sealed with, per the audit trail."""
    found = None
    for record in AuditLog(audit_path).read():
        if record.get("action") == "seal" and record.get("visit") == visit_id and record.get("clinic") == clinic:
            found = str(record.get("target", "")).removeprefix("sha256:")
    return found


def verify(where: Path, audit_path: Path | None = None) -> Verification:
    """Re-check every file of a sealed chart against its manifest, and (given the
    audit trail) the manifest against the one the chart was last sealed with."""
    report = Verification(where)
    try:
        manifest = json.loads((where / MANIFEST).read_text())
        listed = {str(f["name"]): f for f in manifest["files"]}
    except FileNotFoundError:
        report.problems.append(Problem(MANIFEST, "no_manifest", "the chart has no manifest (not sealed)"))
        return report
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(Problem(MANIFEST, "bad_manifest", f"the manifest cannot be read: {exc}"))
        return report
    if (manifest.get("visit"), manifest.get("clinic")) != (where.name, where.parent.name):
        # A sealed folder copied to another visit or clinic is not that visit's chart.
        report.problems.append(Problem(MANIFEST, "bad_manifest", "the manifest is of another visit or clinic"))
    if audit_path is not None:
        sealed = sealed_manifest(audit_path, where.parent.name, where.name)
        if sealed is None:
            report.problems.append(Problem(MANIFEST, "unsealed", "the audit trail holds no seal of this chart"))
        elif sealed != digest(where / MANIFEST)[1]:
            report.problems.append(Problem(MANIFEST, "changed", "the manifest is not the one the chart was sealed with"))
    present = set(chart_files(where))
    for name, entry in sorted(listed.items()):
        report.files += 1
        if name not in present:
            report.problems.append(Problem(name, "missing", "listed in the manifest but not in the folder"))
            continue
        size, sha256, _ = digest(where / name)
        if size != entry.get("size") or sha256 != entry.get("sha256"):
            report.problems.append(Problem(name, "changed", f"size {size} / SHA-256 {sha256[:12]}… differ from the manifest"))
    for name in sorted(present - listed.keys()):
        report.problems.append(Problem(name, "unlisted", "in the folder but not in the manifest"))
    return report
