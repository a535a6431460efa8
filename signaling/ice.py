"""ICE servers handed to browsers: STUN, and TURN with time-limited credentials,
and the deployment's ICE transport policy (``TELEMED_ICE_POLICY``), which the
pages pass as ``RTCConfiguration.iceTransportPolicy`` for the call and the chart leg.

TURN credentials follow the TURN REST API convention that coturn accepts with
``use-auth-secret``: username ``<expiry>:<user>``, password
``base64(HMAC-SHA1(secret, username))``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from telemed.settings import Settings


def ice_servers(settings: Settings, user: str, now: float | None = None) -> list[dict[str, object]]:
    """The ``RTCConfiguration.iceServers`` list for one user."""
    servers: list[dict[str, object]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls:
        expiry = int((time.time() if now is None else now) + settings.turn_ttl)
        username = f"{expiry}:{user}"
        digest = hmac.new(settings.turn_secret.reveal().encode(), username.encode(), hashlib.sha1).digest()
        servers.append(
            {
                "urls": list(settings.turn_urls),
                "username": username,
                "credential": base64.b64encode(digest).decode(),
            }
        )
    return servers


def ice_config(settings: Settings, user: str, now: float | None = None) -> dict[str, object]:
    """What a page is handed to configure its peer connections:
    ``{ice_servers, ice_transport_policy}`` (``"all"`` or ``"relay"``)."""
    return {"ice_servers": ice_servers(settings, user, now), "ice_transport_policy": settings.ice_policy}
