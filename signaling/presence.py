"""Presence: who is connected, and the grace period of a patient who is not.

Each node refreshes, every few seconds, the "last seen" time of the patients
and doctors whose sockets it holds. A patient not seen for the grace period
loses their place (the sweep ends the visit as ``absent``); one who comes back
sooner keeps it. A node that dies stops refreshing, so its patients fall under
the same rule without anyone having to notice the death.

At each refresh a node also looks at the doctors of the clinics it holds
patients of: when those on duty or free changed (one went off duty, with no
event to say so), it starts a position push round for that clinic, as a queue
change does, so patients' estimates follow without waiting for the next queue change.

The per-socket work of a refresh (each socket's connection entry, each token
checked for revocation and its visit for an end) is done by scripts, in
chunks of :data:`CHUNK` sockets: one command per chunk instead of one per
socket, because with thousands of sockets building and parsing the commands
held the event loop for a few hundred milliseconds at every refresh, and
every push that fell in that time was late by as much (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from redis.exceptions import RedisError

from signaling._base import AuthedNamespace
from signaling.hub import Hub
from signaling.notifier import QueueNotifier
from signaling.queue_ns import QueueNamespace
from telemed import keys
from telemed.exceptions import Conflict, NotFound, Unauthorized
from telemed.tokens import Claims, Role
from telemed.visits import EndReason, State

logger = logging.getLogger(__name__)

#: Sockets per script call of a refresh (each call holds Redis, and builds its
#: command in the node, for about a millisecond).
CHUNK = 1000

#: Refresh the "last seen" of live connection entries (what
#: :meth:`Hub.refresh_connections` did with one ZADD XX per socket).
#: KEYS: connections of each socket's token. ARGV: now_ms, each socket's sid
REFRESH_CONNECTIONS = r"""
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', ARGV[1], ARGV[i + 1])
end
return #KEYS
"""

#: Which of these tokens are revoked, or whose visit ended or is gone:
#: {index (1-based), 'revoked' | 'ended', ...} for those only.
#: KEYS: each token's revoked key, then each token's visit key (any key for staff)
#: ARGV: the ended state, then '1' for each token with a visit, '0' for staff
DEAD_TOKENS = r"""
local n = #ARGV - 1
local out = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    out[#out + 1] = i
    out[#out + 1] = 'revoked'
  elseif ARGV[i + 1] == '1' then
    local state = redis.call('HGET', KEYS[n + i], 'state')
    if not state or state == ARGV[1] then
      out[#out + 1] = i
      out[#out + 1] = 'ended'
    end
  end
end
return out
"""


async def heartbeat(hub: Hub, ns: QueueNamespace, namespaces: Sequence[AuthedNamespace]) -> None:
    """Refresh presence of this node's patients and doctors, and of every socket
    (for the per-token connection limit), forever."""
    while True:
        patients: list[str] = []
        doctors: dict[str, set[str]] = {}
        staff: dict[str, set[str]] = {}
        for claims in list(ns.local.values()):
            if claims.role is Role.PATIENT and claims.visit:
                patients.append(claims.visit)
            else:
                staff.setdefault(claims.clinic, set()).add(claims.sub)
                if claims.role is Role.DOCTOR:
                    doctors.setdefault(claims.clinic, set()).add(claims.sub)
        try:
            await hub.room.mark_seen(patients, doctors)
            await ns.notifier.roster.refresh(staff, patients)
            await push_on_doctors_changed(ns.notifier)
            for each in namespaces:
                await refresh_connections(hub, each.namespace, dict(each.local))
            await close_dead_sockets(hub, namespaces)
        except RedisError as exc:
            logger.warning("presence refresh failed: %s", type(exc).__name__)
        await asyncio.sleep(hub.settings.presence_interval)


async def push_on_doctors_changed(notifier: QueueNotifier) -> list[str]:
    """Start a position push round for each clinic with patients here whose doctors
    on duty or free ones changed; each node looks at its own clinics, so no notice
    to the others, and the queue did not change, so no push of it to staff.
    Returns those clinics."""
    changed = await notifier.roster.doctors_changed(notifier.patient_clinics())
    for clinic in changed:
        notifier.touch(clinic, tell_others=False, staff=False)
    return changed


async def refresh_connections(hub: Hub, namespace: str, sockets: dict[str, Claims]) -> None:
    """Keep these sockets' entries live in their tokens' connection counts
    (:meth:`Hub.open_connection`); an entry not refreshed stops counting."""
    script = hub.redis.register_script(REFRESH_CONNECTIONS)
    items = list(sockets.items())
    now_ms = int(time.time() * 1000)
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        await script(
            keys=[keys.connections(claims.jti, namespace) for _, claims in chunk],
            args=[now_ms, *(sid for sid, _ in chunk)],
        )


DEAD_REASONS = {"revoked": "token revoked", "ended": "this visit has ended"}


async def close_dead_sockets(hub: Hub, namespaces: Sequence[AuthedNamespace]) -> int:
    """Close sockets whose token expired or was revoked, or whose visit ended,
    even if they never send another event (they would still receive pushes)."""
    tokens = {c.jti: c for ns in namespaces for c in ns.local.values()}
    if not tokens:
        return 0
    dead: dict[str, str] = {jti: "token expired" for jti, c in tokens.items() if c.expired()}
    live = [c for c in tokens.values() if c.jti not in dead]
    script = hub.redis.register_script(DEAD_TOKENS)
    for start in range(0, len(live), CHUNK):
        chunk = live[start : start + CHUNK]
        revoked_keys = [keys.revoked(c.jti) for c in chunk]
        found = await script(
            keys=[*revoked_keys, *(keys.visit(c.visit) if c.visit else k for c, k in zip(chunk, revoked_keys, strict=True))],
            args=[State.ENDED.value, *("1" if c.visit else "0" for c in chunk)],
        )
        for index, reason in zip(found[::2], found[1::2], strict=True):
            dead[chunk[int(index) - 1].jti] = DEAD_REASONS[reason]
    closed = 0
    for ns in namespaces:
        for sid, claims in list(ns.local.items()):
            reason = dead.get(claims.jti)
            if reason:
                await ns.emit("error", {"event": "", **Unauthorized(reason).to_dict()}, to=sid, ignore_queue=True)
                await hub.sio.disconnect(sid, namespace=ns.namespace, ignore_queue=True)
                closed += 1
    return closed


async def sweep(hub: Hub, notifier: QueueNotifier) -> None:
    """End the visits of patients gone longer than the grace period, forever.

    Every node sweeps; the end script re-checks presence atomically, so two
    nodes sweeping the same patient end the visit once."""
    while True:
        await asyncio.sleep(hub.settings.presence_interval)
        try:
            await sweep_once(hub, notifier)
            await return_routed_once(hub, notifier)
        except RedisError as exc:
            logger.warning("grace sweep failed: %s", type(exc).__name__)


async def return_routed_once(hub: Hub, notifier: QueueNotifier) -> int:
    """Patients routed to a doctor gone longer than ``TELEMED_ROUTE_RETURN`` go
    back to the shared queue; staff are told (:mod:`signaling.staff_roster`)."""
    returned = await notifier.roster.return_routed()
    for r in returned:
        await notifier.visit_changed(await hub.room.get(r.visit_id))
    return len(returned)


async def sweep_once(hub: Hub, notifier: QueueNotifier) -> int:
    gone, cutoff = await hub.room.absent_patients(hub.settings.grace_period)
    ended = 0
    for visit_id in gone:
        try:
            change = await hub.room.end(visit_id, by="system", reason=EndReason.ABSENT, absent_before_ms=cutoff)
        except (Conflict, NotFound):
            # Not queued any more (admitted or ended meanwhile): stop tracking it.
            await hub.redis.zrem(keys.PATIENTS_SEEN, visit_id)
            continue
        if change is not None:
            ended += 1
            hub.metrics.visits_ended.labels(EndReason.ABSENT.value).inc()
            await hub.ended(visit_id, None, EndReason.ABSENT.value)
            logger.info("Visit(%s) ended: patient absent beyond the grace period", visit_id)
            await notifier.visit_changed(await hub.room.get(visit_id))
    return ended
