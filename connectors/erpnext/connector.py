"""ERPNext / Frappe through the connector contract: doctypes over `/api/resource`.

Reading. A pull lists a doctype ordered by `modified asc, name asc` and resumes by keyset,
never by offset: the cursor is the `(modified, name)` of the last record, in the site's own
datetime text, and the next page asks for `modified >= t AND (modified > t OR name > last)`
(a `filters` and an `or_filters` in one call), so records sharing one `modified` across a
page boundary are neither lost nor repeated, and a record changed during the pull moves to
the end instead of shifting everyone's offsets. The list returns only a document's own
columns; doctypes whose child tables matter (option `full_documents`, by default the
transactions such as Sales Order) are read one document each, a few at a time.

Writing. ERPNext has no general batch insert over REST, so every record is one POST (create)
or PUT (update), sent `concurrency` at a time. An upsert first looks the batch's keys up in
one list call on the key field (a unique custom field such as `synchub_id`), then updates the
found and creates the missing. A vendor refusal (validation, duplicate, submitted document)
is that record's `Rejected`; a rate limit or an outage stops the batch: raised when nothing
was written yet (the engine retries the batch), otherwise reported on the records not done.

Datetimes are the site's local time without a zone (option `timezone`, default UTC), which
only matters for a cursor given as an ISO datetime: it is turned into the site's time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from connectors.base import (
    ConnectorError,
    Limits,
    OpKind,
    Page,
    Rejected,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from connectors.erpnext import webhook as hooks
from connectors.erpnext.client import ErpnextClient, chunks
from hub.config.model import System
from hub.config.secrets import reveal

ORDER = "modified asc, name asc"
DEFAULT_PAGE_SIZE = 100
DEFAULT_CONCURRENCY = 4
IDS_PER_CALL = 100  # names or keys in one `in` filter: keeps the query string a few KB
# Transactions: their child tables (items, taxes...) are only in the full document.
DEFAULT_FULL_DOCUMENTS = ("Sales Order", "Quotation", "Sales Invoice", "Delivery Note", "Purchase Order",
                          "Purchase Invoice", "Journal Entry", "Expense Claim")
# Set by Frappe itself; a PUT carrying a stale `modified` fails with TimestampMismatchError.
_VENDOR_FIELDS = ("creation", "modified", "modified_by", "owner", "doctype")

T = TypeVar("T")


class Connector:
    """ERPNext seen through the connector contract (see the module docstring)."""

    name = "erpnext"

    def __init__(self, settings: System, session: Any = None) -> None:
        self.settings = settings
        options = {k: reveal(v) for k, v in (settings.options or {}).items()}
        auth = {k: reveal(v) for k, v in (settings.auth or {}).items()}
        self.page_size = _positive(options.get("page_size", DEFAULT_PAGE_SIZE), "page_size")
        self.concurrency = _positive(options.get("concurrency", DEFAULT_CONCURRENCY), "concurrency")
        self.timezone = _zone(str(options.get("timezone") or "UTC"))
        self.full_documents = frozenset(options.get("full_documents") or DEFAULT_FULL_DOCUMENTS)
        self.limits = Limits(page_size=self.page_size, batch_size=1)
        if not settings.base_url:
            raise ConnectorError(f"erpnext system '{settings.name}' has no base_url")
        self.client = ErpnextClient(str(reveal(settings.base_url)), str(auth.get("api_key", "")),
                                    str(auth.get("api_secret", "")), timeout=settings.timeout,
                                    pool_size=max(8, self.concurrency * 2), verify=options.get("ca_file") or True)
        self.log = structlog.get_logger().bind(connector=self.name, system=settings.name)

    # --- reads ---------------------------------------------------------------------------

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        after = self._parse_cursor(since)
        full = obj in self.full_documents
        fields = ["name", "modified"] if full else ["*"]
        while True:
            filters, or_filters = _after(after)
            rows = self.client.list(obj, fields=fields, filters=filters, or_filters=or_filters, order_by=ORDER,
                                    length=self.page_size)
            if not rows:
                return
            last = rows[-1]
            after = (str(last["modified"]), str(last["name"]))
            records = self._documents(obj, [str(r["name"]) for r in rows]) if full else rows
            yield Page(records, encode_cursor(*after))
            if len(rows) < self.page_size:
                return

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        wanted = [str(i) for i in dict.fromkeys(ids)]
        if obj in self.full_documents:
            return self._documents(obj, wanted)
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(wanted, IDS_PER_CALL):
            for row in self.client.list(obj, fields=["*"], filters=[["name", "in", chunk]], length=len(chunk)):
                found[str(row["name"])] = row
        return [found[name] for name in wanted if name in found]

    def _documents(self, obj: str, names: list[str]) -> list[dict[str, Any]]:
        """Full documents (with child tables) in the order asked; deleted ones are left out."""
        docs = self._parallel(names, lambda name: self.client.read(obj, name))
        return [doc for doc in docs if doc is not None]

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        if not ops:
            return []
        existing = self._existing_by_key(obj, ops)
        results: list[WriteResult | None] = [None] * len(ops)
        stop = _Stop()

        def run(indexes: list[int]) -> None:
            for i in indexes:
                results[i] = self._write(obj, ops[i], existing, stop)

        self._parallel(_groups(ops), run)
        done = [r if r is not None else WriteResult(False, error=ConnectorError("erpnext: write not attempted"))
                for r in results]
        if stop.error is not None and not any(r.ok for r in done):
            raise stop.error  # nothing was written: the whole batch is retried
        return done

    def _write(self, obj: str, op: WriteOp, existing: dict[str, str], stop: _Stop) -> WriteResult:
        if stop.error is not None:
            return WriteResult(False, op.external_id, error=stop.error)
        try:
            return self._write_one(obj, op, existing)
        except Rejected as exc:
            self.log.info("record rejected", object=obj, key=op.key, reason=exc.reason)
            return WriteResult(False, op.external_id, error=exc)
        except ConnectorError as exc:
            stop.set(exc)
            return WriteResult(False, op.external_id, error=exc)

    def _write_one(self, obj: str, op: WriteOp, existing: dict[str, str]) -> WriteResult:
        payload = {k: v for k, v in op.payload.items() if k not in _VENDOR_FIELDS}
        if op.key_field and op.key:
            payload.setdefault(op.key_field, op.key)
        target = op.external_id if op.kind == OpKind.UPDATE else existing.get(op.key) if op.kind == OpKind.UPSERT else None
        if op.kind == OpKind.UPDATE and not target:
            return WriteResult(False, None, error=Rejected(f"erpnext: update of {obj} without a document name"))
        if target:
            payload.pop("name", None)
            doc = self.client.update(obj, target, payload)
            return WriteResult(True, str(doc.get("name") or target), created=False)
        doc = self.client.insert(obj, payload)
        name = str(doc["name"])
        if op.kind == OpKind.UPSERT:
            existing[op.key] = name  # a later op of this batch with the same key updates it
        return WriteResult(True, name, created=True)

    def _existing_by_key(self, obj: str, ops: list[WriteOp]) -> dict[str, str]:
        """Document names by hub key, for the batch's upserts: one list call per key field."""
        by_field: dict[str, list[str]] = {}
        for op in ops:
            if op.kind == OpKind.UPSERT and op.key_field and op.key:
                by_field.setdefault(op.key_field, [])
                if op.key not in by_field[op.key_field]:
                    by_field[op.key_field].append(op.key)
        found: dict[str, str] = {}
        for field, keys in by_field.items():
            for chunk in chunks(keys, IDS_PER_CALL):
                rows = self.client.list(obj, fields=["name", field], filters=[[field, "in", chunk]],
                                        order_by="creation asc", length=len(chunk))
                for row in rows:
                    key = row.get(field)
                    if key not in (None, "") and str(key) not in found:
                        found[str(key)] = str(row["name"])
        return found

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        try:
            secret = reveal((self.settings.webhook or {}).get("secret"))
            given = hooks.header(request.headers, hooks.SIGNATURE_HEADER)
            if not hooks.verify(str(secret or ""), request.body, given):
                self.log.warning("webhook refused", reason="bad or missing signature")
                return _reply(401, "invalid signature")
            events = hooks.parse(request.body, request.query.get("doctype"))
        except hooks.BadWebhook as exc:
            return _reply(400, str(exc))
        except Exception as exc:  # the contract: a webhook never raises
            self.log.error("webhook not understood", error=type(exc).__name__)
            return _reply(400, "webhook not understood")
        return WebhookReply(200, b"ok", "text/plain", events)

    def close(self) -> None:
        self.client.close()

    # --- helpers -------------------------------------------------------------------------

    def _parallel(self, items: list[Any], work: Callable[[Any], T]) -> list[T]:
        """`work` over `items`, `concurrency` at a time, results in order; the first error raised."""
        if len(items) <= 1 or self.concurrency == 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items)),
                                thread_name_prefix="erpnext") as pool:
            return list(pool.map(work, items))

    def _parse_cursor(self, since: str | None) -> tuple[str, str] | None:
        if since is None or since == "":
            return None
        try:
            value = json.loads(since)
        except ValueError:
            value = None
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value[0], value[1]
        return self._from_iso(since), ""

    def _from_iso(self, text: str) -> str:
        """An ISO datetime as a starting point, in the site's local time (naive = already local)."""
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConnectorError(f"erpnext: cursor {text!r} is neither a pull cursor nor an ISO datetime") from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.timezone).replace(tzinfo=None)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class _Stop:
    """The first call-level failure of a push; the ops not yet sent are not sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error: ConnectorError | None = None

    def set(self, error: ConnectorError) -> None:
        with self._lock:
            if self.error is None:
                self.error = error


def encode_cursor(modified: str, name: str) -> str:
    """The cursor after a record: its `modified` as the site wrote it, and its name."""
    return json.dumps([modified, name], ensure_ascii=False)


def _after(cursor: tuple[str, str] | None) -> tuple[list[Any] | None, list[Any] | None]:
    """Filters of the rows after a cursor: modified > t, or modified = t and name > last."""
    if cursor is None:
        return None, None
    modified, name = cursor
    return [["modified", ">=", modified]], [["modified", ">", modified], ["name", ">", name]]


def _groups(ops: list[WriteOp]) -> list[list[int]]:
    """Op indexes to run in order: upserts of one key together (the second one updates)."""
    groups: list[list[int]] = []
    by_key: dict[str, list[int]] = {}
    for i, op in enumerate(ops):
        if op.kind == OpKind.UPSERT and op.key:
            if op.key not in by_key:
                by_key[op.key] = []
                groups.append(by_key[op.key])
            by_key[op.key].append(i)
        else:
            groups.append([i])
    return groups


def _reply(status: int, text: str) -> WebhookReply:
    return WebhookReply(status, text.encode("utf-8"), "text/plain", [])


def _positive(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConnectorError(f"erpnext option {name} must be an integer, not {value!r}") from None
    if number < 1:
        raise ConnectorError(f"erpnext option {name} must be at least 1")
    return number


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConnectorError(f"erpnext option timezone: unknown time zone {name!r}") from None
