"""The node's replacement of python-engineio's socket ``poll`` (signaling/_engineio.py)
behaves as the original: same packets, same order, same ends. Every socket test
in the suite runs through it too."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from engineio import async_socket, exceptions

from signaling import _engineio


def fake_socket(ping: float = 5.0) -> SimpleNamespace:
    return SimpleNamespace(queue=asyncio.Queue(), server=SimpleNamespace(ping_interval=ping, ping_timeout=0.0))


def test_it_replaces_the_poll_it_was_written_against() -> None:
    # An upgrade of python-engineio that changes poll makes this fail: re-check the
    # replacement against the new code, then update REPLACES.
    assert _engineio.original_digest() == _engineio.REPLACES
    assert _engineio.install()
    assert async_socket.AsyncSocket.poll is _engineio.poll


@pytest.mark.parametrize("poll", [_engineio.poll, _engineio._original], ids=["replacement", "original"])
async def test_poll_behaves_like_the_original(poll) -> None:  # type: ignore[no-untyped-def]
    s = fake_socket()
    for item in ("a", "b", None, "c"):
        s.queue.put_nowait(item)
    assert await poll(s) == ["a", "b"]  # up to the end marker, which is queued again (last)...
    assert await poll(s) == ["c"]
    assert await poll(s) == []  # ...and then ends a poll
    waiter = asyncio.ensure_future(poll(s))
    await asyncio.sleep(0.01)
    assert not waiter.done()  # nothing queued: waits
    s.queue.put_nowait("d")
    assert await waiter == ["d"]
    assert s.queue._unfinished_tasks == 0  # every get was marked done (queue.join() works)

    idle = fake_socket(ping=0.05)
    with pytest.raises(exceptions.QueueEmpty):
        await poll(idle)  # idle past ping interval + timeout
    cancelled = asyncio.ensure_future(poll(fake_socket()))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(exceptions.QueueEmpty):
        await cancelled
