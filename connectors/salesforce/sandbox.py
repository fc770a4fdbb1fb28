"""A Salesforce org in memory, speaking the REST API's wire protocol, for demos and tests.

It holds Accounts, Opportunities and OpportunityLineItems with 18-character ids, issues
expiring OAuth2 tokens, answers a subset of SOQL (what the connector and everyday
simple-salesforce scripts use; anything else is a `MALFORMED_QUERY`, as Salesforce answers
what it cannot parse), pages query results through `nextRecordsUrl`, validates writes the
way Salesforce does (required fields, lengths, unknown fields, restricted picklists, a
unique external id) and answers with Salesforce's error arrays. Every change to an Account
or Opportunity is sent as an Outbound Message (SOAP) to the configured listener, and
redelivered on Salesforce's back-off until the listener acknowledges it.

simple-salesforce only speaks https, so tests serve this app over TLS (`serve(app, tls=True)`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.salesforce import webhook
from connectors.sandbox import FaultSpec, SandboxKit, SandboxOptions
from connectors.sandbox.seed import PRODUCTS as CATALOGUE
from connectors.sandbox.seed import Company, companies
from connectors.sandbox.webhooks import OutboundCall

# --- the org's built-in credentials (sandbox only) -------------------------------------------

CLIENT_ID = "3MVG9synchubSandboxConnectedAppConsumerKey"
CLIENT_SECRET = "synchub-sandbox-consumer-secret"
USERNAME = "integration@synchub.sandbox"
PASSWORD = "sandbox-password"
SECURITY_TOKEN = "SbxT0ken"
API_VERSION = "v60.0"
API_LIMIT = 100_000
TOKEN_LIFETIME = 7200.0  # seconds; Salesforce's default session timeout
PAGE_DEFAULT, PAGE_MIN, PAGE_MAX = 2000, 200, 2000
COLLECTION_LIMIT = 200
NOTIFICATIONS_PER_MESSAGE = 100
# Outbound message redelivery: 30 s, doubling up to 2 hours, then every 2 hours for 24 hours.
RETRY_DELAYS = (30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0) + (7200.0,) * 11
NOTIFY_OBJECTS = ("Account", "Opportunity")

# --- ids -------------------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """The 18-character form of a 15-character id: a suffix encoding which letters are upper case."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, char in enumerate(id15[start:start + 5]) if "A" <= char <= "Z")
        suffix += _SUFFIX[bits]
    return id15 + suffix


def make_id(prefix: str, number: int, pod: str = "5j000") -> str:
    """Id number `number` of a key prefix; ids sort in the order they were made."""
    digits = ""
    for _ in range(7):
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return id18(prefix + pod + digits)


ORG_ID = make_id("00D", 4242)
USER_ID = make_id("005", 7)
ACTION_ID = make_id("04k", 1)

# --- time ------------------------------------------------------------------------------------


def sf_datetime(moment: datetime) -> str:
    """Salesforce's wire form of a datetime, to the second as Salesforce keeps it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def now() -> str:
    return sf_datetime(datetime.now(UTC))


# --- the schema --------------------------------------------------------------------------------

TEXT_TYPES = frozenset({"string", "textarea", "picklist", "url", "phone", "email", "id", "reference"})
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
CASE_SENSITIVE = frozenset({"id", "reference"})


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    required: bool = False       # on create (nillable false, no default)
    writable: bool = True
    external_id: bool = False
    unique: bool = False
    values: tuple[str, ...] = ()  # restricted picklist values
    reference_to: str = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label or self.name, "type": self.type, "length": self.length,
                "nillable": not self.required and self.name != "Id", "createable": self.writable,
                "updateable": self.writable, "externalId": self.external_id, "unique": self.unique,
                "idLookup": self.name == "Id" or self.external_id, "custom": self.name.endswith("__c"),
                "referenceTo": [self.reference_to] if self.reference_to else [],
                "picklistValues": [{"value": v, "label": v, "active": True} for v in self.values],
                "restrictedPicklist": bool(self.values)}


def _system_fields() -> list[FieldDef]:
    return [FieldDef("Id", "id", "Record ID", 18, writable=False),
            FieldDef("IsDeleted", "boolean", "Deleted", writable=False),
            FieldDef("CreatedDate", "datetime", "Created Date", writable=False),
            FieldDef("CreatedById", "reference", "Created By ID", 18, writable=False, reference_to="User"),
            FieldDef("LastModifiedDate", "datetime", "Last Modified Date", writable=False),
            FieldDef("LastModifiedById", "reference", "Last Modified By ID", 18, writable=False, reference_to="User"),
            FieldDef("SystemModstamp", "datetime", "System Modstamp", writable=False)]


STAGES = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
STAGE_PROBABILITY = dict(zip(STAGES, (10.0, 10.0, 20.0, 50.0, 60.0, 70.0, 75.0, 90.0, 100.0, 0.0), strict=True))


def _address(prefix: str) -> list[FieldDef]:
    return [FieldDef(f"{prefix}Street", "textarea", f"{prefix} Street", 255),
            FieldDef(f"{prefix}City", "string", f"{prefix} City", 40),
            FieldDef(f"{prefix}State", "string", f"{prefix} State/Province", 80),
            FieldDef(f"{prefix}PostalCode", "string", f"{prefix} Zip/Postal Code", 20),
            FieldDef(f"{prefix}Country", "string", f"{prefix} Country", 80)]


@dataclass(frozen=True)
class ObjectDef:
    name: str
    prefix: str
    fields: dict[str, FieldDef]
    children: dict[str, tuple[str, str]] = field(default_factory=dict)  # relationship -> (child, parent field)

    def describe(self) -> dict[str, Any]:
        base = f"/services/data/{API_VERSION}/sobjects/{self.name}"
        return {"name": self.name, "label": self.name, "keyPrefix": self.prefix, "custom": False,
                "createable": True, "updateable": True, "queryable": True, "retrieveable": True,
                "fields": [f.describe() for f in self.fields.values()],
                "childRelationships": [{"relationshipName": rel, "childSObject": child, "field": parent_field}
                                       for rel, (child, parent_field) in self.children.items()],
                "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}}


def _object(name: str, prefix: str, fields: Iterable[FieldDef], children: dict[str, tuple[str, str]] | None = None) -> ObjectDef:
    return ObjectDef(name, prefix, {f.name: f for f in fields}, children or {})


OBJECTS: dict[str, ObjectDef] = {o.name: o for o in (
    _object("Account", "001", [
        *_system_fields(),
        FieldDef("Name", "string", "Account Name", 255, required=True),
        FieldDef("AccountNumber", "string", "Account Number", 40),
        FieldDef("Type", "picklist", "Account Type", 255),
        FieldDef("Industry", "picklist", "Industry", 255),
        FieldDef("Phone", "phone", "Account Phone", 40),
        FieldDef("Website", "url", "Website", 255),
        *_address("Billing"), *_address("Shipping"),
        FieldDef("Description", "textarea", "Account Description", 32000),
        FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to="User"),
        FieldDef("CurrencyIsoCode", "picklist", "Account Currency", 3),
        FieldDef("Synchub_Id__c", "string", "Synchub Id", 64, external_id=True, unique=True),
        FieldDef("Tax_Id__c", "string", "Tax Id", 32),
        FieldDef("Email__c", "email", "Email", 80),
        FieldDef("Credit_Limit__c", "currency", "Credit Limit"),
        FieldDef("Payment_Terms__c", "string", "Payment Terms", 80),
        FieldDef("Status__c", "picklist", "Status", 255, values=("Prospect", "Active", "Inactive", "Blocked")),
    ]),
    _object("Opportunity", "006", [
        *_system_fields(),
        FieldDef("AccountId", "reference", "Account ID", 18, reference_to="Account"),
        FieldDef("Name", "string", "Name", 120, required=True),
        FieldDef("Description", "textarea", "Description", 32000),
        FieldDef("StageName", "picklist", "Stage", 255, required=True, values=STAGES),
        FieldDef("Amount", "currency", "Amount"),
        FieldDef("Probability", "percent", "Probability (%)"),
        FieldDef("CloseDate", "date", "Close Date", required=True),
        FieldDef("Type", "picklist", "Opportunity Type", 255),
        FieldDef("IsClosed", "boolean", "Closed", writable=False),
        FieldDef("IsWon", "boolean", "Won", writable=False),
        FieldDef("CurrencyIsoCode", "picklist", "Opportunity Currency", 3),
        FieldDef("OwnerId", "reference", "Owner ID", 18, reference_to="User"),
        FieldDef("Synchub_Id__c", "string", "Synchub Id", 64, external_id=True, unique=True),
    ], {"OpportunityLineItems": ("OpportunityLineItem", "OpportunityId")}),
    _object("OpportunityLineItem", "00k", [
        *_system_fields(),
        FieldDef("OpportunityId", "reference", "Opportunity ID", 18, required=True, reference_to="Opportunity"),
        FieldDef("Product2Id", "reference", "Product ID", 18, reference_to="Product2"),
        FieldDef("Name", "string", "Opportunity Product Name", 376, writable=False),
        FieldDef("ProductCode", "string", "Product Code", 255, writable=False),
        FieldDef("Quantity", "double", "Quantity", required=True),
        FieldDef("UnitPrice", "currency", "Sales Price", required=True),
        FieldDef("TotalPrice", "currency", "Total Price", writable=False),
        FieldDef("Description", "string", "Line Description", 255),
        FieldDef("CurrencyIsoCode", "picklist", "Currency", 3, writable=False),
    ]),
)}
PRODUCTS = {make_id("01t", n): product for n, product in enumerate(CATALOGUE, start=1)}  # Product2 Id -> product


# --- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer with Salesforce's error array: `[{"message", "errorCode", "fields"?}]`."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


# --- SOQL --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
""", re.VERBOSE)
_KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
                       "LIMIT", "NULLS", "FIRST", "LAST", "TRUE", "FALSE", "NULL", "GROUP", "HAVING", "OFFSET",
                       "INCLUDES", "EXCLUDES", "TYPEOF", "WITH", "FOR", "USING"})
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass
class Token:
    kind: str  # string, datetime, date, number, name, keyword, op, punct, end
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise malformed(f"unexpected token: '{text[position:position + 20].split()[0]}'")
        position = match.end()
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "space":
            continue
        if kind == "string":
            tokens.append(Token("string", raw, _unescape(raw[1:-1])))
        elif kind == "name" and raw.upper() in _KEYWORDS:
            tokens.append(Token("keyword", raw.upper()))
        else:
            tokens.append(Token(kind, raw))
    tokens.append(Token("end", "<EOF>"))
    return tokens


def _unescape(body: str) -> str:
    out, chars = [], iter(body)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            if nxt not in _ESCAPES:
                raise malformed(f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal.")
            out.append(_ESCAPES[nxt])
        else:
            out.append(char)
    return "".join(out)


Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class Query:
    obj: ObjectDef
    fields: list[str]
    subquery: tuple[str, list[str]] | None
    where: Predicate | None
    order: list[tuple[str, bool]]  # (field, descending)
    limit: int | None


class SoqlParser:
    """Recursive descent over the SOQL subset (see the module docstring)."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0

    # tokens

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.current
        self.position += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            return self.advance()
        return None

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.accept(kind, text)
        if token is None:
            raise self.unexpected()
        return token

    def unexpected(self) -> ApiError:
        return malformed(f"unexpected token: '{self.current.text}'")

    # grammar

    def query(self) -> Query:
        self.expect("keyword", "SELECT")
        selected, subqueries = self.select_list()
        self.expect("keyword", "FROM")
        obj = self.object_name()
        fields = [self.field_of(obj, name) for name in selected]
        subquery = None
        if len(subqueries) > 1:
            raise malformed("only one relationship subquery is supported by this sandbox")
        if subqueries:
            relationship, child_fields = subqueries[0]
            if relationship not in obj.children:
                raise ApiError(400, "INVALID_TYPE", f"Didn't understand relationship '{relationship}' in FROM part of "
                               f"query call. If you are attempting to use a custom relationship, be sure to append the "
                               f"'__r' after the custom relationship name.")
            child = OBJECTS[obj.children[relationship][0]]
            subquery = (relationship, [self.field_of(child, name) for name in child_fields])
        where = self.condition(obj) if self.accept("keyword", "WHERE") else None
        order: list[tuple[str, bool]] = []
        if self.accept("keyword", "ORDER"):
            self.expect("keyword", "BY")
            order = self.order_list(obj)
        limit = None
        if self.accept("keyword", "LIMIT"):
            token = self.expect("number")
            if "." in token.text or int(token.text) < 0:
                raise self.unexpected()
            limit = int(token.text)
        if self.current.kind != "end":
            raise self.unexpected()
        return Query(obj, fields, subquery, where, order, limit)

    def select_list(self) -> tuple[list[str], list[tuple[str, list[str]]]]:
        fields: list[str] = []
        subqueries: list[tuple[str, list[str]]] = []
        while True:
            if self.accept("punct", "("):
                self.expect("keyword", "SELECT")
                names = [self.expect("name").text]
                while self.accept("punct", ","):
                    names.append(self.expect("name").text)
                self.expect("keyword", "FROM")
                relationship = self.expect("name").text
                self.expect("punct", ")")
                subqueries.append((relationship, names))
            else:
                fields.append(self.expect("name").text)
            if not self.accept("punct", ","):
                return fields, subqueries

    def object_name(self) -> ObjectDef:
        token = self.expect("name")
        found = next((o for name, o in OBJECTS.items() if name.lower() == token.text.lower()), None)
        if found is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{token.text}' is not supported. If you are attempting "
                           f"to use a custom object, be sure to append the '__c' after the entity name.")
        return found

    @staticmethod
    def field_of(obj: ObjectDef, name: str) -> str:
        if "." in name:
            raise malformed(f"relationship fields such as '{name}' are not supported by this sandbox")
        found = next((f for f in obj.fields if f.lower() == name.lower()), None)
        if found is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'. If you are "
                           f"attempting to use a custom field, be sure to append the '__c' after the custom field name.")
        return found

    def order_list(self, obj: ObjectDef) -> list[tuple[str, bool]]:
        order = []
        while True:
            name = self.field_of(obj, self.expect("name").text)
            descending = False
            if self.accept("keyword", "DESC"):
                descending = True
            else:
                self.accept("keyword", "ASC")
            order.append((name, descending))
            if not self.accept("punct", ","):
                return order

    def condition(self, obj: ObjectDef) -> Predicate:
        parts = [self.conjunction(obj)]
        while self.accept("keyword", "OR"):
            parts.append(self.conjunction(obj))
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): any(p(r) for p in ps))

    def conjunction(self, obj: ObjectDef) -> Predicate:
        parts = [self.atom(obj)]
        while self.accept("keyword", "AND"):
            parts.append(self.atom(obj))
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): all(p(r) for p in ps))

    def atom(self, obj: ObjectDef) -> Predicate:
        if self.accept("punct", "("):
            inner = self.condition(obj)
            self.expect("punct", ")")
            return inner
        spec = obj.fields[self.field_of(obj, self.expect("name").text)]
        if self.accept("keyword", "IN"):
            self.expect("punct", "(")
            values = [self.literal(spec)]
            while self.accept("punct", ","):
                values.append(self.literal(spec))
            self.expect("punct", ")")
            wanted = frozenset(_fold(spec, v) for v in values)
            return lambda r: _fold(spec, r.get(spec.name)) in wanted
        if self.accept("keyword", "LIKE"):
            if spec.type not in TEXT_TYPES:
                raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on field '{spec.name}'")
            pattern = _like(str(self.expect("string").value))
            return lambda r: r.get(spec.name) is not None and pattern.fullmatch(str(r[spec.name])) is not None
        op = self.expect("op").text
        value = self.literal(spec)
        return _comparison(spec, "!=" if op == "<>" else op, value)

    def literal(self, spec: FieldDef) -> Any:
        token = self.advance()
        if token.kind == "keyword" and token.text == "NULL":
            return None
        expected = {"datetime": "datetime", "date": "date", "boolean": "keyword"}.get(spec.type, "string")
        if spec.type in NUMBER_TYPES:
            expected = "number"
        if token.kind != expected or (expected == "keyword" and token.text not in ("TRUE", "FALSE")):
            if token.kind in ("end", "punct", "op", "name") or (token.kind == "keyword" and token.text not in ("TRUE", "FALSE")):
                raise malformed(f"unexpected token: '{token.text}'")
            kind = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}.get(spec.type, "")
            hint = f"must be of type {kind} and should not be enclosed in quotes" if kind else "has the wrong type"
            if spec.type in NUMBER_TYPES:
                hint = "must be of type double and should not be enclosed in quotes"
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR",
                           f"value of filter criterion for field '{spec.name}' {hint}")
        if expected == "datetime":
            return sf_datetime(datetime.fromisoformat(token.text.replace("Z", "+00:00")))
        if expected == "number":
            return float(token.text)
        if expected == "keyword":
            return token.text == "TRUE"
        return token.value if token.kind == "string" else token.text


def _fold(spec: FieldDef, value: Any) -> Any:
    """Text compares without regard to case in SOQL, except ids."""
    if isinstance(value, str) and spec.type in TEXT_TYPES and spec.type not in CASE_SENSITIVE:
        return value.casefold()
    return value


def _like(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _comparison(spec: FieldDef, op: str, value: Any) -> Predicate:
    if value is None:
        if op not in ("=", "!="):
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on field '{spec.name}' with null")
        return (lambda r: r.get(spec.name) is None) if op == "=" else (lambda r: r.get(spec.name) is not None)
    compare, wanted, name = _COMPARE[op], _fold(spec, value), spec.name

    def predicate(record: dict[str, Any]) -> bool:
        stored = record.get(name)
        if stored is None:
            return op == "!="
        return compare(_fold(spec, stored), wanted)

    return predicate


def parse_soql(text: str) -> Query:
    return SoqlParser(text).query()


# --- the org -----------------------------------------------------------------------------------


@dataclass
class Cursor:
    """A query's result set, read page by page through `nextRecordsUrl`."""

    query: Query
    ids: list[str]
    batch: int


class Org:
    """The org's data, sessions and query cursors, behind one lock."""

    def __init__(self, options: SandboxOptions) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.by_key: dict[str, dict[str, str]] = {name: {} for name in OBJECTS}
        self.line_items: dict[str, list[str]] = {}  # Opportunity Id -> OpportunityLineItem Ids
        self.sequences = {name: itertools.count(1) for name in OBJECTS}
        self.notification_ids = itertools.count(1)
        self.tokens: dict[str, float] = {}
        self.token_lifetime = float(options.extra.get("token_lifetime", TOKEN_LIFETIME))
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.api_usage = 0
        self.kit: SandboxKit | None = None
        self._seed(options.records, options.seed, options.first)

    # ids and sessions

    def new_id(self, obj: str) -> str:
        return make_id(OBJECTS[obj].prefix, next(self.sequences[obj]))

    def issue_token(self) -> str:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(60)}"
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def check_session(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        with self.lock:
            expires = self.tokens.get(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        if expires is None or expires < time.monotonic():
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # seed

    def _seed(self, count: int, seed: int, first: int = 1) -> None:
        base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
        products = list(PRODUCTS.items())
        for company in companies(count, seed, first):
            stamp = sf_datetime(base + timedelta(seconds=company.number))
            account = self._insert("Account", _account_of(company), stamp)
            if company.number % 10 == 0:
                opportunity = self._insert("Opportunity", _opportunity_of(company, account), stamp)
                for line in range(1 + company.number % 3):
                    product_id, product = products[(company.number + line) % len(products)]
                    self._insert("OpportunityLineItem", {
                        "OpportunityId": opportunity["Id"], "Product2Id": product_id,
                        "Quantity": float(1 + (company.number * 7 + line) % 20),
                        "UnitPrice": product.price,
                    }, stamp)

    # records

    def _insert(self, obj: str, values: dict[str, Any], stamp: str) -> dict[str, Any]:
        """Store a new record (values already valid) with its system fields and derived values."""
        spec = OBJECTS[obj]
        record: dict[str, Any] = dict.fromkeys(spec.fields)
        record.update(values)
        record.update(Id=self.new_id(obj), IsDeleted=False, CreatedDate=stamp, CreatedById=USER_ID,
                      LastModifiedDate=stamp, LastModifiedById=USER_ID, SystemModstamp=stamp)
        if "OwnerId" in spec.fields and not record.get("OwnerId"):
            record["OwnerId"] = USER_ID
        if "CurrencyIsoCode" in spec.fields and not record.get("CurrencyIsoCode"):
            record["CurrencyIsoCode"] = "CNY"
        if obj == "OpportunityLineItem":
            parent = self.tables["Opportunity"][record["OpportunityId"]]
            record["CurrencyIsoCode"] = parent.get("CurrencyIsoCode")
            product = PRODUCTS.get(record.get("Product2Id") or "")
            record["Name"] = f"{parent['Name']} {product.name if product else 'Product'}"
            record["ProductCode"] = product.code if product else None
            self.line_items.setdefault(parent["Id"], []).append(record["Id"])
        _derive(obj, record)
        self.tables[obj][record["Id"]] = record
        if record.get("Synchub_Id__c"):
            self.by_key[obj][record["Synchub_Id__c"]] = record["Id"]
        return record

    def _update(self, obj: str, record: dict[str, Any], values: dict[str, Any], stamp: str) -> None:
        old_key = record.get("Synchub_Id__c")
        record.update(values)
        record.update(LastModifiedDate=stamp, LastModifiedById=USER_ID, SystemModstamp=stamp)
        _derive(obj, record)
        if old_key != record.get("Synchub_Id__c"):
            self.by_key[obj].pop(old_key, None)
            if record.get("Synchub_Id__c"):
                self.by_key[obj][record["Synchub_Id__c"]] = record["Id"]

    def save(self, obj: str, values: dict[str, Any], *, record_id: str | None = None, creating: bool) -> dict[str, Any]:
        """Validate and store one create or update (call with the lock held); ApiError if refused."""
        spec = OBJECTS[obj]
        current = self.tables[obj].get(record_id) if record_id else None
        if not creating and current is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        clean = validate(self, spec, values, current)
        stamp = now()
        if creating:
            return self._insert(obj, clean, stamp)
        assert current is not None
        self._update(obj, current, clean, stamp)
        return current

    # reads

    def render(self, obj: str, record: dict[str, Any], fields: Iterable[str] | None = None) -> dict[str, Any]:
        url = f"/services/data/{API_VERSION}/sobjects/{obj}/{record['Id']}"
        shown: dict[str, Any] = {"attributes": {"type": obj, "url": url}}
        for name in fields if fields is not None else OBJECTS[obj].fields:
            shown[name] = record.get(name)
        return shown

    def run(self, query: Query, batch: int, version: str) -> dict[str, Any]:
        with self.lock:
            table = self.tables[query.obj.name]
            rows = [r for r in table.values() if query.where is None or query.where(r)]
            for name, descending in reversed(query.order):
                rows.sort(key=_sort_key(query.obj.fields[name]), reverse=descending)
            if query.limit is not None:
                rows = rows[:query.limit]
            ids = [r["Id"] for r in rows]
            locator = "01g" + secrets.token_hex(6).upper()[:12] + "AAA"
            cursor = Cursor(query, ids, batch)
            if len(ids) > batch:
                self.cursors[locator] = cursor
                while len(self.cursors) > 200:
                    self.cursors.popitem(last=False)
            return self._page(locator, cursor, 0, version)

    def more(self, locator: str, offset: int, version: str) -> dict[str, Any]:
        with self.lock:
            cursor = self.cursors.get(locator)
            if cursor is None or not 0 <= offset < len(cursor.ids):
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(locator, cursor, offset, version)

    def _page(self, locator: str, cursor: Cursor, offset: int, version: str) -> dict[str, Any]:
        query = cursor.query
        obj = query.obj.name
        table = self.tables[obj]
        end = offset + cursor.batch
        records = []
        for record_id in cursor.ids[offset:end]:
            record = table.get(record_id)
            if record is None:
                continue
            shown = self.render(obj, record, query.fields)
            if query.subquery is not None:
                relationship, child_fields = query.subquery
                shown[relationship] = self._children(record["Id"], child_fields)
            records.append(shown)
        answer: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids), "records": records}
        if end < len(cursor.ids):
            answer["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{end}"
        return answer

    def _children(self, parent_id: str, fields: list[str]) -> dict[str, Any] | None:
        lines = [self.tables["OpportunityLineItem"][i] for i in self.line_items.get(parent_id, [])]
        if not lines:
            return None
        return {"totalSize": len(lines), "done": True,
                "records": [self.render("OpportunityLineItem", line, fields) for line in lines]}

    def seed_records(self, obj: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store records as they are, as if they had been typed in before the hub came: no API
        validation, no outbound messages, no faults. For tests and demos that need data the API
        would refuse today (a legacy e-mail address that is not one, a deal without an account)."""
        spec = _object_def(obj)
        with self.lock:
            for values in records:
                _known_fields(spec, values)
                parent = values.get("OpportunityId")
                if spec.name == "OpportunityLineItem" and parent not in self.tables["Opportunity"]:
                    raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OpportunityId"])
            stamp = now()
            return [self._insert(spec.name, dict(values), stamp) for values in records]

    def edit(self, obj: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a user would, stamped now, without the API's validation or faults."""
        spec = _object_def(obj)
        _known_fields(spec, values)
        with self.lock:
            record = self.tables[spec.name].get(_full_id(record_id))
            if record is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            self._update(spec.name, record, dict(values), now())
            return record

    def touch(self, obj: str, ids: list[str]) -> int:
        stamp = now()
        with self.lock:
            table = self.tables.get(obj, {})
            found = [table[i] for i in ids if i in table]
            for record in found:
                record.update(LastModifiedDate=stamp, SystemModstamp=stamp)
            return len(found)


def _sort_key(spec: FieldDef) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    """Nulls first when ascending (last when descending), text without regard to case."""
    def key(record: dict[str, Any]) -> tuple[int, Any]:
        value = record.get(spec.name)
        return (0, 0) if value is None else (1, _fold(spec, value))
    return key


def _derive(obj: str, record: dict[str, Any]) -> None:
    """Fields Salesforce computes: an opportunity's closed/won flags, a line's total."""
    if obj == "Opportunity":
        stage = record.get("StageName")
        record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
        record["IsWon"] = stage == "Closed Won"
        if record.get("Probability") is None:
            record["Probability"] = STAGE_PROBABILITY.get(stage or "")
    elif obj == "OpportunityLineItem":
        quantity, price = record.get("Quantity"), record.get("UnitPrice")
        record["TotalPrice"] = round(quantity * price, 2) if quantity is not None and price is not None else None


_CURRENCY_OF = {"CN": "CNY", "DE": "EUR", "FR": "EUR", "GB": "GBP", "US": "USD"}


def _account_of(company: Company) -> dict[str, Any]:
    return {
        "Name": company.name, "AccountNumber": f"CUST-{company.number:05d}", "Type": "Customer - Direct",
        "Industry": company.industry, "Phone": company.phone, "Website": company.website,
        "BillingStreet": company.street, "BillingCity": company.city, "BillingState": company.state,
        "BillingPostalCode": company.postal_code, "BillingCountry": company.country,
        "ShippingStreet": company.street if company.number % 2 else None,
        "ShippingCity": company.city if company.number % 2 else None,
        "ShippingState": company.state if company.number % 2 else None,
        "ShippingPostalCode": company.postal_code if company.number % 2 else None,
        "ShippingCountry": company.country if company.number % 2 else None,
        "CurrencyIsoCode": _CURRENCY_OF[company.country_code], "Tax_Id__c": company.tax_id,
        "Email__c": company.email, "Credit_Limit__c": float(50_000 * (1 + company.number % 10)),
        "Payment_Terms__c": "月结30天" if company.country_code == "CN" else "Net 30",
        "Status__c": "Active" if company.number % 5 else "Prospect",
    }


def _opportunity_of(company: Company, account: dict[str, Any]) -> dict[str, Any]:
    stage = STAGES[company.number % len(STAGES)]
    close = (datetime(2024, 1, 1) + timedelta(days=company.number % 365)).date().isoformat()
    return {"AccountId": account["Id"], "Name": f"{company.name} — {2024 + company.number % 2} 年度采购"
            if company.country_code == "CN" else f"{company.name} - Annual Supply {2024 + company.number % 2}",
            "StageName": stage, "CloseDate": close, "Type": "New Customer",
            "CurrencyIsoCode": account["CurrencyIsoCode"], "Amount": None}


# --- validation ----------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate(org: Org, spec: ObjectDef, values: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The values to store, or the first ApiError Salesforce would answer for them."""
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name == "attributes":
            continue
        found = spec.fields.get(name) or next((f for f in spec.fields.values() if f.name.lower() == name.lower()), None)
        if found is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}", [name])
        if not found.writable:
            raise ApiError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {found.name}. "
                           "Please check the security settings of this field and verify that it is read/write for "
                           "your profile or permission set.", [found.name])
        if found.name == "OpportunityId" and current is not None:
            raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: OpportunityId (cannot be changed)",
                           [found.name])
        clean[found.name] = _typed(found, value)
    merged = {**(current or {}), **clean}
    missing = [f.name for f in spec.fields.values() if f.required and merged.get(f.name) in (None, "")]
    if missing:
        raise ApiError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    for name in clean:
        field_spec = spec.fields[name]
        if field_spec.reference_to in ("Account", "Opportunity") and clean[name] is not None \
                and clean[name] not in org.tables[field_spec.reference_to]:
            raise ApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])
    key = clean.get("Synchub_Id__c")
    if key is not None:
        holder = org.by_key[spec.name].get(key)
        if holder is not None and (current is None or holder != current["Id"]):
            raise ApiError(400, "DUPLICATE_VALUE", f"duplicate value found: Synchub_Id__c duplicates value on record "
                           f"with id: {holder}", ["Synchub_Id__c"])
    return clean


def _typed(spec: FieldDef, value: Any) -> Any:
    """A JSON value as the field stores it; ApiError for a value the field cannot hold."""
    if value is None or (value == "" and spec.type != "boolean"):
        return None
    label = spec.label or spec.name
    if spec.type in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _bad_type(spec, value)
        try:
            return float(value)
        except ValueError:
            raise _bad_type(spec, value) from None
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise _bad_type(spec, value)
        return value
    if spec.type == "date":
        text = str(value)[:10]
        if not isinstance(value, str) or not _DATE.match(text):
            raise _bad_type(spec, value)
        return text
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise _bad_type(spec, value)
    if spec.length and len(value) > spec.length:
        raise ApiError(400, "STRING_TOO_LONG", f"{label}: data value too large: {value[:80]} (max length={spec.length})",
                       [spec.name])
    if spec.values and value not in spec.values:
        raise ApiError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"{label}: bad value for restricted picklist field: {value}", [spec.name])
    if spec.type == "email" and not _EMAIL.match(value):
        raise ApiError(400, "INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [spec.name])
    return value


def _bad_type(spec: FieldDef, value: Any) -> ApiError:
    return ApiError(400, "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{spec.label or spec.name}: value not of required type: {str(value)[:80]}", [spec.name])


# --- outbound messages ---------------------------------------------------------------------------


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return escape(str(value))


def notifications_envelope(base_url: str, notifications: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """An outbound message as Salesforce sends it: (notification id, object, record) each."""
    org15 = ORG_ID[:15]
    items = []
    for notification_id, obj, record in notifications:
        fields = "".join(f"<sf:{name}>{_xml_value(value)}</sf:{name}>"
                         for name, value in record.items() if name != "attributes" and value is not None)
        items.append(f"<Notification><Id>{notification_id}</Id><sObject xsi:type=\"sf:{obj}\" "
                     f"xmlns:sf=\"{webhook.SOBJECT}\">{fields}</sObject></Notification>")
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<soapenv:Envelope xmlns:soapenv="{webhook.SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="{webhook.XSI}">\n <soapenv:Body>\n'
        f'  <notifications xmlns="{webhook.OUTBOUND}">\n'
        f"   <OrganizationId>{ORG_ID}</OrganizationId>\n"
        f"   <ActionId>{ACTION_ID}</ActionId>\n"
        '   <SessionId xsi:nil="true"/>\n'
        f"   <EnterpriseUrl>{escape(base_url)}/services/Soap/c/60.0/{org15}</EnterpriseUrl>\n"
        f"   <PartnerUrl>{escape(base_url)}/services/Soap/u/60.0/{org15}</PartnerUrl>\n"
        + "".join(f"   {item}\n" for item in items)
        + "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n"
    )
    return text.encode("utf-8")


def _acknowledged(response: Any) -> bool:
    """Salesforce counts a delivery only when it reads `<Ack>true</Ack>` in a 200 answer."""
    if response.status_code != 200:
        return False
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return False
    ack = root.find(f".//{{{webhook.OUTBOUND}}}notificationsResponse/{{{webhook.OUTBOUND}}}Ack")
    return ack is not None and (ack.text or "").strip() == "true"


def notify(org: Org, base_url: str, obj: str, ids: list[str]) -> None:
    """Queue outbound messages for changed records, up to 100 notifications a message. Each
    attempt carries the records as they are then: Salesforce sends the latest data."""
    if org.kit is None or obj not in NOTIFY_OBJECTS or not ids:
        return
    for start in range(0, len(ids), NOTIFICATIONS_PER_MESSAGE):
        chunk = [(make_id("04l", next(org.notification_ids)), record_id)
                 for record_id in ids[start:start + NOTIFICATIONS_PER_MESSAGE]]

        def build(url: str, chunk: list[tuple[str, str]] = chunk) -> OutboundCall:
            with org.lock:
                current = [(nid, obj, dict(org.tables[obj][rid])) for nid, rid in chunk if rid in org.tables[obj]]
            body = notifications_envelope(base_url, current)
            return OutboundCall(url, body, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""',
                                            "User-Agent": "Salesforce"})

        org.kit.webhooks.send(f"{obj} {chunk[0][1]} (+{len(chunk) - 1})", build, _acknowledged)


# --- HTTP ----------------------------------------------------------------------------------------

_VERSION = re.compile(r"^v(\d+)\.0$")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json;charset=UTF-8")


def fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        return _json([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], 403)
    return _json([{"message": "Server is temporarily unavailable. Please try again later.",
                   "errorCode": "SERVER_UNAVAILABLE"}], 503)


class LimitInfo:
    """Adds `Sforce-Limit-Info: api-usage=n/limit` to every REST answer, as Salesforce does."""

    def __init__(self, app: ASGIApp, org: Org) -> None:
        self.app, self.org = app, org

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/services/data"):
            await self.app(scope, receive, send)
            return
        with self.org.lock:
            self.org.api_usage += 1
            usage = self.org.api_usage

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"sforce-limit-info", f"api-usage={usage}/{API_LIMIT}".encode())]
            await send(message)

        await self.app(scope, receive, with_header)


def _version(version: str) -> str:
    match = _VERSION.match(version)
    if match is None or not 20 <= int(match.group(1)) <= 61:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return version


def _object_def(name: str) -> ObjectDef:
    found = OBJECTS.get(name) or next((o for n, o in OBJECTS.items() if n.lower() == name.lower()), None)
    if found is None:
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return found


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON value") from None


def _record_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value")
    return body


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if not match:
        return PAGE_DEFAULT
    return max(PAGE_MIN, min(PAGE_MAX, int(match.group(1))))


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _write_result(record_id: str | None, error: ApiError | None, created: bool | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record_id, "success": error is None,
                              "errors": [] if error is None else [{"statusCode": error.code, "message": error.message,
                                                                    "fields": error.fields or []}]}
    if created is not None:
        result["created"] = created if error is None else False
    return result


def _routes(app: FastAPI, org: Org) -> None:  # noqa: C901 - one place lists the whole API
    data = "/services/data/{version}"

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type", "")
        if grant not in ("client_credentials", "password"):
            return _json({"error": "unsupported_grant_type", "error_description": "grant type not supported"}, 400)
        if not (hmac.compare_digest(form.get("client_id", ""), CLIENT_ID)
                and hmac.compare_digest(form.get("client_secret", ""), CLIENT_SECRET)):
            return _json({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        if grant == "password" and not (
                hmac.compare_digest(form.get("username", ""), USERNAME)
                and form.get("password", "") in (PASSWORD, PASSWORD + SECURITY_TOKEN)):
            return _json({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
        base = _base_url(request)
        identity = f"{base}/id/{ORG_ID}/{USER_ID}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), (identity + issued_at).encode(),
                                              hashlib.sha256).digest()).decode()
        return _json({"access_token": org.issue_token(), "instance_url": base, "id": identity, "token_type": "Bearer",
                      "issued_at": issued_at, "signature": signature, "scope": "api"})

    @app.get("/services/data")
    @app.get("/services/data/")
    async def versions() -> Response:
        return _json([{"label": "Spring '24", "url": f"/services/data/{API_VERSION}", "version": "60.0"}])

    @app.get(data + "/query")
    @app.get(data + "/query/")
    async def query(request: Request, version: str) -> Response:
        _version(version)
        org.check_session(request)
        text = request.query_params.get("q")
        if not text:
            raise malformed("unexpected token: '<EOF>'")
        return _json(org.run(parse_soql(text), _batch_size(request), version))

    @app.get(data + "/query/{locator}")
    async def query_more(request: Request, version: str, locator: str) -> Response:
        _version(version)
        org.check_session(request)
        name, _, offset = locator.rpartition("-")
        if not name or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _json(org.more(name, int(offset), version))

    @app.get(data + "/sobjects/{obj}/describe")
    @app.get(data + "/sobjects/{obj}/describe/")
    async def describe(request: Request, version: str, obj: str) -> Response:
        _version(version)
        org.check_session(request)
        return _json(_object_def(obj).describe())

    @app.post(data + "/sobjects/{obj}")
    @app.post(data + "/sobjects/{obj}/")
    async def create(request: Request, version: str, obj: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        values = _record_body(await _body(request))
        with org.lock:
            record = org.save(spec.name, values, creating=True)
        notify(org, _base_url(request), spec.name, [record["Id"]])
        return _json({"id": record["Id"], "success": True, "errors": []}, 201)

    @app.get(data + "/sobjects/{obj}/{record_id}")
    async def read(request: Request, version: str, obj: str, record_id: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        fields = request.query_params.get("fields")
        with org.lock:
            record = org.tables[spec.name].get(_full_id(record_id))
            if record is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            names = [SoqlParser.field_of(spec, f.strip()) for f in fields.split(",")] if fields else None
            return _json(org.render(spec.name, record, names))

    @app.patch(data + "/sobjects/{obj}/{record_id}")
    async def update(request: Request, version: str, obj: str, record_id: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        values = _record_body(await _body(request))
        with org.lock:
            record = org.save(spec.name, values, record_id=_full_id(record_id), creating=False)
        notify(org, _base_url(request), spec.name, [record["Id"]])
        return Response(status_code=204)

    @app.get(data + "/sobjects/{obj}/{key_field}/{value}")
    async def read_by_key(request: Request, version: str, obj: str, key_field: str, value: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        _external_id_field(spec, key_field)
        with org.lock:
            record_id = org.by_key[spec.name].get(value)
            if record_id is None:
                raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {value}")
            return _json(org.render(spec.name, org.tables[spec.name][record_id]))

    @app.patch(data + "/sobjects/{obj}/{key_field}/{value}")
    async def upsert(request: Request, version: str, obj: str, key_field: str, value: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        field_name = _external_id_field(spec, key_field)
        values = _record_body(await _body(request))
        if field_name in values and values[field_name] != value:
            raise ApiError(400, "INVALID_FIELD", f"The value of the external ID field {field_name} in the URL and "
                           "in the request body must match", [field_name])
        with org.lock:
            record, created = _upsert_one(org, spec, field_name, value, values)
        notify(org, _base_url(request), spec.name, [record["Id"]])
        return _json({"id": record["Id"], "success": True, "errors": [], "created": created}, 201 if created else 200)

    @app.get(data + "/composite/sobjects/{obj}")
    async def retrieve_many(request: Request, version: str, obj: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        fields = [f for f in request.query_params.get("fields", "").split(",") if f]
        if not ids or not fields:
            raise ApiError(400, "MISSING_ARGUMENT", "ids and fields are required")
        if len(ids) > COLLECTION_LIMIT:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records")
        names = [SoqlParser.field_of(spec, f.strip()) for f in fields]
        with org.lock:
            table = org.tables[spec.name]
            found = [table.get(_full_id(i)) for i in ids]
            return _json([org.render(spec.name, r, names) if r is not None else None for r in found])

    @app.post(data + "/composite/sobjects")
    async def create_many(request: Request, version: str) -> Response:
        return await _collection(request, version, creating=True)

    @app.patch(data + "/composite/sobjects")
    async def update_many(request: Request, version: str) -> Response:
        return await _collection(request, version, creating=False)

    async def _collection(request: Request, version: str, creating: bool) -> Response:
        _version(version)
        org.check_session(request)
        records, all_or_none = _collection_body(await _body(request))
        results: list[dict[str, Any]] = []
        changed: dict[str, list[str]] = {}
        with org.lock:
            for item in records:
                obj = str((item.get("attributes") or {}).get("type") or "")
                values = {k: v for k, v in item.items() if k not in ("attributes", "Id")}
                try:
                    spec = _object_def(obj) if obj else None
                    if spec is None:
                        raise ApiError(400, "INVALID_TYPE", "Must specify a type in attributes")
                    record_id = None if creating else _full_id(str(item.get("Id") or ""))
                    if not creating and not record_id:
                        raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                    if all_or_none and any(not r["success"] for r in results):
                        raise ApiError(400, "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all "
                                       "records were valid and the request was using AllOrNone header")
                    record = org.save(spec.name, values, record_id=record_id, creating=creating)
                    results.append(_write_result(record["Id"], None))
                    changed.setdefault(spec.name, []).append(record["Id"])
                except ApiError as exc:
                    results.append(_write_result(item.get("Id") if not creating else None, exc))
        for obj, ids in changed.items():
            notify(org, _base_url(request), obj, ids)
        return _json(results)

    @app.patch(data + "/composite/sobjects/{obj}/{key_field}")
    async def upsert_many(request: Request, version: str, obj: str, key_field: str) -> Response:
        _version(version)
        org.check_session(request)
        spec = _object_def(obj)
        field_name = _external_id_field(spec, key_field)
        records, _ = _collection_body(await _body(request))
        results: list[dict[str, Any]] = []
        changed: list[str] = []
        with org.lock:
            for item in records:
                values = {k: v for k, v in item.items() if k != "attributes"}
                try:
                    value = values.pop(field_name, None)
                    if value in (None, ""):
                        raise ApiError(400, "MISSING_ARGUMENT", f"{field_name} not specified", [field_name])
                    record, created = _upsert_one(org, spec, field_name, str(value), values)
                    results.append(_write_result(record["Id"], None, created))
                    changed.append(record["Id"])
                except ApiError as exc:
                    results.append(_write_result(None, exc, False))
        notify(org, _base_url(request), spec.name, changed)
        return _json(results)

    # --- control routes ------------------------------------------------------------------

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens() -> dict[str, Any]:
        org.expire_tokens()
        return {"expired": True}

    @app.post("/_sandbox/touch")
    async def touch(request: Request) -> dict[str, Any]:
        body = await _body(request) or {}
        return {"touched": org.touch(str(body.get("object", "")), [str(i) for i in body.get("ids") or []])}

    @app.get("/_sandbox/records/{obj}")
    async def records(obj: str) -> Response:
        spec = _object_def(obj)
        with org.lock:
            return _json({"records": [org.render(spec.name, r) for r in org.tables[spec.name].values()]})

    @app.post("/_sandbox/records/{obj}")
    async def seed_records(request: Request, obj: str) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list) \
                or not all(isinstance(r, dict) for r in body["records"]):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected an object with a records array of objects")
        stored = org.seed_records(obj, body["records"])
        with org.lock:
            return _json({"records": [org.render(_object_def(obj).name, r) for r in stored]}, 201)

    @app.patch("/_sandbox/records/{obj}/{record_id}")
    async def edit_record(request: Request, obj: str, record_id: str) -> Response:
        record = org.edit(obj, record_id, _record_body(await _body(request)))
        with org.lock:
            return _json(org.render(_object_def(obj).name, record))


def _known_fields(spec: ObjectDef, values: dict[str, Any]) -> None:
    """The back door stores any field the object has, except the ones Salesforce itself sets."""
    system = {f.name for f in _system_fields()}
    for name in values:
        if name not in spec.fields or name in system:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                           if name not in spec.fields else f"{name} is set by Salesforce", [name])


def _full_id(record_id: str) -> str:
    """Ids arrive as 15 or 18 characters; records are kept under the 18."""
    return id18(record_id) if len(record_id) == 15 else record_id


def _external_id_field(spec: ObjectDef, name: str) -> str:
    found = next((f for f in spec.fields.values() if f.name.lower() == name.lower()), None)
    if found is None or not found.external_id:
        raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
    return found.name


def _upsert_one(org: Org, spec: ObjectDef, field_name: str, value: str, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    values = {k: v for k, v in values.items() if k != "Id"}
    record_id = org.by_key[spec.name].get(value)
    if record_id is None:
        return org.save(spec.name, {**values, field_name: value}, creating=True), True
    return org.save(spec.name, values, record_id=record_id, creating=False), False


def _collection_body(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "Expected an object with a records array")
    records = body["records"]
    if len(records) > COLLECTION_LIMIT:
        raise ApiError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records")
    if not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be an object")
    return records, bool(body.get("allOrNone", False))


# --- the app -------------------------------------------------------------------------------------


def create_app(options: SandboxOptions) -> FastAPI:
    """A Salesforce org's REST API seeded with `options.records` Accounts (see the module docstring)."""
    org = Org(options)
    kit = SandboxKit("salesforce", options, fault_answer, webhook_delays=RETRY_DELAYS)
    org.kit = kit
    app = kit.create_app("Salesforce sandbox")
    app.state.org = org

    @app.exception_handler(ApiError)
    async def vendor_error(request: Request, exc: ApiError) -> Response:
        return _json(exc.body(), exc.status)

    _routes(app, org)
    app.add_middleware(LimitInfo, org=org)
    return app


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry of a hub config pointing at this sandbox (sandbox-only credentials)."""
    return {"connector": "salesforce", "base_url": base_url,
            "auth": {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            "webhook": {"organization_id": ORG_ID},
            "options": {"api_version": API_VERSION}}
