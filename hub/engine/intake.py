"""Webhook intake: vendor events stored and turned into record jobs in one transaction.

The HTTP layer verifies a callback through its connector, then hands the events here
**before** it answers the vendor: once this returns, the events are durable and each new
one has a job per flow it triggers, so an acknowledged event can no longer be lost. A
redelivered event (same system and vendor event id) is recognised by the inbox's unique
key and triggers nothing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from connectors.base import WebhookEvent
from hub.config import HubConfig
from hub.config.model import Flow
from hub.engine.worker import record_job
from hub.store import Store
from hub.store.models import InboxEvent, NewJob

log = structlog.get_logger()

TRIGGER = "webhook"


@dataclass(frozen=True)
class Intake:
    """What became of one callback's events."""

    stored: int       # new events kept in the inbox
    duplicates: int   # events already received before (vendor redelivery)
    jobs: int         # record jobs queued for the new events


def triggered_flows(config: HubConfig, system: str, obj: str) -> list[Flow]:
    """Enabled flows with webhooks on whose source is this system's object."""
    return [flow for flow in config.flows.values()
            if flow.enabled and flow.webhook and flow.source.system == system and flow.source.object == obj]


def take_events(config: HubConfig, store: Store, system: str, events: Sequence[WebhookEvent]) -> Intake:
    """Store the events and queue their jobs, all or nothing (see the module docstring)."""
    if not events:
        return Intake(0, 0, 0)
    rows = [InboxEvent(system, e.event_id, e.object, e.external_id, dict(e.payload)) for e in events]
    with store.transaction() as tx:
        ids = tx.inbox_add(rows)
        new = [(event, inbox_id) for event, inbox_id in zip(events, ids, strict=True) if inbox_id is not None]
        jobs: list[NewJob] = [record_job(flow.name, event.object, event.external_id, TRIGGER)
                              for event, _ in new for flow in triggered_flows(config, system, event.object)]
        if jobs:
            tx.enqueue(jobs)
        tx.inbox_mark_done([inbox_id for _, inbox_id in new])
    intake = Intake(len(new), len(events) - len(new), len(jobs))
    log.info("webhook events taken", system=system, stored=intake.stored, duplicates=intake.duplicates,
             jobs=intake.jobs)
    return intake
