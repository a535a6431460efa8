"""Writing a push straight to a socket (signaling/_fanout.py): the same frames
as engine.io's own path, in the order they were sent, and engine.io's queue
(and aiohttp's flow control) whenever the socket is busy or the client slow.
A real Socket.IO server on a free port; aiohttp websockets as raw clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as aiohttp_driver

from signaling import _engineio, _fanout
from signaling.notifier import NAMESPACE, event_packet
from tests.conftest import free_port

Server = tuple[socketio.AsyncServer, str]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"])
    _engineio.install()
    assert _fanout.install(sio.eio)
    sio.on("connect", lambda sid, environ: None, namespace=NAMESPACE)
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield sio, f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    await sio.shutdown()
    await runner.cleanup()


async def join(ws: aiohttp.ClientWebSocketResponse) -> str:
    """Open engine.io and the namespace; returns the engine.io sid."""
    opened = await ws.receive_str()
    assert opened.startswith("0")
    await ws.send_str(f"40{NAMESPACE},")
    assert (await ws.receive_str()).startswith(f"40{NAMESPACE},")
    return str(json.loads(opened[1:])["sid"])


async def idle(sio: socketio.AsyncServer, eio_sid: str) -> None:
    """Wait until the socket's writer waits on an empty queue (what makes a direct write safe)."""
    queue = sio.eio.sockets[eio_sid].queue
    while not (queue.empty() and any(not g.done() for g in queue._getters)):
        await asyncio.sleep(0.001)


def test_it_relies_on_the_source_it_was_checked_against() -> None:
    # An upgrade of python-engineio that changes these fails here: re-check
    # signaling/_fanout.py against the new code, then update REPLACES.
    assert _fanout.source_digests() == _fanout.REPLACES


def test_install_changes_only_that_servers_driver() -> None:
    one, other = socketio.AsyncServer(async_mode="aiohttp"), socketio.AsyncServer(async_mode="aiohttp")
    assert _fanout.install(one.eio)
    assert one.eio._async["websocket"] is _fanout._WebSocket
    assert other.eio._async["websocket"] is aiohttp_driver.WebSocket


@pytest.mark.parametrize("size", [10, 200, 100_000])
def test_frame_is_a_text_frame_of_the_engineio_message(size: int) -> None:
    packet = "2/queue," + json.dumps(["e", "x" * size])
    framed = _fanout.frame(packet)
    payload = ("4" + packet).encode()
    assert framed.endswith(payload)
    header = framed[: len(framed) - len(payload)]
    assert header[0] == 0x81  # FIN, text
    length = header[1] & 0x7F
    assert {2: length, 4: int.from_bytes(header[2:4], "big"), 10: int.from_bytes(header[2:10], "big")}[len(header)] == len(payload)


async def test_an_idle_socket_gets_the_frame_now_and_the_same_bytes_as_engineio_sends(server: Server) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        eio_sid = await join(ws)
        data = {"visit_id": "v-1", "position": 3, "note": "Zoë 患者 \"q\""}
        packet = event_packet("position", data)
        await sio.eio.send(eio_sid, packet)
        queued = await ws.receive_str()
        await idle(sio, eio_sid)
        assert _fanout.write_now(sio.eio, eio_sid, _fanout.frame(packet))
        direct = await ws.receive_str()
        assert direct.encode() == queued.encode() == ("4" + packet).encode()


async def test_a_busy_socket_keeps_the_order(server: Server) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        eio_sid = await join(ws)
        await idle(sio, eio_sid)
        packets = [event_packet("n", {"i": i}) for i in range(6)]
        await sio.eio.send(eio_sid, packets[0])  # queued: the writer has not run yet
        assert not _fanout.write_now(sio.eio, eio_sid, _fanout.frame(packets[1]))
        for packet in packets[1:]:
            await _fanout.send(sio.eio, eio_sid, packet)
        assert [await ws.receive_str() for _ in packets] == ["4" + p for p in packets]


async def test_a_client_that_does_not_keep_up_goes_through_the_queue_in_order(server: Server) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        eio_sid = await join(ws)
        await idle(sio, eio_sid)
        packets = [event_packet("n", {"i": i, "pad": "x" * 4000}) for i in range(2000)]  # ~8 MB: more than buffers hold
        direct = 0
        for packet in packets:  # the client reads nothing meanwhile
            framed = _fanout.frame(packet)
            if _fanout.write_now(sio.eio, eio_sid, framed):
                direct += 1
            else:
                await sio.eio.send(eio_sid, packet)
        assert 0 < direct < len(packets), "written directly until the buffers filled, then queued"
        received = [json.loads((await ws.receive_str())[len("42/queue,"):])[1]["i"] for _ in packets]
        assert received == list(range(len(packets)))


async def test_on_a_compressed_connection_only_small_messages_skip_compression(server: Server) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
        eio_sid = await join(ws)
        sent: list[str] = []
        for data in ({"small": 1}, {"large": "y" * 50_000}, {"small": 2}):
            await idle(sio, eio_sid)
            packet = event_packet("e", data)
            sent.append("4" + packet)
            written = _fanout.write_now(sio.eio, eio_sid, _fanout.frame(packet))
            assert written == ("small" in data)
            if not written:
                await sio.eio.send(eio_sid, packet)  # compressed by aiohttp
        assert [await ws.receive_str() for _ in sent] == sent


async def test_a_closed_socket_is_not_written(server: Server) -> None:
    sio, url = server
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(url)
        eio_sid = await join(ws)
        await idle(sio, eio_sid)
        socket = sio.eio.sockets[eio_sid]
        await ws.close()
        while not socket.closed:
            await asyncio.sleep(0.001)
        packet = event_packet("e", {})
        assert not _fanout.write_now(sio.eio, eio_sid, _fanout.frame(packet))
        await _fanout.send(sio.eio, eio_sid, packet)  # engine.io's path: a gone socket is skipped, no error
