"""The queue worker: claims jobs from the store and runs them through the engine.

Several workers, on several machines, can share one PostgreSQL store: a job is claimed under
a lease (`FOR UPDATE SKIP LOCKED`), so two workers never run it at once, and a worker that
dies loses its lease, so another picks the job up. On SIGTERM a worker finishes the job in
hand (or releases it) and stops: nothing is lost.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from datetime import UTC, datetime, timedelta

import structlog

from hub.engine.page import RECORD_JOB
from hub.engine.runner import Engine, UnknownFlow
from hub.errors import SynchubError
from hub.store import Job, NewJob, Store

log = structlog.get_logger()

FLOW_JOB = "flow"
MAX_BACKOFF = timedelta(hours=1)


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
    """Runs jobs until told to stop."""

    def __init__(self, engine: Engine, store: Store, owner: str | None = None, lease_seconds: float = 300.0,
                 idle_seconds: float = 1.0, retry_base: float = 30.0) -> None:
        self.engine = engine
        self.store = store
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.retry_base = retry_base
        self.stopping = threading.Event()
        self.log = log.bind(worker=self.owner)

    def run(self) -> None:
        self.log.info("worker started")
        while not self.stopping.is_set():
            if not self.run_once():
                self.stopping.wait(self.idle_seconds)
        self.log.info("worker stopped")

    def stop(self) -> None:
        self.stopping.set()

    def run_once(self) -> bool:
        """Claim and run one due job; False when there was none."""
        with self.store.transaction() as tx:
            job = tx.claim(self.owner, self.lease_seconds)
        if job is None:
            return False
        self._run(job)
        return True

    def _run(self, job: Job) -> None:
        bound = self.log.bind(job_id=job.id, kind=job.kind, flow=job.flow, attempt=job.attempts)
        try:
            pending = self._execute(job)
        except UnknownFlow as exc:
            self._kill(job, str(exc))
            return
        except SynchubError as exc:
            bound.warning("job failed", error=str(exc)[:500])
            self._again(job, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:  # a bug must not kill the worker; the job keeps its place in the queue
            bound.error("job crashed", error=str(exc)[:500], exc_info=True)
            self._again(job, f"{type(exc).__name__}: {exc}")
            return
        if pending:
            self._again(job, pending)
        else:
            with self.store.transaction() as tx:
                tx.finish(job.id, self.owner)

    def _execute(self, job: Job) -> str:
        """Run the job; a non-empty answer means the work is not done yet (and why)."""
        if job.kind == FLOW_JOB:
            payload = job.payload or {}
            self.engine.run_flow(job.flow or "", trigger=str(payload.get("trigger", "queue")),
                                 full=bool(payload.get("full", False)))
            return ""
        if job.kind == RECORD_JOB:
            payload = job.payload or {}
            report = self.engine.run_records(str(payload["flow"]), [str(payload["external_id"])],
                                             trigger=str(payload.get("trigger", "retry")))
            if report.counts.waiting or report.counts.failed:
                return report.problems[0] if report.problems else "record is still waiting"
            return ""
        raise SynchubError(f"unknown job kind '{job.kind}'")

    def _again(self, job: Job, reason: str) -> None:
        with self.store.transaction() as tx:
            if job.attempts >= job.max_attempts:
                tx.kill(job.id, self.owner, f"gave up after {job.attempts} attempts: {reason}")
            else:
                tx.retry(job.id, self.owner, datetime.now(UTC) + backoff(job.attempts, self.retry_base), reason)

    def _kill(self, job: Job, reason: str) -> None:
        with self.store.transaction() as tx:
            tx.kill(job.id, self.owner, reason)
