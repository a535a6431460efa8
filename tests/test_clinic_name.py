"""The clinic's display name ("Video visit with <name>"): checked in plain words
(telemed.clinic_config.display_name), set by the clinic's admin, read by every
page of the clinic (patients and guests too) and by no other clinic."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from telemed import clinic_config
from telemed.exceptions import BadRequest
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, http, token

ADMIN = token(Role.ADMIN, "c1", sub="a1", name="Ada Admin")



def test_a_name_is_trimmed_and_may_be_cleared() -> None:
    assert clinic_config.display_name("  Clínica del Valle  ") == "Clínica del Valle"
    assert clinic_config.display_name("首尔家庭诊所") == "首尔家庭诊所"
    assert clinic_config.display_name("   ") == ""
    assert clinic_config.display_name("x" * clinic_config.DISPLAY_NAME_MAX) == "x" * clinic_config.DISPLAY_NAME_MAX


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("x" * (clinic_config.DISPLAY_NAME_MAX + 1), "at most 60 characters"),
        ("North\nClinic", "one line of plain text"),
        ("North\tClinic", "one line of plain text"),
        ("North\u202eClinic", "one line of plain text"),  # a right-to-left override
        ("North\u2028Clinic", "one line of plain text"),
        ("North\x00", "one line of plain text"),
        (42, "must be text"),
        (None, "must be text"),
    ],
)
def test_a_bad_name_is_refused_in_plain_words(value: object, words: str) -> None:
    with pytest.raises(BadRequest, match=words) as caught:
        clinic_config.display_name(value)
    assert caught.value.details == {"field": "display_name"}


async def test_the_name_is_stored_with_the_other_settings(redis: aioredis.Redis, settings: Settings) -> None:
    assert (await clinic_config.get(redis, settings, "c1")).display_name == ""
    config = await clinic_config.set(redis, settings, "c1", {"display_name": " North Clinic ", "walk_in": True})
    assert config.display_name == "North Clinic" and config.walk_in is True
    assert (await clinic_config.get(redis, settings, "c2")).display_name == ""
    with pytest.raises(BadRequest, match="one line"):
        await clinic_config.set(redis, settings, "c1", {"display_name": "A\nB"})
    assert (await clinic_config.get(redis, settings, "c1")).display_name == "North Clinic"


async def test_the_admin_sets_it_and_the_clinics_pages_read_it(node: str) -> None:
    status, data = await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"display_name": "  North Clinic "})
    assert status == 200, data
    assert data["settings"]["display_name"] == "North Clinic" and data["changed"] == ["display_name"]
    _, patient = await create_visit(node, ADMIN, reason="cough")
    for who in (patient, token(Role.NURSE, "c1", sub="n1")):
        assert await http("GET", f"{node}/api/clinics/c1/name", who) == (200, {"display_name": "North Clinic"})
    # A link no longer good (revoked here; used or ended alike) still says whose page it is...
    assert (await http("POST", f"{node}/api/tokens/revoke", ADMIN, {"token": patient}))[0] == 200
    assert (await http("GET", f"{node}/api/visits/none", patient))[0] == 401  # (it is dead)
    assert await http("GET", f"{node}/api/clinics/c1/name", patient) == (200, {"display_name": "North Clinic"})
    # ...but another clinic's pages do not read it; without a token, nobody does.
    status, data = await http("GET", f"{node}/api/clinics/c1/name", token(Role.NURSE, "c2", sub="n2"))
    assert status == 403, data
    assert (await http("GET", f"{node}/api/clinics/c1/name"))[0] == 401
    # Cleared: the pages say "Video visit" alone.
    assert (await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, {"display_name": ""}))[0] == 200
    assert await http("GET", f"{node}/api/clinics/c1/name", ADMIN) == (200, {"display_name": None})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"display_name": "North\nClinic"}, "The clinic name must be one line of plain text, without special characters."),
        ({"display_name": "x" * 61}, "The clinic name can be at most 60 characters long."),
        ({"display_name": ["North"]}, "The clinic name must be text."),
    ],
)
async def test_the_admin_is_told_what_is_wrong(node: str, body: dict[str, object], words: str) -> None:
    status, data = await http("PUT", f"{node}/api/clinics/c1/settings", ADMIN, body)
    assert status == 400, data
    assert data["error"]["message"] == words
    assert data["error"]["details"]["field"] == "display_name"
    assert (await http("GET", f"{node}/api/clinics/c1/name", ADMIN))[1] == {"display_name": None}
