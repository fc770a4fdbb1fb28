"""Match keys: normalised identifying values (tax id, email, ...) → canonical ids.

Identity matching looks up a whole page's values at once. One value may point at several
canonical records (two customers sharing an email): the lookup returns all of them and the
engine decides what ambiguity means.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from hub.store.base import TxBase, chunked, unique
from hub.store.schema import match_keys


class MatchingMixin(TxBase):
    def match_lookup(self, entity: str, key: str, values: list[str]) -> dict[str, list[str]]:
        """Each known value → its canonical ids (sorted); unknown values are absent."""
        found: dict[str, list[str]] = {}
        for part in chunked(unique(values)):
            stmt = (
                select(match_keys.c.value, match_keys.c.canonical_id)
                .where(match_keys.c.entity == entity, match_keys.c.key == key, match_keys.c.value.in_(part))
                .order_by(match_keys.c.value, match_keys.c.canonical_id)
            )
            for value, canonical_id in self.connection.execute(stmt):
                found.setdefault(value, []).append(canonical_id)
        return found

    def match_put(self, entity: str, rows: list[tuple[str, str, str]]) -> None:
        """Record (key, value, canonical_id) rows; rows already present are left alone."""
        if not rows:
            return
        params = [
            {"entity": entity, "key": key, "value": value, "canonical_id": canonical_id}
            for key, value, canonical_id in unique(rows)
        ]
        self.connection.execute(self._upsert(match_keys).on_conflict_do_nothing(), params)
        self._wrote(match_keys, len(params))

    def match_delete(self, entity: str, canonical_ids: list[str], key: str | None = None) -> int:
        """Forget the match keys of these records (only `key` if given); returns rows deleted.

        Used before `match_put` when a record's identifying values changed, and when records
        are merged away.
        """
        deleted = 0
        for part in chunked(unique(canonical_ids)):
            stmt = delete(match_keys).where(
                match_keys.c.entity == entity, match_keys.c.canonical_id.in_(part)
            )
            if key is not None:
                stmt = stmt.where(match_keys.c.key == key)
            deleted += self.connection.execute(stmt).rowcount
        return deleted
