"""The waiting room's ready-made packets (signaling/notifier.py ``event_packet``)
are what python-socketio's own emit sends: a real Socket.IO server on a free
port, a raw engine.io websocket as the client, the same event sent both ways and
the frames compared byte for byte. ``position_packet`` (built from a template,
without a JSON encoder) is the text ``event_packet`` makes of the update."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from signaling.notifier import (
    NAMESPACE,
    STAFF_ROWS_AT_ONCE,
    event_packet,
    event_packet_in_parts,
    position_packet,
    position_tail,
    position_update,
)
from telemed.estimate import WaitEstimate, WaitKind
from telemed.waiting_room import Position, Positions
from tests.conftest import free_port

CASES: list[tuple[str, dict[str, Any]]] = [
    ("position", {"visit_id": "v-1", "position": 3, "wait": "range", "wait_low_s": 300, "wait_high_s": 900,
                  "eta_s": 540, "doctors_on_duty": 2, "doctors_free": 0, "version": 17}),
    ("queue", {"clinic": "c1", "queue": [{"name": "Zoë Ødegård 患者", "note": 'a "quoted" \\ line\n'}],
               "in_visit": [], "doctors": [], "version": 0, "ratio": 0.25, "none": None, "flag": True}),
    ("empty", {}),
]


@pytest.fixture
async def server() -> AsyncIterator[tuple[socketio.AsyncServer, str]]:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"])
    connected: list[str] = []
    sio.on("connect", lambda sid, environ: connected.append(sid), namespace=NAMESPACE)
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield sio, f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    await sio.shutdown()
    await runner.cleanup()


async def test_event_packet_is_what_python_socketio_emits(server: tuple[socketio.AsyncServer, str]) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str()
        assert opened.startswith("0")
        eio_sid = json.loads(opened[1:])["sid"]
        await ws.send_str(f"40{NAMESPACE},")
        joined = await ws.receive_str()
        assert joined.startswith(f"40{NAMESPACE},")
        sid = json.loads(joined[len(f"40{NAMESPACE},"):])["sid"]
        for event, data in CASES:
            ours = event_packet(event, data)
            assert isinstance(ours, str)
            await sio.emit(event, data, to=sid, namespace=NAMESPACE)
            emitted = await ws.receive_str()
            await sio.eio.send(eio_sid, ours)  # how the notifier sends it
            sent = await ws.receive_str()
            assert sent.encode() == emitted.encode() == b"4" + ours.encode()  # engine.io MESSAGE + the packet
            decoded = socketio.packet.Packet(encoded_packet=ours)
            assert (decoded.packet_type, decoded.namespace, decoded.data) == (socketio.packet.EVENT, NAMESPACE, [event, data])


@pytest.mark.parametrize("kind", list(WaitKind))
def test_position_packet_is_the_event_packet_of_the_update(kind: WaitKind) -> None:
    wait = WaitEstimate(kind, 0 if kind is not WaitKind.RANGE else 3600, 5400, 4321)
    for doctors, free, version in ((0, 0, 0), (3, 1, 17), (120, 0, 10**12)):
        positions = Positions(version=version, length=5000, doctors=doctors, free=free, places=[])
        for p in (Position("0123456789abcdef0123456789abcdef", 1, wait), Position("v-\u00e9\"x", 4999, wait)):
            update = position_update(p, positions)
            assert position_packet(p, position_tail(positions)) == event_packet("position", update)
            assert set(update) == set(CASES[0][1])  # the fields the pages read


@pytest.mark.parametrize("rows", [0, 1, 249, 250, 251, 1000])
async def test_a_long_queue_encoded_in_parts_is_the_event_packet(rows: int) -> None:
    pauses: list[None] = []

    async def pause() -> None:
        pauses.append(None)

    snapshot = {**CASES[1][1], "queue": [{"visit_id": f"v{i}", "name": "Zoë 患者", "position": i + 1, "online": i % 2 == 0,
                                           "acuity": None, "at": 1.5 * i} for i in range(rows)], "staff": [{"sub": "n"}]}
    assert await event_packet_in_parts("queue", snapshot, "queue", pause) == event_packet("queue", snapshot)
    assert len(pauses) == -(-rows // STAFF_ROWS_AT_ONCE)  # one pause before each part
