"""`Store`: the hub's durable state behind one small API, on SQLite or PostgreSQL.

All work happens in `with store.transaction() as tx:` blocks; each is one database
transaction that commits when the block ends and rolls back when it raises. The engine
does one transaction per page, so a page's links, golden records, hashes, run counters and
cursor become visible together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

import structlog
from alembic import command
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hub.store.engine import create_engine_for, safe_url
from hub.store.errors import StoreUnavailable
from hub.store.migrate import alembic_config, current_revision, head_revision
from hub.store.tx import Tx

log = structlog.get_logger()

Dialect = Literal["sqlite", "postgresql"]

#: PostgreSQL advisory lock key held while migrating (an arbitrary constant: "synchub" in ASCII).
_MIGRATION_LOCK = 0x73796E63687562

#: Alembic keeps its `context`/`op` proxies in module globals: one migration per process at a time.
_ALEMBIC_LOCK = threading.Lock()


class Store:
    """The hub's database. Thread-safe: share one per process; each thread opens its own
    transactions (each on its own pooled connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """A store for `url` (see `create_engine_for`). Connects lazily, on first use."""
        return cls(create_engine_for(url))

    @property
    def dialect(self) -> Dialect:
        """"sqlite" or "postgresql" (`create_engine_for` accepts nothing else)."""
        return cast(Dialect, self.engine.dialect.name)

    @property
    def url(self) -> str:
        """The database URL with its password hidden: safe for logs and messages."""
        return safe_url(self.engine.url)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            connection = self.engine.connect()
        except DBAPIError as exc:
            raise StoreUnavailable(f"cannot reach the store at {self.url}: {exc.orig}") from exc
        with connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """One transaction: commit when the block ends, roll back if it raises."""
        with self._connect() as connection, connection.begin():
            yield Tx(connection)

    def upgrade(self) -> None:
        """Migrate the database to the newest schema this code knows (idempotent).

        Safe when several processes start at once: on PostgreSQL they queue on an advisory
        lock; on SQLite the migration's IMMEDIATE transaction serialises them. The second
        one then finds the schema current and does nothing.
        """
        with self._connect() as connection:
            locked = self.dialect == "postgresql"
            if locked:
                connection.execute(select(func.pg_advisory_lock(_MIGRATION_LOCK)))
            try:
                before = current_revision(connection)
                connection.commit()  # the version check autobegan; Alembic opens its own
                with _ALEMBIC_LOCK:
                    command.upgrade(alembic_config(connection), "head")
                connection.commit()
            finally:
                if locked:
                    connection.rollback()
                    connection.execute(select(func.pg_advisory_unlock(_MIGRATION_LOCK)))
                    connection.commit()
        head = head_revision()
        if before != head:
            log.info("store.migrated", url=self.url, from_revision=before, to_revision=head)

    def revision(self) -> str | None:
        """The migration the database is at (None: empty database)."""
        with self._connect() as connection:
            return current_revision(connection)

    def is_current(self) -> bool:
        """True when the database is migrated to the newest migration shipped."""
        return self.revision() == head_revision()

    def dispose(self) -> None:
        """Close every pooled connection (end of process, or before forking workers)."""
        self.engine.dispose()
