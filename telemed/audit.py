"""The audit trail: an append-only, hash-chained JSON-lines file.

Each record carries the SHA-256 of the one before it (``prev``) and of itself
(``hash``), so :func:`verify` finds an edited, removed, inserted or reordered
record. A chain alone cannot show that its *last* records were cut off, so
every append also rewrites a head witness (``audit.head``) and logs it at INFO
for an external log store; an append that finds the witness ahead of (or
disagreeing with) the file writes a ``head_mismatch`` record first, so the
evidence survives the witness being overwritten.

Records hold ids, codes and short names only, never health data: every field
is checked on the way in. Several processes, on one host or on hosts sharing
the folder, append to one file under an exclusive ``flock`` on a sibling lock
file.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import enum
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from telemed.tokens import ID_PATTERN, Role

logger = logging.getLogger(__name__)

#: ``prev`` of the first record.
GENESIS = "0" * 64

#: Who can act: the token roles, plus the server itself (sweepers, purges).
ROLES = frozenset({role.value for role in Role} | {"system", "anonymous"})

#: ``target``: a chart file name, an export format, a purge cutoff. No spaces,
#: no ``@``, no newlines, so a name, an e-mail address or free text is refused.
_TARGET = re.compile(r"[A-Za-z0-9_.:/=+-]{1,200}")
#: ``code``: an error code as sent to clients (``forbidden``, ``not_found``).
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEAD_MISMATCH_TARGET = re.compile(r"head:(\d+|unreadable):?([0-9a-f]{64})?/file:(\d+)")

#: Bytes read per step when looking backwards for the last complete line.
_TAIL_CHUNK = 8192
#: How far an append looks back past unreadable lines for a record to chain
#: from before giving up (a file that damaged needs a person).
_MAX_SKIPPED = 100
_TAIL_SCAN = 1 << 20


class Action(enum.StrEnum):
    ADMIT = "admit"
    END = "end"
    CHART_READ = "chart_read"
    FILE_DOWNLOAD = "file_download"
    FHIR_READ = "fhir_read"
    EXPORT = "export"
    PURGE = "purge"
    REFUSED = "refused"
    VERIFY = "verify"
    #: A chart was sealed; ``target`` is ``sha256:<hex>`` of its manifest file,
    #: so a manifest recomputed after the fact does not match.
    SEAL = "seal"
    #: Written by :meth:`AuditLog.append` itself when the head witness disagrees
    #: with the file (records were cut off or rewritten since the last append).
    HEAD_MISMATCH = "head_mismatch"


#: What callers may log; head_mismatch is the log's own.
_CALLER_ACTIONS = frozenset(a.value for a in Action if a is not Action.HEAD_MISMATCH)


class Outcome(enum.StrEnum):
    OK = "ok"
    REFUSED = "refused"


ProblemKind = Literal["edited", "removed", "inserted", "reordered", "torn", "truncated", "malformed"]


class AuditLogCorrupt(Exception):
    """The last complete record cannot be read, so the chain cannot be continued."""


@dataclass(frozen=True)
class Head:
    """A point in the chain: what ``audit.head`` holds and what operators compare."""

    seq: int
    hash: str
    at: float


@dataclass(frozen=True)
class Problem:
    line: int
    """1-based line in the log; 0 means the head witness file itself."""
    seq: int | None
    """The seq concerned (the first missing one for ``removed``/``truncated``)."""
    kind: ProblemKind
    message: str


@dataclass
class AuditReport:
    ok: bool
    records: int
    """Complete lines in the log (malformed ones included)."""
    head: Head | None
    """The end of the chain found in the file."""
    witness: Head | None = None
    """What ``audit.head`` says the end is, when present and readable."""
    problems: list[Problem] = field(default_factory=list)


def canonical(record: dict[str, Any]) -> str:
    """The exact text hashed and written: stable across writers and Python versions."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record without its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def default_path(recordings_dir: Path) -> Path:
    """Where the trail is kept unless configured: beside the charts, in a folder
    no clinic id can name (ids do not start with a dot)."""
    return recordings_dir / ".audit" / "audit.jsonl"


def head_path(path: Path) -> Path:
    """``audit.jsonl`` → ``audit.head``, next to it."""
    return path.with_suffix(".head")


def lock_path(path: Path) -> Path:
    """``audit.jsonl`` → ``.audit.lock``, next to it."""
    return path.with_name(f".{path.stem}.lock")


_HOSTNAME = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:80] or "host"


def _node() -> str:
    # The pid is read per call: a forked worker is a different writer.
    return f"{_HOSTNAME}:{os.getpid()}"


def _check_id(value: object, what: str) -> str:
    # The message never repeats the value: it could be the health data refused.
    if not isinstance(value, str) or (value and not ID_PATTERN.fullmatch(value)):
        raise ValueError(f"audit {what} must be empty or an id (1-64 of A-Z a-z 0-9 _ . -)")
    return value


def _fields(
    action: Action | str,
    outcome: Outcome | str,
    actor_role: Role | str,
    actor_sub: str,
    clinic: str,
    visit: str,
    target: str,
    code: str,
) -> dict[str, Any]:
    """The caller's part of a record, checked so no health data or newline gets in."""
    if not isinstance(action, str) or action not in _CALLER_ACTIONS:
        raise ValueError("audit action must be one of " + ", ".join(sorted(_CALLER_ACTIONS)))
    if not isinstance(outcome, str) or outcome not in set(Outcome):
        raise ValueError("audit outcome must be 'ok' or 'refused'")
    if not isinstance(actor_role, str) or actor_role not in ROLES:
        raise ValueError("audit actor_role must be one of " + ", ".join(sorted(ROLES)))
    if not isinstance(target, str) or (target and not _TARGET.fullmatch(target)):
        raise ValueError("audit target must be empty or 1-200 of A-Z a-z 0-9 _ . : / = + -")
    if not isinstance(code, str) or (code and not _CODE.fullmatch(code)):
        raise ValueError("audit code must be empty or an error code (a-z 0-9 _)")
    if (outcome == Outcome.REFUSED) != bool(code):
        raise ValueError("audit code is required for a refusal, and only for one")
    if action == Action.REFUSED and outcome != Outcome.REFUSED:
        raise ValueError("audit action 'refused' needs outcome 'refused'")
    return {
        "action": str(action),
        "outcome": str(outcome),
        "actor": {"role": str(actor_role), "sub": _check_id(actor_sub, "actor_sub")},
        "clinic": _check_id(clinic, "clinic"),
        "visit": _check_id(visit, "visit"),
        "target": target,
        "code": code,
    }


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
        or not _HEX64.fullmatch(record["hash"])
    ):
        return None
    return record


def _load_head(path: Path) -> Head | None:
    """The witness, or None when absent; ValueError when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    seq, hash_, at = data.get("seq"), data.get("hash"), data.get("at")
    if type(seq) is not int or seq < 1 or not isinstance(hash_, str) or not _HEX64.fullmatch(hash_):
        raise ValueError("no seq/hash")
    return Head(seq, hash_, float(at) if isinstance(at, int | float) else 0.0)


@contextlib.contextmanager
def _flock(path: Path, operation: int, *, create: bool) -> Iterator[None]:
    # A fresh open per use: flock belongs to the open file description, so two
    # threads (asyncio.to_thread) or a forked child never share one by accident.
    try:
        fd = os.open(path, (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if create:
            raise
        yield
        return
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # releases the lock


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
        fields = _fields(action, outcome, actor_role, actor_sub, clinic, visit, target, code)
        folder = self.path.parent
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _fsync_dir(folder.parent)
        with _flock(self.lock_path, fcntl.LOCK_EX, create=True):
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
        _fields(action, outcome, actor_role, actor_sub, clinic, visit, target, code)
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
            witness = _load_head(self.head_path)
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


# -- verify ---------------------------------------------------------------


@dataclass(eq=False)
class _Entry:
    index: int
    line: int
    seq: int
    hash: str
    prev: str
    at: float
    record: dict[str, Any]
    edited: bool = False


def _parse(data: bytes, problems: list[Problem]) -> tuple[list[_Entry], list[int], int]:
    """Entries, malformed line numbers and the count of complete lines."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    entries: list[_Entry] = []
    malformed: list[int] = []
    for n, raw in enumerate(lines, 1):
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if (
            not isinstance(record, dict)
            or type(record.get("seq")) is not int
            or record["seq"] < 1
            or not isinstance(record.get("hash"), str)
            or not isinstance(record.get("prev"), str)
        ):
            problems.append(Problem(n, None, "malformed", f"line {n} is not an audit record"))
            malformed.append(n)
            continue
        at = record.get("at")
        entry = _Entry(
            len(entries),
            n,
            record["seq"],
            record["hash"],
            record["prev"],
            float(at) if isinstance(at, int | float) else 0.0,
            record,
        )
        if record_hash(record) != entry.hash:
            entry.edited = True
            problems.append(Problem(n, entry.seq, "edited", f"seq {entry.seq} does not match its own hash"))
        entries.append(entry)
    if tail:
        n = len(lines) + 1
        problems.append(
            Problem(n, None, "torn", f"line {n} has no newline ({len(tail)} bytes): an append crashed mid-write")
        )
    return entries, malformed, len(lines)


def _longest_increasing(values: list[int]) -> set[int]:
    """Positions (into ``values``) of one longest strictly increasing subsequence."""
    tails: list[int] = []  # values[tail_pos[k]] is the smallest tail of a run of length k+1
    tail_pos: list[int] = []
    back: list[int] = []
    for i, v in enumerate(values):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_pos.append(i)
        else:
            tails[k] = v
            tail_pos[k] = i
        back.append(tail_pos[k - 1] if k else -1)
    keep: set[int] = set()
    i = tail_pos[-1] if tail_pos else -1
    while i >= 0:
        keep.add(i)
        i = back[i]
    return keep


def _runs(entries: list[_Entry]) -> list[list[_Entry]]:
    """Entries grouped into runs that are adjacent in the file."""
    runs: list[list[_Entry]] = []
    for e in sorted(entries, key=lambda e: e.index):
        if runs and runs[-1][-1].index == e.index - 1:
            runs[-1].append(e)
        else:
            runs.append([e])
    return runs


def _seqs(run: list[_Entry]) -> str:
    return f"seq {run[0].seq}" if len(run) == 1 else f"{len(run)} records from seq {run[0].seq}"


class _Chain:
    """Walks the chain back from its end and names each place it breaks.

    The walk follows ``prev`` links; where a link is missing it resumes at the
    record with the next lower seq, so damage is reported once where it is and
    the rest of the file is still checked on its own terms.
    """

    def __init__(self, entries: list[_Entry], malformed: list[int], problems: list[Problem]) -> None:
        self.problems = problems
        self.malformed = malformed
        self.by_hash: dict[str, _Entry] = {}
        self.live: list[_Entry] = []
        for e in entries:
            first = self.by_hash.get(e.hash)
            if first is not None:
                problems.append(Problem(e.line, e.seq, "inserted", f"seq {e.seq} is a copy of line {first.line}"))
                continue
            self.by_hash[e.hash] = e
            self.live.append(e)
        self.children: dict[str, list[_Entry]] = {}
        for e in self.live:
            self.children.setdefault(e.prev, []).append(e)
        self.by_seq = sorted(self.live, key=lambda e: (e.seq, e.index))
        self.seq_keys = [e.seq for e in self.by_seq]
        self.visited: set[int] = set()

    def tip(self, witness: Head | None) -> _Entry | None:
        """The end of the chain: from the witness forward if the file has it, else the highest leaf."""
        if witness is not None and witness.hash in self.by_hash:
            tip = self.by_hash[witness.hash]
            seen = {tip.index}
            while True:
                nxt = next(
                    (c for c in self.children.get(tip.hash, ()) if c.seq == tip.seq + 1 and c.index not in seen), None
                )
                if nxt is None:
                    return tip
                tip = nxt
                seen.add(tip.index)
        leaves = [e for e in self.live if e.hash not in self.children] or self.live
        return max(leaves, key=lambda e: (e.seq, e.index)) if leaves else None

    def _below(self, seq: int) -> _Entry | None:
        i = bisect.bisect_left(self.seq_keys, seq) - 1
        while i >= 0:
            e = self.by_seq[i]
            if e.index not in self.visited:
                return e
            i -= 1
        return None

    def _malformed_between(self, a: int, b: int) -> int:
        lo, hi = min(a, b), max(a, b)
        return bisect.bisect_left(self.malformed, hi) - bisect.bisect_right(self.malformed, lo)

    def walk(self, tip: _Entry) -> list[_Entry]:
        """The chain from its first record to ``tip``, reporting every break."""
        chain: list[_Entry] = []
        r: _Entry | None = tip
        while r is not None:
            self.visited.add(r.index)
            chain.append(r)
            target = self.by_hash.get(r.prev)
            if (
                target is not None
                and target.index not in self.visited
                # An edited seq must not hide an intact link.
                and (target.seq == r.seq - 1 or r.edited or target.edited)
            ):
                r = target
                continue
            p = self._below(r.seq)
            self._break(r, p)
            r = p
        chain.reverse()
        return chain

    def _break(self, r: _Entry, p: _Entry | None) -> None:
        if p is None:
            if r.prev == GENESIS or r.seq == 1:
                # The first record; an edit to its seq or prev was reported by its own hash.
                if (r.prev != GENESIS or r.seq != 1) and not r.edited:
                    self.problems.append(Problem(r.line, r.seq, "edited", f"seq {r.seq} does not start the chain"))
                return
            missing_from, before_line = 1, 0
        else:
            missing_from, before_line = p.seq + 1, p.line
            if missing_from == r.seq:
                if not (r.edited or p.edited):
                    self.problems.append(
                        Problem(
                            p.line,
                            p.seq,
                            "edited",
                            f"seq {p.seq} is not the record seq {r.seq} (line {r.line}) was chained to: rewritten",
                        )
                    )
                return
        gap = r.seq - missing_from
        if gap > self._malformed_between(before_line, r.line):
            span = f"seq {missing_from}" if gap == 1 else f"seq {missing_from}..{r.seq - 1}"
            self.problems.append(Problem(r.line, missing_from, "removed", f"{span} missing before line {r.line}"))

    def reordered(self, chain: list[_Entry]) -> None:
        keep = _longest_increasing([e.index for e in chain])
        moved = [e for i, e in enumerate(chain) if i not in keep]
        position = {e.index: i for i, e in enumerate(chain)}
        for run in _runs(moved):
            i = position[run[0].index]
            after = f"after seq {chain[i - 1].seq} (line {chain[i - 1].line})" if i else "first"
            self.problems.append(
                Problem(run[0].line, run[0].seq, "reordered", f"{_seqs(run)} out of place: belongs {after}")
            )

    def inserted(self) -> None:
        stray = [e for e in self.live if e.index not in self.visited]
        for run in _runs(stray):
            self.problems.append(Problem(run[0].line, run[0].seq, "inserted", f"{_seqs(run)} not part of the chain"))


def _head_mismatch_problem(e: _Entry) -> Problem:
    """What an append found wrong with the witness, as recorded in the chain."""
    m = _HEAD_MISMATCH_TARGET.fullmatch(str(e.record.get("target", "")))
    kind: ProblemKind = "edited"
    if m and m.group(1).isdigit():
        head_seq, file_seq = int(m.group(1)), int(m.group(3))
        if head_seq > file_seq:
            kind = "truncated"
        elif head_seq < file_seq - 1:
            kind = "inserted"
    return Problem(
        e.line, e.seq, kind, f"an append found the head witness disagreeing with the file ({e.record.get('target')})"
    )


def _check_witness(
    chain: list[_Entry], tip: _Entry | None, witness: Head, n_lines: int, malformed: list[int], problems: list[Problem]
) -> None:
    last_seq = tip.seq if tip else 0
    found = next((i for i, e in enumerate(chain) if e.hash == witness.hash), None)
    if found is not None:
        if len(chain) - found > 2:
            extra = chain[found + 2]
            problems.append(
                Problem(
                    extra.line,
                    extra.seq,
                    "inserted",
                    f"seq {extra.seq}..{last_seq} come after the head witness (seq {witness.seq})",
                )
            )
        return
    at_witness = next((e for e in chain if e.seq == witness.seq), None)
    if at_witness is None and witness.seq <= last_seq:
        return  # that seq is missing from the chain: already reported as removed
    if witness.seq > last_seq:
        if witness.seq - last_seq > sum(1 for n in malformed if tip is None or n > tip.line):
            problems.append(
                Problem(
                    n_lines + 1,
                    last_seq + 1,
                    "truncated",
                    f"the head witness is at seq {witness.seq} but the file ends at seq {last_seq}",
                )
            )
        return
    if at_witness is not None and not at_witness.edited:
        problems.append(
            Problem(
                at_witness.line,
                witness.seq,
                "edited",
                f"seq {witness.seq} differs from the head witness (hash {witness.hash})",
            )
        )


def verify(path: Path) -> AuditReport:
    """Check the whole log and its head witness; one problem per damaged spot.

    Takes the lock shared, so it sees no append half-done; read-only otherwise.
    """
    path = Path(path)
    problems: list[Problem] = []
    with _flock(lock_path(path), fcntl.LOCK_SH, create=False):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        try:
            witness = _load_head(head_path(path))
        except (OSError, ValueError):
            witness = None
            problems.append(Problem(0, None, "malformed", f"{head_path(path).name} is unreadable"))
    entries, malformed, n_lines = _parse(data, problems)
    chains = _Chain(entries, malformed, problems)
    tip = chains.tip(witness)
    chain = chains.walk(tip) if tip is not None else []
    chains.inserted()
    chains.reordered(chain)
    for e in chain:
        if e.record.get("action") == Action.HEAD_MISMATCH and not e.edited:
            problems.append(_head_mismatch_problem(e))
    if witness is not None:
        _check_witness(chain, tip, witness, n_lines, malformed, problems)
    elif tip is not None and tip.seq > 1 and not any(p.line == 0 for p in problems):
        problems.append(Problem(0, None, "truncated", f"{head_path(path).name} is missing: the end of the log cannot be checked"))
    problems.sort(key=lambda p: (p.line, p.kind))
    return AuditReport(
        ok=not problems,
        records=n_lines,
        head=Head(tip.seq, tip.hash, tip.at) if tip else None,
        witness=witness,
        problems=problems,
    )


def _bench(n: int = 2000) -> None:
    """``python -m telemed.audit [N] [DIR]``: appends/s on this machine (DIR: a temp folder)."""
    import sys
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else n
    with tempfile.TemporaryDirectory(dir=sys.argv[2] if len(sys.argv) > 2 else None) as tmp:
        log = AuditLog(Path(tmp) / "audit" / "audit.jsonl")
        start = time.perf_counter()
        for i in range(n):
            log.append(
                Action.CHART_READ, actor_role="doctor", actor_sub="d1", clinic="c1", visit=f"v{i}", target="chat.jsonl"
            )
        took = time.perf_counter() - start
        t0 = time.perf_counter()
        report = verify(log.path)
        print(
            f"{n} appends in {took:.2f}s: {n / took:.0f} appends/s ({took / n * 1e3:.2f} ms each); "
            f"verify {report.records} records in {time.perf_counter() - t0:.2f}s, ok={report.ok}"
        )


if __name__ == "__main__":
    _bench()
