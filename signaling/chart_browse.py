"""The chart browser's routes: the list of a clinic's charts, a chart's
integrity, links for playback and download, and the whole chart as a zip.

- ``GET /api/charts?from=&to=&state=&doctor=&q=&page=``: the caller's clinic's
  written charts, newest first, 50 a page, from the index in Redis
  (:mod:`telemed.chart.index`), never from the folders.
- ``GET /api/visits/{visit}/verify``: the manifest checked against the files
  and the audit trail's seal (:func:`telemed.chart.verify`, in a thread).
- ``GET /api/visits/{visit}/links/{name}``: a link with a ticket to one file
  (``chart.zip`` for the zip) for a ``<video>`` or a download
  (:mod:`signaling.chart_tickets`).
- ``GET /api/visits/{visit}/zip``: every chart file and the manifest, streamed
  as :func:`telemed.chart.export.write_zip` writes it (the CLI's export);
  audited as an ``export`` (``zip``).

Staff of the clinic only, exactly as :mod:`signaling.chart_http` (whose door
these routes share): every read and every refusal is audited, with ids only
(a name search's text is never in the audit trail or the logs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from typing import IO, cast

from aiohttp import web
from pydantic import ValidationError

from signaling import chart_tickets as tickets
from signaling import schemas
from signaling._address import client_address
from signaling.chart_http import NO_STORE, STAFF, audit_access, caller, chart_folder, open_chart_file
from signaling.http import HUB
from telemed import chart
from telemed.chart.export import write_zip
from telemed.chart.index import ChartList, Filters
from telemed.exceptions import BadRequest, Forbidden, NotFound, TelemedError
from telemed.tokens import Claims

logger = logging.getLogger(__name__)

#: The zip's name for the link route.
ZIP_NAME = "chart.zip"

#: Bytes of zip sent to the browser per write.
CHUNK = 256 * 1024

#: What each query parameter is, in words (a refusal names it, never a pattern).
QUERY_WORDS = {
    "from": "the start date",
    "to": "the end date",
    "state": "the state",
    "doctor": "the doctor",
    "q": "the patient name to search for (at most 120 characters)",
    "page": "the page number",
}


def _query(request: web.Request) -> schemas.ChartQuery:
    try:
        return schemas.ChartQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first.get("loc", ("",))[0])
        if first.get("type") == "extra_forbidden":
            raise BadRequest(f"the list cannot be filtered by {field!r}") from None
        raise BadRequest(f"{QUERY_WORDS.get(field, field)} is not valid") from None


async def list_charts(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims: Claims | None = None
    address = client_address(request, hub.settings.trusted_proxies)
    await hub.check_address(address)
    try:
        claims = await caller(request, address)
        if claims.role not in STAFF:
            raise Forbidden("the charts are for the clinic's staff")
        query = _query(request)
        if query.from_ is not None and query.to is not None and query.from_ > query.to:
            raise BadRequest("the start date is after the end date")
    except TelemedError as exc:
        await audit_access(request, "chart_list", claims, exc=exc)
        raise
    filters = Filters(since=query.from_, until=query.to, state=query.state, doctor=query.doctor, name=query.q.strip())
    page = await ChartList(hub.redis).page(claims.clinic, filters, query.page)
    await audit_access(request, "chart_list", claims, target=f"page={query.page}")
    return web.json_response(page.to_dict(), headers=NO_STORE)


async def verify_chart(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    claims, where = await chart_folder(request, "chart_verify")
    started = time.monotonic()
    report = await asyncio.to_thread(chart.verify, where, hub.settings.audit_path())
    await audit_access(request, "chart_verify", claims, target="ok" if report.ok else "problems")
    if not report.ok:
        logger.warning("Chart(%s) does not verify: %s", where.name, ", ".join(sorted({p.kind for p in report.problems})))
    return web.json_response(
        {
            "visit_id": where.name,
            "ok": report.ok,
            "files": report.files,
            "problems": [{"name": p.name, "kind": p.kind, "message": p.message} for p in report.problems],
            "seconds": round(time.monotonic() - started, 3),
        },
        headers=NO_STORE,
    )


async def link(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    name = request.match_info["name"]
    claims, where = await chart_folder(request, "chart_link")
    visit_id = where.name
    if name == ZIP_NAME:
        target, url = tickets.ZIP, f"/api/visits/{visit_id}/zip"
    else:
        try:
            os.close(await asyncio.to_thread(open_chart_file, hub.settings.recordings_dir, where, name))
        except NotFound as exc:
            await audit_access(request, "chart_link", claims, exc=exc)
            raise
        target, url = name, f"/api/visits/{visit_id}/files/{name}"
    ticket = tickets.issue(hub.settings.secret, claims, visit_id, target)
    await audit_access(request, "chart_link", claims, target=name)
    return web.json_response({"url": f"{url}?ticket={ticket}"}, headers=NO_STORE)


class _Pipe:
    """What :func:`telemed.chart.export.write_zip` writes into, in a thread: the
    bytes go to the event loop a chunk at a time through a short queue, so a
    slow download holds back the zipping, not the memory. No ``tell``: the zip
    is written as a stream (with data descriptors)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)
        self.parts: list[bytes] = []
        self.size = 0
        self.stopped = False

    def write(self, data: bytes) -> int:
        if self.stopped:
            raise OSError("the download was stopped")
        self.parts.append(bytes(data))
        self.size += len(data)
        if self.size >= CHUNK:
            self.send()
        return len(data)

    def send(self, end: bool = False) -> None:
        data, self.parts, self.size = b"".join(self.parts), [], 0
        for item in ([data] if data else []) + ([None] if end else []):
            asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


async def zip_chart(request: web.Request) -> web.StreamResponse:
    claims, where = await chart_folder(request, "export", ticket_for=tickets.ZIP)
    await audit_access(request, "export", claims, target="zip")
    day = datetime.now(UTC).strftime("%Y%m%d")
    response = web.StreamResponse(headers={
        **NO_STORE,
        "Content-Type": "application/zip",
        "Content-Disposition": f'attachment; filename="chart-{where.name}-{day}.zip"',
    })
    await response.prepare(request)
    pipe = _Pipe(asyncio.get_running_loop())

    def zip_it() -> None:
        try:
            write_zip(where, cast(IO[bytes], pipe))  # writes and flushes only
        finally:
            pipe.send(end=True)

    writer = asyncio.ensure_future(asyncio.to_thread(zip_it))
    try:
        while (data := await pipe.queue.get()) is not None:
            await response.write(data)
    except BaseException:
        pipe.stopped = True  # the thread stops at its next write; let it finish
        while await pipe.queue.get() is not None:
            pass
        raise
    finally:
        await asyncio.shield(writer)
    await response.write_eof()
    return response


def add_chart_browser_routes(app: web.Application) -> None:
    app.router.add_get("/api/charts", list_charts)
    app.router.add_get("/api/visits/{visit}/verify", verify_chart)
    app.router.add_get("/api/visits/{visit}/zip", zip_chart)
    app.router.add_get("/api/visits/{visit}/links/{name:.+}", link)
