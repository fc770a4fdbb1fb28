"""ERPNext specifics over real HTTP on loopback: the Frappe client library against the sandbox,
Frappe's list parameters, submitted documents, error bodies, keyset cursors and webhooks.

The installed `frappe-client` (module `frappeclient`) is the Frappe client library: its
`FrappeClient(url, api_key=..., api_secret=...)` sends `Authorization: Basic base64(key:secret)`,
form-encoded `data=<json>` bodies and `/?cmd=frappe.client.*` calls, so the sandbox is checked
against a second client besides the connector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import Response
from frappeclient import FrappeClient
from frappeclient.frappeclient import FrappeException

from connectors.base import AuthExpired, OpKind, RateLimited, Rejected, Unavailable, WebhookRequest, WriteOp
from connectors.erpnext import Connector
from connectors.erpnext import sandbox as erp
from connectors.erpnext import webhook as hooks
from connectors.erpnext.connector import encode_cursor
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config.model import System

AUTH = {"Authorization": f"token {erp.API_KEY}:{erp.API_SECRET}"}


@pytest.fixture
def site() -> Iterator[RunningServer]:
    server = serve(erp.create_app(SandboxOptions(records=30, seed=3, webhook_retry_scale=0.01,
                                                 extra={"sales_orders": 6})))
    yield server
    server.stop()


def connector(server: RunningServer, **options: Any) -> Connector:
    declared = erp.system_config(server.base_url)
    return Connector(System(name="erp", connector="erpnext", base_url=declared["base_url"], auth=declared["auth"],
                            webhook=declared["webhook"], options={**declared["options"], **options}, timeout=5.0))


def api(server: RunningServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{server.base_url}{path}", headers=AUTH, timeout=5, **kwargs)


def listing(server: RunningServer, doctype: str, **params: Any) -> list[Any]:
    encoded = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()}
    response = api(server, "GET", f"/api/resource/{doctype}", params=encoded)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def force(server: RunningServer, *kinds: str) -> None:
    requests.put(f"{server.base_url}/_sandbox/faults", json={"next": list(kinds)}, timeout=5).raise_for_status()


def stats(server: RunningServer) -> dict[str, Any]:
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=5).json()  # type: ignore[no-any-return]


# --- the Frappe client library -------------------------------------------------------------


def test_frappe_client_lists_reads_inserts_updates_and_submits(site: RunningServer) -> None:
    client = FrappeClient(site.base_url, api_key=erp.API_KEY, api_secret=erp.API_SECRET)
    assert len(client.get_list("Customer")) == 20  # no limit given: Frappe's default page of 20
    rows = client.get_list("Customer", fields=["name", "territory"], filters=[["territory", "=", "Germany"]],
                           limit_page_length=5, order_by="name asc")
    assert rows and all(r["territory"] == "Germany" for r in rows)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)

    created = client.insert({"doctype": "Customer", "customer_name": "Weber Antriebstechnik GmbH",
                             "customer_group": "Commercial", "territory": "Germany", "synchub_id": "hub-weber"})
    assert created["name"] == "Weber Antriebstechnik GmbH" and created["docstatus"] == 0
    client.update({"doctype": "Customer", "name": created["name"], "customer_details": "Rahmenvertrag 2024"})
    assert client.get_doc("Customer", created["name"])["customer_details"] == "Rahmenvertrag 2024"
    assert client.get_value("Customer", "synchub_id", {"name": created["name"]}) == {"synchub_id": "hub-weber"}

    order = client.insert({"doctype": "Sales Order", "customer": created["name"], "transaction_date": "2024-06-03",
                           "delivery_date": "2024-06-20", "items": [{"item_code": "SKU-1002", "qty": 2}]})
    assert order["name"].startswith("SAL-ORD-") and order["grand_total"] == 9300.0
    assert order["items"][0]["item_name"] == "PLC 控制模块 C2" and order["status"] == "Draft"
    submitted = client.submit({"doctype": "Sales Order", "name": order["name"]})
    assert submitted["docstatus"] == 1 and submitted["status"] == "To Deliver and Bill"
    with pytest.raises(FrappeException):  # the library raises on Frappe's `exc`
        client.update({"doctype": "Sales Order", "name": order["name"], "customer": rows[0]["name"]})


def test_frappe_client_session_login_and_refused_documents(site: RunningServer) -> None:
    client = FrappeClient(site.base_url, username="Administrator", password="admin")
    assert client.get_api("frappe.auth.get_logged_user") == "Administrator"
    with pytest.raises(FrappeException) as refused:
        client.insert({"doctype": "Customer", "customer_group": "Commercial", "territory": "China"})
    assert "MandatoryError" in str(refused.value)
    requests.post(f"{site.base_url}/_sandbox/expire-tokens", timeout=5).raise_for_status()
    expired = client.session.get(f"{site.base_url}/api/method/frappe.auth.get_logged_user", timeout=5)
    assert expired.status_code == 401 and expired.json()["exc_type"] == "SessionExpired"


# --- list parameters -----------------------------------------------------------------------


def test_list_parameters_as_frappe_reads_them(site: RunningServer) -> None:
    assert listing(site, "Customer")[0].keys() == {"name"}  # without fields, only the name
    assert len(listing(site, "Customer", limit_page_length=0)) == 30  # 0 means all
    newest = listing(site, "Customer", fields=["name", "modified"], order_by="modified desc", limit_page_length=3)
    assert [r["modified"] for r in newest] == sorted((r["modified"] for r in newest), reverse=True)
    page = listing(site, "Customer", fields=["name"], order_by="name asc", limit_start=5, limit_page_length=5)
    everyone = listing(site, "Customer", fields=["name"], order_by="name asc", limit_page_length=0)
    assert page == everyone[5:10]
    as_dict = listing(site, "Customer", fields=["name", "territory"], filters={"territory": "China"},
                      limit_page_length=0)
    as_list = listing(site, "Customer", fields=["name", "territory"], filters={"territory": ["=", "China"]},
                      limit_page_length=0, as_dict=0)
    assert [[r["name"], r["territory"]] for r in as_dict] == as_list and as_list
    either = listing(site, "Customer", fields=["name", "territory"], limit_page_length=0,
                     or_filters=[["territory", "=", "Germany"], ["territory", "=", "France"]])
    assert {r["territory"] for r in either} <= {"Germany", "France"} and either
    liked = listing(site, "Customer", fields=["name"], filters=[["Customer", "name", "like", "%GmbH%"]],
                    limit_page_length=0)
    assert liked and all("GmbH" in r["name"] for r in liked)
    star = listing(site, "Sales Order", fields=["*"], limit_page_length=1)[0]
    assert "items" not in star and star["customer"] and star["grand_total"] > 0  # child tables only in the document


def test_unknown_doctype_and_missing_document_are_404_with_frappe_bodies(site: RunningServer) -> None:
    missing = api(site, "GET", "/api/resource/Customer/Nobody%20Ltd")
    assert missing.status_code == 404 and missing.json()["exc_type"] == "DoesNotExistError"
    assert "Nobody Ltd not found" in json.loads(json.loads(missing.json()["_server_messages"])[0])["message"]
    assert api(site, "GET", "/api/resource/Quality%20Inspection").status_code == 404
    guest = requests.get(f"{site.base_url}/api/resource/Customer", timeout=5)
    assert guest.status_code == 403 and guest.json()["exc_type"] == "PermissionError"


# --- the connector: errors -----------------------------------------------------------------


def test_frappe_errors_become_typed_errors_with_the_vendor_message(site: RunningServer) -> None:
    erpnext = connector(site, concurrency=1)
    bad, dup_a, dup_b = erpnext.push("Customer", [
        WriteOp(OpKind.CREATE, {"customer_group": "Commercial", "territory": "China"}, "hub-1", key_field="synchub_id"),
        WriteOp(OpKind.CREATE, {"customer_name": "Doppel AG"}, "hub-same", key_field="synchub_id"),
        WriteOp(OpKind.CREATE, {"customer_name": "Doppel AG"}, "hub-same", key_field="synchub_id"),
    ])
    assert isinstance(bad.error, Rejected) and bad.error.vendor_code == "MandatoryError"
    assert bad.error.reason == "MandatoryError: Error: Value missing for Customer: Customer Name"
    assert dup_a.ok and dup_a.external_id == "Doppel AG"
    assert isinstance(dup_b.error, Rejected) and dup_b.error.reason == "UniqueValidationError: Synchub Id must be unique"
    [item_a, item_b] = erpnext.push("Item", [WriteOp(OpKind.CREATE, {"item_code": "SKU-9", "item_group": "Products"}, "i"),
                                              WriteOp(OpKind.CREATE, {"item_code": "SKU-9", "item_group": "Products"}, "j")])
    assert item_a.ok and isinstance(item_b.error, Rejected)
    assert item_b.error.reason == "DuplicateEntryError: Item SKU-9 already exists"  # <strong> tags removed


def test_same_customer_name_gets_frappes_numbered_suffix(site: RunningServer) -> None:
    erpnext = connector(site)
    results = erpnext.push("Customer", [WriteOp(OpKind.CREATE, {"customer_name": "Acme Trading"}, f"k{i}") for i in range(3)])
    assert sorted(r.external_id or "" for r in results) == ["Acme Trading", "Acme Trading - 1", "Acme Trading - 2"]


def test_rate_limits_outages_and_refused_keys(site: RunningServer) -> None:
    erpnext = connector(site)
    force(site, "rate_limit")
    with pytest.raises(RateLimited) as limited:
        erpnext.get("Customer", ["x"])
    assert limited.value.retry_after == 1.0
    force(site, "error")
    with pytest.raises(Unavailable, match="502 Bad Gateway"):
        erpnext.get("Customer", ["x"])
    declared = erp.system_config(site.base_url)
    wrong = Connector(System(name="erp", connector="erpnext", base_url=site.base_url,
                             auth={**declared["auth"], "api_secret": "not-the-secret"}, timeout=5.0))
    with pytest.raises(AuthExpired, match="AuthenticationError") as refused:
        wrong.get("Customer", ["x"])
    assert wrong.client.calls[401] == 2  # one retry, then the error stays (API keys do not expire)
    assert "not-the-secret" not in str(refused.value) and erp.API_KEY not in str(refused.value)


def test_a_rate_limit_before_anything_is_written_raises_and_after_it_parks_the_rest(site: RunningServer) -> None:
    erpnext = connector(site, concurrency=1)
    ops = [WriteOp(OpKind.CREATE, {"customer_name": f"Batch {i} Ltd"}, f"b{i}") for i in range(3)]
    force(site, "rate_limit")
    with pytest.raises(RateLimited):
        erpnext.push("Customer", ops)
    before = stats(site)["calls"]
    [first, second, third] = _push_with_second_call_limited(site, erpnext, ops)
    assert first.ok and first.created
    assert isinstance(second.error, RateLimited) and isinstance(third.error, RateLimited)
    assert stats(site)["calls"] - before == 2  # the third was not sent


def _push_with_second_call_limited(site: RunningServer, erpnext: Connector, ops: list[WriteOp]) -> list[Any]:
    original = erpnext.client.insert
    sent = {"n": 0}

    def insert(doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        sent["n"] += 1
        if sent["n"] == 2:
            force(site, "rate_limit")
        return original(doctype, doc)

    erpnext.client.insert = insert  # type: ignore[method-assign]
    return erpnext.push("Customer", ops)


# --- the connector: documents --------------------------------------------------------------


def test_sales_orders_are_pulled_and_got_as_full_documents_with_items(site: RunningServer) -> None:
    erpnext = connector(site, page_size=4)
    pages = list(erpnext.pull("Sales Order", None))
    orders = [r for page in pages for r in page.records]
    assert len(orders) == 6 and all(order["items"] and order["items"][0]["doctype"] == "Sales Order Item"
                                    for order in orders)
    requests.delete(f"{site.base_url}/_sandbox/stats", timeout=5)
    names = [orders[0]["name"], orders[3]["name"], "SAL-ORD-2024-09999"]
    assert [o["name"] for o in erpnext.get("Sales Order", names)] == names[:2]
    assert stats(site)["by_route"] == {"GET /api/resource/{doctype}/{name:path}": 3}
    requests.delete(f"{site.base_url}/_sandbox/stats", timeout=5)
    customers = [o["customer"] for o in orders]
    assert {c["name"] for c in erpnext.get("Customer", customers)} == set(customers)
    assert stats(site)["calls"] == 1  # one list call with name in [...]


def test_a_submitted_sales_order_refuses_edits_but_takes_allow_on_submit_fields(site: RunningServer) -> None:
    erpnext = connector(site)
    customer = listing(site, "Customer", limit_page_length=1)[0]["name"]
    draft = {"customer": customer, "transaction_date": "2024-06-03", "delivery_date": "2024-06-28",
             "items": [{"item_code": "SKU-1001", "qty": 3}, {"item_code": "SVC-2001", "qty": 8, "rate": 550}]}
    [created] = erpnext.push("Sales Order", [WriteOp(OpKind.UPSERT, draft, "hub-so-1", key_field="synchub_id")])
    name = created.external_id or ""
    [order] = erpnext.get("Sales Order", [name])
    assert order["grand_total"] == 3 * 1280.0 + 8 * 550.0 and order["synchub_id"] == "hub-so-1"
    [submitted] = erpnext.push("Sales Order", [WriteOp(OpKind.UPSERT, {"docstatus": 1}, "hub-so-1", key_field="synchub_id")])
    assert submitted.ok and not submitted.created and submitted.external_id == name
    [refused] = erpnext.push("Sales Order", [WriteOp(OpKind.UPDATE, {"transaction_date": "2024-06-01"}, "k", name)])
    assert isinstance(refused.error, Rejected) and refused.error.vendor_code == "UpdateAfterSubmitError"
    assert "Not allowed to change Date after submission from 2024-06-03 to 2024-06-01" in refused.error.reason
    [allowed] = erpnext.push("Sales Order", [WriteOp(OpKind.UPDATE, {"po_no": "PO-7781"}, "k", name)])
    assert allowed.ok
    response = api(site, "PUT", f"/api/resource/Sales%20Order/{name}", json={"items": []})
    assert response.status_code == 417 and response.json()["exc_type"] in ("UpdateAfterSubmitError", "MandatoryError")


def test_upserts_of_one_key_in_one_batch_create_once_then_update(site: RunningServer) -> None:
    erpnext = connector(site)
    ops = [WriteOp(OpKind.UPSERT, {"customer_name": "Zhang Logistics", "customer_details": f"v{i}"}, "hub-z",
                   key_field="synchub_id") for i in range(3)]
    results = erpnext.push("Customer", ops)
    assert [r.created for r in results] == [True, False, False]
    assert len({r.external_id for r in results}) == 1
    [record] = erpnext.get("Customer", [results[0].external_id or ""])
    assert record["customer_details"] == "v2"


def test_names_with_spaces_slashes_and_chinese_are_encoded(site: RunningServer) -> None:
    erpnext = connector(site)
    [made] = erpnext.push("Customer", [WriteOp(OpKind.CREATE, {"customer_name": "A/B 贸易 & Co"}, "k")])
    assert made.external_id == "A/B 贸易 & Co"
    assert erpnext.client.read("Customer", "A/B 贸易 & Co")["customer_name"] == "A/B 贸易 & Co"  # type: ignore[index]


def test_the_cursor_keeps_the_sites_own_text_and_resumes_by_keyset(site: RunningServer) -> None:
    erpnext = connector(site, page_size=5)
    pages = list(erpnext.pull("Customer", None))
    records = [r for page in pages for r in page.records]
    assert len(records) == 30 == len({r["name"] for r in records})
    whole_second = next(r for r in records if "." not in r["modified"])  # str(datetime) drops ".000000"
    cursor = encode_cursor(whole_second["modified"], whole_second["name"])
    rest = [r["name"] for page in erpnext.pull("Customer", cursor) for r in page.records]
    assert rest == [r["name"] for r in records[records.index(whole_second) + 1:]]
    # An ISO datetime is also a starting point, read in the site's time zone (Asia/Shanghai).
    local = records[10]["modified"]
    iso = _shanghai_to_utc_iso(local)
    since_iso = [r["name"] for page in erpnext.pull("Customer", iso) for r in page.records]
    floor = datetime.fromisoformat(local)
    assert since_iso == [r["name"] for r in records if datetime.fromisoformat(r["modified"]) >= floor]


def _shanghai_to_utc_iso(local: str) -> str:
    moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return moment.astimezone(UTC).isoformat()


# --- webhooks ------------------------------------------------------------------------------


def _signed(body: bytes, secret: str = erp.WEBHOOK_SECRET, **query: str) -> WebhookRequest:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return WebhookRequest("POST", "https://hub.example/webhooks/erp", {"x-frappe-webhook-signature": signature},
                          query, body)


def test_webhook_signature_cases(site: RunningServer) -> None:
    erpnext = connector(site)
    doc = {"doctype": "Customer", "name": "华信 Trading", "modified": "2024-05-01 16:00:00.482913", "docstatus": 0}
    body = json.dumps(doc).encode()
    reply = erpnext.webhook(_signed(body))
    assert reply.status == 200
    [event] = reply.events
    assert (event.object, event.external_id, event.event_id) == ("Customer", "华信 Trading",
                                                                 "Customer:华信 Trading:2024-05-01 16:00:00.482913")
    assert erpnext.webhook(_signed(body, secret="another-secret")).status == 401
    unsigned = WebhookRequest("POST", "/", {}, {}, body)
    assert erpnext.webhook(unsigned).status == 401 and erpnext.webhook(unsigned).events == []
    tampered = _signed(body)
    tampered = WebhookRequest("POST", "/", tampered.headers, {}, body.replace(b"482913", b"482914"))
    assert erpnext.webhook(tampered).status == 401
    not_json = erpnext.webhook(_signed(b"doctype=Customer&name=x"))
    assert not_json.status == 400 and not_json.events == []
    nameless = erpnext.webhook(_signed(json.dumps({"doctype": "Customer"}).encode()))
    assert nameless.status == 400 and nameless.events == []
    by_query = erpnext.webhook(_signed(json.dumps({"name": "SAL-ORD-2024-00003", "docstatus": 2}).encode(),
                                       doctype="Sales Order"))
    assert [(e.object, e.kind) for e in by_query.events] == [("Sales Order", "cancelled")]
    no_secret = Connector(System(name="erp", connector="erpnext", base_url=site.base_url,
                                 auth=erp.system_config(site.base_url)["auth"], timeout=5.0))
    assert no_secret.webhook(_signed(body)).status == 401


def test_the_sandbox_signs_like_frappe_and_retries_a_refused_delivery() -> None:
    arrived: list[WebhookRequest] = []
    done = threading.Event()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        arrived.append(WebhookRequest("POST", str(request.url), dict(request.headers), {}, await request.body()))
        if len(arrived) == 1:
            return Response(status_code=503)
        done.set()
        return Response(status_code=200)

    receiver = serve(app)
    server = serve(erp.create_app(SandboxOptions(records=2, webhook_url=f"{receiver.base_url}/hook",
                                                 webhook_retry_scale=0.01)))
    try:
        erpnext = connector(server)
        [made] = erpnext.push("Customer", [WriteOp(OpKind.CREATE, {"customer_name": "Hook GmbH"}, "h")])
        assert done.wait(10)
        first, second = arrived
        assert first.body == second.body and json.loads(first.body)["name"] == made.external_id
        assert first.headers["x-frappe-webhook-signature"] == hooks.sign(erp.WEBHOOK_SECRET, first.body)
        assert erpnext.webhook(second).events[0].external_id == "Hook GmbH"
    finally:
        server.stop()
        receiver.stop()
