"""The node's cycle-collector tuning (telemed/_gc.py): survivors are frozen out
of the collector's passes, and cyclic garbage among them is still freed by the
periodic full pass."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from telemed import _gc


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def collector_off() -> Iterator[None]:
    """No automatic collections meanwhile (only keep_frozen's own), and nothing
    left frozen afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


async def test_survivors_are_frozen_and_frozen_garbage_is_freed_by_the_full_pass(collector_off: None) -> None:
    kept, garbage = Node(), Node()
    freed = asyncio.Event()
    weakref.finalize(garbage, freed.set)
    task = asyncio.create_task(_gc.keep_frozen(freeze_every=0.01, full_every=0.2))
    try:
        async with asyncio.timeout(5):  # fails the test if the survivor is never frozen
            while any(o is kept for o in gc.get_objects()):
                await asyncio.sleep(0.005)  # frozen: out of the collector's passes
        del garbage  # a cycle nobody refers to, frozen with the rest
        await asyncio.wait_for(freed.wait(), 5)  # the full pass unfreezes and collects it
        assert freed.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
