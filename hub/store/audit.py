"""The audit trail: who (a person or the engine) did what to which subject, and when."""

from __future__ import annotations

from sqlalchemy import insert, select

from hub.store.base import TxBase
from hub.store.models import AuditEntry
from hub.store.schema import audit as audit_table
from hub.store.types import utcnow


class AuditMixin(TxBase):
    def audit(self, entries: list[AuditEntry]) -> None:
        """Append entries; `at` defaults to now, `id` is assigned by the database."""
        if not entries:
            return
        now = utcnow()
        rows = [
            {
                "at": e.at or now,
                "run_id": e.run_id,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            }
            for e in entries
        ]
        self.connection.execute(insert(audit_table), rows)

    def audit_recent(self, limit: int = 50, run_id: int | None = None) -> list[AuditEntry]:
        """The latest entries, newest first, of one run or of all."""
        stmt = select(audit_table).order_by(audit_table.c.at.desc(), audit_table.c.id.desc()).limit(limit)
        if run_id is not None:
            stmt = stmt.where(audit_table.c.run_id == run_id)
        return [AuditEntry(**row._mapping) for row in self.connection.execute(stmt)]
