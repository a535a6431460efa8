"""HTTP routes of a visit's guests (:mod:`telemed.guests`), and the pushes that
tell everyone in the visit who is there.

- ``POST /api/visits/{visit}/guests``: a doctor or nurse of the clinic invites
  a guest; an interpreter or caregiver gets a link (``/guest#t=<token>``), a
  clinician guest (a staff member on the clinic's roster) uses their own token.
- ``GET /api/visits/{visit}/guests``: the clinic's staff: the guests and their states.
- ``POST /api/visits/{visit}/guests/{guest}/admit`` and ``.../remove``: the
  visit's doctor (before a doctor has the visit, removing is open to the
  clinic's doctors and nurses: they may take back an invitation).
- ``GET /api/visits/{visit}/participants``: the patient, the staff of the
  clinic, and guests in the visit: who is in it and why.

Pushes (every node, through Redis): staff get ``guests`` on ``/queue``, the
patient ``participants`` on ``/queue``, guests ``participants`` and their own
``guest`` state on ``/guest``; the call's parties ``peer`` on ``/call`` when a
guest is let in or removed (:mod:`signaling.call_parties`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from signaling import rooms, schemas
from signaling.call_parties import CallParties
from signaling.http import HUB, bearer, body, page
from signaling.hub import Hub
from signaling.media_ns import tell_not_recorded
from signaling.sessions import SIGNED_OUT, StaffSessions
from telemed.exceptions import BadRequest, Conflict, Forbidden, NotFound
from telemed.guests import LINK_TTL, Guest, GuestList, GuestState, Kind
from telemed.roster import Roster
from telemed.tokens import Claims, Role, mint, new_id
from telemed.visits import State, Visit

logger = logging.getLogger(__name__)

GUEST_NAMESPACE = "/guest"
QUEUE_NAMESPACE = "/queue"

#: Who may invite guests: the clinic's doctors and nurses.
INVITERS = frozenset({Role.NURSE, Role.DOCTOR})
STAFF = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})

GUESTS = web.AppKey("guests", GuestList)
#: Closes this node's sockets of revoked tokens and tells the other nodes to (a removed guest's).
CLOSE_REVOKED: web.AppKey[Callable[[], Awaitable[None]]] = web.AppKey("close_revoked")


visit_room = rooms.guest_pages
guest_room = rooms.guest_page


def guest_link(hub: Hub, token: str) -> str:
    # The token travels in the fragment, as the patient's (never sent to servers or logs).
    return f"{hub.settings.public_url}/guest#t={token}"


def participants(visit: Visit, guests: list[Guest]) -> list[dict[str, object]]:
    """Who is in the visit, and why: the patient, the doctor, the guests in it
    (a guest waiting to be let in is listed as waiting; removed ones not at all)."""
    out: list[dict[str, object]] = []
    if visit.patient_sub and visit.state is not State.ENDED:
        out.append({"type": "patient", "kind": None, "name": visit.patient_name, "language": visit.language or None,
                    "state": "in_visit" if visit.state is State.IN_VISIT else "waiting"})
    if visit.doctor:
        out.append({"type": "doctor", "kind": None, "name": visit.doctor_name, "language": None,
                    "state": "in_visit" if visit.state is State.IN_VISIT else "left"})
    for g in guests:
        if g.state in (GuestState.WAITING, GuestState.ADMITTED):
            out.append({"type": "guest", **g.for_participant()})
    return out


async def push(hub: Hub, guests: GuestList, visit_id: str, changed: Guest | None = None) -> None:
    """Tell the clinic's staff, the patient and the visit's guests what changed."""
    visit = await hub.room.get(visit_id)
    listed = await guests.list(visit_id)
    people = {"visit_id": visit_id, "participants": participants(visit, listed)}
    await hub.sio.emit("guests", {"visit_id": visit_id, "guests": [g.for_staff() for g in listed]},
                       room=rooms.staff(visit.clinic), namespace=QUEUE_NAMESPACE)
    await hub.sio.emit("participants", people, room=rooms.patient(visit_id), namespace=QUEUE_NAMESPACE)
    await hub.sio.emit("participants", people, room=visit_room(visit_id), namespace=GUEST_NAMESPACE)
    await tell_not_recorded(hub, visit_id, listed)
    if changed is not None:
        await hub.sio.emit("guest", changed.for_self(), room=guest_room(visit_id, changed.id), namespace=GUEST_NAMESPACE)


async def _staff_visit(request: web.Request, roles: frozenset[Role]) -> tuple[Hub, GuestList, Claims, Visit]:
    hub = request.app[HUB]
    claims = await bearer(request, roles)
    visit_id = request.match_info["visit"]
    await hub.authorize_visit(claims, visit_id, roles)
    return hub, request.app[GUESTS], claims, await hub.room.get(visit_id)


async def invite(request: web.Request) -> web.Response:
    hub, guests, claims, visit = await _staff_visit(request, INVITERS)
    p: schemas.GuestInvite = await body(request, schemas.GuestInvite)
    if visit.state is State.ENDED:
        raise Conflict("This visit has ended.", state=visit.state.value)
    kind = Kind(p.kind)
    if kind is Kind.CLINICIAN:
        if p.staff_sub is None:
            raise BadRequest("staff_sub: choose the clinician from the clinic's staff", fields=["staff_sub"])
        member = await Roster(hub.redis, hub.settings).get(visit.clinic, p.staff_sub)
        if member is None or member.role not in INVITERS:
            raise NotFound("That person is not a doctor or nurse of this clinic.")
        if member.sub in (claims.sub, visit.doctor):
            raise Conflict("This person is already in the visit.", reason="guest_already")
        guest = await guests.invite(visit.id, visit.clinic, kind=kind, name=member.name, by=claims,
                                    direct_join=p.direct_join, staff_sub=member.sub, staff_role=member.role.value)
        link = None
    else:
        if p.staff_sub is not None:
            raise BadRequest("staff_sub: only a clinician guest is a staff member", fields=["staff_sub"])
        if not p.name:
            raise BadRequest("name: say who the guest is", fields=["name"])
        guest_id = new_id()
        token, minted = mint(hub.settings.secret, role=Role.GUEST, name=p.name, clinic=visit.clinic,
                             visit=visit.id, guest=guest_id, sub=guest_id, ttl=LINK_TTL)
        guest = await guests.invite(visit.id, visit.clinic, kind=kind, name=p.name, by=claims,
                                    language=p.language, direct_join=p.direct_join, jti=minted.jti,
                                    guest_id=guest_id)
        link = guest_link(hub, token)
    await hub.audit_event("invite", claims, visit.id, target=f"guest:{guest.kind.value}:{guest.id}")
    await push(hub, guests, visit.id, guest)
    return web.json_response({"guest": guest.for_staff(), "guest_link": link}, status=201)


async def list_guests(request: web.Request) -> web.Response:
    _, guests, _, visit = await _staff_visit(request, STAFF)
    return web.json_response({"visit_id": visit.id, "guests": [g.for_staff() for g in await guests.list(visit.id)]})


def _check_doctor(claims: Claims, visit: Visit, action: str) -> None:
    if visit.doctor:
        if claims.sub != visit.doctor or claims.role is not Role.DOCTOR:
            raise Forbidden(f"only the visit's doctor can {action} a guest")
    elif action == "admit":
        raise Conflict("Guests are let in once the doctor has started the visit.", state=visit.state.value)


async def admit(request: web.Request) -> web.Response:
    hub, guests, claims, visit = await _staff_visit(request, frozenset({Role.DOCTOR}))
    _check_doctor(claims, visit, "admit")
    guest = await guests.admit(visit.id, request.match_info["guest"], by=claims.sub)
    await hub.audit_event("admit", claims, visit.id, target=f"guest:{guest.id}")
    await push(hub, guests, visit.id, guest)
    await CallParties(hub, guests).guest_in(visit.id, guest)
    return web.json_response({"guest": guest.for_staff()})


async def remove(request: web.Request) -> web.Response:
    hub, guests, claims, visit = await _staff_visit(request, INVITERS)
    _check_doctor(claims, visit, "remove")
    guest = await guests.remove(visit.id, request.match_info["guest"], by=claims.sub)
    await hub.audit_event("revoke", claims, visit.id, target=f"guest:{guest.id}")
    await push(hub, guests, visit.id, guest)
    if guest.jti:  # the link is revoked: close its sockets on every node now (its /call ones too)
        await request.app[CLOSE_REVOKED]()
    await CallParties(hub, guests).guest_out(visit.id, guest.id)
    return web.json_response({"guest": guest.for_staff()})


async def get_participants(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    guests = request.app[GUESTS]
    claims = await bearer(request, frozenset(Role))
    visit_id = request.match_info["visit"]
    await hub.authorize_visit(claims, visit_id, frozenset(Role))  # a guest: admitted, in their own visit
    visit = await hub.room.get(visit_id)
    return web.json_response({"visit_id": visit_id, "participants": participants(visit, await guests.list(visit_id)),
                              "now": time.time()})


def add_guest_routes(app: web.Application, guests: GuestList, sessions: StaffSessions) -> None:
    """The guest routes. A removed guest's sockets close the way a signed-out
    staff member's do (``sessions``): every node is told to close its sockets of
    revoked tokens (:data:`signaling.sessions.SIGNED_OUT`), this one at once."""
    hub = app[HUB]

    async def close_revoked() -> None:
        publish = getattr(hub.sio.manager, "publish_internal", None)
        if publish is not None:
            await publish(SIGNED_OUT, {})
        await sessions.close_revoked()

    app[GUESTS] = guests
    app[CLOSE_REVOKED] = close_revoked
    app.router.add_get("/guest", page("guest.html"))
    app.router.add_post("/api/visits/{visit}/guests", invite)
    app.router.add_get("/api/visits/{visit}/guests", list_guests)
    app.router.add_post("/api/visits/{visit}/guests/{guest}/admit", admit)
    app.router.add_post("/api/visits/{visit}/guests/{guest}/remove", remove)
    app.router.add_get("/api/visits/{visit}/participants", get_participants)

