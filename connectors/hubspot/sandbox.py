"""A HubSpot portal in memory, speaking the CRM v3 wire protocol (and the v4 associations API).

What a client sees is HubSpot's: numeric string ids, every property value a string (or null),
`createdAt`/`updatedAt` and datetime properties in ISO 8601 with milliseconds, the list
endpoint's `after` paging, search with filter groups, one sort, `after` offsets, `total` and
the 10,000-result cap, batch reads and writes of at most 100 inputs answered 200/201 or 207
with `errors`, HubSpot's error bodies (`status`, `message`, `correlationId`, `category`), the
properties API, deal/line item/company associations, a unique `synchub_id` property, and
bearer auth with either the private-app token or OAuth access tokens that expire after 30
minutes (`POST /oauth/v1/token`, grant_type=refresh_token). Changes go out as webhooks: a JSON
array of events signed v3 (and v1) with the app's client secret, retried on HubSpot's schedule.

Endpoints are `async`: every answer is a few dict operations under one lock, cheaper than a
hop to the thread pool. A search scans the table, which is fast enough for the 10,000-record
benchmarks.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from connectors.hubspot import webhook as hooks
from connectors.sandbox import SandboxKit, SandboxOptions, seed
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.webhooks import OutboundCall

PORTAL_ID = 24681357
APP_ID = 1357911
CLIENT_ID = "synchub-sandbox-client"
CLIENT_SECRET = "sandbox-only-client-secret"  # the app's secret: OAuth and webhook signatures
REFRESH_TOKEN = "sandbox-only-refresh-token"
PRIVATE_APP_TOKEN = "pat-na1-sandbox-only-private-app-token"
TOKEN_LIFETIME = 1800
SEARCH_CAP = 10_000
MAX_INPUTS = 100
MAX_LIMIT = 100
# HubSpot retries a failed webhook up to 10 times over about a day, backing off.
WEBHOOK_DELAYS = (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0, 7680.0, 15360.0, 30720.0)
SUBSCRIPTION_IDS = {"companies": 1_100_201, "contacts": 1_100_202, "deals": 1_100_203, "line_items": 1_100_204,
                    "products": 1_100_205}
SEED_EPOCH_MS = 1672531200000  # 2023-01-01T00:00:00Z: seeded records were made in the past

# --- object types and properties -----------------------------------------------------------

TYPES = {"company": "companies", "companies": "companies", "0-2": "companies",
         "contact": "contacts", "contacts": "contacts", "0-1": "contacts",
         "deal": "deals", "deals": "deals", "0-3": "deals",
         "line_item": "line_items", "line_items": "line_items", "0-8": "line_items",
         "product": "products", "products": "products", "0-7": "products"}
SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal", "line_items": "line_item",
            "products": "product"}
ASSOCIATION_TYPE_IDS = {("deals", "line_items"): 19, ("line_items", "deals"): 20, ("deals", "companies"): 5,
                        ("companies", "deals"): 6, ("contacts", "companies"): 1, ("companies", "contacts"): 2,
                        ("deals", "contacts"): 3, ("contacts", "deals"): 4}
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost")
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                    "customer", "evangelist", "other")


@dataclass(frozen=True)
class Prop:
    """One property definition, as the properties API describes it."""

    name: str
    type: str = "string"         # string, number, datetime, enumeration
    read_only: bool = False
    unique: bool = False
    options: tuple[str, ...] = ()

    def as_json(self, obj: str) -> dict[str, Any]:
        field_type = {"number": "number", "datetime": "date", "enumeration": "select"}.get(self.type, "text")
        return {"name": self.name, "label": self.name.replace("_", " ").title(), "type": self.type,
                "fieldType": field_type, "groupName": f"{SINGULAR[obj]}information", "description": "",
                "options": [{"label": o, "value": o, "displayOrder": i, "hidden": False}
                            for i, o in enumerate(self.options)],
                "hasUniqueValue": self.unique, "hidden": False, "formField": not self.read_only,
                "calculated": False, "externalOptions": False, "displayOrder": -1, "archived": False,
                "modificationMetadata": {"archivable": not self.read_only, "readOnlyValue": self.read_only,
                                         "readOnlyDefinition": True},
                "createdAt": "2023-01-01T00:00:00.000Z", "updatedAt": "2023-01-01T00:00:00.000Z"}


def _props(*defs: Prop | str) -> dict[str, Prop]:
    found = {(d if isinstance(d, Prop) else Prop(d)).name: d if isinstance(d, Prop) else Prop(d) for d in defs}
    return found


_SYSTEM = (Prop("createdate", "datetime", read_only=True), Prop("hs_object_id", "number", read_only=True))
PROPERTIES: dict[str, dict[str, Prop]] = {
    "companies": _props(
        "name", "domain", "website", "phone", "address", "address2", "city", "state", "zip", "country",
        "industry", Prop("lifecyclestage", "enumeration", options=LIFECYCLE_STAGES), "description",
        "hubspot_owner_id", Prop("annualrevenue", "number"), "tax_id", "email", Prop("credit_limit", "number"),
        "payment_terms", Prop("synchub_id", unique=True), *_SYSTEM, Prop("hs_lastmodifieddate", "datetime", True)),
    "contacts": _props(
        "firstname", "lastname", "email", "phone", "mobilephone", "company", "jobtitle",
        Prop("lifecyclestage", "enumeration", options=LIFECYCLE_STAGES), Prop("synchub_id", unique=True),
        *_SYSTEM, Prop("lastmodifieddate", "datetime", True)),
    "deals": _props(
        "dealname", Prop("amount", "number"), Prop("dealstage", "enumeration", options=DEAL_STAGES), "pipeline",
        Prop("closedate", "datetime"), "deal_currency_code", "description", "hubspot_owner_id",
        Prop("synchub_id", unique=True), *_SYSTEM, Prop("hs_lastmodifieddate", "datetime", True)),
    "line_items": _props(
        "name", Prop("quantity", "number"), Prop("price", "number"), Prop("amount", "number"), "hs_product_id",
        "hs_sku", Prop("hs_position_on_quote", "number"), Prop("hs_discount_percentage", "number"),
        Prop("hs_tax_rate", "number"), "description", *_SYSTEM, Prop("hs_lastmodifieddate", "datetime", True)),
    "products": _props(
        "name", Prop("price", "number"), "hs_sku", "description", *_SYSTEM,
        Prop("hs_lastmodifieddate", "datetime", True)),
}
DEFAULT_PROPERTIES = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "deals": ("dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "hs_lastmodifieddate",
              "hs_object_id"),
    "line_items": ("name", "quantity", "price", "amount", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "products": ("name", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
}


def modified_property(obj: str) -> str:
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


# --- values --------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    """HubSpot's datetime form: UTC with milliseconds and a Z (gmtime: seeding calls this a lot)."""
    t = time.gmtime(ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"


@lru_cache(maxsize=65536)
def to_ms(value: str) -> int | None:
    """A datetime value (epoch ms or ISO 8601) in milliseconds; None when it is neither."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(round(moment.timestamp() * 1000))


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Invalid(Exception):
    """A write HubSpot refuses: its answer body and status."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category,
            **extra}


def _validation(problems: list[dict[str, Any]]) -> Invalid:
    text = "Property values were not valid: " + json.dumps(problems, ensure_ascii=False)
    return Invalid(400, error_body(text, "VALIDATION_ERROR", errors=[
        {"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}} for p in problems]))


def _clean(obj: str, given: Any, allow_read_only: bool = False) -> dict[str, str | None]:
    """Property values as HubSpot stores them (strings), or `Invalid` listing every bad one."""
    if not isinstance(given, dict):
        raise Invalid(400, error_body("Invalid input JSON: properties must be an object", "VALIDATION_ERROR"))
    known = PROPERTIES[obj]
    problems: list[dict[str, Any]] = []
    clean: dict[str, str | None] = {}
    for name, raw in given.items():
        prop = known.get(name)
        if prop is None:
            problems.append({"isValid": False, "message": f'Property "{name}" does not exist',
                             "error": "PROPERTY_DOESNT_EXIST", "name": name})
            continue
        if prop.read_only and not allow_read_only:
            problems.append({"isValid": False, "message": f'"{name}" is a read only property; its value cannot be set.',
                             "error": "READ_ONLY_VALUE", "name": name})
            continue
        if raw is None or raw == "":
            clean[name] = None
            continue
        if isinstance(raw, (dict, list)):
            problems.append({"isValid": False, "message": f"{json.dumps(raw)} is not a valid value for {name}",
                             "error": "INVALID_VALUE", "name": name})
            continue
        text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        value, problem = _typed(prop, text)
        if problem:
            problems.append({"isValid": False, "message": problem[0], "error": problem[1], "name": name})
        else:
            clean[name] = value
    if problems:
        raise _validation(problems)
    return clean


def _typed(prop: Prop, text: str) -> tuple[str | None, tuple[str, str] | None]:
    if prop.type == "number":
        number = _number(text)
        return (None, (f"{text} was not a valid number.", "INVALID_DECIMAL")) if number is None else (_plain(number), None)
    if prop.type == "datetime":
        ms = to_ms(text)
        return (None, (f"{text} was not a valid date.", "INVALID_DATE")) if ms is None else (iso(ms), None)
    if prop.type == "enumeration" and text not in prop.options:
        allowed = ", ".join(f"[{o}]" for o in prop.options)
        return None, (f"{text} was not one of the allowed options: {allowed}", "INVALID_OPTION")
    return text, None


# --- state ---------------------------------------------------------------------------------


class Table:
    """The records of one object type, their modification times, and unique-value indexes."""

    def __init__(self, obj: str) -> None:
        self.obj = obj
        self.records: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, int] = {}
        self.unique: dict[str, dict[str, str]] = {name: {} for name, p in PROPERTIES[obj].items() if p.unique}
        self._by_modified: list[tuple[int, int, str]] | None = None

    def changed(self, rid: str, stamp: int) -> None:
        self.modified[rid] = stamp
        self._by_modified = None

    def by_modified(self) -> list[tuple[int, int, str]]:
        """(modified ms, id) ascending, kept until the next write: incremental syncs search this way."""
        if self._by_modified is None:
            self._by_modified = sorted((ms, int(rid), rid) for rid, ms in self.modified.items())
        return self._by_modified

    def by_property(self, name: str, value: str) -> str | None:
        if name in self.unique:
            return self.unique[name].get(value)
        if name == "hs_object_id":
            return value if value in self.records else None
        return next((rid for rid, r in self.records.items() if r["properties"].get(name) == value), None)


Event = dict[str, Any]


class Portal:
    """One portal's state behind one lock (FastAPI may run calls on several threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tables = {obj: Table(obj) for obj in PROPERTIES}
        self.links: dict[tuple[str, str, str], dict[str, None]] = {}  # (from type, from id, to type) -> ids
        self.ids = itertools.count(18_234_560_001)
        self.tokens: dict[str, float] = {}  # OAuth access token -> expiry (monotonic)
        self.event_ids = itertools.count(4_000_000_001)

    # writes (callers hold the lock)

    def create(self, obj: str, properties: dict[str, str | None], stamp: int, events: list[Event] | None,
               modified: int | None = None) -> dict[str, Any]:
        table = self.tables[obj]
        self._check_unique(table, properties, None)
        rid = str(next(self.ids))
        modified = stamp if modified is None else modified
        created_text, modified_text = iso(stamp), iso(modified)
        values = dict.fromkeys(DEFAULT_PROPERTIES[obj])
        values.update(properties)
        values.update(createdate=created_text, hs_object_id=rid)
        values[modified_property(obj)] = modified_text
        record = {"id": rid, "properties": values, "createdAt": created_text, "updatedAt": modified_text,
                  "archived": False}
        table.records[rid] = record
        table.changed(rid, modified)
        self._index(table, rid, {}, values)
        if events is not None:
            events.append(self._event(obj, rid, "creation", stamp))
        return record

    def update(self, obj: str, rid: str, properties: dict[str, str | None], stamp: int,
               events: list[Event]) -> dict[str, Any]:
        table = self.tables[obj]
        record = table.records[rid]
        self._check_unique(table, properties, rid)
        old = dict(record["properties"])
        record["properties"].update(properties)
        record["properties"][modified_property(obj)] = iso(stamp)
        record["updatedAt"] = iso(stamp)
        table.changed(rid, stamp)
        self._index(table, rid, old, record["properties"])
        for name, value in properties.items():
            if old.get(name) != value:
                events.append(self._event(obj, rid, "propertyChange", stamp, name, value))
        return record

    def touch(self, obj: str, ids: Iterable[str], stamp: int) -> int:
        table = self.tables[obj]
        count = 0
        for rid in ids:
            record = table.records.get(str(rid))
            if record is None:
                continue
            record["properties"][modified_property(obj)] = iso(stamp)
            record["updatedAt"] = iso(stamp)
            table.changed(str(rid), stamp)
            count += 1
        return count

    def associate(self, from_obj: str, from_id: str, to_obj: str, to_id: str) -> None:
        self.links.setdefault((from_obj, from_id, to_obj), {})[to_id] = None
        self.links.setdefault((to_obj, to_id, from_obj), {})[from_id] = None

    def associated(self, obj: str, rid: str, to_obj: str) -> list[str]:
        return list(self.links.get((obj, rid, to_obj), ()))

    def _check_unique(self, table: Table, properties: dict[str, str | None], rid: str | None) -> None:
        for name, index in table.unique.items():
            value = properties.get(name)
            holder = index.get(value) if value is not None else None
            if holder is not None and holder != rid:
                raise Invalid(409, error_body(
                    f"A {SINGULAR[table.obj]} with {name} \"{value}\" already exists (id {holder}): "
                    f"{name} requires unique values.", "CONFLICT", context={"id": [holder], "propertyName": [name]}))

    @staticmethod
    def _index(table: Table, rid: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for name, index in table.unique.items():
            if old.get(name) is not None and old.get(name) != new.get(name):
                index.pop(old[name], None)
            if new.get(name) is not None:
                index[new[name]] = rid

    def _event(self, obj: str, rid: str, kind: str, stamp: int, name: str | None = None,
               value: str | None = None) -> Event:
        event: Event = {"eventId": next(self.event_ids), "subscriptionId": SUBSCRIPTION_IDS[obj],
                        "portalId": PORTAL_ID, "appId": APP_ID, "occurredAt": stamp,
                        "subscriptionType": f"{SINGULAR[obj]}.{kind}", "attemptNumber": 0,
                        "objectId": int(rid), "changeFlag": "NEW" if kind == "creation" else None,
                        "changeSource": "INTEGRATION"}
        if name is not None:
            event.update(propertyName=name, propertyValue=value if value is not None else "")
        if event["changeFlag"] is None:
            del event["changeFlag"]
        return event


# --- rendering -----------------------------------------------------------------------------


def render(portal: Portal, obj: str, record: dict[str, Any], properties: list[str] | None,
           associations: list[str] | None = None) -> dict[str, Any]:
    values = record["properties"]
    names = properties if properties else DEFAULT_PROPERTIES[obj]
    out: dict[str, Any] = {"id": record["id"], "properties": {n: values.get(n) for n in names if n in PROPERTIES[obj]},
                           "createdAt": record["createdAt"], "updatedAt": record["updatedAt"], "archived": False}
    if associations:
        found = {}
        for to_obj in associations:
            ids = portal.associated(obj, record["id"], to_obj)
            if ids:
                kind = f"{SINGULAR[obj]}_to_{SINGULAR[to_obj]}"
                found[to_obj] = {"results": [{"id": i, "type": kind} for i in ids]}
        if found:
            out["associations"] = found
    return out


def _csv(values: list[str]) -> list[str]:
    """A list query parameter, given comma-separated or repeated (HubSpot takes both)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _batch_answer(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str,
                  ok_status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                            "completedAt": iso(now_ms())}
    if errors:
        body.update(errors=errors, numErrors=len(errors))
        return JSONResponse(body, status_code=207)
    return JSONResponse(body, status_code=ok_status)


# --- search --------------------------------------------------------------------------------

Predicate = Callable[[str, dict[str, Any]], bool]


def _value_of(table: Table, rid: str, record: dict[str, Any], name: str) -> Any:
    """A property in comparable form: ms for datetimes, a number for numbers, else the text."""
    if name == modified_property(table.obj):
        return table.modified[rid]
    raw = record["properties"].get(name)
    if raw is None:
        return None
    prop = PROPERTIES[table.obj].get(name)
    kind = prop.type if prop else "string"
    if kind == "datetime":
        return to_ms(raw)
    if kind == "number":
        number = _number(raw)
        return None if number is None else float(number)
    return raw.lower()


def _operand(table: Table, name: str, value: Any) -> Any:
    prop = PROPERTIES[table.obj].get(name)
    kind = prop.type if prop else "string"
    text = "" if value is None else str(value)
    if kind == "datetime":
        return to_ms(text)
    if kind == "number":
        number = _number(text)
        return None if number is None else float(number)
    return text.lower()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a is not None and a == b,
    "NEQ": lambda a, b: a != b,
    "GT": lambda a, b: a is not None and b is not None and a > b,
    "GTE": lambda a, b: a is not None and b is not None and a >= b,
    "LT": lambda a, b: a is not None and b is not None and a < b,
    "LTE": lambda a, b: a is not None and b is not None and a <= b,
}


def _filter(table: Table, spec: Any) -> Predicate:
    if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
        raise Invalid(400, error_body("Invalid input JSON: a filter needs propertyName and operator", "VALIDATION_ERROR"))
    name, operator = spec["propertyName"], str(spec.get("operator", "EQ"))
    if name not in PROPERTIES[table.obj]:
        raise Invalid(400, error_body(f"There was a problem with the request: property {name} does not exist",
                                      "VALIDATION_ERROR"))
    if operator in _COMPARE:
        operand = _operand(table, name, spec.get("value"))
        compare = _COMPARE[operator]
        if name == modified_property(table.obj):  # the incremental-sync filter: no parsing per record
            modified = table.modified
            return lambda rid, record: compare(modified[rid], operand)
        return lambda rid, record: compare(_value_of(table, rid, record, name), operand)
    if operator in ("IN", "NOT_IN"):
        values = {_operand(table, name, v) for v in spec.get("values") or []}
        inside = operator == "IN"
        return lambda rid, record: (_value_of(table, rid, record, name) in values) == inside
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        wanted = operator == "HAS_PROPERTY"
        return lambda rid, record: (_value_of(table, rid, record, name) is not None) == wanted
    raise Invalid(400, error_body(f"Unsupported filter operator: {operator}", "VALIDATION_ERROR"))


def _is_sorted_by_modified(table: Table, sorts: list[Any]) -> bool:
    return (len(sorts) == 1 and isinstance(sorts[0], dict) and sorts[0].get("propertyName") == modified_property(table.obj)
            and str(sorts[0].get("direction", "ASCENDING")).upper() == "ASCENDING")


def _modified_since(table: Table, filters: list[list[Any]], sorts: list[Any]) -> list[str] | None:
    """The incremental-sync search (one GTE/GT filter on the modified time, sorted by it,
    ascending) answered from the table's sorted index; None for any other search."""
    if len(filters) != 1 or len(filters[0]) != 1 or not _is_sorted_by_modified(table, sorts):
        return None
    only = filters[0][0]
    if only.get("propertyName") != modified_property(table.obj) or only.get("operator") not in ("GTE", "GT"):
        return None
    since = to_ms(str(only.get("value", "")))
    if since is None:
        return None
    index = table.by_modified()
    probe = (since, -1, "") if only["operator"] == "GTE" else (since + 1, -1, "")
    return [rid for _, _, rid in index[bisect.bisect_left(index, probe):]]


def _sorted(table: Table, matched: list[str], sorts: list[Any]) -> list[str]:
    """By the one sort (records without the property last, ties by id), else by id."""
    if not sorts:
        return sorted(matched, key=int)
    sort = sorts[0] if isinstance(sorts[0], dict) else {"propertyName": str(sorts[0])}
    name = sort.get("propertyName", "hs_object_id")
    descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
    records = table.records
    keyed = [(_value_of(table, rid, records[rid], name), int(rid), rid) for rid in matched]
    present = sorted((k for k in keyed if k[0] is not None), reverse=descending)
    absent = sorted((k[1], k[2]) for k in keyed if k[0] is None)
    return [k[2] for k in present] + [k[1] for k in absent]


def search(portal: Portal, obj: str, body: dict[str, Any]) -> dict[str, Any]:
    table = portal.tables[obj]
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= MAX_LIMIT:
        raise Invalid(400, error_body(f"Invalid input JSON on line 1: limit must be between 1 and {MAX_LIMIT}, "
                                      f"got {limit}", "VALIDATION_ERROR"))
    try:
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise Invalid(400, error_body("Invalid input JSON: after must be a number", "VALIDATION_ERROR")) from None
    if after >= SEARCH_CAP:
        raise Invalid(400, error_body(f"There was a problem with the request: the search API returns at most "
                                      f"{SEARCH_CAP} results; narrow the filters instead of paging further",
                                      "VALIDATION_ERROR"))
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise Invalid(400, error_body("Only one sort is supported.", "VALIDATION_ERROR"))
    filters = [(group or {}).get("filters") or [] for group in body.get("filterGroups") or []]
    groups = [[_filter(table, f) for f in group] for group in filters]
    if len(groups) > 5 or any(len(g) > 6 for g in groups):
        raise Invalid(400, error_body("Too many filters: at most 5 filterGroups of 6 filters each.", "VALIDATION_ERROR"))
    matched = _modified_since(table, filters, sorts)
    if matched is None:
        matched = _sorted(table, [rid for rid, record in table.records.items()
                                  if not groups or any(all(f(rid, record) for f in group) for group in groups)], sorts)
    properties = [p for p in body.get("properties") or [] if isinstance(p, str)]
    page = matched[after:min(after + limit, len(matched))]
    answer: dict[str, Any] = {"total": len(matched),
                              "results": [render(portal, obj, table.records[rid], properties) for rid in page]}
    if after + limit < len(matched):
        answer["paging"] = {"next": {"after": str(after + limit)}}
    return answer


# --- seed ----------------------------------------------------------------------------------

_INDUSTRY = {"Manufacturing": "MACHINERY", "Retail": "RETAIL", "Technology": "COMPUTER_SOFTWARE",
             "Healthcare": "HOSPITAL_HEALTH_CARE", "Transportation": "TRANSPORTATION_TRUCKING_RAILROAD",
             "Food & Beverage": "FOOD_BEVERAGES"}
_PRODUCTS = (("工业传感器 S200", "SKU-S200", "1280.00"), ("PLC 控制模块 M8", "SKU-M8", "5600.00"),
             ("Servo Motor SM-750", "SKU-SM750", "2450.50"), ("Hydraulic Pump HP-30", "SKU-HP30", "8900.00"),
             ("年度维保服务", "SVC-MAINT", "12000.00"), ("Cloud Licence (per seat)", "LIC-CLOUD", "49.90"))


def _seed(portal: Portal, count: int, seed_value: int) -> None:
    """Companies from the shared seed (dated in the past), and one deal with lines per tenth of them."""
    events = None  # seeded records were made before anyone subscribed
    rng = random.Random(seed_value)
    companies = []
    for company in seed.companies(count, seed_value):
        created = SEED_EPOCH_MS + company.number * 3_600_000
        host = company.website.split("://", 1)[-1].split("/", 1)[0]
        props: dict[str, str | None] = {
            "name": company.name, "domain": host.removeprefix("www."), "website": company.website,
            "phone": company.phone, "address": company.street, "city": company.city, "state": company.state,
            "zip": company.postal_code, "country": company.country, "industry": _INDUSTRY.get(company.industry),
            "lifecyclestage": "customer" if company.number % 4 else "opportunity", "tax_id": company.tax_id,
            "email": company.email, "synchub_id": None}
        record = portal.create("companies", props, created, events, modified=created + 1_800_000 + company.number)
        companies.append((record["id"], company))
    for record_id, company in companies[::10]:
        _seed_deal(portal, rng, record_id, company.name, SEED_EPOCH_MS + company.number * 3_600_000 + 7_200_000)


def _seed_deal(portal: Portal, rng: random.Random, company_id: str, company_name: str, stamp: int) -> None:
    events = None
    lines = rng.sample(_PRODUCTS, rng.randint(1, 3))
    total = Decimal(0)
    item_ids = []
    for position, (name, sku, price) in enumerate(lines):
        quantity = rng.choice((1, 2, 5, 10, 20))
        amount = Decimal(price) * quantity
        total += amount
        item = portal.create("line_items", {"name": name, "hs_sku": sku, "quantity": str(quantity), "price": price,
                                            "amount": _plain(amount), "hs_position_on_quote": str(position)},
                             stamp, events)
        item_ids.append(item["id"])
    stage = rng.choice(DEAL_STAGES)
    deal = portal.create("deals", {"dealname": f"{company_name} - {lines[0][0]}", "amount": _plain(total),
                                   "dealstage": stage, "pipeline": "default", "deal_currency_code": "CNY",
                                   "closedate": iso(stamp + 14 * 86_400_000)}, stamp, events)
    portal.associate("deals", deal["id"], "companies", company_id)
    for item_id in item_ids:
        portal.associate("deals", deal["id"], "line_items", item_id)


# --- the app -------------------------------------------------------------------------------


def fault_answer(kind: str, spec: FaultSpec) -> Response:
    """HubSpot's 429 (secondly policy, rate headers) and its 502."""
    if kind == "rate_limit":
        body = {"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()), "policyName": "SECONDLY",
                "groupName": f"publicapi:private-app-api-calls-secondly:{APP_ID}:{PORTAL_ID}"}
        headers = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "0",
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(spec.retry_after * 1000)),
                   "X-HubSpot-RateLimit-Daily": "1000000", "X-HubSpot-RateLimit-Daily-Remaining": "999000"}
        return JSONResponse(body, status_code=429, headers=headers)
    return JSONResponse(error_body("The server encountered a temporary error and could not complete your request. "
                                   "Please try again.", "BAD_GATEWAY"), status_code=502)


def _invalid(exc: Invalid) -> JSONResponse:
    return JSONResponse(exc.body, status_code=exc.status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise Invalid(400, error_body("Invalid input JSON on line 1: the body is not JSON", "VALIDATION_ERROR")) from None


def _object_type(name: str) -> str:
    obj = TYPES.get(name)
    if obj is None:
        raise Invalid(400, error_body(f"Unable to infer object type from: {name}", "VALIDATION_ERROR"))
    return obj


def _inputs(body: Any) -> list[Any]:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise Invalid(400, error_body("Invalid input JSON: inputs must be a list", "VALIDATION_ERROR"))
    if len(inputs) > MAX_INPUTS:
        raise Invalid(400, error_body(f"Batch input has {len(inputs)} inputs; the limit is {MAX_INPUTS}.",
                                      "VALIDATION_ERROR"))
    return inputs


class HubSpotSandbox:
    """The routes of one sandbox over its portal and kit."""

    def __init__(self, options: SandboxOptions) -> None:
        self.portal = Portal()
        self.kit = SandboxKit("hubspot", options, fault_answer, webhook_delays=WEBHOOK_DELAYS)
        _seed(self.portal, options.records, options.seed)

    # auth

    def refused(self, request: Request) -> JSONResponse | None:
        """HubSpot's 401 unless the call carries the private-app token or a live OAuth token."""
        given = request.headers.get("authorization", "")
        token = given[7:].strip() if given.lower().startswith("bearer ") else ""
        if token == PRIVATE_APP_TOKEN:
            return None
        with self.portal.lock:
            expiry = self.portal.tokens.get(token)
        if expiry is not None and time.monotonic() < expiry:
            return None
        if expiry is not None:
            return JSONResponse(error_body("The OAuth token used to make this call expired 0 second(s) ago.",
                                           "EXPIRED_AUTHENTICATION"), status_code=401)
        return JSONResponse(error_body("Authentication credentials not found. This API supports OAuth 2.0 "
                                       "authentication and you can find more details at "
                                       "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                       "INVALID_AUTHENTICATION"), status_code=401)

    async def token(self, request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token here",
                                 "correlationId": str(uuid.uuid4())}, status_code=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"status": "BAD_CLIENT_ID", "message": "missing or unknown client id",
                                 "correlationId": str(uuid.uuid4())}, status_code=400)
        if form.get("refresh_token") != REFRESH_TOKEN:
            return JSONResponse({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token",
                                 "correlationId": str(uuid.uuid4())}, status_code=400)
        access = "sandbox-" + uuid.uuid4().hex
        with self.portal.lock:
            self.portal.tokens[access] = time.monotonic() + TOKEN_LIFETIME
        return JSONResponse({"token_type": "bearer", "refresh_token": REFRESH_TOKEN, "access_token": access,
                             "expires_in": TOKEN_LIFETIME})

    # webhooks

    def notify(self, events: list[Event]) -> None:
        """Send the events of one write, 100 per call, signed as HubSpot signs them."""
        for start in range(0, len(events), 100):
            self.kit.webhooks.send(events[start]["subscriptionType"], self._builder(events[start:start + 100]))

    def _builder(self, events: list[Event]) -> Callable[[str], OutboundCall]:
        attempts = itertools.count(0)

        def build(url: str) -> OutboundCall:
            attempt = next(attempts)
            body = json.dumps([{**e, "attemptNumber": attempt} for e in events], separators=(",", ":")).encode()
            timestamp = str(now_ms())
            headers = {"Content-Type": "application/json", "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/)",
                       hooks.SIGNATURE_V3: hooks.sign_v3(CLIENT_SECRET, "POST", url, body, timestamp),
                       hooks.TIMESTAMP: timestamp, hooks.SIGNATURE: hooks.sign_v1(CLIENT_SECRET, body),
                       hooks.SIGNATURE_VERSION: "v1"}
            return OutboundCall(url, body, headers)

        return build

    # routes

    def create_app(self) -> FastAPI:
        app = self.kit.create_app("HubSpot sandbox")
        self._vendor_routes(app)
        self._control_routes(app)
        return app

    def _vendor_routes(self, app: FastAPI) -> None:
        handlers: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/crm/v3/properties/{object_type}", self.list_properties),
            ("GET", "/crm/v3/objects/{object_type}", self.list_objects),
            ("POST", "/crm/v3/objects/{object_type}", self.create_one),
            ("POST", "/crm/v3/objects/{object_type}/search", self.search),
            ("POST", "/crm/v3/objects/{object_type}/batch/read", self.batch_read),
            ("POST", "/crm/v3/objects/{object_type}/batch/create", self.batch_create),
            ("POST", "/crm/v3/objects/{object_type}/batch/update", self.batch_update),
            ("POST", "/crm/v3/objects/{object_type}/batch/upsert", self.batch_upsert),
            ("GET", "/crm/v3/objects/{object_type}/{object_id}", self.get_one),
            ("PATCH", "/crm/v3/objects/{object_type}/{object_id}", self.update_one),
            ("PUT", "/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}", self.associate),
            ("POST", "/crm/v4/associations/{from_type}/{to_type}/batch/read", self.read_associations),
        ]
        for method, path, handler in handlers:
            app.add_api_route(path, self._guarded(handler), methods=[method])
        app.add_api_route("/oauth/v1/token", self.token, methods=["POST"])

    def _guarded(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        async def route(request: Request) -> Response:
            refused = self.refused(request)
            if refused is not None:
                return refused
            try:
                return await handler(request, **request.path_params)  # type: ignore[no-any-return]
            except Invalid as exc:
                return _invalid(exc)

        route.__name__ = handler.__name__
        return route

    def _control_routes(self, app: FastAPI) -> None:
        async def touch(request: Request) -> dict[str, Any]:
            body = await _json_body(request)
            obj = _object_type(str(body.get("object")))
            with self.portal.lock:
                count = self.portal.touch(obj, [str(i) for i in body.get("ids") or []], now_ms())
            return {"touched": count}

        async def records(object_type: str) -> dict[str, Any]:
            obj = _object_type(object_type)
            with self.portal.lock:
                table = self.portal.tables[obj]
                names = list(PROPERTIES[obj])
                found = [render(self.portal, obj, table.records[rid], names) for rid in sorted(table.records, key=int)]
            return {"records": found}

        async def expire_tokens() -> dict[str, Any]:
            with self.portal.lock:
                count = len(self.portal.tokens)
                for token in self.portal.tokens:
                    self.portal.tokens[token] = 0.0
            return {"expired": count}

        app.add_api_route("/_sandbox/touch", touch, methods=["POST"])
        app.add_api_route("/_sandbox/records/{object_type}", records, methods=["GET"])
        app.add_api_route("/_sandbox/expire-tokens", expire_tokens, methods=["POST"])

    # --- handlers ------------------------------------------------------------------------

    async def list_properties(self, request: Request, object_type: str) -> JSONResponse:
        obj = _object_type(object_type)
        return JSONResponse({"results": [p.as_json(obj) for p in PROPERTIES[obj].values()]})

    async def list_objects(self, request: Request, object_type: str) -> JSONResponse:
        obj = _object_type(object_type)
        query = request.query_params
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 0 < limit <= MAX_LIMIT:
            raise Invalid(400, error_body(f"limit must be between 1 and {MAX_LIMIT}", "VALIDATION_ERROR"))
        after = query.get("after")
        properties = _csv(query.getlist("properties"))
        associations = [TYPES[a] for a in _csv(query.getlist("associations")) if a in TYPES]
        with self.portal.lock:
            table = self.portal.tables[obj]
            ids = list(table.records)  # insertion order is id order: ids only grow
            start = bisect.bisect_left(ids, int(after), key=int) if after and after.isdigit() else 0
            page = ids[start:start + limit]
            results = [render(self.portal, obj, table.records[rid], properties, associations) for rid in page]
            following = ids[start + limit] if start + limit < len(ids) else None
        body: dict[str, Any] = {"results": results}
        if following is not None:
            link = f"{request.base_url}crm/v3/objects/{object_type}?limit={limit}&after={following}"
            body["paging"] = {"next": {"after": following, "link": link}}
        return JSONResponse(body)

    async def get_one(self, request: Request, object_type: str, object_id: str) -> JSONResponse:
        obj = _object_type(object_type)
        query = request.query_params
        id_property = query.get("idProperty")
        with self.portal.lock:
            table = self.portal.tables[obj]
            rid = table.by_property(id_property, object_id) if id_property else object_id
            record = table.records.get(rid or "")
            if record is None:
                raise Invalid(404, error_body("Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                              context={"id": [object_id]}))
            associations = [TYPES[a] for a in _csv(query.getlist("associations")) if a in TYPES]
            found = render(self.portal, obj, record, _csv(query.getlist("properties")), associations)
        return JSONResponse(found)

    async def create_one(self, request: Request, object_type: str) -> JSONResponse:
        obj = _object_type(object_type)
        body = await _json_body(request)
        events: list[Event] = []
        with self.portal.lock:
            record = self._create_input(obj, body, now_ms(), events)
            found = render(self.portal, obj, record, list(body.get("properties") or {}))
        self.notify(events)
        return JSONResponse(found, status_code=201)

    async def update_one(self, request: Request, object_type: str, object_id: str) -> JSONResponse:
        obj = _object_type(object_type)
        body = await _json_body(request)
        events: list[Event] = []
        with self.portal.lock:
            table = self.portal.tables[obj]
            id_property = request.query_params.get("idProperty")
            rid = table.by_property(id_property, object_id) if id_property else object_id
            if rid not in table.records:
                raise Invalid(404, error_body("Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                              context={"id": [object_id]}))
            record = self.portal.update(obj, str(rid), _clean(obj, (body or {}).get("properties")), now_ms(), events)
            found = render(self.portal, obj, record, list(body.get("properties") or {}))
        self.notify(events)
        return JSONResponse(found)

    async def search(self, request: Request, object_type: str) -> JSONResponse:
        obj = _object_type(object_type)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise Invalid(400, error_body("Invalid input JSON: the body must be an object", "VALIDATION_ERROR"))
        with self.portal.lock:
            answer = search(self.portal, obj, body)
        return JSONResponse(answer)

    async def batch_read(self, request: Request, object_type: str) -> JSONResponse:
        obj = _object_type(object_type)
        body = await _json_body(request)
        started = iso(now_ms())
        inputs = _inputs(body)
        properties = [p for p in body.get("properties") or [] if isinstance(p, str)]
        id_property = body.get("idProperty")
        results, missing = [], []
        with self.portal.lock:
            table = self.portal.tables[obj]
            for item in inputs:
                given = str((item or {}).get("id", ""))
                rid = table.by_property(id_property, given) if id_property else given
                record = table.records.get(rid or "")
                if record is None:
                    missing.append(given)
                else:
                    results.append(render(self.portal, obj, record, properties))
        errors = []
        if missing:
            errors.append(error_body(f"Could not get some {SINGULAR[obj].upper()} objects, they may be deleted or "
                                     "not exist. Check that ids are valid.", "OBJECT_NOT_FOUND",
                                     context={"ids": missing}))
        return _batch_answer(results, errors, started)

    async def batch_create(self, request: Request, object_type: str) -> JSONResponse:
        return await self._batch_write(request, object_type, "create")

    async def batch_update(self, request: Request, object_type: str) -> JSONResponse:
        return await self._batch_write(request, object_type, "update")

    async def batch_upsert(self, request: Request, object_type: str) -> JSONResponse:
        return await self._batch_write(request, object_type, "upsert")

    async def _batch_write(self, request: Request, object_type: str, kind: str) -> JSONResponse:
        obj = _object_type(object_type)
        body = await _json_body(request)
        started = iso(now_ms())
        inputs = _inputs(body)
        results, errors = [], []
        events: list[Event] = []
        with self.portal.lock:
            stamp = now_ms()
            for item in inputs:
                trace = (item or {}).get("objectWriteTraceId") if isinstance(item, dict) else None
                try:
                    record, new = self._write_input(obj, kind, item, stamp, events)
                except Invalid as exc:
                    error = {k: v for k, v in exc.body.items() if k != "correlationId"}
                    context = dict(error.get("context") or {})
                    if trace is not None:
                        context["objectWriteTraceId"] = [str(trace)]
                    if kind == "update" and isinstance(item, dict) and "id" in item:
                        context.setdefault("ids", [str(item["id"])])
                    error["context"] = context
                    errors.append(error)
                    continue
                properties = list((item or {}).get("properties") or {})
                if kind == "upsert" and item.get("idProperty"):
                    properties.append(str(item["idProperty"]))
                result = render(self.portal, obj, record, properties)
                if trace is not None:
                    result["objectWriteTraceId"] = str(trace)
                if kind == "upsert":
                    result["new"] = new
                results.append(result)
        self.notify(events)
        return _batch_answer(results, errors, started, 201 if kind == "create" else 200)

    def _write_input(self, obj: str, kind: str, item: Any, stamp: int,
                     events: list[Event]) -> tuple[dict[str, Any], bool]:
        if not isinstance(item, dict):
            raise Invalid(400, error_body("Invalid input JSON: each input must be an object", "VALIDATION_ERROR"))
        table = self.portal.tables[obj]
        if kind == "create":
            return self._create_input(obj, item, stamp, events), True
        if kind == "update":
            rid = str(item.get("id", ""))
            id_property = item.get("idProperty")
            if id_property:
                rid = table.by_property(str(id_property), rid) or ""
            if rid not in table.records:
                raise Invalid(404, error_body(f"Object not found. {SINGULAR[obj]} {item.get('id')} does not exist.",
                                              "OBJECT_NOT_FOUND"))
            return self.portal.update(obj, rid, _clean(obj, item.get("properties")), stamp, events), False
        id_property, value = item.get("idProperty"), item.get("id")
        if not isinstance(id_property, str) or id_property not in table.unique or value in (None, ""):
            raise Invalid(400, error_body(f"idProperty {id_property!r} is not a unique-value property of "
                                          f"{SINGULAR[obj]}", "VALIDATION_ERROR"))
        properties = _clean(obj, item.get("properties"))
        existing = table.by_property(id_property, str(value))
        if existing is None:
            properties[id_property] = str(value)
            return self.portal.create(obj, properties, stamp, events), True
        properties.pop(id_property, None)
        return self.portal.update(obj, existing, properties, stamp, events), False

    def _create_input(self, obj: str, item: dict[str, Any], stamp: int, events: list[Event]) -> dict[str, Any]:
        properties = _clean(obj, item.get("properties"))
        targets = []
        for association in item.get("associations") or []:
            to_id = str(((association or {}).get("to") or {}).get("id", ""))
            type_ids = {t.get("associationTypeId") for t in (association or {}).get("types") or []}
            to_obj = next((b for (a, b), tid in ASSOCIATION_TYPE_IDS.items() if a == obj and tid in type_ids), None)
            if to_obj is None or to_id not in self.portal.tables[to_obj].records:
                raise Invalid(400, error_body(f"Invalid association to {to_id}", "VALIDATION_ERROR"))
            targets.append((to_obj, to_id))
        record = self.portal.create(obj, properties, stamp, events)
        for to_obj, to_id in targets:
            self.portal.associate(obj, record["id"], to_obj, to_id)
        return record

    async def associate(self, request: Request, from_type: str, from_id: str, to_type: str,
                        to_id: str) -> JSONResponse:
        from_obj, to_obj = _object_type(from_type), _object_type(to_type)
        if (from_obj, to_obj) not in ASSOCIATION_TYPE_IDS:
            raise Invalid(400, error_body(f"No default association from {from_type} to {to_type}", "VALIDATION_ERROR"))
        with self.portal.lock:
            for obj, rid in ((from_obj, from_id), (to_obj, to_id)):
                if rid not in self.portal.tables[obj].records:
                    raise Invalid(404, error_body(f"{SINGULAR[obj]} {rid} not found", "OBJECT_NOT_FOUND"))
            self.portal.associate(from_obj, from_id, to_obj, to_id)
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOCIATION_TYPE_IDS[(from_obj, to_obj)]}
        stamp = iso(now_ms())
        return JSONResponse({"status": "COMPLETE", "results": [{"from": {"id": from_id}, "to": {"id": to_id},
                                                                "associationSpec": spec}],
                             "startedAt": stamp, "completedAt": stamp})

    async def read_associations(self, request: Request, from_type: str, to_type: str) -> JSONResponse:
        from_obj, to_obj = _object_type(from_type), _object_type(to_type)
        body = await _json_body(request)
        started = iso(now_ms())
        inputs = _inputs(body)
        type_id = ASSOCIATION_TYPE_IDS.get((from_obj, to_obj), 0)
        results, lonely = [], []
        with self.portal.lock:
            for item in inputs:
                rid = str((item or {}).get("id", ""))
                linked = self.portal.associated(from_obj, rid, to_obj)
                if not linked:
                    lonely.append(rid)
                    continue
                results.append({"from": {"id": rid}, "to": [
                    {"toObjectId": int(i), "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id,
                                                                  "label": None}]} for i in linked]})
        errors = [error_body(f"No {SINGULAR[to_obj]} is associated with {SINGULAR[from_obj]} {rid}.",
                             "OBJECT_NOT_FOUND", subCategory="crm.associations.NO_ASSOCIATIONS_FOUND",
                             context={"fromObjectId": [rid]}) for rid in lonely]
        return _batch_answer(results, errors, started)


def create_app(options: SandboxOptions) -> FastAPI:
    """A HubSpot portal seeded with `options.records` companies (and a deal per ten of them)."""
    sandbox = HubSpotSandbox(options)
    app = sandbox.create_app()
    app.state.sandbox = sandbox
    return app


def system_config(base_url: str) -> dict[str, Any]:
    """The hub's `systems:` entry for this sandbox: OAuth app credentials (tokens expire)."""
    return {"connector": "hubspot", "base_url": base_url,
            "auth": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN},
            "webhook": {"client_secret": CLIENT_SECRET},
            "options": {"portal_id": str(PORTAL_ID)}}
