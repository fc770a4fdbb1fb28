"""WeCom approvals in the contract suite: contract approvals, decided through the sandbox's approver route."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from connectors.base import WebhookRequest
from connectors.wecom import sandbox as wecom_sandbox
from connectors.wecom.crypto import signature
from connectors.wecom.webhook import parse_envelope
from tests.contract.kit import ContractKit, Sandbox


@dataclass
class WeComKit(ContractKit):
    options: dict[str, Any] = field(default_factory=lambda: {"page_size": 10})

    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        form = {"customer_name": f"上海华信科技有限公司（{n}）", "order_number": f"SO-2024-{n:05d}",
                "amount": f"{1000 + n}.00", "currency": "CNY"}
        if key:
            form["synchub_order_id"] = key
        return {"creator_userid": "zhangwei", "use_template_approver": 1, "form": form,
                "summary": f"销售合同 SO-2024-{n:05d}"}

    def invalid_record(self) -> dict[str, Any]:
        record = self.new_record(0)
        del record["form"]["amount"]  # a required Money control left out: applyevent refuses it
        return record

    def edit(self, n: int) -> dict[str, Any]:
        return {"summary": f"edit {n}"}

    def label(self, record: dict[str, Any]) -> str:
        return str(record.get("summary") or (record.get("form") or {}).get("order_number"))

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["sp_no"])

    def change(self, sandbox: Sandbox, connector: Any, external_id: str, n: int) -> None:
        """An approver agrees (or, once the instance is final, the applicant adds a comment)."""
        base = f"{sandbox.base_url}/_sandbox/instances/{external_id}"
        answer = requests.post(f"{base}/decide", json={"action": "agree", "comment": f"同意 {n}"}, timeout=10)
        if answer.status_code == 409:
            answer = requests.post(f"{base}/comment", json={"comment": f"备注 {n}"}, timeout=10)
        answer.raise_for_status()

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        old = str(int(time.time()) - 3600)
        encrypted = parse_envelope(request.body).encrypted
        query = dict(request.query)
        query.update(timestamp=old, msg_signature=signature(wecom_sandbox.CALLBACK_TOKEN, old, query["nonce"], encrypted))
        url = urlunsplit(urlsplit(request.url)._replace(query=urlencode(query)))
        return WebhookRequest(request.method, url, request.headers, query, request.body)


KIT = WeComKit(
    name="wecom",
    obj="contract",
    key_field="",
    batch_limit=1,
    page_size=10,
    updates=False,
    upserts=False,
)
