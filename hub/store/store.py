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
from types import ModuleType
from typing import Literal, cast

import structlog
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hub.store.engine import create_engine_for, safe_url
from hub.store.errors import StoreUnavailable
from hub.store.schema import ALL_TABLES, metadata
from hub.store.stats import GrowthTracker
from hub.store.tx import Tx

log = structlog.get_logger()

Dialect = Literal["sqlite", "postgresql"]

#: PostgreSQL advisory lock key held while migrating (an arbitrary constant: "synchub" in ASCII).
_MIGRATION_LOCK = 0x73796E63687562

#: Alembic keeps its `context`/`op` proxies in module globals: one migration per process at a time.
_ALEMBIC_LOCK = threading.Lock()


def _migrate() -> ModuleType:
    """The migration helpers, imported on first use: Alembic takes a third of a second to
    import, and most commands (`synchub check`, `synchub map`) never migrate."""
    from hub.store import migrate

    return migrate


class Store:
    """The hub's database. Thread-safe: share one per process; each thread opens its own
    transactions (each on its own pooled connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Only PostgreSQL plans from statistics that ANALYZE gathers (see hub.store.stats).
        self._growth = GrowthTracker() if engine.dialect.name == "postgresql" else None

    @classmethod
    def open(cls, url: str) -> Store:
        """A store for `url` (see `create_engine_for`). Connects lazily, on first use."""
        return cls(create_engine_for(url))

    @property
    def dialect(self) -> Dialect:
        """The backend's name; `create_engine_for` accepts no other than these two."""
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
        """One transaction: commit when the block ends, roll back if it raises.

        Losing the database mid-transaction (server restart, network) raises
        `StoreUnavailable`, like failing to connect: nothing was committed, retry later.
        """
        with self._connect() as connection:
            try:
                with connection.begin():
                    yield Tx(connection, self._growth)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise StoreUnavailable(f"lost the store at {self.url}: {exc.orig}") from exc
                raise
            if self._growth is not None:
                due = self._growth.due()
                if due:
                    self._analyze(connection, due)

    def analyze(self, tables: list[str] | None = None) -> None:
        """Refresh PostgreSQL's planner statistics (all store tables by default); no-op on SQLite.

        The store already does this when its tables grow fast; this is for an admin command.
        """
        names = [table.name for table in ALL_TABLES] if tables is None else tables
        unknown = set(names) - set(metadata.tables)
        if unknown:
            raise ValueError(f"not store tables: {', '.join(sorted(unknown))}")
        if self.dialect != "postgresql":
            return
        with self._connect() as connection:
            self._analyze(connection, names)

    @staticmethod
    def _analyze(connection: Connection, tables: list[str]) -> None:
        # Outside the page's transaction, so that its locks are gone and a failure here
        # (statistics are an optimisation) costs nothing but a log line.
        names = ", ".join(metadata.tables[name].name for name in tables)  # known names only
        try:
            with connection.begin():
                connection.exec_driver_sql(f"ANALYZE {names}")
            log.debug("store.analyzed", tables=tables)
        except DBAPIError as exc:
            log.warning("store.analyze_failed", tables=tables, error=str(exc.orig))

    def upgrade(self) -> None:
        """Migrate the database to the newest schema this code knows (idempotent).

        The whole upgrade is one transaction (DDL is transactional on both backends), so a
        failed migration leaves the previous schema intact. Safe when several processes
        start at once: on PostgreSQL they queue on an advisory lock, on SQLite on the
        IMMEDIATE transaction's writer lock; the later ones find the schema current.
        """
        with self._connect() as connection:
            locked = self.dialect == "postgresql"
            if locked:
                connection.execute(select(func.pg_advisory_lock(_MIGRATION_LOCK)))
                connection.commit()  # the lock is per session: it outlives this transaction
            try:
                with connection.begin(), _ALEMBIC_LOCK:
                    before = _migrate().current_revision(connection)
                    _migrate().upgrade_to_head(connection)
            finally:
                if locked:
                    connection.execute(select(func.pg_advisory_unlock(_MIGRATION_LOCK)))
                    connection.commit()
        head = _migrate().head_revision()
        if before != head:
            log.info("store.migrated", url=self.url, from_revision=before, to_revision=head)

    def revision(self) -> str | None:
        """The migration the database is at (None: empty database)."""
        with self._connect() as connection:
            return _migrate().current_revision(connection)

    def is_current(self) -> bool:
        """True when the database is migrated to the newest migration shipped."""
        return self.revision() == _migrate().head_revision()

    def dispose(self) -> None:
        """Close every pooled connection (end of process, or before forking workers)."""
        self.engine.dispose()
