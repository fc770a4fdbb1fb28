"""What the webhook writer's batches rely on: inbox rows stored already done, keyed jobs in one
statement (a JSON recordset on PostgreSQL), and hot statements built once per dialect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.store import NewJob, Store
from hub.store.models import InboxEvent
from hub.store.schema import jobs, webhook_inbox


def _event(event_id: str, system: str = "oa", **payload: object) -> InboxEvent:
    return InboxEvent(system, event_id, "approval", f"x-{event_id}", dict(payload))


def test_inbox_add_done_stores_done_rows_and_keeps_the_return_contract(store: Store) -> None:
    with store.transaction() as tx:
        ids = tx.inbox_add([_event("e1", n=1), _event("e2", name="华为技术有限公司"), _event("e1", n=2),
                            _event("e1", system="crm")], done=True)
        assert ids[0] is not None and ids[1] is not None and ids[2] is None and ids[3] is not None
        assert tx.inbox_pending() == []  # nothing left to handle
        again = tx.inbox_add([_event("e2"), _event("e3")], done=True)
        assert again[0] is None and again[1] is not None
        assert tx.inbox_add([_event("e4")]) != [None]  # the default still stores them new
        rows = tx.connection.execute(select(webhook_inbox.c.event_id, webhook_inbox.c.system, webhook_inbox.c.status,
                                            webhook_inbox.c.payload, webhook_inbox.c.received_at)
                                     .order_by(webhook_inbox.c.id)).all()
    assert [(r.event_id, r.system, r.status) for r in rows] == [
        ("e1", "oa", "done"), ("e2", "oa", "done"), ("e1", "crm", "done"), ("e3", "oa", "done"), ("e4", "oa", "new")]
    assert rows[0].payload == {"n": 1} and rows[1].payload == {"name": "华为技术有限公司"}
    assert all(r.received_at.tzinfo is not None for r in rows)


def test_keyed_jobs_keep_their_fields_and_dedupe_in_and_across_batches(store: Store) -> None:
    later = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=8)))
    batch = [NewJob("record", {"external_id": "a", "名": "客户"}, flow="f1", dedupe_key="k-a", max_attempts=8),
             NewJob("record", {"external_id": "b"}, flow=None, dedupe_key="k-b", not_before=later),
             NewJob("record", {"external_id": "a", "again": True}, flow="f1", dedupe_key="k-a"),
             NewJob("plain", {"n": 1})]
    with store.transaction() as tx:
        ids = tx.enqueue(batch)
        assert ids[0] is not None and ids[1] is not None and ids[2] is None and ids[3] is not None
        assert tx.enqueue([NewJob("record", {"external_id": "a"}, dedupe_key="k-a")]) == [None]
        first, second = tx.job_get(ids[0] or 0), tx.job_get(ids[1] or 0)
    assert first is not None and second is not None
    assert (first.kind, first.flow, first.payload, first.max_attempts, first.status, first.attempts) == (
        "record", "f1", {"external_id": "a", "名": "客户"}, 8, "queued", 0)
    assert second.flow is None and second.next_attempt_at == later.astimezone(UTC)
    with store.transaction() as tx:
        keys = tx.connection.execute(select(jobs.c.dedupe_key).order_by(jobs.c.id)).scalars().all()
    assert sorted(key or "" for key in keys) == ["", "k-a", "k-b"]  # one job per key, and the plain one


def test_hot_statements_are_built_once_per_dialect(store: Store) -> None:
    with store.transaction() as tx:
        built = tx._statement("test-statement", lambda: select(jobs.c.id))
        assert tx._statement("test-statement", lambda: select(jobs.c.kind)) is built


def test_driver_statements_fail_as_sqlalchemy_would_without_rendering_their_values(store: Store) -> None:
    """`inbox_add` and keyed `enqueue` bypass SQLAlchemy's execution: their errors must not."""
    sql = ("INSERT INTO webhook_inbox (system, event_id) VALUES (?, ?)" if store.dialect == "sqlite"
           else "INSERT INTO webhook_inbox (system, event_id) VALUES (%(a)s, %(b)s)")
    values: object = ["oa", "secret-payload-value"] if store.dialect == "sqlite" else {"a": "oa", "b": "secret-payload-value"}
    with pytest.raises(IntegrityError) as failure, store.transaction() as tx:
        tx._driver_rows(sql, values)  # type: ignore[arg-type]
    assert "webhook_inbox" in str(failure.value)
    assert "[parameters:" not in str(failure.value)  # SQLAlchemy's rendering of the values (payloads) is off
    assert not failure.value.connection_invalidated
    with store.transaction() as tx:  # the connection went back to the pool in a usable state
        assert tx.inbox_add([_event("e1")]) != [None]


def test_a_big_batch_is_split_into_statements_sqlite_accepts(store: Store) -> None:
    events = [_event(f"e{n}", n=n) for n in range(1_203)]
    with store.transaction() as tx:
        ids = tx.inbox_add(events + events[:3], done=True)
        job_ids = tx.enqueue([NewJob("record", {"n": n}, dedupe_key=f"k{n}") for n in range(1_203)])
    assert len({i for i in ids if i is not None}) == 1_203 and ids[-3:] == [None, None, None]
    assert None not in job_ids and len(set(job_ids)) == 1_203
