"""Who may read a chart over HTTP: staff of the visit's clinic, nobody else
(default deny); file names that try to leave the folder are 404, whatever the
encoding; every read and refusal is in the audit trail, which verifies and
holds no health data."""

from __future__ import annotations

import json
import os
from typing import Any

import aiohttp
import pytest
from yarl import URL

from telemed import chart
from telemed.audit import verify as verify_audit
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import client_id
from tests.test_chart import wait_until

NAME = "Ji-woo Han"
SECRET_TEXT = "my chest hurts at night"

ROUTES = ["chart", "fhir", "files/visit.json", "files/chat.jsonl", "files/snapshots/s1.jpg"]

#: (who, expected status): the clinic is c1.
WHO = [
    ("nurse-c1", 200),
    ("doctor-c1", 200),
    ("admin-c1", 200),
    ("nurse-c2", 404),
    ("doctor-c2", 404),
    ("admin-c2", 404),
    ("patient-own", 401),  # a patient's link dies with the visit

    ("patient-other", 403),
    ("none", 401),
    ("garbage", 401),
]

TRAVERSALS = [
    "files/../visit.json",
    "files/..%2f..%2fc2%2fv%2fvisit.json",
    "files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "files/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "files//etc/passwd",
    "files/%2fetc%2fpasswd",
    "files/snapshots/../../../../../../etc/passwd",
    "files/snapshots/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "files/evil.json",  # a symlink to /etc/passwd inside the folder
    "files/linked/passwd",  # a symlinked folder
    "files/.chart.lock",
    "files/snapshots",
    "files/a/b/c.json",
    "files/missing.json",
]


@pytest.fixture
async def sealed(node: str, connect: Any, settings: Settings) -> dict[str, Any]:
    """A finished visit (real clients, no media) with its chart sealed, plus
    a snapshot file and two hostile symlinks planted in its folder."""
    nurse = await connect(node, token(Role.NURSE, sub="n1"), namespaces=["/queue", "/chat"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE), patient_name=NAME)
    patient = await connect(node, ptok, namespaces=["/queue", "/chat"])
    await patient.ok("/queue", "check_in", {"reason": "chest pain", "consent_visit": True, "consent_recording": False})
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": SECRET_TEXT})
    await nurse.ok("/queue", "end", {"visit_id": visit_id})
    folder = settings.recordings_dir / "c1" / visit_id
    await wait_until(lambda: (folder / chart.MANIFEST).is_file(), 15, "the chart")
    (folder / "snapshots").mkdir()
    (folder / "snapshots" / "s1.jpg").write_bytes(b"\xff\xd8jpeg")
    os.symlink("/etc/passwd", folder / "evil.json")
    os.symlink("/etc", folder / "linked")
    other_visit, other_ptok = await create_visit(node, token(Role.NURSE))
    tokens = {
        "nurse-c1": token(Role.NURSE, "c1"),
        "doctor-c1": token(Role.DOCTOR, "c1"),
        "admin-c1": token(Role.ADMIN, "c1"),
        "nurse-c2": token(Role.NURSE, "c2"),
        "doctor-c2": token(Role.DOCTOR, "c2"),
        "admin-c2": token(Role.ADMIN, "c2"),
        "patient-own": ptok,
        "patient-other": other_ptok,
        "garbage": "not.a.token",
    }
    return {"node": node, "visit": visit_id, "folder": folder, "tokens": tokens}


async def get(node: str, path: str, tok: str | None) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(URL(f"{node}{path}", encoded=True), headers=headers) as r:
            return r.status, await r.read(), dict(r.headers)


async def test_only_staff_of_the_visits_clinic_read_its_chart(sealed: dict[str, Any], settings: Settings) -> None:
    table = []
    for who, _ in WHO:
        for route in ROUTES:
            status, body, headers = await get(sealed["node"], f"/api/visits/{sealed['visit']}/{route}", sealed["tokens"].get(who))
            table.append((who, route, status))
            if status != 200:
                error = json.loads(body)["error"]
                assert error["code"] in {"forbidden", "not_found", "unauthorized"}, (who, route, error)
                assert SECRET_TEXT.encode() not in body and NAME.encode() not in body
    assert table == [(who, route, expected) for who, expected in WHO for route in ROUTES]


async def test_what_staff_get(sealed: dict[str, Any]) -> None:
    nurse = sealed["tokens"]["nurse-c1"]
    status, body, headers = await get(sealed["node"], f"/api/visits/{sealed['visit']}/chart", nurse)
    doc = json.loads(body)
    assert status == 200 and doc["sealed"] and doc["visit"]["id"] == sealed["visit"]
    names = {f["name"] for f in doc["files"]}
    assert {"visit.json", "chat.jsonl", "fhir.json", "manifest.json", "snapshots/s1.jpg"} <= names
    assert "evil.json" not in names and not any(n.startswith(".") or n.startswith("linked") for n in names)
    assert headers["Cache-Control"] == "no-store"
    status, body, headers = await get(sealed["node"], f"/api/visits/{sealed['visit']}/files/chat.jsonl", nurse)
    assert status == 200 and SECRET_TEXT in body.decode()
    assert body == (sealed["folder"] / "chat.jsonl").read_bytes()
    status, body, headers = await get(sealed["node"], f"/api/visits/{sealed['visit']}/fhir", nurse)
    assert status == 200 and headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(body)["resourceType"] == "Bundle"
    status, body, headers = await get(sealed["node"], f"/api/visits/{sealed['visit']}/files/snapshots/s1.jpg", nurse)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and body == b"\xff\xd8jpeg"


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_names_that_leave_the_folder_are_not_found(sealed: dict[str, Any], path: str) -> None:
    status, body, _ = await get(sealed["node"], f"/api/visits/{sealed['visit']}/{path}", sealed["tokens"]["admin-c1"])
    assert status == 404, (path, status, body[:200])
    assert b"root:" not in body


async def test_a_visit_id_that_is_a_path_is_not_found(sealed: dict[str, Any]) -> None:
    for visit in ("..", "%2e%2e", "..%2fc2", ".audit"):
        status, body, _ = await get(sealed["node"], f"/api/visits/{visit}/files/audit.jsonl", sealed["tokens"]["admin-c1"])
        assert status == 404, visit
        assert b"chart_read" not in body


async def test_reads_and_refusals_are_audited_without_health_data(sealed: dict[str, Any], settings: Settings) -> None:
    visit = sealed["visit"]
    await get(sealed["node"], f"/api/visits/{visit}/chart", sealed["tokens"]["doctor-c1"])
    await get(sealed["node"], f"/api/visits/{visit}/files/chat.jsonl", sealed["tokens"]["doctor-c1"])
    await get(sealed["node"], f"/api/visits/{visit}/chart", sealed["tokens"]["patient-other"])
    await get(sealed["node"], f"/api/visits/{visit}/files/evil.json", sealed["tokens"]["nurse-c1"])
    path = settings.audit_path()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    seen = {(r["action"], r["outcome"], r["actor"]["role"], r["target"], r["code"]) for r in records if r["visit"] == visit}
    assert ("end", "ok", "nurse", "cancelled", "") in seen
    assert ("chart_read", "ok", "doctor", "", "") in seen
    assert ("file_download", "ok", "doctor", "chat.jsonl", "") in seen
    assert ("refused", "refused", "patient", "chart_read", "forbidden") in seen
    assert ("refused", "refused", "nurse", "file_download", "not_found") in seen
    text = path.read_text()
    assert NAME not in text and SECRET_TEXT not in text and "chest pain" not in text
    assert verify_audit(path).ok


async def test_a_flood_of_bad_tokens_is_cut_off_and_does_not_flood_the_audit(sealed: dict[str, Any], settings: Settings) -> None:
    path = settings.audit_path()
    before = len(path.read_text().splitlines())
    statuses = []
    for _ in range(settings.auth_failures_per_minute + 10):
        status, body, _ = await get(sealed["node"], f"/api/visits/{sealed['visit']}/chart", "not.a.token")
        statuses.append(status)
    assert statuses[: settings.auth_failures_per_minute] == [401] * settings.auth_failures_per_minute
    assert set(statuses[settings.auth_failures_per_minute:]) == {429}
    assert len(path.read_text().splitlines()) - before == settings.auth_failures_per_minute
    # The address is refused for a good token too until the window passes: staff on it wait a minute.
    status, _, _ = await get(sealed["node"], f"/api/visits/{sealed['visit']}/chart", sealed["tokens"]["nurse-c1"])
    assert status == 429


async def test_a_file_swapped_for_a_symlink_after_the_check_is_not_followed(tmp_path: Any, aiohttp_client: Any) -> None:
    """The file is opened without following symlinks, and the response reads the
    open file: a symlink swapped in between the check and the sending changes
    nothing. Ranges still work (media players ask for them)."""
    from aiohttp import web

    from signaling.chart_http import open_chart_file, serve_fd
    from telemed.exceptions import NotFound

    root = tmp_path / "recordings"
    where = root / "c1" / "v1"
    where.mkdir(parents=True)
    (where / "visit.json").write_bytes(b'{"the": "chart"}')
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"someone else's data")

    fd = open_chart_file(root, where, "visit.json")
    try:
        os.rename(where / "visit.json", where / ".moved")
        os.symlink(outside, where / "visit.json")  # the swap, after the check

        async def handler(request: web.Request) -> web.StreamResponse:
            return await serve_fd(request, fd, {"Content-Type": "application/json"})

        app = web.Application()
        app.router.add_get("/f", handler)
        client = await aiohttp_client(app)
        whole = await client.get("/f")
        assert (whole.status, await whole.read()) == (200, b'{"the": "chart"}')
        part = await client.get("/f", headers={"Range": "bytes=2-4"})
        assert (part.status, await part.read()) == (206, b"the")
    finally:
        os.close(fd)
    # Opened now, the symlink is refused, and so is a symlinked folder on the way.
    with pytest.raises(NotFound):
        open_chart_file(root, where, "visit.json")
    (where / "moved").write_bytes(b"{}")
    os.symlink(root / "c1", root / "c2")
    with pytest.raises(NotFound):
        open_chart_file(root, root / "c2" / "v1", "moved")
    os.close(open_chart_file(root, where, "moved"))  # the same file by its real path opens
    (where / "snapshots").mkdir()
    with pytest.raises(NotFound):  # a folder is not a file
        open_chart_file(root, where, "snapshots")
