"""HTTP routes of invitations: the clinic's expected visits, cancelling one, a fresh link.

Creating a visit (the invitation itself) is ``POST /api/visits`` in
:mod:`signaling.http`. A re-sent link is a new token for the same visit; the
earlier link stays valid until its own expiry (tokens are not stored, and the
patient may already have opened the first one: both lead to the same visit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from signaling import rooms, schemas
from signaling.http import HUB, STAFF, bearer, body, patient_link
from signaling.hub import Hub
from telemed import appointments, clinic_config
from telemed.exceptions import Conflict, Forbidden, NotFound
from telemed.tokens import Claims, Role, mint
from telemed.visits import EndReason, State, Visit

logger = logging.getLogger(__name__)

NAMESPACE = "/queue"


async def push(hub: Hub, visit: Visit) -> None:
    """Tell the patient and the clinic's staff (every node) that a visit not yet
    queued changed (the queue itself did not)."""
    await hub.sio.emit("visit", visit.for_patient(), room=rooms.patient(visit.id), namespace=NAMESPACE)
    await hub.sio.emit("visit", visit.for_staff(), room=rooms.staff(visit.clinic), namespace=NAMESPACE)


async def _staff_visit(request: web.Request) -> tuple[Hub, Claims, Visit]:
    hub = request.app[HUB]
    claims = await bearer(request, STAFF)
    visit_id = request.match_info["visit"]
    await hub.authorize_visit(claims, visit_id, STAFF)
    return hub, claims, await hub.room.get(visit_id)


async def get_expected(request: web.Request) -> web.Response:
    """The clinic's expected visits (created, not checked in), each with whether
    the patient is late (``TELEMED_LATE_AFTER`` past the time); its recent no-shows (``missed``); and the clinic's
    walk-in link when walk-in is on."""
    hub = request.app[HUB]
    claims = await bearer(request, STAFF)
    clinic = request.match_info["clinic"]
    if clinic != claims.clinic:
        raise Forbidden("this list belongs to another clinic")
    config = await clinic_config.get(hub.redis, hub.settings, clinic)
    now = time.time()
    expected = [
        {
            **v.for_staff(),
            "late": appointments.is_late(v.scheduled_at, now, hub.settings.late_after),
        }
        for v in await hub.room.expected(clinic)
    ]
    missed = [v.for_staff() for v in await hub.room.no_shows(clinic)]
    walk_in = f"{hub.settings.public_url}/clinic/{clinic}" if config.walk_in else None
    return web.json_response(
        {"clinic": clinic, "expected": expected, "missed": missed, "walk_in_link": walk_in, "now": now}
    )


async def cancel(request: web.Request) -> web.Response:
    """Cancel an expected visit: it ends (``cancelled``) and its link says so."""
    hub, claims, visit = await _staff_visit(request)
    try:
        await hub.room.end(visit.id, by=claims.sub, reason=EndReason.CANCELLED, not_started=True)
    except Conflict as exc:
        if exc.details.get("state") == State.ENDED.value:
            raise Conflict("This visit has already ended.", state=State.ENDED.value) from None
        raise Conflict(
            "The patient has already checked in: they are in the queue now.", state=exc.details.get("state")
        ) from None
    hub.metrics.visits_ended.labels(EndReason.CANCELLED.value).inc()
    await hub.ended(visit.id, claims, EndReason.CANCELLED.value)
    ended = await hub.room.get(visit.id)
    await push(hub, ended)
    return web.json_response({"visit": ended.for_staff()})


async def resend(request: web.Request) -> web.Response:
    """A fresh link for an expected visit (the patient lost the first): the visit
    now lasts as long as the new link."""
    hub, claims, visit = await _staff_visit(request)
    p: schemas.Resend = await body(request, schemas.Resend)
    if visit.state is not State.CREATED:
        raise Conflict("The patient has already checked in, or the visit is over.", state=visit.state.value)
    config = await clinic_config.get(hub.redis, hub.settings, visit.clinic)
    ttl = appointments.link_lifetime(
        p.ttl_minutes * 60 if p.ttl_minutes else None,
        config.link_lifetime,
        now=time.time(),
        scheduled_at=visit.scheduled_at,
        no_show_after=config.no_show_after,
    )
    try:
        visit = await hub.room.extend_link(visit.id, ttl)
    except NotFound:
        raise NotFound("This visit is no longer expected.") from None
    token, _ = mint(
        hub.settings.secret,
        role=Role.PATIENT,
        name=visit.patient_name or "Patient",
        clinic=visit.clinic,
        visit=visit.id,
        ttl=ttl,
    )
    await hub.audit_event("invite", claims, visit.id, target="resend")
    return web.json_response(
        {"visit_id": visit.id, "patient_link": patient_link(hub, token), "expires_at": visit.expires_at}
    )


async def no_show_sweep(app: web.Application) -> AsyncIterator[None]:
    """Mark no-shows while the node runs (:mod:`signaling.no_show`)."""
    from signaling import no_show  # it tells pages through push() above

    hub = app[HUB]
    task = hub.spawn(no_show.sweep(hub), name="no-show-sweep")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def add_invite_routes(app: web.Application) -> None:
    """The invitation routes, and the no-show sweep."""
    app.cleanup_ctx.append(no_show_sweep)
    app.router.add_get("/api/clinics/{clinic}/expected", get_expected)
    app.router.add_post("/api/visits/{visit}/cancel", cancel)
    app.router.add_post("/api/visits/{visit}/resend", resend)
