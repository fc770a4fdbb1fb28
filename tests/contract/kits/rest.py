"""The generic REST connector against its "in-house system" sandbox (cursor paging, OAuth2)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from connectors.base import WebhookRequest
from connectors.rest.sandbox import BATCH_LIMIT, WEBHOOK_SECRET, customers_object
from connectors.rest.webhook import Signing, header, signature
from tests.contract.kit import ContractKit, Sandbox


@dataclass
class RestKit(ContractKit):
    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        record = {"name": f"Kit Customer {n} 有限公司", "email": f"kit{n}@example.cn", "city": "上海市", "country": "CN"}
        if key is not None:
            record[self.key_field] = key
        return record

    def invalid_record(self) -> dict[str, Any]:
        return {"name": "  ", "email": "not-an-address"}

    def edit(self, n: int) -> dict[str, Any]:
        return {"name": f"Edited Customer {n}"}

    def label(self, record: dict[str, Any]) -> str:
        return str(record["name"])

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        signing = Signing(prefix="sha256=", signed="timestamp_body")
        old = str(int(time.time()) - 3600)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("x-timestamp", "x-signature")}
        headers.update({"X-Timestamp": old, "X-Signature": signature(WEBHOOK_SECRET, signing, request.body, old)})
        assert header(headers, "x-signature") != header(request.headers, "x-signature")
        return WebhookRequest(request.method, request.url, headers, request.query, request.body)


KIT = RestKit(
    name="rest",
    obj="customers",
    key_field="external_key",
    batch_limit=BATCH_LIMIT,
    page_size=10,
    options={"objects": {"customers": customers_object("cursor", page_size=10)}, "errors": {"message": "error.message"}},
)
