"""The chart folder: where a visit's record lives and what its files are called.

``<root>/<clinic>/<visit>/`` holds:

| file | what |
| --- | --- |
| ``visit.json`` | the visit: participants, times, state history, acuity, triage, consent, reason |
| ``chat.jsonl`` | the chat, one line per message, in stream order |
| ``recording-<role>-<n>.webm`` | one file per chart leg of a participant (``n`` counts legs) |
| ``recordings.json`` | the index of recordings and snapshots (:mod:`telemed.chart.recordings`) |
| ``snapshots/<id>.jpg`` | snapshots of the patient's video |
| ``transcript.jsonl``, ``transcript.vtt`` | the transcript (:mod:`telemed.chart.transcript`) |
| ``fhir.json`` | the FHIR R4 export (:mod:`telemed.chart.fhir`) |
| ``manifest.json`` | every file's size and SHA-256 (:mod:`telemed.chart.seal`) |

Names starting with a dot (locks, temp files) are not chart files: they are
neither listed, sealed nor served. No other module knows a chart file name.
"""

from __future__ import annotations

import os
from pathlib import Path

from telemed.exceptions import BadRequest
from telemed.tokens import check_id

#: Version of the folder's JSON documents.
FORMAT = 1

VISIT = "visit.json"
CHAT = "chat.jsonl"
RECORDINGS = "recordings.json"
SNAPSHOTS = "snapshots"
TRANSCRIPT = "transcript.jsonl"
TRANSCRIPT_VTT = "transcript.vtt"
FHIR = "fhir.json"
MANIFEST = "manifest.json"

#: Recordings are WebM (the Matroska subset browsers play).
RECORDING_SUFFIX = ".webm"

#: Locks: the chart as a whole (sealing, chat, visit.json), the recordings
#: index, the transcript. Separate so a transcript line never waits for a seal.
CHART_LOCK = ".chart.lock"
RECORDINGS_LOCK = ".recordings.lock"
TRANSCRIPT_LOCK = ".transcript.lock"

#: Content types of what a chart holds (anything else is served as bytes).
CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".vtt": "text/vtt",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def safe_id(value: str, what: str) -> str:
    """An id that is safe as one path component (``check_id`` and no leading dot: not ``..``)."""
    check_id(value, what)
    if value.startswith("."):
        raise BadRequest(f"{what} must not start with '.'")
    return value


def visit_folder(root: Path, clinic: str, visit_id: str) -> Path:
    """The chart folder of a visit (ids checked, so it is always inside ``root``)."""
    return root / safe_id(clinic, "clinic") / safe_id(visit_id, "visit")


def recording_name(role: str, n: int) -> str:
    """File of a participant's ``n``-th chart leg."""
    return f"recording-{role}-{n}{RECORDING_SUFFIX}"


def snapshot_name(snap_id: str) -> str:
    """Chart-relative name of a snapshot."""
    return f"{SNAPSHOTS}/{safe_id(snap_id, 'snapshot')}.jpg"


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


def find(root: Path, visit_id: str, clinic: str | None = None) -> Path | None:
    """A visit's chart folder (the CLI knows the visit, not always its clinic)."""
    if clinic is not None:
        where = visit_folder(root, clinic, visit_id)
        return where if (where / VISIT).is_file() or where.is_dir() else None
    safe_id(visit_id, "visit")
    found = [p for p in root.glob(f"*/{visit_id}") if p.is_dir() and not p.parent.name.startswith(".")]
    return found[0] if len(found) == 1 else None
