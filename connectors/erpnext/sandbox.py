"""A small ERPNext site: Frappe's REST API over in-memory doctypes, for tests and the demo.

What it speaks, as Frappe does:

- `/api/resource/{DocType}`: list (`fields` incl. `"*"`, `filters` and `or_filters` as a
  list of lists or a dict, `order_by`, `limit_start`, `limit_page_length` default 20 with
  0 = all, `as_dict`), and per document GET, POST, PUT, DELETE. Bodies are JSON, or a form
  field `data` holding JSON (what the frappe-client library sends).
- `/api/method/...` and the old `/?cmd=...`: `login`, `logout`, `frappe.auth.get_logged_user`,
  `frappe.client.get_list / get / get_value / insert / set_value / submit / cancel / delete`.
- Auth: `Authorization: token <key>:<secret>` or `Basic base64(key:secret)`, or the `sid`
  cookie of a login. API keys never expire; `POST /_sandbox/expire-tokens` ends the login
  sessions (the only credential that expires).
- Doctypes Customer (named by customer_name, " - 1" on a clash), Sales Order (items child
  table, naming series SAL-ORD-.YYYY.-, totals computed, submit/cancel), Item, Employee
  (HR-EMP-, seeded with namesakes and inactive staff), Leave Type, Leave Application (links
  to both checked, an Inactive employee refused, employee_name fetched, total_leave_days
  computed, overlapping Open/Approved leave refused, submitted only with status Approved or
  Rejected, status Cancelled on cancel); any other doctype is "not found", as on a site
  without that app.
- Frappe's errors: the exception's HTTP status (417 validation, 409 duplicate name, 404,
  403, 401) with `exc_type`, `exception`, `exc` and `_server_messages`.
- `modified` is "YYYY-MM-DD HH:MM:SS.ffffff" in the site's time zone (`extra["timezone"]`,
  default Asia/Shanghai); a whole second prints without the fraction, as Frappe's JSON does.
- Webhooks on insert, update, submit, cancel and delete: the whole document as JSON, signed
  `X-Frappe-Webhook-Signature` = base64(HMAC-SHA256(secret, body)), tried three times.
- Faults: `rate_limit` is Frappe's 429 TooManyRequestsError with Retry-After; `error` is the
  502 page of the nginx in front of every Frappe bench.
"""

from __future__ import annotations

import base64
import bisect
import copy
import heapq
import itertools
import json
import math
import operator
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from fastapi import Body, FastAPI, Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from connectors.erpnext.webhook import SIGNATURE_HEADER, sign
from connectors.sandbox import SandboxKit, SandboxOptions
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.seed import Company, companies
from connectors.sandbox.webhooks import OutboundCall

API_KEY = "synchub-sandbox-key"
API_SECRET = "synchub-sandbox-secret"
WEBHOOK_SECRET = "synchub-sandbox-webhook-secret"
SITE_TIMEZONE = "Asia/Shanghai"
USER = "synchub@example.com"
PASSWORDS = {"Administrator": "admin", USER: "synchub"}
COMPANY = "Synchub Demo Co."
# frappe/integrations/doctype/webhook/webhook.py: three tries, sleeping 3 * i + 1 s after a failure.
WEBHOOK_DELAYS = (1.0, 4.0)
STANDARD = ("name", "owner", "creation", "modified", "modified_by", "docstatus", "idx")
CHILD_STANDARD = ("name", "owner", "creation", "modified", "modified_by", "docstatus", "idx", "parent",
                  "parentfield", "parenttype")
DATETIMES = frozenset({"creation", "modified"})
OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "like", "not like", "in", "not in", "is", "between")
_BACKTICKS = re.compile(r"`(?:tab[^`]*)`\.|`")


class FrappeError(Exception):
    """A Frappe exception: its class name, HTTP status and the messages it printed."""

    def __init__(self, exc_type: str, status: int, message: str, *, title: str = "Message",
                 detail: str | None = None, traceback: bool = True, messages: list[str] | None = None) -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.status = status
        self.message = message
        self.messages = messages or [message]
        self.title = title
        self.detail = detail if detail is not None else message
        self.traceback = traceback


def _validation(message: str, exc_type: str = "ValidationError", title: str = "Message") -> FrappeError:
    return FrappeError(exc_type, 417, message, title=title)


def _not_found(doctype: str, name: str) -> FrappeError:
    return FrappeError("DoesNotExistError", 404, f"{doctype} {name} not found", traceback=False)


def _bold(value: Any) -> str:
    return f"<strong>{value}</strong>"


# --- doctypes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """What the sandbox knows of a doctype: columns, child tables, rules."""

    doctype: str
    fields: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    mandatory: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    tables: dict[str, Meta] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    numbers: frozenset[str] = frozenset()  # Check / Int / Float / Currency columns
    selects: dict[str, tuple[str, ...]] = field(default_factory=dict)
    series: str | None = None  # "SAL-ORD-.YYYY.-", numbered with five digits
    title_field: str | None = None  # the name comes from this field (Customer: customer_name)
    submittable: bool = False
    allow_on_submit: frozenset[str] = frozenset()
    links: dict[str, str] = field(default_factory=dict)  # field -> doctype it must name

    @property
    def columns(self) -> tuple[str, ...]:
        return STANDARD + self.fields

    def label(self, fieldname: str) -> str:
        return self.labels.get(fieldname) or fieldname.replace("_", " ").title()


def _child(doctype: str, fields: tuple[str, ...], **rules: Any) -> Meta:
    return Meta(doctype, fields, **rules)


CUSTOMER = Meta(
    "Customer",
    ("naming_series", "customer_name", "customer_type", "customer_group", "territory", "gender", "lead_name",
     "opportunity_name", "account_manager", "image", "default_price_list", "default_bank_account",
     "default_currency", "is_internal_customer", "represents_company", "market_segment", "industry", "website",
     "language", "customer_details", "customer_primary_contact", "mobile_no", "email_id",
     "customer_primary_address", "primary_address", "tax_id", "tax_category", "tax_withholding_category",
     "payment_terms", "loyalty_program", "default_sales_partner", "default_commission_rate", "so_required",
     "dn_required", "is_frozen", "disabled", "synchub_id"),
    labels={"customer_name": "Customer Name", "customer_type": "Customer Type", "synchub_id": "Synchub Id",
            "customer_group": "Customer Group", "territory": "Territory"},
    mandatory=("customer_name", "customer_type", "customer_group", "territory"),
    unique=("synchub_id",),
    tables={
        "credit_limits": _child("Customer Credit Limit", ("company", "credit_limit", "bypass_credit_limit_check"),
                                numbers=frozenset({"credit_limit", "bypass_credit_limit_check"})),
        "accounts": _child("Party Account", ("company", "account")),
        "sales_team": _child("Sales Team", ("sales_person", "allocated_percentage", "commission_rate"),
                             numbers=frozenset({"allocated_percentage"})),
        "companies": _child("Allowed To Transact With", ("company",)),
    },
    defaults={"customer_type": "Company", "customer_group": "All Customer Groups", "territory": "All Territories",
              "language": "zh", "is_internal_customer": 0, "default_commission_rate": 0.0, "so_required": 0,
              "dn_required": 0, "is_frozen": 0, "disabled": 0},
    numbers=frozenset({"docstatus", "idx", "is_internal_customer", "default_commission_rate", "so_required",
                       "dn_required", "is_frozen", "disabled"}),
    selects={"customer_type": ("Company", "Individual", "Partnership")},
    title_field="customer_name",
)

ITEM = Meta(
    "Item",
    ("item_code", "item_name", "item_group", "stock_uom", "description", "standard_rate", "is_stock_item",
     "disabled"),
    mandatory=("item_code", "item_group", "stock_uom"),
    defaults={"item_group": "Products", "stock_uom": "Nos", "is_stock_item": 1, "disabled": 0, "standard_rate": 0.0},
    numbers=frozenset({"docstatus", "idx", "standard_rate", "is_stock_item", "disabled"}),
    title_field="item_code",
)

SALES_ORDER_ITEM = _child(
    "Sales Order Item",
    ("item_code", "item_name", "description", "delivery_date", "qty", "stock_uom", "uom", "conversion_factor",
     "rate", "amount", "base_rate", "base_amount", "net_rate", "net_amount", "warehouse", "delivered_qty",
     "billed_amt"),
    labels={"item_code": "Item Code", "qty": "Quantity"},
    mandatory=("item_code", "qty"),
    numbers=frozenset({"qty", "conversion_factor", "rate", "amount", "base_rate", "base_amount", "net_rate",
                       "net_amount", "delivered_qty", "billed_amt", "idx", "docstatus"}),
    links={"item_code": "Item"},
)

SALES_ORDER = Meta(
    "Sales Order",
    ("naming_series", "title", "customer", "customer_name", "order_type", "transaction_date", "delivery_date",
     "po_no", "po_date", "company", "currency", "conversion_rate", "selling_price_list", "price_list_currency",
     "plc_conversion_rate", "total_qty", "base_total", "base_net_total", "total", "net_total",
     "total_taxes_and_charges", "base_grand_total", "grand_total", "rounding_adjustment", "rounded_total",
     "base_rounded_total", "status", "delivery_status", "billing_status", "per_delivered", "per_billed",
     "territory", "customer_group", "amended_from", "terms", "synchub_id"),
    labels={"customer": "Customer", "transaction_date": "Date", "delivery_date": "Delivery Date",
            "items": "Items", "company": "Company", "currency": "Currency", "po_no": "Customer's Purchase Order",
            "synchub_id": "Synchub Id"},
    mandatory=("customer", "transaction_date", "company", "currency", "items"),
    unique=("synchub_id",),
    tables={"items": SALES_ORDER_ITEM,
            "taxes": _child("Sales Taxes and Charges", ("charge_type", "account_head", "description", "rate",
                                                        "tax_amount", "total"),
                            numbers=frozenset({"rate", "tax_amount", "total", "idx", "docstatus"}))},
    defaults={"naming_series": "SAL-ORD-.YYYY.-", "order_type": "Sales", "company": COMPANY, "currency": "CNY",
              "conversion_rate": 1.0, "selling_price_list": "Standard Selling", "price_list_currency": "CNY",
              "plc_conversion_rate": 1.0, "per_delivered": 0.0, "per_billed": 0.0},
    numbers=frozenset({"docstatus", "idx", "conversion_rate", "plc_conversion_rate", "total_qty", "base_total",
                       "base_net_total", "total", "net_total", "total_taxes_and_charges", "base_grand_total",
                       "grand_total", "rounding_adjustment", "rounded_total", "base_rounded_total",
                       "per_delivered", "per_billed"}),
    selects={"order_type": ("Sales", "Maintenance", "Shopping Cart")},
    series="SAL-ORD-.YYYY.-",
    submittable=True,
    allow_on_submit=frozenset({"po_no", "po_date", "terms"}),
    links={"customer": "Customer"},
)

EMPLOYEE = Meta(
    "Employee",
    ("naming_series", "first_name", "middle_name", "last_name", "employee_name", "employee_number", "gender",
     "date_of_birth", "date_of_joining", "status", "user_id", "company", "department", "designation",
     "reports_to", "cell_number", "company_email", "personal_email", "prefered_contact_email", "prefered_email",
     "holiday_list", "relieving_date"),
    labels={"first_name": "First Name", "gender": "Gender", "date_of_birth": "Date of Birth",
            "date_of_joining": "Date of Joining", "status": "Status", "company": "Company"},
    mandatory=("first_name", "gender", "date_of_birth", "date_of_joining", "status", "company"),
    defaults={"naming_series": "HR-EMP-", "status": "Active", "company": COMPANY},
    selects={"status": ("Active", "Inactive", "Suspended", "Left")},
    series="HR-EMP-",
    links={"reports_to": "Employee"},
)

LEAVE_TYPE = Meta(
    "Leave Type",
    ("leave_type_name", "max_leaves_allowed", "max_continuous_days_allowed", "applicable_after", "is_carry_forward",
     "is_lwp", "is_optional_leave", "allow_negative", "include_holiday", "is_compensatory", "color"),
    labels={"leave_type_name": "Leave Type Name"},
    mandatory=("leave_type_name",),
    defaults={"max_leaves_allowed": 0.0, "max_continuous_days_allowed": 0, "applicable_after": 0,
              "is_carry_forward": 0, "is_lwp": 0, "is_optional_leave": 0, "allow_negative": 0, "include_holiday": 0,
              "is_compensatory": 0},
    numbers=frozenset({"docstatus", "idx", "max_leaves_allowed", "max_continuous_days_allowed", "applicable_after",
                       "is_carry_forward", "is_lwp", "is_optional_leave", "allow_negative", "include_holiday",
                       "is_compensatory"}),
    title_field="leave_type_name",
)

LEAVE_APPLICATION = Meta(
    "Leave Application",
    ("naming_series", "employee", "employee_name", "department", "leave_type", "from_date", "to_date", "half_day",
     "half_day_date", "total_leave_days", "description", "leave_balance", "leave_approver", "leave_approver_name",
     "follow_via_email", "status", "posting_date", "company", "amended_from", "synchub_id"),
    labels={"employee": "Employee", "leave_type": "Leave Type", "from_date": "From Date", "to_date": "To Date",
            "status": "Status", "description": "Reason", "company": "Company", "synchub_id": "Synchub Id"},
    mandatory=("employee", "leave_type", "from_date", "to_date", "status", "company"),
    unique=("synchub_id",),
    defaults={"naming_series": "HR-LAP-.YYYY.-", "status": "Open", "half_day": 0, "company": COMPANY,
              "follow_via_email": 1},
    numbers=frozenset({"docstatus", "idx", "half_day", "total_leave_days", "leave_balance", "follow_via_email"}),
    selects={"status": ("Open", "Approved", "Rejected", "Cancelled")},
    series="HR-LAP-.YYYY.-",
    submittable=True,
    links={"employee": "Employee", "leave_type": "Leave Type"},
)

DOCTYPES = {m.doctype: m for m in (CUSTOMER, ITEM, SALES_ORDER, EMPLOYEE, LEAVE_TYPE, LEAVE_APPLICATION)}

SEED_ITEMS = (
    ("SKU-1001", "工业传感器 S1", "Products", "Nos", 1280.0),
    ("SKU-1002", "PLC 控制模块 C2", "Products", "Nos", 4650.0),
    ("SKU-1003", "Servo Motor 750W", "Products", "Nos", 2390.5),
    ("SKU-1004", "Cable Harness 5m", "Raw Material", "Nos", 86.0),
    ("SKU-1005", "Hydraulic Oil 20L", "Consumable", "Litre", 415.0),
    ("SVC-2001", "现场安装调试服务", "Services", "Hour", 600.0),
)


# --- the site ------------------------------------------------------------------------------


class Site:
    """The site's state: documents by doctype and name, sessions, naming counters."""

    def __init__(self, kit: SandboxKit, timezone: str, webhook_secret: str) -> None:
        self.kit = kit
        self.zone = ZoneInfo(timezone)
        self.webhook_secret = webhook_secret
        self.lock = threading.Lock()
        self.docs: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in DOCTYPES}
        self.sessions: dict[str, str] = {}
        self.counters: dict[str, int] = {}
        self.unique: dict[tuple[str, str], dict[Any, str]] = {}
        self.version = 0  # bumped by every change, so that cached orderings are rebuilt
        self._orders: dict[str, tuple[int, ByModified]] = {}
        self._last = datetime(2000, 1, 1)

    # clock and names

    def now(self) -> datetime:
        """The site's local time, strictly increasing so that two writes never share a stamp."""
        moment = datetime.now(self.zone).replace(tzinfo=None)
        if moment <= self._last:
            moment = self._last + timedelta(microseconds=1)
        self._last = moment
        return moment

    def meta(self, doctype: str) -> Meta:
        meta = DOCTYPES.get(doctype)
        if meta is None:
            raise FrappeError("DoesNotExistError", 404, f"DocType {doctype} not found", traceback=False)
        return meta

    def _series_name(self, series: str, moment: datetime) -> str:
        prefix = series.replace(".YYYY.", moment.strftime("%Y")).replace(".", "")
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]:05d}"

    def _new_name(self, meta: Meta, doc: dict[str, Any], moment: datetime) -> str:
        table = self.docs[meta.doctype]
        if meta.title_field:
            base = str(doc[meta.title_field]).strip()
            if meta.doctype != "Customer" or base not in table:
                return base
            # erpnext Customer.get_customer_name: "<name> - <n>" after the highest n in use
            used = [int(m.group(1)) for n in table if (m := re.fullmatch(re.escape(base) + r" - (\d+)", n))]
            return f"{base} - {max(used, default=0) + 1}"
        if meta.series:
            series = str(doc.get("naming_series") or meta.series)
            return self._series_name(series, moment)
        return secrets.token_hex(5)

    # reads

    def table(self, doctype: str) -> dict[str, dict[str, Any]]:
        self.meta(doctype)
        return self.docs[doctype]

    def load(self, doctype: str, name: str) -> dict[str, Any]:
        doc = self.table(doctype).get(name)
        if doc is None:
            raise _not_found(doctype, name)
        return doc

    # writes

    def insert(self, doctype: str, data: dict[str, Any], user: str) -> dict[str, Any]:
        meta = self.meta(doctype)
        moment = self.now()
        doc = _blank(meta)
        _apply(meta, doc, data)
        docstatus = int(data.get("docstatus") or 0)
        if docstatus not in (0, 1) or (docstatus == 1 and not meta.submittable):
            raise _validation(f"Cannot create a document with docstatus {docstatus}")
        doc["docstatus"] = docstatus
        self._validate(meta, doc, None)
        if docstatus == 1:
            _check_submit(meta, doc)  # Frappe's insert of a docstatus 1 document runs on_submit
        requested = str(data.get("name") or "").strip()
        doc["name"] = requested if requested and not meta.series and not meta.title_field else \
            self._new_name(meta, doc, moment)
        if doc["name"] in self.docs[doctype]:
            raise FrappeError("DuplicateEntryError", 409, f"{doctype} {_bold(doc['name'])} already exists",
                              title="Duplicate Name", detail=f"('{doctype}', '{doc['name']}', IntegrityError(1062, "
                              f"\"Duplicate entry '{doc['name']}' for key 'PRIMARY'\"))")
        self._check_unique(meta, doc)
        doc.update(creation=moment, modified=moment, owner=user, modified_by=user)
        _stamp_children(meta, doc, moment, user)
        self.store(meta, doc)
        self._notify(doc, "on_submit" if docstatus == 1 else "after_insert")
        return doc

    def update(self, doctype: str, name: str, data: dict[str, Any], user: str) -> dict[str, Any]:
        meta = self.meta(doctype)
        old = self.load(doctype, name)
        given_modified = data.get("modified")
        if given_modified and _as_datetime(given_modified) != old["modified"]:
            raise FrappeError("TimestampMismatchError", 417,
                              f"Error: Document has been modified after you have opened it ({old['modified']}, "
                              f"{given_modified}). Please refresh to get the latest document.")
        new = copy.deepcopy(old)
        changes = {k: v for k, v in data.items() if k not in ("name", "doctype", "flags", "modified", "creation")}
        _apply(meta, new, changes)
        target = int(changes.get("docstatus", old["docstatus"]) or 0)
        event = self._transition(meta, old, new, target)
        self._validate(meta, new, old)
        if event == "on_update_after_submit":
            _refuse_update_after_submit(meta, old, new)
        self._check_unique(meta, new)
        moment = self.now()
        new.update(modified=moment, modified_by=user, docstatus=target)
        if meta.doctype == "Sales Order":
            new["status"] = _sales_order_status(target)
        if meta.doctype == "Leave Application" and target == 2:
            new["status"] = "Cancelled"  # hrms LeaveApplication.on_cancel
        _stamp_children(meta, new, moment, user)
        self.store(meta, new, old)
        self._notify(new, event)
        return new

    def delete(self, doctype: str, name: str) -> None:
        doc = self.load(doctype, name)
        if doc["docstatus"] == 1:
            raise _validation(f"{doctype} {name}: Submitted Record cannot be deleted. You must Cancel it first.")
        if doctype == "Customer" and any(so["customer"] == name for so in self.docs["Sales Order"].values()):
            raise FrappeError("LinkExistsError", 417,
                              f"Cannot delete or cancel because Customer {_bold(name)} is linked with Sales Order")
        self._unindex(self.meta(doctype), doc)
        del self.docs[doctype][name]
        self._notify(doc, "on_trash")

    def touch(self, doctype: str, names: list[str]) -> int:
        """Give these documents one new, identical `modified` (no webhook: a back door)."""
        table = self.table(doctype)
        moment = self.now()
        self.version += 1
        touched = 0
        for name in names:
            if name in table:
                table[name]["modified"] = moment
                touched += 1
        return touched

    def _transition(self, meta: Meta, old: dict[str, Any], new: dict[str, Any], target: int) -> str:
        current = old["docstatus"]
        if current == 2:
            raise _validation("Cannot edit cancelled document")
        if (current, target) == (0, 0):
            return "on_update"
        if (current, target) == (0, 1) and meta.submittable:
            _check_submit(meta, new)
            return "on_submit"
        if (current, target) == (1, 1):
            return "on_update_after_submit"
        if (current, target) == (1, 2):
            return "on_cancel"
        raise _validation(f"Cannot change docstatus from {current} to {target}")

    def _validate(self, meta: Meta, doc: dict[str, Any], old: dict[str, Any] | None) -> None:
        for fieldname, options in meta.selects.items():
            value = doc.get(fieldname)
            if value not in (None, "") and value not in options:
                choices = '", "'.join(options)
                raise _validation(f' {meta.label(fieldname)} cannot be "{value}". It should be one of "{choices}"')
        if meta.doctype == "Sales Order":
            self._validate_sales_order(doc)
        if meta.doctype == "Leave Application":
            self._validate_leave_application(doc)
        if meta.doctype == "Employee":
            _validate_employee(doc)
        if meta.doctype == "Item" and not doc.get("item_name"):
            doc["item_name"] = doc.get("item_code")
        _check_mandatory(meta, doc)
        self._check_links(meta, doc)

    def _validate_sales_order(self, doc: dict[str, Any]) -> None:
        customer = self.docs["Customer"].get(str(doc.get("customer") or ""))
        if customer is not None:
            doc["customer_name"] = customer["customer_name"]
            doc["territory"] = doc.get("territory") or customer["territory"]
            doc["customer_group"] = doc.get("customer_group") or customer["customer_group"]
        doc["title"] = doc.get("customer_name") or doc.get("customer")
        doc["transaction_date"] = doc.get("transaction_date") or self.now().date().isoformat()
        items = doc.get("items") or []
        for row in items:
            item = self.docs["Item"].get(str(row.get("item_code") or ""))
            if item is not None:
                row["item_name"] = row.get("item_name") or item["item_name"]
                row["description"] = row.get("description") or item["item_name"]
                row["stock_uom"] = item["stock_uom"]
                row["uom"] = row.get("uom") or item["stock_uom"]
                if row.get("rate") in (None, ""):
                    row["rate"] = item["standard_rate"]
            row["conversion_factor"] = row.get("conversion_factor") or 1.0
        _set_delivery_dates(doc, items)
        _compute_totals(doc, items)
        doc["status"] = _sales_order_status(int(doc.get("docstatus") or 0))
        doc.setdefault("delivery_status", "Not Delivered")
        doc["delivery_status"] = doc["delivery_status"] or "Not Delivered"
        doc["billing_status"] = doc.get("billing_status") or "Not Billed"

    def _validate_leave_application(self, doc: dict[str, Any]) -> None:
        """hrms LeaveApplication.validate, the parts a synced request meets: an active employee
        (whose name, department and company are fetched), dates, and no overlapping leave."""
        employee = self.docs["Employee"].get(str(doc.get("employee") or ""))
        if employee is not None:
            if employee["status"] == "Inactive":
                raise _validation(f"Transactions cannot be created for an Inactive Employee {_bold(employee['name'])}.",
                                  "InactiveEmployeeStatusError")
            doc["employee_name"] = employee["employee_name"]
            doc["department"] = employee.get("department")
            doc["company"] = employee.get("company") or doc.get("company")
        _validate_leave(doc)
        if doc.get("status") in ("Rejected", "Cancelled") or not doc.get("from_date") or not doc.get("to_date"):
            return
        for other in self.docs["Leave Application"].values():
            if (other["employee"] == doc.get("employee") and other["name"] != doc.get("name")
                    and other["docstatus"] < 2 and other["status"] in ("Open", "Approved")
                    and str(other["from_date"]) <= str(doc["to_date"]) and str(other["to_date"]) >= str(doc["from_date"])):
                raise FrappeError("OverlapError", 417, f"Employee {doc['employee']} has already applied for "
                                  f"{other['leave_type']} between {other['from_date']} and {other['to_date']} : "
                                  f"{_bold(other['name'])}", title="Leave Overlap")

    def _check_links(self, meta: Meta, doc: dict[str, Any]) -> None:
        for fieldname, doctype in meta.links.items():
            value = doc.get(fieldname)
            if value not in (None, "") and str(value) not in self.docs[doctype]:
                raise FrappeError("LinkValidationError", 417, f"Could not find {meta.label(fieldname)}: {value}",
                                  title="Message")
        for tablefield, child in meta.tables.items():
            for row in doc.get(tablefield) or []:
                for fieldname, doctype in child.links.items():
                    value = row.get(fieldname)
                    if value not in (None, "") and str(value) not in self.docs[doctype]:
                        raise FrappeError("LinkValidationError", 417,
                                          f"Could not find Row #{row['idx']}: {child.label(fieldname)}: {value}")

    def _check_unique(self, meta: Meta, doc: dict[str, Any]) -> None:
        for fieldname in meta.unique:
            value = doc.get(fieldname)
            holder = self.unique.get((meta.doctype, fieldname), {}).get(value) if value not in (None, "") else None
            if holder is not None and holder != doc["name"]:
                # base_document.show_unique_validation_message: a UniqueValidationError (417)
                raise FrappeError("UniqueValidationError", 417, f"{meta.label(fieldname)} must be unique",
                                  detail=f"('{meta.doctype}', '{doc['name']}', IntegrityError(1062, "
                                  f"\"Duplicate entry '{value}' for key '{fieldname}'\"))")

    def query(self, doctype: str, params: dict[str, Any]) -> list[Any]:
        return query(self.meta(doctype), self.docs[doctype], params, self._by_modified(doctype))

    def _by_modified(self, doctype: str) -> ByModified:
        cached = self._orders.get(doctype)
        if cached is None or cached[0] != self.version:
            docs = sorted(self.docs[doctype].values(), key=lambda d: (d["modified"], d["name"]))
            cached = (self.version, ([(d["modified"], d["name"]) for d in docs], docs))
            self._orders[doctype] = cached
        return cached[1]

    def store(self, meta: Meta, doc: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """Keep a document, and the index of its unique columns (the database's unique keys)."""
        self.version += 1
        if old is not None:
            self._unindex(meta, old)
        self.docs[meta.doctype][doc["name"]] = doc
        for fieldname in meta.unique:
            if doc.get(fieldname) not in (None, ""):
                self.unique.setdefault((meta.doctype, fieldname), {})[doc[fieldname]] = doc["name"]

    def _unindex(self, meta: Meta, doc: dict[str, Any]) -> None:
        self.version += 1
        for fieldname in meta.unique:
            index = self.unique.get((meta.doctype, fieldname), {})
            if index.get(doc.get(fieldname)) == doc["name"]:
                del index[doc[fieldname]]

    # webhooks

    def _notify(self, doc: dict[str, Any], event: str) -> None:
        data = wire(DOCTYPES[doc["doctype"]], doc)
        body = json.dumps(data).encode("utf-8")  # what Frappe signs and sends: json.dumps(data)
        signature = sign(self.webhook_secret, body)

        def build(url: str) -> OutboundCall:
            return OutboundCall(url, body, {SIGNATURE_HEADER: signature, "Content-Type": "application/json"})

        self.kit.webhooks.send(f"{doc['doctype']} {doc['name']} {event}", build)

    # sessions

    def login(self, user: str, password: str) -> str:
        if PASSWORDS.get(user) != password:
            raise FrappeError("AuthenticationError", 401, "Invalid Login. Try again.", traceback=False)
        sid = secrets.token_hex(28)
        self.sessions[sid] = user
        return sid

    def user(self, headers: dict[str, str], cookies: dict[str, str]) -> str:
        """Who calls: an API key pair, or a login session; Guest is refused as Frappe does."""
        authorization = headers.get("authorization")
        if authorization:
            return _api_key_user(authorization)
        sid = cookies.get("sid")
        if sid and sid != "Guest":
            user = self.sessions.get(sid)
            if user is None:
                raise FrappeError("SessionExpired", 401, "Session Expired", traceback=False)
            return user
        raise FrappeError("PermissionError", 403, "You do not have enough permissions to access this resource. "
                          "Please contact your manager to get access.", title="Not Permitted")


def _api_key_user(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    pair = token.strip()
    if scheme.lower() == "basic":
        try:
            pair = base64.b64decode(pair).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise FrappeError("InvalidAuthorizationToken", 401, "Failed to decode token, please provide a valid "
                              "base64-encoded token.") from None
    elif scheme.lower() != "token":
        raise FrappeError("AuthenticationError", 401, "Invalid authorization header", traceback=False)
    key, _, secret = pair.partition(":")
    if key != API_KEY or not secrets.compare_digest(secret, API_SECRET):
        raise FrappeError("AuthenticationError", 401, "Invalid credentials", traceback=False)
    return USER


# --- documents -----------------------------------------------------------------------------


def _blank(meta: Meta) -> dict[str, Any]:
    doc: dict[str, Any] = dict.fromkeys(meta.columns)
    doc.update(meta.defaults)
    doc.update(doctype=meta.doctype, docstatus=0, idx=0)
    for tablefield in meta.tables:
        doc[tablefield] = []
    return doc


def _apply(meta: Meta, doc: dict[str, Any], data: dict[str, Any]) -> None:
    """Set the columns the doctype has; unknown keys are dropped, as Frappe's db_insert does."""
    for key, value in data.items():
        if key in meta.tables:
            doc[key] = _rows(meta.tables[key], key, value, doc)
        elif key in meta.fields or key == "docstatus":
            doc[key] = _coerce(meta, key, value)


def _rows(child: Meta, tablefield: str, value: Any, parent: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _validation(f"{tablefield} must be a list of rows")
    known = {row["name"]: row for row in parent.get(tablefield) or []}
    rows = []
    for idx, given in enumerate(value, start=1):
        if not isinstance(given, dict):
            raise _validation(f"Row #{idx} of {tablefield} is not a row")
        row = dict(known.get(str(given.get("name") or "")) or dict.fromkeys(CHILD_STANDARD + child.fields))
        for key, item in given.items():
            if key in child.fields:
                row[key] = _coerce(child, key, item)
        row.update(name=row.get("name") or secrets.token_hex(5), idx=idx, parentfield=tablefield,
                   parenttype=parent["doctype"], doctype=child.doctype)
        rows.append(row)
    return rows


def _coerce(meta: Meta, key: str, value: Any) -> Any:
    if key in meta.numbers and value not in (None, ""):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _validation(f"{meta.label(key)}: {value!r} is not a number") from None
        return number if key not in ("docstatus", "idx") and not _is_check(key) else int(number)
    return value


def _is_check(key: str) -> bool:
    return key in ("is_internal_customer", "so_required", "dn_required", "is_frozen", "disabled", "half_day",
                   "is_stock_item", "bypass_credit_limit_check")


def _stamp_children(meta: Meta, doc: dict[str, Any], moment: datetime, user: str) -> None:
    for tablefield in meta.tables:
        for row in doc.get(tablefield) or []:
            row["parent"] = doc["name"]
            row["docstatus"] = doc["docstatus"]
            row["creation"] = row.get("creation") or moment
            row["owner"] = row.get("owner") or user
            row.update(modified=moment, modified_by=user)


def _check_mandatory(meta: Meta, doc: dict[str, Any]) -> None:
    """document._validate_mandatory: every missing field printed, then one MandatoryError."""
    missing: list[tuple[str, str]] = []
    for fieldname in meta.mandatory:
        value = doc.get(fieldname)
        if fieldname in meta.tables:
            if not value:
                missing.append((fieldname, f"Error: Data missing in table {meta.label(fieldname)}"))
        elif value is None or str(value).strip() == "":
            missing.append((fieldname, f"Error: Value missing for {meta.doctype}: {meta.label(fieldname)}"))
    for tablefield, child in meta.tables.items():
        for row in doc.get(tablefield) or []:
            for fieldname in child.mandatory:
                if row.get(fieldname) in (None, ""):
                    missing.append((fieldname, f"Error: {_bold(child.doctype)} Row #{row['idx']}: Value missing for: "
                                               f"{child.label(fieldname)}"))
    if missing:
        raise FrappeError("MandatoryError", 417, missing[0][1], messages=[m for _, m in missing],
                          detail=f"[{meta.doctype}, {doc.get('name')}]: {', '.join(f for f, _ in missing)}")


def _refuse_update_after_submit(meta: Meta, old: dict[str, Any], new: dict[str, Any]) -> None:
    for key in meta.fields:
        if key in meta.allow_on_submit or key in ("status",):
            continue
        if _comparable(old.get(key)) != _comparable(new.get(key)):
            raise FrappeError("UpdateAfterSubmitError", 417,
                              f" Not allowed to change {_bold(meta.label(key))} after submission from "
                              f"{_bold(old.get(key))} to {_bold(new.get(key))}", title="Cannot Update After Submit")
    for tablefield, child in meta.tables.items():
        before = [{k: r.get(k) for k in child.fields} for r in old.get(tablefield) or []]
        after = [{k: r.get(k) for k in child.fields} for r in new.get(tablefield) or []]
        if before != after:
            raise FrappeError("UpdateAfterSubmitError", 417,
                              f" Not allowed to change {_bold(meta.label(tablefield))} after submission",
                              title="Cannot Update After Submit")


def _comparable(value: Any) -> Any:
    return "" if value is None else value


def _set_delivery_dates(doc: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """erpnext SellingController / SalesOrder.validate_delivery_date."""
    if doc.get("order_type") != "Sales":
        return
    dates = [str(row["delivery_date"]) for row in items if row.get("delivery_date")]
    if dates and (not doc.get("delivery_date") or str(doc["delivery_date"]) != max(dates)):
        doc["delivery_date"] = max(dates)
    if not doc.get("delivery_date"):
        if items:
            raise _validation("Please enter Delivery Date")
        return
    for row in items:
        row["delivery_date"] = row.get("delivery_date") or doc["delivery_date"]
        if str(doc["transaction_date"]) > str(row["delivery_date"]):
            raise _validation("Expected Delivery Date should be after Sales Order Date", title="Invalid Delivery Date")


def _compute_totals(doc: dict[str, Any], items: list[dict[str, Any]]) -> None:
    """calculate_taxes_and_totals, reduced to what a sales order without discounts needs."""
    rate_of_exchange = float(doc.get("conversion_rate") or 1.0)
    for row in items:
        qty, rate = float(row.get("qty") or 0), float(row.get("rate") or 0)
        row["amount"] = round(qty * rate, 2)
        row.update(base_rate=round(rate * rate_of_exchange, 2), base_amount=round(row["amount"] * rate_of_exchange, 2),
                   net_rate=rate, net_amount=row["amount"], delivered_qty=row.get("delivered_qty") or 0.0,
                   billed_amt=row.get("billed_amt") or 0.0)
    total = round(sum(row["amount"] for row in items), 2)
    running = total
    for tax in doc.get("taxes") or []:
        if tax.get("charge_type") in (None, "", "On Net Total"):
            tax["charge_type"] = "On Net Total"
            tax["tax_amount"] = round(total * float(tax.get("rate") or 0) / 100, 2)
        running = round(running + float(tax.get("tax_amount") or 0), 2)
        tax["total"] = running
    taxes = round(running - total, 2)
    grand = round(total + taxes, 2)
    rounded = float(math.floor(grand + 0.5))
    doc.update(total_qty=sum(float(row.get("qty") or 0) for row in items), total=total, net_total=total,
               base_total=round(total * rate_of_exchange, 2), base_net_total=round(total * rate_of_exchange, 2),
               total_taxes_and_charges=taxes, grand_total=grand, base_grand_total=round(grand * rate_of_exchange, 2),
               rounded_total=rounded, base_rounded_total=round(rounded * rate_of_exchange, 2),
               rounding_adjustment=round(rounded - grand, 2))


def _sales_order_status(docstatus: int) -> str:
    return {0: "Draft", 1: "To Deliver and Bill", 2: "Cancelled"}.get(docstatus, "Draft")


def _check_submit(meta: Meta, doc: dict[str, Any]) -> None:
    if meta.doctype == "Leave Application" and doc.get("status") not in ("Approved", "Rejected"):
        raise _validation("Only Leave Applications with status 'Approved' and 'Rejected' can be submitted")


def _validate_employee(doc: dict[str, Any]) -> None:
    """erpnext Employee.validate: employee_name from the name parts."""
    parts = [doc.get(k) for k in ("first_name", "middle_name", "last_name")]
    doc["employee_name"] = " ".join(str(p).strip() for p in parts if p not in (None, "") and str(p).strip())


def _validate_leave(doc: dict[str, Any]) -> None:
    start, end = doc.get("from_date"), doc.get("to_date")
    if start and end:
        if str(start) > str(end):
            raise _validation("To date cannot be before from date", title="Invalid Dates")
        days = (date.fromisoformat(str(end)) - date.fromisoformat(str(start))).days + 1
        doc["total_leave_days"] = 0.5 if doc.get("half_day") and days == 1 else float(days)
    doc["posting_date"] = doc.get("posting_date") or date.today().isoformat()


def wire(meta: Meta, doc: dict[str, Any], children: bool = True) -> dict[str, Any]:
    """A document as Frappe's JSON shows it: datetimes as `str(datetime)`, child rows inside."""
    out = {key: _wire_value(doc.get(key)) for key in meta.columns}
    out["doctype"] = meta.doctype
    if children:
        for tablefield in meta.tables:
            out[tablefield] = [{k: _wire_value(v) for k, v in row.items()} for row in doc.get(tablefield) or []]
    return out


def _wire_value(value: Any) -> Any:
    return str(value) if isinstance(value, datetime) else value


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None


# --- list queries --------------------------------------------------------------------------


def _parse_json(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        if what == "fields":
            return [part.strip() for part in text.split(",") if part.strip()]
        raise _validation(f"{what} must be JSON") from None


def _column(meta: Meta, raw: str) -> str:
    fieldname = _BACKTICKS.sub("", raw).strip()
    if fieldname not in meta.columns:
        raise FrappeError("DataError", 417, f"Field not permitted in query: {fieldname}")
    return fieldname


def _conditions(meta: Meta, raw: Any) -> list[tuple[str, str, Any]]:
    """Frappe's filter forms: {field: value}, {field: [op, value]}, [[field, op, value]], [[doctype, field, op, value]]."""
    data = _parse_json(raw, "filters")
    if not data:
        return []
    items: list[Any] = [[k, *(v if isinstance(v, list) else ["=", v])] for k, v in data.items()] \
        if isinstance(data, dict) else list(data)
    conditions = []
    for item in items:
        if not isinstance(item, list) or not 2 <= len(item) <= 4:
            raise _validation(f"Filter must be a tuple or list (in a list): {item!r}")
        if len(item) == 4:
            item = item[1:]
        fieldname, op, value = (item[0], "=", item[1]) if len(item) == 2 else item
        op = str(op).lower().strip()
        if op not in OPERATORS:
            raise _validation(f"Operator must be one of {', '.join(OPERATORS)}")
        conditions.append((_column(meta, str(fieldname)), op, value))
    return conditions


Predicate = Callable[[dict[str, Any]], bool]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}


def _predicate(meta: Meta, condition: tuple[str, str, Any]) -> Predicate:
    """One condition compiled once per query: the filter value is read before the rows are."""
    fieldname, op, value = condition
    here = _getter(meta, fieldname)

    if op == "is":
        wanted = str(value).lower() == "set"
        return lambda doc: (doc.get(fieldname) not in (None, "")) == wanted
    if op in ("in", "not in"):
        values = value if isinstance(value, list) else [v.strip() for v in str(value or "").split(",")]
        inside = op == "in"
        if fieldname not in DATETIMES and fieldname not in meta.numbers:
            # MariaDB's default collation (utf8mb4_unicode_ci) compares text without case
            folded = {str(_key(meta, fieldname, v)).casefold() for v in values}
            return lambda doc: (here(doc).casefold() in folded) == inside
        keys = {_key(meta, fieldname, v) for v in values}
        return lambda doc: (here(doc) in keys) == inside
    if op in ("like", "not like"):
        pattern = re.compile(re.escape(str(value or "")).replace("%", ".*").replace("_", "."),
                             re.IGNORECASE | re.DOTALL)
        like = op == "like"
        return lambda doc: (pattern.fullmatch("" if doc.get(fieldname) is None else str(doc[fieldname])) is not None) == like
    if op == "between":
        low, high = (_key(meta, fieldname, v) for v in (value if isinstance(value, list) else [value, value])[:2])
        return lambda doc: low <= here(doc) <= high
    there, compare = _key(meta, fieldname, value), _COMPARE[op]
    return lambda doc: compare(here(doc), there)


def _key(meta: Meta, fieldname: str, value: Any) -> Any:
    """A value in the column's type, so that comparisons and sorting match SQL's (NULL first)."""
    if fieldname in DATETIMES:
        moment = _as_datetime(value) if value not in (None, "") else None
        return moment if moment is not None else datetime.min
    if fieldname in meta.numbers:
        try:
            return float(value or 0)
        except (TypeError, ValueError):
            return 0.0
    return "" if value is None else str(value)


def _getter(meta: Meta, fieldname: str) -> Callable[[dict[str, Any]], Any]:
    """`_key` of a stored column, fast: stored datetimes are datetimes, stored numbers numbers."""
    if fieldname in DATETIMES:
        return lambda doc: doc.get(fieldname) or datetime.min
    if fieldname in meta.numbers:
        return lambda doc: _key(meta, fieldname, doc.get(fieldname))
    return lambda doc: "" if doc.get(fieldname) is None else str(doc[fieldname])


def _order(meta: Meta, raw: Any) -> list[tuple[str, bool]]:
    text = str(raw or "").strip() or "modified desc"
    order = []
    for part in text.split(","):
        words = part.strip().split()
        if not words:
            continue
        direction = words[1].lower() if len(words) > 1 else "asc"
        if direction not in ("asc", "desc") or len(words) > 2:
            raise _validation(f"Invalid order_by: {part.strip()}")
        order.append((_column(meta, words[0]), direction == "desc"))
    return order


def _fields(meta: Meta, raw: Any) -> list[tuple[str, str]]:
    """(column, key in the answer); `*` is every column of the parent, never child tables."""
    data = _parse_json(raw, "fields")
    if data is None:
        return [("name", "name")]
    items = [data] if isinstance(data, str) else list(data)
    chosen: list[tuple[str, str]] = []
    for item in items:
        text = str(item).strip()
        if text in ("*", "`*`") or text.endswith(".*"):
            chosen.extend((c, c) for c in meta.columns)
            continue
        parts = re.split(r"\s+as\s+", text, maxsplit=1, flags=re.IGNORECASE)
        column = _column(meta, parts[0])
        alias = parts[1].strip().strip("`") if len(parts) > 1 else column
        chosen.append((column, alias))
    return chosen


ByModified = tuple[list[tuple[datetime, str]], list[dict[str, Any]]]
_KEYSET_ORDERS = ([("modified", False), ("name", False)], [("modified", False)])


def query(meta: Meta, table: dict[str, dict[str, Any]], params: dict[str, Any],
          by_modified: ByModified | None = None) -> list[Any]:
    """frappe.client.get_list over one table (see the module docstring for what it takes).

    `by_modified` is the table ordered by (modified, name): a query in that order (a pull)
    starts at its lower bound on `modified` and stops once its page is full, as the
    database's index on `modified` lets MariaDB do.
    """
    raw_conditions = _conditions(meta, params.get("filters"))
    conditions = [_predicate(meta, c) for c in raw_conditions]
    alternatives = [_predicate(meta, c) for c in _conditions(meta, params.get("or_filters"))]
    order = _order(meta, params.get("order_by"))
    columns = _fields(meta, params.get("fields"))
    start = _int(params.get("limit_start"), 0)
    length = _int(params.get("limit_page_length", params.get("limit")), 20)
    wanted = start + length if length > 0 else None

    def matches(doc: dict[str, Any]) -> bool:
        return all(test(doc) for test in conditions) and (not alternatives or any(test(doc) for test in alternatives))

    if by_modified is not None and order in _KEYSET_ORDERS:
        rows = _scan(by_modified, _modified_floor(raw_conditions), matches, wanted)
    else:
        rows = _sorted(meta, [doc for doc in table.values() if matches(doc)], order, wanted)
    rows = rows[start : start + length] if length > 0 else rows[start:]
    if _false(params.get("as_dict")):
        return [[_wire_value(doc.get(c)) for c, _ in columns] for doc in rows]
    return [{alias: _wire_value(doc.get(c)) for c, alias in columns} for doc in rows]


def _modified_floor(conditions: list[tuple[str, str, Any]]) -> datetime | None:
    """The lowest `modified` the AND-ed filters allow, if they bound it from below."""
    floors = [_as_datetime(value) for fieldname, op, value in conditions
              if fieldname == "modified" and op in (">", ">=", "=")]
    known = [floor for floor in floors if floor is not None]
    return max(known) if known else None


def _scan(by_modified: ByModified, floor: datetime | None, matches: Callable[[dict[str, Any]], bool],
          wanted: int | None) -> list[dict[str, Any]]:
    keys, docs = by_modified
    begin = bisect.bisect_left(keys, (floor, "")) if floor is not None else 0
    rows: list[dict[str, Any]] = []
    for doc in itertools.islice(docs, begin, None):
        if matches(doc):
            rows.append(doc)
            if wanted is not None and len(rows) >= wanted:
                break
    return rows


def _sorted(meta: Meta, rows: list[dict[str, Any]], order: list[tuple[str, bool]],
            first: int | None) -> list[dict[str, Any]]:
    """Rows in `order`; only the `first` ones when a page is asked for (a pull's common case)."""
    getters = [_getter(meta, f) for f, _ in order]
    directions = {descending for _, descending in order}
    if len(directions) == 1:
        descending = directions.pop()

        def key(doc: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(get(doc) for get in getters)

        if first is not None and first < len(rows) // 4:
            pick = heapq.nlargest if descending else heapq.nsmallest
            return pick(first, rows, key=key)
        return sorted(rows, key=key, reverse=descending)
    for get, (_, descending) in zip(reversed(getters), reversed(order), strict=True):
        rows = sorted(rows, key=get, reverse=descending)
    return rows


def _int(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        raise _validation(f"{value!r} is not an integer") from None


def _false(value: Any) -> bool:
    return value is not None and str(value).strip().lower() in ("0", "false", "no")


# --- HTTP ----------------------------------------------------------------------------------


def error_response(error: FrappeError) -> Response:
    """frappe.utils.response.report_error: status, exc_type, exception, exc, _server_messages."""
    messages = error.messages
    body: dict[str, Any] = {"exc_type": error.exc_type}
    if error.traceback:
        line = f"frappe.exceptions.{error.exc_type}: {error.detail}"
        body["exception"] = line
        body["exc"] = json.dumps([f"Traceback (most recent call last):\n  File \"apps/frappe/frappe/app.py\", "
                                  f"line 114, in application\n{line}\n"])
    body["_server_messages"] = json.dumps([json.dumps({"message": m, "title": error.title, "indicator": "red",
                                                       "raise_exception": 1}) for m in messages])
    return JSONResponse(body, status_code=error.status)


def _answer(key: str, value: Any, status: int = 200) -> Response:
    return Response(json.dumps({key: value}, ensure_ascii=False, default=str), status_code=status,
                    media_type="application/json")


async def _params(request: Request) -> dict[str, Any]:
    """Query string, then a form or JSON body, as Frappe merges them into form_dict."""
    params: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return params
    try:
        body = json.loads(raw)
    except ValueError:
        if "=" in raw.decode("utf-8", "replace"):
            params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            return params
        raise _validation("Request body is not JSON") from None
    if isinstance(body, dict):
        params.update(body)
    else:
        params["data"] = body
    return params


async def _document_body(request: Request) -> dict[str, Any]:
    """frappe.api.get_request_form_data: form field `data` (JSON text) or the JSON body itself."""
    params = await _params(request)
    data = params.get("data", {k: v for k, v in params.items() if k not in request.query_params})
    data = _parse_json(data, "data") if isinstance(data, str) else data
    if not isinstance(data, dict):
        raise _validation("The document must be a JSON object")
    return data


def _fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        wait = max(1, math.ceil(spec.retry_after))
        error = FrappeError("TooManyRequestsError", 429, "You hit the rate limit because of too many requests. "
                            "Please try after sometime.", traceback=False)
        response = error_response(error)
        response.headers.update({"Retry-After": str(wait), "X-RateLimit-Limit": "300", "X-RateLimit-Reset": str(wait),
                                 "X-RateLimit-Used": "300"})
        return response
    return HTMLResponse("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                        "Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n",
                        status_code=502)


def create_app(options: SandboxOptions) -> FastAPI:
    kit = SandboxKit("erpnext", options, _fault_answer, webhook_delays=WEBHOOK_DELAYS)
    site = Site(kit, str(options.extra.get("timezone") or SITE_TIMEZONE),
                str(options.extra.get("webhook_secret") or WEBHOOK_SECRET))
    _seed(site, options)
    app = kit.create_app("ERPNext sandbox")
    app.state.site = site

    def call(request: Request, work: Callable[[str], Response], authenticate: bool = True) -> Response:
        try:
            with site.lock:
                user = site.user(dict(request.headers), dict(request.cookies)) if authenticate else "Guest"
                return work(user)
        except FrappeError as error:
            return error_response(error)

    @app.get("/api/resource/{doctype}")
    async def list_documents(doctype: str, request: Request) -> Response:
        try:
            params = await _params(request)
        except FrappeError as error:
            return error_response(error)
        return call(request, lambda user: _answer("data", site.query(doctype, params)))

    @app.post("/api/resource/{doctype}")
    async def insert_document(doctype: str, request: Request) -> Response:
        try:
            data = await _document_body(request)
        except FrappeError as error:
            return error_response(error)
        return call(request, lambda user: _answer("data", wire(site.meta(doctype), site.insert(doctype, data, user))))

    @app.get("/api/resource/{doctype}/{name:path}")
    def get_document(doctype: str, name: str, request: Request) -> Response:
        return call(request, lambda user: _answer("data", wire(site.meta(doctype), site.load(doctype, name))))

    @app.put("/api/resource/{doctype}/{name:path}")
    async def update_document(doctype: str, name: str, request: Request) -> Response:
        try:
            data = await _document_body(request)
        except FrappeError as error:
            return error_response(error)
        return call(request, lambda user: _answer("data", wire(site.meta(doctype),
                                                                site.update(doctype, name, data, user))))

    @app.delete("/api/resource/{doctype}/{name:path}")
    def delete_document(doctype: str, name: str, request: Request) -> Response:
        def work(user: str) -> Response:
            site.delete(doctype, name)
            return _answer("message", "ok", 202)

        return call(request, work)

    @app.api_route("/api/method/{method:path}", methods=["GET", "POST"])
    async def method(method: str, request: Request) -> Response:
        try:
            params = await _params(request)
        except FrappeError as error:
            return error_response(error)
        return _method(site, method.strip("/"), params, request, call)

    @app.api_route("/", methods=["GET", "POST"])
    async def command(request: Request) -> Response:
        try:
            params = await _params(request)
        except FrappeError as error:
            return error_response(error)
        cmd = str(params.pop("cmd", "") or "")
        if not cmd:
            return HTMLResponse("<html><body>ERPNext sandbox</body></html>")
        return _method(site, cmd, params, request, call)

    _control_routes(app, site)
    return app


def _method(site: Site, name: str, params: dict[str, Any], request: Request,
            call: Callable[..., Response]) -> Response:
    if name == "login":
        def login(_: str) -> Response:
            sid = site.login(str(params.get("usr") or ""), str(params.get("pwd") or ""))
            response = _answer("message", "Logged In")
            response.body = json.dumps({"message": "Logged In", "home_page": "/app",
                                        "full_name": str(params.get("usr"))}).encode("utf-8")
            response.headers["content-length"] = str(len(response.body))
            response.set_cookie("sid", sid, path="/", httponly=True)
            return response

        return call(request, login, authenticate=False)
    if name == "logout":
        def logout(_: str) -> Response:
            site.sessions.pop(request.cookies.get("sid", ""), None)
            return _answer("message", None)

        return call(request, logout, authenticate=False)
    handler = _CLIENT_METHODS.get(name)
    if handler is None:
        return error_response(FrappeError("DoesNotExistError", 404, f"Failed to get method for command {name}",
                                          traceback=False))
    return call(request, lambda user: _answer("message", handler(site, params, user)))


def _client_get_list(site: Site, params: dict[str, Any], user: str) -> Any:
    return site.query(str(params.get("doctype") or ""), params)


def _client_get(site: Site, params: dict[str, Any], user: str) -> Any:
    doctype = str(params.get("doctype") or "")
    meta = site.meta(doctype)
    name = params.get("name")
    if not name and params.get("filters"):
        rows = site.query(doctype, {"filters": params["filters"], "limit_page_length": 1})
        if not rows:
            raise _not_found(doctype, str(params.get("filters")))
        name = rows[0]["name"]
    return wire(meta, site.load(doctype, str(name)))


def _client_get_value(site: Site, params: dict[str, Any], user: str) -> Any:
    doctype = str(params.get("doctype") or "")
    raw = str(params.get("fieldname") or "name")
    fieldname = _parse_json(raw, "fields") if raw.startswith("[") else [raw]
    filters = params.get("filters")
    if isinstance(filters, str) and not filters.strip().startswith(("{", "[")):
        filters = {"name": filters}
    rows = site.query(doctype, {"filters": filters, "fields": fieldname, "limit_page_length": 1})
    return rows[0] if rows else None


def _client_insert(site: Site, params: dict[str, Any], user: str) -> Any:
    doc = _parse_json(params.get("doc"), "doc")
    if not isinstance(doc, dict) or not doc.get("doctype"):
        raise _validation("doc must be a JSON object with a doctype")
    return wire(site.meta(doc["doctype"]), site.insert(str(doc["doctype"]), doc, user))


def _client_set_value(site: Site, params: dict[str, Any], user: str) -> Any:
    doctype, name = str(params.get("doctype") or ""), str(params.get("name") or "")
    fieldname = params.get("fieldname")
    changes = _parse_json(fieldname, "fieldname") if isinstance(fieldname, str) and fieldname.strip().startswith("{") \
        else {str(fieldname): params.get("value")}
    return wire(site.meta(doctype), site.update(doctype, name, changes, user))


def _client_submit(site: Site, params: dict[str, Any], user: str) -> Any:
    doc = _parse_json(params.get("doc") or params.get("doclist"), "doc")
    if not isinstance(doc, dict) or not doc.get("doctype") or not doc.get("name"):
        raise _validation("doc must be a JSON object with a doctype and a name")
    changes = {k: v for k, v in doc.items() if k != "modified"}
    return wire(site.meta(doc["doctype"]), site.update(str(doc["doctype"]), str(doc["name"]),
                                                        {**changes, "docstatus": 1}, user))


def _client_cancel(site: Site, params: dict[str, Any], user: str) -> Any:
    doctype, name = str(params.get("doctype") or ""), str(params.get("name") or "")
    return wire(site.meta(doctype), site.update(doctype, name, {"docstatus": 2}, user))


def _client_delete(site: Site, params: dict[str, Any], user: str) -> Any:
    site.delete(str(params.get("doctype") or ""), str(params.get("name") or ""))
    return None


_CLIENT_METHODS: dict[str, Callable[[Site, dict[str, Any], str], Any]] = {
    "frappe.auth.get_logged_user": lambda site, params, user: user,
    "frappe.client.get_list": _client_get_list,
    "frappe.client.get": _client_get,
    "frappe.client.get_value": _client_get_value,
    "frappe.client.insert": _client_insert,
    "frappe.client.set_value": _client_set_value,
    "frappe.client.submit": _client_submit,
    "frappe.client.cancel": _client_cancel,
    "frappe.client.delete": _client_delete,
}


_JSON_BODY = Body(...)


def _control_routes(app: FastAPI, site: Site) -> None:
    @app.post("/_sandbox/touch")
    def touch(body: dict[str, Any] = _JSON_BODY) -> dict[str, Any]:
        with site.lock:
            try:
                count = site.touch(str(body.get("object")), [str(i) for i in body.get("ids") or []])
            except FrappeError as error:
                return {"touched": 0, "error": error.message}
        return {"touched": count}

    @app.get("/_sandbox/records/{doctype}")
    def records(doctype: str) -> Response:
        with site.lock:
            try:
                meta = site.meta(doctype)
            except FrappeError:
                return _answer("records", [])
            docs = [wire(meta, doc) for doc in site.docs[doctype].values()]
        return _answer("records", docs)

    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        with site.lock:
            ended = len(site.sessions)
            site.sessions.clear()
        return {"sessions_ended": ended}


# --- seed ----------------------------------------------------------------------------------

_BASE = datetime(2024, 1, 2, 9, 0, 0)
_GROUPS = {"CN": ("Commercial", "China"), "DE": ("Commercial", "Germany"), "GB": ("Commercial", "United Kingdom"),
           "FR": ("Commercial", "France"), "US": ("Commercial", "United States")}
_CURRENCY = {"CN": "CNY", "DE": "EUR", "FR": "EUR", "GB": "GBP", "US": "USD"}


def _seed_moment(index: int) -> datetime:
    """Pairs of records share a `modified` (a bulk import); every tenth pair on a whole second."""
    pair = index // 2
    micro = 0 if pair % 10 == 0 else (pair * 7919) % 1_000_000 or 1
    return _BASE + timedelta(seconds=53 * pair, microseconds=micro)


def _seed(site: Site, options: SandboxOptions) -> None:
    for i, (code, name, group, uom, rate) in enumerate(SEED_ITEMS):
        moment = _BASE - timedelta(days=30, minutes=i)
        doc = _blank(ITEM)
        doc.update(name=code, item_code=code, item_name=name, item_group=group, stock_uom=uom, description=name,
                   standard_rate=rate, creation=moment, modified=moment, owner="Administrator",
                   modified_by="Administrator")
        site.docs["Item"][code] = doc
    customers = [_seed_customer(c, i) for i, c in enumerate(companies(options.records, options.seed))]
    site.docs["Customer"] = {doc["name"]: doc for doc in customers}
    orders = int(options.extra.get("sales_orders", min(options.records // 4, 500)))
    for i in range(orders):
        doc = _seed_sales_order(site, customers[i % len(customers)], i) if customers else None
        if doc is not None:
            site.docs["Sales Order"][doc["name"]] = doc
    _seed_hr(site)
    if options.records:
        for i, (employee, employee_name, status) in enumerate((("HR-EMP-00001", "王伟", "Open"),
                                                               ("HR-EMP-00002", "Anna Müller", "Approved"),
                                                               ("HR-EMP-00003", "李娜", "Rejected"))):
            _seed_leave(site, i, employee, employee_name, status)
    site._last = max([_BASE, *(d["modified"] for t in site.docs.values() for d in t.values())])


def _seed_customer(company: Company, index: int) -> dict[str, Any]:
    moment = _seed_moment(index)
    group, territory = _GROUPS.get(company.country_code, ("Commercial", "All Territories"))
    doc = _blank(CUSTOMER)
    doc.update(name=company.name, customer_name=company.name, customer_group=group, territory=territory,
               tax_id=company.tax_id, email_id=company.email, mobile_no=company.phone, website=company.website,
               default_currency=_CURRENCY.get(company.country_code), industry=company.industry,
               language="zh" if company.country_code == "CN" else "en",
               creation=moment - timedelta(days=90), modified=moment, owner="Administrator",
               modified_by="Administrator")
    return doc


def _seed_sales_order(site: Site, customer: dict[str, Any], index: int) -> dict[str, Any]:
    moment = _seed_moment(index) + timedelta(days=10)
    code, name, _group, _uom, rate = SEED_ITEMS[index % len(SEED_ITEMS)]
    second = SEED_ITEMS[(index + 2) % len(SEED_ITEMS)]
    doc = _blank(SALES_ORDER)
    day = moment.date()
    items = [{"item_code": code, "qty": float(1 + index % 7), "rate": rate},
             {"item_code": second[0], "qty": float(2 + index % 3), "rate": second[4]}]
    doc.update(customer=customer["name"], transaction_date=day.isoformat(),
               delivery_date=(day + timedelta(days=14)).isoformat(), po_no=f"PO-{2024_0000 + index}",
               currency=customer.get("default_currency") or "CNY", docstatus=1 if index % 3 == 0 else 0)
    doc["items"] = _rows(SALES_ORDER_ITEM, "items", items, doc)
    site._validate(SALES_ORDER, doc, None)
    doc["name"] = site._series_name(SALES_ORDER.series or "", moment)
    doc.update(creation=moment, modified=moment, owner="Administrator", modified_by="Administrator")
    _stamp_children(SALES_ORDER, doc, moment, "Administrator")
    return doc


# (first name, last name, employee number, user / company e-mail, status, department)
SEED_EMPLOYEES = (
    ("王伟", "", "EMP-0001", "wang.wei@synchub-demo.cn", "Active", "销售部"),
    ("Anna", "Müller", "EMP-0002", "anna.mueller@synchub-demo.de", "Active", "Sales"),
    ("李娜", "", "EMP-0003", "li.na@synchub-demo.cn", "Active", "财务部"),
    ("赵敏", "", "EMP-0004", "zhao.min@synchub-demo.cn", "Active", "销售部"),
    ("杨磊", "", "EMP-0005", "yang.lei@synchub-demo.cn", "Active", "销售部"),
    ("张伟", "", "EMP-0006", "zhang.wei@synchub-demo.cn", "Active", "销售部"),
    ("John", "Smith", "EMP-0007", "john.smith@synchub-demo.com", "Active", "Operations"),
    ("王伟", "", "EMP-0008", "wang.wei2@synchub-demo.cn", "Left", "仓储部"),  # a namesake who has left
    ("陈静", "", "EMP-0009", "chen.jing@synchub-demo.cn", "Inactive", "人事部"),
    ("刘洋", "", "EMP-0010", "liu.yang@synchub-demo.cn", "Active", "研发部"),
    ("刘洋", "", "EMP-0011", "liu.yang2@synchub-demo.cn", "Active", "生产部"),  # two active namesakes
)
SEED_LEAVE_TYPES = ("Annual Leave", "Sick Leave", "Casual Leave", "Leave Without Pay", "Compensatory Off",
                    "Marriage Leave", "Maternity Leave", "Paternity Leave", "Bereavement Leave", "Privilege Leave")


def _seed_hr(site: Site) -> None:
    """Employees HR-EMP-00001.. and the Leave Types the leave mapping names."""
    for i, (first, last, number, email, status, department) in enumerate(SEED_EMPLOYEES):
        moment = _BASE - timedelta(days=60, minutes=i)
        doc = _blank(EMPLOYEE)
        doc.update(first_name=first, last_name=last or None, employee_number=number, user_id=email,
                   company_email=email, prefered_contact_email="Company Email", prefered_email=email, status=status,
                   department=department, gender="Female" if i % 3 == 1 else "Male",
                   date_of_birth=date(1985 + i, 1 + i % 12, 10).isoformat(),
                   date_of_joining=date(2018 + i % 5, 3, 1).isoformat(),
                   relieving_date="2023-12-31" if status == "Left" else None)
        _validate_employee(doc)
        doc["name"] = site._series_name(EMPLOYEE.series or "", moment)
        doc.update(creation=moment, modified=moment, owner="Administrator", modified_by="Administrator")
        site.docs["Employee"][doc["name"]] = doc
    for i, leave_type in enumerate(SEED_LEAVE_TYPES):
        moment = _BASE - timedelta(days=60, hours=1, minutes=i)
        doc = _blank(LEAVE_TYPE)
        doc.update(name=leave_type, leave_type_name=leave_type, is_lwp=1 if leave_type == "Leave Without Pay" else 0,
                   is_compensatory=1 if leave_type == "Compensatory Off" else 0,
                   is_carry_forward=1 if leave_type in ("Annual Leave", "Privilege Leave") else 0,
                   max_leaves_allowed=15.0 if leave_type == "Annual Leave" else 0.0,
                   creation=moment, modified=moment, owner="Administrator", modified_by="Administrator")
        site.docs["Leave Type"][leave_type] = doc


def _seed_leave(site: Site, index: int, employee: str, employee_name: str, status: str) -> None:
    moment = _BASE + timedelta(days=5, hours=index)
    doc = _blank(LEAVE_APPLICATION)
    start = date(2024, 2, 5 + 7 * index)
    doc.update(employee=employee, employee_name=employee_name, leave_type="Annual Leave" if index != 1 else "Sick Leave",
               from_date=start.isoformat(), to_date=(start + timedelta(days=index + 1)).isoformat(), status=status,
               leave_approver="manager@example.com", docstatus=0 if status == "Open" else 1)
    _validate_leave(doc)
    doc["name"] = site._series_name(LEAVE_APPLICATION.series or "", moment)
    doc.update(creation=moment, modified=moment, owner="Administrator", modified_by="Administrator")
    site.docs["Leave Application"][doc["name"]] = doc


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry pointing at this sandbox (sandbox-only demo credentials)."""
    return {
        "connector": "erpnext",
        "base_url": base_url,
        "auth": {"api_key": API_KEY, "api_secret": API_SECRET},
        "webhook": {"secret": WEBHOOK_SECRET},
        "options": {"timezone": SITE_TIMEZONE},
    }


