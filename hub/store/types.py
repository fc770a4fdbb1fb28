"""Column types of the store's schema.

Migrations deliberately do not import these (a migration is frozen in time and spells its
types out); a test compares the migrated database with `schema.py` so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

#: Surrogate keys: 64-bit on PostgreSQL; on SQLite only `INTEGER PRIMARY KEY` is the rowid
#: alias that autoincrements, so BIGINT there would silently give NULL ids.
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """The store's clock: always UTC-aware, so every timestamp compares with every other."""
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime given to the store: {value!r} (use UTC-aware datetimes)")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def sqlite_timestamp(value: datetime) -> str:
    """A timestamp as the store keeps it on SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", UTC.

    Exactly what SQLAlchemy's DATETIME type writes and reads back, so statements that bind
    timestamps themselves (`TxBase._driver_rows`) store the same text as `UtcDateTime`.
    """
    return _to_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


class UtcDateTime(TypeDecorator[datetime]):
    """A `timestamp with time zone` that is UTC-aware in Python on every backend.

    SQLite has no time zones: SQLAlchemy writes the wall-clock digits and reads back a naive
    datetime. Converting to UTC before writing keeps stored strings in one zone (so SQL
    comparisons like `next_attempt_at <= :now` stay correct as text comparisons), and
    tagging naive results with UTC on the way out gives callers the same aware values that
    PostgreSQL returns. Naive input is refused: a naive datetime is a bug that would
    otherwise be stored as if it were UTC, silently shifting by the host's offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, one fused step instead of the decorator chain; elsewhere the usual one.

        SQLAlchemy advises against overriding this, because it bypasses the wrapped type's
        own processing. That is the point here: a page writes a timestamp per row, and the
        generic chain (this decorator, then SQLite's DATETIME formatter) cost a third of a
        bulk upsert's time. The string is exactly what the DATETIME type writes and reads
        back ("YYYY-MM-DD HH:MM:SS.ffffff", UTC), and the formatted value of the last
        datetime is remembered, since a batch usually stamps every row with the same `now`.
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        last: tuple[datetime | None, str | None] = (None, None)

        def process(value: datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            seen, text = last  # one tuple, read at once: safe to share between threads
            if value is seen:
                return text
            text = sqlite_timestamp(value)
            last = (value, text)
            return text

        return process

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _to_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
