"""Odoo through the connector contract: keyset pulls on write_date, batched creates, keyed upserts.

Pull. `search_read` ordered by `write_date asc, id asc` with the keyset domain
`['|', ('write_date', '>', t), '&', ('write_date', '=', t), ('id', '>', last)]` and offset 0:
Odoo's write_date has one-second resolution, so many records share one, and an offset
would drift as records change during a sync. The cursor is `"<write_date>|<id>"` of a
page's last record. Archived records are read too (`active_test: False`): an archived
partner is a change the hub must see. Sales orders come with their lines: one `read` on
`sale.order.line` per page, attached as `order_line` (a list of line dicts, in place of the
id list), so a mapping can walk them with `each`.

Push. Creates go in one `create([vals, ...])` per batch of 200 (Odoo 12+ takes a list).
Odoo creates all or none of a list, so when it refuses one (a ValidationError), the batch
is created again record by record and only the bad ones are rejected, with Odoo's
message. Updates are one `write([id], vals)` per record, except that records getting
identical values share one call. Upserts search the key field once per batch
(`search_read` with `in`) and then create or write.

Relational values. The hub's `ref` resolution gives ids as strings; a many2one wants an int,
so a digit string in a `*_id` field is sent as a number. Order lines may come as Odoo
commands (`[0, 0, {...}]`) or as plain dicts, which become `(0, 0, vals)` commands. On an
update, a list of only `(0, 0, vals)` commands replaces the order's lines (`(5,)` first),
because the hub sends the whole order, not a diff. A line's `product_id` given as text is
looked up among products by its Internal Reference (`default_code`, also in Odoo's display
form `"[CODE] Name"`) or else its exact name, in one `search_read` per batch.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import structlog

from connectors.base import (
    Limits,
    OpKind,
    Page,
    Rejected,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
)
from connectors.odoo.client import OdooClient
from connectors.odoo.webhook import WebhookError, parse, token_matches
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

PAGE_SIZE = 500
BATCH_SIZE = 200
ORDER = "write_date asc, id asc"
READ_ARCHIVED = {"active_test": False}
TIMESTAMP = "%Y-%m-%d %H:%M:%S"
# one2many fields whose lines a pull attaches and a push turns into commands
LINES = {"sale.order": ("order_line", "sale.order.line")}
_VENDOR_FIELDS = ("id", "display_name", "create_date", "write_date", "__last_update")
_DISPLAY_CODE = re.compile(r"^\[(?P<code>[^\]]+)\]\s*(?P<name>.*)$", re.DOTALL)

Vals = dict[str, Any]


# --- cursors -------------------------------------------------------------------------------------


def make_cursor(write_date: str, record_id: int) -> str:
    return f"{write_date}|{record_id}"


def parse_cursor(cursor: str | None) -> tuple[str, int] | None:
    """`(write_date, id)` of a cursor made by `make_cursor`, or ValueError."""
    if cursor is None:
        return None
    stamp, sep, rid = cursor.rpartition("|")
    try:
        datetime.strptime(stamp, TIMESTAMP)
        if not sep or not rid.isdigit():
            raise ValueError
    except ValueError:
        raise ValueError(f"odoo: {cursor!r} is not an Odoo cursor (write_date|id)") from None
    return stamp, int(rid)


def keyset_domain(after: tuple[str, int] | None) -> list[Any]:
    """Records after `(t, last)` in `write_date, id` order."""
    if after is None:
        return []
    stamp, last = after
    return ["|", ("write_date", ">", stamp), "&", ("write_date", "=", stamp), ("id", ">", last)]


# --- values --------------------------------------------------------------------------------------


def _record_id(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def coerce_ids(vals: Vals) -> Vals:
    """Digit strings in many2one fields (`*_id`) as ints, which is what Odoo accepts."""
    return {k: int(v) if k.endswith("_id") and isinstance(v, str) and v.strip().isdigit() else v
            for k, v in vals.items() if k not in _VENDOR_FIELDS}


def line_commands(value: Any, replace: bool) -> Any:
    """Order lines as Odoo commands; with `replace`, only-new lines replace the old ones."""
    if not isinstance(value, list):
        return value
    commands: list[list[Any]] = []
    for item in value:
        if isinstance(item, dict):
            commands.append([0, 0, coerce_ids(item)])
        elif isinstance(item, (list, tuple)) and len(item) == 3 and item[0] == 0 and isinstance(item[2], dict):
            commands.append([0, 0, coerce_ids(item[2])])
        else:
            commands.append(list(item) if isinstance(item, (list, tuple)) else item)
    if replace and commands and all(isinstance(c, list) and c and c[0] == 0 for c in commands):
        commands.insert(0, [5])
    return commands


def _line_vals(vals: Vals, field: str) -> Iterator[Vals]:
    for command in vals.get(field) or []:
        if isinstance(command, list) and len(command) == 3 and command[0] in (0, 1) and isinstance(command[2], dict):
            yield command[2]


class Connector:
    """Odoo's external API seen through `connectors.base.Connector` (see the module docstring)."""

    name = "odoo"

    def __init__(self, settings: System, session: Any = None) -> None:
        auth = {k: reveal(v) for k, v in (settings.auth or {}).items()}
        options = {k: reveal(v) for k, v in (settings.options or {}).items()}
        self.settings = settings
        self.client = OdooClient(str(reveal(settings.base_url)), str(auth["database"]), str(auth["login"]),
                                 str(auth["api_key"]), timeout=settings.timeout,
                                 verify=str(options["ca_file"]) if options.get("ca_file") else True)
        self.page_size = int(options.get("page_size") or PAGE_SIZE)
        if self.page_size < 1:
            raise ValueError("odoo option page_size must be at least 1")
        self.fields: dict[str, list[str]] = {str(k): list(v) for k, v in (options.get("fields") or {}).items()}
        self.limits = Limits(page_size=self.page_size, batch_size=BATCH_SIZE)
        secret = reveal((settings.webhook or {}).get("secret"))
        self._webhook_secret: str | None = str(secret) if secret else None
        self.log = log.bind(connector="odoo", system=settings.name)

    def __repr__(self) -> str:
        return f"Connector(odoo, system={self.settings.name!r})"

    def close(self) -> None:
        self.client.close()

    # --- reads ---------------------------------------------------------------------------

    def _read_kwargs(self, obj: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"context": dict(READ_ARCHIVED)}
        chosen = self.fields.get(obj)
        if chosen:
            kwargs["fields"] = list(dict.fromkeys([*chosen, "write_date"]))
        return kwargs

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        after = parse_cursor(since)
        while True:
            kwargs = {**self._read_kwargs(obj), "offset": 0, "limit": self.page_size, "order": ORDER}
            records: list[dict[str, Any]] = self.client.execute_kw(obj, "search_read", [keyset_domain(after)], kwargs)
            if not records:
                return
            self._attach_lines(obj, records)
            last = records[-1]
            after = (str(last["write_date"]), int(last["id"]))
            self.log.debug("odoo page pulled", model=obj, records=len(records))
            yield Page(records, make_cursor(*after))
            if len(records) < self.page_size:
                return

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        """One `search_read` on `id in ids` (a `read` would fail on a deleted id)."""
        wanted = list(dict.fromkeys(i for i in (_record_id(x) for x in ids) if i is not None))
        if not wanted:
            return []
        records: list[dict[str, Any]] = self.client.execute_kw(obj, "search_read", [[("id", "in", wanted)]],
                                                               self._read_kwargs(obj))
        self._attach_lines(obj, records)
        position = {rid: n for n, rid in enumerate(wanted)}
        return sorted(records, key=lambda r: position.get(r["id"], len(position)))

    def _attach_lines(self, obj: str, records: list[dict[str, Any]]) -> None:
        if obj not in LINES:
            return
        field, line_model = LINES[obj]
        ids = [i for r in records if isinstance(r.get(field), list) for i in r[field] if isinstance(i, int)]
        lines: dict[int, dict[str, Any]] = {}
        if ids:
            kwargs = {"fields": self.fields[line_model]} if self.fields.get(line_model) else {}
            lines = {line["id"]: line for line in self.client.execute_kw(line_model, "read", [ids], kwargs)}
        for record in records:
            if isinstance(record.get(field), list):
                record[field] = [lines[i] for i in record[field] if i in lines]

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(ops)
        indexed = list(enumerate(ops))
        for start in range(0, len(indexed), BATCH_SIZE):
            _Batch(self, obj, indexed[start:start + BATCH_SIZE], results).run()
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # a bug, not a vendor answer: say so rather than return fewer results
            raise AssertionError(f"odoo push left ops {missing} without a result")
        return [r for r in results if r is not None]

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        if not token_matches(self._webhook_secret, request.headers, request.query):
            self.log.warning("odoo webhook refused: missing or wrong token")
            return _reply(401, "error", "invalid token")
        if request.method.upper() != "POST":
            return _reply(405, "error", "Odoo notifications are POST requests")
        try:
            events = parse(request.body)
        except WebhookError as exc:
            self.log.warning("odoo webhook refused", reason=str(exc))
            return _reply(400, "error", str(exc))
        return _reply(200, "ok", None, events)


def _reply(status: int, state: str, message: str | None, events: list[Any] | None = None) -> WebhookReply:
    body: dict[str, Any] = {"status": state}
    if message:
        body["message"] = message
    return WebhookReply(status, json.dumps(body).encode("utf-8"), "application/json", events or [])


class _Batch:
    """One batch of at most 200 ops: values prepared, keys looked up, then creates and writes."""

    def __init__(self, connector: Connector, obj: str, ops: list[tuple[int, WriteOp]],
                 results: list[WriteResult | None]) -> None:
        self.connector = connector
        self.client = connector.client
        self.obj = obj
        self.ops = ops
        self.results = results
        self.log = connector.log.bind(model=obj)

    def reject(self, index: int, op: WriteOp, error: Rejected) -> None:
        self.results[index] = WriteResult(False, op.external_id, error=error)

    def run(self) -> None:
        prepared = {i: self._vals(op) for i, op in self.ops}
        self._resolve_products(prepared)
        found = self._find_keys(prepared)
        creates: list[tuple[int, Vals]] = []
        updates: list[tuple[int, int, Vals]] = []
        waiting: list[tuple[int, WriteOp, Vals]] = []  # upserts of a key created earlier in this batch
        creating: set[tuple[str, str]] = set()
        for i, op in self.ops:
            if self.results[i] is not None:
                continue
            vals = prepared[i]
            if op.kind == OpKind.CREATE:
                creates.append((i, self._for_create(vals)))
            elif op.kind == OpKind.UPDATE:
                rid = _record_id(op.external_id)
                if rid is None:
                    self.reject(i, op, Rejected(f"odoo: {op.external_id!r} is not an Odoo record id", "BAD_ID"))
                else:
                    updates.append((i, rid, self._for_write(vals)))
            elif op.kind == OpKind.UPSERT:
                key = (self._key_field(op) or "", op.key)
                if key in found:
                    updates.append((i, found[key], self._for_write(vals)))
                elif key in creating:
                    waiting.append((i, op, vals))
                else:
                    creating.add(key)
                    creates.append((i, self._for_create(vals)))
            else:
                self.reject(i, op, Rejected(f"odoo: unknown operation {op.kind!r}", "BAD_OPERATION"))
        self._create(creates)
        for i, op, vals in waiting:
            first = next(j for j, other in self.ops if other.kind == OpKind.UPSERT and other.key == op.key
                         and self._key_field(other) == self._key_field(op))
            done = self.results[first]
            if done is not None and done.ok and done.external_id:
                updates.append((i, int(done.external_id), self._for_write(vals)))
            else:
                self.results[i] = WriteResult(False, None, error=done.error if done else Rejected("odoo: not created"))
        self._write(updates)

    # preparing values

    def _key_field(self, op: WriteOp) -> str | None:
        return op.key_field or None

    def _vals(self, op: WriteOp) -> Vals:
        vals = coerce_ids(dict(op.payload))
        key_field = self._key_field(op)
        if key_field and op.kind in (OpKind.CREATE, OpKind.UPSERT) and op.key:
            vals.setdefault(key_field, op.key)
        return vals

    def _for_create(self, vals: Vals) -> Vals:
        if self.obj in LINES and LINES[self.obj][0] in vals:
            field = LINES[self.obj][0]
            return {**vals, field: line_commands(vals[field], replace=False)}
        return vals

    def _for_write(self, vals: Vals) -> Vals:
        if self.obj in LINES and LINES[self.obj][0] in vals:
            field = LINES[self.obj][0]
            return {**vals, field: line_commands(vals[field], replace=True)}
        return vals

    def _resolve_products(self, prepared: dict[int, Vals]) -> None:
        """Text `product_id`s of order lines to product ids, in one search for the batch."""
        if self.obj not in LINES:
            return
        field = LINES[self.obj][0]
        for i in prepared:
            prepared[i] = {**prepared[i], field: line_commands(prepared[i][field], replace=False)} \
                if field in prepared[i] else prepared[i]
        texts = {str(line["product_id"]) for vals in prepared.values() for line in _line_vals(vals, field)
                 if isinstance(line.get("product_id"), str)}
        if not texts:
            return
        products = self._products(texts)
        for i, op in self.ops:
            unknown = []
            for line in _line_vals(prepared[i], field):
                text = line.get("product_id")
                if isinstance(text, str):
                    if text in products:
                        line["product_id"] = products[text]
                    else:
                        unknown.append(text)
            if unknown:
                self.reject(i, op, Rejected(f"odoo: no product with internal reference or name {unknown[0]!r}",
                                            "PRODUCT_NOT_FOUND"))

    def _products(self, texts: set[str]) -> dict[str, int]:
        codes = {t: m["code"].strip() if (m := _DISPLAY_CODE.match(t)) else t.strip() for t in texts}
        names = {t: m["name"].strip() if (m := _DISPLAY_CODE.match(t)) else t.strip() for t in texts}
        domain = ["|", ("default_code", "in", sorted(set(codes.values()))), ("name", "in", sorted(set(names.values())))]
        rows = self.client.execute_kw("product.product", "search_read", [domain],
                                      {"fields": ["id", "default_code", "name"], "order": "id asc"})
        by_code = {r["default_code"]: r["id"] for r in reversed(rows) if r.get("default_code")}
        by_name = {r["name"]: r["id"] for r in reversed(rows)}  # several of one name: the oldest wins
        found = {}
        for text in texts:
            rid = by_code.get(codes[text]) or by_name.get(names[text])
            if rid is not None:
                found[text] = rid
        return found

    def _find_keys(self, prepared: dict[int, Vals]) -> dict[tuple[str, str], int]:
        """Existing records of the batch's upsert keys: one `search_read` per key field."""
        keys: dict[str, set[str]] = defaultdict(set)
        for i, op in self.ops:
            if op.kind != OpKind.UPSERT or self.results[i] is not None:
                continue
            key_field = self._key_field(op)
            if not key_field:
                self.reject(i, op, Rejected("odoo: an upsert needs the key field (the mapping's `key:`)", "NO_KEY"))
                continue
            keys[key_field].add(op.key)
        found: dict[tuple[str, str], int] = {}
        for key_field, values in keys.items():
            rows = self.client.execute_kw(self.obj, "search_read", [[(key_field, "in", sorted(values))]],
                                          {"fields": ["id", key_field], "order": "id asc", "context": dict(READ_ARCHIVED)})
            for row in rows:
                found.setdefault((key_field, str(row[key_field])), int(row["id"]))
        return found

    # calls

    def _create(self, creates: list[tuple[int, Vals]]) -> None:
        if not creates:
            return
        try:
            ids = self.client.execute_kw(self.obj, "create", [[vals for _, vals in creates]])
        except Rejected as error:
            if len(creates) == 1:
                self._reject_index(creates[0][0], error)
                return
            self.log.info("odoo refused a multi-create, creating one by one", records=len(creates),
                          reason=error.reason[:200])
            for index, vals in creates:
                self._create_one(index, vals)
            return
        if not isinstance(ids, list) or len(ids) != len(creates):
            raise Rejected(f"odoo: create answered {len(ids) if isinstance(ids, list) else ids!r} ids "
                           f"for {len(creates)} records", "BAD_ANSWER")
        for (index, _vals), rid in zip(creates, ids, strict=True):
            self.results[index] = WriteResult(True, str(rid), created=True)

    def _create_one(self, index: int, vals: Vals) -> None:
        try:
            [rid] = self.client.execute_kw(self.obj, "create", [[vals]])
        except Rejected as error:
            self._reject_index(index, error)
            return
        self.results[index] = WriteResult(True, str(rid), created=True)

    def _write(self, updates: list[tuple[int, int, Vals]]) -> None:
        """One `write` per distinct set of values (records with identical values share a call)."""
        groups: dict[str, list[tuple[int, int, Vals]]] = defaultdict(list)
        for update in updates:
            groups[json.dumps(update[2], sort_keys=True, default=str)].append(update)
        for group in groups.values():
            ids = list(dict.fromkeys(rid for _, rid, _ in group))
            try:
                self.client.execute_kw(self.obj, "write", [ids, group[0][2]])
            except Rejected as error:
                if len(ids) == 1:
                    for index, _rid, _vals in group:
                        self._reject_index(index, error)
                    continue
                for index, rid, vals in group:
                    self._write_one(index, rid, vals)
                continue
            for index, rid, _vals in group:
                self.results[index] = WriteResult(True, str(rid), created=False)

    def _write_one(self, index: int, rid: int, vals: Vals) -> None:
        try:
            self.client.execute_kw(self.obj, "write", [[rid], vals])
        except Rejected as error:
            self._reject_index(index, error)
            return
        self.results[index] = WriteResult(True, str(rid), created=False)

    def _reject_index(self, index: int, error: Rejected) -> None:
        op = next(op for i, op in self.ops if i == index)
        self.results[index] = WriteResult(False, op.external_id, error=error)
