"""HTTP routes: the pages, the JSON API, health and metrics.

Every JSON body is validated with pydantic; every error is
``{"error": {"code", "message"}}`` with the matching status.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_address
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from signaling import rooms, schemas
from signaling._address import client_address
from signaling._headers import add_default_headers, page_headers
from signaling.hub import Hub
from telemed import appointments, clinic_config, keys, replication
from telemed.exceptions import BadRequest, Forbidden, NotFound, RateLimited, TelemedError, Unauthorized, Unavailable
from telemed.jwks import JwksError
from telemed.tokens import ID_PATTERN, NOT_GUESTS, Claims, Role, mint

logger = logging.getLogger(__name__)

HUB = web.AppKey("hub", Hub)

#: Largest HTTP body accepted (the API's bodies are small JSON objects).
MAX_BODY = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a typed JSON error; never a traceback page. A
    change the Redis replicas did not confirm in time is answered ``unavailable``
    (telemed/replication.py)."""
    try:
        with replication.acknowledging() as ack:
            response = await handler(request)
        if not ack.confirmed:
            raise replication.NotReplicated
        return response
    except TelemedError as exc:
        return web.json_response({"error": exc.to_dict()}, status=exc.http_status)
    except RedisError:
        exc2 = Unavailable("the server's store is unreachable; retry")
        return web.json_response({"error": exc2.to_dict()}, status=503)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status, "http_error")
            return web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
        raise
    except Exception:
        logger.exception("HTTP %s %s failed", request.method, request.path)
        return web.json_response({"error": {"code": "error", "message": "internal error"}}, status=500)


async def body(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise BadRequest(f"{where}: {first.get('msg', 'invalid')}") from None


async def bearer(request: web.Request, roles: frozenset[Role], *, live: bool = True) -> Claims:
    """The request's token, verified; with ``live`` (the default) also still
    good (not revoked, its visit not ended: ``Hub.check_live``)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send Authorization: Bearer <token>")
    hub = request.app[HUB]
    claims = await hub.verifier.verify(token.strip())
    if live:
        await hub.check_live(claims)
    if claims.role not in roles:
        raise Forbidden(f"a {claims.role.value} cannot do this")
    return claims


STAFF = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})


def patient_link(hub: Hub, token: str) -> str:
    # The token travels in the fragment: never sent to servers, logs or Referer.
    return f"{hub.settings.public_url}/visit#t={token}"


async def create_visit(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims = await bearer(request, STAFF)
    p: schemas.CreateVisit = await body(request, schemas.CreateVisit)
    clinic = p.clinic or claims.clinic
    if clinic != claims.clinic:
        raise Forbidden("you can create visits for your own clinic only")
    config = await clinic_config.get(hub.redis, hub.settings, clinic)
    now = time.time()
    scheduled_at = None if p.scheduled_at is None else appointments.parse_when(p.scheduled_at, now)
    ttl = appointments.link_lifetime(
        p.ttl_minutes * 60 if p.ttl_minutes else None,
        config.link_lifetime,
        now=now,
        scheduled_at=scheduled_at,
        no_show_after=config.no_show_after,
    )
    name = p.patient_name or "Patient"
    opens = None if scheduled_at is None else scheduled_at - config.check_in_window
    visit = await hub.room.create(
        clinic, reason=p.reason, ttl=ttl, patient_name=name, scheduled_at=scheduled_at, check_in_from=opens
    )
    token, _ = mint(hub.settings.secret, role=Role.PATIENT, name=name, clinic=clinic, visit=visit.id, ttl=ttl)
    await hub.audit_event("invite", claims, visit.id, target="new")
    # Staff pages list it as expected at once (every node: through Redis).
    await hub.sio.emit("visit", visit.for_staff(), room=rooms.staff(clinic), namespace="/queue")
    reply: dict[str, object] = {"visit_id": visit.id, "patient_link": patient_link(hub, token), "expires_at": visit.expires_at}
    if scheduled_at is not None:
        reply |= {"scheduled_at": scheduled_at, "check_in_from": opens}
    return web.json_response(reply, status=201)


async def get_queue(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims = await bearer(request, STAFF)
    clinic = request.match_info["clinic"]
    if clinic != claims.clinic:
        raise Forbidden("this queue belongs to another clinic")
    queue = await hub.room.queue(clinic)
    return web.json_response(
        {
            "clinic": clinic,
            "version": await hub.room.queue_version(clinic),
            "queue": [{**v.for_staff(), "position": i} for i, v in enumerate(queue, 1)],
        }
    )


async def get_visit(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims = await bearer(request, NOT_GUESTS)
    visit_id = request.match_info["visit"]
    await hub.authorize_visit(claims, visit_id, NOT_GUESTS)
    visit = await hub.room.get(visit_id)
    return web.json_response({"visit": visit.for_patient() if claims.role is Role.PATIENT else visit.for_staff()})


async def walk_in(request: web.Request) -> web.Response:
    """The clinic's standing check-in link: creates a visit for whoever comes."""
    hub = request.app[HUB]
    clinic = request.match_info["clinic"]
    if not ID_PATTERN.fullmatch(clinic) or not await hub.room.walk_in_enabled(clinic):
        raise NotFound("this clinic has no walk-in link")
    address = client_address(request, hub.settings.trusted_proxies)
    rate_key = keys.walk_in_rate(address)
    pipe = hub.redis.pipeline(transaction=True)
    pipe.incr(rate_key)
    pipe.expire(rate_key, keys.WALK_IN_WINDOW, nx=True)
    count, _ = await pipe.execute()
    if count > hub.settings.walk_in_per_minute:
        raise RateLimited("too many check-ins from your network; wait a minute and try again")
    p: schemas.WalkIn = await body(request, schemas.WalkIn)
    ttl = hub.settings.patient_link_ttl
    visit = await hub.room.create(clinic, reason=p.reason, ttl=ttl)
    token, _ = mint(hub.settings.secret, role=Role.PATIENT, name=p.name, clinic=clinic, visit=visit.id, ttl=ttl)
    return web.json_response(
        {"visit_id": visit.id, "patient_link": patient_link(hub, token), "token": token, "expires_at": visit.expires_at},
        status=201,
    )


async def revoke(request: web.Request) -> web.Response:
    """An admin revokes a token of their clinic (a lost phone, a staff member leaving)."""
    hub = request.app[HUB]
    claims = await bearer(request, frozenset({Role.ADMIN}))
    p: schemas.Revoke = await body(request, schemas.Revoke)
    try:
        target = await hub.verifier.verify(p.token)
    except Unauthorized as exc:
        raise BadRequest(f"token: {exc.message}") from None
    if target.clinic != claims.clinic:
        raise Forbidden("that token belongs to another clinic")
    await hub.revoke(target)
    logger.info("token %s revoked by %s", target.jti, claims.sub)
    return web.json_response({"revoked": target.jti})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while Redis answers; with Sentinel or replicas required, while the
    primary answers as a primary and enough replicas keep up with it (the
    changes people make are acknowledged only then: telemed/replication.py).
    So a node is out of the balancer for the whole failover window."""
    hub = request.app[HUB]
    needed = hub.settings.redis_min_replicas
    if not needed and not hub.settings.redis_sentinels:
        try:
            await hub.redis.ping()
        except RedisError:
            return web.json_response({"status": "unavailable", "redis": False}, status=503)
        return web.json_response({"status": "ready", "redis": True})
    state = await replication.health(hub.redis)
    ready = state.ready(needed)
    body = {
        "status": "ready" if ready else "unavailable",
        "redis": state.reachable and state.primary,
        "replicas": state.replicas,
        "replicas_needed": needed,
    }
    return web.json_response(body, status=200 if ready else 503)


#: Headers a proxy adds: a request carrying one came through a proxy, even from loopback.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _direct_from_loopback(request: web.Request) -> bool:
    try:
        peer = ip_address(request.remote or "")
    except ValueError:
        return False
    return peer.is_loopback and not any(h in request.headers for h in FORWARDING_HEADERS)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text. With ``TELEMED_METRICS_TOKEN`` set, for a bearer of that
    token (compared in constant time); without, for loopback peers that came
    through no proxy only."""
    hub = request.app[HUB]
    expected = hub.settings.metrics_token
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.reveal().encode()):
            raise Unauthorized("send Authorization: Bearer <the metrics token>")
    elif not _direct_from_loopback(request):
        raise Forbidden("metrics are served to this host only; set TELEMED_METRICS_TOKEN to scrape from elsewhere")
    return web.Response(body=hub.metrics.render(), content_type="text/plain", charset="utf-8")


def page(name: str) -> Handler:
    """Serve the page file ``web/<name>`` with its headers and its own CSP."""
    headers = page_headers(name)

    async def serve(request: web.Request) -> web.StreamResponse:
        path = request.app[HUB].settings.web_dir / name
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=headers)

    return serve


async def key_set(app: web.Application) -> AsyncIterator[None]:
    """Read the clinic's key set (``TELEMED_JWKS``) before serving, then keep it
    fresh. A file that cannot be read stops the start; a URL that cannot be
    fetched is tried again later (its tokens are refused meanwhile)."""
    hub = app[HUB]
    keys = hub.verifier.keys
    if keys is None:
        yield
        return
    try:
        await keys.read()
    except JwksError as exc:
        if not keys.remote:
            raise
        logger.warning("KeySet(%s) not read at start, retrying later: %s", keys.source, exc)
    task = hub.spawn(keys.run(), name="jwks-refresh")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def add_routes(app: web.Application, hub: Hub) -> None:
    app.on_response_prepare.append(add_default_headers)
    app.cleanup_ctx.append(key_set)
    app.router.add_get("/", page("index.html"))
    app.router.add_get("/visit", page("patient.html"))
    app.router.add_get("/staff", page("staff.html"))
    app.router.add_get("/clinic/{clinic}", page("walk_in.html"))
    app.router.add_post("/api/visits", create_visit)
    app.router.add_get("/api/visits/{visit}", get_visit)
    app.router.add_get("/api/clinics/{clinic}/queue", get_queue)
    app.router.add_post("/api/clinics/{clinic}/walk-in", walk_in)
    app.router.add_post("/api/tokens/revoke", revoke)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if hub.settings.web_dir.is_dir():
        app.router.add_static("/static/", hub.settings.web_dir, follow_symlinks=False)

