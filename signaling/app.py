"""Build a signaling node: aiohttp application + Socket.IO server on Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web

from signaling import _engineio, presence
from signaling._redis_manager import RedisManager
from signaling.admin_http import add_admin_routes
from signaling.call_ns import CallNamespace
from signaling.chart_browse import add_chart_browser_routes
from signaling.chart_http import add_chart_routes
from signaling.chat_ns import ChatNamespace
from signaling.guest_invitations import add_invitation_routes
from signaling.guests_http import add_guest_routes
from signaling.guests_ns import GuestNamespace
from signaling.http import HUB, MAX_BODY, add_routes, errors
from signaling.hub import Hub
from signaling.invite_http import add_invite_routes
from signaling.media_ns import MediaNamespace
from signaling.notifier import QueueNotifier
from signaling.queue_ns import QueueNamespace
from telemed import keys
from telemed.guests import GuestList
from telemed.redis_client import redis_client
from telemed.settings import Settings

logger = logging.getLogger(__name__)

#: Largest Socket.IO message. Larger ones close the connection (engine.io's
#: rule); below it, each event's own limits answer with a ``bad_request``.
MAX_SOCKET_MESSAGE = 256 * 1024


#: Seconds between a node's looks for ended visits whose chart is not written
#: (the node that ended a visit writes its chart at once).
CHART_ROUND = 5.0


async def _end(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` until every one has ended. A cancellation that lands
    while redis-py opens a connection can be swallowed (seen when a node stops
    during its start-up); such a task runs on to its next await, where the
    next cancellation ends it."""
    while running := [task for task in tasks if not task.done()]:
        for task in running:
            task.cancel()
        await asyncio.wait(running, timeout=0.1)


def make_app(settings: Settings) -> web.Application:
    """A node's application. Redis is contacted lazily; nothing blocks here."""
    settings.check()
    manager = RedisManager(settings, channel=keys.SOCKETIO_CHANNEL)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=settings.origins(),
        transports=["websocket"],
        max_http_buffer_size=MAX_SOCKET_MESSAGE,
        ping_interval=10,
        ping_timeout=10,
    )
    _engineio.install()
    hub = Hub(settings=settings, redis=redis_client(settings), sio=sio)
    notifier = QueueNotifier(hub)
    queue_ns = QueueNamespace(hub, notifier)
    guests = GuestList(hub.redis, settings)
    namespaces = (queue_ns, ChatNamespace(hub), CallNamespace(hub), MediaNamespace(hub), GuestNamespace(hub, guests))
    for ns in namespaces:
        sio.register_namespace(ns)

    async def resync() -> None:
        """Redis is back: what was published meanwhile may be lost, so every
        local client is told to catch up, and patients get their position again."""
        for ns in namespaces:
            for sid in list(ns.local):
                await ns.emit("resync", {}, to=sid, ignore_queue=True)
        await queue_ns.resync()

    manager.on_resubscribed = resync
    manager.on_internal = notifier.on_notice
    manager.on_internal = queue_ns.sessions.install(namespaces, manager.on_internal)

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app[HUB] = hub
    sio.attach(app, socketio_path="socket.io")
    add_routes(app, hub)
    add_invite_routes(app)
    add_guest_routes(app, guests, queue_ns.sessions)
    add_invitation_routes(app)  # a clinician guest's own invitations (their staff page)
    add_chart_routes(app)
    add_admin_routes(app, queue_ns.sessions)
    add_chart_browser_routes(app)

    async def background(app: web.Application) -> AsyncIterator[None]:
        hub.spawn(presence.heartbeat(hub, queue_ns, namespaces), name="presence-heartbeat")
        hub.spawn(presence.sweep(hub, notifier), name="grace-sweep")
        hub.spawn(queue_ns.sessions.run(), name="staff-sessions")
        hub.spawn(hub.charts.run(CHART_ROUND), name="charts")
        yield
        await _end(list(hub.tasks))
        listener = getattr(manager, "thread", None)
        if listener is not None:
            await _end([listener])
            await asyncio.gather(listener, return_exceptions=True)
        await manager.close()
        await sio.shutdown()
        await hub.redis.aclose()

    async def move_clients(app: web.Application) -> None:
        """Shutting down (SIGTERM): the listener is closed already; tell every
        client to reconnect (through the balancer, to another node) and close."""
        for ns in namespaces:
            for sid in list(ns.local):
                # Local sockets: no need to go through Redis (which may be down).
                await ns.emit("moving", {"reason": "this server is restarting"}, to=sid, ignore_queue=True)
                await sio.disconnect(sid, namespace=ns.namespace, ignore_queue=True)
        if sio.eio.sockets:
            await sio.eio.disconnect()  # close the transports too, so no handler lingers

    app.on_shutdown.append(move_clients)
    app.cleanup_ctx.append(background)
    return app
