"""Prometheus metrics of a node (served at ``/metrics``).

Each application gets its own registry, so several nodes can run in one
process (the tests do) without clashing.

No label carries a clinic, visit or person: labels are fixed vocabularies
(namespace, role, event name, error code, end reason), so what a scrape
reveals is load, never who is being seen where.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


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

    def set_queue_length(self, clinic: str, length: int) -> None:
        """Record one clinic's queue length; the gauge shows the total only."""
        if length:
            self._queue_lengths[clinic] = length
        else:
            self._queue_lengths.pop(clinic, None)
        self.queue_length.set(sum(self._queue_lengths.values()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
