"""The queue worker: claims jobs from the store and runs them through the engine.

Several workers, on several machines, can share one PostgreSQL store: a job is claimed under
a lease (`FOR UPDATE SKIP LOCKED`), so two workers never run it at once, and a worker that
dies loses its lease, so another picks the job up. On SIGTERM a worker finishes the job in
hand (or releases it) and stops: nothing is lost.

The lease is short (`LEASE_SECONDS`) and the worker renews it every third of that while the
job runs, from a thread of its own: a flow run can take far longer than any fixed lease (the
first import of 100,000 records), and must not be claimed a second time while it runs,
while the job of a worker killed mid-run (SIGKILL, a lost machine) must not wait long before
another worker, or the same service restarted, takes it over.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import structlog

from hub.engine.page import RECORD_JOB
from hub.engine.runner import Engine, UnknownFlow
from hub.errors import SynchubError
from hub.store import Job, NewJob, Store

log = structlog.get_logger()

FLOW_JOB = "flow"
MAX_BACKOFF = timedelta(hours=1)
LEASE_SECONDS = 30.0  # a claimed job's lease, renewed every third of it while the job runs
RECORD_BATCH = 200  # record jobs of one flow due together run together, as one page


def flow_job(flow: str, trigger: str, full: bool = False) -> NewJob:
    """A job that runs a whole flow; at most one is open per flow, so ticks never pile up."""
    return NewJob(kind=FLOW_JOB, flow=flow, payload={"trigger": trigger, "full": full}, max_attempts=3,
                  dedupe_key=f"{FLOW_JOB}:{flow}")


def record_job(flow: str, obj: str, external_id: str, trigger: str) -> NewJob:
    """A job that syncs one record now (from a webhook, say)."""
    return NewJob(kind=RECORD_JOB, flow=flow, payload={"flow": flow, "object": obj, "external_id": external_id,
                                                       "trigger": trigger},
                  max_attempts=8, dedupe_key=f"{RECORD_JOB}:{flow}:{external_id}")


def backoff(attempts: int, base: float = 30.0) -> timedelta:
    """Queue-level wait before the next attempt: doubling from `base` seconds, with jitter, capped."""
    seconds = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Runs jobs until told to stop.

    With nothing due it looks at the queue again after `idle_seconds`, or as soon as
    `wake` is called: `synchub run` wakes it whenever its webhook intake or admin API
    queued jobs, so a callback's job starts at once instead of up to a poll later (the
    poll stays for retries coming due, schedules, and jobs queued by other processes).
    """

    def __init__(self, engine: Engine, store: Store, owner: str | None = None, lease_seconds: float = LEASE_SECONDS,
                 idle_seconds: float = 1.0, retry_base: float = 30.0, record_batch: int = RECORD_BATCH) -> None:
        self.engine = engine
        self.store = store
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.retry_base = retry_base
        self.record_batch = max(1, record_batch)
        self.stopping = threading.Event()
        self._woken = threading.Event()
        self.log = log.bind(worker=self.owner)

    def run(self) -> None:
        self.log.info("worker started")
        while not self.stopping.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # the store failed us (busy, gone, a bug): keep the worker alive
                self.log.error("worker step failed", error=str(exc)[:500], exc_info=True)
                busy = False  # a job left running is taken over when its lease expires
            if not busy:
                self._woken.wait(self.idle_seconds)
            self._woken.clear()  # a wake during the step above finds the queue read already
        self.log.info("worker stopped")

    def wake(self) -> None:
        """Jobs were queued: look at the queue now rather than after the idle wait (thread-safe)."""
        self._woken.set()

    def stop(self) -> None:
        self.stopping.set()
        self._woken.set()

    def run_once(self) -> bool:
        """Claim and run the work due first; False when there was none.

        The work is one job, except that record jobs due together for one flow run together,
        up to `record_batch` of them, as one page: after an outage or a crash hundreds of
        records may wait (orders whose customer was not there yet), and syncing them one by
        one, each with its own vendor calls, would hold every flow up for minutes.
        """
        with self.store.transaction() as tx:
            job = tx.claim(self.owner, self.lease_seconds)
            jobs = [] if job is None else [job]
            if job is not None and job.kind == RECORD_JOB and self.record_batch > 1:
                jobs += tx.claim_many(self.owner, self.lease_seconds, self.record_batch - 1, kinds=[RECORD_JOB],
                                      flow=job.flow)
        if not jobs:
            return False
        self._run(jobs)
        return True

    def _run(self, jobs: list[Job]) -> None:
        first = jobs[0]
        bound = self.log.bind(job_id=first.id, kind=first.kind, flow=first.flow, attempt=first.attempts, jobs=len(jobs))
        try:
            with self._lease_kept(jobs):
                pending = self._execute(jobs)
        except UnknownFlow as exc:
            for job in jobs:
                self._kill(job, str(exc))
            return
        except SynchubError as exc:
            bound.warning("job failed", error=str(exc)[:500])
            pending = {job.id: f"{type(exc).__name__}: {exc}" for job in jobs}
        except Exception as exc:  # a bug must not kill the worker; the jobs keep their place in the queue
            bound.error("job crashed", error=str(exc)[:500], exc_info=True)
            pending = {job.id: f"{type(exc).__name__}: {exc}" for job in jobs}
        done = [job.id for job in jobs if not pending.get(job.id)]
        if done:
            with self.store.transaction() as tx:
                tx.finish_many(done, self.owner)
        for job in jobs:
            if pending.get(job.id):
                self._again(job, pending[job.id])

    @contextmanager
    def _lease_kept(self, jobs: list[Job]) -> Iterator[None]:
        """Renew the jobs' leases every third of their length until the block ends (their
        outcome is written after, so that no renewal races it)."""
        done = threading.Event()
        ids = [job.id for job in jobs]

        def renew() -> None:
            while not done.wait(self.lease_seconds / 3):
                try:
                    with self.store.transaction() as tx:
                        ours = tx.heartbeat_many(ids, self.owner, self.lease_seconds)
                except Exception as exc:  # the store may be busy or gone for a moment; the next beat retries
                    self.log.warning("lease renewal failed", job_ids=ids[:5], error=str(exc)[:300])
                    continue
                if len(ours) < len(ids):
                    self.log.warning("lease lost: another worker owns a job now", job_ids=sorted(set(ids) - ours)[:5])
                    return

        beat = threading.Thread(target=renew, name=f"lease-{ids[0]}", daemon=True)
        beat.start()
        try:
            yield
        finally:
            done.set()
            beat.join()

    def _execute(self, jobs: list[Job]) -> dict[int, str]:
        """Run one flow job, or record jobs of one flow; for each job not done yet, why."""
        job = jobs[0]
        if job.kind == FLOW_JOB:
            payload = job.payload or {}
            self.engine.run_flow(job.flow or "", trigger=str(payload.get("trigger", "queue")),
                                 full=bool(payload.get("full", False)))
            return {}
        if job.kind == RECORD_JOB:
            return self._sync_records(jobs)
        raise SynchubError(f"unknown job kind '{job.kind}'")

    def _sync_records(self, jobs: list[Job]) -> dict[int, str]:
        """The jobs' records synced as one page; the jobs whose record waits or failed again."""
        payload = jobs[0].payload or {}
        records = {job.id: str((job.payload or {})["external_id"]) for job in jobs}
        report = self.engine.run_records(str(payload["flow"]), list(dict.fromkeys(records.values())),
                                         trigger=str(payload.get("trigger", "retry")), requeue=False)
        return {job_id: report.unfinished[external_id] or "record is still waiting"
                for job_id, external_id in records.items() if external_id in report.unfinished}

    def _again(self, job: Job, reason: str) -> None:
        with self.store.transaction() as tx:
            if job.attempts >= job.max_attempts:
                tx.kill(job.id, self.owner, f"gave up after {job.attempts} attempts: {reason}")
            else:
                tx.retry(job.id, self.owner, datetime.now(UTC) + backoff(job.attempts, self.retry_base), reason)

    def _kill(self, job: Job, reason: str) -> None:
        with self.store.transaction() as tx:
            tx.kill(job.id, self.owner, reason)
