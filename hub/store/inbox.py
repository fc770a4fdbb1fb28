"""The webhook inbox: vendor events stored before they are acknowledged.

Vendors retry deliveries and sometimes send one event twice; the unique (system, event_id)
key stores each event exactly once, and `inbox_add` tells the caller which ones were new so
that only those are turned into jobs.
"""

from __future__ import annotations

import functools

from sqlalchemy import Row, select, update

from hub.store.base import TxBase, chunked, unique
from hub.store.engine import dump_json
from hub.store.models import InboxEvent
from hub.store.schema import webhook_inbox
from hub.store.types import sqlite_timestamp, utcnow


def _event(row: Row) -> InboxEvent:
    return InboxEvent(**row._mapping)


#: Inbox rows per SQLite statement: 7 values each, far below SQLite's 32,766 bound parameters.
_SQLITE_ROWS = 500
_INBOX_COLUMNS = "system, event_id, object, external_id, payload, received_at, status"


@functools.lru_cache(maxsize=64)
def _sqlite_insert(rows: int) -> str:
    """SQLite: `rows` rows in one multi-row INSERT (sqlite3 caches the statement per text)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (f"INSERT INTO webhook_inbox ({_INBOX_COLUMNS}) VALUES {values} "
            "ON CONFLICT DO NOTHING RETURNING id, system, event_id")


#: PostgreSQL: every row in one statement of constant text, the rows as one JSON parameter.
#: A multi-row `VALUES` statement has a different text (and seven parameters more) for every
#: row, and psycopg parses the text of such a long statement each time: ~3 ms for 64 rows,
#: more than the insert itself. One JSON array (serialised by orjson in one call) keeps the
#: statement short, prepared once, and still one round trip; `jsonb_to_recordset` turns it
#: back into rows.
_POSTGRES_INSERT = (
    f"INSERT INTO webhook_inbox ({_INBOX_COLUMNS}) "
    "SELECT r.system, r.event_id, r.object, r.external_id, r.payload, %(received_at)s, %(status)s "
    "FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) "
    "AS r(system text, event_id text, object text, external_id text, payload jsonb) "
    "ON CONFLICT DO NOTHING RETURNING id, system, event_id")


class InboxMixin(TxBase):
    def inbox_add(self, events: list[InboxEvent], done: bool = False) -> list[int | None]:
        """Store events; for each one, in order, its new id or None if it was a duplicate.

        A duplicate is an event whose (system, event_id) is already stored, or repeats an
        earlier event of the same batch. With `done`, the new events are stored already
        handled (status `done`): for a caller that turns them into jobs in this very
        transaction, which saves the `inbox_mark_done` UPDATE that would follow.

        The webhook writer calls this once per batch of callbacks, so it speaks to the
        driver directly (`_driver_rows` says why).
        """
        if not events:
            return []
        now = utcnow()
        status = "done" if done else "new"
        first: dict[tuple[str, str], InboxEvent] = {}
        for e in events:  # the first delivery of a repeated event is the one kept
            first.setdefault((e.system, e.event_id), e)
        kept = list(first.values())
        if self.dialect == "postgresql":
            records = [{"system": e.system, "event_id": e.event_id, "object": e.object, "external_id": e.external_id,
                        "payload": e.payload} for e in kept]
            stored = self._driver_rows(_POSTGRES_INSERT, {"rows": dump_json(records), "received_at": now,
                                                          "status": status})
        else:
            received_at = sqlite_timestamp(now)
            stored = []
            for part in chunked(kept, _SQLITE_ROWS):
                values = [value for e in part for value in (e.system, e.event_id, e.object, e.external_id,
                                                            dump_json(e.payload), received_at, status)]
                stored += self._driver_rows(_sqlite_insert(len(part)), values)
        new_ids = {(system, event_id): new_id for new_id, system, event_id in stored}
        self._wrote(webhook_inbox, len(new_ids))
        return [new_ids.pop((e.system, e.event_id), None) for e in events]

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
