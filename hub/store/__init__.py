"""The durable store: golden records, links, match keys, cursors, the job queue, the
webhook inbox, runs and audit, on SQLite (embedded) or PostgreSQL (several workers).

SQL lives only in this package. Everything else calls `Store` / `Tx` with batches of the
plain dataclasses exported here.
"""

from hub.store.engine import create_engine_for
from hub.store.errors import StoreError, StoreUnavailable
from hub.store.models import AuditEntry, Golden, InboxEvent, Job, Link, NewJob, Run
from hub.store.store import Store
from hub.store.tx import Tx

__all__ = [
    "AuditEntry",
    "Golden",
    "InboxEvent",
    "Job",
    "Link",
    "NewJob",
    "Run",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Tx",
    "create_engine_for",
]
