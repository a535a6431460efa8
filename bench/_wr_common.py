"""What the processes of ``bench.waiting_room`` share: the clinic, the tokens,
the pacing of actions and the record of what was sent, acknowledged and received."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench._sio import MiniClient
from telemed.settings import Secret
from telemed.tokens import Role, mint

SECRET = Secret("bench-secret-" + "b" * 40)
CLINIC = "bench"
CHECK_IN = {"reason": "bench", "consent_visit": True, "consent_recording": False}


def staff_token(role: Role, i: int) -> str:
    return mint(SECRET, role=role, name=f"{role.value}{i}", clinic=CLINIC, sub=f"{role.value}{i}", ttl=3600)[0]


_NURSE: list[str] = []


def nurse_token() -> str:
    """A nurse's token for creating visits over HTTP (minted once per process)."""
    if not _NURSE:
        _NURSE.append(staff_token(Role.NURSE, 0))
    return _NURSE[0]


class Recorder:
    """What one process sent, had acknowledged and received."""

    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}  # queue version -> when the change that made it was sent
        self.updates: list[tuple[int, float]] = []  # (version, arrived at)
        self.acked: dict[str, set[str]] = {}  # visit -> acknowledged chat client ids
        self.acks: list[float] = []  # ms from sending a change to its acknowledgement
        self.lags: list[float] = []  # ms this process's loop ran late

    def sent(self, version: int, at: float) -> None:
        self.sent_at[int(version)] = at

    async def change(self, client: MiniClient, event: str, data: dict[str, object]) -> dict[str, Any]:
        t = time.monotonic()
        reply: dict[str, Any] = await client.call("/queue", event, data)
        self.acks.append((time.monotonic() - t) * 1000)
        if reply.get("ok") and reply.get("version") is not None:
            self.sent(reply["version"], t)
        return reply

    async def chat(self, vid: str, client: MiniClient, cid: str) -> None:
        reply = await client.call("/chat", "send", {"visit_id": vid, "client_id": cid, "text": f"message {cid}"})
        if reply.get("ok"):
            self.acked.setdefault(vid, set()).add(cid)

    def to_json(self) -> dict[str, Any]:
        return {
            "sent_at": self.sent_at,
            "updates": self.updates,
            "acked": {vid: sorted(cids) for vid, cids in self.acked.items()},
            "acks": self.acks,
            "lags": self.lags,
        }

    def merge(self, other: dict[str, Any]) -> None:
        self.sent_at.update({int(v): t for v, t in other["sent_at"].items()})
        self.updates.extend((int(v), t) for v, t in other["updates"])
        for vid, cids in other["acked"].items():
            self.acked.setdefault(vid, set()).update(cids)
        self.acks.extend(other["acks"])


async def every(stop: float, rate: float, action: Callable[[], Awaitable[Any]]) -> None:
    """Start ``action`` ``rate`` times a second until ``stop`` (not waiting for each)."""
    if rate <= 0:
        return
    pending: set[asyncio.Task[None]] = set()
    next_at = time.monotonic()

    async def guarded() -> None:
        try:
            await action()
        except (TimeoutError, ConnectionError, KeyError, IndexError):
            pass  # the patient picked was admitted or left meanwhile: not acknowledged

    while time.monotonic() < stop:
        task = asyncio.ensure_future(guarded())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*pending, return_exceptions=True)


async def lag_monitor(stop: float, lags: list[float]) -> None:
    """How late this process's own loop runs (it would inflate every figure)."""
    while time.monotonic() < stop:
        t = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append((time.monotonic() - t - 0.01) * 1000)
