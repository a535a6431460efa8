"""The addresses a worker offers: host addresses constrained (loopback allowed),
and an announced address written into the answer in their place."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aioice.ice
import pytest
import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import VideoStreamTrack

from media import ice
from media.config import MediaSettings
from media.worker import Worker
from telemed.exceptions import ConfigError
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.waiting_room import WaitingRoom
from tests.media_harness import Browser, open_visit

CANDIDATE = re.compile(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)")


async def gathered(addresses: tuple[str, ...] | None) -> list[str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    try:
        offer = await pc.createOffer()
        if addresses is None:
            await pc.setLocalDescription(offer)
        else:
            with ice.host_addresses(addresses):
                await pc.setLocalDescription(offer)
        return [m.group(1) for m in CANDIDATE.finditer(pc.localDescription.sdp)]
    finally:
        await pc.close()


async def test_host_addresses_constrain_gathering_only_inside_the_block() -> None:
    ice.install()
    assert aioice.ice.get_host_addresses is ice._get_host_addresses  # the one patch is in place
    assert await gathered(("127.0.0.1",)) == ["127.0.0.1"]
    assert sorted(await gathered(("127.0.0.1", "::1"))) == ["127.0.0.1", "::1"]
    # Outside the block aioice chooses as before: every interface but loopback.
    assert "127.0.0.1" not in await gathered(None)
    # An empty choice means aioice's own.
    assert "127.0.0.1" not in await gathered(())


def test_announce_replaces_host_addresses_and_keeps_ports() -> None:
    answer = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=video 40000 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 10.0.0.5\r\n"
        "a=candidate:a 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
        "a=candidate:b 1 udp 2130706431 fd00::5 40002 typ host\r\n"
        "a=candidate:c 1 udp 1694498815 198.51.100.9 40004 typ srflx raddr 10.0.0.5 rport 40000\r\n"
        "a=candidate:d 1 udp 2130706431 abc.local 40006 typ host\r\n"
    )
    out = ice.announce(answer, "203.0.113.7")
    assert "a=candidate:a 1 udp 2130706431 203.0.113.7 40000 typ host" in out
    assert "c=IN IP4 203.0.113.7" in out
    assert "fd00::5 40002" in out  # another family: untouched
    assert "198.51.100.9 40004 typ srflx raddr 10.0.0.5" in out  # not a host candidate
    assert "abc.local 40006" in out
    assert ice.announce(answer, "") == answer


def test_addresses_must_be_ip_addresses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an IP address"):
        MediaSettings(Settings(redis_url="redis://x", recordings_dir=tmp_path, media_addresses=("eth0",)))
    with pytest.raises(ConfigError, match="ANNOUNCED"):
        MediaSettings(Settings(redis_url="redis://x", recordings_dir=tmp_path, media_announced_address="media.example.org"))


@pytest.fixture
async def natted_worker(redis: aioredis.Redis, redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[Worker]:
    # Bound on the wildcard address, announcing loopback: the browser only ever
    # learns the announced address, like a worker behind 1:1 NAT.
    w = Worker(MediaSettings(Settings(redis_url=redis_server.url, recordings_dir=tmp_path / "recordings",
                                      media_addresses=("0.0.0.0",), media_announced_address="127.0.0.1")))
    await w.start()
    yield w
    await w.stop()


async def test_a_leg_connects_through_the_announced_address(
    redis: aioredis.Redis, settings: Settings, natted_worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser()
    try:
        answer = await natted_worker.handle_offer(
            {"job": "j1", "visit": visit, "clinic": "c1", "role": "patient", "sub": "p1", "sdp": await browser.offer()})
        assert {m.group(1) for m in CANDIDATE.finditer(answer)} == {"127.0.0.1"}
        assert "0.0.0.0" not in "".join(m.group(0) for m in CANDIDATE.finditer(answer))
        await browser.accept(answer)
        await browser.wait_connected()
        await asyncio.sleep(1)
        leg = natted_worker.legs[(visit, "patient")]
        assert leg.taps["video"].frames > 10
    finally:
        await browser.close()
