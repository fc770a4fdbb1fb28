"""Migrations, engine set-up and the store's typed errors."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.errors import SynchubError
from hub.store import Link, NewJob, Store, StoreError, StoreUnavailable
from hub.store.migrate import alembic_config, head_revision
from hub.store.schema import ALL_TABLES, metadata
from hub.store.stats import GrowthTracker
from hub.store.testing import temporary_postgres_database
from tests.store.fixtures import BACKENDS, PG_SKIP_REASON, PG_URL_ENV


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'nested' / 'synchub.db'}"
        return
    base_url = os.environ.get(PG_URL_ENV)
    if not base_url:
        pytest.skip(PG_SKIP_REASON)
    with temporary_postgres_database(base_url) as url:
        yield url


def test_migrations_apply_from_empty(empty_url: str) -> None:
    store = Store.open(empty_url)
    try:
        assert store.revision() is None
        assert not store.is_current()
        store.upgrade()
        assert store.is_current()
        assert store.revision() == head_revision() == "0003"
        store.upgrade()  # idempotent
        assert store.is_current()
        tables = set(inspect(store.engine).get_table_names())
        assert {t.name for t in ALL_TABLES} <= tables
    finally:
        store.dispose()


def test_0002_keeps_the_links_of_a_0001_store(empty_url: str) -> None:
    """Links keyed by entity (0002): a store made by 0001 upgrades with its rows intact."""
    command.upgrade(alembic_config(url=empty_url), "0001")
    store = Store.open(empty_url)
    try:
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO links (entity, canonical_id, system, object, external_id, seen_hash, updated_at) "
                "VALUES ('order', 'ord-1', 'erp', 'sale.order', '42', 's1', CURRENT_TIMESTAMP)")
        store.upgrade()
        with store.transaction() as tx:
            kept = tx.links_by_external("erp", "sale.order", ["42"])["42"]
            assert (kept.entity, kept.canonical_id, kept.seen_hash) == ("order", "ord-1", "s1")
            tx.upsert_links([Link("approval", "apr-1", "erp", "sale.order", "42")])
            assert len(tx.links_by_external("erp", "sale.order", ["42"], "approval")) == 1
            assert tx.runs_recent(limit=1) == []
    finally:
        store.dispose()


@pytest.mark.slow
def test_concurrent_upgrades_from_empty(empty_url: str) -> None:
    """Several processes starting at once all migrate, without tripping over each other."""
    script = (
        "import sys; from hub.store import Store; "
        "s = Store.open(sys.argv[1]); s.upgrade(); sys.exit(0 if s.is_current() else 3)"
    )
    repo = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_url], cwd=repo, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [(proc.communicate(timeout=120)[1], proc.returncode) for proc in procs]
    assert [code for _, code in outcomes] == [0, 0, 0], [err for err, _ in outcomes]
    store = Store.open(empty_url)
    try:
        assert store.is_current()
    finally:
        store.dispose()


def test_upgrade_from_threads_is_serialised(tmp_path: Path) -> None:
    stores = [Store.open(f"sqlite:///{tmp_path / 'threads.db'}") for _ in range(3)]
    start = threading.Barrier(len(stores))

    def upgrade(store: Store) -> bool:
        start.wait()
        store.upgrade()
        return store.is_current()

    try:
        with ThreadPoolExecutor(max_workers=len(stores)) as pool:
            assert list(pool.map(upgrade, stores)) == [True] * len(stores)
    finally:
        for store in stores:
            store.dispose()


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deeper" / "synchub.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        store.upgrade()
        assert path.exists()
    finally:
        store.dispose()


def test_migrated_database_matches_schema_module(store: Store) -> None:
    with store.engine.connect() as connection:
        opts = {"compare_type": True, "compare_server_default": True}
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, metadata) == []


def test_downgrade_then_upgrade_again(empty_url: str) -> None:
    store = Store.open(empty_url)
    try:
        store.upgrade()
        with store.engine.connect() as connection:
            command.downgrade(alembic_config(connection), "base")
            connection.commit()
        assert store.revision() is None
        assert not ({t.name for t in ALL_TABLES} & set(inspect(store.engine).get_table_names()))
        store.upgrade()
        assert store.is_current()
    finally:
        store.dispose()


def test_offline_sql_renders_for_both_dialects(capsys: pytest.CaptureFixture[str]) -> None:
    for url in ("sqlite:///offline.db", "postgresql+psycopg://u@localhost/db"):
        command.upgrade(alembic_config(url=url), "head", sql=True)
        out = capsys.readouterr().out
        assert "CREATE TABLE jobs" in out
        assert "CREATE UNIQUE INDEX uq_jobs_pending_dedupe_key" in out


def test_sqlite_connection_settings(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") == 30000
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1


def test_sqlite_transactions_take_the_write_lock_up_front(sqlite_store: Store) -> None:
    """Even a read-only transaction holds the writer lock: no deferred-to-write upgrades."""
    path = sqlite_store.engine.url.database
    assert path is not None
    with sqlite_store.transaction() as tx:
        tx.cursor_get("flow")
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.cursor_set("f", "1")
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.cursor_get("f") is None


def test_dialect(store: Store) -> None:
    assert store.dialect in ("sqlite", "postgresql")
    assert "password" not in store.url


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@localhost/db",
        "postgresql+asyncpg://u@localhost/db",
        "sqlite://",
        "sqlite:///:memory:",
        "not a url",
    ],
)
def test_unsupported_urls_raise_a_typed_error(url: str) -> None:
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert isinstance(info.value, SynchubError)


def test_unreachable_postgres_is_store_unavailable() -> None:
    store = Store.open("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/nothing")
    try:
        with pytest.raises(StoreUnavailable) as info, store.transaction():
            pass
        assert "s3cret" not in str(info.value)
    finally:
        store.dispose()


def test_timestamps_come_back_utc_aware(store: Store) -> None:
    shanghai = timezone(timedelta(hours=8))
    due = datetime(2030, 1, 2, 11, 0, tzinfo=shanghai)
    with store.transaction() as tx:
        (job_id,) = tx.enqueue([NewJob("k", not_before=due)])
        assert job_id is not None
        job = tx.job_get(job_id)
    assert job is not None
    assert job.next_attempt_at == due
    assert job.next_attempt_at.tzinfo == UTC
    assert job.next_attempt_at.hour == 3
    assert job.created_at.tzinfo == UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"), store.transaction() as tx:
        tx.enqueue([NewJob("k", not_before=datetime(2030, 1, 1))])


def test_growth_tracker_asks_for_analyze_as_tables_double() -> None:
    tracker = GrowthTracker(first_after=1_000)
    tracker.wrote("links", 999)
    assert tracker.due() == []
    tracker.wrote("links", 1)
    tracker.wrote("golden", 0)
    assert tracker.due() == ["links"]
    assert tracker.due() == []
    tracker.wrote("links", 999)
    assert tracker.due() == []
    tracker.wrote("links", 1)  # 2,000 written, 1,000 at the last ANALYZE: doubled
    tracker.wrote("golden", 5_000)
    assert tracker.due() == ["golden", "links"]


def test_analyze_runs_on_both_backends(store: Store) -> None:
    store.analyze()  # a no-op on SQLite
    store.analyze(["links"])
    with pytest.raises(ValueError, match="not store tables"):
        store.analyze(["links; DROP TABLE golden"])
    with store.transaction() as tx:
        tx.upsert_links([Link("customer", f"c{i}", "crm", "Account", f"E{i}") for i in range(1_200)])
    with store.transaction() as tx:  # a big write is followed by an ANALYZE; nothing changes
        assert len(tx.links_by_external("crm", "Account", ["E1", "E1199"])) == 2


def test_losing_postgres_mid_transaction_is_store_unavailable(postgres_store: Store) -> None:
    with pytest.raises(StoreUnavailable), postgres_store.transaction() as tx:
        pid = tx.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with postgres_store.engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        tx.cursor_set("flow", "1")
    with postgres_store.transaction() as tx:  # the pool recovers
        assert tx.cursor_get("flow") is None
