"""How every chart file is written and locked (the one implementation).

- :func:`atomic_write`: a reader sees the old file or the new one, never half
  of one (temp file in the same folder, fsync, rename, fsync of the folder).
- :func:`locked`: an exclusive ``flock`` of a hidden lock file in the folder.
  Several processes (nodes, workers) write one chart, so every
  read-modify-write of a chart file happens under one. The folder must be
  shared by them (one host, or a file system with working locks).
- JSON Lines files (``chat.jsonl``, ``transcript.jsonl``) are read with
  :func:`parse_lines`, which skips a line torn by a crash.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from telemed.chart.layout import CHART_LOCK

logger = logging.getLogger(__name__)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``: temp file in the same folder, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_json(path: Path, doc: Any) -> bytes:
    """Write ``doc`` atomically (sorted keys, so equal documents are equal bytes); returns the bytes written."""
    data = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(path, data)
    return data


@contextmanager
def locked(folder: Path, name: str = CHART_LOCK) -> Iterator[None]:
    """Hold the exclusive lock ``folder/name`` (created if needed; blocks until
    free): by default the chart lock, under which the chart is sealed, removed
    and its chat and ``visit.json`` written."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def parse_lines(data: bytes, where: str) -> list[dict[str, Any]]:
    """Complete, valid JSON lines of ``data`` (a line torn by a crash is skipped)."""
    entries = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            logger.warning("Chart(%s) skips a damaged line (%d bytes)", where, len(line))
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a JSON Lines file (none if it does not exist)."""
    try:
        return parse_lines(path.read_bytes(), path.name)
    except FileNotFoundError:
        return []


def append_line(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line durably (call under the file's lock). A last line
    torn by a crash is not glued onto: the new line starts on a line of its own."""
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if not size:
        fsync_dir(path.parent)
