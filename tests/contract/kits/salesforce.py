"""Salesforce in the contract suite: Accounts keyed by the external-id field Synchub_Id__c.

Query pages hold at least 200 records (Salesforce ignores a smaller batchSize), so the
page-boundary test runs on 403 records. Outbound messages carry no signature and no
timestamp: they are trusted by their OrganizationId, which is what tampering changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connectors.base import WebhookRequest
from tests.contract.kit import ContractKit, Sandbox

_ORGANIZATION_ID = re.compile(rb"<OrganizationId>([^<]*)</OrganizationId>")


@dataclass
class SalesforceKit(ContractKit):
    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"Name": f"Kit Account {n} GmbH", "BillingCity": "Hamburg", "BillingCountry": "Germany",
                                  "Phone": f"+49 40 {1000 + n}"}
        if key is not None:
            record[self.key_field] = key
        return record

    def invalid_record(self) -> dict[str, Any]:
        return {"BillingCity": "Hamburg", "Phone": "+49 40 0000"}  # no Name: REQUIRED_FIELD_MISSING

    def edit(self, n: int) -> dict[str, Any]:
        return {"Name": f"Kit Account {n} GmbH (renamed)"}

    def label(self, record: dict[str, Any]) -> str:
        return str(record["Name"])

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["Id"])

    def stale(self, request: WebhookRequest, sandbox: Sandbox) -> WebhookRequest:
        raise NotImplementedError("Salesforce outbound messages carry no timestamp")

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """The same message claiming to come from another org."""
        body = _ORGANIZATION_ID.sub(b"<OrganizationId>00D5j00000EvilOrgAAA</OrganizationId>", request.body, count=1)
        assert body != request.body, "the webhook carries no OrganizationId"
        return WebhookRequest(request.method, request.url, request.headers, request.query, body)


KIT = SalesforceKit(name="salesforce", obj="Account", key_field="Synchub_Id__c", batch_limit=200, page_size=200,
                    tls=True, webhook_timestamps=False, options={"page_size": 200}, rereads_stamp="SystemModstamp")
