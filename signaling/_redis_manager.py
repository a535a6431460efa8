"""The node's Socket.IO client manager: python-socketio's pub/sub manager on Redis,
made to ride out a Redis restart.

python-socketio's ``AsyncRedisManager`` backs off up to 60 s before
resubscribing, replaces its pub/sub connection from the publishing path
(abandoning the one the listener reads, unclosed), and says nothing when it is
back. This manager is instead a backend of ``AsyncPubSubManager`` written
against its two backend hooks, ``_publish`` and ``_listen`` (the methods its
docstrings say each backend implements, as python-socketio's own Redis, Kafka,
Kombu, ZeroMQ and AMQP managers and third-party ones do); everything else (emit, rooms, callbacks,
the listening task) is python-socketio's. It:

- publishes through its own client, whose pool reconnects by itself;
- listens on a pub/sub connection it closes before making a new one, retrying
  every ``retry_max`` seconds at most;
- makes both clients with :func:`telemed.redis_client.redis_client`, so with
  Redis Sentinel each new connection goes to the current primary: after a
  failover the listener resubscribes there like after a restart;
- calls ``on_resubscribed`` after every recovery, so the node can tell its
  clients to catch up on what could not be delivered meanwhile;
- carries node-to-node notices (``publish_internal`` / ``on_internal``), taken
  off the channel in ``_listen`` before python-socketio sees them;
- finds a disconnecting socket's rooms through an index (see below): the one
  place that still replaces python-socketio internals, guarded by digests of
  the pinned version's source (:data:`REPLACES`, :func:`check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from typing import Any

import redis.asyncio as aioredis
from socketio.async_pubsub_manager import AsyncPubSubManager
from socketio.base_manager import BaseManager

from telemed.redis_client import redis_client
from telemed.settings import Settings

logger = logging.getLogger(__name__)

#: SHA-256 of the source of each python-socketio method this manager overrides
#: (python-socketio 5.18.1, pinned in requirements.txt). ``basic_disconnect``
#: and ``get_rooms`` are replaced; ``basic_enter_room`` and ``basic_leave_room``
#: are extended, and the room index relies on them being what changes rooms.
REPLACES = {
    "basic_disconnect": "2933b50bc4b2ea7b4367a84e05c2e22c52fed98b00afc3b88d06d61ab9fb9aa1",
    "get_rooms": "56a1017f85af9f91e2a8226080d10f9be225b6815f649c014b9599df6378c2eb",
    "basic_enter_room": "3f509586d2d7f47ec92cc5113a80f5302ca1d82fb3689ee530edd3aa9ad6a1a3",
    "basic_leave_room": "e27f3eea06d1c6a6ea295e99f62477330af4779e1f1853753e94f309ef0e74f2",
}

_originals: dict[str, Callable[..., Any]] = {name: getattr(BaseManager, name) for name in REPLACES}


class PatchedSourceChanged(RuntimeError):
    """The installed python-socketio is not the one the room index was written against."""


def original_digests() -> dict[str, str]:
    """SHA-256 of the installed python-socketio's source of each overridden method."""
    return {name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() for name, fn in _originals.items()}


def check() -> None:
    """Raise :class:`PatchedSourceChanged` naming each overridden method whose
    source differs from the one :data:`REPLACES` was taken from."""
    changed = sorted(name for name, digest in original_digests().items() if digest != REPLACES[name])
    if changed:
        try:
            version = metadata.version("python-socketio")
        except metadata.PackageNotFoundError:  # pragma: no cover - installed from a checkout
            version = "unknown"
        raise PatchedSourceChanged(
            f"python-socketio {version} changed BaseManager.{', BaseManager.'.join(changed)}, which "
            "signaling/_redis_manager.py overrides (written against python-socketio 5.18.1, pinned in "
            "requirements.txt): re-check the overrides against the new source (tests/test_redis_manager.py), "
            "then update REPLACES"
        )


def _indexed() -> bool:
    """Whether the room index may replace python-socketio's room scan (checked once)."""
    global _INDEXED
    if _INDEXED is None:
        try:
            check()
            _INDEXED = True
        except PatchedSourceChanged as exc:
            logger.error("%s; using python-socketio's own room scan (disconnects are slower)", exc)
            _INDEXED = False
    return _INDEXED


_INDEXED: bool | None = None

#: Backoff of the first resubscription attempt after the listener lost Redis.
FIRST_RETRY = 0.1

#: Connections of the listener's client: the one pub/sub connection.
LISTENER_CONNECTIONS = 2


class RedisManager(AsyncPubSubManager):  # type: ignore[misc]
    """python-socketio's pub/sub client manager with Redis as the backend."""

    name = "telemed-redis"

    def __init__(self, where: str | Settings, channel: str, retry_max: float = 1.0) -> None:
        """:param where: a Redis URL, or the settings (Sentinel or URL, :func:`redis_client`)."""
        super().__init__(channel=channel)
        self.where = where
        self.retry_max = retry_max
        self.indexed = _indexed()
        self.on_resubscribed: Callable[[], Awaitable[None]] | None = None
        self.on_internal: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}
        self._publisher: aioredis.Redis | None = None
        self._listener: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._closed = False

    # -- the backend hooks ------------------------------------------------------------

    async def _publish(self, data: Any) -> None:
        if self._closed:  # an emit during the node's shutdown: local sockets only
            return
        if self._publisher is None:
            self._publisher = redis_client(self.where, decode=False)
        try:
            await self._publisher.publish(self.channel, self.json.dumps(data))
        except Exception as exc:  # the emit reached local sockets; others catch up on resync
            logger.warning("fan-out publish failed: %s", type(exc).__name__)

    async def _listen(self) -> AsyncIterator[Any]:
        """Each message of the channel, decoded, for python-socketio's listening
        task; node-to-node notices are handed to ``on_internal`` here instead."""
        channel = self.channel.encode()
        async for message in self._subscribed():
            if message.get("type") != "message" or message.get("channel") != channel:
                continue
            try:
                data = self.json.loads(message["data"])
            except ValueError:
                logger.warning("undecodable message on the fan-out channel; ignored")
                continue
            if isinstance(data, dict) and data.get("internal") is not None:
                if data.get("host_id") != self.host_id:
                    await self._notice(data)
                continue
            yield data

    # -- node-to-node notices -----------------------------------------------------------

    async def publish_internal(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the other nodes something (e.g. a clinic's queue changed). Rides
        on the Socket.IO channel as an emit message no client ever receives."""
        await self._publish(
            {"method": "emit", "event": "", "internal": kind, "data": data, "namespace": "/", "room": None,
             "host_id": self.host_id}
        )

    async def _notice(self, message: dict[str, Any]) -> None:
        if self.on_internal is None:
            return
        try:
            await self.on_internal(str(message["internal"]), message.get("data") or {})
        except asyncio.CancelledError:
            raise
        except Exception:  # one bad notice must not end the listener
            logger.exception("node-to-node notice failed")

    # -- the subscription ---------------------------------------------------------------

    async def _close_listener(self) -> None:
        pubsub, client = self._pubsub, self._listener
        self._pubsub = self._listener = None
        # Closing a broken connection may fail; it is dropped either way (and the client still closed).
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _subscribed(self) -> AsyncIterator[dict[str, Any]]:
        """Raw pub/sub messages of the channel, resubscribing after any failure."""
        retry = FIRST_RETRY
        outage = False
        while True:
            try:
                await self._close_listener()
                # No socket timeout: the listener waits for its next message as long as it takes.
                self._listener = redis_client(
                    self.where, decode=False, max_connections=LISTENER_CONNECTIONS, socket_timeout=None
                )
                self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.channel)
                retry = FIRST_RETRY
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
        self._closed = True
        await self._close_listener()
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None

    # -- finding a socket's rooms ----------------------------------------------------------
    # python-socketio finds the rooms of a disconnecting socket by scanning every
    # room of the namespace; with thousands of patients (a room each) that made
    # each disconnect cost milliseconds. An index of the rooms per socket makes it
    # proportional to the socket's own rooms. The index is kept by extending
    # basic_enter_room / basic_leave_room (python-socketio's only writers of
    # ``rooms``) and read by the replacements of get_rooms / basic_disconnect.

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
        if not self.indexed:
            return list(super().get_rooms(sid, namespace))
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if not self.indexed:
            super().basic_disconnect(sid, namespace, **kwargs)
            return
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        # What python-socketio's basic_disconnect does after leaving the rooms:
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]
