"""Redis clients as every process makes them.

One place decides how a node, a media worker, the Socket.IO manager, the
external emitter and the command-line tools reach the shared state: one
server (``REDIS_URL``), or the primary that Redis Sentinel names
(``REDIS_SENTINELS``). A Sentinel client asks the sentinels for the primary
whenever it opens a connection, so after a failover (the old primary gone, a
replica promoted) new connections go to the new primary by themselves;
connections to a demoted primary are dropped on their first write (redis-py's
``SentinelManagedConnection``). Commands are never retried by the client: a
command that fails is an ``unavailable`` answer, and whoever asked retries.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from telemed.settings import Settings

#: Connections per client. Handlers wait for a free one (up to the timeout)
#: instead of failing when a burst of events needs more at once.
MAX_CONNECTIONS = 64

#: Seconds a command may take before its connection counts as lost. Bounds
#: ``TELEMED_REDIS_WAIT_MS`` (telemed/settings.py).
SOCKET_TIMEOUT = 5.0

#: Seconds to wait for a sentinel's answer: a dead one is skipped quickly.
SENTINEL_TIMEOUT = 1.0


class BlockingPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool that keeps no connection once closed: a task
    still running when its process closes the client (a handler, a timer) gets
    an error instead of a connection that nobody would close, and one it was
    using is closed when it gives it back."""

    closed = False

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            raise RedisConnectionError("the Redis client is closed")
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if self.closed:
            await connection.disconnect()

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


class BlockingSentinelPool(SentinelConnectionPool, BlockingPool):
    """redis-py's Sentinel pool (connections to whichever server the sentinels
    name primary) with the waiting of the single-server pool: a handler waits
    for a free connection instead of failing in a burst. Closing it closes the
    connections to the sentinels too."""

    async def get_master_address(self) -> Any:
        if self.closed:  # a connection being opened as the client closes
            raise RedisConnectionError("the Redis client is closed")
        return await super().get_master_address()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()


class Sentinels(Sentinel):
    """redis-py's Sentinel client with a discovery that concurrent callers cannot
    spoil. redis-py's ``discover_master`` moves the sentinel that answered to the
    front of its list by swapping entries across an ``await``; every connection
    opened during a failover discovers at once, and two swaps by stale positions
    duplicate one sentinel and drop another (seen in tests/test_sentinel.py): that
    one is then never asked again, nor closed. Here the list is only replaced
    whole, between awaits."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        errors = []
        for sentinel in tuple(self.sentinels):
            try:
                masters: Any = await sentinel.sentinel_masters()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                errors.append(f"{sentinel}: {exc!r}")
                continue
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):
                self.sentinels = [sentinel, *(s for s in self.sentinels if s is not sentinel)]
                return state["ip"], int(state["port"])
        raise MasterNotFoundError(f"No master found for {service_name!r}" + (f" : {', '.join(errors)}" if errors else ""))


def redis_client(
    where: str | Settings,
    *,
    decode: bool = True,
    max_connections: int = MAX_CONNECTIONS,
    socket_timeout: float | None = SOCKET_TIMEOUT,
) -> aioredis.Redis:
    """A client with a blocking pool; nothing is contacted until first use.

    :param where: a Redis URL, or the settings (``REDIS_SENTINELS`` when set, else ``REDIS_URL``).
    :param socket_timeout: None for a pub/sub listener, which may wait for its
        next message as long as it likes.
    """
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": 10,
        "decode_responses": decode,
        "socket_connect_timeout": 2,
        "socket_timeout": socket_timeout,
        "health_check_interval": 10,
    }
    if isinstance(where, str):
        return aioredis.Redis.from_pool(BlockingPool.from_url(where, **options))
    if not where.redis_sentinels:
        return aioredis.Redis.from_pool(BlockingPool.from_url(where.redis_url, **options))
    sentinel_options: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}
    if where.redis_sentinel_password:
        sentinel_options["password"] = where.redis_sentinel_password.reveal()
    sentinel = Sentinels([], sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
    # The clients of the sentinels themselves, on pools that close like the others.
    sentinel.sentinels = [
        aioredis.Redis.from_pool(BlockingPool(host=host, port=port, max_connections=MAX_CONNECTIONS, timeout=10, **sentinel_options))
        for host, port in where.sentinel_addresses()
    ]
    client: aioredis.Redis = sentinel.master_for(
        where.redis_sentinel_master,
        connection_pool_class=BlockingSentinelPool,
        **options,
        **_server_options(where.redis_url),
    )
    return client


def _server_options(url: str) -> dict[str, Any]:
    """What ``REDIS_URL`` says besides the address, for the servers Sentinel names."""
    if not url:
        return {}
    parsed = parse_url(url)
    options = {k: v for k, v in parsed.items() if k in ("db", "username", "password")}
    if parsed.get("connection_class") is SSLConnection:
        options["ssl"] = True
    return options


def describe(settings: Settings) -> str:
    """Where the settings point, for logs (no password)."""
    if settings.redis_sentinels:
        return f"the primary {settings.redis_sentinel_master!r} of sentinels {','.join(settings.redis_sentinels)}"
    parsed = parse_url(settings.redis_url) if settings.redis_url else {}
    if "path" in parsed:
        return f"redis at {parsed['path']}"
    return f"redis at {parsed.get('host', 'localhost')}:{parsed.get('port', 6379)}"
