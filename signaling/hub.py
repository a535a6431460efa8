"""What a node's handlers share: settings, Redis, the waiting room, the chat,
the Socket.IO server and the metrics. One :class:`Hub` per application."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import socketio

from signaling import rooms
from signaling.charts import ChartKeeper
from signaling.metrics import Metrics
from telemed import _scripts, guests, keys
from telemed.audit import AuditLog
from telemed.chat import ChatLog
from telemed.exceptions import Forbidden, RateLimited, Unauthorized
from telemed.guests import GuestState
from telemed.jwks import KeySet
from telemed.replication import Replication
from telemed.settings import Settings
from telemed.tokens import Claims, Role, Verifier
from telemed.visits import State
from telemed.waiting_room import WaitingRoom

logger = logging.getLogger(__name__)


#: What a link of an ended visit says, by end reason (the patient page words it).
ENDED_MESSAGES = {
    "cancelled": "this visit was cancelled by the clinic",
    "no_show": "this appointment was missed",
}


@dataclass
class Hub:
    settings: Settings
    redis: aioredis.Redis
    sio: socketio.AsyncServer
    metrics: Metrics = field(default_factory=Metrics)
    room: WaitingRoom = field(init=False)
    chat: ChatLog = field(init=False)
    audit: AuditLog = field(init=False)
    charts: ChartKeeper = field(init=False)
    verifier: Verifier = field(init=False)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        keys = KeySet(self.settings.jwks, self.settings.jwks_refresh) if self.settings.jwks else None
        self.verifier = Verifier(self.settings.secret, keys)
        self.room = WaitingRoom(self.redis, self.settings)
        self.chat = ChatLog(self.redis, Replication(self.redis, self.settings))
        self.audit = AuditLog(self.settings.audit_path())
        self.charts = ChartKeeper(self.settings, self.redis, self.room, self.chat, self.audit, self.spawn)
        self._connect = self.redis.register_script(_scripts.CONNECT)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a background task and keep a reference to it until it ends."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def audit_event(self, action: str, claims: Claims | None, visit_id: str, target: str = "") -> None:
        """Append an admit or an end to the audit trail. It happened already (in
        Redis), so a trail that cannot be written is logged, not thrown back."""
        try:
            clinic = claims.clinic if claims else await self.room.clinic_of(visit_id)
            await self.audit.arecord(
                action,
                actor_role=claims.role.value if claims else "system",
                actor_sub=claims.sub if claims else "",
                clinic=clinic,
                visit=visit_id,
                target=target,
            )
        except Exception:
            logger.exception("Visit(%s) %s could not be audited", visit_id, action)

    async def ended(self, visit_id: str, claims: Claims | None, reason: str) -> None:
        """A visit ended on this node: audit it, write its chart now, tell its guests' pages."""
        await self.audit_event("end", claims, visit_id, target=reason)
        self.charts.wake()
        await self.tell_guests_ended(visit_id, reason)

    async def tell_guests_ended(self, visit_id: str, reason: str) -> None:
        """Each link guest's page hears at once that the visit ended (their link
        died with it), in the words the sweep closing their socket would use."""
        ended = Unauthorized(ENDED_MESSAGES.get(reason, "this visit has ended"))
        for guest in await guests.read_all(self.redis, visit_id):
            if guest.role == Role.GUEST.value:
                await self.sio.emit("error", {"event": "", **ended.to_dict()},
                                    room=rooms.guest_page(visit_id, guest.id), namespace="/guest")

    async def check_live(self, claims: Claims) -> None:
        """Refuse a token that expired, was revoked, or whose visit ended.

        Called at connect and again on every event."""
        if claims.expired():
            raise Unauthorized("token expired")
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.revoked(claims.jti))
        if claims.visit is not None:
            pipe.hmget(keys.visit(claims.visit), ["state", "clinic", "end_reason"])
        results = await pipe.execute()
        if results[0]:
            raise Unauthorized("token revoked")
        if claims.visit is not None:
            state, clinic, end_reason = results[1]
            if state is None or clinic != claims.clinic:
                raise Unauthorized("this link is not valid")
            if state == State.ENDED.value:
                raise Unauthorized(ENDED_MESSAGES.get(end_reason, "this visit has ended"))

    async def authorize_visit(self, claims: Claims, visit_id: str, roles: frozenset[Role]) -> str:
        """Check that ``claims`` may act on ``visit_id``; returns the visit's clinic."""
        if claims.role not in roles:
            raise Forbidden(f"a {claims.role.value} cannot do this")
        if claims.role.visit_bound:  # a patient's or a guest's token: their own visit only
            if visit_id != claims.visit:
                raise Forbidden("not your visit")
            if claims.role is Role.GUEST and (
                claims.guest is None or await guests.state_of(self.redis, visit_id, claims.guest) != GuestState.ADMITTED
            ):
                raise Forbidden("the doctor has not let you into the visit", reason="guest_not_admitted")
            return claims.clinic
        clinic = await self.room.clinic_of(visit_id)
        if clinic != claims.clinic:
            raise Forbidden("this visit belongs to another clinic")
        return clinic

    async def revoke(self, claims: Claims) -> None:
        ttl = max(1, int(claims.exp - time.time()) + 1)
        await self.redis.set(keys.revoked(claims.jti), "1", ex=ttl)

    # -- abuse limits ----------------------------------------------------------------

    async def check_address(self, address: str) -> None:
        """Refuse an address that sent too many bad tokens this minute."""
        failures = await self.redis.get(keys.auth_failures(address))
        if failures is not None and int(failures) >= self.settings.auth_failures_per_minute:
            raise RateLimited("too many failed sign-ins from your network; wait a minute")

    async def count_auth_failure(self, address: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(keys.auth_failures(address))
        pipe.expire(keys.auth_failures(address), keys.AUTH_FAILURE_WINDOW, nx=True)
        await pipe.execute()

    async def open_connection(self, claims: Claims, namespace: str, sid: str) -> None:
        """Count a socket against its token's limit (live sockets on any node)."""
        now_ms = int(time.time() * 1000)
        stale = now_ms - int(3 * self.settings.presence_interval * 1000)
        ok = await self._connect(
            keys=[keys.connections(claims.jti, namespace)],
            args=[sid, now_ms, stale, self.settings.connections_per_token, int(max(60, claims.exp - time.time()))],
        )
        if not ok:
            raise RateLimited(f"this link is open in {self.settings.connections_per_token} places already; close one")

    async def close_connection(self, claims: Claims, namespace: str, sid: str) -> None:
        await self.redis.zrem(keys.connections(claims.jti, namespace), sid)
