"""Socket.IO events from a process that holds no sockets (the media worker's
captions and chart-leg states): python-socketio's write-only pub/sub manager,
publishing on the nodes' fan-out channel through a client of
:mod:`telemed.redis_client`, so it follows a Sentinel failover like every
other client. Written against ``AsyncPubSubManager``'s backend hook
``_publish``, as the node's manager is (signaling/_redis_manager.py).

An emit that cannot be published (Redis unreachable, a failover under way) is
dropped with a warning, as python-socketio's own Redis manager does: the nodes
tell their clients to catch up once their listener is back.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from socketio.async_pubsub_manager import AsyncPubSubManager

from telemed.redis_client import redis_client
from telemed.settings import Settings

logger = logging.getLogger(__name__)

#: Connections of the emitter's client: emits are small and brief.
MAX_CONNECTIONS = 8


class ExternalEmitter(AsyncPubSubManager):  # type: ignore[misc]
    """``emit(event, data, room=..., namespace=...)`` to the nodes' clients."""

    name = "telemed-emitter"

    def __init__(self, settings: Settings, channel: str) -> None:
        super().__init__(channel=channel, write_only=True)
        self.redis = redis_client(settings, decode=False, max_connections=MAX_CONNECTIONS)

    async def _publish(self, data: Any) -> None:
        try:
            await self.redis.publish(self.channel, self.json.dumps(data))
        except RedisError as exc:
            logger.warning("emit to the nodes failed: %s", type(exc).__name__)

    async def close(self) -> None:
        await self.redis.aclose()
