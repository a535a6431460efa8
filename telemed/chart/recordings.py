"""``recordings.json``: the index of a chart's recordings and snapshots.

The media workers write ``recording-<party>-<n>.webm`` (the party: ``patient``,
``doctor``, or a guest's id; ``n`` counts the participant's legs: a leg re-established after a failure continues in the
next file) and ``snapshots/<id>.jpg``; this index lists both in the order they
started, with start and end times so a gap between two files of one
participant is visible (``gap_before``, seconds).

Several workers may write one visit's index at once (the patient's leg on one,
the doctor's on another), so every change is read-modify-write under the
recordings lock and written atomically.

This module reads no media: how long a cut file really plays is measured by
the caller (the worker, which has PyAV) and passed in as ``probe``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from telemed.chart.files import atomic_write, locked
from telemed.chart.layout import RECORDINGS, RECORDINGS_LOCK

logger = logging.getLogger(__name__)

#: Entry states: being written; finished by its worker; its worker died.
RECORDING, COMPLETE, INTERRUPTED = "recording", "complete", "interrupted"


def party_of(entry: Mapping[str, Any]) -> str:
    """Whose file (or snapshot or transcript line) an entry is: its ``party``
    (``patient``, ``doctor``, a guest's id); entries written before guests had
    legs name only their ``role``, which was the party then."""
    return str(entry.get("party") or entry.get("role") or "")


def _fill_gaps(recordings: list[dict[str, Any]]) -> None:
    """``gap_before``: seconds between the end of a participant's previous file
    and the start of this one (None for the first, or while the end is unknown)."""
    last_end: dict[str, float | None] = {}
    for r in sorted(recordings, key=lambda r: (party_of(r), r.get("n") or 0)):
        previous = last_end.get(party_of(r))
        started = r.get("started_at")
        r["gap_before"] = round(started - previous, 3) if previous is not None and started is not None else None
        last_end[party_of(r)] = r.get("ended_at")


class ChartIndex:
    """``recordings.json`` of one visit folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads((self.folder / RECORDINGS).read_text())
        except FileNotFoundError:
            doc = {}
        doc.setdefault("recordings", [])
        doc.setdefault("snapshots", [])
        return doc

    @contextmanager
    def _change(self) -> Iterator[dict[str, Any]]:
        with locked(self.folder, RECORDINGS_LOCK):
            doc = self.read()
            yield doc
            _fill_gaps(doc["recordings"])
            atomic_write(self.folder / RECORDINGS, json.dumps(doc, indent=1).encode())

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

    def close_stale(self, role: str, is_gone: Callable[[str], bool],
                    probe: Callable[[Path], float] | None = None) -> list[str]:
        """Mark the participant's files still ``recording`` by a worker that is
        gone as ``interrupted``, with how much the file holds. Returns the files
        marked.

        :param probe: seconds of media in a possibly truncated file (a worker
            passes one that demuxes it). Without one (a node, which reads no
            media) the file's last write counts: the recorder writes every
            packet as it arrives, so that is when the recording stopped, up to
            the last second that a cut file may not decode."""
        marked: list[str] = []
        with self._change() as doc:
            for r in doc["recordings"]:
                if party_of(r) != role or r["state"] != RECORDING or not is_gone(r.get("worker", "")):
                    continue
                path = self.folder / r["file"]
                duration = probe(path) if probe is not None else _written_for(path, r.get("started_at"))
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


def _written_for(path: Path, started_at: float | None) -> float:
    try:
        last = path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
    return max(0.0, last - started_at) if started_at else 0.0


def still_recording(where: Path) -> dict[str, set[str]]:
    """Workers with a file of this chart still ``recording``, and the roles of those files."""
    try:
        index = json.loads((where / RECORDINGS).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    out: dict[str, set[str]] = {}
    for r in index.get("recordings", []):
        if r.get("state") == RECORDING:
            out.setdefault(str(r.get("worker", "")), set()).add(party_of(r))
    return out
