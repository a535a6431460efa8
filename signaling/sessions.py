"""Active staff sessions: a registry, per clinic, of the staff sockets on every node.

The admin console lists who is signed in (name, role, since when, on which
server) and can sign someone out. Each node writes its own staff ``/queue``
sockets into the clinic's hash (:func:`telemed.keys.staff_sessions`) when they
connect, removes them when they go, and rewrites them every presence interval;
an entry nobody refreshed for a few intervals (its node died) is dropped when
the hash is read, so a dead node's sessions vanish without anyone noticing the
death.

Signing out revokes the token (the existing revocation marker) and closes its
sockets at once: here directly, on the other nodes through a node-to-node
notice (:data:`SIGNED_OUT`) that makes each close the sockets of revoked tokens
it holds (:func:`signaling.presence.close_dead_sockets`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import RedisError

from signaling.hub import Hub
from telemed import keys
from telemed.exceptions import BadRequest, NotFound
from telemed.tokens import Claims, Role

if TYPE_CHECKING:
    from signaling._base import AuthedNamespace

logger = logging.getLogger(__name__)

#: The node-to-node notice: a token was revoked, close its sockets now.
SIGNED_OUT = "signed_out"

Notice = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class StaffSession:
    """One live staff socket, as the admin console lists it."""

    sid: str
    jti: str
    """The token's id: what "Sign out" revokes (every socket of the token closes)."""
    sub: str
    name: str
    role: str
    since: float
    """When the socket connected (epoch seconds)."""
    node: str
    """The server holding the socket."""
    exp: float
    """When the token expires (the revocation marker lives until then)."""
    seen: float
    """When its node last refreshed the entry."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def node_name(host_id: str) -> str:
    """A server's name as the admin sees it: the host and a short process id."""
    return f"{socket.gethostname()} ({host_id[:6]})"


class StaffSessions:
    """This node's side of the registry: its sockets in, stale entries out."""

    def __init__(self, hub: Hub, local: dict[str, Claims]) -> None:
        self.hub = hub
        #: The ``/queue`` namespace's sockets on this node (sid -> claims).
        self.local = local
        self._since: dict[str, float] = {}
        self._namespaces: Sequence[AuthedNamespace] = ()

    @property
    def node(self) -> str:
        return node_name(str(getattr(self.hub.sio.manager, "host_id", "") or "local"))

    def _entry(self, sid: str, claims: Claims, now: float) -> StaffSession:
        return StaffSession(
            sid=sid, jti=claims.jti, sub=claims.sub, name=claims.name, role=claims.role.value,
            since=self._since.setdefault(sid, now), node=self.node, exp=claims.exp, seen=now,
        )

    async def add(self, sid: str, claims: Claims) -> None:
        """A staff socket connected here."""
        if claims.role is Role.PATIENT:
            return
        now = time.time()
        self._since[sid] = now
        key = keys.staff_sessions(claims.clinic)
        pipe = self.hub.redis.pipeline(transaction=False)
        pipe.hset(key, sid, self._entry(sid, claims, now).to_json())
        pipe.expire(key, keys.STAFF_SESSIONS_TTL)
        await pipe.execute()

    async def remove(self, sid: str, claims: Claims) -> None:
        """A staff socket went."""
        self._since.pop(sid, None)
        if claims.role is not Role.PATIENT:
            await self.hub.redis.hdel(keys.staff_sessions(claims.clinic), sid)

    async def refresh(self) -> None:
        """Rewrite this node's entries (their ``seen`` time), once per presence interval."""
        now = time.time()
        by_clinic: dict[str, dict[str, str]] = {}
        for sid, claims in list(self.local.items()):
            if claims.role is not Role.PATIENT:
                by_clinic.setdefault(claims.clinic, {})[sid] = self._entry(sid, claims, now).to_json()
        for sid in set(self._since) - set(self.local):
            del self._since[sid]
        if not by_clinic:
            return
        pipe = self.hub.redis.pipeline(transaction=False)
        for clinic, entries in by_clinic.items():
            pipe.hset(keys.staff_sessions(clinic), mapping=entries)  # type: ignore[arg-type]
            pipe.expire(keys.staff_sessions(clinic), keys.STAFF_SESSIONS_TTL)
        await pipe.execute()
        for clinic in by_clinic:
            await self.list(clinic)  # drops what a dead node left, even if no admin looks

    async def run(self) -> None:
        """Refresh forever (a background task of the node)."""
        while True:
            try:
                await self.refresh()
            except RedisError as exc:
                logger.warning("staff session refresh failed: %s", type(exc).__name__)
            await asyncio.sleep(self.hub.settings.presence_interval)

    async def list(self, clinic: str) -> list[StaffSession]:
        """The clinic's live staff sockets, oldest first; drops entries gone stale."""
        raw = cast("dict[str, str]", await self.hub.redis.hgetall(keys.staff_sessions(clinic)))
        cutoff = time.time() - keys.STAFF_SESSION_STALE_INTERVALS * self.hub.settings.presence_interval
        live: list[StaffSession] = []
        stale: list[str] = []
        for sid, text in raw.items():
            try:
                entry = StaffSession(**json.loads(text))
            except (ValueError, TypeError):
                stale.append(sid)
                continue
            if entry.seen >= cutoff:
                live.append(entry)
            else:
                stale.append(sid)
        if stale:
            await self.hub.redis.hdel(keys.staff_sessions(clinic), *stale)
        return sorted(live, key=lambda s: (s.since, s.name))

    # -- signing out -------------------------------------------------------------------

    def install(self, namespaces: Sequence[AuthedNamespace], previous: Notice | None) -> Notice:
        """Return the node's notice handler: :data:`SIGNED_OUT` here, the rest to ``previous``."""
        self._namespaces = namespaces

        async def on_notice(kind: str, data: dict[str, Any]) -> None:
            if kind == SIGNED_OUT:
                await self.close_revoked()
            elif previous is not None:
                await previous(kind, data)

        return on_notice

    async def close_revoked(self) -> int:
        """Close this node's sockets of revoked tokens now (with the reason)."""
        from signaling.presence import close_dead_sockets

        return await close_dead_sockets(self.hub, self._namespaces)

    async def sign_out(self, clinic: str, jti: str, by: Claims) -> StaffSession:
        """Revoke a live staff session's token and close its sockets on every node.

        :raises NotFound: no live session of the clinic has that token.
        :raises BadRequest: it is the admin's own session.
        """
        entries = [s for s in await self.list(clinic) if s.jti == jti]
        if not entries:
            raise NotFound("That person is no longer signed in.")
        if jti == by.jti:
            raise BadRequest("This is your own session: use Sign out at the top of the page.")
        first = entries[0]
        ttl = max(1, int(first.exp - time.time()) + 1)
        await self.hub.redis.set(keys.revoked(jti), "1", ex=ttl)
        await self.hub.redis.hdel(keys.staff_sessions(clinic), *(s.sid for s in entries))
        publish = getattr(self.hub.sio.manager, "publish_internal", None)
        if publish is not None:
            await publish(SIGNED_OUT, {"clinic": clinic})
        await self.close_revoked()
        return first
