"""``GET /api/guest-invitations``: where the signed-in doctor or nurse is invited
as a clinician guest (:func:`telemed.guests.as_clinician`), for their staff page's
"<colleague> invited you to join the visit of <patient>" with a Join button. The
guest page then signs them in with their own staff token (no link)."""

from __future__ import annotations

from aiohttp import web

from signaling.http import HUB, bearer
from telemed import guests
from telemed.exceptions import NotFound
from telemed.tokens import Role
from telemed.visits import State

#: Who can be a clinician guest: the clinic's doctors and nurses.
CLINICIANS = frozenset({Role.NURSE, Role.DOCTOR})


async def my_invitations(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims = await bearer(request, CLINICIANS)
    out: list[dict[str, object]] = []
    for guest in await guests.as_clinician(hub.redis, claims.clinic, claims.sub):
        try:
            visit = await hub.room.get(guest.visit)
        except NotFound:  # expired between the two reads
            continue
        if visit.state is State.ENDED or visit.clinic != claims.clinic:
            continue
        out.append({
            "visit_id": visit.id,
            "guest_id": guest.id,
            "state": guest.state.value,
            "invited_by_name": guest.invited_by_name or None,
            "invited_at": guest.invited_at,
            "patient_name": visit.patient_name or None,
            "visit_state": visit.state.value,
            "doctor_name": visit.doctor_name or None,
        })
    return web.json_response({"invitations": out})


def add_invitation_routes(app: web.Application) -> None:
    app.router.add_get("/api/guest-invitations", my_invitations)
