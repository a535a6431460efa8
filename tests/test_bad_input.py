import asyncio, logging, time, uuid
import jwt, pytest, socketio
from hypothesis import given, settings, strategies as st, HealthCheck
from telemed.tokens import Role
from tests.conftest import ORIGIN, SECRET, create_visit, token
from tests.peer import Peer, client_id

async def try_connect(node, tok, origin=ORIGIN, ns=("/queue",)):
    p = Peer(node, tok, origin=origin, namespaces=list(ns))
    errs = []
    p.sio.on("connect_error", lambda n, *d: errs.append((n, d)), namespace="*")
    try:
        await p.connect()
        await p.close()
        return "connected", errs
    except Exception as e:
        h = p.sio.eio.http
        if h and not h.closed:
            await h.close()
        return repr(e), errs

async def test_explore(node, connect, redis, caplog):
    now = int(time.time())
    base = {"sub": "n1", "name": "N", "role": "nurse", "clinic": "c1\n", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    t = jwt.encode(base, SECRET.reveal(), algorithm="HS256")
    print(await try_connect(node, t))
    print(await try_connect(node, token(Role.NURSE), origin="http://evil.test"))
    print(await try_connect(node, token(Role.NURSE), origin=None))
    print(await try_connect(node, token(Role.ADMIN), ns=("/queue", "/chat")))
    nurse = await connect(node, token(Role.NURSE, sub="n1"))
    loop = asyncio.get_running_loop()
    seen = []
    @settings(max_examples=30, deadline=None, database=None)
    @given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=5))
    def fuzz(payload):
        r = asyncio.run_coroutine_threadsafe(nurse.call("/queue", "triage", payload), loop).result(5)
        seen.append(r["error"]["code"])
    t0 = time.time()
    await asyncio.to_thread(fuzz)
    print(time.time() - t0, set(seen), len(seen))
    t0 = time.time()
    for i in range(10):
        vid, ptok = await create_visit(node, token(Role.NURSE))
        p = await connect(node, ptok)
    print("10 visits+patients", time.time() - t0)
