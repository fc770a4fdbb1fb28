"""Writing records straight into the dead-letter queue, and queue views for operators.

A record the engine rejects at once (a mapping error, a vendor's validation error, an
ambiguous match) never runs as a job: it is stored as a dead job with its reason, once. Its
`dedupe_key` names the record and target, so seeing the same bad record again (a full
re-run) does not add a second dead letter while the first is still there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from hub.store.base import TxBase, chunked, unique
from hub.store.models import Job, NewJob
from hub.store.schema import jobs
from hub.store.types import utcnow


class DeadLettersMixin(TxBase):
    def bury(self, batch: list[tuple[NewJob, str]], now: datetime | None = None) -> list[int | None]:
        """Store (job, reason) pairs as dead jobs; None for one already dead under its key."""
        now = now or utcnow()
        keys = [job.dedupe_key for job, _ in batch if job.dedupe_key]
        already = self._dead_with_keys(keys)
        ids: list[int | None] = []
        for job, reason in batch:
            if job.dedupe_key and job.dedupe_key in already:
                ids.append(None)
                continue
            if job.dedupe_key:
                already.add(job.dedupe_key)
            row = {"kind": job.kind, "flow": job.flow, "payload": job.payload, "status": "dead", "attempts": 0,
                   "max_attempts": job.max_attempts, "next_attempt_at": now, "dedupe_key": job.dedupe_key,
                   "last_error": reason, "created_at": now, "updated_at": now}
            ids.append(self.connection.execute(insert(jobs).values(**row).returning(jobs.c.id)).scalar_one())
        return ids

    def _dead_with_keys(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for part in chunked(unique(keys)):
            stmt = select(jobs.c.dedupe_key).where(jobs.c.status == "dead", jobs.c.dedupe_key.in_(part))
            found.update(k for (k,) in self.connection.execute(stmt))
        return found

    def jobs_by_status(self, status: str, limit: int = 1000) -> list[Job]:
        """Jobs in one status, oldest first (operators' view of the queue)."""
        stmt = select(jobs).where(jobs.c.status == status).order_by(jobs.c.id).limit(limit)
        return [Job(**row._mapping) for row in self.connection.execute(stmt)]

    def make_due_now(self, now: datetime | None = None) -> int:
        """Every queued job becomes due at once ("retry now" for an operator, and for tests)."""
        now = now or utcnow()
        stmt = update(jobs).where(jobs.c.status == "queued", jobs.c.next_attempt_at > now).values(
            next_attempt_at=now, updated_at=now)
        return self.connection.execute(stmt).rowcount or 0
