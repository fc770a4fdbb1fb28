"""Odoo through the connector contract: keyset pulls on write_date, batched creates, keyed upserts.

Pull. `search_read` ordered by `write_date asc, id asc` with the keyset domain
`['|', ('write_date', '>', t), '&', ('write_date', '=', t), ('id', '>', last)]` and offset 0:
Odoo's write_date has one-second resolution, so many records share one, and an offset
would drift as records change during a sync. The cursor is `"<write_date>|<id>"` of a
page's last record. A pull resumed from a stored cursor whose second is recent reads that
whole second again (`resume_domain`): a record written later in the same second with a lower
id would otherwise never be pulled. A pull that continues an interrupted one (the engine
retrying a failed page) resumes exactly (`ResumePoints`). Archived records are read too (`active_test: False`): an archived
partner is a change the hub must see. Sales orders come with their lines: one `read` on
`sale.order.line` per page, attached as `order_line` (a list of line dicts, in place of the
id list), so a mapping can walk them with `each`.

Push. Creates go in one `create([vals, ...])` per batch of 200 (Odoo 12+ takes a list).
Odoo creates all or none of a list, so when it refuses one (a ValidationError), the batch
is created again record by record and only the bad ones are rejected, with Odoo's
message. Updates are one `write([id], vals)` per record, except that records getting
identical values share one call, and an update left with no values (a decision that only
moves the state, or a pending one that moves nothing) makes no write call at all. Upserts
search the key field once per push (`search_read` with `in`) and then create or write.
A push is many calls; when one fails (a rate limit, an outage) after others wrote records,
the push returns what was written and gives the failing error to the ops not done
(`finish_partial`), so that a retry sends only those: retrying the whole push would rewrite
every record already written, one call each, and under a steady rate of faults never finish.

Relational values. The hub's `ref` resolution gives ids as strings; a many2one wants an int,
so a digit string in a `*_id` field is sent as a number. Order lines may come as Odoo
commands (`[0, 0, {...}]`) or as plain dicts, which become `(0, 0, vals)` commands. On an
update, a list of only `(0, 0, vals)` commands replaces the order's lines (`(5,)` first),
because the hub sends the whole order, not a diff.

Many2one fields given as text (`LOOKUPS`). A mapping cannot know Odoo's record ids of
products, employees or time off types, so it writes their text and the connector finds the
record: `LOOKUPS[(model, field)]` names the related model and the fields to match, in order
(a product by Internal Reference, also in Odoo's display form `"[CODE] Name"`, else by exact
name; an employee by work e-mail, else by exact name; a time off type by exact name). One
`search_read` per batch per (model, field), also for fields of order lines. A text that
matches nothing, or (for lookups marked `unique`) several records, rejects that record only,
with the text in the reason; the rest of the batch goes on.

States moved by actions (`STATE_ACTIONS`). Odoo's `state` is a plain selection field that a
`write` would happily set, skipping everything the real transition does (confirming an
order reserves stock, creates deliveries, locks lines; validating a time off books it in
the employee's calendar and allocation). So for the models in `STATE_ACTIONS`, `state` is
never written: each value maps to the method that moves a record there
(`sale.order`: sale -> action_confirm, cancel -> action_cancel; `hr.leave`: validate ->
action_validate, refuse -> action_refuse, validate1 -> action_approve), or to None for the
state a new record starts in (hr.leave confirm), which needs no call. The other fields are
created or written first, then every action is called once over all the batch's ids that
need it (`execute_kw(model, method, [ids])`, with the context the table gives: action_cancel
gets `disable_cancel_warning`, or Odoo 16+ answers a "send a cancellation e-mail" wizard
instead of cancelling). An action Odoo refuses for the group is retried per record, and a
record already in the wanted state counts as done (a retried decision is not an error). A
value missing from the table (sale.order "done") rejects the record: Odoo sets it itself.

Upsert by external id (`key: __external_id__`). Some models have no free text field where
the hub's key could live (hr.leave). For those a mapping sets its `key` to the marker
`__external_id__`: the connector then never writes that field and keeps the key in Odoo's
own external identifiers instead (`ir.model.data`, as data imports do): module `synchub`,
name `<model with dots as underscores>_<key>` (`hr_leave_9f0c...`; a key with characters
other than ASCII letters, digits and `-` is written as `x_` + its UTF-8 in hex, so the name
is always a valid, reversible identifier), model, res_id, `noupdate` true. An upsert
searches `ir.model.data` once per batch for the keys, writes the records found and creates
the rest, then registers the new records' external ids in one more `create`. The window
between the record's create and its external id's create is not atomic (Odoo's `load`
would be, at the price of string-typed values); a crash exactly there makes the next retry
create a second record. Records pulled or read from the models in `EXTERNAL_ID_MODELS`
carry `__external_id__` (the key, or false), read with one `ir.model.data` search per page,
so that the mapping's `key` reads back and the hub recognises the records it wrote.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
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
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
    finish_partial,
)
from connectors.odoo.client import OdooClient
from connectors.odoo.webhook import WebhookError, parse, token_matches
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

PAGE_SIZE = 500
BATCH_SIZE = 200
ORDER = "write_date asc, id asc"
RESUME_OVERLAP = timedelta(minutes=10)  # how long a cursor's second is read again (see resume_domain)
READ_ARCHIVED = {"active_test": False}
TIMESTAMP = "%Y-%m-%d %H:%M:%S"
# one2many fields whose lines a pull attaches and a push turns into commands
LINES = {"sale.order": ("order_line", "sale.order.line")}
_VENDOR_FIELDS = ("id", "display_name", "create_date", "write_date", "__last_update")
_DISPLAY_CODE = re.compile(r"^\[(?P<code>[^\]]+)\]\s*(?P<name>.*)$", re.DOTALL)

Vals = dict[str, Any]


# --- declarative tables (see the module docstring) ------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """How a many2one written as text finds its record."""

    model: str  # the related model
    fields: tuple[str, ...]  # matched in this order: the first field with a match decides
    described: str  # the fields as people call them, for the reason of a rejection
    label: str  # what one record is, for the reason of a rejection
    code: str  # the rejection's vendor_code
    bracket_code: bool = False  # "[CODE] Name" (a product's display name): CODE for fields[0], Name for the others
    unique: bool = False  # several matches reject the record (True) or the oldest record wins (False)


LOOKUPS: dict[tuple[str, str], Lookup] = {
    ("sale.order.line", "product_id"): Lookup("product.product", ("default_code", "name"),
                                              "internal reference or name", "product", "PRODUCT_NOT_FOUND",
                                              bracket_code=True),
    ("hr.leave", "employee_id"): Lookup("hr.employee", ("work_email", "name"), "work e-mail or name", "employee",
                                        "EMPLOYEE_NOT_FOUND", unique=True),
    ("hr.leave", "holiday_status_id"): Lookup("hr.leave.type", ("name",), "name", "time off type",
                                              "LEAVE_TYPE_NOT_FOUND", unique=True),
}


@dataclass(frozen=True)
class Action:
    """The public method that moves records into a state, and the context it needs."""

    method: str
    context: tuple[tuple[str, Any], ...] = ()


STATE_FIELD = "state"
STATE_ACTIONS: dict[str, dict[str, Action | None]] = {
    "sale.order": {"sale": Action("action_confirm"),
                   "cancel": Action("action_cancel", (("disable_cancel_warning", True),))},
    "hr.leave": {"confirm": None,  # where a new time off request starts: nothing to call
                 "validate1": Action("action_approve"),
                 "validate": Action("action_validate"),
                 "refuse": Action("action_refuse")},
}

EXTERNAL_ID = "__external_id__"  # the `key:` marker: keep the hub's key in ir.model.data
XMLID_MODULE = "synchub"
EXTERNAL_ID_MODELS = frozenset({"hr.leave"})  # pulled records carry their key as __external_id__
_PLAIN_KEY = re.compile(r"[A-Za-z0-9-]+")


def xmlid_name(model: str, key: str) -> str:
    """The ir.model.data name of the record of `model` the hub keys `key` (module `synchub`)."""
    prefix = model.replace(".", "_")
    if _PLAIN_KEY.fullmatch(key):
        return f"{prefix}_{key}"
    return f"{prefix}_x_{key.encode('utf-8').hex()}"


def xmlid_key(model: str, name: str) -> str | None:
    """The hub key an ir.model.data name made by `xmlid_name` holds, or None for other names."""
    prefix = model.replace(".", "_") + "_"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    if rest.startswith("x_"):
        try:
            return bytes.fromhex(rest[2:]).decode("utf-8")
        except ValueError:
            return None
    return rest if _PLAIN_KEY.fullmatch(rest) else None


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


def resume_domain(after: tuple[str, int] | None, now: datetime | None = None) -> list[Any]:
    """Where a pull from a stored cursor starts.

    write_date has one-second resolution: a record written in the cursor's second after the
    pull that made the cursor, with a lower id than the cursor's, is behind a strict keyset
    for good, and its change is lost. So while the cursor's second is recent (`RESUME_OVERLAP`
    by this host's clock, which also covers a transaction stamped when it began and committed
    later), the pull reads that whole second again, and the engine skips what it has already
    seen; an older second is closed, and the keyset is exact.
    """
    if after is None:
        return []
    stamp, _ = after
    moment = datetime.strptime(stamp, TIMESTAMP).replace(tzinfo=UTC)
    if moment >= (now or datetime.now(UTC)) - RESUME_OVERLAP:
        return [("write_date", ">=", stamp)]
    return keyset_domain(after)


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
        self._resumes = ResumePoints()
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
        domain = keyset_domain(after) if self._resumes.resuming(obj, since) else resume_domain(after)
        try:
            while True:
                kwargs = {**self._read_kwargs(obj), "offset": 0, "limit": self.page_size, "order": ORDER}
                records: list[dict[str, Any]] = self.client.execute_kw(obj, "search_read", [domain], kwargs)
                if not records:
                    break
                self._attach_lines(obj, records)
                self._attach_external_ids(obj, records)
                last = records[-1]
                after = (str(last["write_date"]), int(last["id"]))
                domain = keyset_domain(after)  # within one pull, pages follow each other exactly
                self.log.debug("odoo page pulled", model=obj, records=len(records))
                cursor = make_cursor(*after)
                self._resumes.handed(obj, cursor)
                yield Page(records, cursor)
                if len(records) < self.page_size:
                    break
        except GeneratorExit:  # the caller stopped reading: not an interruption by the vendor
            self._resumes.finished(obj)
            raise
        self._resumes.finished(obj)

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        """One `search_read` on `id in ids` (a `read` would fail on a deleted id)."""
        wanted = list(dict.fromkeys(i for i in (_record_id(x) for x in ids) if i is not None))
        if not wanted:
            return []
        records: list[dict[str, Any]] = self.client.execute_kw(obj, "search_read", [[("id", "in", wanted)]],
                                                               self._read_kwargs(obj))
        self._attach_lines(obj, records)
        self._attach_external_ids(obj, records)
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

    def _attach_external_ids(self, obj: str, records: list[dict[str, Any]]) -> None:
        """`__external_id__` (the hub key, or false) on records of models keyed by external id."""
        if obj not in EXTERNAL_ID_MODELS or not records:
            return
        domain = [("module", "=", XMLID_MODULE), ("model", "=", obj), ("res_id", "in", [r["id"] for r in records])]
        rows = self.client.execute_kw("ir.model.data", "search_read", [domain],
                                      {"fields": ["name", "res_id"], "order": "id asc"})
        keys: dict[int, str] = {}
        for row in rows:
            key = xmlid_key(obj, str(row["name"]))
            if key is not None:
                keys.setdefault(int(row["res_id"]), key)
        for record in records:
            record[EXTERNAL_ID] = keys.get(record["id"], False)

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        """The ops in batches of 200. A push is many calls (a search, creates, a write per
        record, actions): when one fails after others wrote records, the results so far are
        kept and only the ops not done carry the error (`finish_partial`), so that the engine
        sends just those again instead of the whole push."""
        results: list[WriteResult | None] = [None] * len(ops)
        indexed = list(enumerate(ops))
        try:
            # the upsert keys of the whole push in one search per key field (not one per batch:
            # a first sync is all upserts that find nothing, and each search costs Odoo a scan)
            found = _Batch(self, obj, indexed, results).find_keys()
            for start in range(0, len(indexed), BATCH_SIZE):
                _Batch(self, obj, indexed[start:start + BATCH_SIZE], results, found).run()
        except ConnectorError as exc:
            self.log.warning("odoo push interrupted", model=obj, error=str(exc)[:300],
                             left=sum(r is None for r in results))
            return finish_partial(results, ops, exc)
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
    """One batch of at most 200 ops: values prepared, texts and keys looked up, then creates,
    writes and state actions."""

    def __init__(self, connector: Connector, obj: str, ops: list[tuple[int, WriteOp]],
                 results: list[WriteResult | None], found: dict[tuple[str, str], int] | None = None) -> None:
        self.connector = connector
        self.found = found if found is not None else {}  # (key field, key) -> record id, shared by a push's batches
        self.client = connector.client
        self.obj = obj
        self.ops = ops
        self.op_at = dict(ops)
        self.results = results
        self.log = connector.log.bind(model=obj)

    def reject(self, index: int, op: WriteOp, error: Rejected) -> None:
        self.results[index] = WriteResult(False, op.external_id, error=error)

    def run(self) -> None:
        prepared = {i: self._vals(op) for i, op in self.ops}
        self._resolve_lookups(prepared)
        actions = self._take_actions(prepared)
        found = self.found
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
        self._register_external_ids([i for i, _ in creates])
        self._remember_created_keys([i for i, _ in creates])
        for i, op, vals in waiting:
            first = next(j for j, other in self.ops if other.kind == OpKind.UPSERT and other.key == op.key
                         and self._key_field(other) == self._key_field(op))
            done = self.results[first]
            if done is not None and done.ok and done.external_id:
                updates.append((i, int(done.external_id), self._for_write(vals)))
            else:
                self.results[i] = WriteResult(False, None, error=done.error if done else Rejected("odoo: not created"))
        self._write(updates)
        try:
            self._act(actions)
        except ConnectorError:
            for i in actions:  # written, but not yet in their state: not done (a retry acts again)
                self.results[i] = None
            raise

    # preparing values

    def _key_field(self, op: WriteOp) -> str | None:
        return op.key_field or None

    def _vals(self, op: WriteOp) -> Vals:
        vals = coerce_ids(dict(op.payload))
        vals.pop(EXTERNAL_ID, None)  # the marker is kept in ir.model.data, never in a field
        key_field = self._key_field(op)
        if key_field and key_field != EXTERNAL_ID and op.kind in (OpKind.CREATE, OpKind.UPSERT) and op.key:
            vals.setdefault(key_field, op.key)
        if self.obj in LINES and LINES[self.obj][0] in vals:
            field = LINES[self.obj][0]
            vals[field] = line_commands(vals[field], replace=False)
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

    # many2one texts

    def _lookup_targets(self, prepared: dict[int, Vals]) -> list[tuple[int, str, Vals]]:
        """(op index, model, vals) of every dict of values in the batch: records and their lines."""
        targets: list[tuple[int, str, Vals]] = []
        for i, vals in prepared.items():
            if self.results[i] is not None:
                continue
            targets.append((i, self.obj, vals))
            if self.obj in LINES:
                field, line_model = LINES[self.obj]
                targets.extend((i, line_model, line) for line in _line_vals(vals, field))
        return targets

    def _resolve_lookups(self, prepared: dict[int, Vals]) -> None:
        """Many2one texts to record ids: one search per (model, field) for the whole batch."""
        targets = self._lookup_targets(prepared)
        texts: dict[tuple[str, str], set[str]] = defaultdict(set)
        for _i, model, vals in targets:
            for name, value in vals.items():
                if isinstance(value, str) and (model, name) in LOOKUPS:
                    texts[(model, name)].add(value)
        answers = {where: self._lookup(LOOKUPS[where], wanted) for where, wanted in texts.items()}
        for i, model, vals in targets:
            if self.results[i] is not None:
                continue
            for name, value in list(vals.items()):
                if not isinstance(value, str) or (model, name) not in LOOKUPS:
                    continue
                answer = answers[(model, name)][value]
                if isinstance(answer, int):
                    vals[name] = answer
                else:
                    self.reject(i, self.op_at[i], Rejected(answer, LOOKUPS[(model, name)].code))
                    break

    def _lookup(self, lookup: Lookup, texts: set[str]) -> dict[str, int | str]:
        """Each text's record id, or the reason it has none."""
        candidates = {text: _candidates(lookup, text) for text in texts}
        leaves = []
        for n, name in enumerate(lookup.fields):
            values = sorted({c[n] for c in candidates.values() if c[n]})
            if values:
                leaves.append((name, "in", values))
        rows = self.client.execute_kw(lookup.model, "search_read", [["|"] * (len(leaves) - 1) + leaves],
                                      {"fields": ["id", *lookup.fields], "order": "id asc"}) if leaves else []
        index: list[dict[str, list[int]]] = [defaultdict(list) for _ in lookup.fields]
        for row in rows:  # oldest first
            for n, name in enumerate(lookup.fields):
                if isinstance(row.get(name), str):
                    index[n][row[name]].append(int(row["id"]))
        return {text: _pick(lookup, text, candidates[text], index) for text in texts}

    # states

    def _take_actions(self, prepared: dict[int, Vals]) -> dict[int, tuple[str, Action]]:
        """`state` values taken out of the values, as (state, action) per op (see STATE_ACTIONS)."""
        table = STATE_ACTIONS.get(self.obj)
        actions: dict[int, tuple[str, Action]] = {}
        if table is None:
            return actions
        for i, vals in prepared.items():
            if self.results[i] is not None or STATE_FIELD not in vals:
                continue
            state = vals.pop(STATE_FIELD)
            if state not in table:
                allowed = ", ".join(sorted(table))
                self.reject(i, self.op_at[i], Rejected(
                    f"odoo: {self.obj} {STATE_FIELD} {state!r} is set by Odoo itself and cannot be written "
                    f"(the hub can move a record to: {allowed})", "STATE_NOT_WRITABLE"))
                continue
            action = table[state]
            if action is not None:
                actions[i] = (str(state), action)
        return actions

    def _act(self, actions: dict[int, tuple[str, Action]]) -> None:
        """One call per distinct action over the ids of the ops that need it and were written."""
        groups: dict[tuple[str, Action], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, (state, action) in actions.items():
            done = self.results[i]
            if done is not None and done.ok and done.external_id:
                groups[(state, action)][int(done.external_id)].append(i)
        for (state, action), by_id in groups.items():
            ids = list(by_id)
            failure = self._call_action(action, ids)
            if failure is None:
                continue
            if len(ids) > 1:
                self.log.info("odoo refused an action for a group, acting one by one", method=action.method,
                              records=len(ids), reason=failure.reason[:200])
            for rid, indexes in by_id.items():
                error = failure if len(ids) == 1 else self._call_action(action, [rid])
                if error is not None and not self._already(rid, state):
                    for i in indexes:
                        self.results[i] = WriteResult(False, str(rid), error=Rejected(
                            f"odoo: {self.obj} {rid} was written but {action.method} failed: {error.reason}",
                            error.vendor_code))

    def _call_action(self, action: Action, ids: list[int]) -> Rejected | None:
        kwargs = {"context": dict(action.context)} if action.context else {}
        try:
            answer = self.client.execute_kw(self.obj, action.method, [ids], kwargs)
        except Rejected as error:
            return error
        if isinstance(answer, dict):  # a window action: Odoo wants a person to answer a wizard
            return Rejected(f"odoo: {self.obj}.{action.method} opened the wizard {answer.get('res_model')!r} "
                            "instead of acting", "WIZARD")
        return None

    def _already(self, rid: int, state: str) -> bool:
        """Whether a record is in `state` already (a decision applied twice is no error)."""
        rows = self.client.execute_kw(self.obj, "search_read", [[("id", "=", rid)]],
                                      {"fields": [STATE_FIELD], "context": dict(READ_ARCHIVED)})  # a cancelled leave is archived
        return bool(rows) and rows[0].get(STATE_FIELD) == state

    # keys

    def _remember_created_keys(self, created: list[int]) -> None:
        """Keys created by this batch, for the push's later batches (which upsert, not create, them)."""
        for i in created:
            op, done = self.op_at[i], self.results[i]
            if op.kind == OpKind.UPSERT and done is not None and done.ok and done.external_id:
                self.found.setdefault((self._key_field(op) or "", op.key), int(done.external_id))

    def find_keys(self) -> dict[tuple[str, str], int]:
        """Existing records of these ops' upsert keys: one `search_read` per key field."""
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
            if key_field == EXTERNAL_ID:
                found.update(self._find_external_ids(values))
                continue
            rows = self.client.execute_kw(self.obj, "search_read", [[(key_field, "in", sorted(values))]],
                                          {"fields": ["id", key_field], "order": "id asc", "context": dict(READ_ARCHIVED)})
            for row in rows:
                found.setdefault((key_field, str(row[key_field])), int(row["id"]))
        return found

    def _find_external_ids(self, keys: set[str]) -> dict[tuple[str, str], int]:
        names = {xmlid_name(self.obj, key): key for key in keys}
        domain = [("module", "=", XMLID_MODULE), ("model", "=", self.obj), ("name", "in", sorted(names))]
        rows = self.client.execute_kw("ir.model.data", "search_read", [domain],
                                      {"fields": ["name", "res_id"], "order": "id asc"})
        return {(EXTERNAL_ID, names[row["name"]]): int(row["res_id"]) for row in rows if row["name"] in names}

    def _register_external_ids(self, created: list[int]) -> None:
        """External ids of the records just created for `__external_id__` keys, in one create."""
        rows = []
        for i in created:
            op, done = self.op_at[i], self.results[i]
            if self._key_field(op) == EXTERNAL_ID and op.key and done is not None and done.ok and done.external_id:
                rows.append({"module": XMLID_MODULE, "name": xmlid_name(self.obj, op.key), "model": self.obj,
                             "res_id": int(done.external_id), "noupdate": True})
        if not rows:
            return
        try:
            self.client.execute_kw("ir.model.data", "create", [rows])
        except Rejected as error:
            # The records exist and the hub links them by their ids; only a retry after a crash
            # would miss them. Failing the writes would make that retry create them again.
            self.log.warning("odoo external ids not registered", records=len(rows), reason=error.reason[:300])

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
            if not group[0][2]:  # nothing but a state action or the key: no write call
                for index, rid, _vals in group:
                    self.results[index] = WriteResult(True, str(rid), created=False)
                continue
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


def _candidates(lookup: Lookup, text: str) -> tuple[str, ...]:
    """The value to match in each of the lookup's fields for one text."""
    found = _DISPLAY_CODE.match(text) if lookup.bracket_code else None
    if found:
        return (found["code"].strip(), *(found["name"].strip() for _ in lookup.fields[1:]))
    return tuple(text.strip() for _ in lookup.fields)


def _pick(lookup: Lookup, text: str, candidates: tuple[str, ...], index: list[dict[str, list[int]]]) -> int | str:
    """The record a text means, or the reason there is none."""
    for n, name in enumerate(lookup.fields):
        ids = index[n].get(candidates[n]) if candidates[n] else None
        if not ids:
            continue
        if lookup.unique and len(ids) > 1:
            return (f"odoo: {len(ids)} {lookup.model} records have the {name} {candidates[n]!r} "
                    f"(ids {', '.join(map(str, ids[:5]))}); cannot tell which {lookup.label} is meant")
        return ids[0]
    return f"odoo: no {lookup.label} with {lookup.described} {text!r}"
