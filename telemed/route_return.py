"""A patient routed to a doctor who went off duty goes back to the shared queue.

Routing to a named doctor records the visit in :data:`telemed.keys.ROUTED`.
Every node sweeps that list; a visit whose doctor has not been seen for
``TELEMED_ROUTE_RETURN`` is un-routed by one script that re-checks the
doctor's last-seen time and the visit's state, so two sweeping nodes return a
patient once and a doctor who came back keeps their patient.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from telemed import _scripts, keys
from telemed.settings import Settings
from telemed.visits import QUEUED, Action, transition_argv

logger = logging.getLogger(__name__)

QUEUED_STATES = frozenset(s.value for s in QUEUED)


@dataclass(frozen=True)
class Returned:
    """A visit sent back to the shared queue."""

    visit_id: str
    clinic: str
    doctor: str
    """The staff id of the doctor who went off duty."""
    version: int
    """The clinic's queue version after the change."""


class RouteReturn:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self.settings = settings
        self._script = redis.register_script(_scripts.RETURN_ROUTED)

    async def sweep_once(self, now: float | None = None) -> list[Returned]:
        """Return every routed patient whose doctor is gone too long; forget
        visits no longer routed."""
        routed: dict[str, str] = await self.redis.hgetall(keys.ROUTED)
        if not routed:
            return []
        now = time.time() if now is None else now
        cutoff_ms = int((now - self.settings.route_return) * 1000)
        visits = sorted(routed)
        pipe = self.redis.pipeline(transaction=False)
        for vid in visits:
            pipe.hmget(keys.visit(vid), "routed_to", "state")
        rows = await pipe.execute()
        doctors = [doctor for doctor, _ in rows]
        queued = [state in QUEUED_STATES for _, state in rows]
        # Only visits whose doctor looks gone (or that are no longer routed or
        # queued, to be forgotten) go through the script, which checks again atomically.
        pipe = self.redis.pipeline(transaction=False)
        for vid, doctor in zip(visits, doctors, strict=True):
            pipe.zscore(keys.staff_seen(routed[vid]), doctor or "")
        seen = await pipe.execute()
        rules = json.dumps(dict(zip(*[iter(transition_argv(Action.ROUTE))] * 2, strict=True)))
        out = []
        for vid, doctor, is_queued, last in zip(visits, doctors, queued, seen, strict=True):
            if is_queued and doctor and last is not None and float(last) >= cutoff_ms:
                continue
            clinic = routed[vid]
            r = await self._script(
                keys=[
                    keys.visit(vid),
                    keys.visit_history(vid),
                    keys.queue_version(clinic),
                    keys.ROUTED,
                    keys.staff_seen(clinic),
                ],
                args=[rules, repr(now), cutoff_ms, vid],
            )
            if r[0] == "ok":
                logger.info("Visit(%s) back in the shared queue: its doctor went off duty", vid)
                out.append(Returned(vid, clinic, r[4], int(r[3])))
        return out
