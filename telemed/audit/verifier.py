"""The audit trail's forensic verifier: :func:`verify` checks the whole chain
and its head witness and names each damaged spot once (edited, removed,
inserted, reordered, torn, truncated, malformed)."""

from __future__ import annotations

import bisect
import fcntl
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from telemed.audit.record import GENESIS, Action, Head, head_path, load_head, lock_path, locked, record_hash

_HEAD_MISMATCH_TARGET = re.compile(r"head:(\d+|unreadable):?([0-9a-f]{64})?/file:(\d+)")

ProblemKind = Literal["edited", "removed", "inserted", "reordered", "torn", "truncated", "malformed"]


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
    with locked(lock_path(path), fcntl.LOCK_SH, create=False):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        try:
            witness = load_head(head_path(path))
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
        problems.append(
            Problem(0, None, "truncated", f"{head_path(path).name} is missing: the end of the log cannot be checked")
        )
    problems.sort(key=lambda p: (p.line, p.kind))
    return AuditReport(
        ok=not problems,
        records=n_lines,
        head=Head(tip.seq, tip.hash, tip.at) if tip else None,
        witness=witness,
        problems=problems,
    )
