"""Several workers on one queue: each job is claimed by exactly one of them.

On PostgreSQL the workers really run in parallel (FOR UPDATE SKIP LOCKED); on SQLite their
transactions are serialised by BEGIN IMMEDIATE. Nothing here measures time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.store import NewJob, Store

JOBS = 200


def _workers(store: Store) -> int:
    return 4 if store.dialect == "postgresql" else 2


@pytest.mark.parametrize("batch", [1, 7])
def test_concurrent_claims_take_each_job_exactly_once(store: Store, batch: int) -> None:
    with store.transaction() as tx:
        tx.enqueue([NewJob("push", {"n": n}) for n in range(JOBS)])
    workers = _workers(store)
    start = threading.Barrier(workers)

    def work(owner: str) -> list[int]:
        taken: list[int] = []
        start.wait()
        while True:
            with store.transaction() as tx:
                if batch > 1:
                    jobs = tx.claim_many(owner, 60, batch)
                else:
                    one = tx.claim(owner, 60)
                    jobs = [one] if one else []
                if not jobs:
                    return taken
                for job in jobs:
                    assert job.lease_owner == owner and job.attempts == 1
                    assert tx.finish(job.id, owner)
                taken.extend(job.id for job in jobs)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(work, [f"worker-{i}" for i in range(workers)]))

    counts = Counter(job_id for taken in results for job_id in taken)
    duplicates = {job_id: n for job_id, n in counts.items() if n > 1}
    assert duplicates == {}
    assert len(counts) == JOBS
    with store.transaction() as tx:
        assert tx.queue_depth() == {"queued": 0, "running": 0, "done": JOBS, "dead": 0}


@pytest.mark.parametrize("first_commits", [True, False], ids=["commit", "rollback"])
def test_concurrent_enqueue_of_one_dedupe_key(store: Store, first_commits: bool) -> None:
    """The second enqueue waits for the first transaction, then dedupes (or inserts, if the
    first rolled back): never two open jobs with one key."""

    def enqueue_elsewhere() -> int | None:
        with store.transaction() as tx:
            return tx.enqueue([NewJob("pull", dedupe_key="pull:crm")])[0]

    class Abort(Exception):
        pass

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            with store.transaction() as tx:
                (first,) = tx.enqueue([NewJob("pull", dedupe_key="pull:crm")])
                assert first is not None
                second = pool.submit(enqueue_elsewhere)
                time.sleep(0.2)  # let the other transaction reach the key (not a timing assertion)
                if not first_commits:
                    raise Abort
        except Abort:
            pass
        other = second.result(timeout=60)

    if first_commits:
        assert other is None
    else:
        assert other is not None
    with store.transaction() as tx:
        assert tx.queue_depth()["queued"] == 1
