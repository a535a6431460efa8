"""Redis clients as every process makes them."""

from __future__ import annotations

import redis.asyncio as aioredis

#: Connections per client. Handlers wait for a free one (up to the timeout)
#: instead of failing when a burst of events needs more at once.
MAX_CONNECTIONS = 64


def redis_client(url: str, *, decode: bool = True, max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """A client with a blocking pool; nothing is contacted until first use."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=decode,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=10,
    )
    return aioredis.Redis.from_pool(pool)
