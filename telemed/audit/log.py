"""The audit trail's writer: an append-only, hash-chained JSON-lines file.

Each record carries the SHA-256 of the one before it (``prev``) and of itself
(``hash``), so :func:`~telemed.audit.verifier.verify` finds an edited, removed,
inserted or reordered record. A chain alone cannot show that its *last*
records were cut off, so every append also rewrites a head witness
(``audit.head``) and logs it at INFO for an external log store; an append that
finds the witness ahead of (or disagreeing with) the file writes a
``head_mismatch`` record first, so the evidence survives the witness being
overwritten.

Records hold ids, codes and short names only, never health data: every field
is checked on the way in. Several processes, on one host or on hosts sharing
the folder, append to one file under an exclusive ``flock`` on a sibling lock
file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from telemed.audit.record import (
    GENESIS,
    HEX64,
    Action,
    AuditLogCorrupt,
    Head,
    Outcome,
    canonical,
    checked_fields,
    head_path,
    load_head,
    lock_path,
    locked,
    record_hash,
)
from telemed.tokens import Role

logger = logging.getLogger(__name__)

#: Bytes read per step when looking backwards for the last complete line.
_TAIL_CHUNK = 8192
#: How far an append looks back past unreadable lines for a record to chain
#: from before giving up (a file that damaged needs a person).
_MAX_SKIPPED = 100
_TAIL_SCAN = 1 << 20

_HOSTNAME = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:80] or "host"


def _node() -> str:
    # The pid is read per call: a forked worker is a different writer.
    return f"{_HOSTNAME}:{os.getpid()}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rfind_newline(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        at = os.pread(fd, end - start, start).rfind(b"\n")
        if at >= 0:
            return start + at
        end = start
    return -1


def _as_record(raw: bytes) -> dict[str, Any] | None:
    """A line parsed far enough to chain from, or None."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if (
        not isinstance(record, dict)
        or type(record.get("seq")) is not int
        or not isinstance(record.get("hash"), str)
        or not HEX64.fullmatch(record["hash"])
    ):
        return None
    return record


class AuditLog:
    """Appends to one audit file, shared with other processes through its lock file.

    Cheap to create; holds no open file between appends.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.head_path = head_path(self.path)
        self.lock_path = lock_path(self.path)

    def __repr__(self) -> str:
        return f"AuditLog({self.path})"

    def append(
        self,
        action: Action | str,
        *,
        outcome: Outcome | str = Outcome.OK,
        actor_role: Role | str,
        actor_sub: str = "",
        clinic: str = "",
        visit: str = "",
        target: str = "",
        code: str = "",
    ) -> dict[str, Any]:
        """Append one record durably (fsynced, head witness updated) and return it.

        Blocks on disk I/O and on other writers; from the event loop use
        :meth:`arecord`.

        :raises ValueError: a field is not an id/code/short name (maybe health data).
        :raises AuditLogCorrupt: no record among the last lines to chain from.
        """
        fields = checked_fields(action, outcome, actor_role, actor_sub, clinic, visit, target, code)
        folder = self.path.parent
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _fsync_dir(folder.parent)
        with locked(self.lock_path, fcntl.LOCK_EX, create=True):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                size, last = self._last_record(fd)
                records: list[dict[str, Any]] = []
                mismatch = self._head_mismatch(last)
                if mismatch is not None:
                    records.append(self._build(last, self._system(mismatch)))
                    last = records[-1]
                records.append(self._build(last, fields))
                data = "".join(canonical(r) + "\n" for r in records).encode()
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except BaseException:
                    # Leave no torn line behind if we can; the next append would cut it anyway.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
            record = records[-1]
            self._write_head(Head(record["seq"], record["hash"], record["at"]))
        logger.info("audit head seq=%d hash=%s", record["seq"], record["hash"])
        return record

    async def arecord(
        self,
        action: Action | str,
        *,
        outcome: Outcome | str = Outcome.OK,
        actor_role: Role | str,
        actor_sub: str = "",
        clinic: str = "",
        visit: str = "",
        target: str = "",
        code: str = "",
    ) -> dict[str, Any]:
        """:meth:`append` in a worker thread, so the event loop never waits on fsync or the lock."""
        # Checked here too, so a bad field fails before a thread is taken.
        checked_fields(action, outcome, actor_role, actor_sub, clinic, visit, target, code)
        return await asyncio.to_thread(
            self.append,
            action,
            outcome=outcome,
            actor_role=actor_role,
            actor_sub=actor_sub,
            clinic=clinic,
            visit=visit,
            target=target,
            code=code,
        )

    def read(self) -> Iterator[dict[str, Any]]:
        """The records in file order, a torn last line left out; no integrity check (see :func:`verify`).

        :raises AuditLogCorrupt: a complete line is not a JSON object.
        """
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            for n, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    return
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    raise AuditLogCorrupt(f"{self.path} line {n} is not a record")
                yield record

    # -- inside the lock -------------------------------------------------

    def _last_record(self, fd: int) -> tuple[int, dict[str, Any] | None]:
        """The file size and last complete record, after cutting a torn tail off.

        A line without its newline is an append that crashed before returning,
        so nobody was told it was recorded; it is dropped, not completed.
        """
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, None
        if os.pread(fd, 1, size - 1) != b"\n":
            end = _rfind_newline(fd, size) + 1
            os.ftruncate(fd, end)
            os.fsync(fd)
            logger.warning("%r dropped a torn last line (%d bytes)", self, size - end)
            size = end
            if size == 0:
                return 0, None
        # Normally one step. Unreadable lines (damage) are stepped over, so
        # auditing goes on: the chain continues from the last real record and
        # verify reports the damaged lines; the head witness check records it.
        end, skipped, record = size, 0, None
        while end > 0:
            start = _rfind_newline(fd, end - 1) + 1
            record = _as_record(os.pread(fd, end - 1 - start, start))
            if record is not None:
                break
            skipped += 1
            if skipped > _MAX_SKIPPED or size - start > _TAIL_SCAN:
                raise AuditLogCorrupt(f"{self.path}: no record in the last {skipped} lines; run `telemed audit verify`")
            end = start
        if skipped:
            logger.error("%r last %d line(s) are not records; chaining from the record before them", self, skipped)
        return size, record

    def _head_mismatch(self, last: dict[str, Any] | None) -> str | None:
        """``target`` for a head_mismatch record, or None when witness and file agree.

        Agreeing means the witness is the last record, or the one before it (a
        crash between the record's fsync and the witness's rename).
        """
        file_seq = last["seq"] if last else 0
        try:
            witness = load_head(self.head_path)
        except (OSError, ValueError):
            logger.error("%r head witness is unreadable; file ends at seq=%d", self, file_seq)
            return f"head:unreadable/file:{file_seq}"
        if witness is None:
            if last is None or file_seq == 1:
                return None  # a new log (or a crash before its first witness)
            # Records but no witness: deleting it is how a cut tail would be hidden.
            logger.error("%r head witness missing while the file ends at seq=%d", self, file_seq)
            return f"head:missing/file:{file_seq}"
        if last is not None and (
            (witness.seq == last["seq"] and witness.hash == last["hash"])
            or (witness.seq == last["seq"] - 1 and witness.hash == last.get("prev"))
        ):
            return None
        logger.error(
            "%r head witness seq=%d hash=%s disagrees with the file (last seq=%d): records were removed or rewritten",
            self,
            witness.seq,
            witness.hash,
            file_seq,
        )
        return f"head:{witness.seq}:{witness.hash}/file:{file_seq}"

    @staticmethod
    def _system(target: str) -> dict[str, Any]:
        return {
            "action": str(Action.HEAD_MISMATCH),
            "outcome": str(Outcome.REFUSED),
            "actor": {"role": "system", "sub": ""},
            "clinic": "",
            "visit": "",
            "target": target,
            "code": "head_mismatch",
        }

    @staticmethod
    def _build(last: dict[str, Any] | None, fields: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "seq": last["seq"] + 1 if last else 1,
            "at": round(time.time(), 3),
            **fields,
            "node": _node(),
            "prev": last["hash"] if last else GENESIS,
        }
        record["hash"] = record_hash(record)
        return record

    def _write_head(self, head: Head) -> None:
        tmp = self.head_path.with_name(f".{self.head_path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, json.dumps({"seq": head.seq, "hash": head.hash, "at": head.at}).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.head_path)
        # One directory fsync makes both the rename and (first append) the log's
        # creation durable; a head older than the file by more than one record
        # would otherwise look like forged records after a power cut.
        _fsync_dir(self.path.parent)
