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

Decisions and lookups (connectors/erpnext/rules.py, both declared as data). A payload carrying
the pseudo-field `synchub_decision` (an approval decided in the OA) is applied as Frappe's
lifecycle steps for that doctype: the fields and a submit go in one call on a draft (Frappe
submits a document saved with docstatus 1, and rolls the fields back if the submit fails), a
cancel is `frappe.client.cancel`; steps the document is already past are skipped, fields are not
sent to a submitted document (Frappe refuses edits after submit). The batch's current docstatus
comes from the same list call that finds upsert keys, or one list call by name for updates. A
Link field the OA cannot know (a Leave Application's `employee`) is filled from a human value
(name, e-mail, employee number) with one list call per batch and field; a value matching no
document, or several, rejects that record only.

Datetimes are the site's local time without a zone (option `timezone`, default UTC), which
only matters for a cursor given as an ISO datetime: it is turned into the site's time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
    Unavailable,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
    finish_partial,
    header,
)
from connectors.erpnext import webhook as hooks
from connectors.erpnext.client import ErpnextClient, chunks
from connectors.erpnext.rules import (
    DECISION_FIELD,
    LOOKUPS,
    SUBMIT,
    Decision,
    Lookup,
    decision_for,
    resolve,
    steps_to_run,
)
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
LOOKUP_PAGE = 500  # rows per list call of a lookup (a value may match several documents)
_DOCSTATUS_WORDS = {0: "a draft", 1: "submitted", 2: "cancelled"}

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
        prepared = self._prepare(obj, ops)
        existing, states = self._existing_by_key(obj, ops)
        decided = [op.external_id for op, p in zip(ops, prepared, strict=True)
                   if p.decision is not None and op.kind == OpKind.UPDATE and op.external_id]
        states.update(self._docstatus_of(obj, decided))
        results: list[WriteResult | None] = [None] * len(ops)
        stop = _Stop()

        def run(indexes: list[int]) -> None:
            for i in indexes:
                results[i] = self._write(obj, ops[i], prepared[i], _Known(existing, states), stop)

        self._parallel(_groups(ops), run)
        if stop.error is not None:  # an outage stopped the push: what it did not write is retried
            interrupted = [None if r is None or r.error is stop.error else r for r in results]
            return finish_partial(interrupted, ops, stop.error)
        return [r if r is not None else WriteResult(False, error=Unavailable("erpnext: write not attempted"))
                for r in results]

    def _write(self, obj: str, op: WriteOp, prepared: _Prepared, known: _Known, stop: _Stop) -> WriteResult:
        if stop.error is not None:
            return WriteResult(False, op.external_id, error=stop.error)
        try:
            if prepared.error is not None:
                raise prepared.error
            return self._write_one(obj, op, prepared, known)
        except Rejected as exc:
            self.log.info("record rejected", object=obj, key=op.key, reason=exc.reason)
            return WriteResult(False, op.external_id, error=exc)
        except ConnectorError as exc:
            stop.set(exc)
            return WriteResult(False, op.external_id, error=exc)

    def _write_one(self, obj: str, op: WriteOp, prepared: _Prepared, known: _Known) -> WriteResult:
        payload = dict(prepared.payload)
        if op.key_field and op.key:
            payload.setdefault(op.key_field, op.key)
        existing = known.names
        target = op.external_id if op.kind == OpKind.UPDATE else existing.get(op.key) if op.kind == OpKind.UPSERT else None
        if op.kind == OpKind.UPDATE and not target:
            return WriteResult(False, None, error=Rejected(f"erpnext: update of {obj} without a document name"))
        if prepared.decision is not None:
            return self._decide(obj, op, target, payload, (prepared.decision, str(prepared.decision_value)), known)
        if target:
            payload.pop("name", None)
            if not payload:  # nothing to change: a save would only bump `modified` and fire webhooks
                return WriteResult(True, target, created=False)
            doc = self.client.update(obj, target, payload)
            return WriteResult(True, str(doc.get("name") or target), created=False)
        doc = self.client.insert(obj, payload)
        name = str(doc["name"])
        if op.kind == OpKind.UPSERT:
            existing[op.key] = name  # a later op of this batch with the same key updates it
        return WriteResult(True, name, created=True)

    # --- decisions -----------------------------------------------------------------------

    def _decide(self, obj: str, op: WriteOp, target: str | None, payload: dict[str, Any],
                asked: tuple[Decision, str], known: _Known) -> WriteResult:
        """Fields (on a draft or a new document) and the decision's lifecycle steps."""
        decision, value = asked
        payload.pop("name", None)
        changes = {**payload, **decision.values}
        docstatus = known.states.get(target, 0) if target else 0
        steps = steps_to_run(decision, docstatus)
        if steps is None:
            raise Rejected(f"erpnext: {obj} {target} is {_DOCSTATUS_WORDS.get(docstatus, docstatus)}: "
                           f"decision {value!r} cannot be applied", "DocstatusTransitionError")
        submit_now = docstatus == 0 and steps[:1] == (SUBMIT,)
        if submit_now:
            changes["docstatus"] = 1  # Frappe submits a draft saved with docstatus 1
            steps = steps[1:]
        if target is None:
            doc = self.client.insert(obj, changes)
            target = str(doc["name"])
            if op.kind == OpKind.UPSERT:
                known.names[op.key] = target
            known.states[target] = int(doc.get("docstatus") or 0)
            created = True
        else:
            created = False
            if docstatus == 0 and changes:
                doc = self.client.update(obj, target, changes)
                known.states[target] = int(doc.get("docstatus") or 0)
            elif docstatus != 0 and payload:
                self.log.info("fields not written to a document past draft", object=obj, name=target,
                              docstatus=docstatus, fields=sorted(payload))
        for step in steps:
            self._step(obj, target, step, known)
        return WriteResult(True, target, created=created)

    def _step(self, obj: str, name: str, step: str, known: _Known) -> None:
        doc = self.client.update(obj, name, {"docstatus": 1}) if step == SUBMIT else self.client.cancel(obj, name)
        known.states[name] = int(doc.get("docstatus") or 0)
        self.log.info("document lifecycle step", object=obj, name=name, step=step)

    def _docstatus_of(self, obj: str, names: list[str | None]) -> dict[str, int]:
        """The docstatus of named documents: one list call per hundred names."""
        wanted = [str(n) for n in dict.fromkeys(names) if n]
        states: dict[str, int] = {}
        for chunk in chunks(wanted, IDS_PER_CALL):
            for row in self.client.list(obj, fields=["name", "docstatus"], filters=[["name", "in", chunk]],
                                        length=len(chunk)):
                states[str(row["name"])] = int(row.get("docstatus") or 0)
        return states

    # --- preparing a batch ---------------------------------------------------------------

    def _prepare(self, obj: str, ops: list[WriteOp]) -> list[_Prepared]:
        """Payloads without Frappe's own fields, their decisions, and lookups done."""
        prepared = [_prepare_one(obj, op) for op in ops]
        for fieldname, lookup in LOOKUPS.get(obj, {}).items():
            self._look_up(fieldname, lookup, prepared)
        return prepared

    def _look_up(self, fieldname: str, lookup: Lookup, prepared: list[_Prepared]) -> None:
        """Replace each payload's human value of a Link field by the linked document's name."""
        wanted = [p for p in prepared if p.error is None and p.payload.get(fieldname) not in (None, "")]
        values = list(dict.fromkeys(str(p.payload[fieldname]) for p in wanted))
        if not values:
            return
        rows: list[dict[str, Any]] = []
        for chunk in chunks(values, IDS_PER_CALL):
            rows.extend(self._list_all(lookup.doctype, lookup.fields, [[f, "in", chunk] for f in lookup.match]))
        found = resolve(lookup, values, rows)
        for item in wanted:
            value = str(item.payload[fieldname])
            name, count = found[value]
            if name is not None:
                item.payload[fieldname] = name
            elif count == 0:
                item.error = Rejected(f"erpnext: no {lookup.doctype} matches {fieldname} {value!r} "
                                      f"(by {', '.join(lookup.match)})", "LinkValidationError")
            else:
                item.error = Rejected(f"erpnext: {count} {lookup.doctype} documents match {fieldname} {value!r}; "
                                      "the value must name one", "LinkValidationError")

    def _list_all(self, doctype: str, fields: list[str], or_filters: list[Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = self.client.list(doctype, fields=fields, or_filters=or_filters, order_by="name asc",
                                    start=len(rows), length=LOOKUP_PAGE)
            rows.extend(page)
            if len(page) < LOOKUP_PAGE:
                return rows

    def _existing_by_key(self, obj: str, ops: list[WriteOp]) -> tuple[dict[str, str], dict[str, int]]:
        """Document names by hub key, for the batch's upserts (one list call per key field), and
        the docstatus of each document found."""
        by_field: dict[str, list[str]] = {}
        for op in ops:
            if op.kind == OpKind.UPSERT and op.key_field and op.key:
                by_field.setdefault(op.key_field, [])
                if op.key not in by_field[op.key_field]:
                    by_field[op.key_field].append(op.key)
        found: dict[str, str] = {}
        states: dict[str, int] = {}
        for field, keys in by_field.items():
            for chunk in chunks(keys, IDS_PER_CALL):
                rows = self.client.list(obj, fields=["name", field, "docstatus"], filters=[[field, "in", chunk]],
                                        order_by="creation asc", length=len(chunk))
                for row in rows:
                    key = row.get(field)
                    if key not in (None, "") and str(key) not in found:
                        found[str(key)] = str(row["name"])
                        states[str(row["name"])] = int(row.get("docstatus") or 0)
        return found, states

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        try:
            secret = reveal((self.settings.webhook or {}).get("secret"))
            given = header(request.headers, hooks.SIGNATURE_HEADER)
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


@dataclass
class _Prepared:
    """One op's payload as it will be sent, the decision it carries, or why it is refused."""

    payload: dict[str, Any]
    decision: Decision | None = None
    decision_value: str | None = None
    error: Rejected | None = None


@dataclass(frozen=True)
class _Known:
    """What the batch learnt of the target: document names by hub key, docstatus by name."""

    names: dict[str, str]
    states: dict[str, int]


def _prepare_one(obj: str, op: WriteOp) -> _Prepared:
    payload = {k: v for k, v in op.payload.items() if k not in _VENDOR_FIELDS}
    if DECISION_FIELD not in payload:
        return _Prepared(payload)
    value = payload.pop(DECISION_FIELD)
    decision = decision_for(obj, value)
    if decision is None:
        reason = f"erpnext: {obj} has no decision {value!r} (see DECISIONS in connectors/erpnext/rules.py)"
        return _Prepared(payload, error=Rejected(reason, "UnknownDecision"))
    return _Prepared(payload, decision, str(value))


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
