"""The chart browser's routes: the list (index written when the chart is;
filters, name search, paging), integrity, links with tickets, the zip; who
may use them (staff of the clinic; another clinic's nurse gets nothing,
patients nothing) and the audit trail of every read."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from yarl import URL

from telemed import chart, keys
from telemed.audit import verify as verify_audit
from telemed.chart.index import ChartList
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import create_visit, token
from tests.peer import client_id
from tests.test_chart import wait_until

NAME = "Ji-woo Han"
SECRET_TEXT = "my chest hurts at night"


async def get(node: str, path: str, tok: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    sent = dict(headers or {}) | ({"Authorization": f"Bearer {tok}"} if tok else {})
    async with aiohttp.ClientSession() as http:
        async with http.get(URL(f"{node}{path}", encoded=True), headers=sent) as r:
            return r.status, await r.read(), dict(r.headers)


async def get_json(node: str, path: str, tok: str | None) -> tuple[int, Any]:
    status, body, _ = await get(node, path, tok)
    return status, json.loads(body)


@pytest.fixture
async def ended(node: str, connect: Any, settings: Settings) -> dict[str, Any]:
    """A real visit with chat, ended by the nurse; its chart written and sealed."""
    nurse = await connect(node, token(Role.NURSE, sub="n1"), namespaces=["/queue", "/chat"])
    visit_id, ptok = await create_visit(node, token(Role.NURSE), patient_name=NAME)
    patient = await connect(node, ptok, namespaces=["/queue", "/chat"])
    await patient.ok("/queue", "check_in", {"reason": "chest pain", "consent_visit": True, "consent_recording": False})
    await patient.ok("/chat", "send", {"visit_id": visit_id, "client_id": client_id(), "text": SECRET_TEXT})
    await nurse.ok("/queue", "end", {"visit_id": visit_id})
    folder = settings.recordings_dir / "c1" / visit_id
    await wait_until(lambda: (folder / chart.MANIFEST).is_file(), 15, "the chart")
    return {"node": node, "visit": visit_id, "folder": folder, "patient": ptok}


def record(i: int, *, clinic: str = "c1", state: str = "ended", doctor: str = "d1", name: str | None = None) -> dict[str, Any]:
    """A ``visit.json`` as the node writes it (only what the index reads)."""
    return {
        "id": f"v{i:05d}", "clinic": clinic, "state": state, "end_reason": "completed", "acuity": 1 + i % 5,
        "participants": [{"role": "patient", "sub": f"p{i}", "name": name or f"Patient {i:05d}"},
                         {"role": "doctor", "sub": doctor, "name": {"d1": "Dr Ada Byrne", "d2": "Dr Sam Okafor"}[doctor]}],
        "times": {"created": 1_700_000_000 + i * 60, "ended": 1_700_000_000 + i * 60 + 30},
    }


async def test_the_index_is_written_with_the_chart(ended: dict[str, Any], redis: aioredis.Redis, settings: Settings) -> None:
    node, visit_id = ended["node"], ended["visit"]
    stored = await ChartList(redis).get("c1", visit_id)
    assert stored is not None and stored["patient_name"] == NAME and stored["state"] == "ended"
    assert stored["ended_at"] == json.loads((ended["folder"] / chart.VISIT).read_text())["times"]["ended"]
    status, page = await get_json(node, "/api/charts", token(Role.DOCTOR, "c1"))
    assert status == 200 and [c["visit_id"] for c in page["charts"]] == [visit_id]
    assert page["charts"][0]["patient_name"] == NAME and page["total"] == 1 and page["pages"] == 1
    # Another clinic's nurse gets an empty list, patients and strangers nothing.
    status, other = await get_json(node, "/api/charts", token(Role.NURSE, "c2"))
    assert status == 200 and other["charts"] == [] and other["total"] == 0
    status, refused = await get_json(node, "/api/charts", ended["patient"])
    assert status in (401, 403) and NAME not in json.dumps(refused)
    _, other_patient = await create_visit(node, token(Role.NURSE, "c1"))
    status, refused = await get_json(node, "/api/charts", other_patient)
    assert status == 403 and refused["error"]["code"] == "forbidden"
    status, refused = await get_json(node, "/api/charts", None)
    assert status == 401
    records = [r for r in (json.loads(line) for line in settings.audit_path().read_text().splitlines()) if r["action"] in ("chart_list", "refused")]
    seen = {(r["action"], r["actor"]["role"], r["clinic"], r["code"]) for r in records}
    assert ("chart_list", "doctor", "c1", "") in seen and ("chart_list", "nurse", "c2", "") in seen
    assert ("refused", "patient", "c1", "forbidden") in seen


async def test_list_filters_search_and_pages(node: str, redis: aioredis.Redis, settings: Settings) -> None:
    index = ChartList(redis)
    for i in range(120):
        await index.add(record(i, state="ended" if i % 10 else "in_visit", doctor="d1" if i % 2 else "d2"))
    await index.add(record(500, name="Zoë Ångström"))
    await index.add(record(501, clinic="c2", name="Zoë Other"))
    nurse = token(Role.NURSE, "c1")
    status, first = await get_json(node, "/api/charts", nurse)
    assert status == 200 and first["total"] == 121 and first["pages"] == 3 and len(first["charts"]) == 50
    assert first["charts"][0]["visit_id"] == "v00500"  # newest first
    ended_times = [c["ended_at"] for c in first["charts"]]
    assert ended_times == sorted(ended_times, reverse=True)
    status, last = await get_json(node, "/api/charts?page=3", nurse)
    assert len(last["charts"]) == 21 and last["charts"][-1]["visit_id"] == "v00000"
    assert {d["name"] for d in first["doctors"]} == {"Dr Ada Byrne", "Dr Sam Okafor"}
    # Name search: any part of the name, any case; another clinic's patient is never found.
    status, found = await get_json(node, "/api/charts?q=" + URL.build(query={"q": "zoË"}).raw_query_string[2:], nurse)
    assert status == 200 and [c["patient_name"] for c in found["charts"]] == ["Zoë Ångström"]
    status, found = await get_json(node, "/api/charts?q=patient%200010", nurse)
    assert found["total"] == 10 and all("Patient 0010" in c["patient_name"] for c in found["charts"])
    status, found = await get_json(node, "/api/charts?state=in_visit&doctor=d2", nurse)
    assert found["total"] == 12 and all(c["state"] == "in_visit" and c["doctor"]["sub"] == "d2" for c in found["charts"])
    t0 = 1_700_000_000
    status, found = await get_json(node, f"/api/charts?from={t0 + 10 * 60}&to={t0 + 19 * 60 + 30}", nurse)
    assert [c["visit_id"] for c in found["charts"]] == [f"v{i:05d}" for i in range(19, 9, -1)]
    status, found = await get_json(node, f"/api/charts?from={t0 + 10 * 60}&q=patient&page=2&state=ended", nurse)
    assert found["total"] == 99 and found["page"] == 2 and len(found["charts"]) == 49
    # Bad input: plain words, no pattern.
    for query, words in [("page=0", "page number"), ("page=x", "page number"), ("state=gone", "state"),
                         ("doctor=../x", "doctor"), ("from=5&to=1", "start date is after"), ("sort=name", "filtered by"),
                         ("q=" + "x" * 121, "patient name")]:
        status, error = await get_json(node, f"/api/charts?{query}", nurse)
        assert status == 400 and words in error["error"]["message"], (query, error)
        assert "^" not in error["error"]["message"] and "pattern" not in error["error"]["message"]
    text = settings.audit_path().read_text()
    assert "Zo" not in text and "patient 001" not in text.lower()


async def test_integrity_links_and_zip(ended: dict[str, Any], settings: Settings, redis: aioredis.Redis) -> None:
    node, visit_id, folder = ended["node"], ended["visit"], ended["folder"]
    nurse = token(Role.NURSE, "c1", sub="n7")
    status, report = await get_json(node, f"/api/visits/{visit_id}/verify", nurse)
    assert status == 200 and report["ok"] and report["files"] >= 3 and report["problems"] == []
    # The zip: every chart file and the manifest, byte for byte.
    status, body, headers = await get(node, f"/api/visits/{visit_id}/zip", nurse)
    assert status == 200 and headers["Content-Type"] == "application/zip" and "attachment" in headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(f"{visit_id}/{n}" for n in [*chart.chart_files(folder), chart.MANIFEST])
    for name in archive.namelist():
        assert archive.read(name) == (folder / name.split("/", 1)[1]).read_bytes(), name
    # A link plays one file without the token (ranges too), and nothing else.
    status, made = await get_json(node, f"/api/visits/{visit_id}/links/chat.jsonl", nurse)
    assert status == 200 and made["url"].startswith(f"/api/visits/{visit_id}/files/chat.jsonl?ticket=")
    status, body, _ = await get(node, made["url"])
    assert status == 200 and body == (folder / chart.CHAT).read_bytes()
    status, part, _ = await get(node, made["url"], headers={"Range": "bytes=0-4"})
    assert status == 206 and part == body[:5]
    ticket = made["url"].split("ticket=", 1)[1]
    status, _, _ = await get(node, f"/api/visits/{visit_id}/files/visit.json?ticket={ticket}")
    assert status == 401  # another file of the chart
    status, _, _ = await get(node, f"/api/visits/{visit_id}/zip?ticket={ticket}")
    assert status == 401
    status, _, _ = await get(node, f"/api/visits/{visit_id}/files/chat.jsonl?ticket={ticket[:-3]}abc")
    assert status == 401
    status, zipped = await get_json(node, f"/api/visits/{visit_id}/links/chart.zip", nurse)
    status, body, _ = await get(node, zipped["url"])
    assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    status, _ = await get_json(node, f"/api/visits/{visit_id}/links/missing.webm", nurse)
    assert status == 404
    # Another clinic's staff get no link; a revoked token's tickets die with it.
    status, _ = await get_json(node, f"/api/visits/{visit_id}/links/chat.jsonl", token(Role.ADMIN, "c2"))
    assert status == 404
    jti = __import__("jwt").decode(nurse, options={"verify_signature": False})["jti"]
    await redis.set(keys.revoked(jti), "1", ex=3600)
    status, _, _ = await get(node, made["url"])
    assert status == 401
    # A changed file shows in the integrity report.
    with open(folder / chart.CHAT, "ab") as f:
        f.write(b'{"changed": true}\n')
    status, report = await get_json(node, f"/api/visits/{visit_id}/verify", token(Role.DOCTOR, "c1", sub="d9"))
    assert status == 200 and not report["ok"] and [(p["name"], p["kind"]) for p in report["problems"]] == [("chat.jsonl", "changed")]
    # Every read is audited, without health data.
    path = settings.audit_path()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    seen = {(r["action"], r["actor"]["role"], r["actor"]["sub"], r["target"]) for r in records if r["visit"] == visit_id}
    assert {("chart_verify", "nurse", "n7", "ok"), ("export", "nurse", "n7", "zip"),
            ("chart_link", "nurse", "n7", "chat.jsonl"), ("file_download", "nurse", "n7", "chat.jsonl"),
            ("chart_verify", "doctor", "d9", "problems")} <= seen
    refused = [r for r in records if r["visit"] == visit_id and r["action"] == "refused" and r["target"] == "file_download"]
    assert len(refused) >= 3 and all(r["code"] == "unauthorized" for r in refused)
    text = path.read_text()
    assert NAME not in text and SECRET_TEXT not in text and "chest pain" not in text
    assert verify_audit(path).ok


ROUTES = ["verify", "zip", "links/visit.json", "links/chart.zip"]

#: (who, expected status) for a chart of clinic c1 (default deny).
WHO = [("nurse-c1", 200), ("doctor-c1", 200), ("admin-c1", 200), ("nurse-c2", 404), ("doctor-c2", 404),
       ("admin-c2", 404), ("patient-own", 401), ("patient-other", 403), ("none", 401)]


async def test_who_may_use_the_browser_routes(ended: dict[str, Any]) -> None:
    node, visit_id = ended["node"], ended["visit"]
    _, other_patient = await create_visit(node, token(Role.NURSE, "c1"))
    tokens = {f"{r.value}-{c}": token(r, c) for r in (Role.NURSE, Role.DOCTOR, Role.ADMIN) for c in ("c1", "c2")}
    tokens |= {"patient-own": ended["patient"], "patient-other": other_patient}
    table = []
    for who, _ in WHO:
        for route in ROUTES:
            status, body, _ = await get(node, f"/api/visits/{visit_id}/{route}", tokens.get(who))
            table.append((who, route, status))
            if status != 200:
                assert NAME.encode() not in body and SECRET_TEXT.encode() not in body
    assert table == [(who, route, expected) for who, expected in WHO for route in ROUTES]


async def test_a_node_indexes_charts_written_before_the_index(start_node: Any, redis: aioredis.Redis, settings: Settings) -> None:
    """Charts on disk with no list in Redis (written before the index existed,
    or Redis lost its data) are listed once a node starts."""
    for i in range(3):
        where = chart.visit_folder(settings.recordings_dir, "c1", f"v{i:05d}")
        chart.write_json(where / chart.VISIT, record(i))
    (settings.recordings_dir / "c1" / "not-a-chart").mkdir()
    node = await start_node()
    nurse = token(Role.NURSE, "c1")

    async def listed() -> int:
        return int((await get_json(node, "/api/charts", nurse))[1]["total"])

    async def all_listed() -> bool:
        return await listed() == 3

    assert await wait_until(all_listed, 10, "the three old charts listed")
    assert await listed() == 3
