"""Helpers for test suites (and benchmarks) that need a real, isolated store.

They live in the store package because they speak SQL (CREATE/DROP DATABASE, TRUNCATE), and
SQL lives only here. Nothing in the running hub imports this module; it has no pytest
dependency, so `bench/` can use it too.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from sqlalchemy import create_engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from hub.store.engine import create_engine_for
from hub.store.errors import StoreUnavailable
from hub.store.schema import ALL_TABLES
from hub.store.store import Store

log = structlog.get_logger()


@contextmanager
def temporary_postgres_database(base_url: str, prefix: str = "synchub_test_") -> Iterator[str]:
    """Create an empty database next to `base_url`'s, yield its URL, drop it afterwards.

    Each test session gets its own database, so parallel CI jobs sharing a server and
    leftovers of an earlier crashed run cannot interfere. Raises `StoreUnavailable` when the
    server cannot be reached.
    """
    name = f"{prefix}{secrets.token_hex(6)}"
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except DBAPIError as exc:
            where = url.render_as_string()  # password hidden
            raise StoreUnavailable(f"cannot create a test database on {where}: {exc.orig}") from exc
        log.debug("store.testing.database_created", database=name)
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log.debug("store.testing.database_dropped", database=name)
    finally:
        admin.dispose()


def wipe(store: Store) -> None:
    """Empty every table, keeping the schema and its migration state.

    DELETE rather than TRUNCATE: the tables of a test hold a handful of rows, and TRUNCATE
    swaps every table's files, which makes PostgreSQL's next checkpoint far slower.
    """
    with store.engine.begin() as connection:
        for table in ALL_TABLES:
            connection.execute(delete(table))


def migrated_sqlite_file(path: Path) -> Path:
    """Create a migrated SQLite database at `path`, to be copied by `sqlite_store_from`.

    Migrating once and copying the file makes a fresh database per test cheap.
    """
    store = Store.open(f"sqlite:///{path}")
    try:
        store.upgrade()
    finally:
        store.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def sqlite_store_from(template: Path, path: Path) -> Store:
    """A store on a copy of a migrated template: a fresh database without re-migrating."""
    for suffix in ("", "-wal"):  # -wal only exists if a checkpoint could not complete
        source = template.with_name(template.name + suffix)
        if source.exists():
            shutil.copyfile(source, path.with_name(path.name + suffix))
    return Store(create_engine_for(f"sqlite:///{path}"))
