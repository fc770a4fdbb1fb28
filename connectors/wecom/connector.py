"""WeCom (企业微信) approvals as the canonical `approval` entity.

Objects are approval kinds (`contract`, `leave`, `overtime`, or any other configured one).
Each kind names its template in `options.template_ids` and its form layout in
`options.forms`: form field name -> `{"id": <control id>, "control": Text | Textarea | Number
| Money | Date | Selector, "date_type": "day" | "hour", "options": {<option text>: <key>},
"multi": false}`. The mapping never sees WeCom's control list; the connector does that
last step both ways, because the mapping language cannot select list items by id:

- **Records** (`get`, `pull`) are WeCom's `getapprovaldetail` `info` objects as WeCom sends
  them, plus four keys the connector derives from them:
  `form` (field name -> raw control value: text, new_number, new_money, a Date's
  s_timestamp, a Selector's option text or list of texts), `approvers` (the sp_record
  nodes' details flattened in order: node, approverattr, userid, sp_status, sptime, speech),
  `update_time` (seconds: the latest of apply_time, any sptime and any commenttime) and
  `decided_time` (seconds, once sp_status is final).
- **Payloads** (`push`) are `applyevent` bodies without `template_id` and `apply_data`:
  `creator_userid`, `use_template_approver` (default 1), optional `approver` / `notifyer` /
  `notify_type` passed through, `summary` (a text or up to three texts, sent as
  `summary_list`; default: the first form values) and `form` (field name -> value, encoded
  into `apply_data.contents` through the layout: Money and Number as decimal text, Date from
  epoch seconds, Selector from option text to key).

Writes: CREATE submits an instance (one `applyevent` per op: WeCom has no batch). WeCom's API
has no call to withdraw or cancel an approval (instances are withdrawn by the applicant in
the app), so an UPDATE whose payload carries `withdraw: true` is `Rejected` with that reason;
any other UPDATE answers ok without a call (an OA instance cannot be edited). UPSERT is
refused: WeCom cannot find an instance by a key of ours, so mappings set no `key:`.
`applyevent` is not idempotent either: when a call-level failure (rate limit, outage) meets
an op after others were submitted in the same push, the remaining ops get that error as
their result instead of the push raising, so that a retry does not submit twice.

Pull: WeCom lists sp_nos by *submission* time only, in windows of at most 31 days. A pull
lists [cursor time - lookback_days, now] (the whole `history_days` when there is no cursor),
fetches each detail, and yields those whose `update_time` is after the cursor, ordered by
(update_time, sp_no); the cursor is `"<update_time>:<sp_no>"` of the last record yielded.
An instance submitted before the lookback and changed later is caught by the callback only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    finish_partial,
)
from connectors.wecom import webhook as callbacks
from connectors.wecom.client import WeComClient
from connectors.wecom.crypto import CryptoError, WeComCrypto
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
LIST_PATH = "cgi-bin/oa/getapprovalinfo"
DETAIL_PATH = "cgi-bin/oa/getapprovaldetail"
APPLY_PATH = "cgi-bin/oa/applyevent"
MAX_LIST_SIZE = 100
WINDOW = 31 * 86400  # WeCom's longest listing window
CLOCK_SKEW = 60  # seconds added to "now" at the end of a listing window
NOT_FOUND_CODES = frozenset({"301025"})  # getapprovaldetail for an unknown sp_no (UNCONFIRMED code)
FINAL_STATUSES = frozenset({2, 3, 4, 6, 7, 10})
CONTROLS = ("Text", "Textarea", "Number", "Money", "Date", "Selector")


# --- form layouts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """One form field of a template: its control id and type, and how to encode its value."""

    name: str
    id: str
    control: str
    date_type: str = "hour"
    options: dict[str, str] = field(default_factory=dict)  # option text -> option key
    multi: bool = False


@dataclass(frozen=True)
class Kind:
    """One approval kind: the template it opens and its form layout."""

    name: str
    template_id: str
    controls: dict[str, Control]

    @property
    def by_id(self) -> dict[str, Control]:
        return {c.id: c for c in self.controls.values()}


def kinds_from_options(options: dict[str, Any]) -> dict[str, Kind]:
    """The configured kinds (`template_ids` + `forms`); a kind without a layout has no form."""
    forms = options.get("forms") or {}
    kinds: dict[str, Kind] = {}
    for name, template_id in (options.get("template_ids") or {}).items():
        controls = {}
        for field_name, spec in (forms.get(name) or {}).items():
            control = str(spec.get("control", "Text"))
            if control not in CONTROLS:
                raise ConnectorError(f"wecom: form field {name}.{field_name} has unsupported control {control!r}")
            controls[field_name] = Control(field_name, str(spec["id"]), control, str(spec.get("date_type", "hour")),
                                           {str(k): str(v) for k, v in (spec.get("options") or {}).items()},
                                           bool(spec.get("multi", False)))
        kinds[name] = Kind(name, str(reveal(template_id)), controls)
    return kinds


# --- decoding records ----------------------------------------------------------------------


def _option_text(option: dict[str, Any]) -> str | None:
    texts = option.get("value") or []
    chosen = next((t for t in texts if t.get("lang") == "zh_CN"), texts[0] if texts else None)
    return None if chosen is None else chosen.get("text")


def decode_value(control: str, value: dict[str, Any]) -> Any:
    """The raw value of one control as the mapping reads it (see the module docstring)."""
    if control in ("Text", "Textarea"):
        return value.get("text")
    if control == "Number":
        return value.get("new_number")
    if control == "Money":
        return value.get("new_money")
    if control == "Date":
        return (value.get("date") or {}).get("s_timestamp")
    if control == "Selector":
        selector = value.get("selector") or {}
        texts = [_option_text(o) for o in selector.get("options") or []]
        return texts if selector.get("type") == "multi" else (texts[0] if texts else None)
    return None


def decode_form(contents: list[dict[str, Any]], kind: Kind) -> dict[str, Any]:
    by_id = kind.by_id
    form: dict[str, Any] = {}
    for item in contents:
        control = by_id.get(str(item.get("id")))
        if control is not None:
            form[control.name] = decode_value(str(item.get("control") or control.control), item.get("value") or {})
    return form


def flatten_approvers(info: dict[str, Any]) -> list[dict[str, Any]]:
    approvers = []
    for number, node in enumerate(info.get("sp_record") or [], start=1):
        for detail in node.get("details") or []:
            approvers.append({"node": number, "approverattr": node.get("approverattr"),
                              "userid": (detail.get("approver") or {}).get("userid"),
                              "sp_status": detail.get("sp_status"), "sptime": detail.get("sptime") or 0,
                              "speech": detail.get("speech") or ""})
    return approvers


def update_time(info: dict[str, Any]) -> int:
    """The last moment anything happened to the instance, in seconds (WeCom keeps no such field)."""
    times = [int(info.get("apply_time") or 0)]
    times += [int(d.get("sptime") or 0) for node in info.get("sp_record") or [] for d in node.get("details") or []]
    times += [int(c.get("commenttime") or 0) for c in info.get("comments") or []]
    return max(times)


def decided_time(info: dict[str, Any]) -> int | None:
    status = int(info.get("sp_status") or 0)
    if status not in FINAL_STATUSES:
        return None
    sptimes = [int(d.get("sptime") or 0) for node in info.get("sp_record") or [] for d in node.get("details") or []]
    if status in (2, 3, 10) and any(sptimes):
        return max(sptimes)
    return update_time(info)


def record_of(info: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """WeCom's detail plus the derived keys the mappings read."""
    record = dict(info)
    record["form"] = decode_form((info.get("apply_data") or {}).get("contents") or [], kind)
    record["approvers"] = flatten_approvers(info)
    record["update_time"] = update_time(info)
    record["decided_time"] = decided_time(info)
    return record


# --- encoding payloads ---------------------------------------------------------------------


def _decimal_text(value: Any, what: str) -> str:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Rejected(f"form field {what}: {value!r} is not a number") from None
    if not number.is_finite():
        raise Rejected(f"form field {what}: {value!r} is not a number")
    return format(number, "f")


def _seconds(value: Any, what: str) -> str:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise Rejected(f"form field {what}: a Date takes epoch seconds, not {value!r}")
    return text


def encode_value(control: Control, value: Any) -> dict[str, Any]:
    """One form value as the `value` of an applyevent control."""
    if control.control in ("Text", "Textarea"):
        return {"text": str(value)}
    if control.control == "Number":
        return {"new_number": _decimal_text(value, control.name)}
    if control.control == "Money":
        return {"new_money": _decimal_text(value, control.name)}
    if control.control == "Date":
        return {"date": {"type": control.date_type, "s_timestamp": _seconds(value, control.name)}}
    texts = value if isinstance(value, list) else [value]
    keys = []
    for text in texts:
        key = control.options.get(str(text))
        if key is None:
            raise Rejected(f"form field {control.name}: {text!r} is not one of {', '.join(control.options)}")
        keys.append({"key": key})
    return {"selector": {"type": "multi" if control.multi else "single", "options": keys}}


def _summary_list(payload: dict[str, Any], form: dict[str, Any]) -> list[dict[str, Any]]:
    given = payload.get("summary")
    lines = given if isinstance(given, list) else [given] if given else [f"{k}: {v}" for k, v in form.items()]
    texts = [str(line) for line in lines if line not in (None, "")][:3]
    return [{"summary_info": [{"text": text, "lang": "zh_CN"}]} for text in texts]


def applyevent_body(payload: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """The applyevent request for one mapped payload; Rejected when it cannot be encoded."""
    creator = payload.get("creator_userid")
    if not creator:
        raise Rejected("creator_userid is required: WeCom submits an approval as one of its users")
    form = {k: v for k, v in (payload.get("form") or {}).items() if v not in (None, "", [])}
    unknown = sorted(set(form) - set(kind.controls))
    if unknown:
        raise Rejected(f"form fields not in the {kind.name} layout (options.forms.{kind.name}): {', '.join(unknown)}")
    contents = [{"control": kind.controls[name].control, "id": kind.controls[name].id,
                 "value": encode_value(kind.controls[name], value)} for name, value in form.items()]
    body: dict[str, Any] = {"creator_userid": str(creator), "template_id": kind.template_id,
                            "use_template_approver": int(payload.get("use_template_approver", 1)),
                            "apply_data": {"contents": contents},
                            "summary_list": _summary_list(payload, form)}
    for passed in ("approver", "notifyer", "notify_type", "choose_department"):
        if payload.get(passed) is not None:
            body[passed] = payload[passed]
    return body


# --- cursors -------------------------------------------------------------------------------


Position = tuple[int, int, str]  # update_time, len(sp_no), sp_no: sp_nos compare as numbers


def parse_cursor(since: str | None) -> Position | None:
    if not since:
        return None
    stamp, sep, sp_no = str(since).partition(":")
    if not sep or not stamp.isdigit() or not sp_no:
        raise ConnectorError(f"wecom: cursor {since!r} is not '<update_time>:<sp_no>'")
    return int(stamp), len(sp_no), sp_no


def _position(record: dict[str, Any]) -> Position:
    sp_no = str(record["sp_no"])
    return int(record["update_time"]), len(sp_no), sp_no


# --- the connector -------------------------------------------------------------------------


class Connector:
    """WeCom approvals (see the module docstring)."""

    name = "wecom"

    def __init__(self, settings: System) -> None:
        self.settings = settings
        options = dict(settings.options or {})
        auth = settings.auth or {}
        self.corp_id = str(reveal(auth.get("corp_id") or ""))
        self.kinds = kinds_from_options(options)
        page_size = max(1, min(int(options.get("page_size", MAX_LIST_SIZE)), MAX_LIST_SIZE))
        self.limits = Limits(page_size=page_size, batch_size=1)
        self.lookback = int(float(options.get("lookback_days", 7)) * 86400)
        self.history = int(float(options.get("history_days", 31)) * 86400)
        verify: bool | str = options.get("ca_file") or True
        self.client = WeComClient(str(reveal(settings.base_url) or DEFAULT_BASE_URL), self.corp_id,
                                  str(reveal(auth.get("secret") or "")), timeout=settings.timeout, verify=verify)
        self.log = log.bind(connector=self.name, system=settings.name)
        self._callbacks = self._callback_settings()

    def _callback_settings(self) -> callbacks.CallbackSettings | None:
        hook = self.settings.webhook or {}
        token, aes = reveal(hook.get("token")), reveal(hook.get("encoding_aes_key"))
        if not token or not aes:
            return None
        try:
            crypto = WeComCrypto(str(token), str(aes), self.corp_id)
        except CryptoError as exc:
            raise ConnectorError(f"wecom: webhook.encoding_aes_key: {exc}") from None
        kinds = {kind.template_id: kind.name for kind in self.kinds.values()}
        max_age = float(hook.get("max_age_seconds", callbacks.DEFAULT_MAX_AGE))
        return callbacks.CallbackSettings(crypto, kinds, max_age)

    def _kind(self, obj: str) -> Kind:
        kind = self.kinds.get(obj)
        if kind is None:
            raise ConnectorError(f"wecom: no template configured for approval kind '{obj}' (options.template_ids)")
        return kind

    # --- reads ---------------------------------------------------------------------------

    def _list_ids(self, kind: Kind, start: int, end: int) -> Iterator[str]:
        """sp_nos of the kind's template submitted in [start, end], window by window, page by page."""
        seen: set[str] = set()
        while start <= end:
            stop = min(start + WINDOW, end)
            cursor = ""
            while True:
                body = {"starttime": str(start), "endtime": str(stop), "new_cursor": cursor,
                        "size": self.limits.page_size, "filters": [{"key": "template_id", "value": kind.template_id}]}
                answer = self.client.post(LIST_PATH, body)
                for sp_no in answer.get("sp_no_list") or []:
                    if str(sp_no) not in seen:
                        seen.add(str(sp_no))
                        yield str(sp_no)
                cursor = str(answer.get("new_next_cursor") or "")
                if not cursor or not answer.get("sp_no_list"):
                    break
            start = stop + 1

    def _detail(self, sp_no: str) -> dict[str, Any] | None:
        try:
            answer = self.client.post(DETAIL_PATH, {"sp_no": sp_no})
        except Rejected as exc:
            if exc.vendor_code in NOT_FOUND_CODES:
                return None
            raise
        info = answer.get("info")
        return info if isinstance(info, dict) else None

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        kind = self._kind(obj)
        after = parse_cursor(since)
        now = int(time.time())
        start = max(0, after[0] - self.lookback) if after else now - self.history
        changed: list[dict[str, Any]] = []
        for sp_no in self._list_ids(kind, start, now + CLOCK_SKEW):
            info = self._detail(sp_no)
            if info is None or str(info.get("template_id")) != kind.template_id:
                continue
            record = record_of(info, kind)
            if after is None or _position(record) > after:
                changed.append(record)
        changed.sort(key=_position)
        self.log.info("wecom pull listed", object=obj, changed=len(changed), since=since)
        size = self.limits.page_size
        for first in range(0, len(changed), size):
            records = changed[first : first + size]
            last = records[-1]
            yield Page(records, f"{last['update_time']}:{last['sp_no']}")

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        kind = self._kind(obj)
        found = []
        for sp_no in dict.fromkeys(str(i) for i in ids):
            info = self._detail(sp_no)
            if info is not None and str(info.get("template_id")) == kind.template_id:
                found.append(record_of(info, kind))
        return found

    # --- writes --------------------------------------------------------------------------

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        kind = self._kind(obj)
        results: list[WriteResult | None] = [None] * len(ops)
        for index, op in enumerate(ops):
            try:
                results[index] = self._apply(kind, op)
            except Rejected as exc:
                results[index] = WriteResult(False, op.external_id, error=exc)
            except ConnectorError as exc:
                self.log.warning("wecom push interrupted", object=obj, error=str(exc)[:300], left=len(ops) - index)
                return finish_partial(results, ops, exc)  # raises while nothing was written
        return [r for r in results if r is not None]

    def _apply(self, kind: Kind, op: WriteOp) -> WriteResult:
        if op.kind == OpKind.CREATE:
            if op.payload.get("withdraw"):
                raise Rejected("a withdrawn approval is not submitted to WeCom")
            answer = self.client.post(APPLY_PATH, applyevent_body(op.payload, kind))
            sp_no = str(answer.get("sp_no") or "")
            if not sp_no:
                raise Rejected("wecom applyevent answered without an sp_no")
            return WriteResult(True, sp_no, created=True)
        if op.kind == OpKind.UPDATE:
            if op.payload.get("withdraw"):
                raise Rejected("WeCom has no API to withdraw an approval: the applicant must withdraw "
                               f"{op.external_id} in the WeCom app")
            self.log.info("wecom approval not updated: instances cannot be edited", sp_no=op.external_id)
            return WriteResult(True, op.external_id)
        raise Rejected("WeCom cannot find an approval by a key of ours: remove `key:` from the mapping "
                       "so that approvals are created, not upserted")

    # --- webhooks ------------------------------------------------------------------------

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        if self._callbacks is None:
            return WebhookReply(401, b"", "text/plain")
        return callbacks.handle(request, self._callbacks)

    def close(self) -> None:
        self.client.close()
