"""Appointments: reading a booked time, and what follows from it.

A visit may be booked for a time (``scheduled_at``, epoch seconds). The patient
may check in from ``check_in_window`` before it (the check-in script refuses
earlier), is shown as late to staff ``late_after`` past it, and is a no-show
(the visit ends with ``no_show``) ``no_show_after`` past it if still not checked
in. Where a scheduled patient stands in the queue is the check-in script's
rule (:data:`telemed._scripts.CHECK_IN`, docs/architecture.md).
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from telemed.exceptions import BadRequest

logger = logging.getLogger(__name__)

#: An appointment a little in the past is accepted (a clock a bit behind, a form
#: filled in slowly); more is refused.
PAST_TOLERANCE = 5 * 60

#: The furthest ahead an appointment may be booked: as far as a link can last.
MAX_AHEAD = 14 * 86400

#: Epoch values above this are milliseconds, not seconds (year 5138 in seconds).
_LOOKS_LIKE_MS = 1e11

EXAMPLE = "2026-11-27T14:30:00+01:00"


def parse_when(value: object, now: float) -> float:
    """An appointment time from ISO 8601 with a UTC offset (or ``Z``) or epoch
    seconds, checked against ``now``.

    :raises BadRequest: unreadable, without a time zone, too far in the past or ahead,
        with a message a person can act on (``field="scheduled_at"``).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float) or (isinstance(value, str) and len(value) > 64):
        raise BadRequest(f"Give the appointment time as a date and time, e.g. {EXAMPLE}.", field="scheduled_at")
    if isinstance(value, int | float):
        when = float(value)
        if not math.isfinite(when) or when <= 0:
            raise BadRequest("The appointment time is not a valid time.", field="scheduled_at")
        if when > _LOOKS_LIKE_MS:
            raise BadRequest("Give the appointment time in seconds since 1970, not milliseconds.", field="scheduled_at")
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise BadRequest(
                f"The appointment time could not be read; use a date and time like {EXAMPLE}.", field="scheduled_at"
            ) from None
        if parsed.tzinfo is None:
            raise BadRequest(
                f"Give the appointment time with its time zone offset, e.g. {EXAMPLE}.", field="scheduled_at"
            )
        when = parsed.timestamp()
    if when < now - PAST_TOLERANCE:
        raise BadRequest("The appointment time is in the past.", field="scheduled_at")
    if when > now + MAX_AHEAD:
        raise BadRequest("Appointments can be booked at most 14 days ahead.", field="scheduled_at")
    return when


def link_lifetime(ttl: float | None, default: float, *, now: float, scheduled_at: float | None, no_show_after: float) -> float:
    """How long a new patient link lasts (seconds).

    A link for an appointment must outlive the appointment's no-show time: the
    default is lengthened to that; a lifetime asked for that is too short is refused.
    """
    if scheduled_at is None:
        return default if ttl is None else ttl
    needed = scheduled_at + no_show_after - now
    if ttl is None:
        return max(default, needed)
    if ttl < needed:
        raise BadRequest(
            "The link would expire before the appointment; choose a longer link lifetime.", field="ttl_minutes"
        )
    return ttl


def is_late(scheduled_at: float | None, now: float, late_after: float) -> bool:
    return scheduled_at is not None and now > scheduled_at + late_after
