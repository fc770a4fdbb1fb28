"""DingTalk approvals against the DingTalk sandbox: the `contract` approval kind, new API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from connectors.base import WebhookRequest
from connectors.dingtalk import crypto
from connectors.dingtalk.sandbox import APPLICANTS, CALLBACK_TOKEN
from tests.contract.kit import ContractKit, Sandbox

_WRITE_ROUTES = ("POST /v1.0/workflow/processInstances", "POST /v1.0/workflow/processInstances/terminate",
                 "POST /topapi/processinstance/create", "POST /topapi/process/instance/terminate")


@dataclass
class DingTalkKit(ContractKit):
    """Contract approvals: created through push, changed by an approver deciding in the sandbox."""

    api: str = "new"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.options = {"page_size": self.page_size, "api": self.api, **self.options}

    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        form: dict[str, Any] = {"客户名称": f"杭州博远科技有限公司（测试{n}）", "订单编号": f"SO-2024-{n:05d}",
                                "合同金额": f"{10_000 + n}.50", "币种": "CNY", "关联订单": f"SO-2024-{n:05d}"}
        if key is not None:
            form["同步ID"] = key
        return {"originatorUserId": APPLICANTS[0], "form": form}

    def invalid_record(self) -> dict[str, Any]:
        return {"originatorUserId": APPLICANTS[0], "form": {"订单编号": "SO-2024-99999", "合同金额": "12.00", "币种": "CNY"}}

    def edit(self, n: int) -> dict[str, Any]:
        return {"form": {"客户名称": f"编辑后的客户{n}"}}

    def label(self, record: dict[str, Any]) -> str:
        return str((record.get("form") or {}).get("客户名称"))

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["processInstanceId"])

    def key_of(self, record: dict[str, Any]) -> str | None:
        value = (record.get("form") or {}).get("同步ID")
        return str(value) if value else None

    def change(self, sandbox: Sandbox, connector: Any, external_id: str, n: int) -> None:
        """The current approver agrees (a running instance) or someone comments (a finished one)."""
        [record] = [r for r in sandbox.records(self.obj) if r["processInstanceId"] == external_id]
        if record["status"] == "RUNNING":
            sandbox.control("POST", f"instances/{external_id}/decide", {"action": "agree", "comment": f"同意 {n}"})
        else:
            sandbox.control("POST", f"instances/{external_id}/comment", {"text": f"已归档 {n}"})

    def write_calls(self, stats: dict[str, Any]) -> int:
        return sum(n for route, n in stats["by_route"].items() if route in _WRITE_ROUTES)

    def is_auth_route(self, route: str) -> bool:
        return "accessToken" in route or "gettoken" in route

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        """Signed correctly, an hour old (DingTalk timestamps are milliseconds)."""
        import json

        encrypt = json.loads(request.body)["encrypt"]
        timestamp = str(int(time.time() * 1000) - 3_600_000)
        nonce = request.query.get("nonce", "abcdefgh")
        query = {"msg_signature": crypto.signature(CALLBACK_TOKEN, timestamp, nonce, encrypt),
                 "timestamp": timestamp, "nonce": nonce}
        return WebhookRequest(request.method, request.url, request.headers, query, request.body)


KIT = DingTalkKit(
    name="dingtalk", obj="contract", key_field="form.同步ID", batch_limit=1, page_size=5,
    updates=False, upserts=False,
    skips={"test_upsert_twice_gives_one_record": "DingTalk cannot find an approval by a key of ours",
           "test_create_then_update": "an approval instance is not editable"},
)
