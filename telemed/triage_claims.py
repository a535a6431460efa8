"""Who is with whom: the nurses who have a waiting patient open right now.

A nurse opening a patient's chat or triage panel claims that patient; closing
it, or the nurse's last socket going, releases the claim. A claim is a hint,
not a lock: a second nurse may still open the patient, and is warned. Claims of
a nurse no longer on duty (a node that died cannot release them) are ignored
and removed when read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.asyncio as aioredis

from telemed import keys
from telemed.settings import Settings

logger = logging.getLogger(__name__)

SEP = "|"


class TriageClaims:
    """Every clinic's claims in one Redis (one small hash per clinic)."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self.settings = settings

    async def claim(self, clinic: str, visit_id: str, sub: str) -> None:
        await self.redis.hset(keys.triage_claims(clinic), f"{visit_id}{SEP}{sub}", int(time.time() * 1000))

    async def release(self, clinic: str, visit_id: str, sub: str) -> bool:
        """Release one claim; True if there was one."""
        return bool(await self.redis.hdel(keys.triage_claims(clinic), f"{visit_id}{SEP}{sub}"))

    async def release_all(self, clinic: str, sub: str) -> int:
        """The nurse went away: release every claim of theirs in the clinic."""
        fields = [f for f in await self.redis.hkeys(keys.triage_claims(clinic)) if f.endswith(f"{SEP}{sub}")]
        return int(await self.redis.hdel(keys.triage_claims(clinic), *fields)) if fields else 0

    async def by_visit(self, clinic: str) -> dict[str, list[str]]:
        """visit -> subs of the nurses who have it open (earliest first), leaving
        out (and removing) claims of staff no longer on duty."""
        raw = await self.redis.hgetall(keys.triage_claims(clinic))
        if not raw:
            return {}
        pairs = [(f.rpartition(SEP), int(at)) for f, at in raw.items()]
        subs = sorted({sub for (_, _, sub), _ in pairs})
        seen = dict(zip(subs, await self.redis.zmscore(keys.staff_seen(clinic), subs), strict=True))
        since_ms = (time.time() - self.settings.on_duty_window) * 1000
        out: dict[str, list[tuple[int, str]]] = {}
        stale = []
        for (visit_id, _, sub), at in pairs:
            last = seen.get(sub)
            if last is None or float(last) < since_ms:
                stale.append(f"{visit_id}{SEP}{sub}")
                continue
            out.setdefault(visit_id, []).append((at, sub))
        if stale:
            await self.redis.hdel(keys.triage_claims(clinic), *stale)
        return {vid: [sub for _, sub in sorted(held)] for vid, held in out.items()}
