"""Prometheus metrics of one hub process, in a registry of its own (several apps per test process).

The names follow Prometheus conventions (`synchub_` prefix, `_total` counters, seconds).
Counters that the store knows better than a process (queue depth, dead letters) are read
from the store at scrape time, so every API process reports the same truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.records = Counter("synchub_records_total", "Records handled by flow and outcome",
                               ["flow", "outcome"], registry=r)
        self.retries = Counter("synchub_retries_total", "Vendor calls retried, by system", ["system"], registry=r)
        self.webhooks = Counter("synchub_webhooks_total", "Webhook callbacks by system and answer status",
                                ["system", "status"], registry=r)
        self.webhook_events = Counter("synchub_webhook_events_total", "Webhook events by system and fate",
                                      ["system", "fate"], registry=r)
        self.webhook_seconds = Histogram("synchub_webhook_seconds", "Time to verify, store and answer a callback",
                                         ["system"], registry=r,
                                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.vendor_calls = Gauge("synchub_vendor_calls", "Vendor API calls made by this process, by system and HTTP status",
                                  ["system", "status"], registry=r)
        self.queue_depth = Gauge("synchub_queue_jobs", "Jobs in the queue by status", ["status"], registry=r)
        self.dead_letters = Gauge("synchub_dead_letters", "Jobs in the dead-letter queue", registry=r)
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once: a callback counts four series, and
        `labels()` validates its arguments and takes a lock each time (~3 us per call)."""
        key = (str(id(metric)), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, metric.labels(*labels))
        return child

    def webhook_answered(self, system: str, status: int, seconds: float) -> None:
        self._child(self.webhooks, system, str(status)).inc()
        self._child(self.webhook_seconds, system).observe(seconds)

    def webhook_events_taken(self, system: str, stored: int, duplicates: int) -> None:
        self._child(self.webhook_events, system, "stored").inc(stored)
        self._child(self.webhook_events, system, "duplicate").inc(duplicates)
