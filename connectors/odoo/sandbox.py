"""A fake Odoo 17 that speaks the external API: JSON-RPC at `/jsonrpc`, XML-RPC at `/xmlrpc/2/*`.

Odoo's documented client is Python's own `xmlrpc.client.ServerProxy`; the connector speaks
JSON-RPC. Both reach the same small ORM here: models with typed fields, Odoo's domains in
Polish notation, `order` strings, `false` for empty values, many2one as `[id, name]`,
relational commands on one2many fields, and Odoo's error envelope (a JSON-RPC `error` with
`data.name` = the exception class; an XML-RPC `Fault` with Odoo's integer codes).

Every call runs in a transaction with an undo log, so a `create([...])` whose third record
is invalid creates none of them, as PostgreSQL would. `write_date` has one-second
resolution, as in Odoo, so records changed within one second share a timestamp (which is
what makes the connector's keyset cursor necessary).

Change notifications imitate an automation rule with the action "Send Webhook
Notification" (Odoo 17+): a JSON POST of `_action`, `_id`, `_model` and the chosen fields
read with `load=None` (many2one as a bare id). Odoo sends no signature and no custom
header, so the admin puts a shared token in the webhook URL (`?token=...`); the sandbox
does the same (or sends an `X-Odoo-Webhook-Token` header with `extra={"webhook_token_in":
"header"}`, for a reverse proxy that adds one).

`POST /_sandbox/expire-tokens`: Odoo has no tokens, so this re-creates the API user under
a new uid (a restored or rebuilt database): calls with the old uid get `AccessDenied` until
the client authenticates again.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from starlette.responses import Response

from connectors.sandbox import SandboxKit, SandboxOptions, seed
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.webhooks import OutboundCall

DATABASE = "synchub"
LOGIN = "admin"
API_KEY = "odoo-sandbox-4c1f0b7e9a2d"  # sandbox-only demo credential
WEBHOOK_TOKEN = "odoo-sandbox-webhook-7d3e"  # sandbox-only demo credential
TOKEN_HEADER = "X-Odoo-Webhook-Token"
WEBHOOK_DELAYS = (5.0, 30.0, 120.0)
DATETIME = "%Y-%m-%d %H:%M:%S"
DATE = "%Y-%m-%d"
SERVER_VERSION = {"server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
                  "server_serie": "17.0", "protocol_version": 1}

# --- Odoo's exceptions, as the error envelope names them ----------------------------------------


class OdooError(Exception):
    """An exception an Odoo server would raise; `name` is its dotted class name on the wire."""

    name = "odoo.exceptions.UserError"
    xmlrpc_code = 2  # RPC_FAULT_CODE_WARNING

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(OdooError):
    pass


class ValidationError(OdooError):
    name = "odoo.exceptions.ValidationError"


class MissingError(OdooError):
    name = "odoo.exceptions.MissingError"


class AccessDenied(OdooError):
    name = "odoo.exceptions.AccessDenied"
    xmlrpc_code = 3


class AccessError(OdooError):
    name = "odoo.exceptions.AccessError"
    xmlrpc_code = 4


class InvalidValue(OdooError):
    """Python's ValueError, which Odoo raises for unknown fields and malformed values."""

    name = "builtins.ValueError"
    xmlrpc_code = 1


class BadCall(OdooError):
    name = "builtins.TypeError"
    xmlrpc_code = 1


def _cannot_complete(model: Model, fld: Field) -> ValidationError:
    """What Odoo 17 says when PostgreSQL refuses a NOT NULL column (service/model.py)."""
    return ValidationError(
        "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
        "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
        f"Model: {model.description} ({model.name})\nField: {fld.string} ({fld.name})")


# --- models --------------------------------------------------------------------------------------

Record = dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One field of a model: its Odoo type and what a write may put in it."""

    name: str
    type: str  # char text html boolean integer float date datetime selection many2one one2many many2many
    string: str
    relation: str | None = None
    inverse: str | None = None  # one2many: the many2one on the comodel
    required: bool = False
    readonly: bool = False  # computed or automatic: writes are ignored, as Odoo ignores them
    selection: tuple[tuple[str, str], ...] = ()
    default: Any = None  # a value, or a callable (db, vals) -> value

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"type": self.type, "string": self.string, "required": self.required,
                                "readonly": self.readonly, "store": True, "sortable": True}
        if self.relation:
            info["relation"] = self.relation
        if self.inverse:
            info["relation_field"] = self.inverse
        if self.selection:
            info["selection"] = [list(pair) for pair in self.selection]
        return info


@dataclass
class Model:
    name: str
    description: str
    order: str
    fields: dict[str, Field]
    display: Callable[[Database, Record], str]

    def get(self, name: str) -> Field:
        found = self.fields.get(name)
        if found is None:
            raise InvalidValue(f"Invalid field {name!r} on model {self.name!r}")
        return found


_AUTOMATIC = ("id", "display_name", "create_date", "write_date")


def _fields(*declared: Field) -> dict[str, Field]:
    automatic = (Field("id", "integer", "ID", readonly=True),
                 Field("display_name", "char", "Display Name", readonly=True),
                 Field("create_date", "datetime", "Created on", readonly=True),
                 Field("write_date", "datetime", "Last Updated on", readonly=True))
    return {f.name: f for f in (*declared, *automatic)}


def _char(name: str, string: str, **kw: Any) -> Field:
    return Field(name, "char", string, **kw)


def _m2o(name: str, string: str, relation: str, **kw: Any) -> Field:
    return Field(name, "many2one", string, relation=relation, **kw)


def _float(name: str, string: str, **kw: Any) -> Field:
    return Field(name, "float", string, default=kw.pop("default", 0.0), **kw)


def _by_name(db: Database, record: Record) -> str:
    return str(record.get("name") or "")


def _product_display(db: Database, record: Record) -> str:
    code = record.get("default_code")
    return f"[{code}] {record.get('name')}" if code else str(record.get("name") or "")


def _state_display(db: Database, record: Record) -> str:
    country = db.tables["res.country"].get(record.get("country_id") or 0)
    return f"{record.get('name')} ({country['code']})" if country else str(record.get("name"))


def _partner_display(db: Database, record: Record) -> str:
    parent = db.tables["res.partner"].get(record.get("parent_id") or 0)
    name = record.get("name") or ""
    if parent and record.get("type") != "contact" and not name:
        kind = dict(_PARTNER_TYPES).get(record.get("type") or "", "")
        return f"{parent.get('name')}, {kind} Address"
    return f"{parent.get('name')}, {name}" if parent else str(name)


def _line_display(db: Database, record: Record) -> str:
    order = db.tables["sale.order"].get(record.get("order_id") or 0)
    first = str(record.get("name") or "").split("\n", 1)[0]
    return f"{order['name']} - {first}" if order else first


def _xmlid_display(db: Database, record: Record) -> str:
    return f"{record.get('module')}.{record.get('name')}"


def _now_default(db: Database, vals: Record) -> str:
    return db.stamp


_PARTNER_TYPES = (("contact", "Contact"), ("invoice", "Invoice"), ("delivery", "Delivery"), ("other", "Other"))
_ORDER_STATES = (("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order"),
                 ("done", "Locked"), ("cancel", "Cancelled"))
_LEAVE_STATES = (("confirm", "To Approve"), ("refuse", "Refused"), ("validate1", "Second Approval"),
                 ("validate", "Approved"))


def _models() -> dict[str, Model]:
    models = [
        Model("res.country", "Country", "name, id", _fields(
            _char("name", "Country Name", required=True), _char("code", "Country Code")), _by_name),
        Model("res.country.state", "Country state", "country_id, name, id", _fields(
            _char("name", "State Name", required=True), _char("code", "State Code", required=True),
            _m2o("country_id", "Country", "res.country", required=True)), _state_display),
        Model("res.currency", "Currency", "name, id", _fields(
            _char("name", "Currency", required=True), _char("symbol", "Symbol"),
            Field("active", "boolean", "Active", default=True)), _by_name),
        Model("account.payment.term", "Payment Terms", "name, id", _fields(
            _char("name", "Payment Terms", required=True), Field("active", "boolean", "Active", default=True)), _by_name),
        Model("product.product", "Product Variant", "default_code, name, id", _fields(
            _char("name", "Product Name", required=True), _char("default_code", "Internal Reference"),
            _float("list_price", "Sales Price", default=1.0), Field("active", "boolean", "Active", default=True),
            Field("type", "selection", "Product Type", selection=(("consu", "Consumable"), ("service", "Service"),
                                                                  ("product", "Storable Product")), default="consu")),
            _product_display),
        Model("res.partner", "Contact", "name, id", _fields(
            _char("name", "Name"), Field("is_company", "boolean", "Is a Company", default=False),
            Field("company_type", "selection", "Company Type", selection=(("person", "Individual"), ("company", "Company")),
                  default="person"),
            Field("type", "selection", "Address Type", selection=_PARTNER_TYPES, default="contact"),
            _m2o("parent_id", "Related Company", "res.partner"),
            _char("ref", "Reference"), _char("vat", "Tax ID"), _char("email", "Email"), _char("phone", "Phone"),
            _char("mobile", "Mobile"), _char("website", "Website Link"), _char("street", "Street"),
            _char("street2", "Street2"), _char("city", "City"), _char("zip", "Zip"),
            _m2o("state_id", "State", "res.country.state"), _m2o("country_id", "Country", "res.country"),
            Field("comment", "html", "Notes"), Field("customer_rank", "integer", "Customer Rank", default=0),
            Field("supplier_rank", "integer", "Supplier Rank", default=0), _float("credit_limit", "Credit Limit"),
            _m2o("property_payment_term_id", "Customer Payment Terms", "account.payment.term"),
            _char("lang", "Language", default="en_US"), Field("active", "boolean", "Active", default=True)),
            _partner_display),
        Model("sale.order", "Sales Order", "date_order desc, id desc", _fields(
            _char("name", "Order Reference", required=True, default="New"),
            _m2o("partner_id", "Customer", "res.partner", required=True),
            Field("date_order", "datetime", "Order Date", required=True, default=_now_default),
            Field("state", "selection", "Status", selection=_ORDER_STATES, default="draft"),
            _char("client_order_ref", "Customer Reference"), _char("origin", "Source Document"),
            Field("note", "html", "Terms and conditions"), Field("validity_date", "date", "Expiration"),
            Field("commitment_date", "datetime", "Delivery Date"),
            _m2o("currency_id", "Currency", "res.currency", default=lambda db, vals: db.default_currency),
            Field("order_line", "one2many", "Order Lines", relation="sale.order.line", inverse="order_id"),
            _float("amount_untaxed", "Untaxed Amount", readonly=True), _float("amount_tax", "Taxes", readonly=True),
            _float("amount_total", "Total", readonly=True)), _by_name),
        Model("sale.order.line", "Sales Order Line", "order_id, sequence, id", _fields(
            _m2o("order_id", "Order Reference", "sale.order", required=True),
            Field("sequence", "integer", "Sequence", default=10), _m2o("product_id", "Product", "product.product"),
            Field("name", "text", "Description", default=lambda db, vals: db.product_name(vals.get("product_id"))),
            _float("product_uom_qty", "Quantity", default=1.0),
            _float("price_unit", "Unit Price", default=None), _float("discount", "Discount (%)"),
            Field("tax_id", "many2many", "Taxes", relation="account.tax"),
            Field("display_type", "selection", "Display Type", selection=(("line_section", "Section"),
                                                                            ("line_note", "Note"))),
            _float("price_subtotal", "Subtotal", readonly=True), _float("price_total", "Total", readonly=True),
            _m2o("currency_id", "Currency", "res.currency", readonly=True)), _line_display),
        Model("hr.employee", "Employee", "name, id", _fields(
            _char("name", "Employee Name", required=True), _char("work_email", "Work Email")), _by_name),
        Model("hr.leave.type", "Time Off Type", "name, id", _fields(_char("name", "Time Off Type", required=True)),
              _by_name),
        Model("hr.leave", "Time Off", "request_date_from desc, id desc", _fields(
            _char("name", "Description"), _m2o("employee_id", "Employee", "hr.employee", required=True),
            _m2o("holiday_status_id", "Time Off Type", "hr.leave.type", required=True),
            Field("request_date_from", "date", "Request Start Date", required=True),
            Field("request_date_to", "date", "Request End Date", required=True),
            _float("number_of_days", "Duration (Days)"),
            Field("state", "selection", "Status", selection=_LEAVE_STATES, default="confirm")), _by_name),
        # External identifiers ("module.name" -> record). res_id is a many2one_reference in Odoo: an
        # integer whose model is in `model`. The sandbox keeps (module, name) unique, as Odoo's index does.
        Model("ir.model.data", "Model Data", "module, id", _fields(
            _char("name", "External Identifier", required=True), _char("module", "Module", required=True, default=""),
            _char("model", "Model Name", required=True), Field("res_id", "integer", "Record ID", default=0),
            Field("noupdate", "boolean", "Non Updatable", default=False),
            _char("complete_name", "Complete ID", readonly=True)), _xmlid_display),
    ]
    return {m.name: m for m in models}


MODELS = _models()
# one2many fields kept in step with the many2one that is their inverse: (comodel, inverse) -> (model, field)
_INVERSES = {(f.relation, f.inverse): (m.name, f.name) for m in MODELS.values() for f in m.fields.values()
             if f.type == "one2many" and f.relation and f.inverse}
# what the sandbox's automation rule sends, per model ("Fields" of the webhook action)
WEBHOOK_FIELDS = {"res.partner": ("name", "ref", "write_date"),
                  "sale.order": ("name", "state", "partner_id", "origin", "write_date"),
                  "hr.leave": ("state", "employee_id", "write_date")}
_ACTION = "Synchub: notify changes(#14)"


# --- domains -------------------------------------------------------------------------------------

Predicate = Callable[[Record], bool]
_OPERATORS = {"=", "!=", "<>", ">", ">=", "<", "<=", "in", "not in", "like", "not like", "ilike", "not ilike",
              "=like", "=ilike"}


def compile_domain(db: Database, model: Model, domain: Any) -> Predicate:
    """A predicate for an Odoo domain: Polish notation, implicit '&' between top-level terms."""
    if not isinstance(domain, (list, tuple)):
        raise InvalidValue(f"Invalid domain: {domain!r}")
    terms: Iterator[Any] = iter(domain)
    parts: list[Predicate] = []
    for term in terms:
        parts.append(_term(db, model, term, terms, domain))
    return _all(parts)


def _all(parts: list[Predicate]) -> Predicate:
    if not parts:
        return lambda record: True
    if len(parts) == 1:
        return parts[0]
    return lambda record: all(p(record) for p in parts)


def _term(db: Database, model: Model, term: Any, rest: Iterator[Any], domain: Any) -> Predicate:
    if term in ("&", "|"):
        try:
            left = _term(db, model, next(rest), rest, domain)
            right = _term(db, model, next(rest), rest, domain)
        except StopIteration:
            raise InvalidValue(f"Invalid domain (missing operand of {term!r}): {domain!r}") from None
        if term == "&":
            return lambda record: left(record) and right(record)
        return lambda record: left(record) or right(record)
    if term == "!":
        try:
            inner = _term(db, model, next(rest), rest, domain)
        except StopIteration:
            raise InvalidValue(f"Invalid domain (missing operand of '!'): {domain!r}") from None
        return lambda record: not inner(record)
    if isinstance(term, (list, tuple)) and len(term) == 3:
        return _leaf(db, model, *term)
    raise InvalidValue(f"Invalid leaf {term!r}")


def _like(pattern: str, insensitive: bool, anchored: bool) -> Callable[[Any], bool]:
    """SQL LIKE: '%' any run, '_' one character; `like` wraps the value in '%...%'."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    if not anchored:
        regex = f".*{regex}.*"
    compiled = re.compile(regex, re.DOTALL | (re.IGNORECASE if insensitive else 0))
    return lambda text: compiled.fullmatch(text) is not None


def _leaf(db: Database, model: Model, name: Any, operator: Any, value: Any) -> Predicate:
    if not isinstance(name, str) or name not in model.fields:
        raise InvalidValue(f"Invalid field {model.name}.{name} in leaf {(name, operator, value)!r}")
    if operator not in _OPERATORS:
        raise InvalidValue(f"Invalid leaf {(name, operator, value)!r}: operator {operator!r} is not supported")
    fld = model.fields[name]
    operator = "!=" if operator == "<>" else operator
    if fld.type == "many2one" and isinstance(value, str) and operator in ("=", "!=", "like", "ilike", "not like",
                                                                         "not ilike", "=like", "=ilike"):
        return _m2o_by_name(db, fld, name, operator, value)
    if operator in ("in", "not in"):
        if not isinstance(value, (list, tuple)):
            value = [value]
        wanted = {False if v is None else v for v in value}
        with_null = False in wanted

        def member(record: Record) -> bool:
            current = record.get(name)
            if isinstance(current, list):
                return bool(wanted.intersection(current))
            return (current in wanted) if not _null(current) or fld.type == "boolean" else with_null

        return member if operator == "in" else (lambda record: not member(record))
    if operator in ("like", "not like", "ilike", "not ilike", "=like", "=ilike"):
        test = _like(str(value), "ilike" in operator, operator.startswith("="))
        negate = operator.startswith("not")

        def like(record: Record) -> bool:
            current = record.get(name)
            if _null(current):
                return negate
            return test(str(current)) != negate

        return like
    return _compare(fld, name, operator, value)


def _compare(fld: Field, name: str, operator: str, value: Any) -> Predicate:
    if _null(value) and fld.type != "boolean":
        if operator == "=":
            return lambda record: record.get(name) in (None, False, [])
        if operator == "!=":
            return lambda record: record.get(name) not in (None, False, [])
        return lambda record: False
    if fld.type in ("one2many", "many2many"):
        if operator == "=":
            return lambda record: value in (record.get(name) or [])
        return lambda record: value not in (record.get(name) or [])
    if fld.type == "boolean":
        wanted = bool(value)
        return (lambda record: bool(record.get(name)) == wanted) if operator == "=" else \
            (lambda record: bool(record.get(name)) != wanted)
    compare = {"=": lambda a: a == value, "!=": lambda a: a != value, ">": lambda a: a > value,
               ">=": lambda a: a >= value, "<": lambda a: a < value, "<=": lambda a: a <= value}[operator]

    def test(record: Record) -> bool:
        current = record.get(name)
        if _null(current):  # SQL NULL: only != holds
            return operator == "!="
        try:
            return bool(compare(current))
        except TypeError:
            raise InvalidValue(f"Invalid value {value!r} for {fld.type} field {name!r}") from None

    return test


def _m2o_by_name(db: Database, fld: Field, name: str, operator: str, value: str) -> Predicate:
    """`('partner_id', 'ilike', 'acme')`: Odoo searches the comodel's names."""
    comodel = MODELS[fld.relation or ""]
    like = operator if operator not in ("=", "!=") else "="
    test = _like(value, "ilike" in like, like.startswith("=")) if like != "=" else (lambda text: text == value)
    matching = {rid for rid, rec in db.tables[comodel.name].items() if test(comodel.display(db, rec))}
    negate = operator in ("!=", "not like", "not ilike")
    return lambda record: (record.get(name) in matching) != negate


def parse_order(model: Model, order: Any) -> list[tuple[str, bool]]:
    """'write_date asc, id asc' -> [(field, descending)], refusing what Odoo refuses."""
    spec = order if order else model.order
    if not isinstance(spec, str):
        raise InvalidValue(f"Invalid \"order\" specified ({order!r})")
    keys = []
    for part in spec.split(","):
        words = part.strip().split()
        if not words:
            continue
        direction = words[1].lower() if len(words) > 1 else "asc"
        if len(words) > 2 or direction not in ("asc", "desc") or words[0] not in model.fields \
                or model.fields[words[0]].type in ("one2many", "many2many"):
            raise InvalidValue(f"Invalid \"order\" specified ({spec}). A valid \"order\" specification is a "
                               "comma-separated list of valid field names (optionally followed by asc/desc "
                               "for the direction)")
        keys.append((words[0], direction == "desc"))
    return keys


def _null(value: Any) -> bool:
    """SQL NULL as Odoo stores it: None or False, but not 0 or 0.0."""
    return value is None or value is False


def _sort(records: list[Record], keys: list[tuple[str, bool]]) -> list[Record]:
    """Sort as PostgreSQL does: NULLs last ascending, first descending (stable, key by key)."""
    for name, descending in reversed(keys):
        def key(record: Record, name: str = name) -> tuple[int, Any]:
            value = record.get(name)
            return (1, 0) if value is None else (0, value)

        records.sort(key=key, reverse=descending)
    return records


# --- the database --------------------------------------------------------------------------------


@dataclass
class _Transaction:
    undo: dict[tuple[str, int], Record | None] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    changed: dict[tuple[str, int], str] = field(default_factory=dict)  # (model, id) -> "create" | "write"


class Database:
    """The sandbox's records, behind one lock; every RPC call is one transaction."""

    def __init__(self, kit: SandboxKit | None = None, token_in: str = "query") -> None:
        self.kit = kit
        self.token_in = token_in
        self.lock = threading.RLock()
        self.tables: dict[str, dict[int, Record]] = {name: {} for name in MODELS}
        self.sequences: dict[str, int] = {name: 0 for name in MODELS}
        self.sequences["sale.order.name"] = 0
        self.users: dict[str, tuple[int, str]] = {LOGIN: (2, API_KEY)}
        self._uid_counter = itertools.count(100)
        self.last_stamp = ""
        self.default_currency: int | bool = False
        self.countries: dict[str, int] = {}
        self.states: dict[tuple[str, str], int] = {}
        self._txn: _Transaction | None = None

    # time

    @property
    def stamp(self) -> str:
        """Now, to the second, never before the last stamp given (a monotonic write clock)."""
        now = datetime.now(UTC).strftime(DATETIME)
        self.last_stamp = max(now, self.last_stamp)
        return self.last_stamp

    # auth

    def authenticate(self, db: Any, login: Any, key: Any) -> int | bool:
        self._check_db(db)
        user = self.users.get(login) if isinstance(login, str) else None
        return user[0] if user and isinstance(key, str) and key == user[1] else False

    def check(self, db: Any, uid: Any, key: Any) -> None:
        self._check_db(db)
        if not any(uid == found and key == secret for found, secret in self.users.values()):
            raise AccessDenied("Access Denied")

    @staticmethod
    def _check_db(db: Any) -> None:
        if db != DATABASE:
            raise OdooError(f'FATAL:  database "{db}" does not exist')

    def new_uid(self) -> None:
        with self.lock:
            for login, (_uid, key) in list(self.users.items()):
                self.users[login] = (next(self._uid_counter), key)

    # transactions

    @contextmanager
    def transaction(self) -> Iterator[_Transaction]:
        with self.lock:
            txn = self._txn = _Transaction(sequences=dict(self.sequences))
            try:
                yield txn
            except BaseException:
                for (model, rid), old in txn.undo.items():
                    if old is None:
                        self.tables[model].pop(rid, None)
                    else:
                        self.tables[model][rid] = old
                self.sequences = txn.sequences
                raise
            finally:
                self._txn = None
            self._notify(txn)

    def _remember(self, model: str, rid: int) -> None:
        if self._txn is not None and (model, rid) not in self._txn.undo:
            current = self.tables[model].get(rid)
            self._txn.undo[(model, rid)] = None if current is None else dict(current)

    def _changed(self, model: str, rid: int, how: str) -> None:
        if self._txn is not None:
            self._txn.changed.setdefault((model, rid), how)

    def _next_id(self, model: str) -> int:
        self.sequences[model] += 1
        return self.sequences[model]

    # reading

    def model(self, name: Any) -> Model:
        found = MODELS.get(name) if isinstance(name, str) else None
        if found is None:
            raise OdooError(f"Object {name} doesn't exist")
        return found

    def display_name(self, model: str, rid: int) -> str:
        return MODELS[model].display(self, self.tables[model][rid])

    def product_name(self, product_id: Any) -> str | bool:
        found = self.tables["product.product"].get(product_id) if isinstance(product_id, int) else None
        return _product_display(self, found) if found else False

    def search(self, model: Model, domain: Any = None, offset: int = 0, limit: int | None = None,
               order: str | None = None, context: dict[str, Any] | None = None) -> list[int]:
        return [r["id"] for r in self._search(model, domain, offset, limit, order, context)]

    def _search(self, model: Model, domain: Any, offset: Any, limit: Any, order: Any,
                context: dict[str, Any] | None) -> list[Record]:
        domain = list(domain or [])
        match = compile_domain(self, model, domain)
        if "active" in model.fields and (context or {}).get("active_test", True) and not _mentions(domain, "active"):
            plain = match
            match = lambda record: record.get("active") is not False and plain(record)  # noqa: E731
        keys = parse_order(model, order)
        rows = _sort([r for r in self.tables[model.name].values() if match(r)], keys)
        start = int(offset or 0)
        return rows[start:start + int(limit)] if limit else rows[start:]

    def read(self, model: Model, records: list[Record], names: list[str] | None) -> list[Record]:
        wanted = [n for n in (names or model.fields) if n != "id"]
        fields = [model.get(n) for n in wanted]
        return [self._read_one(model, r, fields) for r in records]

    def _read_one(self, model: Model, record: Record, fields: list[Field]) -> Record:
        out: Record = {"id": record["id"]}
        for fld in fields:
            value = record.get(fld.name)
            if fld.name == "display_name":
                out["display_name"] = model.display(self, record)
            elif fld.type == "many2one":
                out[fld.name] = [value, self._name_of(fld.relation or "", value)] if value else False
            elif fld.type in ("one2many", "many2many"):
                out[fld.name] = list(value or [])
            elif fld.type == "boolean":
                out[fld.name] = bool(value)
            elif fld.type == "integer":
                out[fld.name] = int(value or 0)
            elif fld.type == "float":
                out[fld.name] = float(value or 0.0)
            else:
                out[fld.name] = value if value not in (None, "") else False
        return out

    def _name_of(self, model: str, rid: int) -> str:
        table = self.tables.get(model)
        if table is None or rid not in table:  # a comodel the sandbox does not model (account.tax)
            return f"{model},{rid}"
        return MODELS[model].display(self, table[rid])

    def browse(self, model: Model, ids: Any) -> list[Record]:
        """The records of `ids`, or MissingError naming the ones that do not exist."""
        ids = _ids(ids)
        table = self.tables[model.name]
        missing = [i for i in ids if i not in table]
        if missing:
            raise MissingError("Record does not exist or has been deleted.\n"
                               f"(Record: {model.name}({', '.join(map(str, missing))},), User: 2)")
        return [table[i] for i in dict.fromkeys(ids)]

    # writing

    def create(self, model: Model, vals_list: list[Record]) -> list[int]:
        return [self._create_one(model, vals) for vals in vals_list]

    def _create_one(self, model: Model, vals: Any) -> int:
        if not isinstance(vals, dict):
            raise InvalidValue(f"create() takes a dict or a list of dicts, got {vals!r}")
        values, commands = self._convert(model, vals)
        for fld in model.fields.values():
            if fld.name not in values and fld.name not in _AUTOMATIC and fld.type != "one2many":
                default = fld.default(self, values) if callable(fld.default) else fld.default
                values[fld.name] = [] if fld.type == "many2many" and default is None else default
        rid = self._next_id(model.name)
        stamp = self.stamp
        values.update(id=rid, create_date=stamp, write_date=stamp)
        for fld in model.fields.values():
            if fld.type == "one2many":
                values[fld.name] = []
        self._before_save(model, values, None)
        self._check(model, values)
        self._remember(model.name, rid)
        self.tables[model.name][rid] = values
        self._link_inverse(model.name, values, None)
        self._changed(model.name, rid, "create")
        for name, cmds in commands.items():
            self._o2m(model, values, model.fields[name], cmds)
        self._after_change(model, values)
        return rid

    def write(self, model: Model, ids: Any, vals: Any) -> bool:
        if not isinstance(vals, dict):
            raise InvalidValue(f"write() takes a dict of values, got {vals!r}")
        for record in self.browse(model, ids):
            values, commands = self._convert(model, vals)
            old = dict(record)
            self._remember(model.name, record["id"])
            updated = {**record, **values, "write_date": self.stamp}
            self._before_save(model, updated, old)
            self._check(model, updated)
            self.tables[model.name][record["id"]] = updated
            self._link_inverse(model.name, updated, old)
            self._changed(model.name, record["id"], "write")
            for name, cmds in commands.items():
                self._o2m(model, updated, model.fields[name], cmds)
            self._after_change(model, updated)
        return True

    def unlink(self, model: Model, ids: Any) -> bool:
        for record in self.browse(model, ids):
            self._before_unlink(model, record)
            for fld in model.fields.values():
                if fld.type == "one2many" and record.get(fld.name):
                    self.unlink(MODELS[fld.relation or ""], list(record[fld.name]))
            self._remember(model.name, record["id"])
            del self.tables[model.name][record["id"]]
            self._link_inverse(model.name, None, record)
            self._forget_xmlids(model.name, record["id"])
            if model.name == "sale.order.line":
                self._after_change(model, record)
        return True

    def _forget_xmlids(self, model: str, rid: int) -> None:
        """Odoo's unlink deletes the external ids of the deleted records with them."""
        if model == "ir.model.data":
            return
        table = self.tables["ir.model.data"]
        for xid in [x for x, r in table.items() if r.get("model") == model and r.get("res_id") == rid]:
            self._remember("ir.model.data", xid)
            del table[xid]

    def _convert(self, model: Model, vals: Record) -> tuple[Record, dict[str, list[Any]]]:
        """Values as stored, and the one2many commands to apply after the record exists."""
        values: Record = {}
        commands: dict[str, list[Any]] = {}
        for name, value in vals.items():
            fld = model.get(name)
            if fld.readonly:
                continue  # Odoo ignores values for computed fields without an inverse
            if fld.type == "one2many":
                if not isinstance(value, (list, tuple)):
                    raise InvalidValue(f"Wrong value for {model.name}.{name}: {value!r}")
                commands[name] = list(value)
            else:
                values[name] = self._cell(model, fld, value)
        if model.name == "res.partner" and "company_type" in values and "is_company" not in values:
            values["is_company"] = values["company_type"] == "company"
        return values, commands

    def _cell(self, model: Model, fld: Field, value: Any) -> Any:
        wrong = InvalidValue(f"Wrong value for {model.name}.{fld.name}: {value!r}")
        if value is None or value is False:
            return False if fld.type != "many2many" else []
        if fld.type == "many2one":
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            table = self.tables.get(fld.relation or "")
            if table is not None and value not in table:
                raise ValidationError(f"The operation cannot be completed: {fld.string} ({fld.name}) refers to "
                                      f"{fld.relation}({value},), which does not exist.")
            return value
        if fld.type == "many2many":
            return _m2m(value, wrong)
        if fld.type == "boolean":
            return bool(value)
        if fld.type in ("integer", "float"):
            try:
                number = float(value) if fld.type == "float" else int(value)
            except (TypeError, ValueError):
                raise wrong from None
            if isinstance(value, bool):
                raise wrong
            return number
        if fld.type == "selection":
            if value not in dict(fld.selection):
                raise wrong
            return value
        if fld.type in ("date", "datetime"):
            return _when(fld, value, wrong)
        return value if isinstance(value, str) else str(value)

    def _check(self, model: Model, values: Record) -> None:
        if model.name == "res.partner":
            if not values.get("name") and values.get("type", "contact") == "contact":
                raise ValidationError("The operation cannot be completed: Contacts require a name")
            return
        for fld in model.fields.values():
            if fld.required and (_null(values.get(fld.name)) or values.get(fld.name) == ""):
                raise _cannot_complete(model, fld)
        if model.name == "ir.model.data":
            self._check_xmlid(values)
        if model.name == "sale.order.line" and not values.get("display_type") and not values.get("product_id"):
            raise ValidationError("The operation cannot be completed: Missing required fields on accountable "
                                  "sale order line.")

    def _check_xmlid(self, values: Record) -> None:
        """ir_model_data's `name_nospaces` constraint and its unique (module, name) index."""
        if " " in str(values.get("name")):
            raise ValidationError("External IDs cannot contain spaces")
        clash = any(r["id"] != values["id"] and r.get("module") == values.get("module") and r.get("name") == values.get("name")
                    for r in self.tables["ir.model.data"].values())
        if clash:
            key = f"({values.get('module')}, {values.get('name')})"
            raise ValidationError("The operation cannot be completed: duplicate key value violates unique constraint "
                                  f"\"ir_model_data_module_name_uniq_index\"\nDETAIL:  Key (module, name)={key} already exists.")

    def _before_save(self, model: Model, values: Record, old: Record | None) -> None:
        if model.name == "ir.model.data":
            values["complete_name"] = f"{values.get('module')}.{values.get('name')}"
        if model.name == "res.partner":
            values["company_type"] = "company" if values.get("is_company") else "person"
        elif model.name == "sale.order" and values.get("name") in ("New", False):
            self.sequences["sale.order.name"] += 1
            values["name"] = f"S{self.sequences['sale.order.name']:05d}"
        elif model.name == "sale.order.line":
            if values.get("price_unit") in (None, False) and old is None:
                product = self.tables["product.product"].get(values.get("product_id") or 0)
                values["price_unit"] = float(product["list_price"]) if product else 0.0
            values["price_unit"] = float(values.get("price_unit") or 0.0)
            qty, price, discount = (float(values.get(k) or 0.0) for k in ("product_uom_qty", "price_unit", "discount"))
            values["price_subtotal"] = values["price_total"] = round(qty * price * (1 - discount / 100.0), 2)

    def _before_unlink(self, model: Model, record: Record) -> None:
        if model.name == "sale.order" and record.get("state") not in ("draft", "cancel"):
            raise UserError("You can not delete a sent quotation or a confirmed sales order. You must first cancel it.")
        if model.name == "sale.order.line":
            order = self.tables["sale.order"].get(record.get("order_id") or 0)
            if order and order.get("state") == "sale" and not record.get("display_type"):
                raise UserError("Once a sales order is confirmed, you can't remove one of its lines (we need to "
                                "track if something gets invoiced or delivered).\nSet the quantity to 0 instead.")

    def _after_change(self, model: Model, record: Record) -> None:
        """A line changed: recompute its order's amounts, which bumps the order's write_date."""
        if model.name != "sale.order.line" and model.name != "sale.order":
            return
        order_id = record.get("order_id") if model.name == "sale.order.line" else record.get("id")
        order = self.tables["sale.order"].get(order_id or 0)
        if order is None:
            return
        lines = [self.tables["sale.order.line"][i] for i in order.get("order_line", []) if i in self.tables["sale.order.line"]]
        total = round(sum(float(line.get("price_subtotal") or 0.0) for line in lines), 2)
        if model.name == "sale.order.line" or order.get("amount_total") != total:
            self._remember("sale.order", order["id"])
            self.tables["sale.order"][order["id"]] = {**order, "amount_untaxed": total, "amount_tax": 0.0,
                                                      "amount_total": total, "write_date": self.stamp}
            self._changed("sale.order", order["id"], "write")
        for line in lines:
            if line.get("currency_id") != order.get("currency_id"):
                line["currency_id"] = order.get("currency_id")

    def _link_inverse(self, model: str, new: Record | None, old: Record | None) -> None:
        """Keep a parent's one2many list in step with its children's many2one."""
        for (comodel, inverse), (parent_model, o2m) in _INVERSES.items():
            if comodel != model:
                continue
            before = old.get(inverse) if old else None
            after = new.get(inverse) if new else None
            rid = (new or old or {}).get("id")
            if before == after:
                continue
            for parent_id, add in ((before, False), (after, True)):
                parent = self.tables[parent_model].get(parent_id or 0)
                if parent is None:
                    continue
                self._remember(parent_model, parent["id"])
                children = [c for c in parent.get(o2m, []) if c != rid]
                self.tables[parent_model][parent["id"]] = {**parent, o2m: children + [rid] if add else children}

    def _o2m(self, model: Model, parent: Record, fld: Field, commands: list[Any]) -> None:
        """Odoo's relational commands: (0,0,vals) (1,id,vals) (2,id) (3,id) (4,id) (5,) (6,0,ids)."""
        comodel = MODELS[fld.relation or ""]
        inverse = fld.inverse or ""

        def children() -> list[int]:
            return list(self.tables[model.name][parent["id"]].get(fld.name, []))

        for command in commands:
            if not isinstance(command, (list, tuple)) or not command or not isinstance(command[0], int):
                raise InvalidValue(f"Wrong value for {model.name}.{fld.name}: {command!r}")
            code, args = command[0], list(command[1:])
            if code == 0 and len(args) >= 2 and isinstance(args[1], dict):
                self._create_one(comodel, {**args[1], inverse: parent["id"]})
            elif code == 1 and len(args) >= 2 and args[0] in children() and isinstance(args[1], dict):
                self.write(comodel, [args[0]], args[1])
            elif code in (2, 3) and args and args[0] in children():
                self.unlink(comodel, [args[0]])
            elif code == 4 and args:
                self.write(comodel, [args[0]], {inverse: parent["id"]})
            elif code == 5:
                if children():
                    self.unlink(comodel, children())
            elif code == 6 and len(args) >= 2 and isinstance(args[1], (list, tuple)):
                keep = _ids(args[1])
                gone = [c for c in children() if c not in keep]
                if gone:
                    self.unlink(comodel, gone)
                for child in keep:
                    if child not in children():
                        self.write(comodel, [child], {inverse: parent["id"]})
            else:
                raise InvalidValue(f"Wrong value for {model.name}.{fld.name}: {command!r}")

    def touch(self, model: str, ids: list[int]) -> int:
        with self.transaction():
            stamp = self.stamp
            table = self.tables[model]
            present = [i for i in ids if i in table]
            for rid in present:
                self._remember(model, rid)
                table[rid] = {**table[rid], "write_date": stamp}
                self._changed(model, rid, "write")
            return len(present)

    # webhooks

    def _notify(self, txn: _Transaction) -> None:
        if self.kit is None or not self.kit.webhooks.url:
            return
        for (model, rid), how in txn.changed.items():
            names = WEBHOOK_FIELDS.get(model)
            record = self.tables[model].get(rid)
            if names is None or record is None:
                continue
            payload: Record = {"_action": _ACTION, "_id": rid, "_model": model}
            payload.update({n: record.get(n) if record.get(n) not in (None, "") else False for n in names})
            body = json.dumps(payload, sort_keys=True, default=str).encode("utf-8")
            self.kit.webhooks.send(f"{model}:{rid}:{how}", self._outbound(body))

    def _outbound(self, body: bytes) -> Callable[[str], OutboundCall]:
        token_in = self.token_in

        def build(url: str) -> OutboundCall:
            headers = {"Content-Type": "application/json"}
            if token_in == "header":
                headers[TOKEN_HEADER] = WEBHOOK_TOKEN
            else:
                url = _with_query(url, "token", WEBHOOK_TOKEN)
            return OutboundCall(url, body, headers)

        return build

    # seeding

    def seed(self, options: SandboxOptions) -> None:
        with self.lock:
            self._seed_reference_data()
            self._seed_partners(options.records, options.seed, options.first)

    def seed_records(self, model: str, records: list[Record]) -> list[int]:
        """Store records as they are, as if they had been there before the hub came: no ORM
        checks, no notifications, no faults. For tests and demos that need data the API would
        refuse (a partner without a name) or that must not be faulted. Many2one values are ids."""
        found = self.model(model)
        with self.lock:
            for values in records:
                _stored_fields(found, values)
            return [self._insert(found.name, **values) for values in records]

    def edit(self, model: str, rid: int, values: Record) -> Record:
        """Change a record as a user would, stamped now (write_date), without checks or faults."""
        found = self.model(model)
        _stored_fields(found, values)
        with self.lock:
            record = self.tables[found.name].get(rid)
            if record is None:
                raise MissingError(f"Record does not exist or has been deleted.\n(Record: {found.name}({rid},))")
            self.tables[found.name][rid] = {**record, **values, "write_date": self.stamp}
            return self.tables[found.name][rid]

    def _insert(self, model: str, **values: Any) -> int:
        rid = self._next_id(model)
        stamp = self.stamp
        record = {"id": rid, "create_date": stamp, "write_date": stamp}
        for fld in MODELS[model].fields.values():
            if fld.name not in _AUTOMATIC:
                default = fld.default(self, values) if callable(fld.default) else fld.default
                record[fld.name] = [] if fld.type in ("one2many", "many2many") else default
        record.update(values)
        self.tables[model][rid] = record
        return rid

    def _seed_reference_data(self) -> None:
        self.countries = {code: self._insert("res.country", name=name, code=code) for code, name in
                          (("CN", "China"), ("DE", "Germany"), ("FR", "France"), ("GB", "United Kingdom"),
                           ("US", "United States"))}
        self.states = {(country, name): self._insert("res.country.state", name=name, code=code,
                                                     country_id=self.countries[country])
                       for country, name, code in _STATES}
        for name, symbol in (("EUR", "€"), ("USD", "$"), ("CNY", "¥")):
            rid = self._insert("res.currency", name=name, symbol=symbol)
        self.default_currency = rid  # CNY, the last one
        for name in ("Immediate Payment", "15 Days", "30 Days", "End of Following Month"):
            self._insert("account.payment.term", name=name)
        for code, name, price in _PRODUCTS:
            self._insert("product.product", name=name, default_code=code or False, list_price=price)
        # 陈静 and 杨磊 are also DingTalk sandbox users, so the demo's leave requests find them
        for name, email in (("李娜", "li.na@example.cn"), ("Anna Weber", "anna.weber@example.de"),
                            ("王伟", "wang.wei@example.cn"), ("陈静", "chen.jing@example.cn"),
                            ("杨磊", "yang.lei@example.cn")):
            self._insert("hr.employee", name=name, work_email=email)
        for name in ("Paid Time Off", "Sick Time Off", "Compensatory Days"):
            self._insert("hr.leave.type", name=name)

    def _seed_partners(self, count: int, seed_value: int, first: int = 1) -> None:
        for company in seed.companies(count, seed_value, first):
            state_name = _STATE_ALIASES.get(company.state, company.state)
            self._insert("res.partner", name=company.name, is_company=True, company_type="company",
                         vat=company.tax_id, email=company.email, phone=company.phone, website=company.website,
                         street=company.street, city=company.city, zip=company.postal_code,
                         country_id=self.countries[company.country_code],
                         state_id=self.states.get((company.country_code, state_name), False),
                         lang="zh_CN" if company.country_code == "CN" else "en_US", customer_rank=1)


_STATES = (("CN", "Shanghai", "SH"), ("CN", "Beijing", "BJ"), ("CN", "Guangdong", "GD"), ("CN", "Zhejiang", "ZJ"),
           ("CN", "Sichuan", "SC"), ("DE", "Bavaria", "BY"), ("DE", "Hamburg", "HH"), ("US", "Texas", "TX"))
_STATE_ALIASES = {"上海": "Shanghai", "北京": "Beijing", "广东": "Guangdong", "浙江": "Zhejiang", "四川": "Sichuan",
                  "Bayern": "Bavaria", "TX": "Texas"}
_PRODUCTS = (("FURN_7800", "Desk Combination", 450.0), ("FURN_8220", "Four Person Desk", 2350.0),
             ("E-COM07", "Large Cabinet", 320.0), ("FURN_6666", "Acoustic Bloc Screens", 295.0),
             ("DESK0004", "Customizable Desk", 800.0), ("FURN_1118", "Corner Desk Left Sit", 85.0),
             ("SRV_INST", "Installation", 120.0), ("", "Office Chair", 70.0))


def _stored_fields(model: Model, values: Record) -> None:
    """The back door stores plain fields of the model: not Odoo's automatic ones, not relations
    that need commands."""
    for name in values:
        fld = model.get(name)
        if name in _AUTOMATIC or fld.type in ("one2many", "many2many"):
            raise InvalidValue(f"{model.name}.{name} cannot be stored through the back door")


def _mentions(domain: list[Any], name: str) -> bool:
    return any(isinstance(t, (list, tuple)) and len(t) == 3 and t[0] == name for t in domain)


def _ids(value: Any) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise InvalidValue(f"Invalid ids: {value!r}")
    return list(value)


def _m2m(value: Any, wrong: Exception) -> list[int]:
    if not isinstance(value, (list, tuple)):
        raise wrong
    ids: list[int] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        elif isinstance(item, (list, tuple)) and item and item[0] == 6 and len(item) == 3:
            ids = list(item[2])
        elif isinstance(item, (list, tuple)) and item and item[0] == 4 and len(item) >= 2:
            ids.append(item[1])
        elif isinstance(item, (list, tuple)) and item and item[0] in (3, 2) and len(item) >= 2:
            ids = [i for i in ids if i != item[1]]
        elif isinstance(item, (list, tuple)) and item and item[0] == 5:
            ids = []
        else:
            raise wrong
    return ids


def _when(fld: Field, value: Any, wrong: Exception) -> str:
    if not isinstance(value, str):
        raise wrong
    try:
        if fld.type == "date":
            return datetime.strptime(value[:10], DATE).strftime(DATE)
        if len(value) == 10:
            return datetime.strptime(value, DATE).strftime(DATETIME)
        return datetime.strptime(value[:19], DATETIME).strftime(DATETIME)
    except ValueError:
        raise InvalidValue(f"time data {value!r} does not match format "
                           f"'{DATE if fld.type == 'date' else DATETIME}'") from None


def _with_query(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name] + [(name, value)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


# --- services ------------------------------------------------------------------------------------


def _call(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], what: str) -> Any:
    try:
        return function(*args, **kwargs)
    except TypeError as exc:
        if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:  # the call itself did not fit
            raise BadCall(f"{what}() {exc}".replace(f"{function.__name__}() ", "")) from None
        raise


class Services:
    """`common` and `object`, the two services of Odoo's external API."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def dispatch(self, service: Any, method: Any, args: Any) -> Any:
        if not isinstance(args, (list, tuple)):
            raise BadCall("args must be a list")
        if service == "common":
            handlers: dict[str, Callable[..., Any]] = {
                "version": lambda: SERVER_VERSION,
                "login": lambda db, login, password: self.db.authenticate(db, login, password),
                "authenticate": lambda db, login, password, user_agent_env=None: self.db.authenticate(db, login, password),
                "about": lambda extended=False: "See http://openerp.com",
            }
        elif service == "object":
            handlers = {"execute_kw": self.execute_kw, "execute": self.execute}
        else:
            raise OdooError(f"No such service: {service!r}" if isinstance(service, str) else "No such service")
        handler = handlers.get(method) if isinstance(method, str) else None
        if handler is None:
            raise OdooError(f"Method not available {method}")
        return _call(handler, list(args), {}, f"{service}.{method}")

    def execute(self, db: Any, uid: Any, password: Any, model: Any, method: Any, *args: Any) -> Any:
        return self.execute_kw(db, uid, password, model, method, list(args), {})

    def execute_kw(self, db: Any, uid: Any, password: Any, model: Any, method: Any, args: Any = None,
                   kwargs: Any = None) -> Any:
        with self.db.lock:
            self.db.check(db, uid, password)
            target = self.db.model(model)
            args = list(args or [])
            kwargs = dict(kwargs or {})
            function = getattr(self, f"_m_{method}", None) if isinstance(method, str) else None
            if function is None or method.startswith("_") or model not in _MODEL_METHODS.get(method, {target.name}):
                raise AttributeError_(f"The method '{method}' does not exist on the model '{model}'")
            with self.db.transaction():
                return _call(function, [target, *args], kwargs, method)

    # ORM methods, by name

    def _m_search(self, model: Model, domain: Any = None, offset: int = 0, limit: int | None = None,
                  order: str | None = None, context: dict[str, Any] | None = None, count: bool = False) -> Any:
        ids = self.db.search(model, domain, offset, limit, order, context)
        return len(ids) if count else ids

    def _m_search_count(self, model: Model, domain: Any = None, limit: int | None = None,
                        context: dict[str, Any] | None = None) -> int:
        return len(self.db.search(model, domain, 0, limit, "id", context))

    def _m_search_read(self, model: Model, domain: Any = None, fields: list[str] | None = None, offset: int = 0,
                       limit: int | None = None, order: str | None = None,
                       context: dict[str, Any] | None = None) -> list[Record]:
        return self.db.read(model, self.db._search(model, domain, offset, limit, order, context), fields)

    def _m_read(self, model: Model, ids: Any, fields: list[str] | None = None, load: str = "_classic_read",
                context: dict[str, Any] | None = None) -> list[Record]:
        rows = self.db.read(model, self.db.browse(model, ids), fields)
        if load != "_classic_read":
            for row in rows:
                for name, value in row.items():
                    if isinstance(value, list) and model.fields[name].type == "many2one":
                        row[name] = value[0]
        return rows

    def _m_create(self, model: Model, vals_list: Any, context: dict[str, Any] | None = None) -> Any:
        if isinstance(vals_list, dict):
            return self.db.create(model, [vals_list])[0]
        if not isinstance(vals_list, (list, tuple)):
            raise InvalidValue(f"create() takes a dict or a list of dicts, got {vals_list!r}")
        return self.db.create(model, list(vals_list))

    def _m_write(self, model: Model, ids: Any, vals: Any, context: dict[str, Any] | None = None) -> bool:
        return self.db.write(model, ids, vals)

    def _m_unlink(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> bool:
        return self.db.unlink(model, ids)

    def _m_fields_get(self, model: Model, allfields: list[str] | None = None, attributes: list[str] | None = None,
                      context: dict[str, Any] | None = None) -> dict[str, Any]:
        described = {}
        for name, fld in model.fields.items():
            if allfields and name not in allfields:
                continue
            info = fld.describe()
            described[name] = {k: v for k, v in info.items() if not attributes or k in attributes}
        return described

    def _m_name_search(self, model: Model, name: str = "", args: Any = None, operator: str = "ilike",
                       limit: int = 100, context: dict[str, Any] | None = None) -> list[list[Any]]:
        domain = list(args or [])
        if name:
            if model.name == "product.product":
                domain = ["&", "|", ("default_code", operator, name), ("name", operator, name), *(domain or [(
                    "id", "!=", 0)])]
            else:
                domain = ["&", ("name", operator, name), *(domain or [("id", "!=", 0)])]
        rows = self.db._search(model, domain, 0, limit, None, None)
        return [[r["id"], model.display(self.db, r)] for r in rows]

    def _m_name_get(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> list[list[Any]]:
        return [[r["id"], model.display(self.db, r)] for r in self.db.browse(model, ids)]

    def _m_action_confirm(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> bool:
        for order in self.db.browse(model, ids):
            if order.get("state") not in ("draft", "sent"):
                state = dict(_ORDER_STATES)[order["state"]]
                raise UserError(f"It is not allowed to confirm an order in the following states: {state}")
        return self.db.write(model, ids, {"state": "sale", "date_order": self.db.stamp})

    def _m_action_cancel(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> Any:
        """sale.order.action_cancel of Odoo 16/17: a non-draft order opens the "send a cancellation
        e-mail" wizard (an action dict, nothing cancelled) unless the context says
        `disable_cancel_warning`; a locked order ("done" here) cannot be cancelled."""
        orders = self.db.browse(model, ids)
        if any(order.get("state") == "done" for order in orders):
            raise UserError("You cannot cancel a locked order. Please unlock it first.")
        if not (context or {}).get("disable_cancel_warning") and any(o.get("state") != "draft" for o in orders):
            first = orders[0]["id"]
            return {"name": "Cancel Sales Order", "view_mode": "form", "res_model": "sale.order.cancel",
                    "view_id": 1, "type": "ir.actions.act_window", "context": {"default_order_id": first},
                    "target": "new"}
        return self.db.write(model, ids, {"state": "cancel"})

    def _m_action_approve(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> bool:
        """First approval of a time off with two validation levels: To Approve -> Second Approval."""
        if any(leave.get("state") != "confirm" for leave in self.db.browse(model, ids)):
            raise UserError("Time off request must be confirmed (\"To Approve\") in order to approve it.")
        return self.db.write(model, ids, {"state": "validate1"})

    def _m_action_validate(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> bool:
        if any(leave.get("state") not in ("confirm", "validate1") for leave in self.db.browse(model, ids)):
            raise UserError("Time off request must be confirmed in order to approve it.")
        return self.db.write(model, ids, {"state": "validate"})

    def _m_action_refuse(self, model: Model, ids: Any, context: dict[str, Any] | None = None) -> bool:
        if any(leave.get("state") not in ("confirm", "validate1", "validate") for leave in self.db.browse(model, ids)):
            raise UserError("Time off request must be confirmed or validated in order to refuse it.")
        return self.db.write(model, ids, {"state": "refuse"})


# business methods and the models that have them (ORM methods exist on every model)
_MODEL_METHODS: dict[str, set[str]] = {"action_confirm": {"sale.order"}, "action_cancel": {"sale.order"},
                                       "action_approve": {"hr.leave"}, "action_validate": {"hr.leave"},
                                       "action_refuse": {"hr.leave"}}


class AttributeError_(OdooError):  # noqa: N801 - Odoo answers Python's AttributeError by name
    name = "builtins.AttributeError"
    xmlrpc_code = 1


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Label:
    """What the call statistics show as the route: `/jsonrpc res.partner.create`, so that the
    benchmarks and the contract suite can tell reads from writes on Odoo's single endpoint."""

    path: str


def _label(request: Request, path: str, service: Any, method: Any, args: Any) -> None:
    if service == "object" and method in ("execute_kw", "execute") and isinstance(args, (list, tuple)) and len(args) > 4:
        request.scope["route"] = _Label(f"{path} {args[3]}.{args[4]}")
    else:
        request.scope["route"] = _Label(f"{path} {service}.{method}")


def _error_envelope(request_id: Any, error: OdooError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {
        "code": 200, "message": "Odoo Server Error",
        "data": {"name": error.name, "debug": f"Traceback (most recent call last):\n{error.name}: {error.message}\n",
                 "message": error.message, "arguments": [error.message], "context": {}}}}


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), status,
                    media_type="application/json")


def _fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        return Response("<html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests"
                        "</h1></body></html>", 429, {"Retry-After": f"{spec.retry_after:g}"}, media_type="text/html")
    return Response("<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
                    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
                    "</body>\r\n</html>\r\n", 503, media_type="text/html")


def _xmlrpc_fault(error: OdooError) -> bytes:
    text = error.message if error.xmlrpc_code != 1 else \
        f"Traceback (most recent call last):\n{error.name}: {error.message}\n"
    return xmlrpc.client.dumps(xmlrpc.client.Fault(error.xmlrpc_code, text), methodresponse=True, allow_none=True)


def create_app(options: SandboxOptions) -> Any:
    """The sandbox app: Odoo's RPC endpoints plus the `/_sandbox` control routes."""
    kit = SandboxKit("odoo", options, _fault_answer, webhook_delays=WEBHOOK_DELAYS)
    db = Database(kit, str(options.extra.get("webhook_token_in", "query")))
    db.seed(options)
    services = Services(db)
    app = kit.create_app("Odoo sandbox (external API)")
    app.state.db = db

    @app.post("/jsonrpc")
    async def jsonrpc(request: Request) -> Response:
        raw = await request.body()
        try:
            call = json.loads(raw)
            params = call["params"]
            service, method, args = params["service"], params["method"], params.get("args", [])
        except (ValueError, KeyError, TypeError):
            return _json({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32700, "message": "Parse error", "data": {"name": "werkzeug.exceptions.BadRequest",
                                                                   "message": "Invalid JSON-RPC request"}}})
        _label(request, "/jsonrpc", service, method, args)
        try:
            result = services.dispatch(service, method, args)
        except OdooError as error:
            return _json(_error_envelope(call.get("id"), error))
        return _json({"jsonrpc": "2.0", "id": call.get("id"), "result": result})

    async def xmlrpc_call(request: Request, service: str) -> Response:
        raw = await request.body()
        if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
            return Response("DTD and entity declarations are not allowed", 400, media_type="text/plain")
        try:
            args, method = xmlrpc.client.loads(raw, use_builtin_types=True)
        except Exception:  # noqa: BLE001 - expat and xmlrpc raise many kinds for a bad body
            return Response("Malformed XML-RPC request", 400, media_type="text/plain")
        _label(request, f"/xmlrpc/2/{service}", service, method, args)
        try:
            result = services.dispatch(service, method, list(args))
            body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        except OdooError as error:
            body = _xmlrpc_fault(error)
        return Response(body, 200, media_type="text/xml")

    @app.post("/xmlrpc/2/common")
    async def xmlrpc_common(request: Request) -> Response:
        return await xmlrpc_call(request, "common")

    @app.post("/xmlrpc/2/object")
    async def xmlrpc_object(request: Request) -> Response:
        return await xmlrpc_call(request, "object")

    _control_routes(app, db)
    return app


def _control_routes(app: FastAPI, db: Database) -> None:
    @app.post("/_sandbox/touch")
    async def touch(request: Request) -> dict[str, Any]:
        body = await request.json()
        model = db.model(body.get("object"))
        ids = [int(i) for i in body.get("ids", [])]
        return {"touched": db.touch(model.name, ids)}

    @app.get("/_sandbox/records/{model}")
    def records(model: str) -> Response:
        found = db.model(model)
        with db.lock:
            rows = db.read(found, _sort(list(db.tables[found.name].values()), [("id", False)]), None)
        return _json({"records": rows})

    @app.post("/_sandbox/records/{model}")
    async def seed_records(request: Request, model: str) -> Response:
        body = await request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return _json({"error": "expected an object with a records array of objects"}, 400)
        try:
            ids = db.seed_records(model, records)
        except OdooError as error:
            return _json({"error": error.message}, 400)
        return _json({"ids": ids}, 201)

    @app.patch("/_sandbox/records/{model}/{rid}")
    async def edit_record(request: Request, model: str, rid: int) -> Response:
        values = await request.json()
        if not isinstance(values, dict):
            return _json({"error": "expected an object of field values"}, 400)
        try:
            db.edit(model, rid, values)
            found = db.model(model)
            with db.lock:
                [row] = db.read(found, [db.tables[found.name][rid]], None)
        except OdooError as error:
            return _json({"error": error.message}, 404 if isinstance(error, MissingError) else 400)
        return _json(row)

    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        db.new_uid()
        return {"expired": True}


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry of a hub config pointing at this sandbox."""
    return {"connector": "odoo", "base_url": base_url,
            "auth": {"database": DATABASE, "login": LOGIN, "api_key": API_KEY},
            "webhook": {"secret": WEBHOOK_TOKEN}, "options": {}}


__all__ = ["create_app", "system_config", "compile_domain", "parse_order"]
