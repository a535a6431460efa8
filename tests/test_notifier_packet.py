"""The waiting room's ready-made packets (signaling/notifier.py ``event_packet``)
are what python-socketio's own emit sends: a real Socket.IO server on a free
port, a raw engine.io websocket as the client, the same event sent both ways and
the frames compared byte for byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web

from signaling.notifier import NAMESPACE, event_packet
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
