"""Plain rows that cross the store's boundary.

The engine never sees SQLAlchemy rows: it gets these frozen dataclasses (cheap to build with
`slots`, safe to share between threads, easy to compare in tests) and hands the same shapes
back. Fields the database assigns (`id`, timestamps, `version`) default to None/0 so callers
can build a row without inventing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

JobStatus = Literal["queued", "running", "done", "dead"]
RunStatus = Literal["running", "ok", "partial", "failed"]
InboxStatus = Literal["new", "done"]


@dataclass(frozen=True, slots=True)
class Link:
    """One external record known to be a copy of one canonical record.

    `seen_hash` is the hash of what we last pulled from the system (echo suppression);
    `written_hash` the hash of what we last pushed there (skip unchanged writes).
    """

    entity: str
    canonical_id: str
    system: str
    object: str
    external_id: str
    seen_hash: str | None = None
    written_hash: str | None = None
    id: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Golden:
    """The merged, canonical view of one record, with per-field provenance in `meta`."""

    id: str
    entity: str
    data: dict[str, Any]
    meta: dict[str, Any]
    hash: str
    version: int = 0
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue. With a `dedupe_key`, at most one such job is open at a time.

    `not_before` delays the first attempt (None: due now).
    """

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    flow: str | None = None
    dedupe_key: str | None = None
    max_attempts: int = 5
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored. `attempts` counts claims (including ones lost to a crashed worker)."""

    id: int
    kind: str
    flow: str | None
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    """One sync run of one flow and its counters."""

    id: int
    flow: str
    trigger: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_echo: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0
    note: str | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A vendor webhook event, stored before the vendor gets its acknowledgement."""

    system: str
    event_id: str
    object: str
    external_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    received_at: datetime | None = None
    status: InboxStatus = "new"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Something a person or the engine did that an admin may later ask about."""

    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    id: int | None = None
    at: datetime | None = None
