"""What every part of a transaction shares: the connection, the dialect, batching helpers.

`Tx` is composed of one mixin per table family (links, golden, jobs, ...); each mixin is a
small module that only knows its own tables and builds on `TxBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hub.store.stats import GrowthTracker

T = TypeVar("T")

#: Values per `IN (...)` list. Pages are up to ~2,000 records; lists of 500 keep statements
#: of a bounded size and far below SQLite's bound-parameter limit (32,766).
IN_CHUNK = 500

Upsert = postgresql.Insert | sqlite.Insert

#: Statements built once per (dialect, name) by `TxBase._statement`. Building a Core statement
#: (`insert(...).on_conflict_do_nothing().returning(...)`) and computing its cache key costs
#: tens of microseconds per call; a built statement is immutable and memoises its cache key,
#: so reusing it skips both. Shared by every thread: a race only builds one twice.
_STATEMENTS: dict[tuple[str, str], Any] = {}


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` values."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def unique(values: Iterable[T]) -> list[T]:
    """Values without repeats, first occurrence order kept (stable output, smaller IN lists)."""
    return list(dict.fromkeys(values))


class TxBase:
    """One database transaction; mixins add the queries. Not thread-safe: one per thread."""

    def __init__(self, connection: Connection, tracker: GrowthTracker | None = None) -> None:
        self.connection = connection
        self.dialect: str = connection.dialect.name
        self._tracker = tracker

    def _wrote(self, table: Table, rows: int) -> None:
        """Count rows written to a table (see `hub.store.stats` for why)."""
        if self._tracker is not None:
            self._tracker.wrote(table.name, rows)

    def _statement(self, name: str, build: Callable[[], T]) -> T:
        """The statement `build()` makes, built once per dialect and `name` (see `_STATEMENTS`).

        Only for statements that take all their values as bound parameters: whatever
        `build` closes over is frozen into the cached statement.
        """
        key = (self.dialect, name)
        statement = _STATEMENTS.get(key)
        if statement is None:
            statement = _STATEMENTS.setdefault(key, build())
        return statement  # type: ignore[no-any-return]

    def _driver_rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run `sql` with `params` on this transaction's driver connection (sqlite3, psycopg); its rows.

        Why bypass SQLAlchemy: for the webhook writer's small batches its execution path
        (cache lookup, execution context, bind processing, result wrapping) cost more CPU
        than the database spent on the rows: 0.6 ms of a 1.0 ms batch of four callbacks
        on SQLite (`bench/webhooks.py`). Only statements that run once per callback batch
        take this path; the caller writes their text for the dialect (`?` for SQLite,
        `%(name)s` for psycopg) and converts values as the column types would
        (`sqlite_timestamp`, `dump_json`). A driver error is raised as SQLAlchemy's, as
        `Connection.execute` would (a lost connection is invalidated, with
        `connection_invalidated` set), and never shows the parameters (they hold payloads).
        """
        driver = self.connection.connection.driver_connection
        assert driver is not None  # an open transaction's connection
        cursor = driver.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        except self.connection.dialect.loaded_dbapi.Error as exc:
            lost = self.connection.dialect.is_disconnect(exc, driver, cursor)
            if lost:
                self.connection.invalidate(exc)
            raise DBAPIError.instance(sql, None, exc, self.connection.dialect.loaded_dbapi.Error, hide_parameters=True,
                                      connection_invalidated=lost, dialect=self.connection.dialect) from exc
        finally:
            cursor.close()

    def _upsert(self, table: Table) -> Upsert:
        """An INSERT that accepts ON CONFLICT clauses; both backends spell them alike."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
