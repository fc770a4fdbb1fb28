"""Feishu approvals in the contract suite: contract approvals, created idempotently by uuid.

Creates pass the op's key as Feishu's `uuid`. Feishu refuses a second create with a used uuid
(code 60012) and the connector then reports the instance that carries it as not created, so
the suite's upsert test applies (`upserts=True`). Instances cannot be edited (`updates=False`);
`change()` makes a change as a user does: the approver decides through the sandbox.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from connectors.base import WebhookRequest
from connectors.feishu import crypto
from connectors.feishu.webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.contract.kit import ContractKit, Sandbox


@dataclass
class FeishuKit(ContractKit):
    name: str = "feishu"
    obj: str = "contract"
    key_field: str = "uuid"
    batch_limit: int = 1
    page_size: int = 10
    updates: bool = False
    upserts: bool = True
    options: dict[str, Any] = field(default_factory=lambda: {"page_size": 10})

    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"form_values": {
            "customer_name": f"杭州博远科技有限公司（{n}）",
            "order_number": f"SO-2024-{n:05d}",
            "amount": f"{12000 + n}.50",
            "currency": "CNY",
        }}
        if key is not None:
            record["uuid"] = key
        return record

    def invalid_record(self) -> dict[str, Any]:
        # the definition requires 客户名称 (widget_customer): Feishu answers 1390001
        return {"form_values": {"order_number": "SO-2024-99999", "amount": "100", "currency": "CNY"}}

    def edit(self, n: int) -> dict[str, Any]:
        return self.new_record(n)

    def label(self, record: dict[str, Any]) -> str:
        return str(record["form_values"]["customer_name"])

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["instance_code"])

    def change(self, sandbox: Sandbox, connector: Any, external_id: str, n: int) -> None:
        action = "agree" if n % 2 else "refuse"
        sandbox.control("POST", f"instances/{external_id}/decide", {"action": action, "comment": f"第{n}次审批意见"})

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        encrypt_key = str(self.system(sandbox).webhook["encrypt_key"])
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in {h.lower() for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)}}
        timestamp, nonce = str(int(time.time()) - 3600), "stale-nonce"
        headers.update({TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce,
                        SIGNATURE_HEADER: crypto.signature(timestamp, nonce, encrypt_key, request.body)})
        return WebhookRequest(request.method, request.url, headers, request.query, request.body)


KIT = FeishuKit()
