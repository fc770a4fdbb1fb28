"""Links: which external record (system, object, external id) is which canonical record.

Identity resolution reads links by external id for a whole pulled page; the push path reads
them by canonical id for a whole target batch; both then write back hashes for the page in
one statement. The unique key (system, object, external_id) makes every write idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy import Row, bindparam, func, select, update

from hub.store.base import TxBase, chunked, unique
from hub.store.models import Link
from hub.store.schema import links
from hub.store.types import utcnow

log = structlog.get_logger()

_KEY = ("external_id", "system", "object", "entity")


def _link(row: Row) -> Link:
    return Link(**row._mapping)


class LinksMixin(TxBase):
    def links_by_external(self, system: str, object: str, external_ids: list[str],
                          entity: str | None = None) -> dict[str, Link]:
        """The links of these external ids in (system, object), keyed by external id.

        Ids without a link are simply absent: they are records we have never seen. A vendor
        record linked as several entities needs `entity` to say which link is meant.
        """
        found: dict[str, Link] = {}
        for part in chunked(unique(external_ids)):
            stmt = select(links).where(
                links.c.system == system, links.c.object == object, links.c.external_id.in_(part)
            )
            if entity is not None:
                stmt = stmt.where(links.c.entity == entity)
            for row in self.connection.execute(stmt):
                found[row.external_id] = _link(row)
        return found

    def links_by_canonical(self, system: str, object: str, canonical_ids: list[str],
                           entity: str | None = None) -> dict[str, Link]:
        """The link of each canonical id in (system, object), keyed by canonical id; with
        `entity`, only links of that entity (one vendor record may be several entities).

        Several external records can be linked to one canonical record (duplicates in the
        vendor that matched the same customer). The oldest link wins, so the record we write
        to stays the same from run to run; the ambiguity is logged.
        """
        found: dict[str, Link] = {}
        ambiguous: set[str] = set()
        for part in chunked(unique(canonical_ids)):
            stmt = (
                select(links)
                .where(links.c.system == system, links.c.object == object, links.c.canonical_id.in_(part))
                .order_by(links.c.id)
            )
            if entity is not None:
                stmt = stmt.where(links.c.entity == entity)
            for row in self.connection.execute(stmt):
                if row.canonical_id in found:
                    ambiguous.add(row.canonical_id)
                else:
                    found[row.canonical_id] = _link(row)
        if ambiguous:
            log.warning(
                "store.links.ambiguous",
                system=system,
                object=object,
                count=len(ambiguous),
                sample=sorted(ambiguous)[:5],
            )
        return found

    def links_of(self, entity: str, canonical_id: str) -> list[Link]:
        """Every system's link of one canonical record (admin: "which ids does it have?")."""
        stmt = (
            select(links)
            .where(links.c.entity == entity, links.c.canonical_id == canonical_id)
            .order_by(links.c.system, links.c.object, links.c.id)
        )
        return [_link(row) for row in self.connection.execute(stmt)]

    def upsert_links(self, batch: list[Link]) -> None:
        """Insert links, or update existing ones found by (system, object, external_id, entity).

        An existing link takes the given canonical id (a re-match moves it); a
        hash given as None keeps the stored one, so a pull can record `seen_hash` without
        knowing `written_hash` and vice versa. To clear a hash use `set_written_hashes`.
        Repeats of one key in the batch: the last one wins.
        """
        if not batch:
            return
        now = utcnow()
        rows = {
            (link.system, link.object, link.external_id, link.entity): {
                "entity": link.entity,
                "canonical_id": link.canonical_id,
                "system": link.system,
                "object": link.object,
                "external_id": link.external_id,
                "seen_hash": link.seen_hash,
                "written_hash": link.written_hash,
                "updated_at": now,
            }
            for link in batch
        }
        stmt = self._upsert(links)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={
                "entity": stmt.excluded.entity,
                "canonical_id": stmt.excluded.canonical_id,
                "seen_hash": func.coalesce(stmt.excluded.seen_hash, links.c.seen_hash),
                "written_hash": func.coalesce(stmt.excluded.written_hash, links.c.written_hash),
                "updated_at": stmt.excluded.updated_at,
            },
        )
        self.connection.execute(stmt, list(rows.values()))
        self._wrote(links, len(rows))

    def set_seen_hashes(self, system: str, object: str, hashes: Mapping[str, str | None]) -> int:
        """Record what we last pulled from existing links; returns how many links matched."""
        return self._set_hashes("seen_hash", system, object, hashes)

    def set_written_hashes(self, system: str, object: str, hashes: Mapping[str, str | None]) -> int:
        """Record what we last pushed to existing links (None forces the next write)."""
        return self._set_hashes("written_hash", system, object, hashes)

    def _set_hashes(self, column: str, system: str, object: str, hashes: Mapping[str, str | None]) -> int:
        if not hashes:
            return 0
        stmt = (
            update(links)
            .where(
                links.c.system == bindparam("b_system"),
                links.c.object == bindparam("b_object"),
                links.c.external_id == bindparam("b_external_id"),
            )
            .values({column: bindparam("b_hash"), "updated_at": bindparam("b_now")})
        )
        now = utcnow()
        params = [
            {"b_system": system, "b_object": object, "b_external_id": ext, "b_hash": h, "b_now": now}
            for ext, h in hashes.items()
        ]
        result = self.connection.execute(stmt, params)
        return result.rowcount
