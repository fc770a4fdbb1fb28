"""Leader election for the scheduler: a PostgreSQL session-level advisory lock.

The leader holds the lock on a connection of its own for as long as it leads. If the process
dies, PostgreSQL closes the session and releases the lock, and a standby's next try takes
it. A lost connection is noticed by a periodic check, which then asks the leader to stop.
SQLite has one process by design: there the caller is always the leader.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.store.store import Store

log = structlog.get_logger()


@contextmanager
def leader_lock(store: Store, key: int, stop: threading.Event, retry_seconds: float = 5.0,
                check_seconds: float = 5.0) -> Iterator[bool]:
    """Block until this process leads (yields True) or `stop` is set first (yields False)."""
    if store.dialect != "postgresql":
        yield not stop.is_set()
        return
    connection = store.engine.connect()
    try:
        while not stop.is_set():
            if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                connection.commit()
                break
            connection.commit()
            stop.wait(retry_seconds)
        if stop.is_set():
            yield False
            return
        watcher = threading.Thread(target=_watch, args=(connection, stop, check_seconds), daemon=True)
        watcher.start()
        try:
            yield True
        finally:
            stop.set()
            watcher.join(timeout=check_seconds + 1)
            _unlock(connection, key)
    finally:
        connection.close()


def _watch(connection: object, stop: threading.Event, every: float) -> None:
    """Step down when the session holding the lock is gone: another process may lead now."""
    while not stop.wait(every):
        try:
            connection.execute(text("SELECT 1"))  # type: ignore[attr-defined]
            connection.commit()  # type: ignore[attr-defined]
        except DBAPIError:
            log.error("lost the scheduler leader lock's connection; stepping down")
            stop.set()


def _unlock(connection: object, key: int) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})  # type: ignore[attr-defined]
        connection.commit()  # type: ignore[attr-defined]
    except DBAPIError:
        pass  # the session is gone, and the lock with it
