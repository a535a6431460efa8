"""Who may use each HTTP route (visits, queue, revocation, admin console, charts,
invitations), against a real node and Redis; the socket table is in test_authz.py."""

from __future__ import annotations

import asyncio

import jwt
import pytest
import redis.asyncio as aioredis

from telemed import keys
from telemed.tokens import Role
from tests.authz_world import (
    CHECK_IN,
    MISSING_VISIT,
    Connect,
    World,
    assert_refused_by_namespace,
    http,
    refusal,
    staff_token,
)
from tests.conftest import SECRET, create_visit, token

# -- HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "body_clinic", "status"),
    [
        ((Role.NURSE, "c1"), None, 201),
        ((Role.DOCTOR, "c1"), None, 201),
        ((Role.ADMIN, "c1"), None, 201),
        ((Role.NURSE, "c1"), "c1", 201),
        ((Role.NURSE, "c1"), "c2", 403),
        ((Role.ADMIN, "c1"), "c2", 403),
        ((Role.NURSE, "c2"), "c1", 403),
        ((Role.PATIENT, "c1"), None, 403),
        (None, None, 401),
    ],
    ids=lambda v: "-".join(x.value if isinstance(x, Role) else str(x) for x in v) if isinstance(v, tuple) else str(v),
)
async def test_http_create_visit(node: str, redis: aioredis.Redis, who: tuple[Role, str] | None, body_clinic: str | None, status: int) -> None:
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, who[1]))
    else:
        tok = staff_token(*who)
    before = set(await redis.keys(keys.visit("*")))
    body = {"reason": "rash"} | ({"clinic": body_clinic} if body_clinic else {})
    got, data = await http("POST", f"{node}/api/visits", tok, body)
    assert got == status, data
    after = set(await redis.keys(keys.visit("*")))
    if status == 201:
        claims = jwt.decode(data["patient_link"].split("#t=", 1)[1], SECRET.reveal(), algorithms=["HS256"])
        assert claims["clinic"] == "c1"  # the caller's clinic
        assert claims["visit"] == data["visit_id"] and claims["role"] == "patient"
        assert after - before == {keys.visit(data["visit_id"])}
    else:
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        assert after == before  # nothing created


@pytest.mark.parametrize(
    ("role", "tok_clinic", "url_clinic", "status"),
    [
        (Role.NURSE, "c1", "c1", 200),
        (Role.DOCTOR, "c1", "c1", 200),
        (Role.ADMIN, "c1", "c1", 200),
        (Role.NURSE, "c1", "c2", 403),
        (Role.DOCTOR, "c1", "c2", 403),
        (Role.ADMIN, "c1", "c2", 403),
        (Role.PATIENT, "c1", "c1", 403),
        (None, "c1", "c1", 401),
    ],
)
async def test_http_get_queue(node: str, connect: Connect, role: Role | None, tok_clinic: str, url_clinic: str, status: int) -> None:
    world = World(node, connect)
    own = await world.bring("own", "waiting")
    await world.bring("other", "waiting")
    tok = None if role is None else world.patient_token() if role is Role.PATIENT else staff_token(role, tok_clinic)
    got, data = await http("GET", f"{node}/api/clinics/{url_clinic}/queue", tok)
    assert got == status, data
    if status == 200:
        assert data["clinic"] == "c1" and [v["visit_id"] for v in data["queue"]] == [own]
    else:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


@pytest.mark.parametrize(
    ("role", "target", "status"),
    [
        (Role.PATIENT, "own", 200),
        (Role.PATIENT, "same", 403),
        (Role.PATIENT, "other", 403),
        (Role.PATIENT, "missing", 403),
        (Role.NURSE, "own", 200),
        (Role.DOCTOR, "same", 200),
        (Role.ADMIN, "own", 200),
        (Role.NURSE, "other", 403),
        (Role.DOCTOR, "other", 403),
        (Role.ADMIN, "other", 403),
        (Role.NURSE, "missing", 404),
        (None, "own", 401),
    ],
)
async def test_http_get_visit(node: str, connect: Connect, role: Role | None, target: str, status: int) -> None:
    world = World(node, connect)
    await world.visit("own")
    visit_id = MISSING_VISIT if target == "missing" else await world.bring(target, "waiting")
    tok = None if role is None else world.actor_token(role)
    got, data = await http("GET", f"{node}/api/visits/{visit_id}", tok)
    assert got == status, data
    if status == 200:
        assert data["visit"]["visit_id"] == visit_id and data["visit"]["state"] == "waiting"
        # The patient sees the patient view only; staff the staff view.
        assert ("patient_name" in data["visit"]) is (role is not Role.PATIENT)
    else:
        assert set(data) == {"error"}
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden", 404: "not_found"}[status]


@pytest.mark.parametrize(
    ("revoker", "status"),
    [
        ((Role.ADMIN, "c1"), 200),
        ((Role.ADMIN, "c2"), 403),
        ((Role.NURSE, "c1"), 403),
        ((Role.DOCTOR, "c1"), 403),
        ((Role.PATIENT, "c1"), 403),
        (None, 401),
    ],
    ids=["admin-own-clinic", "admin-other-clinic", "nurse", "doctor", "patient", "no-token"],
)
async def test_http_revoke_permissions(node: str, connect: Connect, revoker: tuple[Role, str] | None, status: int) -> None:
    target = token(Role.NURSE, "c1", sub="n9")
    if revoker is None:
        tok = None
    elif revoker[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, "c1"))
    else:
        tok = token(revoker[0], revoker[1], sub="someone")
    got, data = await http("POST", f"{node}/api/tokens/revoke", tok, {"token": target})
    assert got == status, data
    jti = jwt.decode(target, options={"verify_signature": False})["jti"]
    if status == 200:
        assert data == {"revoked": jti}
        await assert_refused_by_namespace(node, {"token": target}, ["/queue"], "unauthorized")
    else:
        assert data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        # The target is untouched: it still connects.
        peer = await connect(node, target, namespaces=["/queue"])
        await peer.ok("/queue", "get_queue")


async def test_revoked_token_is_refused_everywhere(node: str, connect: Connect) -> None:
    admin = token(Role.ADMIN, "c1", sub="a1")
    nurse_token = token(Role.NURSE, "c1", sub="n1")
    nurse = await connect(node, nurse_token, namespaces=["/queue", "/chat"])
    await nurse.ok("/queue", "get_queue")
    assert (await http("GET", f"{node}/api/clinics/c1/queue", nurse_token))[0] == 200

    got, data = await http("POST", f"{node}/api/tokens/revoke", admin, {"token": nurse_token})
    assert got == 200, data

    # The open socket: its next event is refused, and the server then closes it.
    reply = await nurse.call("/queue", "get_queue")
    assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", reply
    for _ in range(100):
        if "/queue" not in nurse.sio.namespaces:
            break
        await asyncio.sleep(0.02)
    assert "/queue" not in nurse.sio.namespaces
    # Every namespace checks on every event, not only the one that noticed first.
    reply = await nurse.call("/chat", "history", {"visit_id": MISSING_VISIT})
    assert reply["error"]["code"] == "unauthorized", reply

    # A new connection, and HTTP, are refused.
    await assert_refused_by_namespace(node, {"token": nurse_token}, ["/queue", "/chat"], "unauthorized")
    got, data = await http("GET", f"{node}/api/clinics/c1/queue", nurse_token)
    assert (got, data["error"]["code"]) == (401, "unauthorized")

    # Revocation is per token: the same person with a new token is unaffected.
    fresh = await connect(node, token(Role.NURSE, "c1", sub="n1"), namespaces=["/queue"])
    await fresh.ok("/queue", "get_queue")


async def test_revoked_patient_link(node: str, connect: Connect) -> None:
    visit_id, patient_token = await create_visit(node, token(Role.NURSE, "c1"))
    patient = await connect(node, patient_token, namespaces=["/queue"])
    got, _ = await http("POST", f"{node}/api/tokens/revoke", token(Role.ADMIN, "c1"), {"token": patient_token})
    assert got == 200
    reply = await patient.call("/queue", "check_in", CHECK_IN)
    assert reply["error"]["code"] == "unauthorized", reply
    await assert_refused_by_namespace(node, {"token": patient_token}, ["/queue"], "unauthorized")
    assert (await http("GET", f"{node}/api/visits/{visit_id}", patient_token))[0] == 401


async def test_revoke_of_a_malformed_token_is_a_bad_request(node: str) -> None:
    got, data = await http("POST", f"{node}/api/tokens/revoke", token(Role.ADMIN, "c1"), {"token": "not-a-jwt"})
    assert (got, data["error"]["code"]) == (400, "bad_request"), (got, data)


#: The admin console's routes: (method, path under /api/clinics/<clinic>/, body).
ADMIN_ROUTES = {
    "get-settings": ("GET", "settings", None),
    "put-settings": ("PUT", "settings", {"walk_in": True}),
    "get-sessions": ("GET", "sessions", None),
    "sign-out": ("POST", "sessions/{jti}/sign-out", None),
    "get-audit": ("GET", "audit", None),
}


@pytest.mark.parametrize("route", sorted(ADMIN_ROUTES))
@pytest.mark.parametrize(
    ("who", "url_clinic", "status"),
    [
        ((Role.ADMIN, "c1"), "c1", 200),
        ((Role.ADMIN, "c2"), "c1", 403),
        ((Role.ADMIN, "c1"), "c2", 403),
        ((Role.NURSE, "c1"), "c1", 403),
        ((Role.DOCTOR, "c1"), "c1", 403),
        ((Role.PATIENT, "c1"), "c1", 403),
        (None, "c1", 401),
    ],
    ids=["admin-own", "admin-of-c2", "admin-url-c2", "nurse", "doctor", "patient", "no-token"],
)
async def test_http_admin_console(
    node: str, connect: Connect, redis: aioredis.Redis, route: str, who: tuple[Role, str] | None, url_clinic: str, status: int
) -> None:
    """Admin of the clinic only; nothing changes for anyone else."""
    method, path, body = ADMIN_ROUTES[route]
    target = token(Role.NURSE, "c1", sub="n9")
    await connect(node, target, namespaces=["/queue"])  # a live session to sign out
    jti = jwt.decode(target, options={"verify_signature": False})["jti"]
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, "c1"))
    else:
        tok = staff_token(*who)
    got, data = await http(method, f"{node}/api/clinics/{url_clinic}/{path.format(jti=jti)}", tok, body)
    assert got == status, data
    changed = bool(await redis.hgetall(keys.clinic_settings("c1"))) or bool(await redis.exists(keys.revoked(jti)))
    assert changed is (status == 200 and method != "GET"), data
    if status != 200:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]




@pytest.mark.parametrize(
    "origin", ["http://evil.test", "https://clinic.test", "http://clinic.test.evil.test", "http://clinic.test:8080", "null"]
)
async def test_foreign_origin_is_refused(node: str, connect: Connect, origin: str) -> None:
    tok = staff_token(Role.NURSE)
    errors = await refusal(node, {"token": tok}, ["/queue"], origin=origin)
    # Refused at the handshake, before any namespace: no namespace-level reason.
    assert list(errors) == ["/queue"] and not isinstance(errors["/queue"], dict), errors
    # The same token from the allowed origin connects (so the origin is the reason).
    peer = await connect(node, tok, namespaces=["/queue"])
    await peer.ok("/queue", "get_queue")


@pytest.mark.parametrize(
    ("who", "status", "listed"),
    [
        ((Role.NURSE, "c1"), 200, True),
        ((Role.DOCTOR, "c1"), 200, True),
        ((Role.ADMIN, "c1"), 200, True),
        ((Role.NURSE, "c2"), 200, False),  # their own clinic's list: without c1's chart
        ((Role.DOCTOR, "c2"), 200, False),
        ((Role.PATIENT, "c1"), 403, False),
        (None, 401, False),
    ],
    ids=["nurse", "doctor", "admin", "nurse-other-clinic", "doctor-other-clinic", "patient", "no-token"],
)
async def test_http_chart_list(node: str, redis: aioredis.Redis, who: tuple[Role, str] | None, status: int, listed: bool) -> None:
    from telemed.chart.index import ChartList

    await ChartList(redis).add({"id": "v-listed", "clinic": "c1", "state": "ended", "participants": [], "times": {"created": 1.0}})
    if who is None:
        tok = None
    elif who[0] is Role.PATIENT:
        _, tok = await create_visit(node, token(Role.NURSE, who[1]))
    else:
        tok = staff_token(*who)
    got, data = await http("GET", f"{node}/api/charts", tok)
    assert got == status, data
    if status == 200:
        assert [c["visit_id"] for c in data["charts"]] == (["v-listed"] if listed else [])
    else:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]


# -- invitations: the expected list, cancel, a fresh link ------------------------------------------------


@pytest.mark.parametrize(
    ("route", "role", "target", "status"),
    [
        (route, role, target, status)
        for route in ("expected", "cancel", "resend")
        for role, target, status in [
            (Role.NURSE, "own", 200),
            (Role.DOCTOR, "own", 200),
            (Role.ADMIN, "own", 200),
            (Role.NURSE, "other", 403),
            (Role.DOCTOR, "other", 403),
            (Role.ADMIN, "other", 403),
            (Role.PATIENT, "own", 403),
            (None, "own", 401),
        ]
    ],
    ids=lambda v: v.value if isinstance(v, Role) else str(v),
)
async def test_http_invitations(node: str, connect: Connect, redis: aioredis.Redis, route: str, role: Role | None, target: str, status: int) -> None:
    world = World(node, connect)
    own = await world.visit("own")
    other = await world.visit("other")
    visit_id = own if target == "own" else other
    tok = None if role is None else world.actor_token(role)
    before = await redis.hgetall(keys.visit(visit_id))
    if route == "expected":
        got, data = await http("GET", f"{node}/api/clinics/{'c1' if target == 'own' else 'c2'}/expected", tok)
    else:
        got, data = await http("POST", f"{node}/api/visits/{visit_id}/{route}", tok, {})
    assert got == status, data
    if status != 200:
        assert set(data) == {"error"} and data["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
        assert await redis.hgetall(keys.visit(visit_id)) == before  # nothing changed
    elif route == "expected":
        assert [v["visit_id"] for v in data["expected"]] == [own]
    elif route == "cancel":
        assert data["visit"]["state"] == "ended" and data["visit"]["end_reason"] == "cancelled"
    else:
        assert jwt.decode(data["patient_link"].split("#t=", 1)[1], SECRET.reveal(), algorithms=["HS256"])["visit"] == own
