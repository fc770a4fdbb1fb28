"""The webhook inbox: vendor events stored before they are acknowledged.

Vendors retry deliveries and sometimes send one event twice; the unique (system, event_id)
key stores each event exactly once, and `inbox_add` tells the caller which ones were new so
that only those are turned into jobs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, TextClause, bindparam, select, text, update

from hub.store.base import TxBase, Upsert, chunked, unique
from hub.store.engine import dump_json
from hub.store.models import InboxEvent
from hub.store.schema import webhook_inbox
from hub.store.types import UtcDateTime, utcnow


def _event(row: Row) -> InboxEvent:
    return InboxEvent(**row._mapping)


def _inbox_recordset() -> TextClause:
    """PostgreSQL: every row in one statement of constant text, the rows as one JSON parameter.

    A multi-row `VALUES` statement has a different text (and ten parameters more) for every
    row, and psycopg parses the text of such a long statement each time (no cache past
    4 KiB or 50 parameters): ~3 ms for 64 rows, more than the insert itself. One JSON array
    (serialised by orjson in one call) keeps the statement short, parsed once, and still one
    round trip; PostgreSQL turns it back into rows with `jsonb_to_recordset`.
    """
    return text(
        "INSERT INTO webhook_inbox (system, event_id, object, external_id, payload, received_at, status) "
        "SELECT r.system, r.event_id, r.object, r.external_id, r.payload, :received_at, :status "
        "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
        "AS r(system text, event_id text, object text, external_id text, payload jsonb) "
        "ON CONFLICT DO NOTHING RETURNING id, system, event_id"
    ).bindparams(bindparam("received_at", type_=UtcDateTime()))


class InboxMixin(TxBase):
    def inbox_add(self, events: list[InboxEvent], done: bool = False) -> list[int | None]:
        """Store events; for each one, in order, its new id or None if it was a duplicate.

        A duplicate is an event whose (system, event_id) is already stored, or repeats an
        earlier event of the same batch. With `done`, the new events are stored already
        handled (status `done`): for a caller that turns them into jobs in this very
        transaction, which saves the `inbox_mark_done` UPDATE that would follow.
        """
        if not events:
            return []
        now = utcnow()
        status = "done" if done else "new"
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for e in events:  # the first delivery of a repeated event is the one kept
            key = (e.system, e.event_id)
            if key not in rows:
                rows[key] = {"system": e.system, "event_id": e.event_id, "object": e.object,
                             "external_id": e.external_id, "payload": e.payload}
        if self.dialect == "postgresql":
            params = {"rows": dump_json(list(rows.values())), "received_at": now, "status": status}
            result = self.connection.execute(self._statement("inbox_add", _inbox_recordset), params)
        else:
            values = [{**row, "received_at": now, "status": status} for row in rows.values()]
            result = self.connection.execute(self._statement("inbox_add", self._inbox_insert), values)
        new_ids = {(row.system, row.event_id): row.id for row in result}
        self._wrote(webhook_inbox, len(new_ids))
        return [new_ids.pop((e.system, e.event_id), None) for e in events]

    def _inbox_insert(self) -> Upsert:  # SQLite: one multi-row INSERT (SQLAlchemy's "insertmanyvalues")
        return (
            self._upsert(webhook_inbox)
            .on_conflict_do_nothing()
            .returning(webhook_inbox.c.id, webhook_inbox.c.system, webhook_inbox.c.event_id)
        )

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
