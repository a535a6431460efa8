"""The chart over HTTP: ``GET /api/visits/{visit}/chart``, ``/files/{name}``, ``/fhir``.

Staff (nurse, doctor, admin) of the visit's clinic only; patients get nothing.
A chart is looked for in the caller's own clinic's folder only, so a visit of
another clinic is "not found", exactly like one that does not exist. File
names are checked before any path is built: one or two parts (``snapshots/x.jpg``)
of letters, digits, ``_ . -``, not starting with a dot; the resolved file must
be a regular file inside the folder with no symlink on the way. Anything
else is 404. Every read and every refusal is audited before the answer goes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from media.chart import visit_folder
from signaling._address import client_address
from signaling.http import HUB, bearer
from telemed import chart
from telemed.exceptions import Forbidden, NotFound, TelemedError, Unauthorized
from telemed.tokens import ID_PATTERN, Claims, Role

STAFF = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})

#: One part of a chart file name.
PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

#: Media players ask for ranges; JSON and text are small.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def _audit(request: web.Request, action: str, claims: Claims | None, target: str = "", exc: TelemedError | None = None) -> None:
    hub = request.app[HUB]
    visit = request.match_info.get("visit", "")
    await hub.audit.arecord(
        "refused" if exc is not None else action,
        outcome="refused" if exc is not None else "ok",
        actor_role=claims.role.value if claims else "anonymous",
        actor_sub=claims.sub if claims else "",
        clinic=claims.clinic if claims else "",
        visit=visit if ID_PATTERN.fullmatch(visit) else "",
        target=target if exc is None else action,
        code=exc.code if exc is not None else "",
    )


async def _folder(request: web.Request, action: str) -> tuple[Claims, Path]:
    """The caller's claims and the chart folder, or a refusal (audited).

    Bad tokens count against the caller's address as at socket connect, and an
    address over the limit is refused unaudited: a flood of anonymous requests
    must not become a flood of fsynced audit records."""
    hub = request.app[HUB]
    claims: Claims | None = None
    address = client_address(request, hub.settings.trusted_proxies)
    await hub.check_address(address)
    try:
        try:
            claims = await bearer(request, frozenset(Role))
        except Unauthorized:
            await hub.count_auth_failure(address)
            raise
        if claims.role not in STAFF:
            raise Forbidden("the chart is for the clinic's staff")
        visit_id = request.match_info["visit"]
        if not ID_PATTERN.fullmatch(visit_id):
            raise NotFound("no chart for this visit")
        where = visit_folder(hub.settings.recordings_dir, claims.clinic, visit_id)
        if where.is_symlink() or not where.is_dir():
            raise NotFound("no chart for this visit")
        return claims, where
    except TelemedError as exc:
        await _audit(request, action, claims, exc=exc)
        raise


def _file(where: Path, name: str) -> Path:
    parts = name.split("/")
    if not 1 <= len(parts) <= 2 or not all(PART.fullmatch(p) for p in parts):
        raise NotFound("no such file in this chart")
    path = where
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise NotFound("no such file in this chart")
    real, base = os.path.realpath(path), os.path.realpath(where)
    if not real.startswith(base + os.sep) or not path.is_file():
        raise NotFound("no such file in this chart")
    return path


def _url(visit_id: str, name: str) -> str:
    return f"/api/visits/{visit_id}/files/{name}"


async def get_chart(request: web.Request) -> web.Response:
    claims, where = await _folder(request, "chart_read")
    visit_id = where.name
    files = [
        {"name": name, "size": size, "content_type": chart.content_type(name), "url": _url(visit_id, name)}
        for name, size in await asyncio.to_thread(_list, where)
    ]
    visit = await _read_json(where / chart.VISIT)
    await _audit(request, "chart_read", claims)
    return web.json_response(
        {
            "visit_id": visit_id,
            "clinic": claims.clinic,
            "sealed": (where / chart.MANIFEST).is_file(),
            "visit": visit,
            "files": files,
            "fhir": f"/api/visits/{visit_id}/fhir" if (where / chart.FHIR).is_file() else None,
        },
        headers=NO_STORE,
    )


async def get_file(request: web.Request) -> web.StreamResponse:
    claims, where = await _folder(request, "file_download")
    name = request.match_info["name"]
    try:
        path = _file(where, name)
    except NotFound as exc:
        await _audit(request, "file_download", claims, exc=exc)
        raise
    await _audit(request, "file_download", claims, target=name)
    return web.FileResponse(path, headers={**NO_STORE, "Content-Type": chart.content_type(name)})


async def get_fhir(request: web.Request) -> web.StreamResponse:
    claims, where = await _folder(request, "fhir_read")
    path = where / chart.FHIR
    if path.is_symlink() or not path.is_file():
        exc = NotFound("the chart has no FHIR export yet (the visit has not ended)")
        await _audit(request, "fhir_read", claims, exc=exc)
        raise exc
    await _audit(request, "fhir_read", claims, target=chart.FHIR)
    return web.FileResponse(path, headers={**NO_STORE, "Content-Type": "application/fhir+json"})


def _list(where: Path) -> list[tuple[str, int]]:
    """The chart's files (the manifest too) with their sizes."""
    out = []
    for name in [*chart.chart_files(where), chart.MANIFEST]:
        try:
            out.append((name, (where / name).stat().st_size))
        except FileNotFoundError:
            pass  # no manifest yet, or a file replaced this moment
    return out


async def _read_json(path: Path) -> Any:
    def read() -> Any:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    return await asyncio.to_thread(read)


def add_chart_routes(app: web.Application) -> None:
    app.router.add_get("/api/visits/{visit}/chart", get_chart)
    app.router.add_get("/api/visits/{visit}/fhir", get_fhir)
    app.router.add_get("/api/visits/{visit}/files/{name:.+}", get_file)
