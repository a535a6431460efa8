"""What the node writes into the chart: ``visit.json`` and ``chat.jsonl``.

``chat.jsonl`` is copied from the visit's Redis stream while the visit runs
(a few seconds after a message, several at once) and completed at its end;
every copy appends only the lines the file lacks, by stream id, under the
chart lock, so several nodes copying one chat write each line once. ``visit.json`` is written when
the visit has ended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telemed import consent
from telemed.chart.files import atomic_write, fsync_dir, parse_lines
from telemed.chart.layout import CHAT, FORMAT
from telemed.visits import Visit


def visit_record(visit: Visit, history: list[dict[str, Any]], chat: Iterable[dict[str, Any]] = (),
                 call_quality: dict[str, Any] | None = None) -> dict[str, Any]:
    """``visit.json``: the visit as the chart keeps it. Participants are the
    patient, the doctor, the nurse who triaged, and everyone who wrote in the chat.
    ``call_quality``: how the calls went (:func:`telemed.call_quality.summary`)."""
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
        # The patient's language (a BCP 47 tag), chosen on their page; None before check-in.
        "language": visit.language or None,
        "acuity": visit.acuity,
        "triage": {"note": visit.triage_note, "by": visit.triaged_by, "at": triaged["at"] if triaged else None}
        if (visit.triage_note or visit.triaged_by)
        else None,
        # Consent is given at check-in, with the wording (language and version) the page showed.
        "consent": _consent(visit) if checked_in is not None else None,
        "participants": participants,
        "times": {"created": visit.created_at, "checked_in": checked_in, "admitted": visit.admitted_at, "ended": visit.ended_at},
        # The appointment, for a visit booked for a time (None: any time).
        "scheduled_at": visit.scheduled_at,
        "history": history,
        # How the calls went, in counts and median times only (None: the pages reported nothing).
        "call_quality": call_quality,
    }


def _consent(visit: Visit) -> dict[str, Any]:
    """What the patient agreed to, in which wording: its language and version,
    and the SHA-256 of the words (:data:`telemed.consent.WORDINGS`), when known."""
    sha = consent.WORDINGS.get((visit.consent_language, visit.consent_version))
    return {"visit": visit.consent_visit, "recording": visit.consent_recording, "version": visit.consent_version,
            "language": visit.consent_language or None, "sha256": sha, "at": visit.checked_in_at}


def chat_line(message: dict[str, Any]) -> dict[str, Any]:
    """One ``chat.jsonl`` line of a stored chat message (:class:`telemed.chat.Message`)."""
    return {"id": message["id"], "client_id": message["client_id"], "at": message["ts"], "role": message["role"],
            "sub": message["sender"], "name": message["name"], "text": message["text"]}


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


#: How much of the end of ``chat.jsonl`` is read at first to find its last line.
TAIL_READ = 8192


def _last_id(fd: int, size: int) -> tuple[int, int]:
    """The stream id of the last complete, valid line of the open ``chat.jsonl``
    (``(-1, -1)`` for none), reading only as much of its end as that takes."""
    chunk = TAIL_READ
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")
        if start:
            lines = lines[1:]  # may be the end of a line that starts before the chunk
        for entry in reversed(parse_lines(b"\n".join(lines), CHAT) if lines else []):
            if "id" in entry:
                return _stream_id(str(entry["id"]))
        if not start:
            return (-1, -1)
        chunk *= 4


def append_chat(where: Path, messages: Iterable[dict[str, Any]], *, durable: bool = True) -> int:
    """Append the chat lines ``chat.jsonl`` lacks (by stream id: those after its
    last line) in one write, and fsync it (and the folder); returns how many were added. Call
    under :func:`locked`. Reads only the end of the file (the whole of it was
    read, parsed and rewritten at every copy before: for a node copying ~50
    visits' chat a second, that work in a thread held the event loop's GIL).
    A last line torn by a crash is skipped by readers and not glued onto: the
    new lines start on a line of their own, and the torn message is written
    again (it is after the last complete line).

    ``durable=False`` leaves the flush to disk to the kernel (no fsync): for
    the copies made while the visit runs, whose messages Redis keeps until
    the chart is written at the end, with fsync, by this same function. A
    line such a copy loses in a crash is after the last line left, so the next
    copy writes it again."""
    path = where / CHAT
    where.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        after = _last_id(fd, size) if size else (-1, -1)
        new = [m for m in messages if _stream_id(str(m["id"])) > after]
        if new:
            data = b"".join(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for m in new)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)  # with the lines copies without it wrote before
    finally:
        os.close(fd)
    if durable:
        fsync_dir(where)  # the file's name too (a copy without fsync may have made it)
    return len(new)


def complete_chat(where: Path, messages: list[dict[str, Any]]) -> int:
    """The copy at the end of the visit: ``messages`` is the whole stored chat.
    Appends what ``chat.jsonl`` lacks and syncs it (:func:`append_chat`); if a
    message before its last line is missing (a copy without fsync lost lines
    in a crash of the machine holding the folder while a node that had copied
    later lines went on), the file is rewritten atomically with every message
    in stream order. Returns how many lines were added. Call under :func:`locked`."""
    added = append_chat(where, messages)
    path = where / CHAT
    have = {str(entry.get("id")) for entry in parse_lines(path.read_bytes(), CHAT)}
    missing = [m for m in messages if str(m["id"]) not in have]
    if missing:
        lines = {str(entry["id"]): entry for entry in parse_lines(path.read_bytes(), CHAT) if "id" in entry}
        lines.update((str(m["id"]), m) for m in messages)
        ordered = sorted(lines.values(), key=lambda m: _stream_id(str(m["id"])))
        atomic_write(path, b"".join(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for m in ordered))
        added += len(missing)
    return added
