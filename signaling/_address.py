"""The client's address, for per-address limits."""

from __future__ import annotations

from aiohttp import web


def client_address(request: web.Request, trust_forwarded: bool) -> str:
    """``X-Forwarded-For``'s first hop behind a trusted proxy, else the peer address."""
    if trust_forwarded:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.remote or "unknown"
