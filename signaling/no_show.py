"""The no-show sweep: a scheduled patient not checked in by the appointment plus
the clinic's no-show time has their visit ended (``no_show``).

Every node sweeps; the end script only ends a visit still not checked in
(:attr:`telemed.visits.Action.CALL_OFF`), so a patient who checks in at the
last moment keeps the visit, and two nodes end one visit once.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from signaling.hub import Hub
from signaling.invite_http import push
from telemed import clinic_config
from telemed.clinic_config import LIMITS, ClinicConfig
from telemed.exceptions import Conflict, NotFound
from telemed.visits import EndReason

logger = logging.getLogger(__name__)


async def sweep(hub: Hub) -> None:
    """Mark no-shows, forever (every presence interval)."""
    while True:
        await asyncio.sleep(hub.settings.presence_interval)
        try:
            await sweep_once(hub)
        except RedisError as exc:
            logger.warning("no-show sweep failed: %s", type(exc).__name__)


async def sweep_once(hub: Hub, now: float | None = None) -> int:
    """End the visits whose appointment is past by their clinic's no-show time; returns how many."""
    now = time.time() if now is None else now
    shortest = min(LIMITS["no_show_after"][0], hub.settings.no_show_after)
    configs: dict[str, ClinicConfig] = {}
    ended = 0
    for visit_id in await hub.room.appointments_due(now - shortest):
        try:
            visit = await hub.room.get(visit_id)
        except NotFound:
            await hub.room.forget_appointment(visit_id)  # an unused visit that expired
            continue
        config = configs.get(visit.clinic)
        if config is None:
            config = configs[visit.clinic] = await clinic_config.get(hub.redis, hub.settings, visit.clinic)
        if visit.scheduled_at is None or now < visit.scheduled_at + config.no_show_after:
            continue
        try:
            await hub.room.end(visit_id, by="system", reason=EndReason.NO_SHOW)
        except (Conflict, NotFound):
            await hub.room.forget_appointment(visit_id)  # checked in (or ended) meanwhile
            continue
        ended += 1
        await hub.room.mark_no_show(visit.clinic, visit_id)
        hub.metrics.visits_ended.labels(EndReason.NO_SHOW.value).inc()
        await hub.ended(visit_id, None, EndReason.NO_SHOW.value)
        logger.info("Visit(%s) ended: no-show", visit_id)
        await push(hub, await hub.room.get(visit_id))
    return ended
