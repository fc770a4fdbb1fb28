"""SQLAlchemy engines for the two supported databases, tuned for how the hub uses them.

SQLite (the embedded default) gets WAL (readers never block the writer), a 30 s busy
timeout, `synchronous=NORMAL` (durable at checkpoints, safe with WAL) and, above all,
`BEGIN IMMEDIATE` for every transaction: the writer lock is taken up front, so two
connections can never both read and then deadlock trying to upgrade to write. SQLite thus
has exactly one writer at a time, which is also what makes the job queue's claim safe there.

PostgreSQL (production, several workers) gets a pre-pinged pool, so a restarted server costs
one reconnect instead of one failed page.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from hub.store.errors import StoreError

log = structlog.get_logger()

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgresql+psycopg", "postgres"}


def dump_json(value: Any) -> str:
    """JSON as stored: compact, and UTF-8 text kept as is (CJK names are not \\u-escaped).

    Only JSON-native values are accepted (dict, list, str, int, float, bool, None): a
    datetime or Decimal in a payload is a bug to fix where it was made, not here.
    """
    return orjson.dumps(value).decode("utf-8")  # orjson: several times faster on every page's rows


def safe_url(url: URL | str) -> str:
    """The URL as it may appear in logs and error messages: password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def create_engine_for(url: str) -> Engine:
    """An engine for `url`: `sqlite:///path/file.db` or `postgresql+psycopg://...`.

    Plain `postgresql://` means psycopg 3, the only PostgreSQL driver synchub ships with.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {safe_url(url)}") from exc
    if parsed.drivername in _SQLITE_DRIVERS:
        return _sqlite_engine(parsed)
    if parsed.drivername in _POSTGRES_DRIVERS:
        return _postgres_engine(parsed.set(drivername="postgresql+psycopg"))
    raise StoreError(
        f"unsupported store URL scheme {parsed.drivername!r} in {safe_url(parsed)}: "
        "use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db"
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        # An in-memory database vanishes with its connection and cannot be shared by a
        # pool; a store must survive restarts. Tests use a temporary file instead.
        raise StoreError("an in-memory SQLite store is not supported: give a file path")
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url.set(database=str(path)),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        json_serializer=dump_json,
        json_deserializer=orjson.loads,
    )
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    log.debug("store.engine", backend="sqlite", path=str(path))
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module (which would emit a deferred BEGIN, and only
    # before DML); `_on_sqlite_begin` emits our own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL. Switching takes an exclusive lock for which SQLite does not
    wait (busy_timeout does not apply): processes opening a new store at once see "database
    is locked". Retry until another one has switched it, within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgres_engine(url: URL) -> Engine:
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        json_serializer=dump_json,
        json_deserializer=orjson.loads,
        connect_args={"application_name": "synchub", "connect_timeout": 10},
    )
    log.debug("store.engine", backend="postgresql", url=safe_url(url))
    return engine
