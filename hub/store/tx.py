"""`Tx`: one database transaction and every query the hub runs, composed per table family.

Each family lives in its own small module (links, golden, matching, cursors, runs, jobs,
inbox, audit); `Tx` only puts them together so callers write `tx.enqueue(...)`,
`tx.upsert_links(...)` within one transaction, e.g. "links, hashes and the cursor of a
page commit together, or not at all".
"""

from __future__ import annotations

from hub.store.audit import AuditMixin
from hub.store.cursors import CursorsMixin
from hub.store.deadletters import DeadLettersMixin
from hub.store.golden import GoldenMixin
from hub.store.inbox import InboxMixin
from hub.store.jobs import JobsMixin
from hub.store.links import LinksMixin
from hub.store.matching import MatchingMixin
from hub.store.references import ReferencesMixin
from hub.store.runs import RunsMixin


class Tx(LinksMixin, ReferencesMixin, GoldenMixin, MatchingMixin, CursorsMixin, RunsMixin, JobsMixin,
         DeadLettersMixin, InboxMixin, AuditMixin):
    """One open transaction; obtained from `Store.transaction()`, valid only inside it."""
