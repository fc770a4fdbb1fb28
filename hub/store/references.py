"""Links looked up by entity rather than by object: how `ref` rules find ids.

An order names its customer by the customer's id in the order's own system; which object
holds customers there is the customer flow's business, not the order's. So references are
resolved by (system, entity, id), across the system's objects.
"""

from __future__ import annotations

from sqlalchemy import select

from hub.store.base import TxBase, chunked, unique
from hub.store.models import Link
from hub.store.schema import links


class ReferencesMixin(TxBase):
    def links_for_entity_external(self, system: str, entity: str, external_ids: list[str]) -> dict[str, Link]:
        """Links of these external ids of `entity` in `system`, keyed by external id."""
        found: dict[str, Link] = {}
        for part in chunked(unique(external_ids)):
            stmt = select(links).where(links.c.system == system, links.c.entity == entity,
                                       links.c.external_id.in_(part))
            for row in self.connection.execute(stmt):
                found.setdefault(row.external_id, Link(**row._mapping))
        return found

    def links_for_entity(self, system: str, entity: str, canonical_ids: list[str]) -> dict[str, Link]:
        """Links of these canonical ids of `entity` in `system`, keyed by canonical id."""
        found: dict[str, Link] = {}
        for part in chunked(unique(canonical_ids)):
            stmt = select(links).where(links.c.system == system, links.c.entity == entity,
                                       links.c.canonical_id.in_(part)).order_by(links.c.id)
            for row in self.connection.execute(stmt):
                found.setdefault(row.canonical_id, Link(**row._mapping))
        return found
