"""Security headers of every response, and the one Content-Security-Policy of each page.

The CSP lives here only (the pages carry no ``<meta>`` copy): each page gets
the base policy with what it needs added, and every other response (JSON,
static files, a page fetched through ``/static/``) gets a policy that allows
nothing, so no document is ever served without one.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

#: What every page may do. ``'self'`` covers same-origin websockets too.
BASE_POLICY: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def policy(**changes: str) -> str:
    """The base policy with some directives replaced (``media_src="..."``
    stands for ``media-src``), as a header value."""
    directives = {**BASE_POLICY, **{name.replace("_", "-"): value for name, value in changes.items()}}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


#: Pages showing a call: the camera, the other side's stream, snapshots.
CALL_PAGE = policy(img_src="'self' data: blob:", media_src="'self' blob: mediastream:")
#: The walk-in form and the landing page: their own scripts and fetches (the
#: catalogues of web/locales/), no media.
FORM_PAGE = policy()
#: Anything that is not a page (and a page file fetched under ``/static/``).
NOT_A_PAGE = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

#: The policy of each page file in ``web/``.
PAGE_POLICIES: Mapping[str, str] = {
    "index.html": FORM_PAGE,
    "patient.html": CALL_PAGE,
    "staff.html": CALL_PAGE,
    "walk_in.html": FORM_PAGE,
    "guest.html": CALL_PAGE,
}

#: Pages carry health data: no caching by shared caches, no Referer, no framing.
PAGE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(self), microphone=(self)",
}

#: Every response.
ALL_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": NOT_A_PAGE,
}


def page_headers(name: str) -> dict[str, str]:
    """The headers a page file is served with (its own CSP)."""
    return {**PAGE_HEADERS, "Content-Security-Policy": PAGE_POLICIES[name]}


async def add_default_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: what a handler did not set, every response gets."""
    for name, value in ALL_HEADERS.items():
        response.headers.setdefault(name, value)
