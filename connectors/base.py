"""The contract every connector follows, and the only connector module the engine imports.

A connector speaks one vendor's wire protocol and nothing else: it pulls pages of vendor
records, gets records by id, pushes write operations and parses webhooks. It holds no sync
logic (no hashing, no matching, no retries across calls): that is the engine's job, which
is why the engine can treat every vendor alike.

Errors are typed so that the engine decides by class: `RateLimited` and `Unavailable` are
retried (honouring `retry_after`), `AuthExpired` gets one token refresh and a retry, and
`Rejected` goes to the dead-letter queue at once with the vendor's message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from hub.errors import SynchubError

# --- errors --------------------------------------------------------------------------------


class ConnectorError(SynchubError):
    """A vendor call failed. Messages carry the vendor's words, never credentials."""

    retryable = False


class RateLimited(ConnectorError):
    """The vendor asked us to slow down; `retry_after` is its hint in seconds, if it gave one."""

    retryable = True

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ConnectorError):
    """The vendor could not be reached or failed on its side (5xx, timeout, dropped connection)."""

    retryable = True

    def __init__(self, message: str = "unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthExpired(ConnectorError):
    """The token is no longer accepted; the connector refreshes it once and the call is retried."""

    retryable = True


class Rejected(ConnectorError):
    """The vendor refused this record (validation, duplicate, permission): retrying won't help."""

    def __init__(self, reason: str, vendor_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.vendor_code = vendor_code


# --- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Records changed since a cursor, and the cursor to resume from after them.

    A cursor is opaque to the engine: it stores it once the page is committed and hands it
    back to `pull`. `None` as the page cursor means "no progress to record".
    """

    records: list[dict[str, Any]]
    cursor: str | None


class OpKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"


@dataclass(frozen=True)
class WriteOp:
    """One write. `key` is the idempotency key (the canonical id); `key_field` is the vendor
    field the mapping writes it into (its `key:`), which an upsert matches on; `external_id`
    is the vendor id for updates."""

    kind: OpKind
    payload: dict[str, Any]
    key: str
    external_id: str | None = None
    key_field: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one `WriteOp`, in the order of the ops given to `push`."""

    ok: bool
    external_id: str | None = None
    created: bool = False
    error: ConnectorError | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """One change a vendor told us about: enough to fetch the record and sync it."""

    event_id: str
    object: str
    external_id: str
    kind: str = "changed"
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook call as received, before any parsing: connectors verify the raw bytes."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever its case: ASGI servers lower-case names, requests and
    tests keep them as written, and proxies change them."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the vendor, and the events to store before answering."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    events: list[WebhookEvent] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """A vendor's own limits, which set the fewest API calls a pull or a push can take.

    `page_size` is the most records one list call returns, `batch_size` the most one write
    call takes (1: the vendor writes one record per call). The benchmarks count the calls a
    connector uses against these minimums.
    """

    page_size: int
    batch_size: int


def finish_partial(results: Sequence[WriteResult | None], ops: Sequence[WriteOp],
                   error: ConnectorError) -> list[WriteResult]:
    """The outcome of a push that a call-level `error` (an outage, a rate limit) interrupted.

    `results` holds, in the order of `ops`, what the calls made so far answered (None for
    the ops not done). While nothing was written, `error` is raised: the engine retries the
    whole push, which cannot duplicate anything. Once a record was written, a retry of the
    whole push would write it again (a second record, for a create), so the results so far
    are returned instead, and each op not done gets `error`, so that the engine treats those
    records as it treats a raised error: it parks them for a later retry (a `Rejected`, which
    it dead-letters whether raised or per op, stays one). Any other error that is not
    retryable (a plain `ConnectorError`) is wrapped in `Unavailable`: the engine dead-letters
    a record whose own error is not retryable, whereas it parks a whole push that raised one.
    """
    if len(results) != len(ops):
        raise ValueError("finish_partial needs one result slot per op")
    if not any(result is not None and result.ok for result in results):
        raise error
    keep = error.retryable or isinstance(error, Rejected)
    retry = error if keep else Unavailable(f"not written, the push was interrupted: {error}")
    return [result if result is not None else WriteResult(False, op.external_id, error=retry)
            for result, op in zip(results, ops, strict=True)]


class ResumePoints:
    """Per object, the cursor of the last page an unfinished pull handed out.

    Vendors that stamp changes to the second make a connector read a stored cursor's second
    again while it is recent, since a record written later in that second would otherwise be
    lost. The engine also calls `pull` again with the last page's cursor when a page fails in
    the middle of a run; that pull must continue exactly where the first stopped, or every
    failure would read the whole crowded second again (an import stamps thousands of records
    with one second) and, with a steady rate of faults, a pull might never end. A connector
    notes each cursor it hands out (`handed`) and forgets it when its pull ends cleanly
    (`finished`); a pull started from exactly that cursor (`resuming`) is the retry.
    """

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def resuming(self, obj: str, since: str | None) -> bool:
        """Whether a pull of `obj` from `since` continues an interrupted pull (asked once per pull)."""
        return since is not None and self._last.pop(obj, None) == since

    def handed(self, obj: str, cursor: str) -> None:
        self._last[obj] = cursor

    def finished(self, obj: str) -> None:
        self._last.pop(obj, None)


# --- the contract --------------------------------------------------------------------------


@runtime_checkable
class Connector(Protocol):
    """What the engine calls. `settings` is the system's config (`hub.config.System`)."""

    name: str
    limits: Limits

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        """Stream pages of records of `obj` changed after cursor `since` (all when None).

        Never miss a change; a connector whose vendor stamps changes coarsely may return again
        records of the cursor's own timestamp (see `ResumePoints`): the engine skips what it
        has seen."""
        ...

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        """The current records with these vendor ids; missing ones are left out."""
        ...

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        """Apply the ops, batching as the vendor allows; exactly one result per op, in order.

        A failure of one record is a `WriteResult` with its error; a failure of the whole
        call (rate limit, outage) raises instead, so that the engine retries the batch.
        """
        ...

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        """Verify (raising nothing: a bad signature is a 401 reply) and parse a vendor callback."""
        ...

    def close(self) -> None:
        """Release sessions and pools."""
        ...
