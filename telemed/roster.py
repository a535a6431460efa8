"""The clinic's staff roster: who its nurses, doctors and admins are, by name.

A staff member becomes known to a clinic when they sign in (their token's
``sub``, ``name`` and ``role``); the node holding their sockets refreshes their
"last seen" time with the rest of its presence. On duty means seen within
``TELEMED_ON_DUTY`` (:mod:`telemed.duty`, the same rule as the wait estimate's);
a doctor is busy while in a visit. Pages show these names,
never ids, and a route may only name a doctor on the roster.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from telemed import duty, keys
from telemed.exceptions import NotFound
from telemed.settings import Settings
from telemed.tokens import Role

logger = logging.getLogger(__name__)

#: What a nurse is told when a route names someone the clinic does not know.
UNKNOWN_DOCTOR = "That doctor is not on this clinic's roster"


@dataclass(frozen=True)
class Member:
    """One person on a clinic's roster."""

    sub: str
    """Their id in the clinic's own system (the token's ``sub``)."""
    name: str
    """Their display name, as their last token gave it."""
    role: Role
    last_seen: float | None
    """When a socket of theirs was last seen (epoch seconds); None if never."""
    on_duty: bool
    """Seen within the on-duty window."""
    busy: bool
    """A doctor in a visit now (always False for others)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "sub": self.sub,
            "name": self.name,
            "role": self.role.value,
            "last_seen": self.last_seen,
            "on_duty": self.on_duty,
            "busy": self.busy,
        }


def _order(m: Member) -> tuple[int, str]:
    """Doctors first; on duty and free, on duty and busy, then off duty; by name."""
    return (0 if m.on_duty else 1) * 2 + (1 if m.busy else 0), m.name.casefold()


class Roster:
    """Every clinic's roster in one Redis."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self.settings = settings

    async def signed_in(self, clinic: str, sub: str, name: str, role: Role) -> None:
        """A staff member's socket was accepted: record who they are, seen now."""
        if role is Role.PATIENT:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.roster(clinic), sub, json.dumps({"name": name, "role": role.value}))
        pipe.zadd(keys.staff_seen(clinic), {sub: int(time.time() * 1000)})
        await pipe.execute()

    async def mark_seen(self, staff: Mapping[str, Iterable[str]]) -> None:
        """Refresh "last seen" of these staff (clinic -> subs) whose sockets are here."""
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for clinic, subs in staff.items():
            members = dict.fromkeys(subs, now_ms)
            if members:
                pipe.zadd(keys.staff_seen(clinic), members)
        if len(pipe):
            await pipe.execute()

    async def members(self, clinic: str, *, role: Role | None = None) -> list[Member]:
        """The clinic's roster (doctors only with ``role``), on duty and free first."""
        entries = await self.redis.hgetall(keys.roster(clinic))
        subs = sorted(entries)
        if not subs:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.zmscore(keys.staff_seen(clinic), subs)
        for sub in subs:
            pipe.scard(keys.doctor_visits(clinic, sub))
        seen, *busy = await pipe.execute()
        since = duty.since(self.settings)
        out = []
        for sub, last_ms, visits in zip(subs, seen, busy, strict=True):
            info = json.loads(entries[sub])
            member_role = Role(info["role"])
            if role is not None and member_role is not role:
                continue
            last = float(last_ms) / 1000 if last_ms is not None else None
            out.append(
                Member(
                    sub=sub,
                    name=info["name"],
                    role=member_role,
                    last_seen=last,
                    on_duty=last is not None and last >= since,
                    busy=member_role is Role.DOCTOR and int(visits) > 0,
                )
            )
        return sorted(out, key=lambda m: (m.role is not Role.DOCTOR, *_order(m)))

    async def get(self, clinic: str, sub: str) -> Member | None:
        """One member, or None if the clinic does not know them."""
        raw = await self.redis.hget(keys.roster(clinic), sub)
        if raw is None:
            return None
        info = json.loads(raw)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zscore(keys.staff_seen(clinic), sub)
        pipe.scard(keys.doctor_visits(clinic, sub))
        last_ms, visits = await pipe.execute()
        last = float(last_ms) / 1000 if last_ms is not None else None
        role = Role(info["role"])
        return Member(
            sub=sub,
            name=info["name"],
            role=role,
            last_seen=last,
            on_duty=last is not None and last >= duty.since(self.settings),
            busy=role is Role.DOCTOR and int(visits) > 0,
        )

    async def doctor(self, clinic: str, sub: str) -> Member:
        """A doctor of the clinic; ``not_found`` (with words a nurse can read) otherwise."""
        member = await self.get(clinic, sub)
        if member is None or member.role is not Role.DOCTOR:
            raise NotFound(UNKNOWN_DOCTOR)
        return member

    async def names(self, clinic: str) -> dict[str, str]:
        """sub -> display name of everyone on the clinic's roster."""
        entries = await self.redis.hgetall(keys.roster(clinic))
        return {sub: json.loads(raw)["name"] for sub, raw in entries.items()}
