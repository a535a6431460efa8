"""One ready message to many local sockets: the waiting room's pushes.

python-engineio hands each message to a writer task per socket through a
queue: the task wakes, takes the message, re-arms its idle timer and writes.
A position push sends one message to each of thousands of sockets, and that
per-message round (not the write itself) was most of what decided how late
the last patient heard their new place (docs/benchmarks.md).

:func:`send` writes the websocket frame of the engine.io message straight to
the socket's transport when that can neither reorder nor pile up anything:

- the socket's writer task is idle, waiting on an empty queue (so nothing it
  took is still unsent, and nothing queued would be overtaken);
- the transport's buffer is empty (the client keeps up: a slow one gets its
  messages through the queue and aiohttp's flow control, as before);
- the websocket is open, and engine.io would not close the socket for a
  missed pong on this send.

Otherwise, and for any socket this module cannot see into, the message goes
to python-engineio's ``send`` as before. The frame is what aiohttp's writer
sends for an uncompressed text message; a connection that negotiated
permessage-deflate may carry uncompressed messages too (RFC 7692 section 6:
only a message with RSV1 set is compressed), and only messages under
:data:`MAX_UNCOMPRESSED` go this way on such a connection, so large ones
(a staff queue) are still compressed.

To find the websocket of an engine.io socket, :func:`install` gives the
server its own copy of python-engineio's aiohttp websocket driver that
notes itself on the socket it serves. What this relies on is checked against
the pinned python-engineio's source (:data:`REPLACES`), as
``signaling/_engineio.py`` does: another version keeps engine.io's own path.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
from typing import Any

from engineio import async_socket
from engineio.async_drivers import aiohttp as aiohttp_driver

logger = logging.getLogger(__name__)

#: SHA-256 of the python-engineio 4.15.1 source this relies on: the driver
#: creates the aiohttp response as ``_sock`` and calls the socket's bound
#: ``_websocket_handler``; that handler's writer task is the queue's only
#: consumer and writes what it takes, in order, before it waits again; a send
#: first closes a socket whose pong is overdue (mirrored in :func:`write_now`).
REPLACES = {
    "WebSocket.__call__": "71f9a94476d737c35a2971f606da0937fc1ac8704d717cb5bac44960864c4453",
    "AsyncSocket._websocket_handler": "27f120df4d717a24478b7b0f7389ce19eea8a881dd07e2c81fb1cf2493e006a5",
    "AsyncSocket.check_ping_timeout": "77616d5ca7809257d5d1866f271e7cc3e114663cfe2772cafda63a7393c880d0",
}

#: On a connection that negotiated compression, messages at least this long
#: go through engine.io (and aiohttp compresses them).
MAX_UNCOMPRESSED = 1024

_SOURCES = {
    "WebSocket.__call__": aiohttp_driver.WebSocket.__call__,
    "AsyncSocket._websocket_handler": async_socket.AsyncSocket._websocket_handler,
    "AsyncSocket.check_ping_timeout": async_socket.AsyncSocket.check_ping_timeout,
}


def source_digests() -> dict[str, str]:
    return {name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest() for name, fn in _SOURCES.items()}


class _WebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]
    """python-engineio's aiohttp websocket, noted on the engine.io socket it serves."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)
        if isinstance(socket, async_socket.AsyncSocket):
            socket.telemed_ws = self
        return await super().__call__(environ)


def install(eio: Any) -> bool:
    """Let :func:`send` write directly to ``eio``'s websockets (an engine.io
    ``AsyncServer`` in aiohttp mode), if python-engineio is the one this was
    checked against. Only this server's driver table is changed."""
    if getattr(eio, "telemed_fanout", False):
        return True
    changed = sorted(name for name, digest in source_digests().items() if digest != REPLACES[name])
    if changed or eio._async.get("websocket") is not aiohttp_driver.WebSocket:
        logger.warning("python-engineio changed (%s); pushes go through its queue (slower)", ", ".join(changed))
        return False
    eio._async = {**eio._async, "websocket": _WebSocket}
    eio.telemed_fanout = True
    return True


#: Headers of unmasked final text frames by payload length (126 and over: 2 bytes of length follow).
_SHORT_HEADERS = [bytes((0x81, n)) for n in range(126)]
_MEDIUM_HEADER = bytes((0x81, 126))


def frame(packet: str) -> bytes:
    """The websocket frame of the engine.io MESSAGE carrying this Socket.IO packet."""
    data = ("4" + packet).encode()
    n = len(data)
    if n < 126:
        return _SHORT_HEADERS[n] + data
    if n < 65536:
        return _MEDIUM_HEADER + n.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


def write_now(eio: Any, eio_sid: str, framed: bytes) -> bool:
    """Write ``framed`` (a :func:`frame`) to the socket now if that is safe (see
    the module's docstring); False if it must go through engine.io instead.
    Synchronous, so a push loop calls it without a coroutine per recipient."""
    socket = eio.sockets.get(eio_sid)
    ws = getattr(socket, "telemed_ws", None)
    if ws is None or socket.closing or socket.closed or socket.upgrading:
        return False
    if socket.last_ping and time.time() - socket.last_ping > eio.ping_timeout:
        return False  # engine.io's send closes this socket
    queue = socket.queue
    if not queue.empty():
        return False  # the writer has something to send first
    for getter in queue._getters:
        if not getter.done():
            break  # the writer waits on the empty queue: nothing of it is unsent
    else:
        return False  # the writer is sending (or waiting for the network)
    response = ws._sock
    writer = getattr(response, "_writer", None)
    if writer is None or response.closed or (response.compress and len(framed) >= MAX_UNCOMPRESSED):
        return False
    transport = writer.transport
    if transport is None or transport.is_closing() or transport.get_write_buffer_size():
        return False
    transport.write(framed)
    return True


async def send(eio: Any, eio_sid: str, packet: str, framed: bytes | None = None) -> None:
    """Send one Socket.IO packet (text) to one local engine.io socket: written
    now when safe, else queued by engine.io."""
    if getattr(eio, "telemed_fanout", False) and write_now(eio, eio_sid, framed or frame(packet)):
        return
    await eio.send(eio_sid, packet)
