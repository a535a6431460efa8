"""The transcript in a visit's chart folder: ``transcript.jsonl`` and ``transcript.vtt``.

``transcript.jsonl`` is the record: one line per final result, appended as it
arrives and fsynced, so a crash loses at most the utterance in progress (and
a line torn by the crash is skipped by readers; the next append starts a new
line). Each line::

    {"role": "patient", "party": "patient", "kind": "patient", "name": "Rosa Díaz",
     "language": "ko", "start": 12.34, "end": 14.1, "text": "...",
     "words": [{"word", "start", "end", "conf"}], "at": 1767000000.123,
     "recording": "recording-patient-1.webm"}

``party``, ``kind`` and ``name`` say who spoke (a guest: ``role`` ``guest``,
``party`` their guest id, ``kind`` ``interpreter``...); lines written before
guests had legs have only ``role``. ``language`` is the BCP 47 tag of the model that heard it (the speaker's
language); lines written before languages were recorded have none.

``start``/``end`` (and the words' times) are seconds since the visit started
(the doctor's admit, ``admitted_at``), so both speakers, and a speaker whose
leg was re-established, share one clock; ``at`` is the wall time of
``start``; ``recording`` the file the words are in (its ``started_at`` in
``recordings.json`` places them in it).

``transcript.vtt`` (WebVTT, cues in order of start, the speaker as the voice, ``Name (Kind)``,
the text in a ``<lang>`` span when the line has a language)
is derived from the lines and rewritten atomically after every append. It is
rebuilt from the file, not from what this process wrote, because the two
speakers' legs may be on different workers; each writer reads only the lines
added since its last look. Every change happens under an exclusive ``flock``
of the transcript lock (as for ``recordings.json``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telemed.chart.files import append_line, atomic_write, locked, parse_lines, read_jsonl
from telemed.chart.layout import TRANSCRIPT, TRANSCRIPT_LOCK, TRANSCRIPT_VTT

#: What may stand in a cue's ``<lang>`` tag (a language tag; anything else is left out).
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


def _clock(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_vtt(entries: Iterable[dict[str, Any]]) -> str:
    """WebVTT of transcript lines: one cue per line in order of start, ``<v Role>``,
    the text as ``<lang ko>...</lang>`` when the line names its language."""
    out = ["WEBVTT", ""]
    for e in sorted(entries, key=lambda e: (e["start"], e["end"], e["role"])):
        start = float(e["start"])
        end = max(float(e["end"]), start + 0.001)  # a cue must end after it starts
        text = _escape(str(e["text"]))
        language = e.get("language")
        if isinstance(language, str) and _TAG.fullmatch(language):
            text = f"<lang {language}>{text}</lang>"
        out += [f"{_clock(start)} --> {_clock(end)}", f"<v {_escape(_voice(e))}>{text}", ""]
    return "\n".join(out)


def _voice(entry: dict[str, Any]) -> str:
    """Who speaks in a cue: ``Name (Kind)`` when the line names them, else the role (``Patient``)."""
    kind = str(entry.get("kind") or entry["role"]).title()
    name = entry.get("name")
    return f"{name} ({kind})" if isinstance(name, str) and name.strip() else kind


class Transcript:
    """One visit folder's transcript, as one writer sees it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._entries: list[dict[str, Any]] = []
        self._read_to = 0  # bytes of transcript.jsonl already in _entries

    def read(self) -> list[dict[str, Any]]:
        """Every line of the transcript, in the order they were written."""
        return read_jsonl(self.folder / TRANSCRIPT)

    def append(self, entry: dict[str, Any]) -> None:
        """Add a line (durably), then rewrite the VTT."""
        with locked(self.folder, TRANSCRIPT_LOCK):
            path = self.folder / TRANSCRIPT
            append_line(path, entry)
            self._catch_up(path)
            atomic_write(self.folder / TRANSCRIPT_VTT, render_vtt(self._entries).encode())

    def _catch_up(self, path: Path) -> None:
        with open(path, "rb") as f:
            f.seek(self._read_to)
            data = f.read()
        complete = data.rfind(b"\n") + 1
        self._entries += parse_lines(data[:complete], str(path))
        self._read_to += complete
