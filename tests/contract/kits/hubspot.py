"""HubSpot companies in the contract suite: CRM v3 objects, key property `synchub_id`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from connectors.base import WebhookRequest
from connectors.hubspot import webhook as hooks
from connectors.hubspot.sandbox import CLIENT_SECRET
from tests.contract.kit import ContractKit, Sandbox


@dataclass
class HubSpotKit(ContractKit):
    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        properties = {"name": f"Northwind Trading GmbH ({n})", "domain": f"northwind{n}.de",
                      "city": "Hamburg", "country": "Germany", "tax_id": f"DE{100000000 + n}"}
        if key is not None:
            properties["synchub_id"] = key
        return {"properties": properties}

    def invalid_record(self) -> dict[str, Any]:
        # credit_limit is a number property: HubSpot refuses text there with VALIDATION_ERROR
        return {"properties": {"name": "Broken Ltd", "credit_limit": "a lot"}}

    def edit(self, n: int) -> dict[str, Any]:
        return {"properties": {"name": f"Northwind Logistics GmbH ({n})"}}

    def label(self, record: dict[str, Any]) -> str:
        return str(record["properties"]["name"])

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    def key_of(self, record: dict[str, Any]) -> str | None:
        value = (record.get("properties") or {}).get("synchub_id")
        return None if value in (None, "") else str(value)

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        """Re-signed correctly with the app secret, but six minutes old."""
        old = str(int(time.time() * 1000) - 6 * 60 * 1000)
        signature = hooks.sign_v3(CLIENT_SECRET, request.method, request.url, request.body, old)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in (hooks.SIGNATURE_V3.lower(), hooks.TIMESTAMP.lower())}
        headers.update({hooks.SIGNATURE_V3: signature, hooks.TIMESTAMP: old})
        return WebhookRequest(request.method, request.url, headers, request.query, request.body)


KIT = HubSpotKit(name="hubspot", obj="companies", key_field="properties.synchub_id", batch_limit=100,
                 page_size=10, options={"page_size": 10})
