"""A minimal Socket.IO (v5, Engine.IO v4) client for load generation: one
websocket per client, spoken directly on an asyncio protocol. No reconnection,
no binary; just events and acks. With ``deflate=True`` it offers
permessage-deflate as browsers do (and inflates what the server compressed;
it sends its own messages uncompressed, which the extension allows).

python-socketio's client starts several tasks per connection, and even
aiohttp's websocket client wakes a reader task per message; with thousands of
simulated patients that made the generator, not the node, part of what the
benchmark measured. Here a message costs one ``data_received`` call, and each
event handler is given the time its bytes arrived (taken before any parsing),
so a generator that is busy parsing does not make the node look slower.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

#: Handler of an event: (its data, time.monotonic() when its bytes arrived).
Handler = Callable[[Any, float], None]


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.3: clients mask every frame)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    mask = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big") if n else b""
    return header + key + masked


class _Protocol(asyncio.Protocol):
    """The websocket: the upgrade, then frames in, text messages out."""

    def __init__(self, client: MiniClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []
        self.compressed = False  # the message being reassembled was compressed
        self.inflate: Any = None  # zlib.decompressobj once permessage-deflate was agreed
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.client._closed(f"connection lost {exc!r}" if exc else "closed")

    def send_text(self, text: str) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("closed")
        self.transport.write(_frame(0x1, text.encode()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b"permessage-deflate" in bytes(buf[:end]).lower():
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            del buf[: end + 4]
            if b" 101 " not in status:
                self.client._closed(f"upgrade refused: {status.decode(errors='replace')}")
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, pos = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, pos = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < pos + length:
                return  # the rest of the frame has not arrived yet
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            opcode = b0 & 0x0F
            if opcode == 0x8:
                self.client._closed(f"close frame {payload[:2].hex()} {payload[2:].decode(errors='replace')}")
                assert self.transport is not None
                self.transport.close()
                return
            if opcode == 0x9:
                assert self.transport is not None
                self.transport.write(_frame(0xA, payload))
                continue
            if opcode in (0x0, 0x1):
                if opcode == 0x1:
                    self.compressed = bool(b0 & 0x40)  # RSV1: this message is compressed
                self.fragments.append(payload)
                if b0 & 0x80:
                    data = b"".join(self.fragments)
                    self.fragments.clear()
                    if self.compressed:
                        data = self.inflate.decompress(data + b"\x00\x00\xff\xff")
                    self.client._message(data.decode(), now)


class MiniClient:
    def __init__(self, url: str, token: str, namespaces: list[str], *, deflate: bool = False) -> None:
        self.url = url
        self.token = token
        self.namespaces = namespaces
        self.deflate = deflate
        self._proto: _Protocol | None = None
        self._ids = itertools.count()
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._connected: dict[str, asyncio.Future[None]] = {}
        self._opened: asyncio.Future[None] | None = None
        self.closed = False
        self.close_reason = ""

    def on(self, namespace: str, event: str, fn: Handler) -> None:
        self._handlers[(namespace, event)] = fn

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self._opened = loop.create_future()
        _, proto = await loop.create_connection(lambda: _Protocol(self), host, port)
        self._proto = proto
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {self.url}\r\n"
            + ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.deflate else "")
            + "\r\n"
        )
        assert proto.transport is not None
        proto.transport.write(request.encode())
        await self._opened
        for ns in self.namespaces:
            self._connected[ns] = loop.create_future()
            proto.send_text(f"40{ns}," + json.dumps({"token": self.token}))
        await asyncio.gather(*self._connected.values())

    def _message(self, data: str, arrived: float) -> None:
        if not data:
            return
        kind = data[0]
        if kind == "0":  # engine.io open
            if self._opened is not None and not self._opened.done():
                self._opened.set_result(None)
            return
        if kind == "2":  # engine.io ping
            assert self._proto is not None
            self._proto.send_text("3")
            return
        if kind != "4" or len(data) < 2:
            return
        kind, rest = data[1], data[2:]
        ns = "/"
        if rest.startswith("/"):
            ns, _, rest = rest.partition(",")
        if kind == "0":
            self._connected[ns].set_result(None)
        elif kind == "4":
            self._connected[ns].set_exception(ConnectionError(rest))
        elif kind in "23":
            i = 0
            while i < len(rest) and rest[i].isdigit():
                i += 1
            digits, payload = rest[:i], json.loads(rest[i:])
            if kind == "3":
                fut = self._acks.pop(int(digits), None)
                if fut is not None and not fut.done():
                    fut.set_result(payload[0] if payload else None)
            else:
                handler = self._handlers.get((ns, payload[0]))
                if handler is not None:
                    handler(payload[1] if len(payload) > 1 else None, arrived)

    def _closed(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        for fut in [self._opened, *self._connected.values(), *self._acks.values()]:
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError(reason))

    async def call(self, namespace: str, event: str, data: Any, timeout: float = 30) -> Any:
        if self._proto is None or self.closed:
            raise ConnectionError("closed")
        ack = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack] = fut
        try:
            self._proto.send_text(f"42{namespace},{ack}" + json.dumps([event, data]))
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._acks.pop(ack, None)

    async def close(self) -> None:
        proto = self._proto
        if proto is None or proto.transport is None:
            return
        if not proto.transport.is_closing():
            proto.transport.write(_frame(0x8, (1000).to_bytes(2, "big")))
            proto.transport.close()
        await proto.lost
