"""What the worker refuses, and that a refusal leaves nothing behind: no peer
connection, no socket, no thread, no file, no Redis entry."""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time

import psutil
import pytest
import redis.asyncio as aioredis
from aiortc import RTCPeerConnection

from media.worker import Worker
from telemed import keys as telemed_keys
from telemed.exceptions import BadRequest, Conflict, Forbidden, NotFound
from telemed.media_protocol import Job, MediaClient, keys
from telemed.redis_server import RedisServer
from telemed.settings import Settings
from telemed.visits import EndReason
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory
from tests.media_harness import Browser, EmitLog, open_visit
from tests.test_media_recording import finished


@pytest.fixture
async def worker(start_worker: WorkerFactory) -> Worker:
    return await start_worker(connect_timeout=1.5, claim_idle=0.5)


def job(visit: str, sdp: str, **over: str) -> dict[str, str]:
    return {"job": "j1", "visit": visit, "clinic": "c1", "role": "patient", "sub": "p1", "sdp": sdp, "consent": "1", **over}


async def an_offer(**kw: object) -> str:
    browser = Browser(**kw)  # type: ignore[arg-type]
    try:
        return await browser.offer()
    finally:
        await browser.close()


def peer_connections() -> int:
    gc.collect()
    return sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())


def udp_sockets() -> int:
    return len(psutil.Process().net_connections(kind="udp"))


def decoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


async def nothing_left(worker: Worker, redis: aioredis.Redis, pcs: int, udp: int) -> None:
    assert worker.legs == {}
    assert peer_connections() == pcs
    assert udp_sockets() == udp
    assert decoder_threads() == []
    assert not [f for f in psutil.Process().open_files() if str(worker.settings.recordings_dir) in f.path]
    assert await redis.keys("tm:media:leg:*") == []
    assert not worker.settings.recordings_dir.exists()  # not even a folder for a refused leg


async def test_no_consent_no_leg(redis: aioredis.Redis, settings: Settings, worker: Worker) -> None:
    room = WaitingRoom(redis, settings)
    offer = await an_offer()
    pcs, udp = peer_connections(), udp_sockets()
    refused = await open_visit(room, consent=False)
    with pytest.raises(Forbidden, match="consented to recording") as info:
        await worker.handle_offer(job(refused, offer))
    assert info.value.details == {"reason": "no_consent"}
    # The node's view of consent counts too: a job saying "no" is refused even if Redis says yes.
    consented = await open_visit(room, patient="p2")
    with pytest.raises(Forbidden, match="consented"):
        await worker.handle_offer(job(consented, offer, sub="p2", consent="0"))
    await nothing_left(worker, redis, pcs, udp)


async def test_no_leg_outside_a_visit_in_progress(redis: aioredis.Redis, settings: Settings, worker: Worker) -> None:
    room = WaitingRoom(redis, settings)
    offer = await an_offer()
    pcs, udp = peer_connections(), udp_sockets()
    waiting = await open_visit(room, admit=False)
    with pytest.raises(Conflict, match="while the visit is waiting") as info:
        await worker.handle_offer(job(waiting, offer))
    assert info.value.details == {"state": "waiting"}
    ended = await open_visit(room, patient="p2")
    await room.end(ended, by="d1", reason=EndReason.COMPLETED)
    with pytest.raises(Conflict, match="ended"):
        await worker.handle_offer(job(ended, offer, sub="p2"))
    with pytest.raises(NotFound):
        await worker.handle_offer(job("nosuchvisit", offer))
    live = await open_visit(room, patient="p3", doctor="d3")
    with pytest.raises(Forbidden, match="another clinic"):
        await worker.handle_offer(job(live, offer, sub="p3", clinic="c2"))
    with pytest.raises(Forbidden, match="not this visit's patient"):
        await worker.handle_offer(job(live, offer, sub="somebody"))
    with pytest.raises(Forbidden, match="not this visit's doctor"):
        await worker.handle_offer(job(live, offer, role="doctor", sub="d1"))
    await nothing_left(worker, redis, pcs, udp)


async def test_malformed_jobs_are_refused(redis: aioredis.Redis, settings: Settings, worker: Worker) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    offer = await an_offer()
    for bad, match in [
        ({"role": "nurse"}, "role"),
        ({"job": ""}, "job"),
        ({"clinic": ".."}, "clinic"),  # would be a path out of the recordings folder
        ({"visit": "../../etc"}, "visit"),
        ({"sdp": "v=0\r\n" + "a=x\r\n" * 20000}, "at most"),
    ]:
        with pytest.raises(BadRequest, match=match):
            await worker.handle_offer({**job(visit, offer), **bad})
    fields = job(visit, offer)
    del fields["sub"]
    with pytest.raises(BadRequest, match="sub is missing"):
        await worker.handle_offer(fields)


def hostile_offers(good: str) -> dict[str, str]:
    video_only = good[good.index("m=video"):]
    return {
        "empty": "",
        "text": "hello, worker",
        "nul": good.replace("s=-", "s=\x00"),
        "no media": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
        "data channel": "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "two videos": good + video_only,
        "receive only": good.replace("a=sendonly", "a=recvonly"),
        "no fingerprint": re.sub(r"a=fingerprint:.*\r\n", "", good),
        "no ice credentials": re.sub(r"a=ice-(ufrag|pwd):.*\r\n", "", good),
        "no rtcp-mux": good.replace("a=rtcp-mux\r\n", ""),
        "h264 only": good.replace("VP8/90000", "H264/90000"),
        "no opus": good.replace("opus/48000/2", "speex/48000"),
        "bad payload type": good.replace("97 98 99", "97 98 300"),
        "bad rtpmap": good.replace("VP8/90000", "VP8"),
        "bad setup": good.replace("a=setup:actpass", "a=setup:bogus"),
        "bad candidate": re.sub(r"a=candidate:.*", "a=candidate:xx", good),
        "hostname candidates": re.sub(r" 127\.0\.0\.1 (\d+) typ", r" evil.example.com \1 typ", good),
        "many candidates": good.replace("a=end-of-candidates", "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n" * 40
                                         + "a=end-of-candidates"),
        "duplicate mid": good.replace("a=mid:1", "a=mid:0"),
    }


async def test_garbage_sdp_is_refused_and_leaks_nothing(redis: aioredis.Redis, settings: Settings, worker: Worker) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    good = await an_offer()
    pcs, udp = peer_connections(), udp_sockets()
    for name, sdp in hostile_offers(good).items():
        with pytest.raises(BadRequest) as info:
            await worker.handle_offer(job(visit, sdp, job=f"j{len(name)}"))
        assert info.value.details == {"fields": ["sdp"]}, (name, info.value.message)
        del info  # its traceback holds the refused leg's frames (and so its closed peer connection)
    # Offers that parse and answer but can never connect (a fingerprint nobody can
    # match, addresses nobody listens on) are closed when the connection does not come.
    for sdp in (good.replace("sha-256 ", "sha-999 "), re.sub(r"127\.0\.0\.1 \d+ typ", "127.0.0.1 9 typ", good)):
        await worker.handle_offer(job(visit, sdp))
    deadline = time.monotonic() + 5
    while True:  # until everything is released (a leak never is)
        try:
            await nothing_left(worker, redis, pcs, udp)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_second_leg_of_a_participant_replaces_the_first(
    redis: aioredis.Redis, settings: Settings, worker: Worker
) -> None:
    visit = await open_visit(WaitingRoom(redis, settings))
    first = Browser()
    second = first.again()
    try:
        await first.accept(await worker.handle_offer(job(visit, await first.offer(), job="j1")))
        await first.wait_connected()
        await asyncio.sleep(1.5)
        await second.accept(await worker.handle_offer(job(visit, await second.offer(), job="j2")))
        await second.wait_connected()
        await asyncio.sleep(1.5)
        assert list(worker.legs) == [(visit, "patient")]
        assert worker.legs[(visit, "patient")].job.id == "j2"
        assert (await redis.hgetall(keys.leg(visit, "patient")))["job"] == "j2"
    finally:
        await first.close()
        await second.close()
    chart = await finished(settings.recordings_dir / "c1" / visit, 2)
    one, two = chart["recordings"]
    assert (one["n"], one["state"], one["end_reason"]) == (1, "complete", "replaced by a new leg")
    assert (two["n"], two["state"]) == (2, "complete")
    assert two["gap_before"] is not None and two["gap_before"] < 1


async def test_jobs_on_the_stream_are_answered_or_refused_and_removed(
    redis: aioredis.Redis, redis_server: RedisServer, settings: Settings, worker: Worker
) -> None:
    room = WaitingRoom(redis, settings)
    media = MediaClient(redis)
    emits = await EmitLog(redis_server.url, telemed_keys.SOCKETIO_CHANNEL).start()
    browser = Browser()
    rescuer: Worker | None = None
    try:
        offer = await an_offer()
        visit = await open_visit(room)
        # A job older than job_ttl is refused: its browser gave up long ago.
        old_id = f"{int((time.time() - 120) * 1000)}-0"
        await redis.xadd(keys.JOBS, job(visit, offer, job="old"), id=old_id)
        reply = await emits.wait_for("leg_answer", room="leg:old", namespace="/media")
        assert reply["data"]["error"]["code"] == "conflict" and "expired" in reply["data"]["error"]["message"]

        # Refusals reach the browser's room with the error.
        refused = await open_visit(room, consent=False, patient="p2")
        await media.submit(Job(job="nope", visit=refused, clinic="c1", role="patient", sub="p2", sdp=offer, consent=False))
        reply = await emits.wait_for("leg_answer", room="leg:nope")
        assert reply["data"] == {"job": "nope", "ok": False, "error": {
            "code": "forbidden", "message": "the patient has not consented to recording", "details": {"reason": "no_consent"}}}

        # A job a worker read and never answered (it died) is taken by another.
        await worker.stop()
        await media.submit(Job(job="orphan", visit=visit, clinic="c1", role="patient", sub="p1",
                           sdp=await browser.offer(), consent=True))
        ghost = await redis.xreadgroup(keys.GROUP, "ghost", {keys.JOBS: ">"}, count=1)
        assert ghost[0][1][0][1]["job"] == "orphan"
        rescuer = Worker(worker.settings.with_(worker_id="rescuer"))
        await rescuer.start()
        reply = await emits.wait_for("leg_answer", room="leg:orphan")
        assert reply["data"]["ok"], reply
        await browser.accept(reply["data"]["sdp"])
        await browser.wait_connected()
        assert (await media.leg(visit, "patient") or {}).get("worker") == "rescuer"
        assert await redis.xlen(keys.JOBS) == 0
        assert (await redis.xpending(keys.JOBS, keys.GROUP))["pending"] == 0
    finally:
        await browser.close()
        if rescuer is not None:
            await rescuer.stop()
        await emits.close()
