"""A running record job no longer holds its dedupe key.

An event for a record that arrives while that record's job runs (and may already have read
it) must queue the next job, or the change is lost until the next scheduled run. Flow jobs
keep holding their key while running, so that one flow never runs twice at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_WHERE = "status IN ('queued', 'running')"
NEW_WHERE = "status = 'queued' OR (status = 'running' AND kind = 'flow')"


def _index(name: str, where: str) -> None:
    op.create_index(name, "jobs", ["dedupe_key"], unique=True,
                    sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    op.drop_index("uq_jobs_open_dedupe_key", table_name="jobs")
    _index("uq_jobs_pending_dedupe_key", NEW_WHERE)


def downgrade() -> None:
    op.drop_index("uq_jobs_pending_dedupe_key", table_name="jobs")
    _index("uq_jobs_open_dedupe_key", OLD_WHERE)
