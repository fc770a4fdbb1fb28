"""The job queue: dedupe, claim order, leases, retries, the dead-letter queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.store import NewJob, Store, Tx

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def enqueue_one(tx: Tx, job: NewJob) -> int:
    (job_id,) = tx.enqueue([job], now=T0)
    assert job_id is not None
    return job_id


def test_enqueue_returns_ids_in_order_and_dedupes(store: Store) -> None:
    with store.transaction() as tx:
        ids = tx.enqueue(
            [
                NewJob("pull", {"flow": "a"}, flow="a", dedupe_key="pull:a"),
                NewJob("push", {"n": 1}),
                NewJob("pull", {"flow": "a"}, flow="a", dedupe_key="pull:a"),  # same batch
                NewJob("push", {"n": 2}),
                NewJob("pull", {"flow": "b"}, flow="b", dedupe_key="pull:b"),
            ],
            now=T0,
        )
        assert ids[2] is None
        assert all(i is not None for i in (ids[0], ids[1], ids[3], ids[4]))
        assert len({ids[0], ids[1], ids[3], ids[4]}) == 4
        assert tx.enqueue([]) == []
        jobs = {i: tx.job_get(i) for i in ids if i is not None}
        assert jobs[ids[1]].payload == {"n": 1}  # type: ignore[union-attr]
        assert jobs[ids[3]].payload == {"n": 2}  # type: ignore[union-attr]
        assert jobs[ids[0]].dedupe_key == "pull:a" and jobs[ids[0]].flow == "a"  # type: ignore[union-attr]
        first = jobs[ids[0]]
        assert first is not None
        assert (first.status, first.attempts, first.max_attempts) == ("queued", 0, 5)
        assert first.next_attempt_at == T0
    with store.transaction() as tx:
        # a queued job with the key exists: deduplicated
        assert tx.enqueue([NewJob("pull", dedupe_key="pull:a")], now=T0) == [None]
        claimed = tx.claim_many("w", 30, 10, now=at(1), kinds=["pull"])
        assert {j.dedupe_key for j in claimed} == {"pull:a", "pull:b"}
        # a running job other than a flow run does not hold its key: the next one queues behind it
        behind = tx.enqueue([NewJob("pull", dedupe_key="pull:a")], now=T0)
        assert behind[0] is not None
        assert tx.enqueue([NewJob("pull", dedupe_key="pull:a")], now=T0) == [None]
        [second] = tx.claim_many("w", 30, 10, now=at(2), kinds=["pull"])
        assert second.id == behind[0] and tx.finish(second.id, "w")
        # once it is done (or dead) the key is free again
        job_a = next(j for j in claimed if j.dedupe_key == "pull:a")
        job_b = next(j for j in claimed if j.dedupe_key == "pull:b")
        assert tx.finish(job_a.id, "w")
        assert tx.kill(job_b.id, "w", "rejected")
        new_a, new_b = tx.enqueue([NewJob("pull", dedupe_key=k) for k in ("pull:a", "pull:b")], now=T0)
        assert new_a is not None and new_a != job_a.id
        assert new_b is not None and new_b != job_b.id


def test_a_running_flow_job_holds_its_key(store: Store) -> None:
    """One flow never runs twice at once: a tick while it runs is deduplicated."""
    with store.transaction() as tx:
        [first] = tx.enqueue([NewJob("flow", flow="f", dedupe_key="flow:f")], now=T0)
        [running] = tx.claim_many("w", 30, 10, now=at(1), kinds=["flow"])
        assert running.id == first
        assert tx.enqueue([NewJob("flow", flow="f", dedupe_key="flow:f")], now=T0) == [None]
        assert tx.finish(first, "w")  # type: ignore[arg-type]
        assert tx.enqueue([NewJob("flow", flow="f", dedupe_key="flow:f")], now=T0)[0] is not None


def test_claim_takes_the_earliest_due_job_first(store: Store) -> None:
    with store.transaction() as tx:
        late, early, middle = tx.enqueue(
            [NewJob("k", not_before=at(30)), NewJob("k", not_before=at(10)), NewJob("k", not_before=at(20))]
        )
        other = enqueue_one(tx, NewJob("other", not_before=at(5)))
        assert tx.claim("w", 60, now=at(0)) is None  # nothing due yet
        first = tx.claim("w", 60, now=at(100), kinds=["k"])
        assert first is not None and first.id == early
        assert (first.status, first.lease_owner, first.attempts) == ("running", "w", 1)
        assert first.lease_expires_at == at(160)
        rest = tx.claim_many("w", 60, 10, now=at(25), kinds=["k"])
        assert [j.id for j in rest] == [middle]
        rest = tx.claim_many("w", 60, 10, now=at(80))
        assert [j.id for j in rest] == [other, late]
        assert tx.claim("w", 60, now=at(80)) is None


def test_claim_many_respects_the_limit(store: Store) -> None:
    with store.transaction() as tx:
        ids = tx.enqueue([NewJob("k") for _ in range(7)], now=T0)
        batch = tx.claim_many("w", 60, 5, now=at(1))
        assert [j.id for j in batch] == ids[:5]
        assert [j.id for j in tx.claim_many("w", 60, 5, now=at(1))] == ids[5:]
        assert tx.claim_many("w", 60, 5, now=at(1)) == []


def test_expired_lease_is_reclaimed_and_counts_an_attempt(store: Store) -> None:
    with store.transaction() as tx:
        job_id = enqueue_one(tx, NewJob("k"))
        assert tx.claim("w1", 30, now=at(0)) is not None
        assert tx.claim("w2", 30, now=at(29)) is None  # lease still valid
        stolen = tx.claim("w2", 30, now=at(31))
        assert stolen is not None and stolen.id == job_id
        assert (stolen.lease_owner, stolen.attempts) == ("w2", 2)
        # the first worker lost its lease: every owner-checked call says so
        assert tx.heartbeat(job_id, "w1", 30, now=at(32)) is False
        assert tx.finish(job_id, "w1") is False
        assert tx.retry(job_id, "w1", at(40), "err") is False
        assert tx.kill(job_id, "w1", "bad") is False
        assert tx.release(job_id, "w1") is False
        job = tx.job_get(job_id)
        assert job is not None and (job.status, job.lease_owner) == ("running", "w2")
        assert tx.finish(job_id, "w2") is True
        assert tx.finish(job_id, "w2") is False  # already done
        done = tx.job_get(job_id)
        assert done is not None and done.status == "done" and done.lease_expires_at is None


def test_heartbeat_extends_the_lease(store: Store) -> None:
    with store.transaction() as tx:
        job_id = enqueue_one(tx, NewJob("k"))
        tx.claim("w1", 30, now=at(0))
        assert tx.heartbeat(job_id, "w1", 30, now=at(20)) is True
        job = tx.job_get(job_id)
        assert job is not None and job.lease_expires_at == at(50)
        assert tx.claim("w2", 30, now=at(40)) is None
        assert tx.heartbeat(job_id, "w2", 30, now=at(40)) is False
        reclaimed = tx.claim("w2", 30, now=at(51))
        assert reclaimed is not None and reclaimed.id == job_id


def test_batch_heartbeat_and_finish(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue([NewJob("k") for _ in range(4)], now=T0)
        mine = [j.id for j in tx.claim_many("w1", 30, 3, now=at(0))]
        theirs = tx.claim("w2", 30, now=at(0))
        assert theirs is not None
        assert tx.heartbeat_many([*mine, theirs.id], "w1", 60, now=at(10)) == set(mine)
        job = tx.job_get(mine[0])
        assert job is not None and job.lease_expires_at == at(70)
        assert tx.finish_many([*mine, theirs.id], "w1") == set(mine)
        assert tx.finish_many(mine, "w1") == set()
        assert tx.queue_depth() == {"queued": 0, "running": 1, "done": 3, "dead": 0}


def test_retry_requeues_with_delay_and_keeps_attempts(store: Store) -> None:
    with store.transaction() as tx:
        job_id = enqueue_one(tx, NewJob("k"))
        tx.claim("w", 30, now=at(0))
        assert tx.retry(job_id, "w", at(60), "503 from vendor") is True
        job = tx.job_get(job_id)
        assert job is not None
        assert (job.status, job.attempts, job.last_error) == ("queued", 1, "503 from vendor")
        assert job.next_attempt_at == at(60)
        assert job.lease_owner is None and job.lease_expires_at is None
        assert tx.claim("w", 30, now=at(59)) is None
        again = tx.claim("w", 30, now=at(60))
        assert again is not None and again.attempts == 2


def test_retry_of_a_job_whose_key_was_taken_while_it_ran_hands_over_to_the_newer_job(store: Store) -> None:
    # A running record job holds no key (migration 0003): an event for the same record queues
    # the next job. Putting the running one back in the queue must not break the unique index
    # (which used to kill the worker thread); the queued job does the work, due no later.
    with store.transaction() as tx:
        first = enqueue_one(tx, NewJob("record", dedupe_key="record:f:42"))
        assert tx.claim("w", 30, now=at(0)) is not None
        [second] = tx.enqueue([NewJob("record", dedupe_key="record:f:42", not_before=at(120))], now=at(1))
        assert second is not None
        assert tx.retry(first, "w", at(60), "customer not synced yet") is True
        done, queued = tx.job_get(first), tx.job_get(second)
        assert done is not None and done.status == "done" and "customer not synced yet" in (done.last_error or "")
        assert queued is not None and (queued.status, queued.next_attempt_at) == ("queued", at(60))
        claimed = tx.claim("w", 30, now=at(61))
        assert claimed is not None and claimed.id == second
        [third] = tx.enqueue([NewJob("record", dedupe_key="record:f:42")], now=at(62))
        assert tx.release(second, "w") is True  # a clean shutdown hands over the same way
        assert tx.job_get(second).status == "done"  # type: ignore[union-attr]
        assert tx.job_get(third).status == "queued"  # type: ignore[union-attr]


def test_kill_dead_letters_and_dead_jobs_lists_them(store: Store) -> None:
    with store.transaction() as tx:
        a, b, c = tx.enqueue([NewJob("k", flow="f1"), NewJob("k", flow="f2"), NewJob("k", flow="f1")], now=T0)
        for job in tx.claim_many("w", 30, 3, now=at(0)):
            assert tx.kill(job.id, "w", f"rejected {job.id}") is True
        dead = tx.dead_jobs(limit=10)
        assert {j.id for j in dead} == {a, b, c}
        assert all(j.status == "dead" for j in dead)
        assert {j.id for j in tx.dead_jobs(limit=10, flow="f1")} == {a, c}
        assert len(tx.dead_jobs(limit=2)) == 2
        assert len(tx.dead_jobs(limit=2, offset=2)) == 1
        job = tx.job_get(a)
        assert job is not None and job.last_error == f"rejected {a}"
        assert tx.job_get(10_000_000) is None
        assert tx.claim("w", 30, now=at(1000)) is None  # dead jobs are never claimed


def test_release_does_not_count_the_attempt(store: Store) -> None:
    with store.transaction() as tx:
        job_id = enqueue_one(tx, NewJob("k"))
        tx.claim("w", 30, now=at(0))
        assert tx.release(job_id, "other") is False
        assert tx.release(job_id, "w") is True
        job = tx.job_get(job_id)
        assert job is not None and (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)
        again = tx.claim("w2", 30, now=at(1))
        assert again is not None and again.attempts == 1


def test_lease_lost_on_the_last_attempt_kills_the_job(store: Store) -> None:
    with store.transaction() as tx:
        job_id = enqueue_one(tx, NewJob("k", max_attempts=2))
        survivor = enqueue_one(tx, NewJob("k", not_before=at(1)))
        tx.claim("w1", 10, now=at(0))
        tx.retry(job_id, "w1", at(0), "timeout")
        assert tx.claim("w1", 10, now=at(0)) is not None  # attempt 2 of 2, then the worker dies
        claimed = tx.claim("w2", 10, now=at(20))
        assert claimed is not None and claimed.id == survivor
        job = tx.job_get(job_id)
        assert job is not None and job.status == "dead" and job.attempts == 2
        assert job.last_error is not None
        assert "lease expired" in job.last_error and "timeout" in job.last_error


def test_replay_and_discard(store: Store) -> None:
    with store.transaction() as tx:
        ids = tx.enqueue([NewJob("k") for _ in range(4)] + [NewJob("k", dedupe_key="key")], now=T0)
        for job in tx.claim_many("w", 30, 10, now=at(0)):
            tx.kill(job.id, "w", "bad mapping")
        assert tx.queue_depth()["dead"] == 5
        assert tx.replay([ids[0], ids[1]], now=at(100)) == 2
        replayed = tx.job_get(ids[0])
        assert replayed is not None
        assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == ("queued", 0, at(100))
        assert replayed.lease_owner is None
        assert tx.replay([ids[0]], now=at(100)) == 0  # not dead any more
        assert tx.discard([ids[2], ids[0]]) == 1  # only dead jobs are discarded
        assert tx.job_get(ids[2]) is None and tx.job_get(ids[0]) is not None
        assert tx.replay(now=at(200)) == 2  # all the remaining dead ones
        assert tx.queue_depth() == {"queued": 4, "running": 0, "done": 0, "dead": 0}
        assert tx.replay(now=at(200)) == 0
        assert tx.discard([]) == 0


def test_replay_leaves_dead_duplicates_of_an_open_job(store: Store) -> None:
    with store.transaction() as tx:
        old = enqueue_one(tx, NewJob("pull", dedupe_key="pull:a"))
        tx.claim("w", 30, now=at(0))
        tx.kill(old, "w", "boom")
        newer = enqueue_one(tx, NewJob("pull", dedupe_key="pull:a"))
        tx.claim("w", 30, now=at(1))
        tx.kill(newer, "w", "boom")
        # two dead jobs with one key: only one (the newest) is replayed
        assert tx.replay(now=at(10)) == 1
        job_old, job_new = tx.job_get(old), tx.job_get(newer)
        assert job_old is not None and job_new is not None
        assert (job_old.status, job_new.status) == ("dead", "queued")
        # the key is now open: the other stays dead
        assert tx.replay([old], now=at(10)) == 0


def test_replay_follows_the_unique_index_on_running_jobs(store: Store) -> None:
    """A running record job holds no key (it may have read the record already), so a dead job
    with its key is replayed behind it; a running flow job holds its key, so one is not."""
    with store.transaction() as tx:
        for kind in ("record", "flow"):
            dead = enqueue_one(tx, NewJob(kind, dedupe_key=f"{kind}:x"))
            [claimed] = tx.claim_many("w", 30, 1, now=at(0), kinds=[kind])
            tx.kill(dead, "w", "boom")
            running = enqueue_one(tx, NewJob(kind, dedupe_key=f"{kind}:x"))
            [claimed] = tx.claim_many("w", 30, 1, now=at(1), kinds=[kind])
            assert claimed.id == running
        assert tx.replay(now=at(10)) == 1
        assert tx.jobs_by_status("queued")[0].kind == "record"


def test_queue_depth_and_purge(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.queue_depth() == {"queued": 0, "running": 0, "done": 0, "dead": 0}
        tx.enqueue([NewJob("k") for _ in range(5)], now=T0)
        a, b, c = tx.claim_many("w", 30, 3, now=at(0))
        tx.finish(a.id, "w")
        tx.kill(b.id, "w", "x")
        assert tx.queue_depth() == {"queued": 2, "running": 1, "done": 1, "dead": 1}
        assert tx.purge_done(datetime.now(UTC) - timedelta(days=1)) == 0
        assert tx.purge_done(datetime.now(UTC) + timedelta(seconds=1)) == 1
        assert tx.queue_depth()["done"] == 0
