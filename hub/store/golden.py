"""Golden records: the merged canonical view of each record, one row per canonical id."""

from __future__ import annotations

from sqlalchemy import select

from hub.store.base import TxBase, chunked, unique
from hub.store.models import Golden
from hub.store.schema import golden
from hub.store.types import utcnow


class GoldenMixin(TxBase):
    def golden_get(self, ids: list[str], *, for_update: bool = False) -> dict[str, Golden]:
        """The golden records with these canonical ids, keyed by id; unknown ids are absent.

        `for_update` locks the rows on PostgreSQL until the transaction ends, so two workers
        merging into the same record serialise instead of losing one merge. (On SQLite the
        `BEGIN IMMEDIATE` transaction already excludes other writers.)
        """
        found: dict[str, Golden] = {}
        for part in chunked(unique(ids)):
            stmt = select(golden).where(golden.c.id.in_(part))
            if for_update and self.dialect == "postgresql":
                stmt = stmt.with_for_update()
            for row in self.connection.execute(stmt):
                found[row.id] = Golden(**row._mapping)
        return found

    def golden_put(self, records: list[Golden], *, versions: bool = True) -> dict[str, int]:
        """Insert or replace golden records; returns each id's new version.

        A new record gets version 1; every put of an existing one bumps its version, so a
        reader can tell that the record changed since it looked. The `version` and
        `updated_at` given are ignored: the store owns both. Repeats of an id in the batch:
        the last one wins. `versions=False` returns nothing: without RETURNING the rows go
        through the driver's plain executemany, which the sync's page write needs for speed.
        """
        if not records:
            return {}
        now = utcnow()
        rows = {
            r.id: {
                "id": r.id,
                "entity": r.entity,
                "data": r.data,
                "meta": r.meta,
                "hash": r.hash,
                "version": 1,
                "updated_at": now,
            }
            for r in records
        }
        stmt = self._upsert(golden)
        stmt = stmt.on_conflict_do_update(
            index_elements=[golden.c.id],
            set_={
                "entity": stmt.excluded.entity,
                "data": stmt.excluded.data,
                "meta": stmt.excluded.meta,
                "hash": stmt.excluded.hash,
                "version": golden.c.version + 1,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        if not versions:
            self.connection.execute(stmt, list(rows.values()))
            self._wrote(golden, len(rows))
            return {}
        result = self.connection.execute(stmt.returning(golden.c.id, golden.c.version), list(rows.values()))
        self._wrote(golden, len(rows))
        return {row.id: row.version for row in result}
