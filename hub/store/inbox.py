"""The webhook inbox: vendor events stored before they are acknowledged.

Vendors retry deliveries and sometimes send one event twice; the unique (system, event_id)
key stores each event exactly once, and `inbox_add` tells the caller which ones were new so
that only those are turned into jobs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select, update

from hub.store.base import TxBase, chunked, unique
from hub.store.models import InboxEvent
from hub.store.schema import webhook_inbox
from hub.store.types import utcnow


def _event(row: Row) -> InboxEvent:
    return InboxEvent(**row._mapping)


class InboxMixin(TxBase):
    def inbox_add(self, events: list[InboxEvent]) -> list[int | None]:
        """Store events; for each one, in order, its new id or None if it was a duplicate.

        A duplicate is an event whose (system, event_id) is already stored, or repeats an
        earlier event of the same batch.
        """
        if not events:
            return []
        now = utcnow()
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for e in events:  # the first delivery of a repeated event is the one kept
            rows.setdefault(
                (e.system, e.event_id),
                {
                    "system": e.system,
                    "event_id": e.event_id,
                    "object": e.object,
                    "external_id": e.external_id,
                    "payload": e.payload,
                    "received_at": now,
                    "status": "new",
                },
            )
        stmt = (
            self._upsert(webhook_inbox)
            .on_conflict_do_nothing()
            .returning(webhook_inbox.c.id, webhook_inbox.c.system, webhook_inbox.c.event_id)
        )
        result = self.connection.execute(stmt, list(rows.values()))
        new_ids = {(row.system, row.event_id): row.id for row in result}
        self._wrote(webhook_inbox, len(new_ids))
        ids: list[int | None] = []
        for e in events:
            ids.append(new_ids.pop((e.system, e.event_id), None))
        return ids

    def inbox_pending(self, limit: int = 500, system: str | None = None) -> list[InboxEvent]:
        """Events not yet turned into work, oldest first."""
        stmt = (
            select(webhook_inbox)
            .where(webhook_inbox.c.status == "new")
            .order_by(webhook_inbox.c.id)
            .limit(limit)
        )
        if system is not None:
            stmt = stmt.where(webhook_inbox.c.system == system)
        return [_event(row) for row in self.connection.execute(stmt)]

    def inbox_mark_done(self, ids: list[int]) -> int:
        """Mark events as handled; they stay stored, so a redelivery is still a duplicate."""
        done = 0
        for part in chunked(unique(ids)):
            stmt = update(webhook_inbox).where(webhook_inbox.c.id.in_(part)).values(status="done")
            done += self.connection.execute(stmt).rowcount
        return done
