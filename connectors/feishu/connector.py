"""Feishu (Lark) approval instances as synchub approvals.

Objects are approval kinds (`contract`, `leave`, `overtime`, or any kind configured): each is
one approval definition, named by its approval code in `options.approval_codes`, with its form
layout in `options.forms` (canonical form key -> the widget `id`, its `type`, and optionally a
`key` inside the widget: a part of an object value such as `start` of a `dateInterval`, or an
attribute of the widget such as `currency` of an `amount`).

Records are Feishu's instance details (`GET /open-apis/approval/v4/instances/{code}`) exactly
as Feishu returns them, plus one field the connector adds: `form_values`, the JSON-encoded
`form` string decoded through the layout into `{form key: widget value}`. The mapping
language cannot parse a JSON string, so this last decoding step (and on the way out, the
encoding of `form_values` into Feishu's `form` string `[{"id", "type", "value"}, ...]`,
numbers as JSON numbers) is the connector's.

- `pull` lists instance codes by start time in [cursor time - `lookback_days`, now] (full
  pulls: the last `history_days`), fetches each instance, and yields those whose last change
  (start, end, task, comment or timeline time, in ms) is after the cursor, ordered by
  (last change, instance code); the cursor is `"<ms>:<instance code>"` of the last one
  yielded. Instances started before the lookback and changed later are left to the callback.
  The changed instances of one window are held in memory to be ordered.
- `push`: CREATE and UPSERT create an instance with `uuid` = the op's key. Feishu refuses a
  second create with the same uuid (code 60012); the connector then finds the instance that
  carries the uuid (instances started in the last `uuid_search_days`) and reports it as not
  created, which makes creates idempotent. An UPDATE whose payload has `status: CANCELED`
  (the mappings write it for a canonical `withdrawn`) cancels the instance as its applicant;
  any other UPDATE is acknowledged without a call, since an instance cannot be edited.
- `webhook`: see `webhook.py`. `approval_instance` events become `WebhookEvent`s whose
  object is the kind configured for the event's approval code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

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
)
from connectors.feishu import webhook
from connectors.feishu.client import FeishuClient
from hub.config.model import System
from hub.config.secrets import reveal

INSTANCES_PATH = "/open-apis/approval/v4/instances"
CANCEL_PATH = "/open-apis/approval/v4/instances/cancel"
DEFAULT_BASE_URL = "https://open.feishu.cn"
NOT_FOUND_CODES = frozenset({"1390003"})  # instance code not found
UUID_CONFLICT = "60012"
MAX_PAGE_SIZE = 100
DAY_MS = 86_400_000
CLOCK_SLACK_MS = 60_000  # listing windows end a minute in the future: a vendor clock ahead of ours
NUMBER_TYPES = frozenset({"number", "amount", "formula"})
OBJECT_VALUE_TYPES = frozenset({"dateInterval", "leaveGroupV2", "shiftGroup", "telephone"})
CREATE_SKIPS = frozenset({"form_values", "form", "status", "uuid", "approval_code", "instance_code"})
WITHDRAW_STATUS = "CANCELED"

log = structlog.get_logger()


@dataclass(frozen=True)
class Widget:
    """Where one canonical form key lives in a Feishu form."""

    id: str
    type: str
    key: str | None = None

    @property
    def in_value(self) -> bool:
        """True when `key` names a part of an object value, not an attribute of the widget."""
        return self.key is not None and self.type in OBJECT_VALUE_TYPES


@dataclass(frozen=True)
class Kind:
    """One approval kind: its definition code and form layout."""

    name: str
    approval_code: str
    form: dict[str, Widget]


# --- form encoding -------------------------------------------------------------------------


def encode_form(kind: Kind, values: Mapping[str, Any]) -> str:
    """`form_values` as Feishu's JSON-encoded form string; Rejected for a value it cannot hold."""
    unknown = sorted(set(values) - set(kind.form))
    if unknown:
        raise Rejected(f"form field(s) {', '.join(unknown)} are not in the {kind.name} form layout (options.forms)")
    items: dict[str, dict[str, Any]] = {}
    for name, widget in kind.form.items():
        value = values.get(name)
        if value is None or value == "":
            continue
        item = items.setdefault(widget.id, {"id": widget.id, "type": widget.type})
        wire = _wire_value(name, widget, value)
        if widget.key is None:
            item["value"] = wire
        elif widget.in_value:
            item.setdefault("value", {})[widget.key] = wire
        else:
            item[widget.key] = wire
    return json.dumps(list(items.values()), ensure_ascii=False, separators=(",", ":"))


def decode_form(kind: Kind, form: Any) -> dict[str, Any]:
    """Feishu's form string read through the layout: `{form key: value}` for the widgets found."""
    try:
        items = json.loads(form) if isinstance(form, str) and form else []
    except ValueError:
        return {}
    by_id = {item.get("id"): item for item in items if isinstance(item, dict)} if isinstance(items, list) else {}
    values: dict[str, Any] = {}
    for name, widget in kind.form.items():
        item = by_id.get(widget.id)
        if item is None:
            continue
        value = item.get("value")
        if widget.key is not None:
            value = value.get(widget.key) if isinstance(value, dict) else item.get(widget.key)
        if value is not None:
            values[name] = value
    return values


def _wire_value(name: str, widget: Widget, value: Any) -> Any:
    numeric = widget.type in NUMBER_TYPES and widget.key is None or widget.key == "interval"
    if not numeric:
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Rejected(f"form field {name}: {value!r} is not a number") from None
    if not number.is_finite():
        raise Rejected(f"form field {name}: {value!r} is not a number")
    return int(number) if number == number.to_integral_value() else float(number)


def last_change(instance: Mapping[str, Any]) -> int:
    """The latest time (ms) anything happened to an instance: start, end, tasks, comments, timeline."""
    stamps = [_ms(instance.get("start_time")), _ms(instance.get("end_time"))]
    for task in instance.get("task_list") or []:
        stamps += [_ms(task.get("start_time")), _ms(task.get("end_time"))]
    stamps += [_ms(c.get("create_time")) for c in instance.get("comment_list") or []]
    stamps += [_ms(t.get("create_time")) for t in instance.get("timeline") or []]
    return max(stamps)


def _ms(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- cursors -------------------------------------------------------------------------------


def parse_cursor(since: str | None) -> tuple[int, str] | None:
    if not since:
        return None
    stamp, sep, code = str(since).partition(":")
    if not sep or not stamp.isdigit():
        raise ConnectorError(f"feishu: cursor {since!r} is not '<ms>:<instance code>'")
    return int(stamp), code


def format_cursor(stamp: int, code: str) -> str:
    return f"{stamp}:{code}"


# --- the connector -------------------------------------------------------------------------


class Connector:
    """Feishu approvals through the connector contract (see the module docstring)."""

    name = "feishu"

    def __init__(self, settings: System) -> None:
        self.settings = settings
        auth = {k: reveal(v) for k, v in (settings.auth or {}).items()}
        hook = {k: reveal(v) for k, v in (settings.webhook or {}).items()}
        options = {k: reveal(v) for k, v in (settings.options or {}).items()}
        self.kinds = _kinds(options)
        self.kinds_by_code = {kind.approval_code: kind.name for kind in self.kinds.values()}
        self.page_size = min(int(options.get("page_size") or MAX_PAGE_SIZE), MAX_PAGE_SIZE)
        if self.page_size < 1:
            raise ValueError("feishu option page_size must be at least 1")
        self.lookback_ms = int(float(options.get("lookback_days", 30)) * DAY_MS)
        self.history_ms = int(float(options.get("history_days", 365)) * DAY_MS)
        self.uuid_search_ms = int(float(options.get("uuid_search_days", 30)) * DAY_MS)
        self.default_applicant: str | None = options.get("default_applicant") or None
        self.concurrency = max(1, int(options.get("fetch_concurrency") or 1))
        self._pool: ThreadPoolExecutor | None = None
        self.limits = Limits(self.page_size, 1)
        self.keys = webhook.Keys(str(hook.get("encrypt_key") or ""), hook.get("verification_token") or None,
                                 auth.get("app_id"), float(hook.get("max_age_seconds", webhook.DEFAULT_MAX_AGE)))
        base_url = reveal(settings.base_url) or DEFAULT_BASE_URL
        verify: bool | str = options.get("ca_file") or True
        self.client = FeishuClient(str(base_url), str(auth.get("app_id") or ""), str(auth.get("app_secret") or ""),
                                   timeout=settings.timeout, verify=verify)
        self.log = log.bind(system=settings.name, connector=self.name)
        if not self.keys.encrypt_key:
            self.log.warning("feishu webhook.encrypt_key is empty: every callback will be refused")

    def __repr__(self) -> str:
        return f"FeishuConnector(system={self.settings.name!r})"

    def _kind(self, obj: str) -> Kind:
        kind = self.kinds.get(obj)
        if kind is None:
            raise ConnectorError(f"feishu: no approval code configured for kind {obj!r} (options.approval_codes)")
        return kind

    # --- reads ---------------------------------------------------------------------------

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        kind = self._kind(obj)
        after = parse_cursor(since)
        now = int(time.time() * 1000)
        start = after[0] - self.lookback_ms if after else now - self.history_ms
        changed: list[tuple[int, str, dict[str, Any]]] = []
        codes = dict.fromkeys(self._codes(kind, max(start, 0), now + CLOCK_SLACK_MS))
        for record in self._records(kind, codes):
            code, stamp = str(record.get("instance_code")), last_change(record)
            if after is None or (stamp, code) > after:
                changed.append((stamp, code, record))
        changed.sort(key=lambda item: (item[0], item[1]))
        for offset in range(0, len(changed), self.page_size):
            chunk = changed[offset : offset + self.page_size]
            yield Page([record for _, _, record in chunk], format_cursor(chunk[-1][0], chunk[-1][1]))

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        return list(self._records(self._kind(obj), [str(code) for code in dict.fromkeys(ids)]))

    def _records(self, kind: Kind, codes: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The records of these codes, in order, missing ones left out. Feishu has no batch get;
        `fetch_concurrency` threads may fetch details at once (default 1, since Feishu limits
        the calls of an app per minute and a busy sandbox in the same process gains nothing)."""
        if self.concurrency == 1:
            found: Iterable[dict[str, Any] | None] = (self._record(kind, code) for code in codes)
            yield from (record for record in found if record is not None)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="feishu-get")
        wanted = list(codes)
        step = self.concurrency * 16
        for offset in range(0, len(wanted), step):
            chunk = wanted[offset : offset + step]
            yield from (r for r in self._pool.map(lambda code: self._record(kind, code), chunk) if r is not None)

    def _codes(self, kind: Kind, start_ms: int, end_ms: int) -> Iterator[str]:
        """Instance codes of one definition started in [start_ms, end_ms], page by page."""
        params: dict[str, Any] = {"approval_code": kind.approval_code, "start_time": start_ms,
                                  "end_time": end_ms, "page_size": self.page_size}
        while True:
            data = self.client.call("GET", INSTANCES_PATH, params=params)
            yield from (str(code) for code in data.get("instance_code_list") or [])
            token = data.get("page_token")
            if not data.get("has_more") or not token:
                return
            params["page_token"] = token

    def _detail(self, code: str) -> dict[str, Any] | None:
        try:
            return self.client.call("GET", f"{INSTANCES_PATH}/{code}")
        except Rejected as exc:
            if exc.vendor_code in NOT_FOUND_CODES:
                return None
            raise

    def _record(self, kind: Kind, code: str) -> dict[str, Any] | None:
        detail = self._detail(code)
        if not detail or detail.get("approval_code") != kind.approval_code:
            return None
        detail["form_values"] = decode_form(kind, detail.get("form"))
        return detail

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        kind = self._kind(obj)
        results: list[WriteResult] = []
        for op in ops:  # Feishu creates one instance per call
            try:
                results.append(self._update(kind, op) if op.kind == OpKind.UPDATE else self._create(kind, op))
            except Rejected as exc:
                self.log.info("feishu write rejected", kind=kind.name, key=op.key, reason=exc.reason)
                results.append(WriteResult(False, op.external_id, error=exc))
        return results

    def _create(self, kind: Kind, op: WriteOp) -> WriteResult:
        payload = dict(op.payload)
        body = {k: v for k, v in payload.items() if k not in CREATE_SKIPS and v not in (None, "")}
        body["approval_code"] = kind.approval_code
        body["form"] = encode_form(kind, payload.get("form_values") or {})
        body["uuid"] = op.key
        if not body.get("user_id") and not body.get("open_id"):
            if not self.default_applicant:
                raise Rejected("no applicant: the payload has no open_id/user_id and options.default_applicant is not set")
            body["open_id"] = self.default_applicant
        try:
            data = self.client.call("POST", INSTANCES_PATH, json=body)
        except Rejected as exc:
            if exc.vendor_code != UUID_CONFLICT:
                raise
            existing = self._find_by_uuid(kind, op.key)
            if existing is None:
                raise Rejected(f"{exc.reason}; no {kind.name} instance with this uuid was found "
                               f"in the last {self.uuid_search_ms // DAY_MS} days", UUID_CONFLICT) from None
            self.log.info("feishu create repeated: instance exists for this uuid", kind=kind.name, key=op.key,
                          instance=existing)
            return WriteResult(True, existing, created=False)
        code = data.get("instance_code")
        if not code:
            raise Rejected("feishu created no instance_code")
        return WriteResult(True, str(code), created=True)

    def _find_by_uuid(self, kind: Kind, key: str) -> str | None:
        """The instance created with uuid `key` (Feishu compares uuids case-insensitively)."""
        now = int(time.time() * 1000)
        codes = list(dict.fromkeys(self._codes(kind, max(now - self.uuid_search_ms, 0), now + CLOCK_SLACK_MS)))
        for code in reversed(codes):  # newest first: a repeated create is usually a recent one
            detail = self._detail(code)
            if detail and str(detail.get("uuid") or "").lower() == key.lower():
                return code
        return None

    def _update(self, kind: Kind, op: WriteOp) -> WriteResult:
        if not op.external_id:
            raise Rejected("an update needs the instance code (external id)")
        if op.payload.get("status") != WITHDRAW_STATUS:
            self.log.info("feishu instance not editable: update acknowledged without a call", kind=kind.name,
                          instance=op.external_id)
            return WriteResult(True, op.external_id)
        return self._cancel(kind, op)

    def _cancel(self, kind: Kind, op: WriteOp) -> WriteResult:
        code = str(op.external_id)
        detail = self._detail(code)
        if detail is None or detail.get("approval_code") != kind.approval_code:
            raise Rejected(f"no {kind.name} instance {code}", "1390003")
        if detail.get("status") == WITHDRAW_STATUS:
            return WriteResult(True, code)
        applicant = op.payload.get("open_id") or detail.get("open_id")
        body = {"approval_code": kind.approval_code, "instance_code": code, "user_id": applicant}
        self.client.call("POST", CANCEL_PATH, params={"user_id_type": "open_id"}, json=body)
        self.log.info("feishu instance cancelled", kind=kind.name, instance=code)
        return WriteResult(True, code)

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        try:
            payload = webhook.open_callback(request.body, request.headers, self.keys, time.time())
            challenge = webhook.challenge_of(payload)
            if challenge is not None:
                self.log.info("feishu url_verification answered")
                return webhook.challenge_reply(challenge)
            events, unknown = webhook.approval_events(payload, self.kinds_by_code)
            if unknown:
                self.log.info("feishu event for an approval code that no kind is configured for",
                              approval_code=unknown)
            return webhook.success_reply(events)
        except webhook.Refused as exc:
            self.log.warning("feishu callback refused", status=exc.status, reason=exc.reason)
            return webhook.refusal_reply(exc.status)
        except Exception as exc:  # never raise into the API layer: Feishu retries a 500
            self.log.error("feishu callback failed", error=type(exc).__name__)
            return webhook.reply(500, {"msg": "internal error"})

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.client.close()


def _kinds(options: Mapping[str, Any]) -> dict[str, Kind]:
    forms = options.get("forms") or {}
    kinds: dict[str, Kind] = {}
    for name, code in (options.get("approval_codes") or {}).items():
        layout = {field: Widget(str(spec["id"]), str(spec.get("type") or "input"), spec.get("key"))
                  for field, spec in (forms.get(name) or {}).items()}
        kinds[name] = Kind(name, str(code), layout)
    return kinds
