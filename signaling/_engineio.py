"""One change to python-engineio's socket writer, for fan-out.

Each engine.io socket has a writer task that waits for the next packet with
``asyncio.wait_for(queue.get(), ping_interval + ping_timeout)``. On Python
3.11 ``wait_for`` wraps the ``get()`` in a task of its own and arms a timer
every time, which is most of what one queued message costs the writer; a
waiting-room push sends one message to each of thousands of sockets, so that
cost decides how late the last patient hears their new place
(docs/benchmarks.md).

:func:`install` replaces ``AsyncSocket.poll`` with the same logic, taking a
packet that is already queued without waiting, and waiting with
``asyncio.timeout`` (a timer, no task) otherwise. Behaviour is unchanged: the
same packets in the same order, ``QueueEmpty`` after the same idle time or on
cancellation. The original is checked against the pinned version's source, so
an upgrade of python-engineio that changes it fails loudly (tests) instead of
being silently overridden.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from typing import Any

from engineio import async_socket, exceptions

logger = logging.getLogger(__name__)

#: SHA-256 of the source of ``AsyncSocket.poll`` this replaces (python-engineio 4.15.1).
REPLACES = "826f58a9f3606db208e5d1266f075ad655b6eeda47b0a5616748624899ca5954"

_original = async_socket.AsyncSocket.poll


def original_digest() -> str:
    return hashlib.sha256(inspect.getsource(_original).encode()).hexdigest()


async def poll(self: Any) -> list[Any]:
    """Wait for packets to send to the client (see the module's docstring)."""
    queue: asyncio.Queue[Any] = self.queue
    try:
        if queue.empty():
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await queue.get()
        else:
            first = queue.get_nowait()
        queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise exceptions.QueueEmpty() from None
    if first is None:
        return []
    packets = [first]
    while True:
        try:
            pkt = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)
            break
        packets.append(pkt)
    return packets


def install() -> bool:
    """Use :func:`poll` if python-engineio's is the one it was written against."""
    if async_socket.AsyncSocket.poll is poll:
        return True
    if original_digest() != REPLACES:
        logger.warning("python-engineio's AsyncSocket.poll changed; keeping it (fan-out is slower)")
        return False
    async_socket.AsyncSocket.poll = poll
    return True
