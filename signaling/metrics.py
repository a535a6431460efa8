"""Prometheus metrics of a node (served at ``/metrics``).

Each application gets its own registry, so several nodes can run in one
process (the tests do) without clashing.

No label carries a clinic, visit or person: labels are fixed vocabularies
(namespace, role, event name, error code, end reason, media kind, path), so
what a scrape reveals is load, never who is being seen where.

The call metrics come from the pages (``/call`` events ``media_started`` and
``call_quality``, see docs/architecture.md): each is counted by the node that
received it, once per side and call (telemed/call_quality.py drops repeats
across nodes), so the sum over the nodes counts calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Buckets of the time to first media, in seconds (the goal: 1 s on a good network, 2.5 s on 3G).
TIME_TO_MEDIA_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 600.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _queue_lengths: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.sockets = Gauge("telemed_sockets", "Connected sockets on this node", ["namespace", "role"], registry=r)
        self.queue_length = Gauge(
            "telemed_queue_length", "Patients waiting, summed over the clinics this node serves", registry=r
        )
        self.admits = Counter("telemed_admits", "Patients admitted into a visit", registry=r)
        self.visits_ended = Counter("telemed_visits_ended", "Visits ended, by reason", ["reason"], registry=r)
        self.chat_messages = Counter("telemed_chat_messages", "Chat messages stored", registry=r)
        self.events = Counter("telemed_events", "Socket events handled", ["namespace", "event", "outcome"], registry=r)
        self.time_to_media = Histogram(
            "telemed_call_time_to_media_seconds",
            "Time from the admit (or a call's start) to the first media a page received, by its side and the media's kind",
            ["role", "kind"], buckets=TIME_TO_MEDIA_BUCKETS, registry=r,
        )
        self.ice_failures = Counter("telemed_call_ice_failures", "Calls whose connection failed (ICE), by the side that said so",
                                    ["role"], registry=r)
        self.call_paths = Counter("telemed_call_paths", "Calls by the path a side's media took: relay (TURN) or direct",
                                  ["role", "path"], registry=r)
        self.restart_time = Histogram(
            "telemed_call_restart_seconds",
            "Time from the ICE restart that brought a dropped call back to media again (each recovery once), by the side that restarted",
            ["role"], buckets=TIME_TO_MEDIA_BUCKETS, registry=r,
        )
        self.fallbacks = Counter("telemed_call_fallbacks", "Calls in which a side gave up its video to keep the sound",
                                 ["role", "kind"], registry=r)

    def set_queue_length(self, clinic: str, length: int) -> None:
        """Record one clinic's queue length; the gauge shows the total only."""
        if length:
            self._queue_lengths[clinic] = length
        else:
            self._queue_lengths.pop(clinic, None)
        self.queue_length.set(sum(self._queue_lengths.values()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
