import asyncio, logging
import pytest, socketio
from telemed.tokens import Role
from tests.conftest import ORIGIN, create_visit, token
from tests.peer import Peer, client_id

async def test_explore(node, connect, redis, caplog):
    nurse = await connect(node, token(Role.NURSE, sub="n1"))
    vid, ptok = await create_visit(node, token(Role.NURSE))
    p = await connect(node, ptok)
    print(await p.call("/queue", "check_in", {"reason": "\ud800", "consent_visit": True, "consent_recording": True}))
    print(await p.call("/queue", "check_in", {"reason": "x", "consent_visit": True, "consent_recording": True}))
    for after in ["99999999999999999999-0", "18446744073709551615-18446744073709551615", "18446744073709551615-0", "0-0"]:
        print(after, await nurse.call("/chat", "history", {"visit_id": vid, "after": after}))
    print(await nurse.call("/queue", "triage", {"visit_id": vid, "acuity": 2.0}))
    print(await nurse.call("/queue", "triage", {"visit_id": vid, "note": "\udfff"}))
    print(await nurse.call("/queue", "get_visit", {"visit_id": vid + "\n"}))
    print(await nurse.call("/queue", "get_queue", [1, 2]))
    print(await nurse.call("/queue", "get_queue", (1, 2)))
    print(await nurse.call("/queue", "get_queue", b"abc"))
    try:
        print("disc", await nurse.call("/queue", "disconnect", {}))
    except Exception as e:
        print("disc exc", repr(e))
    print(await nurse.call("/queue", "get_queue", {}))
    try:
        print("conn", await nurse.call("/chat", "connect", {}))
    except Exception as e:
        print("conn exc", repr(e))
    await asyncio.sleep(0.3)
    print(await nurse.call("/chat", "history", {"visit_id": vid}))
    bad = Peer(node, "garbage", origin=ORIGIN, namespaces=["/queue"])
    errs = []
    bad.sio.on("connect_error", lambda ns, *d: errs.append((ns, d)), namespace="*")
    try:
        await bad.connect()
    except Exception as e:
        print(repr(e), errs)
    for r in caplog.records:
        if r.levelno >= logging.WARNING:
            print("LOG", r.name, r.levelname, r.getMessage()[:200])
