"""Odoo's answers to the contract suite: res.partner records keyed by `ref`, 200 per create.

Every Odoo call is a POST to one endpoint, so the sandbox labels its call statistics with
the model and method (`POST /jsonrpc res.partner.create`), and write calls are the ones
whose method writes. Odoo has no token that expires (the uid cache is tested in
tests/connectors/test_odoo.py) and its webhooks carry no timestamp; what authenticates a
webhook is the shared token, so tampering means changing the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import WebhookRequest
from tests.contract.kit import ContractKit

_WRITE_METHODS = ("create", "write", "unlink")


@dataclass
class OdooKit(ContractKit):
    def new_record(self, n: int, key: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {"name": f"Contract Test Company {n}", "is_company": True,
                                  "email": f"buyer{n}@contract-test.example.com", "city": "Shanghai"}
        if key is not None:
            record[self.key_field] = key
        return record

    def invalid_record(self) -> dict[str, Any]:
        return {"email": "nameless@contract-test.example.com", "is_company": True}  # a contact needs a name

    def edit(self, n: int) -> dict[str, Any]:
        return {"name": f"Renamed Company {n}"}

    def label(self, record: dict[str, Any]) -> str:
        return str(record["name"])

    def record_id(self, record: dict[str, Any]) -> str:
        return str(record["id"])

    def write_calls(self, stats: dict[str, Any]) -> int:
        return sum(n for route, n in stats["by_route"].items() if route.rsplit(".", 1)[-1] in _WRITE_METHODS)

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """The same notification with its token changed (Odoo's webhooks carry no signature)."""
        headers = {k: (v[:-1] + ("x" if v[-1:] != "x" else "y")) if k.lower() == "x-odoo-webhook-token" else v
                   for k, v in request.headers.items()}
        query = {k: (v[:-1] + ("x" if v[-1:] != "x" else "y")) if k == "token" else v for k, v in request.query.items()}
        assert headers != dict(request.headers) or query != dict(request.query), "the webhook carried no token"
        return WebhookRequest(request.method, request.url, headers, query, request.body)


KIT = OdooKit(name="odoo", obj="res.partner", key_field="ref", batch_limit=200, page_size=10,
              token_expiry=False, webhook_timestamps=False, options={"page_size": 10}, rereads_stamp="write_date")
