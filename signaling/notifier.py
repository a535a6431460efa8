"""Pushes changes of the waiting room to the people who see them.

Each node pushes to the sockets it holds, and only to them:

- When a clinic's queue changes, the node that changed it tells the other
  nodes (one small notice through Redis) and every node that holds patients
  of that clinic reads *their* positions (one script call) and sends each
  patient whose position or estimate changed an update. What was last sent to
  a patient is remembered here, next to the socket, so a patient who reconnects
  (to any node) simply gets a fresh update.
- Changes of one clinic within :data:`POSITION_PUSH_WINDOW` are pushed together.
- Staff get every visit's change as it happens (``visit`` events, through
  Redis to every node) and the whole queue (``queue``) at most every
  :data:`STAFF_PUSH_INTERVAL` seconds per clinic, longer for long queues: the
  full list costs a read of every queued visit and a large message.

So a node's push work grows with its own sockets, not with the whole clinic,
and nothing of size N crosses Redis per change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from socketio import packet

from signaling import _fanout, rooms
from signaling.hub import Hub
from signaling.staff_roster import StaffRoster
from telemed import _gc
from telemed.estimate import WaitKind
from telemed.visits import Visit
from telemed.waiting_room import Position, Positions, visits_of

logger = logging.getLogger(__name__)

NAMESPACE = "/queue"

#: Changes of a clinic within this window are pushed to patients together:
#: a burst (a doctor admitting while a nurse re-triages) becomes one update per
#: patient instead of several.
POSITION_PUSH_WINDOW = 0.05

#: A long push yields to the event loop after this many patients, so events
#: of other sockets are not held up behind it.
YIELD_EVERY = 200

#: Shortest time between two full-queue pushes to a clinic's staff, plus
#: :data:`STAFF_PUSH_PER_PATIENT` per queued patient (a long queue is a big message).
STAFF_PUSH_INTERVAL = 0.5
STAFF_PUSH_PER_PATIENT = 0.001

#: Name of the node-to-node notice that a clinic's queue changed.
QUEUE_CHANGED = "queue_changed"

#: A staff push builds and encodes its queue this many rows at a time, and
#: before each part lets running position pushes finish (for at most
#: :data:`STAFF_YIELDS_FOR` seconds): patients waiting for their place go
#: first, staff get the full list a moment later.
STAFF_ROWS_AT_ONCE = 250
STAFF_YIELDS_FOR = 1.0

#: python-socketio's encoding of event data (``json.dumps`` with these separators).
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def event_packet(event: str, data: dict[str, Any]) -> str:
    """A Socket.IO EVENT packet for this namespace, encoded by python-socketio's
    own :class:`~socketio.packet.Packet` (the same text its emit sends).

    ``binary=False``: the data here is JSON (no bytes), and python-socketio's
    scan of every value for binary data is what made a staff queue push slow
    (docs/benchmarks.md); the encoding is otherwise its own."""
    encoded = packet.Packet(packet.EVENT, data=[event, data], namespace=NAMESPACE, binary=False).encode()
    assert isinstance(encoded, str)  # a list only for binary packets
    return encoded


async def event_packet_in_parts(
    event: str, data: dict[str, object], rows: str, pause: Callable[[], Awaitable[None]]
) -> str:
    """``event_packet(event, data)``, the same text (tests/test_notifier_packet.py),
    with the list ``data[rows]`` encoded :data:`STAFF_ROWS_AT_ONCE` items at a
    time and ``pause()`` awaited before each part: the whole of a long queue
    at once held the loop for tens of milliseconds."""
    parts = []
    for key, value in data.items():
        if key == rows and isinstance(value, list):
            items = []
            for start in range(0, len(value), STAFF_ROWS_AT_ONCE):
                await pause()
                items.append(_ENCODER.encode(value[start : start + STAFF_ROWS_AT_ONCE])[1:-1])
            text = "[" + ",".join(items) + "]"
        else:
            text = _ENCODER.encode(value)
        parts.append(f"{_ENCODER.encode(key)}:{text}")
    return f"2{NAMESPACE},[{_ENCODER.encode(event)},{{{','.join(parts)}}}]"


def position_tail(positions: Positions) -> str:
    """The end of every ``position`` packet of one push round (what is the same for all)."""
    return (
        f',"doctors_on_duty":{positions.doctors},"doctors_free":{positions.free},'
        f'"version":{positions.version}}}]'
    )


_POSITION_HEAD = f'2{NAMESPACE},["position",{{"visit_id":'

#: ``"wait":"<kind>"`` of each kind, ready (an enum's ``.value`` is a slow property).
_WAIT_FIELD = {kind: f'"wait":{encode_basestring_ascii(kind.value)}' for kind in WaitKind}


def position_head(visit_id: str) -> str:
    """The start of every ``position`` packet of one patient, up to their position."""
    return f'{_POSITION_HEAD}{encode_basestring_ascii(visit_id)},"position":'


def position_packet(p: Position, tail: str, head: str | None = None) -> str:
    """``event_packet("position", update)`` for one patient of a push round, the
    same text (tests/test_notifier_packet.py) built without a JSON encoder:
    thousands are made per round, and the encoder was the largest part of each.
    ``head``: :func:`position_head` of the patient, if the caller keeps it."""
    wait = p.wait
    return (
        f'{head or position_head(p.visit_id)}{p.position:d},{_WAIT_FIELD[wait.kind]},"wait_low_s":{wait.low_s:d},'
        f'"wait_high_s":{wait.high_s:d},"eta_s":{wait.expected_s:d}{tail}'
    )


def position_update(p: Position, positions: Positions) -> dict[str, Any]:
    """What :func:`position_packet` carries, as data."""
    return {
        "visit_id": p.visit_id,
        "position": p.position,
        "wait": p.wait.kind.value,
        "wait_low_s": p.wait.low_s,
        "wait_high_s": p.wait.high_s,
        "eta_s": p.wait.expected_s,
        "doctors_on_duty": positions.doctors,
        "doctors_free": positions.free,
        "version": positions.version,
    }


class QueueNotifier:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        _fanout.install(hub.sio.eio)
        #: The staff roster, claims and online markers shown in staff snapshots.
        self.roster = StaffRoster(hub)
        #: clinic -> visit -> sids of that patient on this node
        self._patients: dict[str, dict[str, set[str]]] = {}
        #: clinic -> staff sids on this node
        self._staff: dict[str, set[str]] = {}
        #: visit -> (position, wait kind, low, high) last pushed from this node
        self._sent: dict[str, tuple[int, WaitKind, int, int]] = {}
        #: visit -> :func:`position_head` (the same for every push to that patient)
        self._heads: dict[str, str] = {}
        self._pending: set[str] = set()
        self._staff_pending: set[str] = set()
        self._staff_pushed: dict[str, float] = {}
        self._queue_length: dict[str, int] = {}
        #: clinic -> number of the latest position push (an older one still
        #: sending stops: what it has left to say is out of date)
        self._push_gen: dict[str, int] = {}
        #: Position pushes reading or sending now (any clinic), and set when none is.
        self._positions_running = 0
        self._positions_done = asyncio.Event()
        self._positions_done.set()

    # -- who is here -------------------------------------------------------------

    def patient_joined(self, clinic: str, visit_id: str, sid: str) -> None:
        self._patients.setdefault(clinic, {}).setdefault(visit_id, set()).add(sid)
        self._sent.pop(visit_id, None)  # a new socket gets its position whatever was sent before

    def patient_left(self, clinic: str, visit_id: str, sid: str) -> None:
        visits = self._patients.get(clinic, {})
        sids = visits.get(visit_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del visits[visit_id]
                self._sent.pop(visit_id, None)
                self._heads.pop(visit_id, None)
        if not visits:
            self._patients.pop(clinic, None)

    def staff_joined(self, clinic: str, sid: str) -> None:
        self._staff.setdefault(clinic, set()).add(sid)

    def staff_left(self, clinic: str, sid: str) -> None:
        sids = self._staff.get(clinic)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._staff[clinic]

    def forget_sent(self) -> None:
        """Push every local patient their position again on the next push."""
        self._sent.clear()

    def clinics(self) -> set[str]:
        """Clinics with sockets on this node."""
        return set(self._patients) | set(self._staff)

    def patient_clinics(self) -> set[str]:
        """Clinics with patients' sockets on this node."""
        return set(self._patients)

    # -- pushing -------------------------------------------------------------------

    def touch(self, clinic: str, *, tell_others: bool = True, staff: bool = True) -> None:
        """The clinic's queue changed: push positions soon and the queue a little later
        (``staff=False``: only its doctors changed, so only the estimates may have)."""
        if tell_others:
            self.hub.spawn(self._tell_others(clinic), name=f"queue-notice:{clinic}")
        if clinic in self._patients and clinic not in self._pending:
            self._pending.add(clinic)
            self.hub.spawn(self._push_positions(clinic), name=f"queue-push:{clinic}")
        if staff and clinic in self._staff and clinic not in self._staff_pending:
            self._staff_pending.add(clinic)
            self.hub.spawn(self._push_queue(clinic), name=f"staff-push:{clinic}")

    async def _tell_others(self, clinic: str) -> None:
        await self.hub.sio.manager.publish_internal(QUEUE_CHANGED, {"clinic": clinic})

    async def on_notice(self, kind: str, data: dict[str, Any]) -> None:
        """A notice from another node."""
        if kind == QUEUE_CHANGED and isinstance(data.get("clinic"), str):
            self.touch(data["clinic"], tell_others=False)

    async def _push_positions(self, clinic: str) -> None:
        await asyncio.sleep(POSITION_PUSH_WINDOW)
        self._pending.discard(clinic)
        self._positions_running += 1
        self._positions_done.clear()
        try:
            await self._push_positions_now(clinic)
        finally:
            self._positions_running -= 1
            if not self._positions_running:
                self._positions_done.set()

    async def _push_positions_now(self, clinic: str) -> None:
        here = self._patients.get(clinic)
        if not here:
            return
        gen = self._push_gen[clinic] = self._push_gen.get(clinic, 0) + 1
        positions = await self.hub.room.positions(clinic, list(here))
        _gc.settle()  # thousands of positions, alive until the round ends: no young pass walks them
        if self._push_gen[clinic] != gen:
            return  # a newer push read the queue after this one
        self.hub.metrics.set_queue_length(clinic, positions.length)
        self._queue_length[clinic] = positions.length
        tail = position_tail(positions)
        eio, manager = self.hub.sio.eio, self.hub.sio.manager
        sent_before, heads = self._sent, self._heads
        sent = 0
        for p in positions.places:
            visit_id, position, wait = p
            shown = (position, wait.kind, wait.low_s, wait.high_s)
            if sent_before.get(visit_id) == shown:
                continue
            sent_before[visit_id] = shown
            head = heads.get(visit_id)
            if head is None:
                head = heads[visit_id] = position_head(visit_id)
            packet = position_packet(p, tail, head)
            framed = _fanout.frame(packet)
            for sid in list(here.get(visit_id, ())):
                # What _send_local does, without a coroutine per patient when the frame is written now.
                eio_sid = manager.eio_sid_from_sid(sid, NAMESPACE)
                if eio_sid is not None and not _fanout.write_now(eio, eio_sid, framed):
                    await eio.send(eio_sid, packet)
            sent += 1
            if sent % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other events in between a long push
                if self._push_gen[clinic] != gen:
                    return  # superseded: the newer push sends everyone their newer place

    async def _send_local(self, sid: str, packet: str, framed: bytes | None = None) -> None:
        """Send a ready packet to one local socket.

        python-socketio's emit builds a packet and a task per recipient and waits
        for them, a loop cycle each; for thousands of one-recipient updates that
        was most of a push's cost. This writes the frame now when the socket is
        idle, else queues it for the socket's writer (:mod:`signaling._fanout`),
        so it does not wait on the network."""
        eio_sid = self.hub.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        if eio_sid is not None:
            await _fanout.send(self.hub.sio.eio, eio_sid, packet, framed)

    async def _push_queue(self, clinic: str) -> None:
        interval = STAFF_PUSH_INTERVAL + STAFF_PUSH_PER_PATIENT * self._queue_length.get(clinic, 0)
        wait = self._staff_pushed.get(clinic, 0.0) + interval - time.monotonic()
        await asyncio.sleep(max(0.0, wait))
        self._staff_pending.discard(clinic)
        if clinic not in self._staff:
            return
        self._staff_pushed[clinic] = time.monotonic()
        deadline = time.monotonic() + STAFF_YIELDS_FOR
        await self._after_position_pushes(deadline)
        snapshot = await self.snapshot(clinic, deadline)
        self._queue_length[clinic] = len(snapshot["queue"])  # type: ignore[arg-type]
        packet = await self._queue_packet(snapshot, deadline)  # encoded once for every staff socket here
        for sid in list(self._staff.get(clinic, ())):
            await self._send_local(sid, packet)

    async def _after_position_pushes(self, deadline: float) -> None:
        """Yield, and wait (until ``deadline`` at most) while position pushes run."""
        await asyncio.sleep(0)
        left = deadline - time.monotonic()
        if self._positions_running and left > 0:
            try:
                await asyncio.wait_for(self._positions_done.wait(), left)
            except TimeoutError:
                pass

    async def _queue_packet(self, snapshot: dict[str, object], deadline: float) -> str:
        return await event_packet_in_parts("queue", snapshot, "queue", lambda: self._after_position_pushes(deadline))

    async def snapshot(self, clinic: str, deadline: float = 0.0) -> dict[str, object]:
        """The queue as staff see it, with the visits in progress and the doctors on duty
        (built a part at a time after position pushes until ``deadline``)."""
        room = self.hub.room
        version = await room.queue_version(clinic)
        queue = await room.queue_rows(clinic)
        rows: list[dict[str, object]] = []
        for start in range(0, len(queue), STAFF_ROWS_AT_ONCE):
            await self._after_position_pushes(deadline)
            # made a part at a time too: 5,000 visits at once held the loop ~50 ms
            for v in visits_of(queue[start : start + STAFF_ROWS_AT_ONCE]):
                rows.append({**v.for_staff(), "position": len(rows) + 1})
            _gc.settle()  # the rows live until the queue is sent
        snapshot: dict[str, object] = {
            "clinic": clinic,
            "version": version,
            "queue": rows,
            "in_visit": [v.for_staff() for v in await room.in_visit(clinic)],
            "doctors": await room.doctors_on_duty(clinic),
        }
        await self._after_position_pushes(deadline)
        await self.roster.decorate(clinic, snapshot)
        return snapshot

    async def visit_changed(self, visit: Visit) -> None:
        """Tell the patient and the clinic's staff (on every node) about a visit's
        new state, and push the queue change."""
        sio = self.hub.sio
        await sio.emit("visit", visit.for_patient(), room=rooms.patient(visit.id), namespace=NAMESPACE)
        await sio.emit("visit", visit.for_staff(), room=rooms.staff(visit.clinic), namespace=NAMESPACE)
        self.touch(visit.clinic)
