"""Links keyed by entity too; runs count skipped records.

One vendor record can stand for several entities (an ERP sales order is an order, and also
the request of its contract approval), so the unique key of links gains `entity`. A run
also counts the records its source mapping's `only` left out.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _links_0001() -> sa.Table:
    """The links table as 0001 made it, spelled out so that SQLite's table rebuild needs no
    reflection (offline `--sql` mode) and later schema edits cannot change this migration."""
    return sa.Table(
        "links", sa.MetaData(),
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("canonical_id", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("seen_hash", sa.Text(), nullable=True),
        sa.Column("written_hash", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("external_id", "system", "object", name="uq_links_external_id_system_object"),
        sa.Index("ix_links_entity_canonical_system", "entity", "canonical_id", "system"),
        sa.Index("ix_links_canonical_system_object", "canonical_id", "system", "object"),
    )


def upgrade() -> None:
    # SQLite rebuilds the table (copying its rows); PostgreSQL alters it in place
    with op.batch_alter_table("links", copy_from=_links_0001()) as batch:
        batch.drop_constraint("uq_links_external_id_system_object", type_="unique")
        batch.create_unique_constraint("uq_links_external_system_object_entity",
                                       ["external_id", "system", "object", "entity"])
    op.add_column("runs", sa.Column("skipped", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("skipped")
    with op.batch_alter_table("links") as batch:  # fails if a record is now linked as several entities
        batch.drop_constraint("uq_links_external_system_object_entity", type_="unique")
        batch.create_unique_constraint("uq_links_external_id_system_object", ["external_id", "system", "object"])
