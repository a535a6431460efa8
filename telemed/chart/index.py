"""The chart browser's index: one summary per written chart, in Redis.

Listing a clinic's charts must not read every folder (10,000 visits are
10,000 ``visit.json`` files). When the node writes a chart
(:meth:`signaling.charts.ChartKeeper.finalise`) it also adds the visit's
summary here (:func:`summary` knows which fields of ``visit.json`` it holds):

- ``chart_summaries(clinic)``: visit -> the summary as JSON;
- ``chart_times(clinic)``: visit -> when it ended (else was created), the
  list's order (newest first) and its date range;
- ``chart_search(clinic)``: visit -> ``state|doctor|patient name`` in lower
  case, so a filter or a name search reads one short string per visit of the
  range and decodes only the page it returns;
- ``chart_doctors(clinic)``: the doctors of the clinic's charts (the filter).

The folders stay the record: a node starting indexes the charts of every
clinic whose list is empty (:func:`index_unlisted_clinics`: charts written
before the index existed, or a Redis that lost its data). Retention removes
an entry with its folder.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemed import keys
from telemed.chart.layout import VISIT

logger = logging.getLogger(__name__)

#: Charts on one page of the list.
PAGE_SIZE = 50

#: Separates the fields of a search string (never part of a name or an id).
SEP = "\x1f"

#: A filtered page, in Redis: the range's ids newest first, their search
#: strings read 1000 at a time, matched (state and doctor equal, the name a
#: plain substring; both sides already lower case), counted, and the page's
#: ids returned with the total. Nothing crosses the network but the page:
#: 10,000 charts take a few milliseconds of Redis time.
#: KEYS: times, search. ARGV: top, bottom, state, doctor, name, start, count.
FILTER = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2])
local want_state, want_doctor, want_name = ARGV[3], ARGV[4], ARGV[5]
local first, count = tonumber(ARGV[6]), tonumber(ARGV[7])
local page, total = {}, 0
local sep = string.char(31)
for i = 1, #ids, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
  local values = redis.call('HMGET', KEYS[2], unpack(chunk))
  for j = 1, #chunk do
    local s = values[j]
    if s then
      local a = string.find(s, sep, 1, true)
      local b = string.find(s, sep, a + 1, true)
      if (want_state == '' or string.sub(s, 1, a - 1) == want_state)
         and (want_doctor == '' or string.sub(s, a + 1, b - 1) == want_doctor)
         and (want_name == '' or string.find(string.sub(s, b + 1), want_name, 1, true)) then
        if total >= first and total < first + count then page[#page + 1] = chunk[j] end
        total = total + 1
      end
    end
  end
end
return {total, page}
"""


def _person(record: dict[str, Any], role: str) -> dict[str, str] | None:
    for p in record.get("participants") or []:
        if isinstance(p, dict) and p.get("role") == role:
            return {"sub": str(p.get("sub", "")), "name": str(p.get("name", ""))}
    return None


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The list's view of a chart, from its ``visit.json``: visit id, clinic,
    state (and why it ended), acuity, patient and doctor names, times."""
    times = record.get("times") or {}
    patient = _person(record, "patient")
    doctor = _person(record, "doctor")
    return {
        "visit_id": str(record["id"]),
        "clinic": str(record["clinic"]),
        "state": str(record.get("state", "")),
        "end_reason": record.get("end_reason") or "",
        "acuity": record.get("acuity"),
        "patient_name": patient["name"] if patient else "",
        "doctor": doctor,
        "created_at": times.get("created"),
        "ended_at": times.get("ended"),
    }


def _when(s: dict[str, Any]) -> float:
    return float(s.get("ended_at") or s.get("created_at") or 0.0)


def _search_string(s: dict[str, Any]) -> str:
    doctor = (s.get("doctor") or {}).get("sub", "")
    return SEP.join((s["state"], doctor, s["patient_name"].casefold()))


@dataclass(frozen=True)
class Filters:
    """What the list shows: a range of end times (seconds, inclusive), a state,
    a doctor (sub), and a piece of the patient's name."""

    since: float | None = None
    until: float | None = None
    state: str = ""
    doctor: str = ""
    name: str = ""

    @property
    def plain(self) -> bool:
        return not (self.state or self.doctor or self.name)


@dataclass
class Page:
    """One page of the list, newest first."""

    charts: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    size: int = PAGE_SIZE
    doctors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"charts": self.charts, "total": self.total, "page": self.page, "pages": self.pages,
                "page_size": self.size, "doctors": self.doctors}


class ChartList:
    """The index of written charts, per clinic."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._filter = redis.register_script(FILTER)

    async def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Index a chart (its ``visit.json``); again for the same visit replaces it."""
        s = summary(record)
        clinic, visit_id = s["clinic"], s["visit_id"]
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.chart_summaries(clinic), visit_id, json.dumps(s, separators=(",", ":")))
        pipe.zadd(keys.chart_times(clinic), {visit_id: _when(s)})
        pipe.hset(keys.chart_search(clinic), visit_id, _search_string(s))
        if s["doctor"] and s["doctor"]["sub"]:
            pipe.hset(keys.chart_doctors(clinic), s["doctor"]["sub"], s["doctor"]["name"])
        await pipe.execute()
        return s

    async def remove(self, clinic: str, visit_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.chart_summaries(clinic), visit_id)
        pipe.zrem(keys.chart_times(clinic), visit_id)
        pipe.hdel(keys.chart_search(clinic), visit_id)
        await pipe.execute()

    async def get(self, clinic: str, visit_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(keys.chart_summaries(clinic), visit_id)
        return json.loads(raw) if raw else None

    async def doctors(self, clinic: str) -> list[dict[str, str]]:
        """The doctors of the clinic's charts, by name."""
        found = await self.redis.hgetall(keys.chart_doctors(clinic))
        return sorted(({"sub": sub, "name": name} for sub, name in found.items()), key=lambda d: (d["name"].casefold(), d["sub"]))

    async def page(self, clinic: str, filters: Filters, page: int = 1, size: int = PAGE_SIZE) -> Page:
        """Page ``page`` (from 1) of the clinic's charts matching ``filters``, newest first."""
        times = keys.chart_times(clinic)
        top = "+inf" if filters.until is None else repr(filters.until)
        bottom = "-inf" if filters.since is None else repr(filters.since)
        start = (page - 1) * size
        if filters.plain:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zcount(times, bottom, top)
            pipe.zrevrangebyscore(times, top, bottom, start=start, num=size)
            total, ids = await pipe.execute()
        else:
            total, ids = await self._filter(keys=[times, keys.chart_search(clinic)],
                                            args=[top, bottom, filters.state, filters.doctor, filters.name.casefold(), start, size])
        charts = []
        if ids:
            for raw in await self.redis.hmget(keys.chart_summaries(clinic), ids):
                if raw:
                    charts.append(json.loads(raw))
        return Page(charts=charts, total=int(total), page=page, pages=max(1, -(-int(total) // size)), size=size,
                    doctors=await self.doctors(clinic))


async def index_unlisted_clinics(redis: Any, root: Path) -> int:
    """Index every chart of each clinic whose list is empty in Redis (charts
    written before the index existed, or a Redis that lost its data); returns
    how many were added. A node runs it once at start: it lists the clinic
    folders, and reads ``visit.json`` files only of clinics with no list."""
    index = ChartList(redis)

    def clinics() -> list[str]:
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    added = 0
    for clinic in await asyncio.to_thread(clinics):
        if await redis.exists(keys.chart_times(clinic)):
            continue
        for record in await asyncio.to_thread(folder_summaries, root, clinic):
            if record.get("id") and record.get("clinic") == clinic:
                await index.add(record)
                added += 1
    if added:
        logger.info("Chart index: %d charts of unlisted clinics added", added)
    return added


def folder_summaries(root: Path, clinic: str) -> list[dict[str, Any]]:
    """Every written chart of a clinic's folder (its ``visit.json``), to rebuild
    the index from the record. Reads every folder: for rebuilding, not listing."""
    out: list[dict[str, Any]] = []
    folder = root / clinic
    if not folder.is_dir():
        return out
    for where in sorted(folder.iterdir()):
        if where.name.startswith(".") or where.is_symlink():
            continue
        try:
            out.append(json.loads((where / VISIT).read_text()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except ValueError:
            logger.warning("Chart(%s) has a damaged %s; not indexed", where.name, VISIT)
    return out
