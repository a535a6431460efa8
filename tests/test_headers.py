"""One Content-Security-Policy per page, sent as a header; none in the markup."""

from __future__ import annotations

import re

import aiohttp

from signaling._headers import NOT_A_PAGE, PAGE_POLICIES
from telemed.settings import Settings
from telemed.tokens import Role
from tests.conftest import token

PAGES = {"/": "index.html", "/visit": "patient.html", "/staff": "staff.html", "/clinic/c1": "walk_in.html", "/guest": "guest.html"}


async def test_every_page_is_served_with_its_policy_and_the_page_headers(node: str, settings: Settings) -> None:
    assert set(PAGES.values()) == set(PAGE_POLICIES) == {p.name for p in settings.web_dir.glob("*.html")}
    async with aiohttp.ClientSession() as http:
        for route, name in PAGES.items():
            async with http.get(f"{node}{route}") as r:
                assert r.status == 200 and r.content_type == "text/html", route
                assert r.headers.getall("Content-Security-Policy") == [PAGE_POLICIES[name]], route
                assert r.headers["Cache-Control"] == "no-store" and r.headers["Referrer-Policy"] == "no-referrer"
                assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
                assert "<meta http-equiv" not in (await r.text()).lower(), f"{name} carries a second policy"


def test_pages_that_run_scripts_allow_only_their_own_origin() -> None:
    for name, policy in PAGE_POLICIES.items():
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", name
        assert directives["script-src"] in {"'self'", "'none'"}, name
        assert "unsafe" not in policy and "ws:" not in policy and "*" not in policy, name
    landing = dict(d.strip().split(" ", 1) for d in PAGE_POLICIES["index.html"].split(";"))
    assert "media-src" not in landing and landing["img-src"] == "'self' data:", "the landing page needs no camera"


async def test_everything_else_gets_a_policy_that_allows_nothing(node: str) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/static/patient.html", "/static/patient.js", "/healthz", "/api/nothing-here"):
            async with http.get(f"{node}{path}") as r:
                assert r.headers.getall("Content-Security-Policy") == [NOT_A_PAGE], path
                assert r.headers["X-Content-Type-Options"] == "nosniff", path
        headers = {"Authorization": f"Bearer {token(Role.NURSE)}"}
        async with http.get(f"{node}/api/clinics/c1/queue", headers=headers) as r:
            assert r.status == 200 and r.headers["Content-Security-Policy"] == NOT_A_PAGE


def test_no_page_file_declares_a_policy_of_its_own(settings: Settings) -> None:
    for path in settings.web_dir.glob("*.html"):
        assert not re.search(r"http-equiv=.content-security-policy", path.read_text(), re.I), path.name
