"""The Sentinel and replication settings: read from the environment, refused in
plain words when wrong, and turned into the right client."""

from __future__ import annotations

import pytest
from redis.asyncio.sentinel import MasterNotFoundError

from telemed.exceptions import ConfigError
from telemed.redis_client import BlockingSentinelPool, describe, redis_client
from telemed.settings import Secret, Settings

SECRET = "s" * 40


def test_sentinels_replace_the_url() -> None:
    s = Settings.from_env({
        "TELEMED_SECRET": SECRET,
        "REDIS_SENTINELS": "sentinel1:26379, sentinel2:26379,10.0.0.3:26380",
        "REDIS_SENTINEL_MASTER": "clinic",
        "REDIS_SENTINEL_PASSWORD": "sentinel-pw",
        "TELEMED_REDIS_MIN_REPLICAS": "1",
        "TELEMED_REDIS_WAIT_MS": "250",
    })
    s.check()  # no REDIS_URL needed
    assert s.sentinel_addresses() == [("sentinel1", 26379), ("sentinel2", 26379), ("10.0.0.3", 26380)]
    assert (s.redis_sentinel_master, s.redis_min_replicas, s.redis_wait_ms) == ("clinic", 1, 250)
    assert str(s.redis_sentinel_password) == "**********"
    assert describe(s) == "the primary 'clinic' of sentinels sentinel1:26379,sentinel2:26379,10.0.0.3:26380"


def test_defaults_wait_for_no_replica() -> None:
    s = Settings.from_env({"TELEMED_SECRET": SECRET, "REDIS_URL": "redis://h:6380/0"})
    assert (s.redis_sentinels, s.redis_sentinel_master, s.redis_min_replicas) == ((), "telemed", 0)
    assert describe(s) == "redis at h:6380"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"REDIS_SENTINELS": "sentinel1"}, "REDIS_SENTINELS: 'sentinel1' is not host:port"),
        ({"REDIS_SENTINELS": "sentinel1:port"}, "is not host:port"),
        ({"REDIS_SENTINELS": "sentinel1:70000"}, "is not host:port"),
        ({"REDIS_SENTINELS": "s:26379", "REDIS_SENTINEL_MASTER": " "}, "REDIS_SENTINEL_MASTER is empty"),
        ({"REDIS_URL": "redis://h/0", "TELEMED_REDIS_MIN_REPLICAS": "-1"}, "TELEMED_REDIS_MIN_REPLICAS must be 0"),
        ({"REDIS_URL": "redis://h/0", "TELEMED_REDIS_WAIT_MS": "5000"}, "TELEMED_REDIS_WAIT_MS must be 10 to 4000"),
        ({"REDIS_URL": "redis://h/0", "TELEMED_REDIS_WAIT_MS": "0"}, "TELEMED_REDIS_WAIT_MS must be 10 to 4000"),
        ({"REDIS_URL": "redis://h/0", "TELEMED_REDIS_WAIT_MS": "1s"}, "not a number"),
        ({}, "REDIS_URL is not set"),
    ],
)
def test_a_wrong_setting_is_refused_in_words(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Settings.from_env({"TELEMED_SECRET": SECRET, **env}).check()


async def test_the_client_asks_the_sentinels_and_uses_the_urls_credentials() -> None:
    s = Settings(
        secret=Secret(SECRET),
        redis_url="redis://user:pw@ignored-host:1/3",
        redis_sentinels=("127.0.0.1:1", "127.0.0.1:2"),
        redis_sentinel_master="clinic",
        redis_sentinel_password=Secret("sentinel-pw"),
    )
    client = redis_client(s, decode=False, max_connections=7)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelPool)
    assert (pool.service_name, pool.max_connections, pool.is_master) == ("clinic", 7, True)
    assert {k: pool.connection_kwargs[k] for k in ("db", "username", "password")} == {"db": 3, "username": "user", "password": "pw"}
    assert "host" not in pool.connection_kwargs
    sentinels = pool.sentinel_manager.sentinels
    assert [(c.connection_pool.connection_kwargs["port"], c.connection_pool.connection_kwargs["password"]) for c in sentinels] == [
        (1, "sentinel-pw"), (2, "sentinel-pw")
    ]
    with pytest.raises(MasterNotFoundError, match="No master found for .clinic."):  # nobody listens there
        await client.ping()
    await client.aclose()
