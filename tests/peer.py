"""A real python-socketio client acting as one person's browser, for tests."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import socketio

NAMESPACES = ["/queue", "/chat", "/call"]


class Peer:
    """Connects with a token to a node; records every event it receives."""

    def __init__(self, url: str, token: str, *, origin: str | None = None, namespaces: list[str] | None = None) -> None:
        self.url = url
        self.token = token
        self.origin = origin
        self.namespaces = namespaces or NAMESPACES
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self._arrived = asyncio.Condition()
        self.sio.on("*", self._record, namespace="*")

    async def _record(self, event: str, namespace: str, data: Any = None) -> None:
        async with self._arrived:
            self.events[(namespace, event)].append(data)
            self._arrived.notify_all()

    async def connect(self) -> Peer:
        headers = {"Origin": self.origin} if self.origin else {}
        await self.sio.connect(
            self.url,
            auth={"token": self.token},
            namespaces=self.namespaces,
            transports=["websocket"],
            headers=headers,
            wait_timeout=5,
        )
        return self

    async def close(self) -> None:
        await self.sio.disconnect()

    async def call(self, namespace: str, event: str, data: Any = None, timeout: float = 5) -> Any:
        """Emit and wait for the ack."""
        return await self.sio.call(event, data, namespace=namespace, timeout=timeout)

    async def ok(self, namespace: str, event: str, data: Any = None) -> dict[str, Any]:
        reply = await self.call(namespace, event, data)
        assert reply["ok"], reply
        return reply

    async def wait_for(self, namespace: str, event: str, predicate: Any = None, timeout: float = 5) -> Any:
        """The first received ``event`` (since the start) that satisfies ``predicate``."""
        predicate = predicate or (lambda _d: True)

        def found() -> Any:
            for d in self.events[(namespace, event)]:
                if predicate(d):
                    return d
            return None

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
            return found()

    def last(self, namespace: str, event: str) -> Any:
        got = self.events[(namespace, event)]
        return got[-1] if got else None

    def clear(self) -> None:
        self.events.clear()


def client_id() -> str:
    return uuid.uuid4().hex
