"""The chart: a visit's folder, complete and intact.

``<root>/<clinic>/<visit>/`` gathers what the visit produced. The node writes
``visit.json`` (participants, times, state history, acuity, triage, consent,
reason) and ``chat.jsonl`` (from the visit's Redis stream: appended while the
visit runs, completed at its end); the media workers write the recordings,
``recordings.json``, ``snapshots/`` and the transcript. Sealing a folder
(:func:`seal`) derives ``fhir.json`` from those files and then writes
``manifest.json``: every file with its size and SHA-256. Every file is
written atomically (temp file, fsync, rename, fsync of the folder), except
the recordings (which grow while they record; a cut file plays up to about a
second before the cut) and ``transcript.jsonl`` (appended and fsynced per
utterance; a line torn by a crash is skipped by readers).

Who seals: the node, when it finalises an ended visit, and a worker, when it
finishes writing into an already-sealed folder (a recording closes and the
last transcript lines arrive a few seconds after the visit ends). Sealing is
idempotent and runs under an exclusive ``flock`` of ``.chart.lock``, so the
last one to seal leaves the manifest of what is there.

Files whose names start with a dot (locks, temp files) are not part of the
chart: they are neither listed nor served.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media._files import atomic_write
from media.chart import INDEX as RECORDINGS
from media.chart import visit_folder
from media.transcript import JSONL as TRANSCRIPT
from media.transcript import VTT as TRANSCRIPT_VTT
from media.transcript import parse_lines
from telemed import fhir
from telemed.audit import AuditLog
from telemed.visits import Visit

logger = logging.getLogger(__name__)

FORMAT = 1
VISIT = "visit.json"
CHAT = "chat.jsonl"
FHIR = "fhir.json"
MANIFEST = "manifest.json"
LOCK = ".chart.lock"

#: Content types of what a chart holds (anything else is served as bytes).
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".vtt": "text/vtt",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
}

def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


@contextmanager
def locked(where: Path) -> Iterator[None]:
    """The chart lock of a folder (exclusive; blocks)."""
    where.mkdir(parents=True, exist_ok=True)
    fd = os.open(where / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def chart_files(where: Path) -> list[str]:
    """The chart's files (relative names, ``/``-separated, sorted): every regular
    file except hidden ones and the manifest; symlinks are not chart files."""
    out = []
    for dirpath, dirnames, filenames in os.walk(where):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            path = Path(dirpath) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(where).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def digest(path: Path) -> tuple[int, str, str]:
    """Size, SHA-256 and SHA-1 (hex) of a file, read once."""
    sha256, sha1, size = hashlib.sha256(), hashlib.sha1(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest(), sha1.hexdigest()


# -- what the node writes -----------------------------------------------------------------


def visit_record(visit: Visit, history: list[dict[str, Any]], chat: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """``visit.json``: the visit as the chart keeps it. Participants are the
    patient, the doctor, the nurse who triaged, and everyone who wrote in the chat."""
    people: dict[tuple[str, str], str] = {}

    def add(role: str, sub: str, name: str = "") -> None:
        if sub and not people.get((role, sub)):  # new, or known without a name so far
            people[(role, sub)] = name

    add("patient", visit.patient_sub, visit.patient_name)
    for message in chat:
        add(str(message["role"]), str(message["sub"]), str(message.get("name", "")))
    if visit.triaged_by:
        add("nurse", visit.triaged_by)
    add("doctor", visit.doctor, visit.doctor_name)
    order = {"patient": 0, "nurse": 1, "doctor": 2, "admin": 3}
    participants = [{"role": r, "sub": s, "name": n} for (r, s), n in sorted(people.items(), key=lambda p: (order.get(p[0][0], 9), p[0][1]))]
    triaged = next((h for h in reversed(history) if h.get("action") == "triage"), None)
    checked_in = visit.checked_in_at
    return {
        "format": FORMAT,
        "id": visit.id,
        "clinic": visit.clinic,
        "state": visit.state.value,
        "end_reason": visit.end_reason,
        "reason": visit.reason,
        "acuity": visit.acuity,
        "triage": {"note": visit.triage_note, "by": visit.triaged_by, "at": triaged["at"] if triaged else None}
        if (visit.triage_note or visit.triaged_by)
        else None,
        # Consent is given at check-in, with the wording version the page showed.
        "consent": {"visit": visit.consent_visit, "recording": visit.consent_recording, "version": visit.consent_version, "at": checked_in}
        if checked_in is not None
        else None,
        "participants": participants,
        "times": {"created": visit.created_at, "checked_in": checked_in, "admitted": visit.admitted_at, "ended": visit.ended_at},
        "history": history,
    }


def chat_line(message: dict[str, Any]) -> dict[str, Any]:
    """One ``chat.jsonl`` line of a stored chat message (:class:`telemed.chat.Message`)."""
    return {"id": message["id"], "client_id": message["client_id"], "at": message["ts"], "role": message["role"],
            "sub": message["sender"], "name": message["name"], "text": message["text"]}


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def append_chat(where: Path, messages: Iterable[dict[str, Any]]) -> int:
    """Add the chat lines ``chat.jsonl`` lacks (by stream id) and rewrite it
    atomically; returns how many were added. Call under :func:`locked`."""
    path = where / CHAT
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    lines = parse_lines(data, CHAT)
    after = _stream_id(str(lines[-1]["id"])) if lines else (-1, -1)
    new = [m for m in messages if _stream_id(str(m["id"])) > after]
    if new or not path.exists():
        atomic_write(path, data + b"".join(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for m in new))
    return len(new)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return parse_lines(path.read_bytes(), path.name)
    except FileNotFoundError:
        return []


def write_json(path: Path, doc: Any) -> bytes:
    """Write ``doc`` atomically; returns the bytes written."""
    data = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(path, data)
    return data


# -- sealing -----------------------------------------------------------------------------


def seal(where: Path, base_url: str, audit: AuditLog | None = None) -> dict[str, Any] | None:
    """Write ``fhir.json`` and ``manifest.json`` from what the folder holds now,
    and record the manifest's SHA-256 in the audit trail (``seal``), so that a
    manifest recomputed later by someone else does not verify. Returns the
    manifest, or None if the folder has no ``visit.json`` yet (the visit has not
    been finalised). Raises :class:`telemed.fhir.BundleError` for a chart that
    cannot be exported (the manifest is still written and recorded)."""
    with locked(where):
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


# -- finding and removing ------------------------------------------------------------------


def find(root: Path, visit_id: str, clinic: str | None = None) -> Path | None:
    """A visit's chart folder (the CLI knows the visit, not always its clinic)."""
    if clinic is not None:
        where = visit_folder(root, clinic, visit_id)
        return where if (where / VISIT).is_file() or where.is_dir() else None
    found = [p for p in root.glob(f"*/{visit_id}") if p.is_dir() and not p.parent.name.startswith(".")]
    return found[0] if len(found) == 1 else None


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
    with locked(where):
        shutil.rmtree(where)
