"""The store's tables, as SQLAlchemy Core `Table`s.

Core, not the ORM: the engine moves pages of 100-2,000 records at thousands of records per
second, and every store call is one set-based statement over a whole page. An identity map
and per-object unit of work would only add cost.

Every constraint and index is named explicitly so that Alembic migrations can refer to them
on both backends. `versions/0001_initial.py` spells the same tables out by hand;
`tests/store/test_store_schema.py` checks that a migrated database matches this module.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from hub.store.types import BigId, Json, UtcDateTime

# Only primary keys are named by convention; every other constraint and index is named inline.
metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})

#: Open job states: a dedupe key may appear on at most one job in these states.
OPEN_JOB_STATUSES = ("queued", "running")
DEDUPE_WHERE = "status = 'queued' OR (status = 'running' AND kind = 'flow')"  # see the jobs table
JOB_STATUSES = ("queued", "running", "done", "dead")
RUN_STATUSES = ("running", "ok", "partial", "failed")
INBOX_STATUSES = ("new", "done")
RUN_COUNTERS = ("pulled", "created", "updated", "unchanged", "skipped_echo", "failed", "dead", "waiting", "skipped")

_ZERO = text("0")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


golden = Table(
    "golden",
    metadata,
    Column("id", Text, primary_key=True),  # the canonical id
    Column("entity", Text, nullable=False),
    Column("data", Json, nullable=False),
    Column("meta", Json, nullable=False),  # {field: {"system": ..., "updated_at": ...}}
    Column("hash", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_golden_entity", "entity"),
)

links = Table(
    "links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("entity", Text, nullable=False),
    Column("canonical_id", Text, nullable=False),
    Column("system", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("seen_hash", Text, nullable=True),
    Column("written_hash", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    # external_id leads: lookups give a page of external ids (`external_id IN (...)`), and a
    # leading column is always an index condition, even before PostgreSQL has statistics for
    # the table (with (system, object) first, a fresh table's planner filters every row of
    # the system instead, and the first import of 100k records crawls).
    # entity last: one vendor record can stand for several entities (an ERP sales order is an
    # order, and also the request of its contract approval), each with its own canonical id.
    UniqueConstraint("external_id", "system", "object", "entity", name="uq_links_external_system_object_entity"),
    Index("ix_links_entity_canonical_system", "entity", "canonical_id", "system"),
    # The push path looks a target's links up by canonical id without knowing the entity;
    # canonical_id leads for the same reason as above.
    Index("ix_links_canonical_system_object", "canonical_id", "system", "object"),
)

match_keys = Table(
    "match_keys",
    metadata,
    Column("entity", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("canonical_id", Text, nullable=False),
    # value leads, like external_id in links: lookups give a page of values.
    PrimaryKeyConstraint("value", "key", "entity", "canonical_id", name="pk_match_keys"),
    # match_delete removes a record's keys without knowing their values.
    Index("ix_match_keys_canonical_entity", "canonical_id", "entity"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("flow", Text, primary_key=True),
    Column("value", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),
    Column("flow", Text, nullable=True),
    Column("payload", Json, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=_ZERO),
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_owner", Text, nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("dedupe_key", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint(_in("status", JOB_STATUSES), name="ck_jobs_status"),
    Index("ix_jobs_status_next_attempt_at", "status", "next_attempt_at"),
    # At most one waiting job per dedupe key, so a burst of events for one record queues one
    # job. A running record job does not hold its key: an event arriving while it runs (and
    # may already have read the record) queues the next one. A running flow job does hold it,
    # so that one flow never runs twice at once. Done and dead jobs keep their key for history.
    Index(
        "uq_jobs_pending_dedupe_key",
        "dedupe_key",
        unique=True,
        sqlite_where=text(DEDUPE_WHERE),
        postgresql_where=text(DEDUPE_WHERE),
    ),
)

webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("object", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("payload", Json, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("status", Text, nullable=False),
    CheckConstraint(_in("status", INBOX_STATUSES), name="ck_webhook_inbox_status"),
    UniqueConstraint("system", "event_id", name="uq_webhook_inbox_system_event_id"),
    Index("ix_webhook_inbox_status_id", "status", "id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("flow", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    *(Column(name, Integer, nullable=False, server_default=_ZERO) for name in RUN_COUNTERS),
    Column("note", Text, nullable=True),
    CheckConstraint(_in("status", RUN_STATUSES), name="ck_runs_status"),
    Index("ix_runs_flow_started_at", "flow", "started_at"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("run_id", BigId, nullable=True),  # no foreign key: audit outlives pruned runs
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("detail", Json, nullable=False),
    Index("ix_audit_run_id", "run_id"),
    Index("ix_audit_at", "at"),
)

#: Every table, in an order safe for TRUNCATE/DELETE (no foreign keys between them).
ALL_TABLES = (golden, links, match_keys, cursors, jobs, webhook_inbox, runs, audit)
