"""The chart over HTTP: ``GET /api/visits/{visit}/chart``, ``/files/{name}``, ``/fhir``.

Staff (nurse, doctor, admin) of the visit's clinic only; patients get nothing.
A chart is looked for in the caller's own clinic's folder only, so a visit of
another clinic is "not found", exactly like one that does not exist. File
names are checked before any path is built: one or two parts (``snapshots/x.jpg``)
of letters, digits, ``_ . -``, not starting with a dot. The file is then opened
step by step from the recordings folder's descriptor, every step with
``O_NOFOLLOW`` (``openat``), so a symlink anywhere on the way is refused and
what is served is the file that was checked: a symlink swapped in after the
check changes nothing (the response reads the open file through
``/proc/self/fd``). It must be a regular file. Anything else is 404. Every
read and every refusal is audited before the answer goes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from aiohttp import web

from signaling import chart_tickets as tickets
from signaling._address import client_address
from signaling.http import HUB, bearer
from telemed import chart
from telemed.chart import visit_folder
from telemed.exceptions import Forbidden, NotFound, TelemedError, Unauthorized
from telemed.tokens import ID_PATTERN, NOT_GUESTS, Claims, Role

STAFF = frozenset({Role.NURSE, Role.DOCTOR, Role.ADMIN})

#: One part of a chart file name.
PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

#: Media players ask for ranges; JSON and text are small.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def audit_access(request: web.Request, action: str, claims: Claims | None, target: str = "", exc: TelemedError | None = None) -> None:
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


async def caller(request: web.Request, address: str, ticket_for: str | None = None) -> Claims:
    """Who is asking: the bearer token's claims, or (with ``ticket_for``, a file
    name or the zip) those of a ``?ticket=`` for exactly that. A bad token or
    ticket counts against ``address`` (as at socket connect) before the refusal."""
    hub = request.app[HUB]
    try:
        if ticket_for is not None and "ticket" in request.query:
            claims = tickets.check(hub.settings.secret, request.query["ticket"], request.match_info["visit"], ticket_for).claims
            await hub.check_live(claims)
            return claims
        return await bearer(request, NOT_GUESTS)
    except Unauthorized:
        await hub.count_auth_failure(address)
        raise


async def chart_folder(request: web.Request, action: str, ticket_for: str | None = None) -> tuple[Claims, Path]:
    """The caller's claims and the chart folder, or a refusal (audited).

    Bad tokens count against the caller's address as at socket connect, and an
    address over the limit is refused unaudited: a flood of anonymous requests
    must not become a flood of fsynced audit records. With ``ticket_for`` (a
    file name, or the zip), a ``?ticket=`` for exactly that stands in for the
    token (:mod:`signaling.chart_tickets`)."""
    hub = request.app[HUB]
    claims: Claims | None = None
    address = client_address(request, hub.settings.trusted_proxies)
    await hub.check_address(address)
    try:
        claims = await caller(request, address, ticket_for)
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
        await audit_access(request, action, claims, exc=exc)
        raise


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_chart_file(root: Path, where: Path, name: str) -> int:
    """A descriptor of chart file ``name`` of folder ``where`` (inside ``root``),
    opened without following any symlink below ``root``; the caller closes it.
    Raises :class:`NotFound` for a bad name, a symlink, or anything but a regular file."""
    parts = name.split("/")
    if not 1 <= len(parts) <= 2 or not all(PART.fullmatch(p) for p in parts):
        raise NotFound("no such file in this chart")
    steps = [*where.relative_to(root).parts, *parts]
    fds: list[int] = []
    try:
        fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        for folder in steps[:-1]:
            fds.append(os.open(folder, _DIR, dir_fd=fds[-1]))
        fd = os.open(steps[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fds[-1])
        fds.append(fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotFound("no such file in this chart")
    except OSError:  # ELOOP for a symlink, ENOTDIR, ENOENT, ...
        for d in fds:
            os.close(d)
        raise NotFound("no such file in this chart") from None
    except BaseException:
        for d in fds:
            os.close(d)
        raise
    for d in fds[:-1]:
        os.close(d)
    return fd


class _SentFileResponse(web.FileResponse):
    """A file response sent inside the handler: aiohttp prepares a returned
    response once more, which for a sent file must do nothing."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return None
        return await super().prepare(request)


async def serve_fd(request: web.Request, fd: int, headers: dict[str, str]) -> web.StreamResponse:
    """Send the open file ``fd`` (with aiohttp's ranges, conditional requests and
    sendfile). ``/proc/self/fd/N`` reopens the very file the descriptor holds,
    whatever its path now points to; the response is sent before this returns,
    so the descriptor may be closed after."""
    response = _SentFileResponse(f"/proc/self/fd/{fd}", headers=headers)
    await response.prepare(request)
    return response


def _url(visit_id: str, name: str) -> str:
    return f"/api/visits/{visit_id}/files/{name}"


async def get_chart(request: web.Request) -> web.Response:
    claims, where = await chart_folder(request, "chart_read")
    visit_id = where.name
    files = [
        {"name": name, "size": size, "content_type": chart.content_type(name), "url": _url(visit_id, name)}
        for name, size in await asyncio.to_thread(_list, where)
    ]
    visit = await _read_json(where / chart.VISIT)
    await audit_access(request, "chart_read", claims)
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
    name = request.match_info["name"]
    claims, where = await chart_folder(request, "file_download", ticket_for=name)
    root = request.app[HUB].settings.recordings_dir
    try:
        opened = await asyncio.to_thread(open_chart_file, root, where, name)
    except NotFound as exc:
        await audit_access(request, "file_download", claims, exc=exc)
        raise
    try:
        await audit_access(request, "file_download", claims, target=name)
        return await serve_fd(request, opened, {**NO_STORE, "Content-Type": chart.content_type(name)})
    finally:
        os.close(opened)


async def get_fhir(request: web.Request) -> web.StreamResponse:
    claims, where = await chart_folder(request, "fhir_read")
    root = request.app[HUB].settings.recordings_dir
    try:
        opened = await asyncio.to_thread(open_chart_file, root, where, chart.FHIR)
    except NotFound:
        exc = NotFound("the chart has no FHIR export yet (the visit has not ended)")
        await audit_access(request, "fhir_read", claims, exc=exc)
        raise exc from None
    try:
        await audit_access(request, "fhir_read", claims, target=chart.FHIR)
        return await serve_fd(request, opened, {**NO_STORE, "Content-Type": "application/fhir+json"})
    finally:
        os.close(opened)


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
