"""Prometheus metrics of a node (served at ``/metrics``).

Each application gets its own registry, so several nodes can run in one
process (the tests do) without clashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.sockets = Gauge("telemed_sockets", "Connected sockets on this node", ["namespace", "role"], registry=r)
        self.queue_length = Gauge("telemed_queue_length", "Patients waiting, per clinic", ["clinic"], registry=r)
        self.admits = Counter("telemed_admits", "Patients admitted into a visit", registry=r)
        self.visits_ended = Counter("telemed_visits_ended", "Visits ended, by reason", ["reason"], registry=r)
        self.chat_messages = Counter("telemed_chat_messages", "Chat messages stored", registry=r)
        self.events = Counter("telemed_events", "Socket events handled", ["namespace", "event", "outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
