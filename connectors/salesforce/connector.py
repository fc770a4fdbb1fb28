"""Salesforce sObjects through the connector contract: SOQL pulls, sObject Collections writes.

Pulls read `SELECT <every field the describe lists> FROM <obj>` ordered by
(SystemModstamp, Id), following `nextRecordsUrl`; a page's cursor is the (SystemModstamp,
Id) of its last record, and a resumed pull asks for `SystemModstamp > t OR (SystemModstamp
= t AND Id > last)`, so records sharing one timestamp across a page boundary are neither
lost nor repeated. Salesforce keeps SystemModstamp to the second, which is why the cursor
holds it to the second; and why a pull resumed from a stored cursor whose second is recent
reads that whole second again (`resume_where`): a record changed later in that second with a
lower Id would otherwise never be pulled. A pull that continues an interrupted one (the
engine retrying a failed page) resumes exactly (`ResumePoints`).

Writes use sObject Collections (200 records a call, `allOrNone: false`), so one bad record
is one failed `WriteResult` and the others are saved. When a call fails after earlier calls
of the same push wrote records, those results are kept and only the rest is handed back
for a retry (`finish_partial`), so that a retry never creates a record twice. An Opportunity is read with its line
items (a relationship subquery), which the order mapping turns into order lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import (
    ConnectorError,
    Limits,
    OpKind,
    Page,
    Rejected,
    ResumePoints,
    Unavailable,
    WebhookEvent,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
    finish_partial,
)
from connectors.salesforce import webhook
from connectors.salesforce.client import SalesforceClient
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

PAGE_SIZE = 2000      # most records one query page returns
BATCH_SIZE = 200      # most records one sObject Collections call takes
MIN_PAGE_SIZE = 200   # Salesforce ignores a batchSize below this
MODSTAMP = "SystemModstamp"
RESUME_OVERLAP = timedelta(minutes=10)  # how long a cursor's second is read again (see resume_where)

# Child relationships read with their parent: relationship name and its fields.
CHILDREN: dict[str, tuple[str, tuple[str, ...]]] = {
    "Opportunity": ("OpportunityLineItems", ("Id", "Product2Id", "ProductCode", "Quantity", "UnitPrice", "TotalPrice", "Name")),
}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def soql_datetime(value: str) -> str:
    """A Salesforce datetime (`2024-05-01T08:00:03.000+0000`) as a SOQL literal, to the second."""
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(record: dict[str, Any]) -> str:
    return f"{soql_datetime(str(record[MODSTAMP]))}/{record['Id']}"


def decode_cursor(cursor: str) -> tuple[str, str]:
    """(SOQL datetime literal, Id) of a cursor, checked strictly since both go into SOQL."""
    stamp, _, last_id = cursor.partition("/")
    if not _STAMP.match(stamp) or not _ID.match(last_id):
        raise ConnectorError(f"salesforce: cursor {cursor!r} is not '<SystemModstamp>/<Id>'")
    return stamp, last_id


def resume_where(since: str | None, now: datetime | None = None, exact: bool = False) -> str:
    """The WHERE clause of a pull resumed from a stored cursor.

    SystemModstamp has one-second resolution: a record changed in the cursor's second after
    the pull that made the cursor, with a lower Id, is behind a strict (SystemModstamp, Id)
    keyset for good. So while the cursor's second is recent (`RESUME_OVERLAP` by this host's
    clock), the pull reads that whole second again and the engine skips what it has seen; an
    older second is closed, and the keyset is exact, as it is for a pull that continues an
    interrupted one (`exact`, see `ResumePoints`).
    """
    if not since:
        return ""
    stamp, last_id = decode_cursor(since)
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if not exact and moment >= (now or datetime.now(UTC)) - RESUME_OVERLAP:
        return f" WHERE {MODSTAMP} >= {stamp}"
    return f" WHERE {MODSTAMP} > {stamp} OR ({MODSTAMP} = {stamp} AND Id > {_quote(last_id)})"


def _object_name(obj: str) -> str:
    if not _NAME.match(obj):
        raise ConnectorError(f"salesforce: {obj!r} is not an sObject name")
    return obj


def _quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _options(settings: System) -> dict[str, Any]:
    options = {name: reveal(value) for name, value in (settings.options or {}).items()}
    page_size = int(options.get("page_size") or PAGE_SIZE)
    if not MIN_PAGE_SIZE <= page_size <= PAGE_SIZE:
        raise ConnectorError(f"salesforce option page_size must be between {MIN_PAGE_SIZE} and {PAGE_SIZE}")
    options["page_size"] = page_size
    return options


class Connector:
    """Salesforce seen through the connector contract (see the module docstring)."""

    name = "salesforce"
    limits = Limits(page_size=PAGE_SIZE, batch_size=BATCH_SIZE)

    def __init__(self, settings: System, session: Any = None) -> None:
        self.settings = settings
        self.options = _options(settings)
        self.page_size: int = self.options["page_size"]
        self.client = SalesforceClient(settings)
        self._fields: dict[str, list[str]] = {}
        self._resumes = ResumePoints()
        self.log = log.bind(connector=self.name, system=settings.name)

    def __repr__(self) -> str:
        return f"SalesforceConnector(system={self.settings.name!r})"

    # --- describe ------------------------------------------------------------------------

    def fields(self, obj: str) -> list[str]:
        """The fields to read of `obj`: the configured ones (option `fields`), else every field
        the describe lists, fetched once per connector."""
        obj = _object_name(obj)
        configured = (self.options.get("fields") or {}).get(obj)
        if configured and obj not in self._fields:
            self._fields[obj] = list(dict.fromkeys(["Id", "SystemModstamp", *map(str, configured)]))
        if obj not in self._fields:
            answer = self.client.api("GET", f"sobjects/{obj}/describe")
            names = [str(f["name"]) for f in (answer or {}).get("fields", []) if isinstance(f, dict) and f.get("name")]
            if "Id" not in names:
                raise Unavailable(f"salesforce: the describe of {obj} lists no Id field")
            self._fields[obj] = names
        return self._fields[obj]

    def _select(self, obj: str) -> str:
        columns = ", ".join(self.fields(obj))
        child = CHILDREN.get(obj)
        if child is not None:
            relationship, child_fields = child
            columns += f", (SELECT {', '.join(child_fields)} FROM {relationship})"
        return columns

    # --- reads ---------------------------------------------------------------------------

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        where = resume_where(since, exact=self._resumes.resuming(obj, since))
        soql = f"SELECT {self._select(obj)} FROM {_object_name(obj)}{where} ORDER BY {MODSTAMP}, Id"
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        pages = 0
        try:
            answer = self.client.api("GET", "query", params={"q": soql}, headers=headers)
            while True:
                records = list(answer.get("records") or [])
                pages += 1
                if records:
                    cursor = encode_cursor(records[-1])
                    self._resumes.handed(obj, cursor)
                    yield Page(records, cursor)
                next_url = answer.get("nextRecordsUrl")
                if answer.get("done", True) or not next_url:
                    break
                answer = self.client.api("GET", str(next_url), headers=headers)
        except GeneratorExit:  # the caller stopped reading: not an interruption by the vendor
            self._resumes.finished(obj)
            raise
        self._resumes.finished(obj)
        self.log.debug("salesforce pull done", object=obj, pages=pages)

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        """Records by Id: sObject Collections retrieve, or SOQL `IN` for objects read with children."""
        wanted = [str(i) for i in dict.fromkeys(ids) if _ID.match(str(i))]
        found: list[dict[str, Any]] = []
        for chunk in _chunks(wanted, BATCH_SIZE):
            if obj in CHILDREN:
                soql = f"SELECT {self._select(obj)} FROM {_object_name(obj)} WHERE Id IN ({', '.join(map(_quote, chunk))})"
                answer = self.client.api("GET", "query", params={"q": soql})
                found.extend(answer.get("records") or [])
            else:
                params = {"ids": ",".join(chunk), "fields": ",".join(self.fields(obj))}
                answer = self.client.api("GET", f"composite/sobjects/{_object_name(obj)}", params=params)
                found.extend(r for r in answer or [] if isinstance(r, dict))
        return found

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        obj = _object_name(obj)
        results: list[WriteResult | None] = [None] * len(ops)
        groups: dict[tuple[OpKind, str | None], list[int]] = {}
        for index, op in enumerate(ops):
            problem = _unpushable(op)
            if problem is not None:
                results[index] = WriteResult(False, op.external_id, error=Rejected(problem, "SYNCHUB_BAD_OP"))
                continue
            groups.setdefault((op.kind, op.key_field if op.kind == OpKind.UPSERT else None), []).append(index)
        try:
            for (kind, key_field), indexes in groups.items():
                for chunk in _chunks(indexes, BATCH_SIZE):
                    self._write_chunk(obj, kind, key_field, ops, chunk, results)
        except ConnectorError as exc:
            self.log.warning("salesforce push interrupted", object=obj, error=str(exc)[:300],
                             left=sum(r is None for r in results))
            return finish_partial(results, ops, exc)
        return [r for r in results if r is not None]

    def _write_chunk(self, obj: str, kind: OpKind, key_field: str | None, ops: list[WriteOp], chunk: list[int],
                     results: list[WriteResult | None]) -> None:
        """One sObject Collections call; a refusal of the whole call is each of its records' result."""
        batch = [ops[i] for i in chunk]
        try:
            written = self._write(obj, kind, key_field, batch)
        except Rejected as exc:
            written = [WriteResult(False, op.external_id, error=exc) for op in batch]
        for i, result in zip(chunk, written, strict=True):
            results[i] = result

    def _write(self, obj: str, kind: OpKind, key_field: str | None, ops: list[WriteOp]) -> list[WriteResult]:
        records = [_record(obj, op) for op in ops]
        body = {"allOrNone": False, "records": records}
        if kind == OpKind.CREATE:
            answer = self.client.api("POST", "composite/sobjects", body=body)
        elif kind == OpKind.UPDATE:
            answer = self.client.api("PATCH", "composite/sobjects", body=body)
        else:
            answer = self.client.api("PATCH", f"composite/sobjects/{obj}/{key_field}", body=body)
        if not isinstance(answer, list) or len(answer) != len(ops):
            raise Unavailable(f"salesforce: {kind} of {len(ops)} {obj} records answered with "
                              f"{len(answer) if isinstance(answer, list) else 'no'} results")
        return [_result(kind, op, item) for op, item in zip(ops, answer, strict=True)]

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        expected = str(reveal((self.settings.webhook or {}).get("organization_id")) or "")
        try:
            message = webhook.parse(request.body)
        except webhook.BadMessage as exc:
            self.log.warning("salesforce outbound message refused", reason=str(exc))
            return WebhookReply(400, webhook.fault(str(exc)), webhook.CONTENT_TYPE)
        if not webhook.same_organization(message.organization_id, expected):
            self.log.warning("salesforce outbound message from another org refused")
            return WebhookReply(401, webhook.fault("unknown organization"), webhook.CONTENT_TYPE)
        events = [WebhookEvent(n.id, n.object, n.record_id, "changed", {"fields": n.fields, "action_id": message.action_id})
                  for n in message.notifications]
        return WebhookReply(200, webhook.ACK, webhook.CONTENT_TYPE, events)

    def close(self) -> None:
        self.client.close()


def _unpushable(op: WriteOp) -> str | None:
    if op.kind == OpKind.UPDATE and not (op.external_id and _ID.match(op.external_id)):
        return f"update needs the Salesforce Id of the record, got {op.external_id!r}"
    if op.kind == OpKind.UPSERT and not (op.key_field and _NAME.match(op.key_field)):
        return "upsert needs the external-id field (key_field) to match on"
    if op.kind not in (OpKind.CREATE, OpKind.UPDATE, OpKind.UPSERT):
        return f"unknown operation {op.kind!r}"
    return None


def _record(obj: str, op: WriteOp) -> dict[str, Any]:
    """The sObject of one op: its payload without read-only keys, typed, keyed as the op says."""
    payload = {k: v for k, v in op.payload.items() if k not in ("attributes", "Id")}
    if op.key_field and op.kind in (OpKind.CREATE, OpKind.UPSERT):
        payload.setdefault(op.key_field, op.key)
    record: dict[str, Any] = {"attributes": {"type": obj}, **payload}
    if op.kind == OpKind.UPDATE:
        record["Id"] = op.external_id
    return record


def _result(kind: OpKind, op: WriteOp, item: Any) -> WriteResult:
    if not isinstance(item, dict):
        return WriteResult(False, op.external_id, error=Unavailable("salesforce: a write result is not an object"))
    if item.get("success"):
        created = bool(item.get("created", kind == OpKind.CREATE))
        return WriteResult(True, str(item.get("id") or op.external_id), created=created)
    errors = item.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_EXCEPTION")
    message = str(first.get("message") or "record refused")
    fields = first.get("fields")
    reason = f"{code}: {message}" + (f" (fields: {', '.join(map(str, fields))})" if fields else "")
    return WriteResult(False, item.get("id") or op.external_id, error=Rejected(reason, code))
