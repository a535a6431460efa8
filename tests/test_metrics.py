"""/metrics: behind a bearer token, or loopback-only; no clinic in any label."""

from __future__ import annotations

import aiohttp

from signaling.metrics import Metrics
from telemed.settings import Secret, Settings

METRICS_TOKEN = "scrape-" + "z" * 30


async def get(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", headers=headers) as r:
        return r.status, await r.text()


async def test_with_a_token_metrics_need_it(start_node, settings: Settings) -> None:
    node = await start_node(settings.with_(metrics_token=Secret(METRICS_TOKEN)))
    status, text = await get(node, Authorization=f"Bearer {METRICS_TOKEN}")
    assert status == 200 and "telemed_sockets" in text
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS_TOKEN}"},
                    {"Authorization": f"Bearer {METRICS_TOKEN}x"}, {"Authorization": f"Bearer {METRICS_TOKEN[:-1]}"}):
        status, text = await get(node, **headers)
        assert status == 401 and '"unauthorized"' in text and "telemed_sockets" not in text, headers


async def test_without_a_token_metrics_are_for_this_host_only(start_node, settings: Settings) -> None:
    node = await start_node(settings)
    status, text = await get(node)
    assert status == 200 and "telemed_sockets" in text
    # A proxy on this host passing a request from outside is not this host.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        status, text = await get(node, **{header: "for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"})
        assert status == 403 and "TELEMED_METRICS_TOKEN" in text, header


def test_queue_length_is_a_total_without_clinic_labels() -> None:
    metrics = Metrics()
    metrics.set_queue_length("clinic-a", 3)
    metrics.set_queue_length("clinic-b", 2)
    metrics.set_queue_length("clinic-a", 1)
    text = metrics.render().decode()
    assert "telemed_queue_length 3.0" in text
    metrics.set_queue_length("clinic-b", 0)
    text = metrics.render().decode()
    assert "telemed_queue_length 1.0" in text
    assert "clinic" not in text.replace("clinics this node serves", "")
