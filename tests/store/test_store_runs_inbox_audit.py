"""Runs and their counters, the webhook inbox, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.store import AuditEntry, InboxEvent, Store


def test_run_lifecycle_and_counters(store: Store) -> None:
    with store.transaction() as tx:
        run_id = tx.run_start("crm-to-erp", "schedule")
        tx.run_add(run_id, pulled=200, created=3)
    with store.transaction() as tx:
        tx.run_add(run_id, pulled=100, updated=2, unchanged=95, skipped_echo=1, failed=1, dead=1, waiting=1)
        tx.run_add(run_id)  # nothing to add
        run = tx.run_get(run_id)
        assert run is not None and run.status == "running" and run.finished_at is None
        tx.run_finish(run_id, "partial", note="1 record dead-lettered")
    with store.transaction() as tx:
        run = tx.run_get(run_id)
        assert run is not None
        assert (run.pulled, run.created, run.updated, run.unchanged) == (300, 3, 2, 95)
        assert (run.skipped_echo, run.failed, run.dead, run.waiting) == (1, 1, 1, 1)
        assert run.status == "partial" and run.note == "1 record dead-lettered"
        assert run.finished_at is not None and run.finished_at >= run.started_at
        assert run.trigger == "schedule"
        assert tx.run_get(run_id + 1000) is None


def test_run_rejects_unknown_counters_and_statuses(store: Store) -> None:
    with store.transaction() as tx:
        run_id = tx.run_start("f", "manual")
        with pytest.raises(ValueError, match="pulld"):
            tx.run_add(run_id, pulld=1)
        with pytest.raises(ValueError, match="running"):
            tx.run_finish(run_id, "running")


def test_runs_recent(store: Store) -> None:
    with store.transaction() as tx:
        ids = [tx.run_start(flow, "schedule") for flow in ("a", "b", "a", "a")]
        assert [r.id for r in tx.runs_recent()] == ids[::-1]
        assert [r.id for r in tx.runs_recent(flow="a", limit=2)] == [ids[3], ids[2]]
        assert tx.runs_recent(flow="zzz") == []


def _event(event_id: str, system: str = "oa", **payload: str) -> InboxEvent:
    return InboxEvent(system, event_id, "approval", f"x-{event_id}", payload)


def test_inbox_stores_each_event_once(store: Store) -> None:
    with store.transaction() as tx:
        batch = [_event("e1", v="1"), _event("e2"), _event("e1", v="again"), _event("e1", system="crm")]
        ids = tx.inbox_add(batch)
        assert ids[0] is not None and ids[1] is not None and ids[3] is not None
        assert ids[2] is None
        assert len(set(ids) - {None}) == 3
        assert tx.inbox_add([]) == []
    with store.transaction() as tx:
        again = tx.inbox_add([_event("e2"), _event("e3")])
        assert again[0] is None and again[1] is not None
        pending = tx.inbox_pending()
        assert [(e.system, e.event_id) for e in pending] == [
            ("oa", "e1"),
            ("oa", "e2"),
            ("crm", "e1"),
            ("oa", "e3"),
        ]
        assert pending[0].payload == {"v": "1"}  # the first delivery is the one kept
        assert pending[0].received_at is not None and pending[0].status == "new"
        assert [e.event_id for e in tx.inbox_pending(system="crm")] == ["e1"]
        assert tx.inbox_mark_done([pending[0].id or 0, pending[1].id or 0]) == 2
        assert [e.event_id for e in tx.inbox_pending(limit=1)] == ["e1"]
        assert tx.inbox_pending(limit=1)[0].system == "crm"
        # a done event is still a duplicate
        assert tx.inbox_add([_event("e1")]) == [None]


def test_audit(store: Store) -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    with store.transaction() as tx:
        run_id = tx.run_start("f", "manual")
        tx.audit(
            [
                AuditEntry("admin", "replay", "job:7", {"ids": [7]}, at=at),
                AuditEntry("engine", "conflict", "customer:c1", {"field": "phone"}, run_id=run_id),
            ]
        )
        tx.audit([])
        recent = tx.audit_recent(limit=10)
        assert [e.action for e in recent] == ["conflict", "replay"]
        assert recent[1].at == at and recent[1].detail == {"ids": [7]} and recent[1].id is not None
        assert [e.subject for e in tx.audit_recent(run_id=run_id)] == ["customer:c1"]
        assert len(tx.audit_recent(limit=1)) == 1
