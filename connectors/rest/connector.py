"""The generic REST connector: the contract of `connectors/base.py` over a declared API.

Everything vendor-specific comes from the system's settings (see `SETTINGS_SCHEMA` and
docs/rest-connector.md), read once here into small frozen specs with their JMESPath
expressions compiled, so that a mistake the schema cannot see (a bad expression, an
unknown time zone) stops the connector at start-up with the setting's name.

Pulls resume from the newest `(modification time, id)` seen (see `pagination.py`); writes
go through a batch endpoint where one is declared, falling back to one call per record
when the server refuses a whole batch so that one bad record does not sink the others. A
push that fails midway (an outage after some calls succeeded) returns what was written and
a retryable error for the rest (`finish_partial`), so that a retry never writes twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
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
    finish_partial,
)
from connectors.rest.client import NotFound, RestClient
from connectors.rest.pagination import STYLES, Lister, ListSpec, Paging, Position, TimeFormat, zone
from connectors.rest.paths import DeclarationError, Expr, compile_expr, dotted_get, fill, search_list, wrapped
from connectors.rest.webhook import BadEvents, BadSignature, EventShape, Signing, parse_events, verify
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

# --- the declaration, read once ------------------------------------------------------------


@dataclass(frozen=True)
class Since:
    param: str
    format: TimeFormat
    lookback_us: int


@dataclass(frozen=True)
class GetSpec:
    path: str
    ids_param: str | None
    ids_style: str
    max_ids: int
    records: Expr | None
    record: Expr | None


@dataclass(frozen=True)
class BatchSpec:
    path: str
    method: str
    max_size: int
    wrap: str | None
    results: Expr
    id: Expr
    error: Expr


@dataclass(frozen=True)
class WriteSpec:
    path: str
    method: str
    wrap: str | None
    id: Expr
    created: Expr | None
    batch: BatchSpec | None


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    id_field: str
    updated_field: str
    updated: TimeFormat
    key_field: str | None
    lister: ListSpec
    since: Since | None
    get: GetSpec | None
    writes: dict[OpKind, WriteSpec]


def _object(name: str, block: dict[str, Any]) -> ObjectSpec:
    where = f"options.objects.{name}"
    tz = zone(str(block.get("timezone", "UTC")), f"{where}.timezone")
    updated = TimeFormat(str(block.get("updated_format", "iso8601")), tz)
    since_block = block.get("since")
    since = None
    if since_block:
        since_tz = zone(str(since_block["timezone"]), f"{where}.since.timezone") if "timezone" in since_block else tz
        since = Since(str(since_block["param"]), TimeFormat(str(since_block.get("format", updated.format)), since_tz),
                      int(since_block.get("lookback", 0)) * 1_000_000)
    writes = {kind: _write(block[kind.value], f"{where}.{kind.value}", kind)
              for kind in OpKind if block.get(kind.value)}
    return ObjectSpec(name, str(block.get("id_field", "id")), str(block.get("updated_field", "updated_at")), updated,
                      block.get("key_field"), _list(block["list"], f"{where}.list"), since,
                      _get(block["get"], f"{where}.get") if block.get("get") else None, writes)


def _list(block: dict[str, Any], where: str) -> ListSpec:
    paging = dict(block["pagination"])
    style = paging.get("style", "none")
    if style not in STYLES:
        raise DeclarationError(f"{where}.pagination.style: {style!r} is not one of {', '.join(STYLES)}")
    return ListSpec(
        path=str(block["path"]),
        paging=Paging(style, paging.get("page_param"), int(paging.get("first_page", 1)), paging.get("offset_param"),
                      paging.get("cursor_param"),
                      compile_expr(paging.get("next_cursor"), f"{where}.pagination.next_cursor"),
                      compile_expr(paging.get("next_url"), f"{where}.pagination.next_url")),
        method=str(block.get("method", "GET")).upper(),
        params=dict(block.get("params") or {}),
        body=dict(block.get("body") or {}),
        records=compile_expr(block.get("records"), f"{where}.records"),
        page_size=int(block.get("page_size", 100)),
        page_size_param=block.get("page_size_param"),
        sorted=bool(block.get("sorted", True)),
    )


def _get(block: dict[str, Any], where: str) -> GetSpec:
    return GetSpec(str(block["path"]), block.get("ids_param"), str(block.get("ids_style", "comma")),
                   int(block.get("max_ids", 50)), compile_expr(block.get("records"), f"{where}.records"),
                   compile_expr(block.get("record"), f"{where}.record"))


def _write(block: dict[str, Any], where: str, kind: OpKind) -> WriteSpec:
    default_method = {OpKind.CREATE: "POST", OpKind.UPDATE: "PATCH", OpKind.UPSERT: "PUT"}[kind]
    batch_block = block.get("batch")
    batch = None
    if batch_block:
        results = compile_expr(batch_block["results"], f"{where}.batch.results")
        assert results is not None
        batch = BatchSpec(str(batch_block["path"]), str(batch_block.get("method", "POST")).upper(),
                          int(batch_block["max_size"]), batch_block.get("wrap"), results,
                          _expr(batch_block.get("id"), f"{where}.batch.id", "id"),
                          _expr(batch_block.get("error"), f"{where}.batch.error", "error"))
    return WriteSpec(str(block["path"]), str(block.get("method", default_method)).upper(), block.get("wrap"),
                     _expr(block.get("id"), f"{where}.id", "id"),
                     compile_expr(block.get("created"), f"{where}.created"), batch)


def _expr(text: str | None, where: str, default: str) -> Expr:
    compiled = compile_expr(text, where, default)
    assert compiled is not None
    return compiled


# --- the connector -------------------------------------------------------------------------


class RestConnector:
    """A system declared in YAML, spoken to over HTTP (see the module docstring)."""

    name = "rest"

    def __init__(self, settings: System) -> None:
        options = settings.options or {}
        if not settings.base_url:
            raise DeclarationError(f"systems.{settings.name}.base_url: the rest connector needs the API's base URL")
        self.system = settings.name
        self.objects = {name: _object(name, dict(block)) for name, block in (options.get("objects") or {}).items()}
        if not self.objects:
            raise DeclarationError("options.objects: declare at least one object")
        hook = dict(settings.webhook or {})
        self.webhook_secret = hook.get("secret")
        self.signing = Signing.of(hook.get("signature"))
        self.shape = EventShape.of(hook) if hook else None
        self.reply = dict(hook.get("reply") or {})
        self.client = RestClient(settings)
        self.log = log.bind(connector="rest", system=settings.name)
        self.limits = Limits(page_size=min(o.lister.page_size for o in self.objects.values()),
                             batch_size=min(self._batch_size(o) for o in self.objects.values()))

    @staticmethod
    def _batch_size(spec: ObjectSpec) -> int:
        create = spec.writes.get(OpKind.CREATE)
        return create.batch.max_size if create and create.batch else 1

    def _spec(self, obj: str) -> ObjectSpec:
        try:
            return self.objects[obj]
        except KeyError:
            raise ConnectorError(f"{self.system}: object '{obj}' is not declared under options.objects "
                                 f"(declared: {', '.join(self.objects)})") from None

    def close(self) -> None:
        self.client.close()

    # --- pull ------------------------------------------------------------------------------

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        spec = self._spec(obj)
        after = Position.decode(since)
        filters: dict[str, Any] = {}
        if after is not None and spec.since is not None:
            filters[spec.since.param] = spec.since.format.format_value(after.us - spec.since.lookback_us)
        lister = Lister(self.client.send, spec.lister, self.client.base_url, f"{self.system}.{obj}")
        newest = after
        held: list[dict[str, Any]] = []  # unsorted lists: a page waits to learn whether it is the last
        yielded = False
        for records in lister.pages(filters):
            kept, newest = self._after(spec, records, after, newest)
            if not kept:
                continue
            if spec.lister.sorted:
                yield Page(kept, newest.encode() if newest else None)
            else:
                if held:
                    yield Page(held, None)
                held = kept
            yielded = True
        if held:
            yield Page(held, newest.encode() if newest else None)
        elif not yielded:
            yield Page([], newest.encode() if newest else None)

    def _after(self, spec: ObjectSpec, records: list[dict[str, Any]], after: Position | None,
               newest: Position | None) -> tuple[list[dict[str, Any]], Position | None]:
        """The records past `after`, and the newest position seen so far."""
        kept = []
        unplaced = 0
        for record in records:
            position = self._position(spec, record)
            if position is None:
                unplaced += 1
                kept.append(record)  # no readable time: cannot be placed, so never skipped
                continue
            if after is not None and position.key() <= after.key():
                continue
            kept.append(record)
            if newest is None or position.key() > newest.key():
                newest = position
        if unplaced:
            self.log.warning("records without a readable modification time or id", object=spec.name,
                             count=unplaced, field=spec.updated_field, format=spec.updated.format)
        return kept, newest

    def _position(self, spec: ObjectSpec, record: dict[str, Any]) -> Position | None:
        us = spec.updated.parse(dotted_get(record, spec.updated_field))
        rid = dotted_get(record, spec.id_field)
        if us is None or rid is None:
            return None
        return Position(us, str(rid))

    # --- get -------------------------------------------------------------------------------

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        spec = self._spec(obj)
        if spec.get is None:
            raise ConnectorError(f"{self.system}: objects.{obj}.get is not declared")
        if not ids:
            return []
        if spec.get.ids_param:
            return self._get_many(spec, spec.get, ids)
        return [r for r in (self._get_one(spec.get, rid) for rid in ids) if r is not None]

    def _get_many(self, spec: ObjectSpec, get: GetSpec, ids: list[str]) -> list[dict[str, Any]]:
        wanted = {str(i) for i in ids}
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), get.max_ids):
            chunk = ids[start:start + get.max_ids]
            value: Any = ",".join(chunk) if get.ids_style == "comma" else list(chunk)
            answer = self.client.json_body(self.client.send("GET", get.path, params={str(get.ids_param): value}))
            records = search_list(get.records, answer, f"{self.system}.{spec.name}.get.records")
            found.extend(r for r in records if isinstance(r, dict) and str(dotted_get(r, spec.id_field)) in wanted)
        return found

    def _get_one(self, get: GetSpec, rid: str) -> dict[str, Any] | None:
        try:
            response = self.client.send("GET", fill(get.path, id=rid))
        except NotFound:
            return None
        answer = self.client.json_body(response)
        record = get.record.search(answer) if get.record else answer
        return record if isinstance(record, dict) else None

    # --- push ------------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        spec = self._spec(obj)
        results: list[WriteResult | None] = [None] * len(ops)
        try:
            for kind in OpKind:
                indexes = [i for i, op in enumerate(ops) if op.kind == kind]
                if not indexes:
                    continue
                write = spec.writes.get(kind)
                if write is None:
                    for i in indexes:
                        results[i] = WriteResult(False, ops[i].external_id, error=Rejected(
                            f"{self.system}: objects.{obj}.{kind.value} is not declared", "NOT_DECLARED"))
                    continue
                self._write_all(spec, write, kind, ops, indexes, results)
        except ConnectorError as exc:
            self.log.warning("push interrupted", object=obj, error=str(exc)[:300],
                             done=sum(r is not None for r in results), left=sum(r is None for r in results))
            return finish_partial(results, ops, exc)
        return [r for r in results if r is not None]

    def _write_all(self, spec: ObjectSpec, write: WriteSpec, kind: OpKind, ops: list[WriteOp], indexes: list[int],
                   results: list[WriteResult | None]) -> None:
        """Write the ops at `indexes`, putting each result in `results` as soon as it is known."""
        if write.batch is None:
            self._write_each(spec, write, kind, ops, indexes, results)
            return
        for start in range(0, len(indexes), write.batch.max_size):
            self._write_batch(spec, write, kind, ops, indexes[start:start + write.batch.max_size], results)

    def _write_each(self, spec: ObjectSpec, write: WriteSpec, kind: OpKind, ops: list[WriteOp], indexes: list[int],
                    results: list[WriteResult | None]) -> None:
        for i in indexes:
            results[i] = self._write_one(spec, write, kind, ops[i])

    def _payload(self, spec: ObjectSpec, kind: OpKind, op: WriteOp) -> dict[str, Any]:
        payload = dict(op.payload)
        key_field = op.key_field or spec.key_field
        if key_field and kind != OpKind.UPDATE and "." not in key_field:
            payload.setdefault(key_field, op.key)
        return payload

    def _write_one(self, spec: ObjectSpec, write: WriteSpec, kind: OpKind, op: WriteOp) -> WriteResult:
        if kind == OpKind.UPDATE and not op.external_id:
            return WriteResult(False, error=Rejected(f"{self.system}: an update needs the record's id", "NO_ID"))
        path = fill(write.path, id=op.external_id or "", key=op.key)
        try:
            response = self.client.send(write.method, path, json=wrapped(self._payload(spec, kind, op), write.wrap))
        except Rejected as exc:
            return WriteResult(False, op.external_id, error=exc)
        answer = _json_or_none(response)
        new_id = write.id.search(answer) if answer is not None else None
        external_id = str(new_id) if new_id not in (None, "") else op.external_id
        if external_id is None:
            return WriteResult(False, error=Rejected(
                f"{self.system}: {write.method} {write.path} answered no id at {write.id.text!r}", "NO_ID"))
        return WriteResult(True, external_id, created=self._created(kind, write, response, answer))

    @staticmethod
    def _created(kind: OpKind, write: WriteSpec, response: requests.Response, answer: Any) -> bool:
        if kind == OpKind.CREATE:
            return True
        if kind == OpKind.UPDATE:
            return False
        if write.created is not None and answer is not None:
            return bool(write.created.search(answer))
        return response.status_code == 201

    def _write_batch(self, spec: ObjectSpec, write: WriteSpec, kind: OpKind, all_ops: list[WriteOp],
                     indexes: list[int], results: list[WriteResult | None]) -> None:
        batch = write.batch
        assert batch is not None
        ops = [all_ops[i] for i in indexes]
        payloads = [self._payload(spec, kind, op) for op in ops]
        if kind == OpKind.UPDATE:  # one call for many records: each says which one it changes
            for payload, op in zip(payloads, ops, strict=True):
                payload.setdefault(spec.id_field, op.external_id)
        try:
            response = self.client.send(batch.method, batch.path, json=wrapped(payloads, batch.wrap))
        except Rejected as exc:
            # the server refused the call as a whole: one call per record finds the bad one(s)
            self.log.info("batch refused, writing one by one", object=spec.name, size=len(ops), reason=exc.reason)
            self._write_each(spec, write, kind, all_ops, indexes, results)
            return
        items = search_list(batch.results, _json_or_none(response), f"{self.system}.{spec.name}.{kind.value}.batch.results")
        if len(items) != len(ops):
            raise ConnectorError(f"{self.system}: {batch.method} {batch.path} answered {len(items)} results "
                                 f"for {len(ops)} records")
        for i, op, item in zip(indexes, ops, items, strict=True):
            results[i] = self._batch_result(kind, write, batch, op, item)

    def _batch_result(self, kind: OpKind, write: WriteSpec, batch: BatchSpec, op: WriteOp, item: Any) -> WriteResult:
        error = batch.error.search(item) if isinstance(item, dict) else None
        if error not in (None, "", False):
            message = error.get("message", error) if isinstance(error, dict) else error
            return WriteResult(False, op.external_id, error=Rejected(str(message), "BATCH_ITEM"))
        new_id = batch.id.search(item) if isinstance(item, (dict, list)) else item
        if new_id in (None, ""):
            return WriteResult(False, op.external_id, error=Rejected(
                f"{self.system}: batch result has no id at {batch.id.text!r}", "NO_ID"))
        if kind == OpKind.CREATE:
            created = True
        else:
            created = bool(write.created.search(item)) if write.created is not None else False
        return WriteResult(True, str(new_id), created=created)

    # --- webhooks --------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        if self.shape is None or not reveal(self.webhook_secret):  # an empty secret verifies forgeries
            return WebhookReply(404, b"webhooks are not configured for this system")
        try:
            verify(self.webhook_secret, self.signing, request.headers, request.body)
        except BadSignature as exc:
            self.log.warning("webhook refused", reason=str(exc))
            return WebhookReply(401, b"invalid signature")
        try:
            events = parse_events(request.body, self.shape)
        except BadEvents as exc:
            self.log.warning("webhook not understood", reason=str(exc))
            return WebhookReply(400, str(exc).encode())
        except Exception as exc:  # a webhook must never raise into the API
            self.log.error("webhook parsing failed", error=type(exc).__name__)
            return WebhookReply(400, b"cannot parse webhook")
        reply = self.reply
        return WebhookReply(int(reply.get("status", 200)), str(reply.get("body", "")).encode(),
                            str(reply.get("content_type", "text/plain")), events)


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
