"""The audit trail: real files, real processes; every tampering shape found once, where it is."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from telemed.audit import GENESIS, Action, AuditLog, AuditReport, canonical, record_hash, verify


def _fill(log: AuditLog, n: int) -> list[dict[str, Any]]:
    """n records of varied shape; record 5 (when there is one) is a refusal."""
    out = []
    for i in range(1, n + 1):
        if i == 5:
            out.append(
                log.append(
                    Action.CHART_READ,
                    outcome="refused",
                    code="forbidden",
                    actor_role="nurse",
                    actor_sub="n7",
                    clinic="c1",
                    visit="v5",
                    target="chat.jsonl",
                )
            )
        else:
            action = Action.ADMIT if i % 2 else Action.FILE_DOWNLOAD
            target = "" if i % 2 else f"snap{i}.jpg"
            out.append(
                log.append(action, actor_role="doctor", actor_sub="d1", clinic="c1", visit=f"v{i}", target=target)
            )
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


def _found(report: AuditReport) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in report.problems]


def _flip(text: str) -> str:
    """One byte changed, still valid JSON of the same type (digits stay digits, hex stays hex)."""
    c = text[-1]
    new = ("8" if c == "9" else str(int(c) + 1)) if c.isdigit() else ("b" if c == "a" else "a")
    return text[:-1] + new


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "recordings" / "audit" / "audit.jsonl")


def test_chain_verifies_and_reads_back(log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telemed.audit")
    written = _fill(log, 12)
    report = verify(log.path)
    assert report.ok, report.problems
    assert report.records == 12
    assert report.head is not None and report.witness is not None
    assert (report.head.seq, report.head.hash) == (12, written[-1]["hash"])
    assert (report.witness.seq, report.witness.hash) == (12, written[-1]["hash"])
    assert list(log.read()) == written
    assert [r["seq"] for r in written] == list(range(1, 13))
    assert written[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] == record_hash(a) for a, b in zip(written, written[1:], strict=False))
    assert _lines(log.path)[4] == canonical(written[4]) + "\n"
    assert f"audit head seq=12 hash={written[-1]['hash']}" in caplog.messages


def test_files_are_private(log: AuditLog) -> None:
    _fill(log, 1)
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700
    for path in (log.path, log.head_path, log.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in log.path.parent.iterdir()) == [".audit.lock", "audit.head", "audit.jsonl"]


FIELDS = ["seq", "at", "action", "outcome", "role", "sub", "clinic", "visit", "target", "code", "node", "prev", "hash"]


# Every field of the first, an even, the refused and the last record (code is only set on 5, target on evens).
EDITS = [
    (key, line)
    for key in FIELDS
    for line in (1, 2, 5, 10)
    if not (key == "code" and line != 5) and not (key == "target" and line == 1)
]


@pytest.mark.parametrize(("key", "line"), EDITS)
def test_one_byte_edit_in_any_field_is_edited_at_its_line(log: AuditLog, key: str, line: int) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    record = json.loads(lines[line - 1])
    value = record["actor"][key] if key in ("role", "sub") else record[key]
    old = f'"{key}":{json.dumps(value)}'
    assert lines[line - 1].count(old) == 1
    new = _flip(json.dumps(value)) if isinstance(value, int | float) else json.dumps(_flip(value))
    lines[line - 1] = lines[line - 1].replace(old, f'"{key}":{new}')
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(line, "edited")]


def test_edited_record_with_recomputed_hash_is_found_by_the_next_link(log: AuditLog) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    record = json.loads(lines[4])
    record["visit"] = "v99"
    record["hash"] = record_hash(record)
    lines[4] = canonical(record) + "\n"
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(5, "edited")]


@pytest.mark.parametrize("gone", [[1], [5], [4, 5, 6]])
def test_removed_records_are_one_problem(log: AuditLog, gone: list[int]) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    _write(log.path, [x for n, x in enumerate(lines, 1) if n not in gone])
    report = verify(log.path)
    assert _found(report) == [(gone[0], "removed")]
    assert report.problems[0].seq == gone[0]


def test_swapped_records_are_one_problem(log: AuditLog) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    lines[3], lines[4] = lines[4], lines[3]
    _write(log.path, lines)
    assert [kind for _, kind in _found(verify(log.path))] == ["reordered"]


def test_moved_block_is_one_problem(log: AuditLog) -> None:
    _fill(log, 12)
    lines = _lines(log.path)
    _write(log.path, lines[:2] + lines[5:9] + lines[2:5] + lines[9:])
    assert [kind for _, kind in _found(verify(log.path))] == ["reordered"]


def test_forged_record_with_its_own_good_hash_is_inserted(log: AuditLog) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    after = json.loads(lines[4])
    forged = {**after, "seq": 6, "prev": after["hash"], "visit": "v42", "action": "export", "target": "zip"}
    forged["hash"] = record_hash(forged)
    lines.insert(5, canonical(forged) + "\n")
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(6, "inserted")]


def test_copied_line_is_inserted(log: AuditLog) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    lines.insert(7, lines[2])
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(8, "inserted")]


def test_forged_records_after_the_head_witness_are_inserted(log: AuditLog) -> None:
    written = _fill(log, 10)
    lines = _lines(log.path)
    last = written[-1]
    for seq in (11, 12):
        last = {**last, "seq": seq, "prev": last["hash"], "visit": f"v{seq}"}
        last["hash"] = record_hash(last)
        lines.append(canonical(last) + "\n")
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(12, "inserted")]


def test_removed_last_record_is_truncated_through_the_head(log: AuditLog) -> None:
    _fill(log, 10)
    _write(log.path, _lines(log.path)[:-1])
    report = verify(log.path)
    assert _found(report) == [(10, "truncated")]
    assert report.problems[0].seq == 10


def test_truncation_stays_on_record_after_the_next_append(log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    _fill(log, 10)
    _write(log.path, _lines(log.path)[:-3])
    record = log.append(Action.END, actor_role="system", clinic="c1", visit="v1")
    report = verify(log.path)
    # The append rewrote the witness, but first chained a head_mismatch record.
    assert _found(report) == [(8, "truncated")]
    assert record["seq"] == 9
    assert [r["action"] for r in log.read()][-2:] == ["head_mismatch", "end"]
    assert any("head witness seq=10" in m for m in caplog.messages)


def test_malformed_line_is_one_problem(log: AuditLog) -> None:
    _fill(log, 10)
    lines = _lines(log.path)
    lines[4] = "not json\n"
    _write(log.path, lines)
    assert _found(verify(log.path)) == [(5, "malformed")]


def test_damaged_last_line_does_not_stop_auditing(log: AuditLog) -> None:
    _fill(log, 10)
    _write(log.path, _lines(log.path)[:-1] + ["\x00\x00garbage\n"])
    record = log.append(Action.END, actor_role="doctor", actor_sub="d1", clinic="c1", visit="v1")
    # Chained from seq 9, after a head_mismatch record noting the witness was at 10.
    assert record["seq"] == 11
    assert _found(verify(log.path)) == [(10, "malformed"), (11, "truncated")]


def test_torn_tail_is_reported_then_repaired_by_the_next_append(
    log: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(log, 10)
    with log.path.open("a") as f:
        f.write('{"action":"admit","actor":{"role":"doc')
    report = verify(log.path)
    assert _found(report) == [(11, "torn")]
    assert report.records == 10

    record = log.append(Action.END, actor_role="doctor", actor_sub="d1", clinic="c1", visit="v1")
    assert record["seq"] == 11
    assert any("torn last line" in m for m in caplog.messages)
    report = verify(log.path)
    assert report.ok, report.problems
    assert [r["seq"] for r in log.read()] == list(range(1, 12))


def test_missing_file_with_a_witness_is_truncated(log: AuditLog) -> None:
    _fill(log, 3)
    log.path.unlink()
    assert _found(verify(log.path)) == [(1, "truncated")]


def test_empty_log_verifies(log: AuditLog) -> None:
    report = verify(log.path)
    assert report.ok and report.records == 0 and report.head is None


@pytest.mark.parametrize(
    "bad",
    [
        {"visit": "Jane Doe"},
        {"clinic": "c1\nc2"},
        {"actor_sub": "a" * 65},
        {"target": "patient reports chest pain"},
        {"target": "chat.jsonl\n"},
        {"target": "x" * 201},
        {"target": "jane.doe@example.org"},
        {"code": "Chest pain"},
        {"outcome": "refused"},  # a refusal without a code
        {"code": "forbidden"},  # a code on a success
        {"actor_role": "nurse practitioner"},
        {"action": "chest pain"},
        {"action": "head_mismatch"},  # the log's own
    ],
)
def test_fields_shaped_like_health_data_are_refused(log: AuditLog, bad: dict[str, str]) -> None:
    fields: dict[str, Any] = {"action": "chart_read", "actor_role": "doctor", "clinic": "c1", "visit": "v1", **bad}
    with pytest.raises(ValueError) as excinfo:
        log.append(**fields)
    # The message never repeats what was refused: it may end up in a log.
    message = str(excinfo.value)
    assert not any(s in message.lower() for s in ("jane", "chest", "\n", "xxxx", "aaaa"))
    assert not log.path.exists()


def _append_many(path: str, n: int, go: Any) -> None:
    go.wait()
    log = AuditLog(Path(path))
    for i in range(n):
        log.append(
            Action.FILE_DOWNLOAD, actor_role="doctor", actor_sub=f"p{os.getpid()}", visit=f"v{i}", target="a.webm"
        )


@pytest.mark.slow
def test_processes_appending_at_once_keep_one_chain(log: AuditLog) -> None:
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(log.path), 200, go)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = list(log.read())
    assert [r["seq"] for r in records] == list(range(1, 801))
    assert len({r["node"] for r in records}) == 4
    report = verify(log.path)
    assert report.ok, report.problems[:5]
    assert report.head is not None and report.head.seq == 800


async def test_arecord_from_many_tasks_keeps_one_chain(log: AuditLog) -> None:
    records = await asyncio.gather(
        *(log.arecord("fhir_read", actor_role="doctor", actor_sub="d1", clinic="c1", visit=f"v{i}") for i in range(40))
    )
    assert sorted(r["seq"] for r in records) == list(range(1, 41))
    assert verify(log.path).ok
    with pytest.raises(ValueError):
        await log.arecord("fhir_read", actor_role="doctor", visit="John Smith")


def test_deleting_the_head_witness_and_the_tail_is_detected(tmp_path: Path) -> None:
    """The witness is what shows a cut tail; deleting it too must not hide the cut,
    neither to verify nor after the next append."""
    from telemed.audit import AuditLog, head_path, verify

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for n in range(6):
        log.append("chart_read", actor_role="nurse", actor_sub="n1", clinic="c1", visit=f"v{n}")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4]))
    head_path(path).unlink()
    report = verify(path)
    assert not report.ok and [p.kind for p in report.problems] == ["truncated"]
    log.append("chart_read", actor_role="nurse", actor_sub="n1", clinic="c1", visit="v9")
    assert not verify(path).ok
