"""The durable job queue, and its dead-letter queue (jobs with status `dead`).

Life of a job: `queued` → claimed (`running`, with a lease) → `done`, or back to `queued`
via `retry` (with a delay) or `release` (clean shutdown), or `dead` via `kill` (a rejected
record, attempts exhausted). An admin can `replay` dead jobs or `discard` them.

Leases make the queue survive crashes: a claimed job carries its worker's name and an
expiry; a worker that stops heart-beating loses the job to the next `claim`, which counts
the lost run as an attempt (so a job that kills every worker it touches ends up dead
instead of looping forever). Every owner-checked call returns False once the lease was lost:
the worker must then drop its result, another worker owns the job.

Concurrency: on PostgreSQL `claim` selects with `FOR UPDATE SKIP LOCKED`, so concurrent
workers pass over each other's rows instead of queueing behind them and never claim the
same job. On SQLite every transaction is `BEGIN IMMEDIATE` (see `engine.py`): claims are
serialised by the single writer lock. Timestamps come from the caller's clock (`now`,
default: this host's UTC time); hosts sharing a database must keep their clocks in sync.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Row, Text, and_, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from hub.store.base import TxBase, chunked, unique
from hub.store.engine import dump_json
from hub.store.models import Job, NewJob
from hub.store.schema import DEDUPE_WHERE, JOB_STATUSES, jobs
from hub.store.types import _to_utc, sqlite_timestamp, utcnow

log = structlog.get_logger()

_LEASE_LOST = literal("worker lost the job (lease expired) on its last attempt; last error: ", Text)


def _plain_insert() -> Insert:
    return insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True)


_JOB_COLUMNS = "kind, flow, payload, status, attempts, max_attempts, next_attempt_at, dedupe_key, created_at, updated_at"
#: Keyed jobs per SQLite statement: 10 values each, far below SQLite's 32,766 bound parameters.
_SQLITE_KEYED_ROWS = 500


@functools.lru_cache(maxsize=64)
def _sqlite_keyed_insert(rows: int) -> str:
    """SQLite: `rows` keyed jobs in one multi-row INSERT that skips keys already open."""
    values = ", ".join(["(?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING RETURNING id, dedupe_key"


#: PostgreSQL: keyed jobs in one statement of constant text (see `inbox._POSTGRES_INSERT` for why).
_POSTGRES_KEYED_INSERT = (
    f"INSERT INTO jobs ({_JOB_COLUMNS}) "
    "SELECT r.kind, r.flow, r.payload, 'queued', 0, r.max_attempts, r.next_attempt_at, r.dedupe_key, %(now)s, %(now)s "
    "FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) "
    "AS r(kind text, flow text, payload jsonb, max_attempts integer, next_attempt_at timestamptz, dedupe_key text) "
    "ON CONFLICT DO NOTHING RETURNING id, dedupe_key")


def _job(row: Row) -> Job:
    return Job(**row._mapping)


class JobsMixin(TxBase):
    # --- producing ------------------------------------------------------------------------

    def enqueue(self, batch: list[NewJob], now: datetime | None = None) -> list[int | None]:
        """Queue jobs; for each one, in order, its id, or None when it was deduplicated.

        A job is deduplicated when an open (queued or running) job with its `dedupe_key`
        exists, or an earlier job of the same batch has that key. The partial unique index
        makes this race-safe: of two concurrent enqueues of one key, one inserts and the
        other does nothing (on PostgreSQL it waits for the first to commit or roll back).
        """
        now = now or utcnow()
        ids: list[int | None] = [None] * len(batch)
        plain: list[int] = []
        keyed: dict[str, int] = {}
        for i, job in enumerate(batch):
            if job.dedupe_key is None:
                plain.append(i)
            else:
                keyed.setdefault(job.dedupe_key, i)

        if plain:
            stmt = self._statement("enqueue_plain", _plain_insert)
            result = self.connection.execute(stmt, [self._new_row(batch[i], now) for i in plain])
            for i, row in zip(plain, result, strict=True):
                ids[i] = row.id
        if keyed:
            for new_id, key in self._insert_keyed([batch[i] for i in keyed.values()], now):
                ids[keyed[key]] = new_id
        self._wrote(jobs, len(plain) + len(keyed))
        return ids

    def _insert_keyed(self, batch: list[NewJob], now: datetime) -> list[tuple[int, str]]:
        """Insert jobs with distinct dedupe keys, skipping keys already open; (id, key) of each new one.

        Record jobs come here once per webhook batch, so this speaks to the driver directly
        (`TxBase._driver_rows` says why).
        """
        if self.dialect == "postgresql":
            records = [{"kind": job.kind, "flow": job.flow, "payload": job.payload, "max_attempts": job.max_attempts,
                        "next_attempt_at": _to_utc(job.not_before or now).isoformat(), "dedupe_key": job.dedupe_key}
                       for job in batch]  # ISO 8601 with the UTC offset: timestamptz reads it
            return self._driver_rows(_POSTGRES_KEYED_INSERT, {"rows": dump_json(records), "now": now})
        stamp = sqlite_timestamp(now)
        created: list[tuple[int, str]] = []
        for part in chunked(batch, _SQLITE_KEYED_ROWS):
            values = [value for job in part for value in (
                job.kind, job.flow, dump_json(job.payload), job.max_attempts,
                stamp if job.not_before is None else sqlite_timestamp(job.not_before), job.dedupe_key, stamp, stamp)]
            created += self._driver_rows(_sqlite_keyed_insert(len(part)), values)
        return created

    @staticmethod
    def _new_row(job: NewJob, now: datetime) -> dict[str, Any]:
        return {
            "kind": job.kind,
            "flow": job.flow,
            "payload": job.payload,
            "status": "queued",
            "attempts": 0,
            "max_attempts": job.max_attempts,
            "next_attempt_at": job.not_before or now,
            "dedupe_key": job.dedupe_key,
            "created_at": now,
            "updated_at": now,
        }

    # --- consuming ------------------------------------------------------------------------

    def claim(
        self, owner: str, lease_seconds: float, now: datetime | None = None, kinds: list[str] | None = None
    ) -> Job | None:
        """Claim the job due first (see `claim_many`), or None when nothing is due."""
        claimed = self.claim_many(owner, lease_seconds, 1, now=now, kinds=kinds)
        return claimed[0] if claimed else None

    def claim_many(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        now: datetime | None = None,
        kinds: list[str] | None = None,
        flow: str | None = None,
    ) -> list[Job]:
        """Claim up to `limit` due jobs, earliest `next_attempt_at` first, for `owner` (only
        jobs of these `kinds` and of this `flow`, when given).

        Due means queued with `next_attempt_at <= now`, or running with an expired lease
        (its worker died). Each claim counts an attempt. A job whose lease expired after
        its last allowed attempt is killed here instead of being run again.
        """
        now = now or utcnow()
        claimed: list[Job] = []
        while len(claimed) < limit:
            candidates = self._due(now, limit - len(claimed), kinds, flow)
            if not candidates:
                break
            exhausted: list[int] = []
            runnable: list[int] = []
            for r in candidates:  # a lost lease on the last allowed attempt: no more tries
                lost_last = r.status == "running" and r.attempts >= r.max_attempts
                (exhausted if lost_last else runnable).append(r.id)
            if exhausted:
                self._kill_exhausted(exhausted, now)
            if runnable:
                claimed.extend(self._take(runnable, owner, now + timedelta(seconds=lease_seconds), now))
            if not exhausted:
                break
        return claimed

    def _due(self, now: datetime, limit: int, kinds: list[str] | None, flow: str | None = None) -> Sequence[Row]:
        due = or_(
            and_(jobs.c.status == "queued", jobs.c.next_attempt_at <= now),
            and_(jobs.c.status == "running", jobs.c.lease_expires_at <= now),
        )
        stmt = (
            select(jobs.c.id, jobs.c.status, jobs.c.attempts, jobs.c.max_attempts)
            .where(due)
            .order_by(jobs.c.next_attempt_at, jobs.c.id)
            .limit(limit)
        )
        if kinds is not None:
            stmt = stmt.where(jobs.c.kind.in_(kinds))
        if flow is not None:
            stmt = stmt.where(jobs.c.flow == flow)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return self.connection.execute(stmt).all()

    def _take(self, ids: list[int], owner: str, lease_expires_at: datetime, now: datetime) -> list[Job]:
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(
                status="running",
                lease_owner=owner,
                lease_expires_at=lease_expires_at,
                attempts=jobs.c.attempts + 1,
                updated_at=now,
            )
            .returning(*jobs.c)
        )
        taken = [_job(row) for row in self.connection.execute(stmt)]
        taken.sort(key=lambda j: (j.next_attempt_at, j.id))
        return taken

    def _kill_exhausted(self, ids: list[int], now: datetime) -> None:
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(
                status="dead",
                lease_expires_at=None,
                last_error=_LEASE_LOST + func.coalesce(jobs.c.last_error, "none"),
                updated_at=now,
            )
        )
        self.connection.execute(stmt)
        log.warning("store.jobs.lease_exhausted", job_ids=ids)

    def _mine(self, job_id: int, owner: str) -> ColumnElement[bool]:
        return and_(jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == owner)

    def _if_mine(self, job_id: int, owner: str, **values: Any) -> bool:
        stmt = update(jobs).where(self._mine(job_id, owner)).values(updated_at=utcnow(), **values)
        return self.connection.execute(stmt).rowcount == 1

    def _many_if_mine(self, job_ids: list[int], owner: str, **values: Any) -> set[int]:
        ours: set[int] = set()
        for part in chunked(unique(job_ids)):
            stmt = (
                update(jobs)
                .where(jobs.c.id.in_(part), jobs.c.status == "running", jobs.c.lease_owner == owner)
                .values(updated_at=utcnow(), **values)
                .returning(jobs.c.id)
            )
            ours.update(self.connection.execute(stmt).scalars())
        return ours

    def heartbeat(self, job_id: int, owner: str, lease_seconds: float, now: datetime | None = None) -> bool:
        """Extend the lease to `now + lease_seconds`; False if the job is no longer ours."""
        now = now or utcnow()
        return self._if_mine(job_id, owner, lease_expires_at=now + timedelta(seconds=lease_seconds))

    def heartbeat_many(
        self, job_ids: list[int], owner: str, lease_seconds: float, now: datetime | None = None
    ) -> set[int]:
        """`heartbeat` for a batch worker's jobs; returns the ids that are still ours."""
        now = now or utcnow()
        return self._many_if_mine(job_ids, owner, lease_expires_at=now + timedelta(seconds=lease_seconds))

    def finish(self, job_id: int, owner: str) -> bool:
        """The job succeeded: done. False if the job is no longer ours."""
        return self._if_mine(job_id, owner, status="done", lease_expires_at=None)

    def finish_many(self, job_ids: list[int], owner: str) -> set[int]:
        """`finish` for a batch worker's jobs; returns the ids that were still ours."""
        return self._many_if_mine(job_ids, owner, status="done", lease_expires_at=None)

    def retry(self, job_id: int, owner: str, next_attempt_at: datetime, error: str) -> bool:
        """The attempt failed but may succeed later: queued again, attempts kept.

        The caller decides between `retry` and `kill` by comparing `attempts` with
        `max_attempts`: the policy (and the backoff) belongs to the engine. A running record
        job holds no dedupe key (see the jobs table): when an event for the same record queued
        the next job meanwhile, this one is done instead (`_requeue`).
        """
        return self._requeue(job_id, owner, next_attempt_at, error, status="queued",
                             next_attempt_at=next_attempt_at, last_error=error)

    def _requeue(self, job_id: int, owner: str, due: datetime | None, error: str | None, **values: Any) -> bool:
        """Put a running job of ours back in the queue, or, if another queued job took its
        dedupe key while it ran, mark it done: the queued job does the same work (it syncs the
        record as it is then), and is made due no later than this one would have been.

        Without this, going back to `queued` would break the unique index, and the error
        would escape into the worker."""
        try:
            with self.connection.begin_nested():
                return self._if_mine(job_id, owner, lease_owner=None, lease_expires_at=None, **values)
        except IntegrityError:
            pass
        key = self.connection.execute(select(jobs.c.dedupe_key).where(jobs.c.id == job_id)).scalar_one()
        if due is not None:
            self.connection.execute(update(jobs).where(
                jobs.c.dedupe_key == key, jobs.c.status == "queued", jobs.c.next_attempt_at > due
            ).values(next_attempt_at=due, updated_at=utcnow()))
        log.info("store.jobs.superseded", job_id=job_id, dedupe_key=key)
        note = "superseded by a newer queued job for the same key"
        return self._if_mine(job_id, owner, status="done", lease_expires_at=None,
                             last_error=f"{note}; {error}" if error else note)

    def kill(self, job_id: int, owner: str, reason: str) -> bool:
        """Retrying won't help: dead-letter the job with the reason an admin will read."""
        return self._if_mine(job_id, owner, status="dead", last_error=reason, lease_expires_at=None)

    def release(self, job_id: int, owner: str) -> bool:
        """Give the job back unfinished (clean shutdown): queued, the attempt not counted (or
        done, when a newer queued job took its key meanwhile: see `_requeue`)."""
        return self._requeue(job_id, owner, None, None, status="queued",
                             attempts=case((jobs.c.attempts > 0, jobs.c.attempts - 1), else_=0))

    # --- the dead-letter queue and inspection ---------------------------------------------

    def job_get(self, job_id: int) -> Job | None:
        row = self.connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else _job(row)

    def dead_jobs(self, limit: int = 50, offset: int = 0, flow: str | None = None) -> list[Job]:
        """Dead jobs, most recently killed first, one page at a time."""
        stmt = (
            select(jobs)
            .where(jobs.c.status == "dead")
            .order_by(jobs.c.updated_at.desc(), jobs.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if flow is not None:
            stmt = stmt.where(jobs.c.flow == flow)
        return [_job(row) for row in self.connection.execute(stmt)]

    def replay(self, ids: list[int] | None = None, now: datetime | None = None) -> int:
        """Queue dead jobs again (all when `ids` is None), attempts reset, due now.

        Returns how many were requeued. A dead job whose dedupe key is held by another job
        (or by a newer dead job replayed in the same call) stays dead: that other job
        already does its work. `last_error` is kept as a record of why it had died.
        """
        now = now or utcnow()
        dead = self._dead_keys(ids)
        keys = unique(key for key in dead.values() if key is not None)
        open_keys = self._open_keys(keys)
        chosen: dict[str, int] = {}
        for job_id, key in sorted(dead.items()):
            if key is not None and key not in open_keys:
                chosen[key] = job_id  # ascending ids: the newest dead job of a key wins
        to_queue = [job_id for job_id, key in dead.items() if key is None] + list(chosen.values())
        skipped = len(dead) - len(to_queue)
        if skipped:
            log.info("store.jobs.replay_skipped_duplicates", count=skipped)
        replayed = 0
        for part in chunked(sorted(to_queue)):
            stmt = (
                update(jobs)
                .where(jobs.c.id.in_(part), jobs.c.status == "dead")
                .values(
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            replayed += self.connection.execute(stmt).rowcount
        return replayed

    def _dead_keys(self, ids: list[int] | None) -> dict[int, str | None]:
        base = select(jobs.c.id, jobs.c.dedupe_key).where(jobs.c.status == "dead")
        if ids is None:
            return {row.id: row.dedupe_key for row in self.connection.execute(base)}
        found: dict[int, str | None] = {}
        for part in chunked(unique(ids)):
            rows = self.connection.execute(base.where(jobs.c.id.in_(part)))
            found.update((row.id, row.dedupe_key) for row in rows)
        return found

    def _open_keys(self, keys: list[str]) -> set[str]:
        """The keys a job holds now, by the same rule as the unique index (`DEDUPE_WHERE`)."""
        found: set[str] = set()
        for part in chunked(keys):
            stmt = select(jobs.c.dedupe_key).where(text(f"({DEDUPE_WHERE})"), jobs.c.dedupe_key.in_(part))
            found.update(self.connection.execute(stmt).scalars())
        return found

    def discard(self, ids: list[int]) -> int:
        """Delete dead jobs for good; jobs in other states are left alone. Returns the count."""
        deleted = 0
        for part in chunked(unique(ids)):
            stmt = delete(jobs).where(jobs.c.id.in_(part), jobs.c.status == "dead")
            deleted += self.connection.execute(stmt).rowcount
        return deleted

    def purge_done(self, finished_before: datetime) -> int:
        """Delete done jobs last touched before the given time (the queue table stays small)."""
        stmt = delete(jobs).where(jobs.c.status == "done", jobs.c.updated_at < finished_before)
        return self.connection.execute(stmt).rowcount

    def queue_depth(self) -> dict[str, int]:
        """How many jobs are in each state (every state present, zero included)."""
        depth = dict.fromkeys(JOB_STATUSES, 0)
        stmt = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        for status, count in self.connection.execute(stmt):
            depth[status] = count
        return depth
