"""The base of every Socket.IO namespace: authentication at connect, and for
every event validation, authorisation on arrival and a typed reply.

A handler is an ``on_<event>`` method decorated with :func:`event`; it receives
the caller's claims and the validated payload and returns a dict, which is
acknowledged as ``{"ok": true, ...}``. Any failure is acknowledged as
``{"ok": false, "error": {"code", "message"}}`` and also emitted to the caller
as an ``error`` event (so a client that did not ask for an ack still hears it).
A handler whose changes the Redis replicas did not confirm in time is answered
``unavailable`` (telemed/replication.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signaling._address import client_address
from signaling._ratelimit import TokenBucket
from signaling.hub import Hub
from telemed import replication
from telemed.exceptions import BadRequest, Forbidden, RateLimited, TelemedError, Unauthorized, Unavailable
from telemed.tokens import NOT_GUESTS, Claims, Role

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Any, str, Claims, Any], Awaitable[dict[str, Any]]]

#: A namespace's default: every role but guests, who connect only where named (default deny).
ALL_ROLES = NOT_GUESTS
STAFF = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})


def event(model: type[BaseModel], roles: frozenset[Role]) -> Callable[[Handler], Handler]:
    """Declare an event handler: its payload model and the roles that may send it."""

    def wrap(fn: Handler) -> Handler:
        fn.__telemed_event__ = (model, roles)  # type: ignore[attr-defined]
        return fn

    return wrap


def _bad_request(exc: ValidationError) -> BadRequest:
    errors = exc.errors()
    fields = sorted({".".join(str(p) for p in e["loc"]) or "payload" for e in errors})
    first = errors[0] if errors else None
    message = f"{'.'.join(str(p) for p in first['loc']) or 'payload'}: {first['msg']}" if first else "invalid payload"
    return BadRequest(message, fields=fields)


def refuse(exc: TelemedError) -> socketio.exceptions.ConnectionRefusedError:
    """The client's ``connect_error`` gets ``{message, data: {code, message}}``."""
    return socketio.exceptions.ConnectionRefusedError(exc.message, exc.to_dict())


class AuthedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Connect with ``auth={"token": "<jwt>"}``; every event is checked again."""

    #: Roles that may connect to this namespace at all.
    roles: frozenset[Role] = ALL_ROLES

    def __init__(self, namespace: str, hub: Hub) -> None:
        super().__init__(namespace)
        self.hub = hub
        #: Claims of the sockets connected to this node, by sid.
        self.local: dict[str, Claims] = {}
        #: Per-socket event rate limits.
        self.buckets: dict[str, TokenBucket] = {}
        self._handlers: dict[str, tuple[type[BaseModel], frozenset[Role], Handler]] = {}
        for name in dir(type(self)):
            fn = getattr(type(self), name)
            spec = getattr(fn, "__telemed_event__", None)
            if spec and name.startswith("on_"):
                self._handlers[name[3:]] = (spec[0], spec[1], fn)

    # -- connection ----------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        address = client_address(environ["aiohttp.request"], self.hub.settings.trusted_proxies)
        try:
            await self.hub.check_address(address)
            try:
                claims = await self.hub.verifier.verify(token)
                await self.hub.check_live(claims)
            except Unauthorized:
                await self.hub.count_auth_failure(address)
                raise
            if claims.role not in self.roles:
                raise Forbidden(f"a {claims.role.value} cannot use {self.namespace}")
            await self.hub.open_connection(claims, self.namespace, sid)
            self.local[sid] = claims
            self.buckets[sid] = TokenBucket(self.hub.settings.event_rate, self.hub.settings.event_burst)
            self.hub.metrics.sockets.labels(self.namespace, claims.role.value).inc()
            await self.joined(sid, claims)
        except Exception as exc:
            joined = self.local.pop(sid, None)
            self.buckets.pop(sid, None)
            if joined is not None:
                self.hub.metrics.sockets.labels(self.namespace, joined.role.value).dec()
                with contextlib.suppress(Exception):
                    await self.left(sid, joined)
                    await self.hub.close_connection(joined, self.namespace, sid)
            if isinstance(exc, TelemedError):
                logger.info("%s refused a connection: %s", self.namespace, exc.code)
                raise refuse(exc) from None
            if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
                raise refuse(Unavailable("try again shortly")) from None
            logger.exception("%s: connect failed", self.namespace)
            raise refuse(TelemedError("internal error")) from None

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        claims = self.local.pop(sid, None)
        self.buckets.pop(sid, None)
        if claims is not None:
            self.hub.metrics.sockets.labels(self.namespace, claims.role.value).dec()
            try:
                await self.hub.close_connection(claims, self.namespace, sid)  # a stale entry expires anyway
                await self.left(sid, claims)
            except RedisError as exc:
                logger.warning("%s: disconnect bookkeeping failed: %s", self.namespace, type(exc).__name__)

    async def joined(self, sid: str, claims: Claims) -> None:
        """Called once a socket is authenticated: enter rooms, send the initial state."""

    async def left(self, sid: str, claims: Claims) -> None:
        """Called when an authenticated socket disconnects."""

    # -- events ----------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect") and not self.server.manager.is_connected(args[0], self.namespace):
            # The real life-cycle events (python-socketio marks the socket
            # pending until they ran); a client sending one by name falls through.
            return await super().trigger_event(event, *args)
        sid, data = args[0], (args[1] if len(args) > 1 else None)
        spec = self._handlers.get(event)
        label = event if spec else "unknown"
        try:
            if spec is None:
                raise BadRequest(f"unknown event {event!r}"[:120])
            bucket = self.buckets.get(sid)
            if bucket is not None and not bucket.take():
                raise RateLimited("slow down: too many events")
            if len(args) > 2:
                raise BadRequest("send one payload object")
            model, roles, fn = spec
            claims = self.local.get(sid)
            if claims is None:
                raise Unauthorized("not connected")
            await self.hub.check_live(claims)
            if claims.role not in roles:
                raise Forbidden(f"a {claims.role.value} cannot {event}")
            try:
                payload = model.model_validate({} if data is None and not model.model_fields else data)
            except ValidationError as exc:
                raise _bad_request(exc) from None
            with replication.acknowledging() as ack:
                result = await fn(self, sid, claims, payload)
            if not ack.confirmed:  # made, but a failover could still lose it: not acknowledged
                raise replication.NotReplicated
        except TelemedError as exc:
            return await self._fail(sid, event, label, exc)
        except (RedisConnectionError, RedisTimeoutError):
            return await self._fail(sid, event, label, Unavailable("the server's store is unreachable; retry"))
        except Exception:
            logger.exception("%s: event %s failed", self.namespace, label)
            return await self._fail(sid, event, label, TelemedError("internal error"))
        self.hub.metrics.events.labels(self.namespace, label, "ok").inc()
        return {"ok": True, **result}

    async def _fail(self, sid: str, event: str, label: str, exc: TelemedError) -> dict[str, Any]:
        self.hub.metrics.events.labels(self.namespace, label, exc.code).inc()
        error = exc.to_dict()
        await self.emit("error", {"event": event[:64], **error}, to=sid)
        if isinstance(exc, Unauthorized):
            # The token is no longer good (expired, revoked, visit ended): close.
            self.hub.spawn(self.disconnect(sid), name=f"disconnect:{sid}")
        return {"ok": False, "error": error}


def handler_names(ns: AuthedNamespace) -> list[str]:
    return sorted(ns._handlers)


