"""A WeCom (企业微信) approvals server on loopback, speaking WeCom's wire protocol.

Served under WeCom's own paths (`/cgi-bin/...`), with its `errcode` envelope on HTTP 200:

- `GET /cgi-bin/gettoken?corpid=&corpsecret=`: a token valid 7200 s; 40013 / 40001 for wrong
  credentials; calls without a token answer 41001, with an unknown one 40014, with an
  expired one 42001 (`POST /_sandbox/expire-tokens` expires every token issued so far);
- `POST /cgi-bin/oa/applyevent`, `/oa/getapprovalinfo` (a window of at most 31 days on the
  submission time, `new_cursor` paging, and the older `cursor` / `filter` shape wechatpy sends),
  `/oa/getapprovaldetail`, `/oa/gettemplatedetail`;
- faults: `rate_limit` answers errcode 45009, `error` errcode -1 ("system busy").

Three templates (contract, leave, overtime) with their controls, a few users, and
`options.records` contract approvals made from `seed.companies` (plus five leave and five
overtime requests) are seeded. Approvers act through `POST /_sandbox/instances/{sp_no}/decide`
`{"action": "agree" | "refuse", "comment", "user_id"?}` (also `/comment` and `/withdraw`,
the applicant's in-app actions, which the API does not offer). Every change sends a
`sys_approval_change` callback, encrypted and signed as WeCom does, retried three times 5 s
apart (scaled) unless the hub answers HTTP 200. `POST /_sandbox/touch` adds one comment
with one shared time to each instance named: WeCom keeps no modification time, so a comment
is how an instance changes without a decision.

Error codes for invalid apply data (301035) and an unknown sp_no (301025) are assumptions.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from connectors.sandbox import SandboxKit, SandboxOptions
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.seed import companies
from connectors.sandbox.webhooks import OutboundCall
from connectors.wecom.crypto import WeComCrypto
from connectors.wecom.webhook import render_envelope

CORP_ID = "ww7d1c5e0a9b3f2468"
SECRET = "sandbox-approval-app-secret-QXJ2bWFuZ2Vy"
CALLBACK_TOKEN = "SynchubSandboxToken"
ENCODING_AES_KEY = "c2FuZGJveEtleUZvcldlQ29tQ2FsbGJhY2tzMjAyNDE"  # 43 characters
AGENT_ID = "3010040"
TOKEN_LIFETIME = 7200
WINDOW = 31 * 86400
MAX_SIZE = 100
RETRY_DELAYS = (5.0, 5.0, 5.0)  # WeCom retries a callback three times when not answered 200
SHANGHAI = timezone(timedelta(hours=8))
HR_SEEDED = 5

ERR_BAD_CORP = 40013
ERR_BAD_SECRET = 40001
ERR_NO_TOKEN = 41001
ERR_BAD_TOKEN = 40014
ERR_EXPIRED = 42001
ERR_BAD_USER = 40003
ERR_PARAM = 40058
ERR_NO_SP_NO = 301025
ERR_APPLY_DATA = 301035

USERS = {"zhangwei": "张伟", "lina": "李娜", "wangfang": "王芳", "liuyang": "刘洋", "chenjing": "陈静",
         "zhaolei": "赵磊", "huangmin": "黄敏", "zhoujie": "周杰"}
SALES = ("zhangwei", "lina", "liuyang")
STAFF = ("chenjing", "zhaolei", "huangmin", "zhoujie")


@dataclass(frozen=True)
class ControlSpec:
    name: str
    id: str
    control: str
    title: str
    required: bool = True
    options: tuple[tuple[str, str], ...] = ()  # (key, text)
    date_type: str = "hour"


@dataclass(frozen=True)
class Template:
    kind: str
    template_id: str
    name: str
    approvers: tuple[tuple[str, ...], ...]  # one tuple of user ids per node
    controls: tuple[ControlSpec, ...] = field(default_factory=tuple)

    def control(self, control_id: str) -> ControlSpec | None:
        return next((c for c in self.controls if c.id == control_id), None)


TEMPLATES = {
    "contract": Template("contract", "C4ZT8kWbQy1sXo7Vd2NeContract", "销售合同审批", (("wangfang",), ("zhaolei",)), (
        ControlSpec("customer_name", "Text-1570000000001", "Text", "客户名称"),
        ControlSpec("order_number", "Text-1570000000002", "Text", "订单编号"),
        ControlSpec("amount", "Money-1570000000003", "Money", "合同金额"),
        ControlSpec("currency", "Selector-1570000000004", "Selector", "币种",
                    options=(("option-1570000000041", "CNY"), ("option-1570000000042", "USD"),
                             ("option-1570000000043", "EUR"), ("option-1570000000044", "GBP"))),
        ControlSpec("synchub_order_id", "Text-1570000000005", "Text", "关联订单ID", required=False),
    )),
    "leave": Template("leave", "C4ZT8kWbQy1sXo7Vd2NeLeave001", "请假", (("wangfang",),), (
        ControlSpec("leave_type", "Selector-1570000000101", "Selector", "请假类型",
                    options=(("option-1570000001011", "年假"), ("option-1570000001012", "事假"),
                             ("option-1570000001013", "病假"), ("option-1570000001014", "调休"),
                             ("option-1570000001015", "婚假"), ("option-1570000001016", "产假"))),
        ControlSpec("start", "Date-1570000000102", "Date", "开始时间"),
        ControlSpec("end", "Date-1570000000103", "Date", "结束时间"),
        ControlSpec("days", "Number-1570000000104", "Number", "请假天数"),
        ControlSpec("reason", "Textarea-1570000000105", "Textarea", "请假事由", required=False),
    )),
    "overtime": Template("overtime", "C4ZT8kWbQy1sXo7Vd2NeOvertime", "加班", (("wangfang",),), (
        ControlSpec("start", "Date-1570000000201", "Date", "开始时间"),
        ControlSpec("end", "Date-1570000000202", "Date", "结束时间"),
        ControlSpec("hours", "Number-1570000000203", "Number", "加班时长（小时）"),
        ControlSpec("reason", "Textarea-1570000000204", "Textarea", "加班事由", required=False),
    )),
}
BY_TEMPLATE = {t.template_id: t for t in TEMPLATES.values()}


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry pointing the connector at this sandbox (sandbox-only credentials)."""
    forms: dict[str, Any] = {}
    for kind, template in TEMPLATES.items():
        layout: dict[str, Any] = {}
        for c in template.controls:
            spec: dict[str, Any] = {"id": c.id, "control": c.control}
            if c.control == "Date":
                spec["date_type"] = c.date_type
            if c.options:
                spec["options"] = {text: key for key, text in c.options}
            layout[c.name] = spec
        forms[kind] = layout
    return {
        "connector": "wecom",
        "base_url": base_url,
        "auth": {"corp_id": CORP_ID, "secret": SECRET},
        "webhook": {"token": CALLBACK_TOKEN, "encoding_aes_key": ENCODING_AES_KEY},
        "options": {"agent_id": AGENT_ID, "template_ids": {k: t.template_id for k, t in TEMPLATES.items()},
                    "forms": forms},
    }


# --- wire helpers --------------------------------------------------------------------------


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


def _error(code: int, message: str) -> Response:
    return _json({"errcode": code, "errmsg": message})


def _ok(**fields: Any) -> Response:
    return _json({"errcode": 0, "errmsg": "ok", **fields})


def fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        return _error(45009, "api freq out of limit")
    return _error(-1, "system busy")


def _cdata(text: Any) -> str:
    return "<![CDATA[" + str(text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def approval_xml(info: dict[str, Any], change_event: int, create_time: int) -> bytes:
    """The decrypted `sys_approval_change` message WeCom sends for an instance."""
    records = "".join(
        f"<SpRecord><SpStatus>{node['sp_status']}</SpStatus><ApproverAttr>{node['approverattr']}</ApproverAttr>"
        + "".join(f"<Details><Approver><UserId>{_cdata(d['approver']['userid'])}</UserId></Approver>"
                  f"<Speech>{_cdata(d['speech'])}</Speech><SpStatus>{d['sp_status']}</SpStatus>"
                  f"<SpTime>{d['sptime']}</SpTime></Details>" for d in node["details"])
        + "</SpRecord>" for node in info["sp_record"])
    comments = "".join(
        f"<Comments><CommentUserInfo><UserId>{_cdata(c['commentUserInfo']['userid'])}</UserId></CommentUserInfo>"
        f"<CommentTime>{c['commenttime']}</CommentTime><CommentContent>{_cdata(c['commentcontent'])}</CommentContent>"
        f"<CommentId>{_cdata(c['commentid'])}</CommentId></Comments>" for c in info["comments"])
    xml = (f"<xml><ToUserName>{_cdata(CORP_ID)}</ToUserName><FromUserName>{_cdata('sys')}</FromUserName>"
           f"<CreateTime>{create_time}</CreateTime><MsgType>{_cdata('event')}</MsgType>"
           f"<Event>{_cdata('sys_approval_change')}</Event><AgentID>{AGENT_ID}</AgentID>"
           f"<ApprovalInfo><SpNo>{info['sp_no']}</SpNo><SpName>{_cdata(info['sp_name'])}</SpName>"
           f"<SpStatus>{info['sp_status']}</SpStatus><TemplateId>{_cdata(info['template_id'])}</TemplateId>"
           f"<ApplyTime>{info['apply_time']}</ApplyTime><Applyer><UserId>{_cdata(info['applyer']['userid'])}</UserId>"
           f"<Party>{_cdata(info['applyer']['partyid'])}</Party></Applyer>{records}{comments}"
           f"<StatuChangeEvent>{change_event}</StatuChangeEvent></ApprovalInfo></xml>")
    return xml.encode("utf-8")


def _accept_200(response: Any) -> bool:
    return int(response.status_code) == 200


# --- state ---------------------------------------------------------------------------------


class Approvals:
    """Instances, tokens and sequences of one sandbox, behind one lock."""

    def __init__(self, kit: SandboxKit) -> None:
        self.kit = kit
        self.lock = threading.Lock()
        self.instances: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.expired: set[str] = set()
        self._daily: dict[str, int] = {}
        self._days: dict[int, str] = {}
        self.crypto = WeComCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY, CORP_ID)

    # tokens

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME
        return token

    def check_token(self, token: str | None) -> Response | None:
        if not token:
            return _error(ERR_NO_TOKEN, "access_token missing")
        with self.lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                return _error(ERR_BAD_TOKEN, "invalid access_token")
            if token in self.expired or expiry < time.time():
                return _error(ERR_EXPIRED, "access_token expired")
        return None

    def expire_tokens(self) -> None:
        with self.lock:
            self.expired.update(self.tokens)

    # instances

    def _sp_no(self, moment: int) -> str:
        day_number = (moment + 8 * 3600) // 86400  # the day in Shanghai
        day = self._days.get(day_number)
        if day is None:
            day = self._days[day_number] = datetime.fromtimestamp(moment, SHANGHAI).strftime("%Y%m%d")
        seq = self._daily.get(day, 0) + 1
        self._daily[day] = seq
        return f"{day}{seq:04d}"

    def add(self, template: Template, creator: str, contents: list[dict[str, Any]],
            summary: list[dict[str, Any]], moment: int) -> dict[str, Any]:
        with self.lock:
            sp_no = self._sp_no(moment)
            info = {
                "sp_no": sp_no, "sp_name": template.name, "sp_status": 1, "template_id": template.template_id,
                "apply_time": moment, "applyer": {"userid": creator, "partyid": "2"},
                "sp_record": [{"sp_status": 1, "approverattr": 1,
                               "details": [{"approver": {"userid": u}, "speech": "", "sp_status": 1, "sptime": 0,
                                            "media_id": []} for u in users]} for users in template.approvers],
                "notifyer": [], "apply_data": {"contents": contents}, "comments": [], "summary_list": summary,
            }
            self.instances[sp_no] = info
            return info

    def snapshot(self, sp_no: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.instances[sp_no]))

    def notify(self, sp_no: str, change_event: int, create_time: int) -> None:
        info = self.snapshot(sp_no)
        message = approval_xml(info, change_event, create_time)

        def build(url: str) -> OutboundCall:
            timestamp, nonce = str(int(time.time())), str(random.randint(10**8, 10**10))
            encrypted = self.crypto.encrypt(message)
            query = f"msg_signature={self.crypto.sign(timestamp, nonce, encrypted)}&timestamp={timestamp}&nonce={nonce}"
            return OutboundCall(f"{url}{'&' if '?' in url else '?'}{query}",
                                render_envelope(CORP_ID, AGENT_ID, encrypted), {"Content-Type": "text/xml"})

        self.kit.webhooks.send(f"sys_approval_change {sp_no} {change_event}", build, _accept_200)


def _decide(info: dict[str, Any], action: str, comment: str, user_id: str | None, moment: int) -> int:
    """Apply one approver's decision to the current node; the StatuChangeEvent it makes."""
    node = next(n for n in info["sp_record"] if n["sp_status"] == 1)
    detail = next((d for d in node["details"] if d["approver"]["userid"] == user_id), node["details"][0])
    decision = 2 if action == "agree" else 3
    detail.update({"sp_status": decision, "sptime": moment, "speech": comment})
    node["sp_status"] = decision
    if decision == 3:
        info["sp_status"] = 3
    elif all(n["sp_status"] == 2 for n in info["sp_record"]):
        info["sp_status"] = 2
    return decision


# --- controls (apply_data) -----------------------------------------------------------------


def _title(text: str) -> list[dict[str, str]]:
    return [{"text": text, "lang": "zh_CN"}]


def _stored_control(spec: ControlSpec, value: dict[str, Any]) -> dict[str, Any]:
    """A control as getapprovaldetail shows it, from the value applyevent received."""
    if spec.control == "Selector":
        texts = dict(spec.options)
        chosen = [{"key": o["key"], "value": _title(texts[o["key"]])} for o in value["selector"]["options"]]
        value = {"selector": {"type": value["selector"].get("type", "single"), "options": chosen}}
    return {"control": spec.control, "id": spec.id, "title": [{"text": spec.title, "lang": "zh_CN"}], "value": value}


def _check_control(spec: ControlSpec, value: Any) -> str | None:
    """Why applyevent refuses this control's value, or None."""
    if not isinstance(value, dict):
        return "value must be an object"
    if spec.control in ("Text", "Textarea"):
        return None if isinstance(value.get("text"), str) and (value["text"] or not spec.required) else "text is empty"
    if spec.control in ("Number", "Money"):
        name = "new_number" if spec.control == "Number" else "new_money"
        try:
            Decimal(str(value.get(name)))
        except InvalidOperation:
            return f"{name} is not a number"
        return None
    if spec.control == "Date":
        stamp = str((value.get("date") or {}).get("s_timestamp", ""))
        return None if stamp.isdigit() else "s_timestamp is not epoch seconds"
    options = (value.get("selector") or {}).get("options") or []
    keys = {key for key, _ in spec.options}
    if not options or any(o.get("key") not in keys for o in options):
        return "unknown or missing selector option key"
    return None


def validate_apply(template: Template, contents: Any) -> tuple[list[dict[str, Any]] | None, str]:
    if not isinstance(contents, list):
        return None, "apply_data.contents must be a list"
    stored, given = [], set()
    for item in contents:
        spec = template.control(str((item or {}).get("id")))
        if spec is None:
            return None, f"unknown control id {item.get('id') if isinstance(item, dict) else item!r}"
        if item.get("control") != spec.control:
            return None, f"control {spec.id} is a {spec.control}, not {item.get('control')}"
        reason = _check_control(spec, item.get("value"))
        if reason:
            return None, f"control {spec.id} ({spec.title}): {reason}"
        given.add(spec.id)
        stored.append(_stored_control(spec, item["value"]))
    missing = [c.title for c in template.controls if c.required and c.id not in given]
    if missing:
        return None, f"required controls missing: {', '.join(missing)}"
    return stored, ""


# --- seeding -------------------------------------------------------------------------------


def _text(spec: ControlSpec, text: str) -> dict[str, Any]:
    return {"control": spec.control, "id": spec.id, "value": {"text": text}}


def _content(template: Template, values: dict[str, Any]) -> list[dict[str, Any]]:
    items = []
    for spec in template.controls:
        value = values.get(spec.name)
        if value is None:
            continue
        if spec.control in ("Text", "Textarea"):
            raw: dict[str, Any] = {"text": value}
        elif spec.control == "Money":
            raw = {"new_money": value}
        elif spec.control == "Number":
            raw = {"new_number": value}
        elif spec.control == "Date":
            raw = {"date": {"type": spec.date_type, "s_timestamp": str(value)}}
        else:
            key = next(k for k, t in spec.options if t == value)
            raw = {"selector": {"type": "single", "options": [{"key": key}]}}
        items.append(_stored_control(spec, raw))
    return items


_CURRENCY = {"CN": "CNY", "US": "USD", "GB": "GBP"}
_REASONS = ("家中有事需要处理", "回老家探亲", "身体不适，去医院复查", "参加朋友婚礼", "陪孩子参加入学面试")
_OVERTIME = ("季度末订单集中发货", "客户系统上线支持", "月底财务结账", "展会物料准备")


def seed(state: Approvals, options: SandboxOptions, now: int) -> None:
    rng = random.Random(options.seed)
    for company in companies(options.records, options.seed):
        template = TEMPLATES["contract"]
        values = {"customer_name": company.name, "order_number": f"SO-2024-{company.number:05d}",
                  "amount": f"{rng.randint(5, 2000) * 500}.00", "currency": _CURRENCY.get(company.country_code, "EUR")}
        _seed_one(state, template, rng.choice(SALES), values, now, rng, company.number)
    hr = HR_SEEDED if options.records else 0
    for n in range(hr):
        start = (now // 86400 + 3 + n) * 86400 + 3600  # 09:00 in Shanghai, a few days ahead
        _seed_one(state, TEMPLATES["leave"], rng.choice(STAFF),
                  {"leave_type": rng.choice(("年假", "事假", "病假")), "start": start, "end": start + 9 * 3600,
                   "days": "1", "reason": rng.choice(_REASONS)}, now, rng, n)
        _seed_one(state, TEMPLATES["overtime"], rng.choice(STAFF),
                  {"start": start + 10 * 3600, "end": start + 13 * 3600, "hours": "3", "reason": rng.choice(_OVERTIME)},
                  now, rng, n)


def _seed_one(state: Approvals, template: Template, creator: str, values: dict[str, Any], now: int,
              rng: random.Random, number: int) -> None:
    applied = now - rng.randint(3600, 5 * 86400)
    summary = [{"summary_info": [{"text": f"{template.name} {creator}", "lang": "zh_CN"}]}]
    info = state.add(template, creator, _content(template, values), summary, applied)
    if number % 7 == 0:
        for node in range(len(template.approvers)):
            _decide(info, "agree", "同意", None, min(now - 60, applied + 3600 * (node + 1)))
    elif number % 11 == 0:
        _decide(info, "refuse", "金额超出授权范围，请重新报价", None, min(now - 60, applied + 1800))


# --- the app -------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def create_app(options: SandboxOptions) -> FastAPI:
    kit = SandboxKit("wecom", options, fault_answer, webhook_delays=RETRY_DELAYS)
    app = kit.create_app("WeCom approvals sandbox")
    state = Approvals(kit)
    seed(state, options, int(time.time()))
    app.state.approvals = state
    _vendor_routes(app, state)
    _control_routes(app, state)
    return app


def _authorized(handler: Callable[[Request, dict[str, Any]], Response]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        state: Approvals = request.app.state.approvals
        refused = state.check_token(request.query_params.get("access_token"))
        if refused is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _error(ERR_PARAM, "invalid json request")
        return handler(request, body)

    return endpoint


def _vendor_routes(app: FastAPI, state: Approvals) -> None:
    @app.get("/cgi-bin/gettoken")
    def gettoken(corpid: str = "", corpsecret: str = "") -> Response:
        if corpid != CORP_ID:
            return _error(ERR_BAD_CORP, "invalid corpid")
        if not secrets.compare_digest(corpsecret.encode(), SECRET.encode()):
            return _error(ERR_BAD_SECRET, "invalid credential")
        return _ok(access_token=state.issue_token(), expires_in=TOKEN_LIFETIME)

    def applyevent(request: Request, body: dict[str, Any]) -> Response:
        template = BY_TEMPLATE.get(str(body.get("template_id")))
        if template is None:
            return _error(ERR_APPLY_DATA, "invalid template_id")
        creator = str(body.get("creator_userid") or "")
        if creator not in USERS:
            return _error(ERR_BAD_USER, f"invalid userid: {creator}")
        summary = body.get("summary_list")
        if not isinstance(summary, list) or not 1 <= len(summary) <= 3:
            return _error(ERR_APPLY_DATA, "summary_list must hold 1 to 3 lines")
        contents, reason = validate_apply(template, (body.get("apply_data") or {}).get("contents"))
        if contents is None:
            return _error(ERR_APPLY_DATA, f"invalid apply_data: {reason}")
        moment = int(time.time())
        info = state.add(template, creator, contents, summary, moment)
        state.notify(info["sp_no"], 1, moment)
        return _ok(sp_no=info["sp_no"])

    def getapprovalinfo(request: Request, body: dict[str, Any]) -> Response:
        try:
            start, end = int(body.get("starttime", "")), int(body.get("endtime", ""))
            size = int(body.get("size") or MAX_SIZE)
        except (TypeError, ValueError):
            return _error(ERR_PARAM, "starttime, endtime and size must be numbers")
        if end < start or end - start > WINDOW:
            return _error(ERR_PARAM, "invalid time range: endtime - starttime must be 0 to 31 days")
        if not 0 < size <= MAX_SIZE:
            return _error(ERR_PARAM, "size must be 1 to 100")
        filters = body.get("filters") or body.get("filter") or []
        legacy = "new_cursor" not in body and "cursor" in body
        offset_text = str(body.get("cursor" if legacy else "new_cursor") or "0")
        if not offset_text.isdigit():
            return _error(ERR_PARAM, "invalid cursor")
        with state.lock:
            listed = sorted((i["apply_time"], len(i["sp_no"]), i["sp_no"]) for i in state.instances.values()
                            if start <= i["apply_time"] <= end and _matches(i, filters))
        offset = int(offset_text)
        page = [sp_no for _, _, sp_no in listed[offset : offset + size]]
        more = offset + size < len(listed)
        if legacy:
            return _ok(sp_no_list=page, next_cursor=offset + size if more else 0)
        return _ok(sp_no_list=page, new_next_cursor=str(offset + size) if more else "")

    def getapprovaldetail(request: Request, body: dict[str, Any]) -> Response:
        sp_no = str(body.get("sp_no") or "")
        with state.lock:
            info = state.instances.get(sp_no)
            shown = None if info is None else {k: v for k, v in info.items() if k != "summary_list"}
            text = None if shown is None else json.dumps({"errcode": 0, "errmsg": "ok", "info": shown},
                                                          ensure_ascii=False)
        if text is None:
            return _error(ERR_NO_SP_NO, f"invalid sp_no: {sp_no}")
        return Response(text, media_type="application/json")

    def gettemplatedetail(request: Request, body: dict[str, Any]) -> Response:
        template = BY_TEMPLATE.get(str(body.get("template_id")))
        if template is None:
            return _error(ERR_APPLY_DATA, "invalid template_id")
        controls = [{"property": {"control": c.control, "id": c.id, "title": _title(c.title), "require": int(c.required)},
                     "config": {"selector": {"type": "single", "options": [{"key": k, "value": _title(t)}
                                                                           for k, t in c.options]}} if c.options else {}}
                    for c in template.controls]
        return _ok(template_names=_title(template.name), template_content={"controls": controls})

    for path, handler in (("applyevent", applyevent), ("getapprovalinfo", getapprovalinfo),
                          ("getapprovaldetail", getapprovaldetail), ("gettemplatedetail", gettemplatedetail)):
        app.add_api_route(f"/cgi-bin/oa/{path}", _authorized(handler), methods=["POST"])


def _matches(info: dict[str, Any], filters: Any) -> bool:
    for item in filters if isinstance(filters, list) else []:
        key, value = str(item.get("key")), str(item.get("value"))
        if key == "template_id" and info["template_id"] != value:
            return False
        if key == "creator" and info["applyer"]["userid"] != value:
            return False
        if key == "sp_status" and str(info["sp_status"]) != value:
            return False
    return True


def _control_routes(app: FastAPI, state: Approvals) -> None:
    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        state.expire_tokens()
        return {"expired": len(state.expired)}

    @app.post("/_sandbox/touch")
    async def touch(request: Request) -> Response:
        body = await _body(request) or {}
        moment = int(time.time())
        touched = []
        with state.lock:
            for sp_no in body.get("ids") or []:
                info = state.instances.get(str(sp_no))
                if info is not None:
                    info["comments"].append({"commentUserInfo": {"userid": info["applyer"]["userid"]},
                                             "commenttime": moment, "commentcontent": "已补充附件说明",
                                             "commentid": str(random.getrandbits(62)), "media_id": []})
                    touched.append(info["sp_no"])
        return _json({"touched": touched, "time": moment})

    @app.get("/_sandbox/records/{kind}")
    def records(kind: str) -> Response:
        template = TEMPLATES.get(kind)
        if template is None:
            return Response(json.dumps({"detail": f"no approval kind {kind}"}), 404, media_type="application/json")
        with state.lock:
            found = [{k: v for k, v in i.items() if k != "summary_list"} for i in state.instances.values()
                     if i["template_id"] == template.template_id]
            text = json.dumps({"records": found}, ensure_ascii=False)
        return Response(text, media_type="application/json")

    @app.post("/_sandbox/instances/{sp_no}/decide")
    async def decide(sp_no: str, request: Request) -> Response:
        body = await _body(request) or {}
        action = body.get("action")
        if action not in ("agree", "refuse"):
            return Response(json.dumps({"detail": "action must be agree or refuse"}), 400, media_type="application/json")
        return _change(state, sp_no, lambda info, moment: _decide(info, str(action), str(body.get("comment") or ""),
                                                                   body.get("user_id"), moment))

    @app.post("/_sandbox/instances/{sp_no}/comment")
    async def comment(sp_no: str, request: Request) -> Response:
        body = await _body(request) or {}

        def add(info: dict[str, Any], moment: int) -> int:
            info["comments"].append({"commentUserInfo": {"userid": body.get("user_id") or info["applyer"]["userid"]},
                                     "commenttime": moment, "commentcontent": str(body.get("comment") or ""),
                                     "commentid": str(random.getrandbits(62)), "media_id": []})
            return 10

        return _change(state, sp_no, add, pending_only=False)

    @app.post("/_sandbox/instances/{sp_no}/withdraw")
    def withdraw(sp_no: str) -> Response:
        def take_back(info: dict[str, Any], moment: int) -> int:
            info["sp_status"] = 4
            info["comments"].append({"commentUserInfo": {"userid": info["applyer"]["userid"]},
                                     "commenttime": moment, "commentcontent": "申请人撤销",
                                     "commentid": str(random.getrandbits(62)), "media_id": []})
            return 6

        return _change(state, sp_no, take_back)


def _change(state: Approvals, sp_no: str, apply: Callable[[dict[str, Any], int], int],
            pending_only: bool = True) -> Response:
    moment = int(time.time())
    with state.lock:
        info = state.instances.get(sp_no)
        if info is None:
            return Response(json.dumps({"detail": f"no instance {sp_no}"}), 404, media_type="application/json")
        if pending_only and info["sp_status"] != 1:
            return Response(json.dumps({"detail": f"instance {sp_no} is not pending"}), 409,
                            media_type="application/json")
        change_event = apply(info, moment)
        status = info["sp_status"]
    state.notify(sp_no, change_event, moment)
    return _json({"sp_no": sp_no, "sp_status": status, "change_event": change_event})
