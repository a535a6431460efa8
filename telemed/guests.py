"""A visit's guests: an interpreter, a caregiver, a second clinician.

The doctor (or a nurse of the clinic) invites a guest into a visit. An
interpreter or a caregiver gets a link: a token of role ``guest`` bound to the
visit and to the guest's id (:func:`telemed.tokens.mint`), which dies when the
visit ends (the visit check of every token, ``Hub.check_live``) or when the
guest is removed (the token's id is revoked, in the same script that marks the
guest removed). A clinician guest is a staff member of the clinic: they join
with their own staff token, no link, and removing them marks them removed
(every guest action checks the state; their staff token stays good).

A guest's life::

    invited --check_in--> waiting --admit--> admitted --leave--> left
       |                     (direct_join: check_in goes straight to admitted)
       +------ remove (from any state but removed) ------> removed (final)

A guest who left may check in again (back to the lobby, or straight in with
direct_join). At most :data:`MAX_GUESTS` guests not removed: a visit holds
four people at most (patient, doctor, three guests).

Each guest is a hash (:func:`telemed.keys.guest`), listed in the visit's
sorted set of guests by invitation time (:func:`telemed.keys.guests`); every
change is one Lua script, so two doctors' clicks or a double click cannot
break the rules (the waiting room's way, :mod:`telemed.waiting_room`).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import redis.asyncio as aioredis

from telemed import consent, keys, languages
from telemed.exceptions import BadRequest, Conflict, Forbidden, NotFound
from telemed.replication import Replication
from telemed.settings import Settings
from telemed.tokens import Claims, Role, new_id
from telemed.visits import State

#: Guests of one visit at most (not counting removed ones): four people in all.
MAX_GUESTS = 3

#: Longest life of a guest link; it dies earlier when the visit ends or the guest is removed.
LINK_TTL = 24 * 3600

#: How long guest records are kept: a link's life and then as long as an ended visit.
RECORD_TTL = LINK_TTL + keys.ENDED_VISIT_TTL


class Kind(enum.StrEnum):
    INTERPRETER = "interpreter"
    CAREGIVER = "caregiver"
    CLINICIAN = "clinician"
    """A staff member of the clinic; joins with their own staff token."""


class GuestState(enum.StrEnum):
    INVITED = "invited"
    """Invited; has not opened the link (or given consent) yet."""
    WAITING = "waiting"
    """Consented; in the visit's lobby until the doctor admits them."""
    ADMITTED = "admitted"
    """In the visit."""
    LEFT = "left"
    """Left on their own; may check in again."""
    REMOVED = "removed"
    """Removed by the doctor (or a nurse). Final: the link is revoked."""


#: States in which a guest holds a seat (counts against :data:`MAX_GUESTS`).
HOLDING = (GuestState.INVITED, GuestState.WAITING, GuestState.ADMITTED, GuestState.LEFT)


def _num(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Guest:
    """One guest of a visit, as stored."""

    id: str
    visit: str
    clinic: str
    kind: Kind
    name: str
    state: GuestState
    sub: str
    """Who they are in tokens: the guest id (link guests), the staff sub (clinicians)."""
    role: str
    """Their token's role: ``guest``, or the clinician's staff role."""
    invited_by: str
    invited_by_name: str
    direct_join: bool
    invited_at: float
    language: str = ""
    """An interpreter's language (a BCP 47 tag, :mod:`telemed.languages`)."""
    jti: str = ""
    """The link token's id (revoked on removal); empty for a clinician."""
    consent_visit: bool = False
    consent_recording: bool = False
    consent_version: str = ""
    consent_language: str = ""
    checked_in_at: float | None = None
    joined_at: float | None = None
    """When they first came into the visit (admitted, or checked in with direct_join)."""
    left_at: float | None = None
    """When they last went out (left, removed, or the visit ended while they were in)."""
    removed_by: str = ""

    @classmethod
    def from_hash(cls, h: Mapping[str, str]) -> Guest:
        return cls(
            id=h["id"],
            visit=h["visit"],
            clinic=h["clinic"],
            kind=Kind(h["kind"]),
            name=h.get("name", ""),
            state=GuestState(h["state"]),
            sub=h.get("sub", ""),
            role=h.get("role", Role.GUEST.value),
            invited_by=h.get("invited_by", ""),
            invited_by_name=h.get("invited_by_name", ""),
            direct_join=h.get("direct_join") == "1",
            invited_at=float(h.get("invited_at") or 0),
            language=h.get("language", ""),
            jti=h.get("jti", ""),
            consent_visit=h.get("consent_visit") == "1",
            consent_recording=h.get("consent_recording") == "1",
            consent_version=h.get("consent_version", ""),
            consent_language=h.get("consent_language", ""),
            checked_in_at=_num(h.get("checked_in_at")),
            joined_at=_num(h.get("joined_at")),
            left_at=_num(h.get("left_at")),
            removed_by=h.get("removed_by", ""),
        )

    def for_staff(self) -> dict[str, object]:
        """What the clinic's staff see (the doctor's visit panel)."""
        return {
            "guest_id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "language": self.language or None,
            "state": self.state.value,
            "direct_join": self.direct_join,
            "invited_by_name": self.invited_by_name or None,
            "consent_visit": self.consent_visit,
            "consent_recording": self.consent_recording,
            "invited_at": self.invited_at,
            "joined_at": self.joined_at,
            "left_at": self.left_at,
        }

    def for_participant(self) -> dict[str, object]:
        """What the patient and the other guests see: who, why, and whether they are in."""
        return {
            "kind": self.kind.value,
            "name": self.name,
            "language": self.language or None,
            "state": self.state.value,
        }

    def for_self(self) -> dict[str, object]:
        """What the guest sees of themselves."""
        return {**self.for_participant(), "guest_id": self.id, "direct_join": self.direct_join,
                "consent_visit": self.consent_visit, "consent_recording": self.consent_recording}


# -- scripts ------------------------------------------------------------------------------
# KEYS[1] the visit's hash, KEYS[2] its guest set, KEYS[3] the guest's hash.

_INVITE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'not_found'} end
if state == 'ended' then return {'ended'} end
if redis.call('HGET', KEYS[1], 'clinic') ~= ARGV[1] then return {'not_found'} end
local max, sub, ttl = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local holding = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local g = redis.call('HMGET', KEYS[2] .. ':' .. id, 'state', 'sub')
  if g[1] and g[1] ~= 'removed' then
    holding = holding + 1
    if g[2] == sub then return {'already'} end
  end
end
if holding >= max then return {'full'} end
redis.call('HSET', KEYS[3], unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
redis.call('EXPIRE', KEYS[3], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return {'ok'}
"""

# ARGV: now, ttl, consent_visit, consent_recording, version, language
_CHECK_IN = """
local g = redis.call('HMGET', KEYS[3], 'state', 'direct_join', 'joined_at')
if not g[1] then return {'not_found'} end
local vstate = redis.call('HGET', KEYS[1], 'state')
if not vstate or vstate == 'ended' then return {'ended'} end
if g[1] == 'removed' or g[1] == 'admitted' then return {'conflict', g[1]} end
local to = 'waiting'
redis.call('HSET', KEYS[3], 'checked_in_at', ARGV[1], 'consent_visit', ARGV[3], 'consent_recording', ARGV[4],
           'consent_version', ARGV[5], 'consent_language', ARGV[6])
if g[2] == '1' then
  to = 'admitted'
  if not g[3] or g[3] == '' then redis.call('HSET', KEYS[3], 'joined_at', ARGV[1]) end
  redis.call('HSET', KEYS[3], 'left_at', '')
end
redis.call('HSET', KEYS[3], 'state', to)
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {'ok', to}
"""

# ARGV: action (admit|leave|remove), now, ttl, by; KEYS[4] the revocation marker (remove)
_CHANGE = """
local g = redis.call('HMGET', KEYS[3], 'state', 'joined_at')
if not g[1] then return {'not_found'} end
local action, now = ARGV[1], ARGV[2]
local vstate = redis.call('HGET', KEYS[1], 'state')
if (not vstate or vstate == 'ended') and action ~= 'remove' then return {'ended'} end
local to
if action == 'admit' then
  if g[1] ~= 'waiting' then return {'conflict', g[1]} end
  to = 'admitted'
  if not g[2] or g[2] == '' then redis.call('HSET', KEYS[3], 'joined_at', now) end
  redis.call('HSET', KEYS[3], 'left_at', '')
elseif action == 'leave' then
  if g[1] ~= 'waiting' and g[1] ~= 'admitted' then return {'conflict', g[1]} end
  to = 'left'
  if g[1] == 'admitted' then redis.call('HSET', KEYS[3], 'left_at', now) end
else
  if g[1] == 'removed' then return {'conflict', g[1]} end
  to = 'removed'
  if g[1] == 'admitted' then redis.call('HSET', KEYS[3], 'left_at', now) end
  redis.call('HSET', KEYS[3], 'removed_by', ARGV[4])
  if KEYS[4] then redis.call('SET', KEYS[4], '1', 'EX', ARGV[5]) end
end
redis.call('HSET', KEYS[3], 'state', to)
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {'ok', to, g[1]}
"""


class GuestList:
    """The guests of every visit, in Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self._replication = Replication(redis, settings)
        self._invite = redis.register_script(_INVITE)
        self._check_in = redis.register_script(_CHECK_IN)
        self._change = redis.register_script(_CHANGE)

    # -- reading ------------------------------------------------------------------------

    async def list(self, visit_id: str) -> list[Guest]:
        """The visit's guests, in the order they were invited (removed ones too)."""
        return await read_all(self.redis, visit_id)

    async def get(self, visit_id: str, guest_id: str) -> Guest:
        h = await self.redis.hgetall(keys.guest(visit_id, guest_id))
        if not h:
            raise NotFound("There is no such guest in this visit.")
        return Guest.from_hash(h)

    async def of(self, claims: Claims, visit_id: str) -> Guest:
        """The caller as a guest of ``visit_id``: a guest token's own guest, or a
        clinician guest by their staff sub. :class:`Forbidden` if they are not one
        (or were removed)."""
        if claims.role is Role.GUEST:
            if claims.visit != visit_id or claims.guest is None:
                raise Forbidden("not your visit")
            h = await self.redis.hgetall(keys.guest(visit_id, claims.guest))
            found: Guest | None = Guest.from_hash(h) if h else None
        else:
            found = next(
                (g for g in await self.list(visit_id)
                 if g.kind is Kind.CLINICIAN and g.sub == claims.sub and g.clinic == claims.clinic
                 and g.state is not GuestState.REMOVED),
                None,
            )
        if found is None or found.clinic != claims.clinic:
            raise Forbidden("you are not a guest of this visit")
        if found.state is GuestState.REMOVED:
            raise Forbidden("you were removed from this visit", reason="guest_removed")
        return found

    async def require_admitted(self, claims: Claims, visit_id: str) -> Guest:
        """The caller is a guest in the visit now (admitted), else :class:`Forbidden`."""
        guest = await self.of(claims, visit_id)
        if guest.state is not GuestState.ADMITTED:
            raise Forbidden("the doctor has not let you into the visit yet", reason="guest_not_admitted")
        return guest

    # -- changes ------------------------------------------------------------------------

    async def invite(
        self,
        visit_id: str,
        clinic: str,
        *,
        kind: Kind,
        name: str,
        by: Claims,
        language: str | None = None,
        direct_join: bool = False,
        staff_sub: str | None = None,
        staff_role: str | None = None,
        jti: str = "",
        guest_id: str | None = None,
        now: float | None = None,
    ) -> Guest:
        """Add a guest to the visit.

        :param language: an interpreter's language (required for them, refused for others).
        :param staff_sub: a clinician guest's staff sub (required for them only).
        :param jti: the id of the link token minted for them (revoked on removal).
        :raises Conflict: the visit has ended, holds :data:`MAX_GUESTS` already, or
            the clinician is already a guest.
        """
        now = time.time() if now is None else now
        name = name.strip()[:120]
        if not name:
            raise BadRequest("name: say who the guest is", fields=["name"])
        if kind is Kind.INTERPRETER:
            if not language:
                raise BadRequest("language: an interpreter needs the language they interpret", fields=["language"])
            try:
                language = languages.canonical(language)
            except ValueError as exc:
                raise BadRequest(f"language: {exc}", fields=["language"]) from None
        elif language:
            raise BadRequest("language: only an interpreter has a language", fields=["language"])
        if (kind is Kind.CLINICIAN) != (staff_sub is not None):
            raise BadRequest("a clinician guest is a staff member of the clinic (staff_sub); others are not",
                             fields=["staff_sub"])
        gid = guest_id or new_id()
        sub = staff_sub if staff_sub is not None else gid
        fields = {
            "id": gid, "visit": visit_id, "clinic": clinic, "kind": kind.value, "name": name,
            "state": GuestState.INVITED.value, "sub": sub, "role": staff_role or Role.GUEST.value,
            "invited_by": by.sub, "invited_by_name": by.name, "direct_join": "1" if direct_join else "0",
            "invited_at": repr(now), "language": language or "", "jti": jti,
        }
        flat: list[str] = [x for kv in fields.items() for x in kv]
        r = await self._replication.eval(
            self._invite,
            keys=[keys.visit(visit_id), keys.guests(visit_id), keys.guest(visit_id, gid)],
            args=[clinic, MAX_GUESTS, sub, RECORD_TTL, repr(now), gid, *flat],
        )
        self._raise(r[0], None)
        if kind is Kind.CLINICIAN:  # so their /call socket finds the visit (a hint: checked when read)
            pipe = self.redis.pipeline(transaction=False)
            pipe.sadd(keys.clinician_guest_of(clinic, sub), visit_id)
            pipe.expire(keys.clinician_guest_of(clinic, sub), RECORD_TTL)
            await pipe.execute()
        return await self.get(visit_id, gid)

    async def check_in(
        self,
        visit_id: str,
        guest_id: str,
        *,
        consent_visit: bool,
        consent_recording: bool,
        language: str = languages.DEFAULT,
        consent_version: str | None = None,
        consent_language: str | None = None,
        now: float | None = None,
    ) -> Guest:
        """The guest agreed to the visit (and answered about recording), in the
        guests' wording their page showed (checked as a patient's, :func:`telemed.consent.resolve`):
        into the lobby, or straight into the visit if the doctor allowed it."""
        if consent_visit is not True:
            raise BadRequest("consent to the video visit is required", fields=["consent_visit"])
        try:
            language = languages.canonical(language)
            consent_language = None if consent_language is None else languages.canonical(consent_language)
        except ValueError as exc:
            raise BadRequest(f"language: {exc}", fields=["language"]) from None
        agreed = consent.resolve(language, consent_version, consent_language, guest=True)
        now = time.time() if now is None else now
        r = await self._replication.eval(
            self._check_in,
            keys=[keys.visit(visit_id), keys.guests(visit_id), keys.guest(visit_id, guest_id)],
            args=[repr(now), RECORD_TTL, "1", "1" if consent_recording else "0", agreed.version, agreed.language],
        )
        self._raise(r[0], r[1] if len(r) > 1 else None)
        return await self.get(visit_id, guest_id)

    async def admit(self, visit_id: str, guest_id: str, *, by: str, now: float | None = None) -> Guest:
        return await self._do("admit", visit_id, guest_id, by=by, now=now)

    async def leave(self, visit_id: str, guest_id: str, now: float | None = None) -> Guest:
        return await self._do("leave", visit_id, guest_id, by="", now=now)

    async def remove(self, visit_id: str, guest_id: str, *, by: str, now: float | None = None) -> Guest:
        """Remove the guest for good; their link is revoked in the same step."""
        guest = await self.get(visit_id, guest_id)
        return await self._do("remove", visit_id, guest_id, by=by, now=now, jti=guest.jti)

    async def _do(self, action: str, visit_id: str, guest_id: str, *, by: str, now: float | None,
                  jti: str = "") -> Guest:
        now = time.time() if now is None else now
        script_keys = [keys.visit(visit_id), keys.guests(visit_id), keys.guest(visit_id, guest_id)]
        if jti:
            script_keys.append(keys.revoked(jti))
        r = await self._replication.eval(
            self._change, keys=script_keys, args=[action, repr(now), RECORD_TTL, by, LINK_TTL + 1]
        )
        self._raise(r[0], r[1] if len(r) > 1 else None)
        return await self.get(visit_id, guest_id)

    @staticmethod
    def _raise(result: str, state: str | None) -> None:
        if result == "ok":
            return
        if result == "not_found":
            raise NotFound("There is no such visit or guest.")
        if result == "ended":
            raise Conflict("This visit has ended.", state=State.ENDED.value)
        if result == "full":
            raise Conflict(f"A visit holds {MAX_GUESTS} guests at most: remove one first.", reason="guests_full")
        if result == "already":
            raise Conflict("This person is already a guest of the visit.", reason="guest_already")
        words = {
            GuestState.REMOVED.value: "This guest was removed from the visit.",
            GuestState.ADMITTED.value: "This guest is in the visit already.",
            GuestState.INVITED.value: "This guest has not opened their link yet.",
            GuestState.LEFT.value: "This guest has left the visit.",
            GuestState.WAITING.value: "This guest is waiting to be let in.",
        }
        raise Conflict(words.get(state or "", "Not possible now."), guest_state=state)


async def read_all(redis: aioredis.Redis, visit_id: str) -> list[Guest]:
    """The visit's guests, in the order they were invited (removed ones too)."""
    client: Any = redis  # decode_responses=True: str replies
    ids: list[str] = await client.zrange(keys.guests(visit_id), 0, -1)
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for gid in ids:
        pipe.hgetall(keys.guest(visit_id, gid))
    return [Guest.from_hash(h) for h in await pipe.execute() if h]


async def as_clinician(redis: aioredis.Redis, clinic: str, sub: str) -> list[Guest]:
    """Where a staff member is a clinician guest now (not removed), in visits not ended."""
    client: Any = redis  # decode_responses=True: str replies
    visits: set[str] = await client.smembers(keys.clinician_guest_of(clinic, sub))
    found: list[Guest] = []
    for visit_id in sorted(visits):
        if await client.hget(keys.visit(visit_id), "state") in (None, State.ENDED.value):
            continue
        found += [g for g in await read_all(redis, visit_id)
                  if g.kind is Kind.CLINICIAN and g.sub == sub and g.clinic == clinic
                  and g.state is not GuestState.REMOVED]
    return found


async def state_of(redis: aioredis.Redis, visit_id: str, guest_id: str) -> str | None:
    """A guest's state, or None if the visit has no such guest (one read)."""
    client: Any = redis  # decode_responses=True: str replies
    state: str | None = await client.hget(keys.guest(visit_id, guest_id), "state")
    return state


def visit_ended(guest: Guest, visit_ended_at: float | None) -> Guest:
    """``guest`` as the chart keeps them once the visit ended: one still in it went out at its end."""
    if guest.state is GuestState.ADMITTED and visit_ended_at is not None and guest.left_at is None:
        return replace(guest, left_at=visit_ended_at)
    return guest
