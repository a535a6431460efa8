"""The impaired path (tests/netem.py): what a link does to packets, on a
virtual clock (exact, deterministic for a seed), and the relay doing it to
real UDP packets (counted, and bounded from below only: a loaded machine
delays packets more, never less)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.netem import PROFILES, ImpairedRelay, Impairment, Link, Profile


def fates(link: Link, sizes: list[int], at: list[float]) -> list[float | None]:
    return [link.admit(size, now) for size, now in zip(sizes, at, strict=True)]


def test_loss_drops_about_the_fraction_asked_and_repeats_for_a_seed() -> None:
    link = Link(Impairment(loss=0.05), random.Random(7))
    out = fates(link, [100] * 10_000, [i * 0.02 for i in range(10_000)])
    lost = out.count(None)
    assert 400 <= lost <= 600  # 500 expected; the binomial's sd is 22
    assert link.stats.lost == lost and link.stats.received == 10_000
    again = fates(Link(Impairment(loss=0.05), random.Random(7)), [100] * 10_000, [i * 0.02 for i in range(10_000)])
    assert again == out  # the same seed, the same packets lost
    assert fates(Link(Impairment()), [100] * 100, [0.0] * 100).count(None) == 0


def test_the_rate_limit_releases_a_burst_then_one_packet_per_its_time() -> None:
    # 80 kbit/s = 10,000 bytes/s: a 1000-byte packet every 0.1 s, after a 2000-byte burst.
    link = Link(Impairment(rate=80_000, burst=2000, queue=100.0))
    out = fates(link, [1000] * 20, [0.0] * 20)
    assert out[:2] == [0.0, 0.0]
    assert out[2:] == pytest.approx([0.1 * k for k in range(1, 19)])
    # After a pause the bucket is full again (two packets at once), never fuller.
    later = fates(link, [1000] * 3, [100.0] * 3)
    assert later == pytest.approx([100.0, 100.0, 100.1])


def test_a_full_queue_drops_the_newcomers() -> None:
    # The same path with half a second of buffer: the burst and five packets fit.
    link = Link(Impairment(rate=80_000, burst=2000, queue=0.5))
    out = fates(link, [1000] * 20, [0.0] * 20)
    assert [t is not None for t in out] == [True] * 7 + [False] * 13
    assert link.stats.overflowed == 13 and link.stats.lost == 0


def test_a_sender_twice_as_fast_as_the_link_gets_the_link_s_rate() -> None:
    link = Link(Impairment(rate=100_000, burst=1500, queue=0.2))
    size, every = 500, 500 * 8 / 200_000  # 200 kbit/s offered for 60 s
    out = fates(link, [size] * 6000, [i * every for i in range(6000)])
    carried = sum(size for t in out if t is not None and t <= 60.0) * 8 / 60.0
    assert 95_000 <= carried <= 101_000
    assert 0.45 <= link.stats.overflowed / 6000 <= 0.55


def test_delay_and_jitter_keep_the_order_and_the_bounds() -> None:
    link = Link(Impairment(delay=0.3, jitter=0.04), random.Random(3))
    sent = [i * 0.02 for i in range(2000)]
    out = fates(link, [200] * 2000, sent)
    arrived = [t for t in out if t is not None]
    assert arrived == sorted(arrived)  # no reordering
    assert all(s + 0.26 - 1e-9 <= t <= s + 0.34 + 1e-9 for s, t in zip(sent, arrived, strict=True))
    assert len({round(t - s, 4) for s, t in zip(sent, arrived, strict=True)}) > 100  # it does vary


def test_the_profiles_are_the_issue_s() -> None:
    three_g, bad = PROFILES["3g"], PROFILES["bad"]
    for direction in (three_g.up, three_g.down):
        assert (direction.rate, direction.delay, direction.loss) == (300_000, 0.150, 0.01)
    for direction in (bad.up, bad.down):
        assert (direction.rate, direction.delay, direction.loss) == (150_000, 0.300, 0.05) and direction.jitter > 0
    assert PROFILES["good"].up.loss == 0 and PROFILES["good"].up.rate == 0
    assert PROFILES["blocked"].up.loss == PROFILES["blocked"].down.loss == 1.0  # UDP blocked: nothing passes


# -- the relay, on real sockets -----------------------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    """A server that sends every datagram back."""

    def __init__(self) -> None:
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        self.transport.sendto(data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, float]] = []
        self.arrived = asyncio.Condition()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, time.monotonic()))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.arrived:
            self.arrived.notify_all()

    async def wait_for(self, n: int, timeout: float = 20) -> None:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.got) >= n), timeout)


Scene = tuple[ImpairedRelay, Echo, asyncio.DatagramTransport, Client]


@pytest.fixture
async def scenes() -> AsyncIterator[Callable[..., Awaitable[Scene]]]:
    """``await scenes(profile)``: an echo server, the relay in front of it, and
    a client of the relay; all closed after the test."""
    loop = asyncio.get_running_loop()
    closing: list[Any] = []

    async def make(profile: Profile, seed: int = 0) -> Scene:
        echo = Echo()
        server, _ = await loop.create_datagram_endpoint(lambda: echo, local_addr=("127.0.0.1", 0))
        closing.append(server)
        relay = await ImpairedRelay(server.get_extra_info("sockname"), profile, seed=seed).start()
        closing.append(relay)
        client = Client()
        transport, _ = await loop.create_datagram_endpoint(lambda: client, remote_addr=relay.address)
        closing.append(transport)
        return relay, echo, transport, client

    yield make
    for thing in reversed(closing):
        if isinstance(thing, ImpairedRelay):
            await thing.close()
        else:
            thing.close()
    await asyncio.sleep(0)  # the transports close on the next turn of the loop


async def test_the_relay_delays_both_ways(scenes: Any) -> None:
    relay, echo, transport, client = await scenes(Profile.symmetric("slow", Impairment(delay=0.15)))
    sent = {}
    for i in range(10):
        sent[b"%d" % i] = time.monotonic()
        transport.sendto(b"%d" % i)
    await client.wait_for(10)
    assert all(at - sent[data] >= 0.3 for data, at in client.got)  # 150 ms each way, at least
    assert [data for data, _ in client.got] == [b"%d" % i for i in range(10)]  # in order


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for a state (polled): the relay's counters move as packets arrive."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {condition.__name__}"
        await asyncio.sleep(0.01)


async def test_the_relay_drops_what_its_links_say_and_delivers_the_rest(scenes: Any) -> None:
    relay, echo, transport, client = await scenes(Profile("lossy", Impairment(loss=0.3), Impairment(loss=0.2)), seed=5)
    for i in range(300):
        transport.sendto(b"%d" % i)
        if i % 20 == 19:
            await asyncio.sleep(0.005)  # paced like media, not a burst the socket buffers cannot hold

    def settled() -> bool:
        up, down = relay.totals()
        return (up.received == 300 and up.delivered == 300 - up.lost and echo.received == up.delivered
                and down.received == echo.received and down.delivered == down.received - down.lost)

    await until(settled)
    up, down = relay.totals()
    assert 60 <= up.lost <= 120  # 90 expected
    # Everything not lost reached the echo server, came back, and what the way back kept arrived.
    assert echo.received == 300 - up.lost
    await client.wait_for(down.delivered)
    assert len(client.got) == down.received - down.lost
    assert 0.1 <= down.lost / down.received <= 0.3


async def test_the_relay_caps_the_rate(scenes: Any) -> None:
    # 200 kbit/s = 25,000 bytes/s; 26 packets of 1000 bytes after a 1000-byte burst take at least 1 s.
    relay, echo, transport, client = await scenes(Profile("narrow", Impairment(rate=200_000, burst=1000, queue=10.0), Impairment()))
    start = time.monotonic()
    for _ in range(26):
        transport.sendto(b"x" * 1000)
    await client.wait_for(26)
    assert client.got[-1][1] - start >= 1.0 - 0.01
    assert relay.totals()[0].overflowed == 0


async def test_each_client_gets_its_own_path_and_a_new_profile_applies_to_all(scenes: Any) -> None:
    relay, echo, transport, client = await scenes(PROFILES["clean"])
    loop = asyncio.get_running_loop()
    other = Client()
    other_transport, _ = await loop.create_datagram_endpoint(lambda: other, remote_addr=relay.address)
    try:
        transport.sendto(b"a")
        other_transport.sendto(b"b")
        await client.wait_for(1)
        await other.wait_for(1)
        assert client.got[0][0] == b"a" and other.got[0][0] == b"b"  # each answer to its own client
        assert len(relay.flows) == 2
        relay.set_profile(Profile("cut", Impairment(loss=1.0), Impairment()))
        transport.sendto(b"gone")
        await until(lambda: relay.totals()[0].lost == 1)
        relay.set_profile("clean")
        transport.sendto(b"sentinel")
        await client.wait_for(2)
        assert [data for data, _ in client.got] == [b"a", b"sentinel"]  # the sentinel came, the cut packet never
    finally:
        other_transport.close()


async def test_the_relay_as_a_program_switches_profiles_on_command() -> None:
    # python -m tests.netem, as the browser tests run it (tests/browser/_impaired.py).
    import json
    import subprocess
    import sys
    from pathlib import Path

    loop = asyncio.get_running_loop()
    echo = Echo()
    server, _ = await loop.create_datagram_endpoint(lambda: echo, local_addr=("127.0.0.1", 0))
    port = server.get_extra_info("sockname")[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.netem", "--upstream", f"127.0.0.1:{port}", "--profile", "clean",
        cwd=Path(__file__).resolve().parent.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    client = Client()
    transport = None

    async def say(line: str) -> str:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        return (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()

    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()
        assert first[0] == "listening"
        transport, _ = await loop.create_datagram_endpoint(lambda: client, remote_addr=("127.0.0.1", int(first[1])))
        transport.sendto(b"a")
        await client.wait_for(1)
        assert await say("profile blocked") == "ok blocked"
        transport.sendto(b"gone")
        deadline = time.monotonic() + 10
        while json.loads(await say("totals"))["up"]["lost"] < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await say("profile good") == "ok good"
        assert (await say("profile nonsense")).startswith("error")
        transport.sendto(b"sentinel")
        await client.wait_for(2)
        assert [data for data, _ in client.got] == [b"a", b"sentinel"] and echo.received == 2
    finally:
        if transport is not None:
            transport.close()
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 10)  # input closed: the relay exits
        server.close()


def stun_request(username: str | None) -> bytes:
    """A STUN binding request (what a TURN request looks like), with a USERNAME when given."""
    from aioice import stun

    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    if username is not None:
        message.attributes["USERNAME"] = username
    message.attributes["SOFTWARE"] = "telemed-test"
    return bytes(message)


def test_the_turn_username_is_read_from_a_stun_request() -> None:
    from tests.netem import stun_username

    assert stun_username(stun_request("1800000000:doctor-7")) == "1800000000:doctor-7"
    assert stun_username(stun_request(None)) is None
    assert stun_username(b"\x40\x00\x00\x04abcd") is None  # TURN ChannelData: media, not STUN
    assert stun_username(b"\x80" + bytes(30)) is None  # RTP


async def test_a_rule_gives_one_party_s_path_a_profile_of_its_own(scenes: Any) -> None:
    # Everyone's path is cut but the doctor's, known by the TURN username of its requests.
    relay, echo, transport, client = await scenes(Profile("cut", Impairment(loss=1.0), Impairment()))
    relay.match(":doctor-", "clean")
    loop = asyncio.get_running_loop()
    other = Client()
    other_transport, _ = await loop.create_datagram_endpoint(lambda: other, remote_addr=relay.address)
    try:
        other_transport.sendto(stun_request("1800000000:patient-1"))  # the patient's: cut
        transport.sendto(stun_request("1800000000:doctor-1"))  # the doctor's first request: clean from then on
        transport.sendto(b"media")
        await client.wait_for(2)
        await until(lambda: relay.totals()[0].lost == 1)
        assert [data for data, _ in client.got][1] == b"media" and other.got == [] and echo.received == 2
        # A rule that changes later applies at once to the paths it names.
        relay.match(":doctor-", "blocked")
        transport.sendto(b"gone")
        await until(lambda: relay.totals()[0].lost == 2)
        relay.match(":patient-", "clean")
        other_transport.sendto(b"sentinel")
        await other.wait_for(1)
        assert other.got[0][0] == b"sentinel" and echo.received == 3
    finally:
        other_transport.close()
