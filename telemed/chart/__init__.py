"""The chart: a visit's folder, complete and intact. Every piece of knowledge
about the folder lives in this package, and the node and the media workers
both use it:

- :mod:`~telemed.chart.layout`: the folder and its file names;
- :mod:`~telemed.chart.files`: atomic writes, locks, JSON Lines;
- :mod:`~telemed.chart.record`: ``visit.json`` and ``chat.jsonl`` (the node);
- :mod:`~telemed.chart.recordings`: ``recordings.json`` (the workers);
- :mod:`~telemed.chart.transcript`: ``transcript.jsonl`` and ``.vtt`` (the workers);
- :mod:`~telemed.chart.fhir`: the FHIR R4 export;
- :mod:`~telemed.chart.seal`: the manifest, sealing and verifying;
- :mod:`~telemed.chart.retention`: what is old enough to go, and purging it;
- :mod:`~telemed.chart.export`: the chart as one zip.

Every file is written atomically (temp file, fsync, rename, fsync of the
folder), except the recordings (which grow while they record; a cut file plays
up to about a second before the cut) and ``transcript.jsonl`` (appended and
fsynced per utterance; a line torn by a crash is skipped by readers).
"""

from __future__ import annotations

from telemed.chart.export import write_zip
from telemed.chart.fhir import BundleError
from telemed.chart.files import atomic_write, locked, read_jsonl, write_json
from telemed.chart.layout import (
    CHAT,
    FHIR,
    MANIFEST,
    RECORDINGS,
    TRANSCRIPT,
    TRANSCRIPT_VTT,
    VISIT,
    chart_files,
    content_type,
    find,
    recording_name,
    safe_id,
    snapshot_name,
    visit_folder,
)
from telemed.chart.record import append_chat, chat_line, visit_record
from telemed.chart.recordings import ChartIndex, party_of, still_recording
from telemed.chart.retention import MIN_RETENTION, ORPHAN_AFTER, ended_at, expired, purge, remove
from telemed.chart.seal import Problem, Verification, digest, seal, sealed_manifest, verify
from telemed.chart.transcript import Transcript, render_vtt

__all__ = [
    "CHAT", "FHIR", "MANIFEST", "MIN_RETENTION", "ORPHAN_AFTER", "RECORDINGS", "TRANSCRIPT", "TRANSCRIPT_VTT",
    "VISIT", "BundleError", "ChartIndex", "Problem", "Transcript", "Verification", "append_chat", "atomic_write",
    "chart_files", "chat_line", "content_type", "digest", "ended_at", "expired", "find", "locked", "purge",
    "party_of", "read_jsonl", "recording_name", "remove", "render_vtt", "safe_id", "seal", "sealed_manifest",
    "snapshot_name", "still_recording", "verify", "visit_folder", "visit_record", "write_json", "write_zip",
]
