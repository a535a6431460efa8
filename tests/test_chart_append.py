"""chat.jsonl is appended to, not rewritten (telemed/chart/record.py append_chat):
only the messages after its last complete line are added, a line torn by a crash
is neither glued onto nor lost, and a last line longer than what is read of the
file's end at first is still found."""

from __future__ import annotations

import json
from pathlib import Path

from telemed import chart
from telemed.chart import record
from telemed.chart.files import read_jsonl


def _message(n: int, text: str = "") -> dict[str, object]:
    return {"id": f"{1700000000000 + n}-0", "client_id": f"c{n}", "text": text or f"m{n}"}


def _ids(folder: Path) -> list[str]:
    """The ids of the complete lines, as the chart's readers see them."""
    return [str(entry["id"]) for entry in read_jsonl(folder / chart.CHAT)]


def test_only_messages_after_the_last_line_are_appended(tmp_path: Path) -> None:
    messages = [_message(n) for n in range(6)]
    assert chart.append_chat(tmp_path, messages[:3]) == 3
    before = (tmp_path / chart.CHAT).read_bytes()
    assert chart.append_chat(tmp_path, messages) == 3  # the first three again, and three new
    assert chart.append_chat(tmp_path, messages) == 0
    assert (tmp_path / chart.CHAT).read_bytes().startswith(before)  # appended, the lines before untouched
    assert _ids(tmp_path) == [m["id"] for m in messages]


def test_no_messages_still_leaves_the_file(tmp_path: Path) -> None:
    assert chart.append_chat(tmp_path / "v", []) == 0
    assert (tmp_path / "v" / chart.CHAT).read_bytes() == b""


def test_a_torn_last_line_is_not_glued_onto_and_its_message_is_written_again(tmp_path: Path) -> None:
    messages = [_message(n) for n in range(4)]
    chart.append_chat(tmp_path, messages[:2])
    whole = json.dumps(messages[2]).encode()
    with open(tmp_path / chart.CHAT, "ab") as f:
        f.write(whole[: len(whole) // 2])  # a crash half-way through the third line
    assert chart.append_chat(tmp_path, messages) == 2
    assert _ids(tmp_path) == [m["id"] for m in messages]  # the torn line is skipped by readers


def test_a_last_line_longer_than_the_first_read_is_found(tmp_path: Path) -> None:
    long = "x" * (3 * record.TAIL_READ)
    messages = [_message(0), _message(1, long), _message(2)]
    chart.append_chat(tmp_path, messages[:2])
    assert chart.append_chat(tmp_path, messages) == 1
    assert _ids(tmp_path) == [m["id"] for m in messages]


def test_copies_without_fsync_then_the_end_s_copy_leaves_every_message(tmp_path: Path) -> None:
    messages = [_message(n) for n in range(6)]
    assert chart.append_chat(tmp_path, messages[:2], durable=False) == 2
    assert record.complete_chat(tmp_path, messages) == 4
    assert _ids(tmp_path) == [m["id"] for m in messages]


def test_the_end_s_copy_fills_a_gap_before_the_last_line(tmp_path: Path) -> None:
    """Lines lost by a copy without fsync, while later lines were copied after
    them: the end's copy rewrites the file with every message, in order."""
    messages = [_message(n) for n in range(6)]
    chart.append_chat(tmp_path, [messages[0], messages[3]], durable=False)  # 1 and 2 lost in a crash
    assert record.complete_chat(tmp_path, messages) == 4
    assert _ids(tmp_path) == [m["id"] for m in messages]
