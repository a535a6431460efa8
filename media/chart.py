"""The media part of a visit's chart folder: file names and ``recordings.json``.

``recordings/<clinic>/<visit>/`` gets ``recording-<role>-<n>.webm`` (``n``
counts the participant's legs: a leg re-established after a failure continues
in the next file), ``snapshots/<id>.jpg``, and ``recordings.json``, the index
of both in the order they started, with start and end times so a gap between
two files of one participant is visible (``gap_before``, seconds).

Several workers may write one visit's index at once (the patient's leg on one,
the doctor's on another), so every change is read-modify-write under an
exclusive ``flock`` of ``.recordings.lock`` and written atomically. The
folder must be shared by the workers (one host, or a file system with working
locks).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av

from media._files import atomic_write
from telemed.exceptions import BadRequest
from telemed.tokens import check_id

logger = logging.getLogger(__name__)

INDEX = "recordings.json"
LOCK = ".recordings.lock"

#: Entry states: being written; finished by its worker; its worker died.
RECORDING, COMPLETE, INTERRUPTED = "recording", "complete", "interrupted"


def safe_id(value: str, what: str) -> str:
    """An id that is safe as one path component (``check_id`` and no leading dot: not ``..``)."""
    check_id(value, what)
    if value.startswith("."):
        raise BadRequest(f"{what} must not start with '.'")
    return value


def visit_folder(root: Path, clinic: str, visit_id: str) -> Path:
    return root / safe_id(clinic, "clinic") / safe_id(visit_id, "visit")


def recording_name(role: str, n: int, suffix: str) -> str:
    return f"recording-{role}-{n}{suffix}"


def probe_end(path: Path) -> float:
    """Seconds of media in a (possibly truncated) recording: the end of its last readable packet."""
    end = 0.0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux():
                if packet.pts is None or packet.time_base is None:
                    continue
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    except (av.FFmpegError, OSError) as exc:
        logger.info("ChartIndex probe of %s stopped: %s", path.name, exc)
    return end


def _fill_gaps(recordings: list[dict[str, Any]]) -> None:
    """``gap_before``: seconds between the end of a participant's previous file
    and the start of this one (None for the first, or while the end is unknown)."""
    last_end: dict[str, float | None] = {}
    for r in sorted(recordings, key=lambda r: (r["role"], r.get("n") or 0)):
        previous = last_end.get(r["role"])
        started = r.get("started_at")
        r["gap_before"] = round(started - previous, 3) if previous is not None and started is not None else None
        last_end[r["role"]] = r.get("ended_at")


class ChartIndex:
    """``recordings.json`` of one visit folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads((self.folder / INDEX).read_text())
        except FileNotFoundError:
            doc = {}
        doc.setdefault("recordings", [])
        doc.setdefault("snapshots", [])
        return doc

    @contextmanager
    def _change(self) -> Iterator[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            doc = self.read()
            yield doc
            _fill_gaps(doc["recordings"])
            atomic_write(self.folder / INDEX, json.dumps(doc, indent=1).encode())
        finally:
            os.close(fd)  # releases the lock

    # -- recordings -----------------------------------------------------------------

    def start_recording(self, entry: dict[str, Any]) -> None:
        """Add a file that started."""
        with self._change() as doc:
            doc["recordings"].append({**entry, "state": RECORDING, "gap_before": None})

    def finish_recording(self, file: str, **fields: Any) -> None:
        with self._change() as doc:
            for r in doc["recordings"]:
                if r["file"] == file:
                    r.update(fields)

    def close_stale(self, role: str, is_gone: Callable[[str], bool]) -> list[str]:
        """Mark the participant's files still ``recording`` by a worker that is
        gone as ``interrupted``, with the end of what the file really holds.
        Returns the files marked."""
        marked: list[str] = []
        with self._change() as doc:
            for r in doc["recordings"]:
                if r["role"] != role or r["state"] != RECORDING or not is_gone(r.get("worker", "")):
                    continue
                duration = probe_end(self.folder / r["file"])
                r.update(
                    state=INTERRUPTED,
                    duration=round(duration, 3),
                    ended_at=(r["started_at"] + duration) if r.get("started_at") else None,
                )
                marked.append(r["file"])
        for file in marked:
            logger.info("ChartIndex(%s) %s was interrupted", self.folder.name, file)
        return marked

    # -- snapshots ------------------------------------------------------------------

    def add_snapshot(self, entry: dict[str, Any]) -> None:
        with self._change() as doc:
            doc["snapshots"].append(entry)
