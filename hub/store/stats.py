"""Planner statistics for PostgreSQL tables that grew fast.

PostgreSQL picks plans from statistics that only ANALYZE gathers (autovacuum runs it, a
minute or more after a table changed a lot, and not at all where autovacuum is off). A
fresh `links` table filled by a first import has none: the planner then believes it holds a
handful of rows and answers "these 500 external ids" with a scan of the whole table, page
after page, so a first import of 100k records slows to a crawl. The store therefore counts
the rows it writes per table and runs ANALYZE itself each time a table has doubled since it
last did (and after the first thousand rows): a few ANALYZEs of ~50 ms over a whole import.

SQLite needs none of this: its planner prefers the index that covers the most equality
terms and never scans a table for a keyed lookup.
"""

from __future__ import annotations

import threading

#: Rows written to a table before its first ANALYZE.
FIRST_ANALYZE_AFTER = 1_000


class GrowthTracker:
    """Counts rows written per table (by all threads of a process) and says when to ANALYZE."""

    def __init__(self, first_after: int = FIRST_ANALYZE_AFTER) -> None:
        self._first_after = first_after
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}
        self._analysed_at: dict[str, int] = {}  # rows written when last analysed

    def wrote(self, table: str, rows: int) -> None:
        if rows <= 0:
            return
        with self._lock:
            self._written[table] = self._written.get(table, 0) + rows

    def due(self) -> list[str]:
        """Tables to ANALYZE now; each is then considered analysed at its current count."""
        tables: list[str] = []
        with self._lock:
            for table, written in self._written.items():
                last = self._analysed_at.get(table, 0)
                if written - last >= max(self._first_after, last):
                    self._analysed_at[table] = written
                    tables.append(table)
        return sorted(tables)
