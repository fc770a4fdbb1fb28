"""A DingTalk org in a box: both API generations' approval routes, tokens, and encrypted callbacks.

Served on one base URL: the new API (`/v1.0/oauth2/accessToken`, `/v1.0/workflow/...`, header
`x-acs-dingtalk-access-token`, errors as HTTP status + `{"code", "message"}`) and the old
one (`/gettoken`, `/topapi/processinstance/...`, `?access_token=`, HTTP 200 with
`{"errcode", "errmsg"}`). Three approval processes are defined (contract, leave, overtime)
with their form components, a handful of users approve them, and `options.records`
instances of each kind are seeded from `seed.companies`.

Control routes beyond the kit's: `POST /_sandbox/expire-tokens`, `POST /_sandbox/touch`,
`GET /_sandbox/records/{kind}`, `POST /_sandbox/instances/{id}/decide`
`{"action": "agree" | "refuse", "comment", "user_id"?}` (the current approver decides, as in
the DingTalk app) and `POST /_sandbox/instances/{id}/comment` `{"text", "user_id"?}`.
Every change sends `bpms_task_change` / `bpms_instance_change` callbacks, encrypted and
signed as DingTalk does, and retried until the receiver answers the encrypted `success`.
"""

from __future__ import annotations

import base64
import bisect
import json
import random
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from connectors.dingtalk import crypto
from connectors.dingtalk.webhook import CallbackKeys, is_success_reply, nonce, sealed
from connectors.sandbox import SandboxKit, SandboxOptions
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.seed import company
from connectors.sandbox.webhooks import OutboundCall

APP_KEY = "dingsandboxq7x3k9m2"
APP_SECRET = "sandbox-app-secret-Jk8s2LmQ9vXz4Rt7"
CORP_ID = "ding6ccabc44d2c8d38b"
CALLBACK_TOKEN = "synchubSandboxToken"
CALLBACK_AES_KEY = "SynchubDingTalkSandboxAesKey0123456789abcde"
TOKEN_LIFETIME = 7200
WEBHOOK_DELAYS = (1.0, 5.0, 30.0, 300.0)  # DingTalk retries a callback not answered with `success`
CHINA = ZoneInfo("Asia/Shanghai")
DAY = 86_400_000
HOUR = 3_600_000
_JSON_BODY = Body(...)  # a request body of JSON, as every DingTalk route takes


@dataclass(frozen=True)
class Component:
    """One control of an approval form."""

    label: str
    type: str  # TextField, TextareaField, MoneyField, NumberField, DDSelectField, DDDateField
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Process:
    """An approval template: its code, name, form and approver chain."""

    kind: str
    code: str
    name: str
    components: tuple[Component, ...]
    approvers: tuple[str, ...]


USERS = {
    "0125673446103596": "王建国",   # sales director
    "0256184390233781": "李秀英",   # finance manager
    "0340229458128762": "张伟",     # department manager
    "0417395820466173": "刘洋",     # HR
    "0533617284019256": "陈静",     # sales rep (applicant)
    "0672849103557148": "杨磊",     # engineer (applicant)
    "0798125046631879": "赵敏",     # engineer (applicant)
}
APPLICANTS = ("0533617284019256", "0672849103557148", "0798125046631879")
_HUB_KEY = Component("同步ID", "TextField", required=False)
PROCESSES = {
    "contract": Process("contract", "PROC-5B7E3C1A-9D2F-4E8B-A6C0-3F1D2E4B5A69", "销售合同审批", (
        Component("客户名称", "TextField"), Component("订单编号", "TextField"), Component("合同金额", "MoneyField"),
        Component("币种", "DDSelectField", choices=("CNY", "USD", "EUR", "GBP")),
        Component("关联订单", "TextField", required=False), _HUB_KEY),
        ("0125673446103596", "0256184390233781")),
    "leave": Process("leave", "PROC-2A4C6E8F-1B3D-4F5A-9C7E-8D6B4A2C0E13", "请假", (
        Component("请假类型", "DDSelectField", choices=("年假", "事假", "病假", "调休", "婚假", "产假")),
        Component("开始时间", "DDDateField"), Component("结束时间", "DDDateField"),
        Component("请假天数", "NumberField"), Component("请假事由", "TextareaField"), _HUB_KEY),
        ("0340229458128762",)),
    "overtime": Process("overtime", "PROC-7F1E3D5C-2B4A-4968-8E7D-1C3B5A79E024", "加班", (
        Component("开始时间", "DDDateField"), Component("结束时间", "DDDateField"),
        Component("加班时长", "NumberField"), Component("加班原因", "TextareaField"), _HUB_KEY),
        ("0340229458128762", "0417395820466173")),
}
BY_CODE = {p.code: p for p in PROCESSES.values()}


class VendorError(Exception):
    """An answer in the envelope of the API generation that was called."""

    def __init__(self, status: int, code: str, message: str, errcode: int) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errcode = status, code, message, errcode


def _bad_param(message: str) -> VendorError:
    return VendorError(400, "invalidParameter", message, 40035)


def _not_found() -> VendorError:
    return VendorError(400, "InstanceNotFound", "审批实例不存在", 800001)


# --- state ------------------------------------------------------------------------------------


@dataclass
class Instance:
    """One approval instance, times in epoch milliseconds."""

    id: str
    process: Process
    title: str
    originator: str
    form: list[dict[str, Any]]
    create: int
    status: str = "RUNNING"
    result: str = ""
    business_id: str = ""
    finish: int | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def running_task(self, user_id: str | None) -> dict[str, Any] | None:
        for task in self.tasks:
            if task["status"] == "RUNNING" and (user_id is None or task["userId"] == user_id):
                return task
        return None


class Org:
    """The org's approvals and tokens, behind one lock (FastAPI runs sync routes in threads)."""

    def __init__(self, options: SandboxOptions) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.instances: dict[str, Instance] = {}
        self.starts: dict[str, list[tuple[int, str]]] = {code: [] for code in BY_CODE}
        self.rng = random.Random(options.seed)
        self.serial = 0
        self._seeding = True
        self._seed(options.records, options.seed)
        for starts in self.starts.values():
            starts.sort()
        self._seeding = False

    # tokens

    def issue_token(self) -> tuple[str, int]:
        with self.lock:
            now = time.monotonic()
            for token, expires in self.tokens.items():
                if expires > now:
                    return token, int(expires - now)
            token = secrets.token_hex(16)
            self.tokens[token] = now + TOKEN_LIFETIME
            return token, TOKEN_LIFETIME

    def token_valid(self, token: str | None) -> bool:
        with self.lock:
            return token is not None and self.tokens.get(token, 0.0) > time.monotonic()

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # instances

    def _new_id(self, create: int) -> str:
        self.serial += 1
        random_part = base64.b64encode(self.rng.getrandbits(136).to_bytes(17, "big"), b"xy").decode()[:22]
        return f"{random_part}{self.serial % 10000:04d}{create // 1000}"

    def _business_id(self, create: int) -> str:
        return datetime.fromtimestamp(create / 1000, CHINA).strftime("%Y%m%d%H%M") + f"{self.serial % 1000000:06d}"

    def _add(self, instance: Instance) -> None:
        self.instances[instance.id] = instance
        starts = self.starts[instance.process.code]
        if self._seeding or not starts or (instance.create, instance.id) > starts[-1]:
            starts.append((instance.create, instance.id))  # seeding sorts once at the end
        else:
            bisect.insort(starts, (instance.create, instance.id))

    def start(self, process: Process, originator: str, form: list[dict[str, Any]], create: int) -> Instance:
        """A new running instance: the first approver's task starts at once."""
        instance_id = self._new_id(create)
        title = f"{USERS[originator]}提交的{process.name}"
        instance = Instance(instance_id, process, title, originator, form, create, business_id=self._business_id(create))
        self._begin(instance)
        self._add(instance)
        return instance

    def _begin(self, instance: Instance) -> None:
        """The approver chain of a new instance: the first task runs at once."""
        process, create = instance.process, instance.create
        for position, user in enumerate(process.approvers):
            instance.tasks.append({"taskId": f"{zlib.crc32(instance.id.encode()):010d}{position}", "userId": user,
                                   "status": "RUNNING" if position == 0 else "NEW", "result": "NONE",
                                   "createTime": create if position == 0 else None, "finishTime": None,
                                   "activityId": f"act_{position + 1}"})
        instance.records.append({"userId": instance.originator, "date": create, "type": "START_PROCESS_INSTANCE",
                                 "result": "NONE", "remark": ""})

    def decide(self, instance: Instance, action: str, comment: str, user_id: str | None, at: int) -> dict[str, Any]:
        """The current approver agrees or refuses; the instance moves on or finishes."""
        task = instance.running_task(user_id)
        if instance.status != "RUNNING" or task is None:
            raise VendorError(400, "taskNotRunning", "当前审批实例没有待处理的任务", 40035)
        task.update(status="COMPLETED", result="AGREE" if action == "agree" else "REFUSE", finishTime=at)
        instance.records.append({"userId": task["userId"], "date": at, "type": "EXECUTE_TASK_NORMAL",
                                 "result": task["result"], "remark": comment})
        following = next((t for t in instance.tasks if t["status"] == "NEW"), None)
        if action == "refuse" or following is None:
            for rest in instance.tasks:
                if rest["status"] == "NEW":
                    rest["status"] = "CANCELED"
            instance.status, instance.result, instance.finish = "COMPLETED", action, at
        else:
            following.update(status="RUNNING", createTime=at)
        return task

    def terminate(self, instance: Instance, operator: str | None, remark: str, at: int) -> None:
        if instance.status not in ("NEW", "RUNNING"):
            raise VendorError(400, "instanceNotRunning", "审批实例已结束，不能撤销", 40035)
        for task in instance.tasks:
            if task["status"] in ("NEW", "RUNNING"):
                task.update(status="CANCELED", finishTime=at if task["status"] == "RUNNING" else None)
        instance.records.append({"userId": operator or instance.originator, "date": at,
                                 "type": "TERMINATE_PROCESS_INSTANCE", "result": "NONE", "remark": remark})
        instance.status, instance.result, instance.finish = "TERMINATED", "", at

    def touch(self, ids: list[str], at: int) -> int:
        """These instances' last change becomes `at`: their latest operation record is dated then."""
        touched = 0
        for instance_id in ids:
            instance = self.instance(instance_id)
            if instance is None:
                continue
            instance.records[-1]["date"] = at
            if instance.finish is not None:
                instance.finish = at
            touched += 1
        return touched

    def listed(self, code: str, start: int, end: int) -> list[str]:
        starts = self.starts.get(code, [])
        low = bisect.bisect_left(starts, (start, ""))
        high = bisect.bisect_right(starts, (end, "\uffff"))
        return [instance_id for _, instance_id in starts[low:high]]

    # seeding

    def instance(self, instance_id: str) -> Instance | None:
        """The instance with this id, built from its seed on first use (under the lock)."""
        found = self.instances.get(instance_id)
        if found is None and instance_id in self._unbuilt:
            found = self._build(instance_id, *self._unbuilt.pop(instance_id))
        return found

    def _seed(self, count: int, seed: int) -> None:
        """Only ids and start times are made now; an instance is built when first read, so that a
        sandbox with 10,000 records per kind starts at once."""
        self._unbuilt: dict[str, tuple[str, int, int]] = {}
        self._seed_value = seed
        self._seed_now = now = int(time.time() * 1000)
        rng = random.Random(seed)
        for number in range(1, count + 1):
            for kind, process in PROCESSES.items():
                create = now - 2 * HOUR - rng.randrange(25 * DAY)
                instance_id = self._new_id(create)
                self._unbuilt[instance_id] = (kind, number, create)
                self.starts[process.code].append((create, instance_id))

    def _build(self, instance_id: str, kind: str, number: int, create: int) -> Instance:
        rng = random.Random(f"{self._seed_value}:{kind}:{number}")
        process = PROCESSES[kind]
        form = _with_types(process, _seed_form(kind, number, company(number, rng), rng, create))
        originator = rng.choice(APPLICANTS)
        instance = Instance(instance_id, process, f"{USERS[originator]}提交的{process.name}", originator, form, create,
                            business_id=datetime.fromtimestamp(create / 1000, CHINA).strftime("%Y%m%d%H%M")
                            + f"{number:06d}")
        self._begin(instance)
        self.instances[instance_id] = instance
        self._seed_progress(instance, number, rng, self._seed_now)
        return instance

    def _seed_progress(self, instance: Instance, number: int, rng: random.Random, now: int) -> None:
        """Instances 1 and 2 (mod 5) stay running; the others are decided or withdrawn over a few hours."""
        stage = number % 5
        at = instance.create
        if stage in (1, 2):
            return
        at = min(now - HOUR, at + rng.randrange(10 * 60_000, 20 * HOUR))
        if stage == 0:
            self.terminate(instance, instance.originator, "信息填写有误，撤回重新提交", at)
            return
        while instance.status == "RUNNING":
            refuse = stage == 4 and instance.running_task(None) is instance.tasks[-1]
            self.decide(instance, "refuse" if refuse else "agree", _REFUSALS[instance.process.kind] if refuse else "同意",
                        None, at)
            at = min(now - HOUR, at + rng.randrange(60_000, 4 * HOUR))


_REFUSALS = {"contract": "金额超出授权范围，请重新报价", "leave": "项目上线期间，请改期休假",
             "overtime": "本月加班时长已超上限，请调休安排"}
_LEAVE_TYPES = ("年假", "事假", "病假", "调休")
_LEAVE_REASONS = ("回老家探亲", "身体不适，需要就医", "处理家中私事", "孩子开家长会", "办理房产过户手续")
_OVERTIME_REASONS = ("双十一大促系统保障", "季度结账", "客户现场上线支持", "版本发布", "服务器迁移")


def _seed_form(kind: str, number: int, company: Any, rng: random.Random, create: int) -> dict[str, str]:
    if kind == "contract":
        currency = "CNY" if company.country_code == "CN" else {"US": "USD", "GB": "GBP"}.get(company.country_code, "EUR")
        return {"客户名称": company.name, "订单编号": f"SO-2024-{number:05d}",
                "合同金额": f"{rng.randrange(5_000, 2_000_000)}.{rng.randrange(100):02d}", "币种": currency,
                "关联订单": f"SO-2024-{number:05d}"}
    day = datetime.fromtimestamp(create / 1000 + 3 * 86400, CHINA).replace(hour=9, minute=0)
    if kind == "leave":
        days = rng.choice((1, 2, 3, 0.5))
        end = day.replace(hour=18) if days >= 1 else day.replace(hour=13, minute=30)
        end = end.fromtimestamp(end.timestamp() + (max(days, 1) - 1) * 86400, CHINA)
        return {"请假类型": rng.choice(_LEAVE_TYPES), "开始时间": day.strftime("%Y-%m-%d %H:%M"),
                "结束时间": end.strftime("%Y-%m-%d %H:%M"), "请假天数": str(days), "请假事由": rng.choice(_LEAVE_REASONS)}
    hours = rng.choice((2, 3, 4, 2.5))
    start = day.replace(hour=19)
    end = datetime.fromtimestamp(start.timestamp() + hours * 3600, CHINA)
    return {"开始时间": start.strftime("%Y-%m-%d %H:%M"), "结束时间": end.strftime("%Y-%m-%d %H:%M"),
            "加班时长": str(hours), "加班原因": rng.choice(_OVERTIME_REASONS)}


def _with_types(process: Process, form: dict[str, str]) -> list[dict[str, Any]]:
    types = {c.label: c.type for c in process.components}
    return [{"id": f"{types[name]}-{zlib.crc32(name.encode()) % 10**9:09d}", "name": name, "value": value,
             "componentType": types[name]} for name, value in form.items()]


def validate_form(process: Process, values: Any) -> list[dict[str, Any]]:
    """The form as stored, or the error DingTalk answers (required, unknown, or malformed values)."""
    if not isinstance(values, list):
        raise _bad_param("formComponentValues 必须是数组")
    given: dict[str, str] = {}
    for item in values:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _bad_param("formComponentValues 中的每一项必须包含 name 和 value")
        given[item["name"]] = "" if item.get("value") is None else str(item["value"])
    known = {c.label: c for c in process.components}
    for name in given:
        if name not in known:
            raise _bad_param(f"表单校验失败：表单中不存在组件 {name}")
    form = {}
    for component in process.components:
        value = given.get(component.label, "").strip()
        if not value:
            if component.required:
                raise _bad_param(f"表单校验失败：{component.label} 为必填项")
            continue
        _check_value(component, value)
        form[component.label] = value
    return _with_types(process, form)


def _check_value(component: Component, value: str) -> None:
    if component.type in ("MoneyField", "NumberField"):
        try:
            float(value)
        except ValueError:
            raise _bad_param(f"表单校验失败：{component.label} 必须是数字") from None
    elif component.type == "DDDateField":
        for layout in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
            try:
                datetime.strptime(value, layout)
                return
            except ValueError:
                continue
        raise _bad_param(f"表单校验失败：{component.label} 日期格式应为 yyyy-MM-dd HH:mm")
    elif component.choices and value not in component.choices:
        raise _bad_param(f"表单校验失败：{component.label} 的值 {value} 不在选项中")


# --- shapes -----------------------------------------------------------------------------------


def _new_time(ms: int | None) -> str | None:
    """The new API's UTC time, minute precision: '2024-05-01T08:30Z'."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _old_time(ms: int | None) -> str | None:
    """The old API's China time: '2024-05-01 16:30:00'."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def new_shape(instance: Instance) -> dict[str, Any]:
    """`GET /v1.0/workflow/processInstances` → result."""
    return _drop_none({
        "title": instance.title, "createTime": _new_time(instance.create), "finishTime": _new_time(instance.finish),
        "originatorUserId": instance.originator, "originatorDeptId": "-1", "originatorDeptName": "销售部",
        "status": instance.status, "result": instance.result, "businessId": instance.business_id,
        "approverUserIds": list(instance.process.approvers), "ccUserIds": [], "bizAction": "NONE",
        "formComponentValues": [dict(item) for item in instance.form],
        "operationRecords": [_drop_none({"userId": r["userId"], "date": _new_time(r["date"]), "type": r["type"],
                                         "result": r["result"], "remark": r["remark"] or None,
                                         "showName": USERS.get(r["userId"])}) for r in instance.records],
        "tasks": [_drop_none({"taskId": t["taskId"], "userId": t["userId"], "status": t["status"],
                              "result": t["result"], "createTime": _new_time(t["createTime"]),
                              "finishTime": _new_time(t["finishTime"]), "activityId": t["activityId"],
                              "processInstanceId": instance.id,
                              "pcUrl": f"https://aflow.dingtalk.com/dingtalk/pc/query/pchomepage.htm?procInstId={instance.id}"})
                  for t in instance.tasks if t["status"] != "NEW"],
    })


def old_shape(instance: Instance) -> dict[str, Any]:
    """`POST /topapi/processinstance/get` → process_instance."""
    return _drop_none({
        "title": instance.title, "create_time": _old_time(instance.create), "finish_time": _old_time(instance.finish),
        "originator_userid": instance.originator, "originator_dept_id": "-1", "originator_dept_name": "销售部",
        "status": instance.status, "result": instance.result, "business_id": instance.business_id,
        "approver_userids": list(instance.process.approvers), "cc_userids": [], "biz_action": "NONE",
        "form_component_values": [{"id": f["id"], "name": f["name"], "value": f["value"],
                                   "component_type": f["componentType"]} for f in instance.form],
        "operation_records": [_drop_none({"userid": r["userId"], "date": _old_time(r["date"]),
                                          "operation_type": r["type"], "operation_result": r["result"],
                                          "remark": r["remark"] or None}) for r in instance.records],
        "tasks": [_drop_none({"taskid": t["taskId"], "userid": t["userId"], "task_status": t["status"],
                              "task_result": t["result"], "create_time": _old_time(t["createTime"]),
                              "finish_time": _old_time(t["finishTime"]), "activity_id": t["activityId"]})
                  for t in instance.tasks if t["status"] != "NEW"],
    })


def record_shape(instance: Instance) -> dict[str, Any]:
    """What `GET /_sandbox/records/{kind}` lists: the connector's record shape."""
    result = new_shape(instance)
    form = {f["name"]: f["value"] for f in instance.form}
    return {"processInstanceId": instance.id, **result, "processCode": instance.process.code, "form": form}


# --- faults and envelopes ---------------------------------------------------------------------


class _FaultAnswer:
    """DingTalk's answer to a throttled or failed call, in the envelope of the generation called."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        new_api = str(scope.get("path", "")).startswith("/v1.0/")
        if new_api and self.kind == "rate_limit":
            response = JSONResponse({"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                                     "message": "应用调用该接口的QPS超过限制", "requestid": secrets.token_hex(8)}, 403)
        elif new_api:
            response = JSONResponse({"code": "ServiceUnavailable", "message": "系统繁忙，请稍后重试",
                                     "requestid": secrets.token_hex(8)}, 503)
        elif self.kind == "rate_limit":
            response = JSONResponse({"errcode": 90018, "errmsg": "当前企业调用该接口超过频率限制"})
        else:
            response = JSONResponse({"errcode": -1, "errmsg": "系统繁忙"})
        await response(scope, receive, send)


def fault_answer(kind: str, spec: FaultSpec) -> Any:
    return _FaultAnswer(kind)


def _new_error(error: VendorError) -> JSONResponse:
    return JSONResponse({"code": error.code, "message": error.message, "requestid": secrets.token_hex(8)}, error.status)


def _old_error(error: VendorError) -> JSONResponse:
    return JSONResponse({"errcode": error.errcode, "errmsg": error.message, "request_id": secrets.token_hex(8)})


def _now() -> int:
    return int(time.time() * 1000)


# --- callbacks --------------------------------------------------------------------------------


def callback_keys() -> CallbackKeys:
    return CallbackKeys(CALLBACK_TOKEN, crypto.aes_key(CALLBACK_AES_KEY), APP_KEY)


def _deliver(kit: SandboxKit, message: dict[str, Any]) -> None:
    """Queue one callback; each attempt is encrypted and signed afresh, as DingTalk does."""
    keys = callback_keys()
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def build(url: str) -> OutboundCall:
        timestamp, nonce_value = str(_now()), nonce()
        encrypt, signature = sealed(text, keys.token, keys.key, keys.owner_key, timestamp, nonce_value)
        joiner = "&" if "?" in url else "?"
        query = f"msg_signature={signature}&timestamp={timestamp}&nonce={nonce_value}"
        return OutboundCall(f"{url}{joiner}{query}", json.dumps({"encrypt": encrypt}).encode("utf-8"),
                            {"Content-Type": "application/json"})

    def accept(response: requests.Response) -> bool:
        return response.status_code == 200 and is_success_reply(response.content, keys)

    kit.webhooks.send(str(message["EventType"]), build, accept)


def instance_event(instance: Instance, kind: str, at: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "EventType": "bpms_instance_change", "processInstanceId": instance.id, "corpId": CORP_ID,
        "createTime": instance.create, "title": instance.title, "type": kind, "staffId": instance.originator,
        "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?dinghash=approval&procInstId={instance.id}",
        "processCode": instance.process.code, "bizCategoryId": "", "businessId": instance.business_id}
    if kind in ("finish", "terminate"):
        message["finishTime"] = at
    if kind == "finish":
        message["result"] = instance.result
    return message


def task_event(instance: Instance, task: dict[str, Any], remark: str) -> dict[str, Any]:
    return {"EventType": "bpms_task_change", "processInstanceId": instance.id, "corpId": CORP_ID,
            "createTime": task["createTime"], "finishTime": task["finishTime"], "title": instance.title,
            "type": "finish", "staffId": task["userId"], "result": task["result"].lower(), "remark": remark,
            "processCode": instance.process.code, "taskId": task["taskId"], "bizCategoryId": ""}


# --- the app ----------------------------------------------------------------------------------


def create_app(options: SandboxOptions) -> FastAPI:
    kit = SandboxKit("dingtalk", options, fault_answer, webhook_delays=WEBHOOK_DELAYS)
    org = Org(options)
    app = kit.create_app("DingTalk sandbox")
    app.state.org = org

    def new_auth(request: Request) -> None:
        if not org.token_valid(request.headers.get("x-acs-dingtalk-access-token")):
            raise VendorError(401, "InvalidAuthentication", "不合法的access_token", 40014)

    def old_auth(token: str | None) -> None:
        if not org.token_valid(token):
            raise VendorError(200, "", "不合法的access_token", 40014)

    # tokens

    @app.post("/v1.0/oauth2/accessToken")
    def new_token(body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        if body.get("appKey") != APP_KEY or body.get("appSecret") != APP_SECRET:
            return _new_error(VendorError(400, "invalidClientIdOrSecret", "无效的appKey或appSecret", 40089))
        token, lifetime = org.issue_token()
        return JSONResponse({"accessToken": token, "expireIn": lifetime})

    @app.get("/gettoken")
    def old_token(appkey: str = "", appsecret: str = "") -> JSONResponse:
        if appkey != APP_KEY or appsecret != APP_SECRET:
            return _old_error(VendorError(200, "", "不合法的appKey或appSecret", 40089))
        token, lifetime = org.issue_token()
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": lifetime})

    # new API

    @app.post("/v1.0/workflow/processInstances")
    def new_create(request: Request, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            new_auth(request)
            instance = _create(kit, org, body.get("processCode"), body.get("originatorUserId"),
                               body.get("formComponentValues"))
        except VendorError as error:
            return _new_error(error)
        return JSONResponse({"instanceId": instance.id})

    @app.get("/v1.0/workflow/processInstances")
    def new_get(request: Request, processInstanceId: str = Query("")) -> JSONResponse:  # noqa: N803
        try:
            new_auth(request)
            with org.lock:
                instance = org.instance(processInstanceId)
                if instance is None:
                    raise _not_found()
                return JSONResponse({"success": True, "result": new_shape(instance)})
        except VendorError as error:
            return _new_error(error)

    @app.post("/v1.0/workflow/processes/instanceIds/query")
    def new_list(request: Request, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            new_auth(request)
            ids, following = _list(org, body.get("processCode"), body.get("startTime"), body.get("endTime"),
                                    body.get("nextToken"), body.get("maxResults"))
        except VendorError as error:
            return _new_error(error)
        result: dict[str, Any] = {"list": ids}
        if following is not None:
            result["nextToken"] = str(following)
        return JSONResponse({"success": True, "result": result})

    @app.post("/v1.0/workflow/processInstances/terminate")
    def new_terminate(request: Request, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            new_auth(request)
            _terminate(kit, org, body.get("processInstanceId"), body.get("operatingUserId"), body.get("remark"))
        except VendorError as error:
            return _new_error(error)
        return JSONResponse({"success": True, "result": True})

    # old API

    @app.post("/topapi/processinstance/create")
    def old_create(access_token: str | None = None, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            old_auth(access_token)
            instance = _create(kit, org, body.get("process_code"), body.get("originator_user_id"),
                               body.get("form_component_values"))
        except VendorError as error:
            return _old_error(error)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "process_instance_id": instance.id,
                             "request_id": secrets.token_hex(8)})

    @app.post("/topapi/processinstance/get")
    def old_get(access_token: str | None = None, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            old_auth(access_token)
            with org.lock:
                instance = org.instance(str(body.get("process_instance_id") or ""))
                if instance is None:
                    raise _not_found()
                return JSONResponse({"errcode": 0, "errmsg": "ok", "process_instance": old_shape(instance)})
        except VendorError as error:
            return _old_error(error)

    @app.post("/topapi/processinstance/listids")
    def old_list(access_token: str | None = None, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            old_auth(access_token)
            ids, following = _list(org, body.get("process_code"), body.get("start_time"), body.get("end_time"),
                                   body.get("cursor"), body.get("size"))
        except VendorError as error:
            return _old_error(error)
        result: dict[str, Any] = {"list": ids}
        if following is not None:
            result["next_cursor"] = following
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": result})

    @app.post("/topapi/process/instance/terminate")
    def old_terminate(access_token: str | None = None, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        try:
            old_auth(access_token)
            request = body.get("request") or {}
            _terminate(kit, org, request.get("process_instance_id"), request.get("operating_userid"),
                       request.get("remark"))
        except VendorError as error:
            return _old_error(error)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": True})

    _control_routes(app, kit, org)
    return app


def _create(kit: SandboxKit, org: Org, code: Any, originator: Any, values: Any) -> Instance:
    process = BY_CODE.get(str(code or ""))
    if process is None:
        raise VendorError(400, "processCodeNotExist", "审批模板不存在", 40035)
    if originator not in USERS:
        raise _bad_param("发起人不存在或不在企业中")
    form = validate_form(process, values)
    with org.lock:
        at = _now()
        instance = org.start(process, str(originator), form, at)
        message = instance_event(instance, "start", at)
    _deliver(kit, message)
    return instance


def _terminate(kit: SandboxKit, org: Org, instance_id: Any, operator: Any, remark: Any) -> None:
    with org.lock:
        instance = org.instance(str(instance_id or ""))
        if instance is None:
            raise _not_found()
        at = _now()
        org.terminate(instance, str(operator) if operator else None, str(remark or ""), at)
        message = instance_event(instance, "terminate", at)
    _deliver(kit, message)


def _list(org: Org, code: Any, start: Any, end: Any, token: Any, size: Any) -> tuple[list[str], int | None]:
    if str(code or "") not in BY_CODE:
        raise VendorError(400, "processCodeNotExist", "审批模板不存在", 40035)
    try:
        start_ms, offset = int(start), int(token or 0)
        end_ms = int(end) if end not in (None, "") else _now()
        limit = int(size or 20)
    except (TypeError, ValueError):
        raise _bad_param("startTime、endTime、nextToken、maxResults 必须是数字") from None
    if not 1 <= limit <= 20:
        raise _bad_param("maxResults 取值范围为 1~20")
    if end_ms - start_ms > 365 * DAY:
        raise _bad_param("查询时间跨度不能超过365天")
    with org.lock:
        ids = org.listed(str(code), start_ms, end_ms)
    page = ids[offset : offset + limit]
    return page, (offset + limit if offset + limit < len(ids) else None)


def _control_routes(app: FastAPI, kit: SandboxKit, org: Org) -> None:
    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        org.expire_tokens()
        return {"expired": True}

    @app.post("/_sandbox/touch")
    def touch(body: dict[str, Any] = _JSON_BODY) -> dict[str, Any]:
        with org.lock:
            count = org.touch([str(i) for i in body.get("ids") or []], _now())
        return {"touched": count}

    @app.get("/_sandbox/records/{kind}")
    def records(kind: str) -> dict[str, Any]:
        process = PROCESSES.get(kind)
        if process is None:
            return {"records": []}
        with org.lock:
            built = [org.instance(i) for _, i in org.starts[process.code]]
            found = [record_shape(instance) for instance in built if instance is not None]
        return {"records": found}

    @app.post("/_sandbox/instances/{instance_id}/decide")
    def decide(instance_id: str, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        action = body.get("action")
        if action not in ("agree", "refuse"):
            return JSONResponse({"error": "action must be 'agree' or 'refuse'"}, 400)
        with org.lock:
            instance = org.instance(instance_id)
            if instance is None:
                return JSONResponse({"error": "no such instance"}, 404)
            at = _now()
            comment = str(body.get("comment") or "")
            try:
                task = org.decide(instance, action, comment, body.get("user_id"), at)
            except VendorError as error:
                return JSONResponse({"error": error.message}, 409)
            messages = [task_event(instance, task, comment)]
            if instance.status == "COMPLETED":
                messages.append(instance_event(instance, "finish", at))
            shape = record_shape(instance)
        for message in messages:
            _deliver(kit, message)
        return JSONResponse({"instance": shape})

    @app.post("/_sandbox/instances/{instance_id}/comment")
    def comment(instance_id: str, body: dict[str, Any] = _JSON_BODY) -> JSONResponse:
        with org.lock:
            instance = org.instance(instance_id)
            if instance is None:
                return JSONResponse({"error": "no such instance"}, 404)
            user = str(body.get("user_id") or instance.originator)
            instance.records.append({"userId": user, "date": _now(), "type": "ADD_REMARK", "result": "NONE",
                                     "remark": str(body.get("text") or "")})
            return JSONResponse({"instance": record_shape(instance)})


def system_config(base_url: str) -> dict[str, Any]:
    """The `systems:` entry pointing a hub at this sandbox (sandbox-only demo credentials)."""
    return {
        "connector": "dingtalk",
        "base_url": base_url,
        "auth": {"app_key": APP_KEY, "app_secret": APP_SECRET},
        "webhook": {"token": CALLBACK_TOKEN, "aes_key": CALLBACK_AES_KEY, "owner_key": APP_KEY},
        "options": {
            "oapi_base_url": base_url,
            "originator_user_id": APPLICANTS[0],
            "kinds": {kind: {"process_code": p.code, "fields": {c.label: c.type for c in p.components}}
                      for kind, p in PROCESSES.items()},
        },
    }
