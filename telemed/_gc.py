"""Cycle-collector tuning for a long-running node (``telemed serve`` and
``telemed dev`` only, behind ``TELEMED_GC_TUNING``; never for an embedding
application or a test).

A node holding thousands of sockets has hundreds of thousands of long-lived
objects (some 100,000 of them imported modules and classes, the FHIR models
included). Python's full collection walked them all several times a minute,
stalling the loop ~300 ms each time, and thousands of small young passes
stalled it more than a few larger ones (measured with ``bench.waiting_room``,
docs/benchmarks.md). So:

- :func:`tune`, before the loop starts: what exists by then lives as long as
  the process and is frozen out of the collector's passes, and young
  collections run every :data:`YOUNG` allocations instead of 700;
- :func:`keep_frozen`, a task while the node runs: survivors are frozen every
  :data:`FREEZE_EVERY` seconds, and every :data:`FULL_EVERY` seconds
  everything is unfrozen and collected once (a pause of a few hundred ms), so
  cyclic garbage among frozen objects is still freed;
- :func:`settle`, called by the node's code after making thousands of
  objects that live a while: they are frozen at once.

Why every second: Python counts allocations *minus deallocations* towards a
young collection, and a node replaces long-lived objects all the time (each
socket's ping task, its waiting read and their timers are renewed every ping
interval). Each renewal frees an old object as it makes a new one, so the
count barely moves while the young generation fills: at 5,000 patients a
young pass found up to 150,000 objects (~70-100 ms) and a middle pass over
what they left took up to ~240 ms. Frozen every second, the young
generations hold about a second of survivors and a pass stays under ~20 ms
(docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import gc

#: Allocations between two young-generation collections (Python's default: 700).
YOUNG = 20_000

#: Seconds between two freezes of what survived, and between two full checks.
FREEZE_EVERY = 1.0
FULL_EVERY = 900.0


_tuned = False


def tune() -> None:
    """Freeze what exists now and space out young collections."""
    global _tuned
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, 10, 10)
    _tuned = True


def settle() -> None:
    """Freeze what was just made in bulk and lives a while (a push round's
    thousands of positions, the staff's queue of thousands of rows), if the
    collector is tuned (:func:`tune`; never in a test or an embedding
    application). Otherwise the next young pass walks all of it: at 5,000
    patients such passes took 25-45 ms every ~5.5 s, when the staff's queue
    was built. Freezing only moves the young objects aside (no walk); they are
    freed by their reference counts as before, and cycles among them by the
    periodic full pass of :func:`keep_frozen`."""
    if _tuned:
        gc.freeze()


async def keep_frozen(freeze_every: float = FREEZE_EVERY, full_every: float = FULL_EVERY) -> None:
    """Freeze survivors now and then; unfreeze and collect everything now and then."""
    since_full = 0.0
    while True:
        await asyncio.sleep(freeze_every)
        since_full += freeze_every
        if since_full >= full_every:
            since_full = 0.0
            gc.unfreeze()
            gc.collect()
        gc.freeze()
