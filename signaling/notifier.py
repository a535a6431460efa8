"""Pushes changes of the waiting room to the people who see them.

Patients get their position and wait estimate when it changes, at once:
changes of one clinic that arrive in the same loop tick are pushed together,
and all position updates of a push travel as one Redis message.

Staff get every visit's change as it happens (``visit`` events) and the whole
queue (``queue``) at most every :data:`STAFF_PUSH_INTERVAL` seconds per
clinic: the full list costs a read of every queued visit and a large message,
so under a busy queue it is sent on a trailing edge rather than per change.
"""

from __future__ import annotations

import asyncio
import logging
import time

from signaling import rooms
from signaling.hub import Hub
from telemed.visits import Visit

logger = logging.getLogger(__name__)

NAMESPACE = "/queue"

#: Shortest time between two full-queue pushes to a clinic's staff.
STAFF_PUSH_INTERVAL = 0.5


class QueueNotifier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._pending: set[str] = set()
        self._staff_pending: set[str] = set()
        self._staff_pushed: dict[str, float] = {}

    def touch(self, clinic: str) -> None:
        """The clinic's queue changed: push positions now and the queue soon."""
        if clinic not in self._pending:
            self._pending.add(clinic)
            self.hub.spawn(self._push_positions(clinic), name=f"queue-push:{clinic}")
        if clinic not in self._staff_pending:
            self._staff_pending.add(clinic)
            self.hub.spawn(self._push_queue(clinic), name=f"staff-push:{clinic}")

    async def _push_positions(self, clinic: str) -> None:
        await asyncio.sleep(0)  # let changes that arrive in the same tick coalesce
        self._pending.discard(clinic)
        positions = await self.hub.room.positions(clinic)
        self.hub.metrics.queue_length.labels(clinic).set(positions.length)
        await self.hub.sio.manager.emit_batch(
            "position",
            [
                (
                    rooms.patient(p.visit_id),
                    {
                        "visit_id": p.visit_id,
                        "position": p.position,
                        "eta_s": p.eta_s,
                        "doctors_on_duty": positions.doctors,
                        "version": positions.version,
                    },
                )
                for p in positions.changed
            ],
            NAMESPACE,
        )

    async def _push_queue(self, clinic: str) -> None:
        wait = self._staff_pushed.get(clinic, 0.0) + STAFF_PUSH_INTERVAL - time.monotonic()
        await asyncio.sleep(max(0.0, wait))
        self._staff_pending.discard(clinic)
        self._staff_pushed[clinic] = time.monotonic()
        snapshot = await self.snapshot(clinic)
        await self.hub.sio.emit("queue", snapshot, room=rooms.staff(clinic), namespace=NAMESPACE)

    async def snapshot(self, clinic: str) -> dict[str, object]:
        """The queue as staff see it, with the visits in progress and the doctors on duty."""
        room = self.hub.room
        version = await room.queue_version(clinic)
        queue = await room.queue(clinic)
        return {
            "clinic": clinic,
            "version": version,
            "queue": [{**v.for_staff(), "position": i} for i, v in enumerate(queue, 1)],
            "in_visit": [v.for_staff() for v in await room.in_visit(clinic)],
            "doctors": await room.doctors_on_duty(clinic),
        }

    async def visit_changed(self, visit: Visit) -> None:
        """Tell the patient and the clinic's staff about a visit's new state."""
        sio = self.hub.sio
        await sio.emit("visit", visit.for_patient(), room=rooms.patient(visit.id), namespace=NAMESPACE)
        await sio.emit("visit", visit.for_staff(), room=rooms.staff(visit.clinic), namespace=NAMESPACE)
        self.touch(visit.clinic)
