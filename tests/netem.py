"""An impaired network path in user space: a UDP relay that delays, jitters,
drops and rate-limits what crosses it (this kernel has no netem).

Put it in front of a TURN server and give a client the relay's port as its
TURN server, with relay-only ICE: then all of that client's media crosses the
relay, both ways. Each client address gets its own socket towards the server
(as behind a NAT), so the server sees one client per address, and each
direction of each client has its own :class:`Link`.

A :class:`Link` decides each packet's fate when it arrives, from a virtual
clock (:meth:`Link.admit`), so its behaviour is deterministic for a seed and
testable without waiting:

1. **loss**: dropped with probability ``loss`` (Bernoulli, seeded);
2. **rate**: a token bucket of ``rate`` bit/s and ``burst`` bytes releases
   the packets in order (a FIFO, like ``tc tbf``); a packet that would wait
   longer than ``queue`` seconds for its tokens is dropped (tail drop: the
   bottleneck's buffer is full);
3. **delay and jitter**: released packets arrive ``delay`` ± ``jitter``
   (uniform) later, never before the packet ahead of them (no reordering,
   unlike netem's default).

Profiles (per direction, so "3g" adds 150 ms each way):

========  ==============  ============  ======  ==========
profile   rate            delay         loss    jitter
========  ==============  ============  ======  ==========
good      none            10 ms         0       0
3g        300 kbit/s      150 ms        1 %     0
bad       150 kbit/s      300 ms        5 %     ± 40 ms
blocked   nothing passes (UDP blocked: a firewall, a dead network)
========  ==============  ============  ======  ==========

**Per party.** A client's path may get a profile of its own by who the client
is: the relay reads the ``USERNAME`` of the client's TURN requests (the TURN
REST scheme's ``<expiry>:<user>``) and a rule (:meth:`ImpairedRelay.match`)
whose text the username contains gives that path its profile, from that
request on (the first, unauthenticated Allocate goes with the default). So
"the patient on 3G, the doctor and the media worker on a good network" is
the 3g profile with rules for the doctor's and the worker's users.

Run as a program (``python -m tests.netem --port P --upstream HOST:PORT``) the
relay serves until its standard input closes and takes commands there, one a
line, each answered on standard output: ``profile NAME`` (answers ``ok NAME``
once every path without a rule of its own has the new profile), ``match TEXT
NAME`` (a rule, see above; answers ``ok TEXT NAME``) and ``totals`` (answers
the summed :class:`LinkStats` of both directions as one JSON line). The browser tests run
it so inside their network namespace (tests/browser/_impaired.py), away from
the test process's event loop and its GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Impairment:
    """What one direction of the path does to packets."""

    delay: float = 0.0
    """Seconds added to every packet."""

    jitter: float = 0.0
    """Up to this many seconds more or less (uniform), order kept."""

    loss: float = 0.0
    """Fraction of packets dropped at random."""

    rate: float = 0.0
    """Bits per second the path carries; 0: no limit."""

    burst: int = 4000
    """Bytes the token bucket holds (sent at once after a pause)."""

    queue: float = 0.3
    """Longest a packet waits for the rate limit before it is dropped instead, in seconds."""


@dataclass(frozen=True)
class Profile:
    name: str
    up: Impairment
    """Client to server."""
    down: Impairment
    """Server to client."""

    @classmethod
    def symmetric(cls, name: str, impairment: Impairment) -> Profile:
        return cls(name, impairment, impairment)


PROFILES: dict[str, Profile] = {
    "clean": Profile.symmetric("clean", Impairment()),
    "good": Profile.symmetric("good", Impairment(delay=0.010)),
    "3g": Profile.symmetric("3g", Impairment(delay=0.150, loss=0.01, rate=300_000)),
    "bad": Profile.symmetric("bad", Impairment(delay=0.300, jitter=0.040, loss=0.05, rate=150_000)),
    "blocked": Profile.symmetric("blocked", Impairment(loss=1.0)),
}


@dataclass
class LinkStats:
    """What one direction did, counted per packet."""

    received: int = 0
    lost: int = 0
    """Dropped by the random loss."""
    overflowed: int = 0
    """Dropped because the rate limit's queue was full."""
    delivered: int = 0
    """Sent on (the packets still on their way are received - lost - overflowed - delivered)."""
    bytes_delivered: int = 0


@dataclass
class Link:
    """One direction of one client's path."""

    impairment: Impairment
    rng: random.Random = field(default_factory=random.Random)
    stats: LinkStats = field(default_factory=LinkStats)
    _tokens: float = field(default=-1.0, init=False)
    _released: float = field(default=float("-inf"), init=False)
    _arrives: float = field(default=float("-inf"), init=False)

    def set(self, impairment: Impairment) -> None:
        """Change what the link does from now on (the queue drains at the new rate)."""
        self.impairment = impairment
        self._tokens = min(self._tokens, float(impairment.burst))

    def admit(self, size: int, now: float) -> float | None:
        """When a packet of ``size`` bytes that arrives at ``now`` leaves the
        path (on the same clock), or None: it is dropped."""
        imp = self.impairment
        self.stats.received += 1
        if imp.loss and self.rng.random() < imp.loss:
            self.stats.lost += 1
            return None
        released = now
        if imp.rate:
            bytes_per_s = imp.rate / 8
            start = max(now, self._released)
            if self._tokens < 0:  # the first packet finds the bucket full
                self._tokens, self._released = float(imp.burst), start
            tokens = min(float(imp.burst), self._tokens + (start - self._released) * bytes_per_s)
            released = start if tokens >= size else start + (size - tokens) / bytes_per_s
            if released - now > imp.queue:
                self.stats.overflowed += 1
                return None
            self._tokens = max(0.0, tokens - size) if tokens >= size else 0.0
            self._released = released
        arrives = released + imp.delay
        if imp.jitter:
            arrives += self.rng.uniform(-imp.jitter, imp.jitter)
        arrives = max(arrives, released, self._arrives)
        self._arrives = arrives
        return arrives


def _big_buffers(transport: asyncio.DatagramTransport) -> None:
    """Room for a burst of packets (the kernel caps it at ``net.core.rmem_max``)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, relay: ImpairedRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.relay._from_client(data, addr)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, flow: _Flow) -> None:
        self.flow = flow

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.flow.relay._pass(self.flow.down, data, lambda: self.flow.relay._send_to_client(data, self.flow.client))


@dataclass
class _Flow:
    relay: ImpairedRelay
    client: tuple[str, int]
    up: Link
    down: Link
    transport: asyncio.DatagramTransport | None = None
    pending: list[bytes] = field(default_factory=list)
    user: str | None = None
    """The TURN username of the client's requests, once one carried it."""


#: STUN's magic cookie (RFC 5389), and the USERNAME attribute's type.
_COOKIE = b"\x21\x12\xa4\x42"
_USERNAME = 0x0006


def stun_username(data: bytes) -> str | None:
    """The USERNAME attribute of a STUN message (TURN requests are STUN), or None."""
    if len(data) < 20 or data[0] & 0xC0 or data[4:8] != _COOKIE:
        return None
    end = min(len(data), 20 + int.from_bytes(data[2:4], "big"))
    at = 20
    while at + 4 <= end:
        kind, length = int.from_bytes(data[at : at + 2], "big"), int.from_bytes(data[at + 2 : at + 4], "big")
        if kind == _USERNAME:
            return data[at + 4 : at + 4 + length].decode("utf-8", "replace")
        at += 4 + (length + 3) // 4 * 4
    return None


class ImpairedRelay:
    """A UDP relay on 127.0.0.1 in front of ``upstream``, impairing both ways.

    :param seed: seeds every link's randomness (loss, jitter), so a run repeats.
    """

    def __init__(self, upstream: tuple[str, int], profile: Profile | str = "clean", *, seed: int = 0) -> None:
        self.upstream = upstream
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.seed = seed
        self.flows: dict[tuple[str, int], _Flow] = {}
        self.rules: dict[str, Profile] = {}
        self.port = 0
        self._listener: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> ImpairedRelay:
        """Listen on ``port`` of 127.0.0.1 (0: any free one; :attr:`port` says which)."""
        self._loop = asyncio.get_running_loop()
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Listener(self), local_addr=("127.0.0.1", port))
        self._listener = transport
        _big_buffers(transport)
        self.port = int(transport.get_extra_info("sockname")[1])
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def turn_url(self) -> str:
        """The ``turn:`` URL that sends a client's TURN traffic through the relay."""
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def set_profile(self, profile: Profile | str) -> None:
        """Change the impairment of every path, now and for new clients (but
        the paths a :meth:`match` rule gives a profile of their own)."""
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        for flow in self.flows.values():
            self._apply(flow)

    def match(self, text: str, profile: Profile | str) -> None:
        """Paths of clients whose TURN username contains ``text`` get ``profile``
        (now, and as soon as a client's request shows its username)."""
        self.rules[text] = PROFILES[profile] if isinstance(profile, str) else profile
        for flow in self.flows.values():
            self._apply(flow)

    def profile_of(self, flow: _Flow) -> Profile:
        if flow.user is not None:
            for text, profile in self.rules.items():
                if text in flow.user:
                    return profile
        return self.profile

    def _apply(self, flow: _Flow) -> None:
        profile = self.profile_of(flow)
        flow.up.set(profile.up)
        flow.down.set(profile.down)

    def totals(self) -> tuple[LinkStats, LinkStats]:
        """The stats of every client's path summed: (up, down)."""
        up, down = LinkStats(), LinkStats()
        for flow in self.flows.values():
            for total, link in ((up, flow.up), (down, flow.down)):
                for name in ("received", "lost", "overflowed", "delivered", "bytes_delivered"):
                    setattr(total, name, getattr(total, name) + getattr(link.stats, name))
        return up, down

    def _from_client(self, data: bytes, client: tuple[str, int]) -> None:
        flow = self.flows.get(client)
        if flow is None:
            n = len(self.flows)
            flow = _Flow(self, client, Link(self.profile.up, random.Random(self.seed * 1000 + 2 * n)),
                         Link(self.profile.down, random.Random(self.seed * 1000 + 2 * n + 1)))
            self.flows[client] = flow
            assert self._loop is not None
            task = self._loop.create_task(self._open(flow))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if flow.user is None and (user := stun_username(data)) is not None:
            flow.user = user
            self._apply(flow)
        self._pass(flow.up, data, lambda: self._send_upstream(flow, data))

    async def _open(self, flow: _Flow) -> None:
        assert self._loop is not None
        transport, _ = await self._loop.create_datagram_endpoint(lambda: _Upstream(flow), remote_addr=self.upstream)
        flow.transport = transport
        _big_buffers(transport)
        for data in flow.pending:
            transport.sendto(data)
        flow.pending.clear()

    def _send_upstream(self, flow: _Flow, data: bytes) -> None:
        if flow.transport is None:
            flow.pending.append(data)
        else:
            flow.transport.sendto(data)

    def _send_to_client(self, data: bytes, client: tuple[str, int]) -> None:
        if self._listener is not None:
            self._listener.sendto(data, client)

    def _pass(self, link: Link, data: bytes, send: Callable[[], None]) -> None:
        assert self._loop is not None
        at = link.admit(len(data), self._loop.time())
        if at is None:
            return

        def deliver() -> None:
            self._timers.discard(timer)
            link.stats.delivered += 1
            link.stats.bytes_delivered += len(data)
            send()

        timer = self._loop.call_at(at, deliver)
        self._timers.add(timer)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        if self._listener is not None:
            self._listener.close()
            self._listener = None


async def serve(port: int, upstream: tuple[str, int], profile: str, seed: int) -> None:
    """The relay as a program: commands on stdin, answers on stdout (see the module's doc)."""
    loop = asyncio.get_running_loop()
    relay = await ImpairedRelay(upstream, profile, seed=seed).start(port)
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:  # a thread: stdin is a pipe, blocking reads are simplest
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="netem-commands", daemon=True).start()
    print(f"listening {relay.port}", flush=True)
    try:
        while (line := await lines.get()) is not None:
            words = line.split()
            if words[:1] == ["profile"] and len(words) == 2 and words[1] in PROFILES:
                relay.set_profile(words[1])
                answer = f"ok {words[1]}"
            elif words[:1] == ["match"] and len(words) == 3 and words[2] in PROFILES:
                relay.match(words[1], words[2])
                answer = f"ok {words[1]} {words[2]}"
            elif words == ["totals"]:
                up, down = relay.totals()
                answer = json.dumps({"up": dataclasses.asdict(up), "down": dataclasses.asdict(down), "profile": relay.profile.name})
            else:
                answer = f"error: {line.strip()!r} is not a command (profile NAME, match TEXT NAME, totals; NAME: {'|'.join(PROFILES)})"
            print(answer, flush=True)
    finally:
        await relay.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.netem", description="An impaired UDP relay (see tests/netem.py).")
    parser.add_argument("--port", type=int, default=0, help="UDP port to listen on, on 127.0.0.1 (0: any)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT to relay to (the TURN server)")
    parser.add_argument("--profile", default="good", choices=sorted(PROFILES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    host, _, up_port = args.upstream.rpartition(":")
    asyncio.run(serve(args.port, (host, int(up_port)), args.profile, args.seed))


if __name__ == "__main__":
    main()
