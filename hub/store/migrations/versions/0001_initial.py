"""The initial schema: golden, links, match_keys, cursors, jobs, webhook_inbox, runs, audit.

Written by hand and frozen: it spells its types out instead of importing `schema.py`, so
that later edits of the schema cannot change what this migration did. A test checks that a
database migrated to head matches `schema.py`.

Revision ID: 0001
Revises:
Create Date: 2024-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ZERO = sa.text("0")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "golden",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_golden"),
    )
    op.create_index("ix_golden_entity", "golden", ["entity"])

    op.create_table(
        "links",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("canonical_id", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("seen_hash", sa.Text(), nullable=True),
        sa.Column("written_hash", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("external_id", "system", "object", name="uq_links_external_id_system_object"),
    )
    op.create_index("ix_links_entity_canonical_system", "links", ["entity", "canonical_id", "system"])
    op.create_index("ix_links_canonical_system_object", "links", ["canonical_id", "system", "object"])

    op.create_table(
        "match_keys",
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("canonical_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("value", "key", "entity", "canonical_id", name="pk_match_keys"),
    )
    op.create_index("ix_match_keys_canonical_entity", "match_keys", ["canonical_id", "entity"])

    op.create_table(
        "cursors",
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("flow", name="pk_cursors"),
    )

    op.create_table(
        "jobs",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("flow", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=ZERO),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'dead')", name="ck_jobs_status"),
    )
    op.create_index("ix_jobs_status_next_attempt_at", "jobs", ["status", "next_attempt_at"])
    open_only = sa.text("status IN ('queued', 'running')")
    op.create_index(
        "uq_jobs_open_dedupe_key",
        "jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=open_only,
        postgresql_where=open_only,
    )

    op.create_table(
        "webhook_inbox",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        _ts("received_at"),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_inbox"),
        sa.CheckConstraint("status IN ('new', 'done')", name="ck_webhook_inbox_status"),
        sa.UniqueConstraint("system", "event_id", name="uq_webhook_inbox_system_event_id"),
    )
    op.create_index("ix_webhook_inbox_status_id", "webhook_inbox", ["status", "id"])

    counters = ("pulled", "created", "updated", "unchanged", "skipped_echo", "failed", "dead", "waiting")
    op.create_table(
        "runs",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("flow", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default=ZERO) for name in counters),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint("status IN ('running', 'ok', 'partial', 'failed')", name="ck_runs_status"),
    )
    op.create_index("ix_runs_flow_started_at", "runs", ["flow", "started_at"])

    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        _ts("at"),
        sa.Column("run_id", BIG_ID, nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_run_id", "audit", ["run_id"])
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    for table in ("audit", "runs", "webhook_inbox", "jobs", "cursors", "match_keys", "links", "golden"):
        op.drop_table(table)
