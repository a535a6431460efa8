"""The admin console's HTTP routes (role admin, own clinic only), and the staff
pages' own settings.

- ``GET/PUT /api/clinics/{clinic}/settings``: the clinic's run-time settings
  (:mod:`telemed.clinic_config`), changed without a restart and audited;
- ``GET /api/clinics/{clinic}/sessions`` and
  ``POST /api/clinics/{clinic}/sessions/{session}/sign-out``: who is signed in,
  and signing someone out (:mod:`signaling.sessions`);
- ``GET /api/clinics/{clinic}/audit``: the audit trail's verification status
  (verified in a thread, cached briefly) and the clinic's last events (ids and
  actions only), with the retention in force;
- ``GET /api/clinics/{clinic}/name``: the clinic's display name, for every page
  of the clinic (patients and guests too);
- ``GET /api/staff/config``: what every staff page needs from the server (the
  inactivity lock).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from signaling.http import HUB, MAX_BODY, STAFF, bearer
from signaling.hub import Hub
from signaling.schemas import ClinicSettingsChange
from signaling.sessions import StaffSession, StaffSessions
from telemed import clinic_config
from telemed.audit import Action, AuditLog, AuditLogCorrupt, AuditReport, verify
from telemed.exceptions import BadRequest, Forbidden
from telemed.tokens import ID_PATTERN, Claims, Role

logger = logging.getLogger(__name__)

SESSIONS = web.AppKey("staff_sessions", StaffSessions)

ADMIN = frozenset({Role.ADMIN})

#: A verification of the whole trail is reused this long (it reads every line).
AUDIT_CACHE_SECONDS = 30.0

#: Events of the clinic shown on the admin screen.
LAST_EVENTS = 20


@dataclass
class AuditStatus:
    """The trail's last verification and the clinics' last events, read in a thread."""

    log: AuditLog
    checked_at: float = 0.0
    report: AuditReport | None = None
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _read(self) -> tuple[AuditReport, dict[str, list[dict[str, Any]]]]:
        report = verify(self.log.path)
        last: dict[str, collections.deque[dict[str, Any]]] = {}
        try:
            for record in self.log.read():
                clinic = record.get("clinic")
                if isinstance(clinic, str) and clinic:
                    last.setdefault(clinic, collections.deque(maxlen=LAST_EVENTS)).append(_event(record))
        except AuditLogCorrupt:
            pass  # the report says so
        return report, {clinic: list(events) for clinic, events in last.items()}

    async def get(self, clinic: str, *, fresh: bool = False) -> dict[str, Any]:
        async with self.lock:
            if fresh or self.report is None or time.time() - self.checked_at > AUDIT_CACHE_SECONDS:
                self.report, self.events = await asyncio.to_thread(self._read)
                self.checked_at = time.time()
        report = self.report
        assert report is not None
        return {
            "ok": report.ok,
            "records": report.records,
            "problems": [p.message for p in report.problems[:5]],
            "more_problems": max(0, len(report.problems) - 5),
            "checked_at": self.checked_at,
            "events": list(reversed(self.events.get(clinic, []))),
        }


AUDIT = web.AppKey("audit_status", AuditStatus)


def _event(record: dict[str, Any]) -> dict[str, Any]:
    """What the admin sees of a record: ids, codes and the action, never a name."""
    actor = record.get("actor") if isinstance(record.get("actor"), dict) else {}
    return {
        "seq": record.get("seq"),
        "at": record.get("at"),
        "action": record.get("action"),
        "outcome": record.get("outcome"),
        "role": actor.get("role") if isinstance(actor, dict) else None,
        "visit": record.get("visit") or "",
        "code": record.get("code") or "",
    }


async def _admin_of(request: web.Request) -> tuple[Hub, Claims, str]:
    hub = request.app[HUB]
    claims = await bearer(request, ADMIN)
    if request.match_info["clinic"] != claims.clinic:
        raise Forbidden("You can manage your own clinic only.")
    return hub, claims, claims.clinic


def _settings_reply(hub: Hub, config: clinic_config.ClinicConfig) -> dict[str, Any]:
    return {"settings": config.to_dict(), "retention": hub.settings.retention, "lock_after": hub.settings.staff_lock_after}


async def get_settings(request: web.Request) -> web.Response:
    hub, _, clinic = await _admin_of(request)
    return web.json_response(_settings_reply(hub, await clinic_config.get(hub.redis, hub.settings, clinic)))


async def put_settings(request: web.Request) -> web.Response:
    hub, claims, clinic = await _admin_of(request)
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError:
        raise BadRequest("The settings could not be read; reload the page and try again.") from None
    if not isinstance(data, dict) or not data:
        raise BadRequest("Send at least one setting to change.")
    checked = clinic_config.validate(data)  # the plain-word refusals
    # The text settings are checked by clinic_config alone (length, characters); the schema takes the rest.
    texts = {name: checked[name] for name in clinic_config.TEXTS if name in checked}
    try:
        change = ClinicSettingsChange.model_validate({k: v for k, v in data.items() if k not in texts})
    except ValidationError:  # pragma: no cover - validate() refuses first
        raise BadRequest("One of the settings is not valid.") from None
    changes = {**change.model_dump(exclude_none=True), **texts}
    config = await clinic_config.set(hub.redis, hub.settings, clinic, changes)
    # The audit trail keeps which settings changed and the values, but a name as "display_name" only.
    target = "+".join(name if name in texts else f"{name}={value}"
                      for name, value in sorted(clinic_config.validate(changes).items()))
    await _audit(hub, Action.SETTINGS, claims, target)
    logger.info("clinic %s settings changed by %s: %s", clinic, claims.sub, ",".join(sorted(changes)))
    return web.json_response({**_settings_reply(hub, config), "changed": sorted(changes)})


def _session_rows(sessions: list[StaffSession], me: Claims) -> list[dict[str, Any]]:
    """One row per signed-in token (a person may have several windows open)."""
    rows: dict[str, dict[str, Any]] = {}
    for s in sessions:
        row = rows.get(s.jti)
        if row is None:
            rows[s.jti] = {"session": s.jti, "name": s.name, "role": s.role, "since": s.since, "nodes": [s.node],
                           "windows": 1, "mine": s.jti == me.jti}
        else:
            row["windows"] += 1
            row["since"] = min(row["since"], s.since)
            if s.node not in row["nodes"]:
                row["nodes"].append(s.node)
    return sorted(rows.values(), key=lambda r: (not r["mine"], r["since"]))


async def get_sessions(request: web.Request) -> web.Response:
    _, claims, clinic = await _admin_of(request)
    sessions = await request.app[SESSIONS].list(clinic)
    return web.json_response({"sessions": _session_rows(sessions, claims)})


async def sign_out(request: web.Request) -> web.Response:
    hub, claims, clinic = await _admin_of(request)
    jti = request.match_info["session"]
    if not ID_PATTERN.fullmatch(jti):
        raise BadRequest("That is not a session of this clinic.")
    gone = await request.app[SESSIONS].sign_out(clinic, jti, claims)
    await _audit(hub, Action.REVOKE, claims, jti)
    logger.info("token %s signed out by %s", jti, claims.sub)
    return web.json_response({"signed_out": {"name": gone.name, "role": gone.role}})


async def get_audit(request: web.Request) -> web.Response:
    hub, _, clinic = await _admin_of(request)
    fresh = request.query.get("fresh") == "1"
    status = await request.app[AUDIT].get(clinic, fresh=fresh)
    return web.json_response({"audit": status, "retention": hub.settings.retention})


async def clinic_name(request: web.Request) -> web.Response:
    """The clinic's display name for any page of the clinic (patient, guest, staff):
    "Video visit with <name>"; null when the admin has not set one. A token
    this server signed for the clinic is enough, live or not: the page of a
    used or ended link still says whose page it is."""
    hub = request.app[HUB]
    claims = await bearer(request, frozenset(Role), live=False)
    if request.match_info["clinic"] != claims.clinic:
        raise Forbidden("That is not your clinic.")
    config = await clinic_config.get(hub.redis, hub.settings, claims.clinic)
    return web.json_response({"display_name": config.display_name or None})


async def staff_config(request: web.Request) -> web.Response:
    """What a staff page needs from the server before it shows health data."""
    hub = request.app[HUB]
    await bearer(request, STAFF)
    return web.json_response({"lock_after": hub.settings.staff_lock_after})


async def _audit(hub: Hub, action: Action, claims: Claims, target: str) -> None:
    try:
        await hub.audit.arecord(action, actor_role=claims.role.value, actor_sub=claims.sub, clinic=claims.clinic,
                                target=target[:200])
    except Exception:
        logger.exception("clinic %s: %s could not be audited", claims.clinic, action.value)


def add_admin_routes(app: web.Application, sessions: StaffSessions) -> None:
    app[SESSIONS] = sessions
    app[AUDIT] = AuditStatus(app[HUB].audit)
    app.router.add_get("/api/clinics/{clinic}/settings", get_settings)
    app.router.add_put("/api/clinics/{clinic}/settings", put_settings)
    app.router.add_get("/api/clinics/{clinic}/sessions", get_sessions)
    app.router.add_post("/api/clinics/{clinic}/sessions/{session}/sign-out", sign_out)
    app.router.add_get("/api/clinics/{clinic}/audit", get_audit)
    app.router.add_get("/api/clinics/{clinic}/name", clinic_name)
    app.router.add_get("/api/staff/config", staff_config)
