"""ERPNext for the contract suite: Customer records keyed by the custom field `synchub_id`.

ERPNext writes one document per call (batch_limit 1), its API keys never expire and its
webhooks carry no timestamp, so those two tests are skipped.
"""

from __future__ import annotations

from typing import Any

from tests.contract.kit import ContractKit


class ErpnextKit(ContractKit):
    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "customer_name": f"Kontrakt Maschinenbau {n} GmbH",
            "customer_type": "Company",
            "customer_group": "Commercial",
            "territory": "Germany",
            "email_id": f"einkauf{n}@kontrakt-maschinenbau.de",
            "customer_details": f"created {n}",
        }
        if key is not None:
            record["synchub_id"] = key
        return record

    def invalid_record(self) -> dict[str, Any]:
        return {"customer_type": "Company", "customer_group": "Commercial", "territory": "Germany"}

    def edit(self, n: int) -> dict[str, Any]:
        return {"customer_details": f"edited {n}"}

    def label(self, record: dict[str, Any]) -> str:
        return str(record.get("customer_details"))

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["name"])


KIT = ErpnextKit(
    name="erpnext",
    obj="Customer",
    key_field="synchub_id",
    batch_limit=1,
    page_size=10,
    token_expiry=False,
    webhook_timestamps=False,
    options={"page_size": 10},
)
