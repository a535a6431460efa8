"""Pushes changes of the waiting room to the people who see them.

Patients get their position and wait estimate when it changes; staff of the
clinic get the whole queue. Changes of one clinic that arrive together are
pushed once (one flush per clinic in flight at a time), which keeps a busy
queue from turning every change into N messages per change.
"""

from __future__ import annotations

import asyncio
import logging

from signaling import rooms
from signaling.hub import Hub
from telemed.visits import Visit

logger = logging.getLogger(__name__)

NAMESPACE = "/queue"


class QueueNotifier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._pending: set[str] = set()

    def touch(self, clinic: str) -> None:
        """The clinic's queue changed: push positions and the queue soon."""
        if clinic not in self._pending:
            self._pending.add(clinic)
            self.hub.spawn(self._flush(clinic), name=f"queue-push:{clinic}")

    async def _flush(self, clinic: str) -> None:
        await asyncio.sleep(0)  # let changes that arrive in the same tick coalesce
        self._pending.discard(clinic)
        sio = self.hub.sio
        positions = await self.hub.room.positions(clinic)
        self.hub.metrics.queue_length.labels(clinic).set(positions.length)
        await asyncio.gather(
            *(
                sio.emit(
                    "position",
                    {
                        "visit_id": p.visit_id,
                        "position": p.position,
                        "eta_s": p.eta_s,
                        "doctors_on_duty": positions.doctors,
                        "version": positions.version,
                    },
                    room=rooms.patient(p.visit_id),
                    namespace=NAMESPACE,
                )
                for p in positions.changed
            )
        )
        await sio.emit("queue", await self.snapshot(clinic), room=rooms.staff(clinic), namespace=NAMESPACE)

    async def snapshot(self, clinic: str) -> dict[str, object]:
        """The queue as staff see it."""
        version = await self.hub.room.queue_version(clinic)
        queue = await self.hub.room.queue(clinic)
        return {
            "clinic": clinic,
            "version": version,
            "queue": [{**v.for_staff(), "position": i} for i, v in enumerate(queue, 1)],
        }

    async def visit_changed(self, visit: Visit) -> None:
        """Tell the patient and the clinic's staff about a visit's new state."""
        sio = self.hub.sio
        await sio.emit("visit", visit.for_patient(), room=rooms.patient(visit.id), namespace=NAMESPACE)
        await sio.emit("visit", visit.for_staff(), room=rooms.staff(visit.clinic), namespace=NAMESPACE)
        self.touch(visit.clinic)
