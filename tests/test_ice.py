"""ICE servers handed to browsers: STUN, and TURN REST credentials coturn accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling.ice import ice_config, ice_servers
from telemed.exceptions import ConfigError
from telemed.settings import Secret, Settings


def test_no_ice_servers_unless_configured() -> None:
    assert ice_servers(Settings(), "u1") == []


def test_turn_credentials_are_time_limited_hmacs_of_the_username() -> None:
    s = Settings(
        stun_urls=("stun:turn.example.org:3478",),
        turn_urls=("turn:turn.example.org:3478?transport=udp",),
        turn_secret=Secret("coturn-static-auth-secret"),
        turn_ttl=3600,
    )
    stun, turn = ice_servers(s, "doctor-7", now=1_800_000_000)
    assert stun == {"urls": ["stun:turn.example.org:3478"]}
    assert turn["username"] == "1800003600:doctor-7"
    expected = base64.b64encode(hmac.new(b"coturn-static-auth-secret", b"1800003600:doctor-7", hashlib.sha1).digest())
    assert turn["credential"] == expected.decode()
    assert turn["urls"] == ["turn:turn.example.org:3478?transport=udp"]
    # another user, another moment: another credential
    assert ice_servers(s, "doctor-8", now=1_800_000_000)[1]["credential"] != turn["credential"]


def test_secrets_never_print() -> None:
    s = Settings(secret=Secret("a" * 40), turn_secret=Secret("b" * 20))
    assert "aaaa" not in repr(s) and "bbbb" not in repr(s) and "**********" in repr(s)



def test_the_pages_are_handed_the_ice_transport_policy() -> None:
    assert ice_config(Settings(), "u1") == {"ice_servers": [], "ice_transport_policy": "all"}
    s = Settings(turn_urls=("turn:turn.example.org:3478",), turn_secret=Secret("s" * 20), ice_policy="relay")
    config = ice_config(s, "patient-1", now=1_800_000_000)
    assert config["ice_transport_policy"] == "relay"
    assert config["ice_servers"] == ice_servers(s, "patient-1", now=1_800_000_000)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"TELEMED_ICE_POLICY": "relay"}, "needs TURN servers"),
        ({"TELEMED_ICE_POLICY": "turn-only"}, "must be one of all, relay"),
    ],
)
def test_the_ice_policy_is_checked_in_words(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({"TELEMED_SECRET": "x" * 40, "REDIS_URL": "redis://r", **env}).check()


def test_the_ice_policy_is_read_from_the_environment() -> None:
    env = {"TELEMED_SECRET": "x" * 40, "REDIS_URL": "redis://r", "TELEMED_TURN_URLS": "turn:t:3478",
           "TELEMED_TURN_SECRET": "s" * 20, "TELEMED_ICE_POLICY": "Relay"}
    s = Settings.from_env(env)
    s.check()
    assert s.ice_policy == "relay"
    assert Settings.from_env({}).ice_policy == "all"
