"""python-socketio's Redis manager, made to ride out a Redis restart.

The stock ``AsyncRedisManager`` backs off up to 60 s before resubscribing,
replaces its pub/sub connection from the publishing path (abandoning the one
the listener reads, unclosed), and says nothing when it is back. This one:

- publishes through its own client, whose pool reconnects by itself;
- listens on a pub/sub connection it closes before making a new one, retrying
  every ``retry_max`` seconds at most;
- calls ``on_resubscribed`` after every recovery, so the node can tell its
  clients to catch up on what could not be delivered meanwhile;
- carries node-to-node notices (``publish_internal`` / ``on_internal``);
- finds a disconnecting socket's rooms through an index (see below).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import socketio

from telemed.redis_client import redis_client

logger = logging.getLogger(__name__)


class RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(self, url: str, channel: str, retry_max: float = 1.0) -> None:
        super().__init__(url, channel=channel)
        self.retry_max = retry_max
        self.on_resubscribed: Callable[[], Awaitable[None]] | None = None
        self.on_internal: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}
        self._publisher: aioredis.Redis | None = None
        self._listener: aioredis.Redis | None = None
        self._pubsub: Any = None

    async def _publish(self, data: Any) -> None:
        if self._publisher is None:
            self._publisher = redis_client(self.redis_url, decode=False)
        try:
            await self._publisher.publish(self.channel, self.json.dumps(data))
        except Exception as exc:  # the emit reached local sockets; others catch up on resync
            logger.warning("fan-out publish failed: %s", type(exc).__name__)

    async def publish_internal(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the other nodes something (e.g. a clinic's queue changed). Rides
        on the Socket.IO channel as an emit message no client ever receives."""
        await self._publish(
            {"method": "emit", "event": "", "internal": kind, "data": data, "namespace": "/", "room": None,
             "host_id": self.host_id}
        )

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        kind = message.get("internal")
        if kind is None:
            await super()._handle_emit(message)
        elif self.on_internal is not None:
            await self.on_internal(kind, message["data"])

    # -- finding a socket's rooms -----------------------------------------------------
    # python-socketio finds the rooms of a disconnecting socket by scanning every
    # room of the namespace; with thousands of patients (a room each) that made
    # each disconnect cost milliseconds. An index of the rooms per socket makes it
    # proportional to the socket's own rooms.

    def basic_enter_room(self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        # What python-socketio's basic_disconnect does after leaving the rooms:
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    async def _close_listener(self) -> None:
        pubsub, client = self._pubsub, self._listener
        self._pubsub = self._listener = None
        try:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()
        except Exception:  # closing a broken connection may fail; it is dropped either way
            pass

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        retry = 0.1
        outage = False
        while True:
            try:
                await self._close_listener()
                self._listener = aioredis.from_url(self.redis_url, socket_connect_timeout=2)
                self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.channel)
                retry = 0.1
                if outage:
                    outage = False
                    logger.info("fan-out resubscribed after a Redis outage")
                    if self.on_resubscribed is not None:
                        await self.on_resubscribed()
                async for message in self._pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                await self._close_listener()
                raise
            except Exception as exc:
                if not outage:
                    logger.warning("fan-out lost Redis (%s); retrying", type(exc).__name__)
                outage = True
                await asyncio.sleep(retry)
                retry = min(retry * 2, self.retry_max)

    async def close(self) -> None:
        await self._close_listener()
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
