"""Cursors: where each flow's next pull resumes.

A cursor moves only in the transaction that commits its page, so a crash replays at most
one page (at-least-once) and never skips one.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from hub.store.base import TxBase
from hub.store.schema import cursors
from hub.store.types import utcnow


class CursorsMixin(TxBase):
    def cursor_get(self, flow: str) -> str | None:
        """The flow's cursor; None when it has none yet (or it was reset): pull everything."""
        stmt = select(cursors.c.value).where(cursors.c.flow == flow)
        return self.connection.execute(stmt).scalar_one_or_none()

    def cursor_set(self, flow: str, value: str | None) -> None:
        stmt = self._upsert(cursors).values(flow=flow, value=value, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[cursors.c.flow],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        self.connection.execute(stmt)

    def cursor_delete(self, flow: str) -> bool:
        """Forget the flow's cursor (`--full`); True if there was one."""
        return self.connection.execute(delete(cursors).where(cursors.c.flow == flow)).rowcount > 0
