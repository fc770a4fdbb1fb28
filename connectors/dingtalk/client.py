"""DingTalk's HTTP APIs, new (api.dingtalk.com) and old (oapi.dingtalk.com), behind one client.

The new API authenticates with `POST /v1.0/oauth2/accessToken` and a
`x-acs-dingtalk-access-token` header, and reports errors with an HTTP status and
`{"code", "message"}`. The old one authenticates with `GET /gettoken` and `?access_token=`,
and answers HTTP 200 with `{"errcode", "errmsg"}` whatever happened. Both tokens last
7,200 s; `TokenCache` keeps one until shortly before that and `refresh_auth` drops it when
DingTalk says it is no longer valid.

Whatever the generation, the methods here return the new API's shapes (camelCase,
`formComponentValues`, `operationRecords`, `tasks`), so that one mapping per approval kind
serves both. The old API's local times ("2024-05-01 10:00:00", China time) become ISO UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, TokenCache, retry_after, short

log = structlog.get_logger()

NEW_API = "new"
OLD_API = "old"
DEFAULT_NEW_HOST = "https://api.dingtalk.com"
DEFAULT_OLD_HOST = "https://oapi.dingtalk.com"
CHINA = ZoneInfo("Asia/Shanghai")

# old API errcodes (UNCONFIRMED for DingTalk beyond 40014/42001: these follow its error-code page)
_OLD_TOKEN_CODES = frozenset({40014, 42001, 41001})
_OLD_BUSY_CODES = frozenset({-1})
_OLD_THROTTLE_RANGE = range(90002, 90020)
NOT_FOUND_CODES = frozenset({"InstanceNotFound", "800001"})
_THROTTLE_PREFIX = "Forbidden.AccessDenied.QpsLimit"
_DEFAULT_THROTTLE_WAIT = 1.0  # DingTalk sends no Retry-After; its docs say to retry after a second


class DingTalkClient(HttpClient):
    """One app's access to one DingTalk org, through the API generation `api` names."""

    vendor = "dingtalk"

    def __init__(self, base_url: str, app_key: str, app_secret: str, *, api: str = NEW_API,
                 timeout: float = 30.0, verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, verify=verify)
        if api not in (NEW_API, OLD_API):
            raise ValueError(f"dingtalk: api must be '{NEW_API}' or '{OLD_API}'")
        self.api = api
        self._app_key = app_key
        self._app_secret = app_secret
        self.protect(app_secret)
        self.tokens = TokenCache(self._fetch_token)
        self.log = log.bind(vendor=self.vendor, api=api)

    # --- auth ----------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        if self.api == NEW_API:
            response = self.send("POST", "/v1.0/oauth2/accessToken", authorize=False,
                                 json={"appKey": self._app_key, "appSecret": self._app_secret})
            body = self.json_object(response)
            token, lifetime = body.get("accessToken"), body.get("expireIn", 7200)
        else:
            response = self.send("GET", "/gettoken", authorize=False,
                                 params={"appkey": self._app_key, "appsecret": self._app_secret})
            body = self.json_object(response)
            token, lifetime = body.get("access_token"), body.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise Unavailable("dingtalk: token answer without a token")
        self.log.info("dingtalk token fetched", lifetime=lifetime)
        try:
            return token, float(lifetime)
        except (TypeError, ValueError):
            return token, 7200.0

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        token = self.tokens.get()
        if self.api == NEW_API:
            headers["x-acs-dingtalk-access-token"] = token
        else:
            params["access_token"] = token

    def refresh_auth(self) -> None:
        self.log.info("dingtalk token refused; fetching a new one")
        self.tokens.forget()

    # --- errors --------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        body = _json(response)
        where = f"dingtalk: {response.request.method} {_path(response)}"
        if isinstance(body, dict) and "errcode" in body:
            return _classify_old(body, where, response)
        if response.status_code < 400:
            return None
        code = str(body.get("code") or "") if isinstance(body, dict) else ""
        message = short(str(body.get("message") or "")) if isinstance(body, dict) else short(response.text)
        text = f"{where}: {code} {message}".strip()
        if code.startswith(_THROTTLE_PREFIX) or response.status_code == 429:
            return RateLimited(text, retry_after(response.headers) or _DEFAULT_THROTTLE_WAIT)
        if response.status_code == 401 or code == "InvalidAuthentication":
            return AuthExpired(text)
        if response.status_code >= 500:
            return Unavailable(text, retry_after(response.headers))
        return Rejected(message or text, code or str(response.status_code))

    # --- approvals -----------------------------------------------------------------------

    def create_instance(self, process_code: str, originator: str, form: list[dict[str, Any]], *,
                        dept_id: int | None = None, approvers: list[str] | None = None,
                        agent_id: int | None = None) -> str:
        """Start an approval instance; its id."""
        if self.api == NEW_API:
            body: dict[str, Any] = {"originatorUserId": originator, "processCode": process_code,
                                    "formComponentValues": form}
            if dept_id is not None:
                body["deptId"] = dept_id
            if approvers:
                body["approvers"] = [{"actionType": "NONE", "userIds": [user]} for user in approvers]
            answer = self.json_object(self.send("POST", "/v1.0/workflow/processInstances", json=body))
            instance = answer.get("instanceId")
        else:
            old: dict[str, Any] = {"process_code": process_code, "originator_user_id": originator,
                                   "dept_id": dept_id if dept_id is not None else -1,
                                   "form_component_values": [{"name": f["name"], "value": f["value"]} for f in form]}
            if approvers:
                old["approvers"] = ",".join(approvers)
            if agent_id is not None:
                old["agent_id"] = agent_id
            answer = self.json_object(self.send("POST", "/topapi/processinstance/create", json=old))
            instance = answer.get("process_instance_id")
        if not isinstance(instance, str) or not instance:
            raise Unavailable("dingtalk: create answer without an instance id")
        return instance

    def get_instance(self, instance_id: str) -> dict[str, Any] | None:
        """The instance in the new API's shape, with `processInstanceId` added; None if unknown."""
        try:
            if self.api == NEW_API:
                response = self.send("GET", "/v1.0/workflow/processInstances",
                                     params={"processInstanceId": instance_id})
                answer = self.json_object(response)
                result = answer.get("result")
            else:
                response = self.send("POST", "/topapi/processinstance/get", json={"process_instance_id": instance_id})
                answer = self.json_object(response)
                instance = answer.get("process_instance") or {}
                result = from_old_instance(instance) if isinstance(instance, dict) else None
        except Rejected as exc:
            if exc.vendor_code in NOT_FOUND_CODES:
                return None
            raise
        if not isinstance(result, dict):
            return None
        return {"processInstanceId": instance_id, **result}

    def list_instance_ids(self, process_code: str, start_ms: int, end_ms: int, token: int,
                          size: int) -> tuple[list[str], int | None]:
        """One page of instance ids started in [start, end]; the next page's token, or None."""
        if self.api == NEW_API:
            response = self.send("POST", "/v1.0/workflow/processes/instanceIds/query",
                                 json={"processCode": process_code, "startTime": start_ms, "endTime": end_ms,
                                       "nextToken": token, "maxResults": size})
            answer = self.json_object(response)
            result, next_key = answer.get("result") or {}, "nextToken"
        else:
            response = self.send("POST", "/topapi/processinstance/listids",
                                 json={"process_code": process_code, "start_time": start_ms, "end_time": end_ms,
                                       "size": size, "cursor": token})
            answer = self.json_object(response)
            result, next_key = answer.get("result") or {}, "next_cursor"
        if not isinstance(result, dict) or not isinstance(result.get("list") or [], list):
            raise Unavailable("dingtalk: the instance id list answer has no result.list")
        ids = [str(i) for i in result.get("list") or []]
        following = result.get(next_key)
        return ids, (int(following) if following not in (None, "", 0, "0") and ids else None)

    def terminate(self, instance_id: str, operator: str | None, remark: str) -> None:
        """Withdraw (terminate) a running instance."""
        if self.api == NEW_API:
            body: dict[str, Any] = {"processInstanceId": instance_id, "isSystem": True, "remark": remark}
            if operator:
                body["operatingUserId"] = operator
            self.send("POST", "/v1.0/workflow/processInstances/terminate", json=body)
        else:
            request: dict[str, Any] = {"process_instance_id": instance_id, "is_system": True, "remark": remark}
            if operator:
                request["operating_userid"] = operator
            self.send("POST", "/topapi/process/instance/terminate", json={"request": request})


def _classify_old(body: dict[str, Any], where: str, response: requests.Response) -> ConnectorError | None:
    try:
        code = int(body.get("errcode") or 0)
    except (TypeError, ValueError):
        code = -1
    if code == 0:
        return None
    message = short(str(body.get("errmsg") or ""))
    text = f"{where}: errcode {code} {message}"
    if code in _OLD_TOKEN_CODES:
        return AuthExpired(text)
    if code in _OLD_THROTTLE_RANGE:
        return RateLimited(text, retry_after(response.headers) or _DEFAULT_THROTTLE_WAIT)
    if code in _OLD_BUSY_CODES or response.status_code >= 500:
        return Unavailable(text)
    return Rejected(message or text, str(code))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _path(response: requests.Response) -> str:
    from urllib.parse import urlsplit

    return urlsplit(response.url).path or "/"


# --- old API shapes to new ones ----------------------------------------------------------------


def old_time_to_iso(value: Any) -> str | None:
    """'2024-05-01 10:00:00' (China time, as the old API writes it) to '2024-05-01T02:00:00Z'."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_old_instance(pi: dict[str, Any]) -> dict[str, Any]:
    """An old `process_instance` in the new API's field names and time format."""
    if not pi:
        return {}
    return _compact({
        "title": pi.get("title"),
        "createTime": old_time_to_iso(pi.get("create_time")),
        "finishTime": old_time_to_iso(pi.get("finish_time")),
        "originatorUserId": pi.get("originator_userid"),
        "originatorDeptId": _text(pi.get("originator_dept_id")),
        "originatorDeptName": pi.get("originator_dept_name"),
        "status": pi.get("status"),
        "result": pi.get("result"),
        "businessId": pi.get("business_id"),
        "bizAction": pi.get("biz_action"),
        "approverUserIds": pi.get("approver_userids"),
        "ccUserIds": pi.get("cc_userids"),
        "formComponentValues": [_compact({"id": f.get("id"), "name": f.get("name"), "value": f.get("value"),
                                          "extValue": f.get("ext_value"), "componentType": f.get("component_type")})
                                for f in pi.get("form_component_values") or []],
        "operationRecords": [_compact({"userId": r.get("userid"), "date": old_time_to_iso(r.get("date")),
                                       "type": r.get("operation_type"), "result": r.get("operation_result"),
                                       "remark": r.get("remark")})
                             for r in pi.get("operation_records") or []],
        "tasks": [_compact({"taskId": _text(t.get("taskid")), "userId": t.get("userid"),
                            "status": t.get("task_status"), "result": t.get("task_result"),
                            "createTime": old_time_to_iso(t.get("create_time")),
                            "finishTime": old_time_to_iso(t.get("finish_time")), "activityId": t.get("activity_id")})
                  for t in pi.get("tasks") or []],
    })


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
