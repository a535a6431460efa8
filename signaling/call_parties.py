"""Who is in a visit's call, and who of them is there now (issue 13's mesh).

The parties of a visit in progress are ``patient``, ``doctor`` and each guest
admitted into it, by guest id (:mod:`telemed.guests`); a party is what travels
in ``to`` and ``from`` on ``/call``. Each party's ``/call`` sockets are in one
room: the patient's (:func:`rooms.patient`), the doctor's and a clinician
guest's staff room (:func:`rooms.user`), a link guest's
(:func:`rooms.call_guest`).

A party is online while it has a ``/call`` socket on any node and has not
left the call (``leave_call``). Its sockets are listed in Redis by room
(:func:`telemed.keys.call_sockets`, socket id -> token id) and count only
while their token's connection entry is fresh (:func:`telemed.keys.connections`,
which every node refreshes each presence interval): a node that dies stops
refreshing, so its sockets stop counting within three intervals, and are
dropped from the list when it is next read.

Who offers to whom (both pages apply it; the server relays either way): the
earlier party of a pair in :func:`offer_order`, doctor < guests by id < patient.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from signaling import rooms
from signaling.hub import Hub
from telemed import keys
from telemed.exceptions import Conflict, Forbidden, NotFound
from telemed.guests import Guest, GuestList, GuestState, Kind, as_clinician
from telemed.tokens import Claims, Role
from telemed.visits import State

logger = logging.getLogger(__name__)

NAMESPACE = "/call"
PATIENT = "patient"
DOCTOR = "doctor"

#: Roles that may open ``/call``: a nurse only as a clinician guest (checked at connect).
CALLERS = frozenset({Role.PATIENT, Role.DOCTOR, Role.NURSE, Role.GUEST})

NOT_LET_IN = "the doctor has not let you in yet"

#: How long a socket's entry in its party's list may outlive the last connect
#: (the entries of sockets that went without a disconnect are dropped when read).
SOCKETS_TTL_MIN = 60

#: Keep a party's socket list until the latest of its tokens expires.
_REMEMBER_SOCKET = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


def offer_order(party: str) -> tuple[int, str]:
    """Sort key of the offer rule: in each pair the earlier party offers."""
    if party == DOCTOR:
        return (0, "")
    if party == PATIENT:
        return (2, "")
    return (1, party)


@dataclass(frozen=True)
class CallVisit:
    """A visit in progress, as the call needs it."""

    id: str
    clinic: str
    doctor: str


@dataclass(frozen=True)
class Party:
    party: str
    kind: str
    """``patient``, ``doctor``, ``interpreter``, ``caregiver`` or ``clinician``."""
    name: str
    language: str | None
    room: str
    """The party's ``/call`` sockets (also the key of its socket list)."""


def guest_party(visit: CallVisit, guest: Guest) -> Party:
    room = rooms.user(visit.clinic, guest.sub) if guest.kind is Kind.CLINICIAN else rooms.call_guest(visit.id, guest.id)
    return Party(guest.id, guest.kind.value, guest.name, guest.language or None, room)


def own_room(claims: Claims) -> str:
    """The room of a socket's own party: where what is sent to it arrives."""
    if claims.role is Role.PATIENT:
        assert claims.visit is not None
        return rooms.patient(claims.visit)
    if claims.role is Role.GUEST:
        assert claims.visit is not None and claims.guest is not None
        return rooms.call_guest(claims.visit, claims.guest)
    return rooms.user(claims.clinic, claims.sub)


class CallParties:
    """Parties of visits in progress, their presence, and the ``peer`` notices."""

    def __init__(self, hub: Hub, guests: GuestList) -> None:
        self.hub = hub
        self.guests = guests
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = hub.redis
        self._remember = hub.redis.register_script(_REMEMBER_SOCKET)

    # -- who -------------------------------------------------------------------------------

    async def caller(self, claims: Claims, visit_id: str) -> tuple[CallVisit, str]:
        """The caller as a party of ``visit_id`` in progress: the visit and their party.

        :raises Forbidden: not their visit, another doctor's, a guest not let in (yet).
        :raises NotFound: no such visit (staff of its clinic only; others are forbidden).
        :raises Conflict: the visit is not in progress."""
        try:
            await self.hub.authorize_visit(claims, visit_id, CALLERS)  # a link guest: admitted, their own visit
        except Forbidden as exc:
            if exc.details.get("reason") == "guest_not_admitted":
                raise Forbidden(NOT_LET_IN, reason="guest_not_admitted") from None
            raise
        state, doctor, clinic = await self.redis.hmget(keys.visit(visit_id), ["state", "doctor", "clinic"])
        if state is None:
            raise NotFound("no such visit")
        if state != State.IN_VISIT.value:
            raise Conflict(f"no call while the visit is {state}", state=state)
        visit = CallVisit(visit_id, clinic, doctor or "")
        if claims.role is Role.PATIENT:
            return visit, PATIENT
        if claims.role is Role.GUEST:
            assert claims.guest is not None
            return visit, claims.guest
        if claims.role is Role.DOCTOR and claims.sub == visit.doctor:
            return visit, DOCTOR
        try:
            guest = await self.guests.of(claims, visit_id)
        except Forbidden as exc:
            if exc.details.get("reason") == "guest_removed":
                raise
            raise Forbidden("another doctor is in this visit" if claims.role is Role.DOCTOR
                            else "you are not in this visit") from None
        if guest.state is not GuestState.ADMITTED:
            raise Forbidden(NOT_LET_IN, reason="guest_not_admitted")
        return visit, guest.id

    async def target(self, visit: CallVisit, party: str, sender: str) -> Party:
        """The party ``party`` of the visit, to send to; :class:`Conflict` if it is
        the sender or no party (a guest not let in, gone, or unknown)."""
        if party == sender:
            raise Conflict("you cannot send this to yourself", to=party)
        if party == PATIENT:
            return Party(PATIENT, PATIENT, "", None, rooms.patient(visit.id))
        if party == DOCTOR:
            return Party(DOCTOR, DOCTOR, "", None, rooms.user(visit.clinic, visit.doctor))
        h = await self.redis.hgetall(keys.guest(visit.id, party))
        guest = Guest.from_hash(h) if h else None
        if guest is None or guest.state is not GuestState.ADMITTED:
            who = guest.name if guest is not None and guest.state is not GuestState.REMOVED else "that person"
            raise Conflict(f"{who} is not in the call", to=party)
        return guest_party(visit, guest)

    async def everyone(self, visit_id: str) -> tuple[CallVisit, list[Party]]:
        """Every party of the visit in progress, in offer order (no one if it is not)."""
        try:
            v = await self.hub.room.get(visit_id)
        except NotFound:
            return CallVisit(visit_id, "", ""), []
        visit = CallVisit(visit_id, v.clinic, v.doctor or "")
        if v.state is not State.IN_VISIT:
            return visit, []
        parties = [Party(DOCTOR, DOCTOR, v.doctor_name, None, rooms.user(v.clinic, visit.doctor))] if v.doctor else []
        admitted = [g for g in await self.guests.list(visit_id) if g.state is GuestState.ADMITTED]
        parties += sorted((guest_party(visit, g) for g in admitted), key=lambda p: p.party)
        parties.append(Party(PATIENT, PATIENT, v.patient_name, v.language or None, rooms.patient(visit_id)))
        return visit, parties

    async def visits_of(self, claims: Claims) -> list[tuple[str, str]]:
        """``(visit, party)`` of each visit in progress a socket's token is a party of."""
        if claims.role.visit_bound:
            assert claims.visit is not None
            try:
                _, party = await self.caller(claims, claims.visit)
            except (Forbidden, Conflict, NotFound):
                return []
            return [(claims.visit, party)]
        found: list[tuple[str, str]] = []
        if claims.role is Role.DOCTOR:
            found = [(v, DOCTOR) for v in await self.hub.room.doctor_visits(claims.clinic, claims.sub)]
        for guest in await as_clinician(self.hub.redis, claims.clinic, claims.sub):
            if guest.state is GuestState.ADMITTED:
                found.append((guest.visit, guest.id))
        return found

    # -- presence --------------------------------------------------------------------------

    async def connected(self, sid: str, claims: Claims) -> None:
        ttl = max(SOCKETS_TTL_MIN, int(claims.exp - time.time()))
        await self._remember(keys=[keys.call_sockets(own_room(claims))], args=[sid, claims.jti, ttl])

    async def disconnected(self, sid: str, claims: Claims) -> None:
        await self.redis.hdel(keys.call_sockets(own_room(claims)), sid)

    async def online(self, room_names: list[str]) -> set[str]:
        """Which of these rooms hold a live ``/call`` socket on any node; drops dead entries."""
        pipe = self.redis.pipeline(transaction=False)
        for room in room_names:
            pipe.hgetall(keys.call_sockets(room))
        lists: list[dict[str, str]] = await pipe.execute()
        entries = [(room, sid, jti) for room, got in zip(room_names, lists, strict=True) for sid, jti in got.items()]
        if not entries:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for _, sid, jti in entries:
            pipe.zscore(keys.connections(jti, NAMESPACE), sid)
        scores: list[float | None] = await pipe.execute()
        cutoff = time.time() * 1000 - 3 * self.hub.settings.presence_interval * 1000
        live: set[str] = set()
        dead = self.redis.pipeline(transaction=False)
        stale = 0
        for (room, sid, _), score in zip(entries, scores, strict=True):
            if score is not None and score >= cutoff:
                live.add(room)
            else:
                dead.hdel(keys.call_sockets(room), sid)
                stale += 1
        if stale:
            await dead.execute()
        return live

    async def left_call(self, visit_id: str) -> set[str]:
        members: set[str] = await self.redis.smembers(keys.call_left(visit_id))
        return members

    async def leave(self, visit_id: str, party: str) -> bool:
        """``party`` left the call (not the visit); False if it had already."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(keys.call_left(visit_id), party)
        pipe.expire(keys.call_left(visit_id), keys.CALL_LEFT_TTL)
        added, _ = await pipe.execute()
        return bool(added)

    async def rejoin(self, visit_id: str, party: str) -> bool:
        """``party`` is back in the call; False if it had not left."""
        return bool(await self.redis.srem(keys.call_left(visit_id), party))

    # -- notices ---------------------------------------------------------------------------

    async def announce(self, visit_id: str, party: str, state: str) -> None:
        """``peer`` {visit_id, from, state} to every other party of the visit in progress."""
        _, parties = await self.everyone(visit_id)
        body = {"visit_id": visit_id, "from": party, "state": state}
        for p in parties:
            if p.party != party:
                await self.hub.sio.emit("peer", body, room=p.room, namespace=NAMESPACE)

    async def guest_in(self, visit_id: str, guest: Guest) -> None:
        """A guest was let into the visit: back in its call, announced if their
        ``/call`` page is open."""
        await self.rejoin(visit_id, guest.id)
        visit, _ = await self.everyone(visit_id)
        if guest_party(visit, guest).room in await self.online([guest_party(visit, guest).room]):
            await self.announce(visit_id, guest.id, "joined")

    async def guest_out(self, visit_id: str, guest_id: str) -> None:
        """A guest left the visit or was removed: gone from its call."""
        await self.redis.srem(keys.call_left(visit_id), guest_id)
        await self.announce(visit_id, guest_id, "left")
