"""A minimal Socket.IO (v5, Engine.IO v4) client over one aiohttp websocket,
for load generation: no reconnection, no binary, just events and acks.

python-socketio's client starts several tasks per connection, which would
make the generator, not the node, the bottleneck with thousands of clients.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp


class MiniClient:
    def __init__(self, url: str, token: str, namespaces: list[str], http: aiohttp.ClientSession) -> None:
        self.url = url
        self.token = token
        self.namespaces = namespaces
        self.http = http
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count()
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._handlers: dict[tuple[str, str], Callable[[Any], None]] = {}
        self._connected: dict[str, asyncio.Future[None]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.close_reason = ""

    def on(self, namespace: str, event: str, fn: Callable[[Any], None]) -> None:
        self._handlers[(namespace, event)] = fn

    async def connect(self) -> None:
        ws_url = self.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.http.ws_connect(ws_url, headers={"Origin": self.url}, max_msg_size=0)
        opening = await self.ws.receive_str()
        assert opening.startswith("0"), opening
        loop = asyncio.get_running_loop()
        for ns in self.namespaces:
            self._connected[ns] = loop.create_future()
            await self.ws.send_str(f"40{ns}," + json.dumps({"token": self.token}))
        self._reader = asyncio.ensure_future(self._read())
        await asyncio.gather(*self._connected.values())

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                self.close_reason = f"{msg.type.name} {msg.data!r} {msg.extra!r}"
                break
            data: str = msg.data
            if data == "2":
                await self.ws.send_str("3")
                continue
            if not data.startswith("4"):
                continue
            kind, rest = data[1], data[2:]
            ns = "/"
            if rest.startswith("/"):
                ns, _, rest = rest.partition(",")
            if kind == "0":
                self._connected[ns].set_result(None)
            elif kind == "4":
                self._connected[ns].set_exception(ConnectionError(rest))
            elif kind in "23":
                digits = ""
                while rest and rest[0].isdigit():
                    digits, rest = digits + rest[0], rest[1:]
                payload = json.loads(rest)
                if kind == "3":
                    fut = self._acks.pop(int(digits), None)
                    if fut is not None and not fut.done():
                        fut.set_result(payload[0] if payload else None)
                else:
                    handler = self._handlers.get((ns, payload[0]))
                    if handler is not None:
                        handler(payload[1] if len(payload) > 1 else None)
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))

    async def call(self, namespace: str, event: str, data: Any, timeout: float = 30) -> Any:
        if self.ws is None or self.ws.closed:
            raise ConnectionError("closed")
        ack = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack] = fut
        try:
            await self.ws.send_str(f"42{namespace},{ack}" + json.dumps([event, data]))
            return await asyncio.wait_for(fut, timeout)
        except aiohttp.ClientError as exc:
            raise ConnectionError("closed") from exc
        finally:
            self._acks.pop(ack, None)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
