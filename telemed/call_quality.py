"""How a visit's calls went, as the pages report it: how long media took to
start, whether the connection failed, whether it went through a TURN relay,
whether video was given up to keep the sound. Numbers and words from a fixed
vocabulary only: no health data, nothing a person said or showed.

Each report is kept once per side (patient or doctor) and call (the page's
``call_id``; a page without one has one call per visit), in one Redis hash
per visit (:func:`telemed.keys.call_quality`). A side that reports the same
thing of the same call again changes nothing, so counting a report when it is
first kept counts calls, not retries or reloads, however many nodes receive
them. The hash holds at most :data:`MAX_FIELDS` entries: a page cannot grow it
without bound. When the visit has ended, the chart writer puts
:func:`summary` into ``visit.json``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any

from telemed import keys

#: Entries one visit's hash holds at most (a visit has a few calls per side).
MAX_FIELDS = 200

#: Who reports: the two parties of a call.
SIDES = ("patient", "doctor")

#: Keep each field/value pair (ARGV from 3 on, in pairs) unless the field is
#: already there or the hash is full; refresh the TTL (ARGV[1]). Returns 1 per
#: pair kept, 0 otherwise.
_KEEP = r"""
local kept = {}
for i = 3, #ARGV, 2 do
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then
    kept[#kept + 1] = 0
  else
    kept[#kept + 1] = redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return kept
"""

#: The call id of a page that sends none.
NO_CALL_ID = "-"


@dataclass(frozen=True)
class Report:
    """What one side says of one call (None: not said in this report)."""

    ice_failed: bool = False
    """The connection failed (ICE ``failed``)."""
    relay: bool | None = None
    """The selected candidate pair goes through a TURN relay (True) or not (False)."""
    audio_only: bool = False
    """Video was paused to keep the sound clear."""
    restart: tuple[int, int] | None = None
    """The call's nth recovery and its time: (n, ms from the ICE restart that
    brought the call back to media again). Kept once per n."""


class CallQuality:
    """Keeps the reports of the calls of visits in Redis."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._keep = redis.register_script(_KEEP)

    async def _kept(self, visit_id: str, pairs: list[tuple[str, str]]) -> list[bool]:
        args: list[Any] = [keys.ENDED_VISIT_TTL, MAX_FIELDS]
        for field, value in pairs:
            args += [field, value]
        kept = await self._keep(keys=[keys.call_quality(visit_id)], args=args)
        return [bool(k) for k in kept]

    async def media_started(self, visit_id: str, side: str, call_id: str | None,
                            audio_ms: int | None, video_ms: int | None) -> bool:
        """Keep the first media times of ``side``'s call; False when that call
        had its times already (or the visit's hash is full)."""
        value = json.dumps({"audio_ms": audio_ms, "video_ms": video_ms})
        (kept,) = await self._kept(visit_id, [(_field("start", side, call_id), value)])
        return kept

    async def report(self, visit_id: str, side: str, call_id: str | None, report: Report) -> list[str]:
        """Keep what ``report`` says; returns what was new for that side's call,
        among ``ice_failed``, ``relay``, ``direct``, ``audio_only`` and ``restart``."""
        pairs: list[tuple[str, str, str]] = []  # (name, field, value)
        if report.ice_failed:
            pairs.append(("ice_failed", _field("ice_failed", side, call_id), "1"))
        if report.relay is not None:
            path = "relay" if report.relay else "direct"
            pairs.append((path, _field("path", side, call_id), path))
        if report.audio_only:
            pairs.append(("audio_only", _field("fallback", side, call_id), "audio_only"))
        if report.restart is not None:
            n, ms = report.restart
            pairs.append(("restart", _field(f"restart.{n}", side, call_id), str(ms)))
        if not pairs:
            return []
        kept = await self._kept(visit_id, [(field, value) for _, field, value in pairs])
        return [name for (name, _, _), k in zip(pairs, kept, strict=True) if k]


def _field(kind: str, side: str, call_id: str | None) -> str:
    # Call ids are ids (letters, digits, _ . -): "|" cannot occur in them.
    return f"{kind}|{side}|{call_id or NO_CALL_ID}"


async def summary(redis: Any, visit_id: str) -> dict[str, Any] | None:
    """The visit's calls in numbers, for ``visit.json``; None if nothing was reported.

    ``calls``: distinct calls reported; per side: ``calls_started`` (calls whose
    media started), ``audio_ms_median`` and ``video_ms_median`` (median time to
    the first audio and video received, ms), ``ice_failures``, ``relayed`` and
    ``direct`` (calls by the path their media took), ``audio_only`` (calls in
    which the side paused its video to keep the sound)."""
    entries: dict[str, str] = await redis.hgetall(keys.call_quality(visit_id))
    if not entries:
        return None
    calls: set[str] = set()
    out: dict[str, Any] = {}
    for side in SIDES:
        audio: list[int] = []
        video: list[int] = []
        counts = {"calls_started": 0, "ice_failures": 0, "relayed": 0, "direct": 0, "audio_only": 0}
        for field, value in entries.items():
            kind, _, rest = field.partition("|")
            who, _, call_id = rest.partition("|")
            if who != side:
                continue
            calls.add(call_id)
            if kind == "start":
                counts["calls_started"] += 1
                times = json.loads(value)
                if times.get("audio_ms") is not None:
                    audio.append(int(times["audio_ms"]))
                if times.get("video_ms") is not None:
                    video.append(int(times["video_ms"]))
            elif kind == "ice_failed":
                counts["ice_failures"] += 1
            elif kind == "path":
                counts["relayed" if value == "relay" else "direct"] += 1
            elif kind == "fallback":
                counts["audio_only"] += 1
        out[side] = {
            **counts,
            "audio_ms_median": round(statistics.median(audio)) if audio else None,
            "video_ms_median": round(statistics.median(video)) if video else None,
        }
    return {"calls": len(calls), **out}
