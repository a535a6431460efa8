"""Who is on duty: one definition for the roster, the wait estimate and the pushes.

A staff member is on duty while a socket of theirs was seen within
``TELEMED_ON_DUTY`` (:attr:`Settings.on_duty_window`); every node refreshes
the "last seen" of its sockets each ``TELEMED_PRESENCE_INTERVAL``. The roster
(:mod:`telemed.roster`) reads that of every staff member, the wait estimate
(the positions script, :mod:`telemed.waiting_room`) that of the doctors, and a
doctor on duty is busy while in a visit, free otherwise.

:func:`doctors_at_work` reads, for a few clinics, exactly what the estimate
reads of the doctors, so a node can tell when a clinic's doctors on duty or
free ones changed and push its patients their new estimate without a queue change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from telemed import keys
from telemed.settings import Settings

logger = logging.getLogger(__name__)


def since(settings: Settings, now: float | None = None) -> float:
    """Epoch seconds from which someone seen is on duty."""
    return (time.time() if now is None else now) - settings.on_duty_window


def window_ms(settings: Settings) -> int:
    """The on-duty window in milliseconds, as the positions script takes it."""
    return int(settings.on_duty_window * 1000)


@dataclass(frozen=True)
class DoctorsAtWork:
    """A clinic's doctors on duty, as the wait estimate counts them."""

    on_duty: frozenset[str]
    """Subs of the doctors seen within the on-duty window."""
    busy: frozenset[str]
    """Of them, the ones in a visit."""

    @property
    def free(self) -> frozenset[str]:
        """Doctors on duty in no visit."""
        return self.on_duty - self.busy


async def doctors_at_work(redis: Any, settings: Settings, clinics: Iterable[str]) -> dict[str, DoctorsAtWork]:
    """Each clinic's doctors on duty and which of them are busy: two pipelined
    round trips, the work growing with the clinics and their doctors on duty
    (never with the patients)."""
    wanted = sorted(set(clinics))
    if not wanted:
        return {}
    since_ms = int(since(settings) * 1000)
    pipe = redis.pipeline(transaction=False)
    for clinic in wanted:
        pipe.zrangebyscore(keys.doctors_on_duty(clinic), since_ms, "+inf")
    on_duty: list[list[str]] = await pipe.execute()
    pipe = redis.pipeline(transaction=False)
    for clinic, subs in zip(wanted, on_duty, strict=True):
        for sub in subs:
            pipe.scard(keys.doctor_visits(clinic, sub))
    counts = iter(await pipe.execute() if len(pipe) else [])
    out = {}
    for clinic, subs in zip(wanted, on_duty, strict=True):
        busy = frozenset(sub for sub in subs if int(next(counts)) > 0)
        out[clinic] = DoctorsAtWork(frozenset(subs), busy)
    return out
