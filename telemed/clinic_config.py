"""A clinic's run-time settings: kept in Redis, changed by its admin, applied without restart.

Each value defaults to the process setting (:class:`~telemed.settings.Settings`)
until the clinic's admin sets it; :func:`get` is cheap (one ``HGETALL``) so
readers call it where they act (a walk-in check-in, a new visit, a media worker
starting a visit's captions) instead of caching it, and a change takes effect at
once on every node and worker.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import cast

import redis.asyncio as aioredis

from telemed import keys
from telemed.exceptions import BadRequest
from telemed.settings import Settings
from telemed.tokens import check_id

logger = logging.getLogger(__name__)

#: Bounds of the durations (seconds), with the words an admin is told when outside.
LIMITS: dict[str, tuple[float, float, str]] = {
    "link_lifetime": (5 * 60, 14 * 86400, "A link must last between 5 minutes and 14 days."),
    "check_in_window": (0, 24 * 3600, "Check-in can open at most 24 hours before the appointment."),
    "no_show_after": (60, 24 * 3600, "The no-show time must be between 1 minute and 24 hours."),
}

#: The on/off values, with their human names (for messages and the audit trail).
FLAGS = {"walk_in": "Walk-in", "captions_to_patient": "Captions to the patient"}

#: Longest clinic display name (characters): it must fit a phone's top bar in "Video visit with <name>".
DISPLAY_NAME_MAX = 60

#: The text values (stored as given, after :func:`display_name`'s check).
TEXTS = ("display_name",)


@dataclass(frozen=True)
class ClinicConfig:
    """What a clinic's admin can change; every value is in force at once."""

    walk_in: bool
    """The clinic's standing walk-in link (``/clinic/<clinic>``) accepts check-ins."""

    captions_to_patient: bool
    """Live captions are shown to the patient too, not only to the doctor."""

    link_lifetime: float
    """Default lifetime of a new patient link, in seconds."""

    check_in_window: float
    """How long before a scheduled visit the patient may check in, in seconds."""

    no_show_after: float
    """A scheduled patient not checked in this long after the time is a no-show, in seconds."""

    display_name: str = ""
    """The clinic's name as patients and guests read it ("Video visit with <name>"); empty: the
    pages say "Video visit" only."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def defaults(settings: Settings, clinic: str) -> ClinicConfig:
    """The values in force for a clinic whose admin has changed nothing."""
    return ClinicConfig(
        walk_in=clinic in settings.walk_in_clinics,
        captions_to_patient=settings.captions_to_patient,
        link_lifetime=settings.patient_link_ttl,
        check_in_window=settings.check_in_window,
        no_show_after=settings.no_show_after,
    )


def _decode(base: ClinicConfig, stored: Mapping[str, str]) -> ClinicConfig:
    values: dict[str, object] = {}
    for f in fields(ClinicConfig):
        raw = stored.get(f.name)
        if raw is None:
            continue
        if f.name in FLAGS:
            values[f.name] = raw == "1"
        elif f.name in TEXTS:
            values[f.name] = raw
        else:
            try:
                values[f.name] = float(raw)
            except ValueError:
                logger.warning("ClinicConfig: ignoring unreadable stored %s", f.name)
    return ClinicConfig(**{**base.to_dict(), **values})  # type: ignore[arg-type]


async def get(redis: aioredis.Redis, settings: Settings, clinic: str) -> ClinicConfig:
    """The clinic's settings in force now (stored values over the process defaults)."""
    check_id(clinic, "clinic")
    stored = cast("dict[str, str]", await redis.hgetall(keys.clinic_settings(clinic)))
    return _decode(defaults(settings, clinic), stored)


def display_name(value: object) -> str:
    """A clinic display name as stored: surrounding spaces trimmed; empty clears it.

    :raises BadRequest: not text, longer than :data:`DISPLAY_NAME_MAX`, or holding a
        control or formatting character (a line break, a tab, a direction override), in plain words.
    """
    if not isinstance(value, str):
        raise BadRequest("The clinic name must be text.", field="display_name")
    name = value.strip()
    if len(name) > DISPLAY_NAME_MAX:
        raise BadRequest(f"The clinic name can be at most {DISPLAY_NAME_MAX} characters long.", field="display_name")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name):
        raise BadRequest("The clinic name must be one line of plain text, without special characters.",
                         field="display_name")
    return name


def validate(changes: Mapping[str, object]) -> dict[str, str]:
    """Check the changes and return them as stored (``"1"``/``"0"``, seconds, text).

    :raises BadRequest: an unknown name or a value out of bounds, in plain words.
    """
    out: dict[str, str] = {}
    for name, value in changes.items():
        if name in FLAGS:
            if not isinstance(value, bool):
                raise BadRequest(f"{FLAGS[name]} must be on or off.", field=name)
            out[name] = "1" if value else "0"
        elif name in LIMITS:
            low, high, message = LIMITS[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise BadRequest(message, field=name)
            out[name] = repr(float(value))
        elif name == "display_name":
            out[name] = display_name(value)
        else:
            raise BadRequest("That is not a clinic setting.", field=name)
    return out


async def set(  # noqa: A001 - the module's verb, read as clinic_config.set
    redis: aioredis.Redis, settings: Settings, clinic: str, changes: Mapping[str, object]
) -> ClinicConfig:
    """Store some of a clinic's settings (validated first) and return all in force."""
    check_id(clinic, "clinic")
    stored = validate(changes)
    if stored:
        await redis.hset(keys.clinic_settings(clinic), mapping=stored)  # type: ignore[arg-type]
    return await get(redis, settings, clinic)
