"""A Feishu open-platform sandbox: tenant tokens, approval v4 instances and encrypted callbacks.

It speaks Feishu's wire protocol under its real paths, so that the connector and Feishu's own
SDK (lark-oapi, with its domain set to this server) work against it unchanged:

- `POST /open-apis/auth/v3/tenant_access_token/internal` issues `t-...` tokens that live 7200 s
  (`POST /_sandbox/expire-tokens` ends them all); a call with an expired or unknown token gets
  code 99991663, without one 99991661;
- `POST /open-apis/approval/v4/instances` creates an instance from a JSON-encoded `form`
  string, validated against the definition's widgets (code 1390001 "param is invalid" with the
  reason), `uuid` idempotency (a second create with a used uuid: code 60012), an unknown
  definition 1390002; `GET .../instances/{code}` (1390003 when missing);
  `GET .../instances?approval_code&start_time&end_time&page_size&page_token` lists codes by
  start time; `POST .../instances/cancel` withdraws a pending instance as its applicant;
- approval definitions (contract, leave, overtime) with their form widgets, and users, are
  seeded; `options.records` contract instances are seeded from `seed.companies` (a quarter as
  many leave and overtime requests), all pending on one approver;
- every instance status change (created PENDING, APPROVED, REJECTED, CANCELED) is delivered to
  the configured callback URL as Feishu's 1.0 `approval_instance` event, AES-encrypted and
  signed (`X-Lark-Signature`), and retried after 15 s, 5 min, 1 h and 6 h (scaled) until the
  hub answers HTTP 200;
- faults: `rate_limit` is HTTP 429 code 99991400 with `x-ogw-ratelimit-reset`; `error` is
  HTTP 500 code 1395001.

Control routes besides the kit's: `POST /_sandbox/instances/{code}/decide` (an approver
agrees or refuses), `POST /_sandbox/touch` (a CC timeline entry at one shared time),
`GET /_sandbox/records/{kind}`, `POST /_sandbox/verify-url` (sends a url_verification
challenge to the callback URL, as saving the URL in the developer console does).
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Body, Depends, FastAPI, Request
from starlette.responses import JSONResponse, Response

from connectors.feishu import crypto
from connectors.feishu.webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from connectors.sandbox import FaultSpec, SandboxKit, SandboxOptions
from connectors.sandbox.seed import Company, companies
from connectors.sandbox.webhooks import OutboundCall

# Sandbox-only demo credentials (they open nothing but this sandbox).
APP_ID = "cli_a5f0sandbox0001"
APP_SECRET = "sandbox-feishu-app-secret-0001"
ENCRYPT_KEY = "sandbox-feishu-encrypt-key"
VERIFICATION_TOKEN = "sandbox-feishu-verification-token"
TENANT_KEY = "2ed263bf32cf1651"
TOKEN_TTL = 7200
RETRY_DELAYS = (15.0, 300.0, 3600.0, 21600.0)
CURRENCIES = frozenset({"CNY", "USD", "EUR", "GBP", "HKD", "JPY"})
DAY_MS = 86_400_000
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
INSTANCES = "/open-apis/approval/v4/instances"


async def _vendor_body(request: Request) -> dict[str, Any] | None:
    """The JSON object of a vendor call whatever its Content-Type (Feishu's SDK sends none on
    its token call); None when the body is not a JSON object."""
    raw = await request.body()
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# FastAPI parameter markers, made once
_VENDOR_BODY: Any = Depends(_vendor_body)
_OPTIONAL_BODY: Any = Body(default_factory=dict)
_REQUIRED_BODY: Any = Body(...)


@dataclass(frozen=True)
class WidgetDef:
    id: str
    type: str
    name: str
    required: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Definition:
    kind: str
    code: str
    name: str
    node_name: str
    widgets: tuple[WidgetDef, ...]

    def widget(self, widget_id: str) -> WidgetDef | None:
        return next((w for w in self.widgets if w.id == widget_id), None)


DEFINITIONS = (
    Definition("contract", "2D3C1F7A-5B1E-4C8E-9A51-7C0E3A6B9F01", "销售合同审批", "财务审批", (
        WidgetDef("widget_customer", "input", "客户名称", True),
        WidgetDef("widget_order_no", "input", "订单编号", True),
        WidgetDef("widget_order_ref", "input", "关联订单"),
        WidgetDef("widget_amount", "amount", "合同金额", True),
    )),
    Definition("leave", "5E8A0B42-1C7D-4F3A-8B26-D4E9F0A1C302", "请假", "直属上级审批", (
        WidgetDef("widget_leave_type", "radio", "假期类型", True, ("年假", "事假", "病假", "调休", "婚假", "产假", "陪产假")),
        WidgetDef("widget_leave_period", "dateInterval", "请假时间", True),
        WidgetDef("widget_leave_reason", "textarea", "请假事由"),
    )),
    Definition("overtime", "9C1D7E55-3A2B-4D6F-A0E8-B7C5D3F1E403", "加班", "直属上级审批", (
        WidgetDef("widget_ot_start", "date", "开始时间", True),
        WidgetDef("widget_ot_end", "date", "结束时间", True),
        WidgetDef("widget_ot_hours", "number", "加班时长（小时）", True),
        WidgetDef("widget_ot_reason", "textarea", "加班原因"),
    )),
)
BY_KIND = {d.kind: d for d in DEFINITIONS}
BY_CODE = {d.code: d for d in DEFINITIONS}

# canonical form key -> widget, as `options.forms` declares it for the connector
FORMS: dict[str, dict[str, dict[str, str]]] = {
    "contract": {
        "customer_name": {"id": "widget_customer", "type": "input"},
        "order_number": {"id": "widget_order_no", "type": "input"},
        "order_ref": {"id": "widget_order_ref", "type": "input"},
        "amount": {"id": "widget_amount", "type": "amount"},
        "currency": {"id": "widget_amount", "type": "amount", "key": "currency"},
    },
    "leave": {
        "leave_type": {"id": "widget_leave_type", "type": "radio"},
        "start": {"id": "widget_leave_period", "type": "dateInterval", "key": "start"},
        "end": {"id": "widget_leave_period", "type": "dateInterval", "key": "end"},
        "days": {"id": "widget_leave_period", "type": "dateInterval", "key": "interval"},
        "reason": {"id": "widget_leave_reason", "type": "textarea"},
    },
    "overtime": {
        "start": {"id": "widget_ot_start", "type": "date"},
        "end": {"id": "widget_ot_end", "type": "date"},
        "hours": {"id": "widget_ot_hours", "type": "number"},
        "reason": {"id": "widget_ot_reason", "type": "textarea"},
    },
}


@dataclass(frozen=True)
class User:
    user_id: str
    open_id: str
    name: str
    department_id: str


def _users() -> tuple[User, ...]:
    names = ("王伟", "李娜", "张敏", "刘洋", "陈静", "杨磊", "赵婷", "黄杰")
    rng = random.Random(2024)
    return tuple(User(f"{rng.getrandbits(32):08x}", f"ou_{rng.getrandbits(128):032x}", name,
                      f"od-{rng.getrandbits(64):016x}") for name in names)


USERS = _users()
APPROVER = USERS[0]  # 王伟 approves every definition (one node)
DEFAULT_APPLICANT = USERS[1]


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry that points the connector at this sandbox."""
    return {
        "connector": "feishu",
        "base_url": base_url,
        "auth": {"app_id": APP_ID, "app_secret": APP_SECRET},
        "webhook": {"encrypt_key": ENCRYPT_KEY, "verification_token": VERIFICATION_TOKEN},
        "options": {
            "approval_codes": {d.kind: d.code for d in DEFINITIONS},
            "forms": FORMS,
            "default_applicant": DEFAULT_APPLICANT.open_id,
        },
    }


# --- errors --------------------------------------------------------------------------------


class FeishuError(Exception):
    """An answer in Feishu's envelope: `{"code", "msg", "data": {}}` with an HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> Response:
        return _json({"code": self.code, "msg": self.msg, "data": {}}, self.status)


def invalid(reason: str) -> FeishuError:
    return FeishuError(1390001, f"param is invalid: {reason}")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(text, status, headers, media_type="application/json; charset=utf-8")


def fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        wait = f"{spec.retry_after:g}"
        return JSONResponse({"code": 99991400, "msg": "request trigger frequency limit"}, 429,
                            {"x-ogw-ratelimit-limit": "50", "x-ogw-ratelimit-reset": wait})
    return JSONResponse({"code": 1395001, "msg": "There have been some errors. Please try again later"}, 500)


# --- state ---------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _rfc3339(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=8)))
    return moment.isoformat(timespec="seconds")


def _parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class FeishuSandbox:
    """The tenant's state behind one lock (see the module docstring)."""

    kit: SandboxKit
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> monotonic expiry
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # instance code -> kind
    started: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # approval code -> sorted (start, code)
    uuids: dict[str, str] = field(default_factory=dict)  # lower-case uuid -> instance code
    serial: int = 0
    task_seq: int = 7_300_000_000_000_000_000
    last_start: int = 0
    token_ttl: float = TOKEN_TTL

    # auth

    def issue_token(self) -> str:
        token = "t-" + secrets.token_hex(20)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.token_ttl
        return token

    def check_token(self, request: Request) -> None:
        value = request.headers.get("authorization") or ""
        if not value.startswith("Bearer ") or not value[7:].strip():
            raise FeishuError(99991661, "Missing access token for authorization. Please make a request with token attached.")
        with self.lock:
            expiry = self.tokens.get(value[7:].strip())
        if expiry is None or expiry < time.monotonic():
            raise FeishuError(99991663, "Invalid access token for authorization. Please make a request with token attached.")

    def expire_tokens(self) -> int:
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
        return count

    # instances

    def _insert(self, kind: str, instance: dict[str, Any]) -> None:
        code = instance["instance_code"]
        self.instances[code] = instance
        self.kinds[code] = kind
        bisect.insort(self.started.setdefault(instance["approval_code"], []), (int(instance["start_time"]), code))
        if instance.get("uuid"):
            self.uuids[instance["uuid"].lower()] = code

    def _new_instance(self, definition: Definition, applicant: User, form: list[dict[str, Any]], start: int,
                      code: str, key: str) -> dict[str, Any]:
        self.serial += 1
        self.task_seq += 1
        day = datetime.fromtimestamp(start / 1000, timezone(timedelta(hours=8))).strftime("%Y%m%d")
        named = [{**item, "name": w.name} if (w := definition.widget(item["id"])) else item for item in form]
        return {
            "approval_code": definition.code, "approval_name": definition.name, "instance_code": code,
            "serial_number": f"{day}{self.serial:06d}", "status": "PENDING",
            "user_id": applicant.user_id, "open_id": applicant.open_id, "department_id": applicant.department_id,
            "start_time": str(start), "end_time": "0",
            "form": json.dumps(named, ensure_ascii=False, separators=(",", ":")),
            "uuid": key, "reverted": False,
            "task_list": [{"id": str(self.task_seq), "user_id": APPROVER.user_id, "open_id": APPROVER.open_id,
                           "status": "PENDING", "node_id": f"{self.task_seq % 10**12:x}", "node_name": definition.node_name,
                           "custom_node_id": "", "type": "AND", "start_time": str(start), "end_time": "0"}],
            "comment_list": [],
            "timeline": [{"type": "START", "create_time": str(start), "user_id": applicant.user_id,
                          "open_id": applicant.open_id, "ext": "{}", "node_key": ""}],
        }

    def seed(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        now = _now_ms() - 3_600_000
        span = 20 * DAY_MS
        plans = [("contract", count), ("leave", count // 4), ("overtime", count // 4)]
        with self.lock:
            for kind, number in plans:
                definition = BY_KIND[kind]
                step = max(1, span // max(number, 1))
                firms = list(companies(number, seed)) if kind == "contract" else [None] * number
                for i, firm in enumerate(firms):
                    start = now - (number - i) * step
                    code = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
                    applicant = USERS[1 + rng.randrange(len(USERS) - 1)]
                    form = _seed_form(kind, firm, rng, start)
                    self._insert(kind, self._new_instance(definition, applicant, form, start, code, ""))

    def detail(self, code: str) -> bytes:
        """An instance as `GET .../instances/{code}` answers it, serialised under the lock."""
        with self.lock:
            instance = self.instances.get(code)
            if instance is None:
                raise FeishuError(1390003, "instance code not found")
            return _envelope(instance)

    def list_codes(self, approval_code: str, start: int, end: int, size: int, token: str | None) -> dict[str, Any]:
        with self.lock:
            started = self.started.get(approval_code)
            if started is None:
                if approval_code not in BY_CODE:
                    raise FeishuError(1390002, "approval code not found")
                started = []
            if token:
                after = _read_page_token(token)
                position = bisect.bisect_right(started, after)
            else:
                position = bisect.bisect_left(started, (start, ""))
            page: list[str] = []
            while position < len(started) and started[position][0] <= end and len(page) < size:
                if started[position][0] >= start:
                    page.append(started[position][1])
                position += 1
            more = position < len(started) and started[position][0] <= end
            last = started[position - 1] if page else None
        body: dict[str, Any] = {"instance_code_list": page, "has_more": more}
        if more and last is not None:
            body["page_token"] = _page_token(last)
        return body

    def create(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        definition = BY_CODE.get(str(body.get("approval_code") or ""))
        if definition is None:
            raise FeishuError(1390002, "approval code not found")
        applicant = _find_user(body.get("user_id"), "user_id") or _find_user(body.get("open_id"), "open_id")
        if applicant is None:
            raise invalid("user_id or open_id must name a user of the tenant")
        form = _validate_form(definition, body.get("form"))
        key = body.get("uuid") or ""
        if not isinstance(key, str) or len(key) > 64:
            raise invalid("uuid must be a string of at most 64 characters")
        with self.lock:
            if key and key.lower() in self.uuids:
                raise FeishuError(60012, "uuid conflict: an instance was already created with this uuid")
            start = self.last_start = max(_now_ms(), self.last_start)
            code = str(uuid.uuid4()).upper()
            instance = self._new_instance(definition, applicant, form, start, code, key)
            self._insert(definition.kind, instance)
            event = _status_event(instance, "PENDING", start)
        return code, event

    def cancel(self, body: dict[str, Any], id_type: str) -> dict[str, Any]:
        user = _find_user(body.get("user_id"), id_type)
        with self.lock:
            instance = self.instances.get(str(body.get("instance_code") or ""))
            if instance is None or instance["approval_code"] != body.get("approval_code"):
                raise FeishuError(1390003, "instance code not found")
            if user is None or user.open_id != instance["open_id"]:
                raise invalid("only the applicant can cancel an instance")
            if instance["status"] != "PENDING":
                raise invalid(f"an instance in status {instance['status']} cannot be cancelled")
            at = _now_ms()
            instance["status"], instance["end_time"] = "CANCELED", str(at)
            for task in instance["task_list"]:
                if task["status"] == "PENDING":
                    task["status"], task["end_time"] = "DONE", str(at)
            instance["timeline"].append({"type": "CANCEL", "create_time": str(at), "user_id": user.user_id,
                                         "open_id": user.open_id, "ext": "{}", "node_key": ""})
            return _status_event(instance, "CANCELED", at)

    def decide(self, code: str, action: str, comment: str, user_id: str | None) -> tuple[bytes, dict[str, Any]]:
        if action not in ("agree", "refuse"):
            raise FeishuError(1390001, "action must be agree or refuse")
        with self.lock:
            instance = self.instances.get(code)
            if instance is None:
                raise FeishuError(1390003, "instance code not found", 404)
            task = next((t for t in instance["task_list"] if t["status"] == "PENDING"), None)
            if instance["status"] != "PENDING" or task is None:
                raise FeishuError(1390001, f"instance is {instance['status']}, nothing to decide", 409)
            if user_id and user_id not in (task["user_id"], task["open_id"]):
                raise FeishuError(1390001, "this user has no pending task on the instance", 403)
            at = str(max(_now_ms(), int(instance["start_time"])))
            status = "APPROVED" if action == "agree" else "REJECTED"
            task["status"], task["end_time"] = status, at
            if comment:
                self.task_seq += 1
                instance["comment_list"].append({"id": str(self.task_seq), "user_id": task["user_id"],
                                                 "open_id": task["open_id"], "comment": comment, "create_time": at})
            instance["timeline"].append({"type": "PASS" if action == "agree" else "REJECT", "create_time": at,
                                         "user_id": task["user_id"], "open_id": task["open_id"], "task_id": task["id"],
                                         "comment": comment, "ext": "{}", "node_key": ""})
            instance["status"], instance["end_time"] = status, at
            return _envelope(instance), _status_event(instance, status, int(at))

    def touch(self, kind: str, ids: list[str]) -> dict[str, Any]:
        at = str(_now_ms())
        touched = 0
        with self.lock:
            for code in ids:
                instance = self.instances.get(str(code))
                if instance is None or self.kinds.get(str(code)) != kind:
                    continue
                cc = USERS[-1]
                instance["timeline"].append({"type": "CC", "create_time": at, "user_id": APPROVER.user_id,
                                             "open_id": APPROVER.open_id, "ext": "{}", "node_key": "",
                                             "cc_user_list": [{"user_id": cc.user_id, "cc_id": f"{cc.user_id}-cc",
                                                               "open_id": cc.open_id}]})
                touched += 1
        return {"touched": touched, "time": at}

    def records(self, kind: str) -> bytes:
        with self.lock:
            definition = BY_KIND.get(kind)
            codes = [code for _, code in self.started.get(definition.code, [])] if definition else []
            text = json.dumps({"records": [self.instances[c] for c in codes]}, ensure_ascii=False)
        return text.encode("utf-8")


def _envelope(data: dict[str, Any]) -> bytes:
    return json.dumps({"code": 0, "msg": "success", "data": data}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def _page_token(last: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{last[0]}:{last[1]}".encode()).decode("ascii").rstrip("=")


def _read_page_token(token: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
        stamp, _, code = text.partition(":")
        return int(stamp), code
    except (ValueError, UnicodeDecodeError):
        raise invalid("page_token") from None


def _find_user(value: Any, id_type: str) -> User | None:
    if not isinstance(value, str) or not value:
        return None
    attribute = {"open_id": "open_id", "user_id": "user_id"}.get(id_type)
    return next((u for u in USERS if attribute and getattr(u, attribute) == value), None)


def _validate_form(definition: Definition, form: Any) -> list[dict[str, Any]]:
    """The form items of a create, checked as Feishu checks them (type, value shape, required)."""
    if not isinstance(form, str):
        raise invalid("form must be a JSON-encoded string")
    try:
        items = json.loads(form)
    except ValueError:
        raise invalid("form is not valid JSON") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("form must be a JSON array of widgets")
    seen: set[str] = set()
    for item in items:
        widget = definition.widget(str(item.get("id")))
        if widget is None:
            raise invalid(f"form widget {item.get('id')!r} is not in the approval definition")
        if item.get("type") != widget.type:
            raise invalid(f"form widget {widget.id} has type {widget.type}, not {item.get('type')!r}")
        _check_value(widget, item)
        seen.add(widget.id)
    missing = [w.id for w in definition.widgets if w.required and w.id not in seen]
    if missing:
        raise invalid(f"required form widget(s) {', '.join(missing)} missing")
    return items


def _check_value(widget: WidgetDef, item: dict[str, Any]) -> None:
    value = item.get("value")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if widget.type in ("input", "textarea") and not (isinstance(value, str) and value.strip()):
        raise invalid(f"form widget {widget.id} needs text")
    if widget.type == "radio" and value not in widget.options:
        raise invalid(f"form widget {widget.id}: {value!r} is not an option ({'/'.join(widget.options)})")
    if widget.type in ("number", "amount") and not number:
        raise invalid(f"form widget {widget.id} needs a number")
    if widget.type == "amount" and item.get("currency", "CNY") not in CURRENCIES:
        raise invalid(f"form widget {widget.id}: unknown currency {item.get('currency')!r}")
    if widget.type == "date" and _parse_rfc3339(value) is None:
        raise invalid(f"form widget {widget.id} needs an RFC 3339 date-time")
    if widget.type == "dateInterval":
        start, end = (_parse_rfc3339(value.get(k)) if isinstance(value, dict) else None for k in ("start", "end"))
        if start is None or end is None or end < start:
            raise invalid(f"form widget {widget.id} needs RFC 3339 start <= end")
        interval = value.get("interval")
        if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float))):
            raise invalid(f"form widget {widget.id}: interval must be a number")


def _seed_form(kind: str, firm: Company | None, rng: random.Random, start: int) -> list[dict[str, Any]]:
    if kind == "contract" and firm is not None:
        currency = {"CN": "CNY", "DE": "EUR", "FR": "EUR", "GB": "GBP", "US": "USD"}[firm.country_code]
        amount = round(rng.uniform(5_000, 2_000_000), 2)
        return [{"id": "widget_customer", "type": "input", "value": firm.name},
                {"id": "widget_order_no", "type": "input", "value": f"SO-2024-{firm.number:05d}"},
                {"id": "widget_amount", "type": "amount", "value": amount, "currency": currency}]
    begin = start + rng.randrange(1, 20) * DAY_MS
    if kind == "leave":
        days = rng.choice((0.5, 1, 2, 3, 5))
        return [{"id": "widget_leave_type", "type": "radio", "value": rng.choice(("年假", "事假", "病假", "调休"))},
                {"id": "widget_leave_period", "type": "dateInterval",
                 "value": {"start": _rfc3339(begin), "end": _rfc3339(begin + int(days * DAY_MS)), "interval": days}},
                {"id": "widget_leave_reason", "type": "textarea",
                 "value": rng.choice(("家中有事", "身体不适，需就医", "回老家探亲"))}]
    hours = rng.choice((2, 3, 4, 6))
    return [{"id": "widget_ot_start", "type": "date", "value": _rfc3339(begin)},
            {"id": "widget_ot_end", "type": "date", "value": _rfc3339(begin + hours * 3_600_000)},
            {"id": "widget_ot_hours", "type": "number", "value": hours},
            {"id": "widget_ot_reason", "type": "textarea", "value": rng.choice(("版本上线保障", "客户现场支持", "月底结账"))}]


# --- callbacks -----------------------------------------------------------------------------


def _status_event(instance: dict[str, Any], status: str, at: int) -> dict[str, Any]:
    """Feishu's 1.0 `approval_instance` event for a status change (plaintext, before encryption)."""
    return {
        "uuid": uuid.uuid4().hex, "token": VERIFICATION_TOKEN, "ts": f"{time.time():.7f}", "type": "event_callback",
        "event": {"app_id": APP_ID, "tenant_key": TENANT_KEY, "type": "approval_instance",
                  "approval_code": instance["approval_code"], "instance_code": instance["instance_code"],
                  "status": status, "operate_time": str(at), "instance_operate_time": str(at),
                  "uuid": instance.get("uuid") or ""},
    }


def signed_call(url: str, payload: dict[str, Any], *, signed: bool = True,
                encrypt_key: str = ENCRYPT_KEY, timestamp: str | None = None) -> OutboundCall:
    """One delivery attempt as Feishu makes it: encrypted body, fresh timestamp, nonce and signature."""
    plaintext = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    body = json.dumps({"encrypt": crypto.encrypt(encrypt_key, plaintext)}).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Go-http-client/1.1"}
    if signed:
        stamp = timestamp or str(int(time.time()))
        nonce = secrets.token_hex(8)
        headers.update({TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce,
                        SIGNATURE_HEADER: crypto.signature(stamp, nonce, encrypt_key, body)})
    return OutboundCall(url, body, headers)


def _accept_200(response: Any) -> bool:
    return bool(response.status_code == 200)


def deliver(kit: SandboxKit, event: dict[str, Any]) -> None:
    """Queue one status event for the callback URL; each retry is encrypted and signed anew."""
    what = f"approval_instance {event['event']['instance_code']} {event['event']['status']}"
    kit.webhooks.send(what, lambda url: signed_call(url, event), _accept_200)


# --- the app -------------------------------------------------------------------------------


def create_app(options: SandboxOptions) -> FastAPI:
    kit = SandboxKit("feishu", options, fault_answer, webhook_delays=RETRY_DELAYS)
    state = FeishuSandbox(kit, token_ttl=float(options.extra.get("token_ttl", TOKEN_TTL)))
    state.seed(options.records, options.seed)
    app = kit.create_app("Feishu sandbox")
    app.state.feishu = state

    def guarded(request: Request, work: Any) -> Response:
        try:
            state.check_token(request)
            return work()  # type: ignore[no-any-return]
        except FeishuError as exc:
            return exc.response()

    @app.post(TOKEN_PATH)
    def tenant_access_token(body: dict[str, Any] | None = _VENDOR_BODY) -> Response:
        if body is None:
            return invalid("request body is not a JSON object").response()
        if body.get("app_id") != APP_ID:
            return FeishuError(10003, "invalid param: app_id").response()
        if body.get("app_secret") != APP_SECRET:
            return FeishuError(10014, "app secret invalid").response()
        return _json({"code": 0, "msg": "ok", "tenant_access_token": state.issue_token(), "expire": TOKEN_TTL})

    @app.get(INSTANCES)
    def list_instances(request: Request) -> Response:
        def work() -> Response:
            query = request.query_params
            try:
                size = int(query.get("page_size") or 100)
                start, end = int(query["start_time"]), int(query["end_time"])
            except (KeyError, ValueError):
                raise invalid("start_time and end_time (ms) and page_size are required numbers") from None
            if not 1 <= size <= 100:
                raise invalid("page_size must be between 1 and 100")
            data = state.list_codes(query.get("approval_code") or "", start, end, size, query.get("page_token"))
            return _json({"code": 0, "msg": "success", "data": data})
        return guarded(request, work)

    @app.get(INSTANCES + "/{instance_id}")
    def get_instance(instance_id: str, request: Request) -> Response:
        return guarded(request, lambda: Response(state.detail(instance_id), media_type="application/json; charset=utf-8"))

    @app.post(INSTANCES)
    def create_instance(request: Request, body: dict[str, Any] | None = _VENDOR_BODY) -> Response:
        def work() -> Response:
            if body is None:
                raise invalid("request body is not a JSON object")
            code, event = state.create(body)
            deliver(kit, event)
            return _json({"code": 0, "msg": "success", "data": {"instance_code": code}})
        return guarded(request, work)

    @app.post(INSTANCES + "/cancel")
    def cancel_instance(request: Request, body: dict[str, Any] | None = _VENDOR_BODY) -> Response:
        def work() -> Response:
            if body is None:
                raise invalid("request body is not a JSON object")
            event = state.cancel(body, request.query_params.get("user_id_type") or "open_id")
            deliver(kit, event)
            return _json({"code": 0, "msg": "success", "data": {}})
        return guarded(request, work)

    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        return {"expired": state.expire_tokens()}

    @app.post("/_sandbox/touch")
    def touch(body: dict[str, Any] = _REQUIRED_BODY) -> dict[str, Any]:
        return state.touch(str(body.get("object")), [str(i) for i in body.get("ids") or []])

    @app.get("/_sandbox/records/{kind}")
    def records(kind: str) -> Response:
        return Response(state.records(kind), media_type="application/json")

    @app.post("/_sandbox/instances/{instance_id}/decide")
    def decide(instance_id: str, body: dict[str, Any] = _REQUIRED_BODY) -> Response:
        try:
            detail, event = state.decide(instance_id, str(body.get("action")), str(body.get("comment") or ""),
                                         body.get("user_id"))
        except FeishuError as exc:
            return exc.response()
        deliver(kit, event)
        return Response(detail, media_type="application/json; charset=utf-8")

    @app.post("/_sandbox/verify-url")
    def verify_url(body: dict[str, Any] = _OPTIONAL_BODY) -> dict[str, Any]:
        challenge = str(body.get("challenge") or secrets.token_urlsafe(12))
        payload = {"challenge": challenge, "token": str(body.get("token") or VERIFICATION_TOKEN),
                   "type": "url_verification"}
        signed = bool(body.get("signed", True))

        def answered(response: Any) -> bool:
            try:
                return bool(response.status_code == 200 and response.json() == {"challenge": challenge})
            except ValueError:
                return False

        delivery = kit.webhooks.send(f"url_verification {challenge}",
                                     lambda url: signed_call(url, payload, signed=signed), answered)
        return {"challenge": challenge, "delivery": delivery.id if delivery else None}

    return app
