"""What every part of a transaction shares: the connection, the dialect, batching helpers.

`Tx` is composed of one mixin per table family (links, golden, jobs, ...); each mixin is a
small module that only knows its own tables and builds on `TxBase`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hub.store.stats import GrowthTracker

T = TypeVar("T")

#: Values per `IN (...)` list. Pages are up to ~2,000 records; lists of 500 keep statements
#: of a bounded size and far below SQLite's bound-parameter limit (32,766).
IN_CHUNK = 500

Upsert = postgresql.Insert | sqlite.Insert


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

    def _upsert(self, table: Table) -> Upsert:
        """An INSERT that accepts ON CONFLICT clauses; both backends spell them alike."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
