"""Triage chat: one Redis Stream per visit.

A message carries a client-chosen id, so a send that is retried after a lost
ack is stored once. The ack carries the stream id; a client that reconnects
asks for everything after the last stream id it saw. With replicas required
(:mod:`telemed.replication`), a send is acknowledged once they have it; one
they did not confirm in time is answered ``unavailable`` and its retry (same
client id) is stored once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from telemed import _scripts, keys
from telemed.exceptions import Conflict, NotFound
from telemed.replication import Replication
from telemed.tokens import Claims

#: Stream entries kept per visit (a visit's chat is far shorter; this bounds abuse).
MAX_MESSAGES = 10_000

#: Messages returned by one history call; the client pages with ``after``.
HISTORY_PAGE = 200


@dataclass(frozen=True)
class Message:
    id: str
    client_id: str
    visit_id: str
    sender: str
    role: str
    name: str
    text: str
    ts: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class ChatLog:
    def __init__(self, redis: aioredis.Redis, replication: Replication | None = None) -> None:
        # Typed Any: redis-py's stubs cannot express decode_responses=True (str replies).
        self.redis: Any = redis
        self._send = redis.register_script(_scripts.CHAT_SEND)
        self._replication = replication

    async def send(self, visit_id: str, sender: Claims, client_id: str, text: str) -> tuple[Message, bool]:
        """Store a message once; returns it and whether it was a duplicate."""
        now = time.time()
        script_keys = [keys.visit(visit_id), keys.chat(visit_id), keys.chat_ids(visit_id)]
        args = [client_id, sender.sub, sender.role.value, sender.name, text, repr(now), MAX_MESSAGES]
        if self._replication is None:
            r = await self._send(keys=script_keys, args=args)
        else:
            r = await self._replication.eval(self._send, script_keys, args)
        if r[0] == "not_found":
            raise NotFound("no such visit")
        if r[0] == "conflict":
            raise Conflict("the visit has ended", state=r[1])
        if r[0] == "duplicate":
            stored = await self.redis.xrange(keys.chat(visit_id), r[1], r[1])
            if stored:
                return self._message(visit_id, *stored[0]), True
        return (
            Message(r[1], client_id, visit_id, sender.sub, sender.role.value, sender.name, text, now),
            r[0] == "duplicate",
        )

    async def history(self, visit_id: str, after: str | None = None, limit: int = HISTORY_PAGE) -> list[Message]:
        """Messages after stream id ``after`` (all from the start when None), in order."""
        start = f"({after}" if after else "-"
        entries = await self.redis.xrange(keys.chat(visit_id), start, "+", count=limit)
        return [self._message(visit_id, mid, fields) for mid, fields in entries]

    @staticmethod
    def _message(visit_id: str, mid: str, f: dict[str, str]) -> Message:
        return Message(mid, f["cid"], visit_id, f["from"], f["role"], f["name"], f["text"], float(f["ts"]))
