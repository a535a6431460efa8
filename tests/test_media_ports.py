"""The media worker behind a firewall: chart legs are received on the UDP
ports of ``TELEMED_MEDIA_PORTS`` only (media/ice.py binds aioice's host
sockets there), and a range with no free port left refuses the offer in
plain words instead of leaving it unanswered."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import pytest
import redis.asyncio as aioredis

from media import ice
from media.config import MediaSettings
from media.worker import Worker
from telemed.exceptions import ConfigError, Unavailable
from telemed.settings import Settings
from telemed.tokens import Role
from telemed.waiting_room import WaitingRoom
from tests.conftest import WorkerFactory, create_visit, token
from tests.media_harness import Browser, open_visit
from tests.turn_server import free_udp_range

CANDIDATE = re.compile(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ (\w+)")


def host_ports(sdp: str) -> list[int]:
    return [int(m.group(2)) for m in CANDIDATE.finditer(sdp) if m.group(3) == "host"]


def job(visit: str, role: str, sdp: str, n: int = 1) -> dict[str, str]:
    return {"job": f"j{n}", "visit": visit, "clinic": "c1", "role": role, "sub": "p1" if role == "patient" else "d1", "sdp": sdp}


# -- the setting ---------------------------------------------------------------------------------


def test_the_range_is_read_and_checked() -> None:
    assert Settings.from_env({"TELEMED_MEDIA_PORTS": "40000-40100"}).media_ports == (40000, 40100)
    assert Settings.from_env({"TELEMED_MEDIA_PORTS": " 40000 - 40000 "}).media_ports == (40000, 40000)
    assert Settings.from_env({}).media_ports is None
    for value, words in (("40000", "not a range of ports"), ("40000:40100", "not a range of ports"),
                         ("a-b", "not a range of ports"), ("-1-40", "not a range of ports"),
                         ("80-90", "from 1024 to 65535"), ("40000-70000", "from 1024 to 65535"),
                         ("40100-40000", "the first port (40100) is after the last (40000)")):
        with pytest.raises(ConfigError, match=re.escape(words)):
            Settings.from_env({"TELEMED_MEDIA_PORTS": value})


def test_a_range_too_small_for_the_worker_s_legs_does_not_start(tmp_path: Path) -> None:
    base = Settings(redis_url="redis://x", recordings_dir=tmp_path, media_ports=(40000, 40009),
                    media_addresses=("10.0.0.5", "127.0.0.1"))
    with pytest.raises(ConfigError, match=r"40000-40009 holds 10 ports, too few for TELEMED_MEDIA_MAX_LEGS=40 "
                                          r"chart legs on 2 address\(es\)"):
        MediaSettings(base)
    assert MediaSettings(base.with_(media_max_legs=5)).ports == (40000, 40009)
    with pytest.raises(ConfigError, match="after the last"):
        MediaSettings(base.with_(media_ports=(40009, 40000), media_max_legs=1))


# -- gathering -----------------------------------------------------------------------------------


async def gathered(addresses: tuple[str, ...], ports: tuple[int, int] | None) -> list[aioice.Candidate]:
    connection = aioice.ice.Connection(ice_controlling=True)
    try:
        with ice.host_addresses(addresses, ports):
            await connection.gather_candidates()
        return connection.local_candidates
    finally:
        await connection.close()


async def test_host_candidates_take_ports_of_the_range_only_inside_the_block() -> None:
    ice.install()
    first, last = free_udp_range(4)
    for _ in range(8):  # each gathering may start anywhere in the range
        candidates = await gathered(("127.0.0.1",), (first, last))
        assert [(c.type, c.host) for c in candidates] == [("host", "127.0.0.1")]
        assert first <= candidates[0].port <= last
    outside = await gathered(("127.0.0.1",), None)  # no range: the system's choice, as before
    assert outside[0].type == "host" and not first <= outside[0].port <= last


async def test_a_full_range_fails_the_gathering_and_leaves_nothing_bound() -> None:
    ice.install()
    first, last = free_udp_range(2)
    held = []
    for port in (first, last):  # another program holds every port of the range on 127.0.0.1
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        held.append(s)
    try:
        # 127.0.0.2 gets a port first, then 127.0.0.1 finds none.
        with pytest.raises(Unavailable, match=rf"no free UDP port left in its range {first}-{last} \(TELEMED_MEDIA_PORTS\) on 127\.0\.0\.1"):
            await gathered(("127.0.0.2", "127.0.0.1"), (first, last))
    finally:
        for s in held:
            s.close()
    # The failed gathering kept no socket: both ports are free on 127.0.0.2 again.
    for port in (first, last):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", port))


# -- the worker ----------------------------------------------------------------------------------


@pytest.fixture
def port_range() -> Iterator[tuple[int, int]]:
    yield free_udp_range(2)


async def test_chart_legs_are_received_on_the_range(
    redis: aioredis.Redis, settings: Settings, start_worker: WorkerFactory, port_range: tuple[int, int]
) -> None:
    worker = await start_worker(media_ports=port_range, media_max_legs=2)
    visit = await open_visit(WaitingRoom(redis, settings))
    patient, doctor = Browser(), Browser()
    try:
        answers = [await worker.handle_offer(job(visit, role, await browser.offer(), n))
                   for n, (role, browser) in enumerate((("patient", patient), ("doctor", doctor)))]
        # One port per leg (audio and video bundled), both of the range.
        ports = [set(host_ports(answer)) for answer in answers]
        assert all(len(p) == 1 for p in ports) and set.union(*ports) == set(range(port_range[0], port_range[1] + 1))
        for browser, answer in zip((patient, doctor), answers, strict=True):
            await browser.accept(answer)
            await browser.wait_connected()
        leg = worker.legs[(visit, "doctor")]
        while leg.taps["video"].frames < 10:  # media arrives on the range's port (the test's timeout bounds it)
            await asyncio.sleep(0.05)
    finally:
        await patient.close()
        await doctor.close()


async def test_no_free_port_refuses_the_offer_in_plain_words(
    node: str, connect, redis: aioredis.Redis, settings: Settings, start_worker: WorkerFactory,  # type: ignore[no-untyped-def]
    port_range: tuple[int, int],
) -> None:
    first, last = port_range
    worker: Worker = await start_worker(media_ports=port_range, media_max_legs=2)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", first))  # another program on the host took one port of the two
    doctor = await connect(node, token(Role.DOCTOR, sub="d1"), namespaces=["/queue", "/media"])
    visit_id, patient_token = await create_visit(node, token(Role.NURSE))
    patient = await connect(node, patient_token, namespaces=["/queue", "/media"])
    await patient.ok("/queue", "check_in", {"reason": "r", "consent_visit": True, "consent_recording": True})
    await doctor.ok("/queue", "admit", {"visit_id": visit_id})
    patient_cam, doctor_cam = Browser(), Browser()
    try:
        reply = await patient.ok("/media", "leg_offer", {"visit_id": visit_id, "sdp": await patient_cam.offer()})
        answer = await patient.wait_for("/media", "leg_answer", lambda a: a["job"] == reply["job"], timeout=10)
        assert answer["ok"] and set(host_ports(answer["sdp"])) == {last}
        reply = await doctor.ok("/media", "leg_offer", {"visit_id": visit_id, "sdp": await doctor_cam.offer()})
        refused = await doctor.wait_for("/media", "leg_answer", lambda a: a["job"] == reply["job"], timeout=10)
        assert refused["ok"] is False and refused["error"]["code"] == "unavailable"
        assert refused["error"]["message"] == (
            f"the media worker has no free UDP port left in its range {first}-{last} (TELEMED_MEDIA_PORTS) "
            "on 127.0.0.1: offer again later; its operator can widen the range")
        assert set(worker.legs) == {(visit_id, "patient")}  # the refused leg left nothing open
    finally:
        holder.close()
        await patient_cam.close()
        await doctor_cam.close()


def test_importing_the_media_code_leaves_aioice_s_ports_alone() -> None:
    import subprocess
    import sys

    code = ("import aioice.ice; original = aioice.ice.Connection.get_component_candidates\n"
            "import media.worker, media.ice, tests.media_harness\n"
            "assert aioice.ice.Connection.get_component_candidates is original\n"
            "media.ice.install()\n"
            "assert aioice.ice.Connection.get_component_candidates is media.ice._get_component_candidates\n"
            "print('ok')")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
