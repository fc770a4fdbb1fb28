"""Runs: one row per sync run of a flow, with its counters, for the run log and metrics.

Counters are incremented in SQL (`pulled = pulled + :n`) page by page, in the page's own
transaction, so a crashed run still shows what it committed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select, update

from hub.store.base import TxBase
from hub.store.models import Run
from hub.store.schema import RUN_COUNTERS, RUN_STATUSES, runs
from hub.store.types import utcnow

_FINAL_STATUSES = tuple(s for s in RUN_STATUSES if s != "running")


def _run(row: Row) -> Run:
    return Run(**row._mapping)


class RunsMixin(TxBase):
    def run_start(self, flow: str, trigger: str) -> int:
        """Open a run (status running) and return its id."""
        stmt = insert(runs).values(flow=flow, trigger=trigger, status="running", started_at=utcnow())
        return int(self.connection.execute(stmt.returning(runs.c.id)).scalar_one())

    def run_add(self, run_id: int, **counts: int) -> None:
        """Add to the run's counters, e.g. `run_add(7, pulled=200, created=3)`.

        Unknown counter names raise ValueError: a typo must not silently lose a count.
        """
        unknown = set(counts) - set(RUN_COUNTERS)
        if unknown:
            raise ValueError(f"unknown run counters: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {name: runs.c[name] + n for name, n in counts.items() if n}
        if values:
            self.connection.execute(update(runs).where(runs.c.id == run_id).values(values))

    def run_finish(self, run_id: int, status: str, note: str | None = None) -> None:
        """Close the run with its outcome: ok, partial (some records failed) or failed."""
        if status not in _FINAL_STATUSES:
            raise ValueError(f"a run finishes as one of {', '.join(_FINAL_STATUSES)}, not {status!r}")
        stmt = update(runs).where(runs.c.id == run_id).values(status=status, note=note, finished_at=utcnow())
        self.connection.execute(stmt)

    def run_get(self, run_id: int) -> Run | None:
        row = self.connection.execute(select(runs).where(runs.c.id == run_id)).first()
        return None if row is None else _run(row)

    def runs_recent(self, flow: str | None = None, limit: int = 20) -> list[Run]:
        """The latest runs, newest first, of one flow or of all."""
        stmt = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        if flow is not None:
            stmt = stmt.where(runs.c.flow == flow)
        return [_run(row) for row in self.connection.execute(stmt)]
