"""A clinic's run-time settings (telemed.clinic_config) on a real Redis."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from telemed import clinic_config
from telemed.exceptions import BadRequest
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom


async def test_defaults_come_from_the_process_settings(redis: aioredis.Redis, settings: Settings) -> None:
    settings = settings.with_(walk_in_clinics=("c1",), captions_to_patient=True, check_in_window=600.0)
    config = await clinic_config.get(redis, settings, "c1")
    assert config.walk_in is True
    assert config.captions_to_patient is True
    assert config.link_lifetime == settings.patient_link_ttl
    assert config.check_in_window == 600.0
    assert config.no_show_after == settings.no_show_after
    assert (await clinic_config.get(redis, settings, "c2")).walk_in is False


async def test_a_stored_value_wins_and_other_clinics_keep_theirs(redis: aioredis.Redis, settings: Settings) -> None:
    config = await clinic_config.set(redis, settings, "c1", {"captions_to_patient": True, "no_show_after": 300})
    assert config.captions_to_patient is True and config.no_show_after == 300.0
    assert (await clinic_config.get(redis, settings, "c1")).no_show_after == 300.0
    assert (await clinic_config.get(redis, settings, "c2")).no_show_after == settings.no_show_after


async def test_walk_in_is_the_waiting_rooms_flag(redis: aioredis.Redis, settings: Settings) -> None:
    room = WaitingRoom(redis, settings)
    await clinic_config.set(redis, settings, "c1", {"walk_in": True})
    assert await room.walk_in_enabled("c1")
    await room.set_walk_in("c1", False)
    assert (await clinic_config.get(redis, settings, "c1")).walk_in is False


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"walk_in": "yes"}, "on or off"),
        ({"link_lifetime": 60}, "between 5 minutes and 14 days"),
        ({"no_show_after": -1}, "between 1 minute and 24 hours"),
        ({"check_in_window": True}, "24 hours"),
        ({"colour": "red"}, "not a clinic setting"),
    ],
)
async def test_bad_values_are_refused_in_plain_words(
    redis: aioredis.Redis, settings: Settings, changes: dict[str, object], words: str
) -> None:
    with pytest.raises(BadRequest, match=words):
        await clinic_config.set(redis, settings, "c1", changes)
    assert await redis.hgetall("tm:clinic:c1") == {}
