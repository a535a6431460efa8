"""TURN proven with a real coturn (tests/turn_server.py): a call between two
relay-only peers, a relay-only chart leg to the media worker, and expired
credentials refused; then a call across an impaired path (tests/netem.py)
in front of coturn.

Every credential is the project's own: minted by :func:`signaling.ice.ice_servers`
(what the pages get) and :func:`media.ice.configuration` (the worker's), from
the deployment's TURN secret, which coturn has as its ``static-auth-secret``.
Relay-only is aiortc's ``iceTransportPolicy`` (RTCIceTransportPolicy.RELAY,
aioice's TransportPolicy.RELAY): only relayed candidates are gathered, so a
call that connects went through coturn; coturn's own accounting says so too.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioice.stun
import aioice.turn
import pytest
import redis.asyncio as aioredis
from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnection
from aiortc.contrib.media import MediaBlackhole

from media import ice
from media.config import MediaSettings
from signaling.ice import ice_servers
from telemed.settings import Secret, Settings
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory
from tests.media_harness import BarsTrack, Browser, ToneTrack, open_visit
from tests.netem import ImpairedRelay
from tests.turn_server import TurnServer

TURN_SECRET = Secret("turn-rest-secret-" + "t" * 24)
CANDIDATE = re.compile(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)")


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    server = TurnServer(tmp_path_factory.mktemp("coturn"), TURN_SECRET).start()
    yield server
    server.stop()


def with_turn(settings: Settings, url: str) -> Settings:
    return settings.with_(turn_urls=(url,), turn_secret=TURN_SECRET, turn_ttl=600)


def relay_only(settings: Settings, user: str, now: float | None = None) -> RTCConfiguration:
    """A page's configuration: the ICE servers the node hands it, relay only."""
    servers = [RTCIceServer(**server) for server in ice_servers(settings, user, now)]  # type: ignore[arg-type]
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY)


def candidate_types(sdp: str) -> list[str]:
    return [m.group(3) for m in CANDIDATE.finditer(sdp)]


async def packets_received(pc: RTCPeerConnection, kind: str) -> int:
    stats = await pc.getStats()
    return sum(s.packetsReceived for s in stats.values() if s.type == "inbound-rtp" and s.kind == kind)


async def packets_sent(pc: RTCPeerConnection, kind: str) -> int:
    stats = await pc.getStats()
    return sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp" and s.kind == kind)


async def until_received(pc: RTCPeerConnection, kind: str, n: int, timeout: float = 20) -> int:
    """Wait until ``pc`` received ``n`` RTP packets of ``kind`` (getStats); returns the count."""
    deadline = time.monotonic() + timeout
    while (got := await packets_received(pc, kind)) < n:
        assert time.monotonic() < deadline, f"{got} {kind} packets received, {n} expected"
        await asyncio.sleep(0.1)
    return got


class Party:
    """One side of a browser-to-browser call: a camera and a microphone sent,
    the other side's media received (and thrown away, as a page renders it)."""

    def __init__(self, configuration: RTCConfiguration, *, video: bool = True) -> None:
        self.pc = RTCPeerConnection(configuration)
        self.pc.addTrack(ToneTrack())
        if video:
            self.pc.addTrack(BarsTrack())
        self.sink = MediaBlackhole()
        self.pc.on("track", self.sink.addTrack)

    async def close(self) -> None:
        await self.sink.stop()
        await self.pc.close()


@pytest.fixture
async def parties() -> AsyncIterator[list[Party]]:
    made: list[Party] = []
    yield made
    for party in made:
        await party.close()


async def call(caller: Party, callee: Party) -> None:
    """Offer and answer (each with its candidates gathered), then both sinks run."""
    await caller.pc.setLocalDescription(await caller.pc.createOffer())
    await callee.pc.setRemoteDescription(caller.pc.localDescription)
    await callee.pc.setLocalDescription(await callee.pc.createAnswer())
    await caller.pc.setRemoteDescription(callee.pc.localDescription)
    await caller.sink.start()
    await callee.sink.start()


def relayed_by_coturn(turn: TurnServer, user: str) -> tuple[int, int]:
    """What coturn relayed for ``user``'s closed allocations, as it logs them
    (one line per allocation when it closes): packets from the other side to
    the relay, and from the relay to the other side."""
    peer = [(rp, sp) for kind, name, rp, _rb, sp, _sb in turn.usage() if kind == "peer" and name.endswith(f":{user}")]
    return sum(rp for rp, _ in peer), sum(sp for _, sp in peer)


async def until_relayed(turn: TurnServer, user: str, received: int, sent: int, timeout: float = 20) -> None:
    """Wait until coturn logged at least that much relayed for ``user`` (its
    allocations close a moment after the peer connection)."""
    deadline = time.monotonic() + timeout
    while True:
        got = relayed_by_coturn(turn, user)
        if got[0] >= received and got[1] >= sent:
            return
        assert time.monotonic() < deadline, f"coturn relayed {got} for {user}, at least {(received, sent)} expected"
        await asyncio.sleep(0.1)


# -- (a) a call, relay only ----------------------------------------------------------------------


async def test_a_relay_only_call_flows_through_coturn(turn: TurnServer, settings: Settings, parties: list[Party]) -> None:
    s = with_turn(settings, turn.url)
    doctor, patient = Party(relay_only(s, "doctor-a")), Party(relay_only(s, "patient-a"))
    parties += [doctor, patient]
    await call(doctor, patient)
    # Only relayed candidates were offered and answered: the call can only go through coturn.
    assert set(candidate_types(doctor.pc.localDescription.sdp)) == {"relay"}
    assert set(candidate_types(patient.pc.localDescription.sdp)) == {"relay"}
    for receiver in (doctor.pc, patient.pc):
        await until_received(receiver, "audio", 100)
        await until_received(receiver, "video", 30)
    audio_sent = await packets_sent(doctor.pc, "audio")
    await doctor.close()
    await patient.close()
    # coturn relayed the doctor's packets to the patient's relay (its peer), and the patient's back.
    await until_relayed(turn, "doctor-a", received=100, sent=audio_sent)


# -- (b) the chart leg, relay only ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["all", "relay"])
async def test_the_chart_leg_records_through_coturn(
    policy: str, turn: TurnServer, redis: aioredis.Redis, settings: Settings, start_worker: WorkerFactory
) -> None:
    s = with_turn(settings, turn.url)
    worker = await start_worker(turn_urls=s.turn_urls, turn_secret=s.turn_secret, turn_ttl=s.turn_ttl, ice_policy=policy)
    visit = await open_visit(WaitingRoom(redis, settings))
    browser = Browser(configuration=relay_only(s, "patient-b"))
    try:
        offer = await browser.offer()
        assert set(candidate_types(offer)) == {"relay"}
        answer = await worker.handle_offer(
            {"job": "j1", "visit": visit, "clinic": "c1", "role": "patient", "sub": "p1", "sdp": offer})
        if policy == "all":
            # The worker offers its host address and its own relay (credentials it minted).
            assert {"host", "relay"} <= set(candidate_types(answer))
        else:  # TELEMED_ICE_POLICY=relay: the worker too offers only its relay
            assert set(candidate_types(answer)) == {"relay"}
        await browser.accept(answer)
        await browser.wait_connected(20)
        leg = worker.legs[(visit, "patient")]
        deadline = time.monotonic() + 20
        while leg.taps["video"].frames < 30 or leg.taps["audio"].frames < 100:
            assert time.monotonic() < deadline, (leg.taps["video"].frames, leg.taps["audio"].frames)
            await asyncio.sleep(0.1)
        assert leg.file is not None
    finally:
        await browser.close()
    await worker.stop()  # finishes the recording
    recordings = list((settings.recordings_dir / "c1" / visit).glob("recording-patient-*.webm"))
    assert recordings and recordings[0].stat().st_size > 10_000
    await until_relayed(turn, "patient-b", received=0, sent=100)  # to the worker, through coturn
    if policy == "relay":  # and the worker's side of the leg was relayed by coturn as well
        await until_relayed(turn, f"worker-{worker.settings.worker_id}", received=100, sent=0)


def test_the_worker_mints_coturn_credentials_from_the_same_secret(tmp_path: Path) -> None:
    s = MediaSettings(Settings(redis_url="redis://x", recordings_dir=tmp_path, turn_urls=("turn:127.0.0.1:3478",),
                               turn_secret=TURN_SECRET, turn_ttl=600), worker_id="w1")
    server = ice.configuration(s, now=1_800_000_000).iceServers[0]
    browser = ice_servers(s.base, "worker-w1", now=1_800_000_000)[0]
    assert (server.username, server.credential) == (browser["username"], browser["credential"])


# -- (c) expired credentials ---------------------------------------------------------------------


async def allocate(turn: TurnServer, username: str, password: str) -> tuple[str, int]:
    """A TURN allocation on coturn; its relayed address."""
    transport, _ = await aioice.turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server_addr=("127.0.0.1", turn.port), username=username, password=password)
    try:
        address: tuple[str, int] = transport.get_extra_info("sockname")
        return address
    finally:
        transport.close()


async def test_expired_credentials_are_refused(turn: TurnServer, settings: Settings, parties: list[Party]) -> None:
    s = with_turn(settings, turn.url)
    expired = ice_servers(s, "patient-c", now=time.time() - 3600)[0]  # expired 50 minutes ago
    with pytest.raises(aioice.stun.TransactionFailed) as refused:
        await allocate(turn, str(expired["username"]), str(expired["credential"]))
    assert refused.value.response.attributes["ERROR-CODE"][0] == 401
    # The sentinel: the same user's credential minted now is accepted by the same server.
    fresh = ice_servers(s, "patient-c")[0]
    host, port = await allocate(turn, str(fresh["username"]), str(fresh["credential"]))
    assert host == "127.0.0.1" and turn.relay_range[0] <= port <= turn.relay_range[1]
    # A page with expired credentials and relay-only gathers nothing to offer.
    stale = Party(relay_only(s, "patient-c", now=time.time() - 3600), video=False)
    parties.append(stale)
    await stale.pc.setLocalDescription(await stale.pc.createOffer())
    assert candidate_types(stale.pc.localDescription.sdp) == []


# -- an impaired path in front of coturn ---------------------------------------------------------


@pytest.fixture
async def impaired(turn: TurnServer) -> AsyncIterator[ImpairedRelay]:
    relay = await ImpairedRelay(("127.0.0.1", turn.port), "3g", seed=1).start()
    yield relay
    await relay.close()


async def test_a_call_over_a_3g_like_path_connects_and_audio_flows(
    turn: TurnServer, impaired: ImpairedRelay, settings: Settings, parties: list[Party]
) -> None:
    # The patient's phone is behind the 3G-like path (300 kbit/s, 150 ms and 1 % loss each
    # way); the doctor reaches coturn directly. Relay-only: all the patient's media crosses it.
    doctor = Party(relay_only(with_turn(settings, turn.url), "doctor-d"))
    patient = Party(relay_only(with_turn(settings, impaired.turn_url()), "patient-d"))
    parties += [doctor, patient]
    await call(doctor, patient)
    await until_received(patient.pc, "audio", 150, timeout=30)
    await until_received(doctor.pc, "audio", 150, timeout=30)
    up, down = impaired.totals()
    assert up.delivered > 150 and down.delivered > 150  # the media did cross the impaired path
    # Audio keeps flowing while video competes for the 300 kbit/s: a second later, more arrived.
    before = await packets_received(doctor.pc, "audio")
    await until_received(doctor.pc, "audio", before + 40, timeout=10)
