"""HubSpot specifics over real HTTP on loopback: HubSpot's own Python client against the
sandbox, webhook signatures (v3, v2 with HubSpot's published examples), the search cap,
deals with their line items, and the error classification of HubSpot's bodies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException
from hubspot.utils.signature import Signature

from connectors.base import OpKind, RateLimited, Rejected, Unavailable, WebhookRequest, WriteOp
from connectors.hubspot import HubSpotConnector
from connectors.hubspot import webhook as hooks
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import SEARCH_CAP, encode_cursor
from connectors.hubspot.sandbox import CLIENT_SECRET, PRIVATE_APP_TOKEN, create_app, system_config
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub import canonical
from hub.config.model import System
from hub.mapping import load_mapping

HOOK_URL = "https://hub.example.com/webhooks/hubspot"


def start(records: int) -> RunningServer:
    return serve(create_app(SandboxOptions(records=records, seed=5, webhook_retry_scale=0.01)))


@pytest.fixture
def sandbox() -> Iterator[RunningServer]:
    server = start(25)
    yield server
    server.stop()


def connector_for(server: RunningServer, **options: Any) -> HubSpotConnector:
    config = system_config(server.base_url)
    return HubSpotConnector(System(name="hs", connector="hubspot", base_url=config["base_url"], auth=config["auth"],
                                   webhook=config["webhook"], options={**config["options"], **options}, timeout=10))


def official_client(server: RunningServer) -> HubSpot:
    """HubSpot's own client with only its host changed (`host` lands on each API's Configuration)."""
    return HubSpot(access_token=PRIVATE_APP_TOKEN, host=server.base_url)


def sandbox_records(server: RunningServer, obj: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{server.base_url}/_sandbox/records/{obj}", timeout=10)
    answer.raise_for_status()
    return answer.json()["records"]  # type: ignore[no-any-return]


# --- HubSpot's own client --------------------------------------------------------------------


def test_the_official_client_pages_through_every_company(sandbox: RunningServer) -> None:
    client = official_client(sandbox)
    ids: list[str] = []
    after = None
    while True:
        page = client.crm.companies.basic_api.get_page(limit=10, after=after, properties=["name", "tax_id"])
        ids.extend(c.id for c in page.results)
        assert all(isinstance(c.properties["name"], str) and c.properties["tax_id"] for c in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert ids == [r["id"] for r in sandbox_records(sandbox, "companies")]
    assert len(ids) == 25


def test_the_official_client_searches_on_the_modification_date(sandbox: RunningServer) -> None:
    client = official_client(sandbox)
    stamps = sorted(int(_ms(r["properties"]["hs_lastmodifieddate"])) for r in sandbox_records(sandbox, "companies"))
    since = stamps[10]
    request = PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="hs_lastmodifieddate", operator="GTE",
                                                   value=str(since))])],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        properties=["name", "hs_lastmodifieddate"], limit=5)
    answer = client.crm.companies.search_api.do_search(public_object_search_request=request)
    assert answer.total == 15
    got = [_ms(c.properties["hs_lastmodifieddate"]) for c in answer.results]
    assert got == stamps[10:15]
    assert answer.paging.next.after == "5"
    some = sandbox_records(sandbox, "companies")[:3]
    by_in = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[
        Filter(property_name="hs_object_id", operator="IN", values=[r["id"] for r in some]),
        Filter(property_name="tax_id", operator="HAS_PROPERTY")])], limit=10)
    found = client.crm.companies.search_api.do_search(public_object_search_request=by_in)
    assert sorted(c.id for c in found.results) == sorted(r["id"] for r in some)


def test_the_official_client_batch_creates_and_reads_and_meets_the_unique_property(sandbox: RunningServer) -> None:
    client = official_client(sandbox)
    inputs = [SimplePublicObjectInputForCreate(properties={"name": f"杭州博远科技有限公司（{n}）", "synchub_id": f"hub-{n}"})
              for n in range(3)]
    created = client.crm.companies.batch_api.create(
        batch_input_simple_public_object_batch_input_for_create=BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=inputs))
    assert created.status == "COMPLETE" and len(created.results) == 3
    ids = [c.id for c in created.results]
    read = client.crm.companies.batch_api.read(batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["name", "synchub_id"]))
    assert sorted(c.properties["synchub_id"] for c in read.results) == ["hub-0", "hub-1", "hub-2"]
    with pytest.raises(ApiException) as refused:
        client.crm.companies.basic_api.create(
            simple_public_object_input_for_create=SimplePublicObjectInputForCreate(properties={"name": "dup",
                                                                                               "synchub_id": "hub-1"}))
    assert refused.value.status == 409
    assert json.loads(refused.value.body)["category"] == "CONFLICT"


def test_a_search_limit_over_100_is_hubspots_validation_error(sandbox: RunningServer) -> None:
    client = official_client(sandbox)
    with pytest.raises(ApiException) as refused:
        client.crm.companies.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(limit=101))
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["category"] == "VALIDATION_ERROR"


# --- the connector against the sandbox -------------------------------------------------------


def test_search_restarts_before_the_10000_result_cap_and_loses_nothing() -> None:
    server = start(SEARCH_CAP + 150)
    connector = connector_for(server)
    try:
        ids: list[str] = []
        for page in connector.pull("companies", encode_cursor(0)):
            ids.extend(r["id"] for r in page.records)
        stats = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10).json()
    finally:
        connector.close()
        server.stop()
    assert len(ids) == len(set(ids)) == SEARCH_CAP + 150
    assert "400" not in stats["by_status"], stats  # never asked past the cap
    searches = stats["by_route"]["POST /crm/v3/objects/{object_type}/search"]
    assert searches == SEARCH_CAP // 100 + 2  # 100 pages up to the cap, then the restarted search's 2


def test_a_write_refused_by_hubspot_carries_its_message_and_category(sandbox: RunningServer) -> None:
    connector = connector_for(sandbox)
    try:
        first, duplicate, unknown = connector.push("companies", [
            WriteOp(OpKind.CREATE, {"properties": {"name": "Acme GmbH"}}, "hub-7", key_field="properties.synchub_id"),
            WriteOp(OpKind.CREATE, {"properties": {"name": "Acme GmbH (2)"}}, "hub-7", key_field="properties.synchub_id"),
            WriteOp(OpKind.CREATE, {"properties": {"name": "X", "colour": "red"}}, "hub-8",
                    key_field="properties.synchub_id"),
        ])
    finally:
        connector.close()
    assert first.ok and first.created
    assert isinstance(duplicate.error, Rejected) and duplicate.error.vendor_code == "CONFLICT"
    assert "synchub_id" in duplicate.error.reason
    assert isinstance(unknown.error, Rejected) and unknown.error.vendor_code == "VALIDATION_ERROR"
    assert 'Property \\"colour\\" does not exist' in unknown.error.reason


def test_a_rate_limit_waits_for_the_policy_window(sandbox: RunningServer) -> None:
    connector = connector_for(sandbox)
    ids = [r["id"] for r in sandbox_records(sandbox, "companies")][:2]
    requests.put(f"{sandbox.base_url}/_sandbox/faults", json={"retry_after": 0.25, "next": ["rate_limit"]}, timeout=10)
    try:
        with pytest.raises(RateLimited) as limited:
            connector.get("companies", ids)
    finally:
        connector.close()
    assert limited.value.retry_after == 0.25  # X-HubSpot-RateLimit-Interval-Milliseconds
    assert "secondly limit" in str(limited.value)


def test_a_daily_limit_waits_long_and_retry_after_wins() -> None:
    client = HubSpotClient("https://api.hubapi.com", {"access_token": "t"})
    daily = _response(429, {"status": "error", "message": "You have reached your daily limit.",
                            "errorType": "RATE_LIMIT", "policyName": "DAILY"})
    hinted = _response(429, {"status": "error", "policyName": "SECONDLY"}, {"Retry-After": "7"})
    assert client.classify(daily).retry_after == 3600.0  # type: ignore[union-attr]
    assert client.classify(hinted).retry_after == 7.0  # type: ignore[union-attr]


def test_oauth_tokens_are_fetched_once_and_refreshed_after_expiry(sandbox: RunningServer) -> None:
    connector = connector_for(sandbox)
    ids = [r["id"] for r in sandbox_records(sandbox, "companies")][:3]
    try:
        assert len(connector.get("companies", ids)) == 3
        assert len(connector.get("companies", ids)) == 3
        assert connector.client.tokens is not None and connector.client.tokens.fetches == 1
        requests.post(f"{sandbox.base_url}/_sandbox/expire-tokens", timeout=10).raise_for_status()
        assert len(connector.get("companies", ids)) == 3
        assert connector.client.tokens.fetches == 2
    finally:
        connector.close()


def test_deals_arrive_with_their_line_items_and_company_and_map_to_orders() -> None:
    server = start(30)  # one seeded deal per ten companies
    connector = connector_for(server)
    mapping = load_mapping("mappings/hubspot/deals.order.yaml")
    try:
        listed = [d for page in connector.pull("deals", None) for d in page.records]
        searched = [d for page in connector.pull("deals", encode_cursor(0)) for d in page.records]
        fetched = connector.get("deals", [d["id"] for d in listed])
    finally:
        connector.close()
        server.stop()
    assert len(listed) == 3
    for deals in (listed, searched, fetched):
        assert [len(d["line_items"]) for d in deals] == [len(d["line_items"]) for d in listed]
        for deal in deals:
            assert deal["line_items"] and deal["associations"]["companies"]["results"]
            result = mapping.to_canonical(deal)
            assert result.errors == [] and canonical.validate("order", result.value) == []
            lines = result.value["lines"]
            assert sum(float(line["amount"]) for line in lines) == float(result.value["totals"]["total"])


# --- webhooks --------------------------------------------------------------------------------


def _events(*kinds: str) -> bytes:
    return json.dumps([{"eventId": 100 + i, "subscriptionId": 7, "portalId": 62515, "appId": 54321,
                        "occurredAt": 1564113600000, "subscriptionType": kind, "attemptNumber": 0,
                        "objectId": 123 + i, "changeSource": "CRM", "propertyName": "name",
                        "propertyValue": "Acme"} for i, kind in enumerate(kinds)]).encode()


def _signed_v3(body: bytes, url: str = HOOK_URL, timestamp: int | None = None) -> WebhookRequest:
    stamp = str(int(time.time() * 1000) if timestamp is None else timestamp)
    headers = {hooks.SIGNATURE_V3: hooks.sign_v3(CLIENT_SECRET, "POST", url, body, stamp), hooks.TIMESTAMP: stamp,
               "Content-Type": "application/json"}
    return WebhookRequest("POST", url, headers, {}, body)


@pytest.fixture
def hook_connector(sandbox: RunningServer) -> Iterator[HubSpotConnector]:
    connector = connector_for(sandbox)
    yield connector
    connector.close()


def test_v3_signature_matches_hubspots_own_library() -> None:
    body, stamp = _events("company.creation"), "1700000000000"
    ours = hooks.sign_v3(CLIENT_SECRET, "POST", HOOK_URL, body, stamp)
    theirs = Signature.get_signature(CLIENT_SECRET, body.decode(), "v3", HOOK_URL, "POST", stamp)
    assert ours == theirs


def test_a_v3_webhook_is_accepted_with_its_events(hook_connector: HubSpotConnector) -> None:
    reply = hook_connector.webhook(_signed_v3(_events("company.creation", "company.propertyChange", "deal.deletion")))
    assert reply.status == 200 and reply.body == b""
    assert [(e.event_id, e.object, e.external_id, e.kind) for e in reply.events] == [
        ("100", "companies", "123", "creation"), ("101", "companies", "124", "propertyChange"),
        ("102", "deals", "125", "deletion")]
    assert reply.events[1].payload["propertyName"] == "name"


def test_v3_signs_the_uri_with_hubspots_decoded_characters(hook_connector: HubSpotConnector) -> None:
    body = _events("company.propertyChange")
    signed = _signed_v3(body, url="https://hub.example.com/webhooks/hubspot?portal=62515:eu&tag=(a)")
    received = WebhookRequest("POST", "https://hub.example.com/webhooks/hubspot?portal=62515%3Aeu&tag=%28a%29",
                              signed.headers, {}, body)
    assert hook_connector.webhook(received).status == 200


def test_a_stale_v3_webhook_is_refused(hook_connector: HubSpotConnector) -> None:
    reply = hook_connector.webhook(_signed_v3(_events("company.creation"),
                                              timestamp=int(time.time() * 1000) - 5 * 60 * 1000 - 1000))
    assert reply.status == 401 and reply.events == []


def test_a_tampered_or_unsigned_webhook_is_refused(hook_connector: HubSpotConnector) -> None:
    signed = _signed_v3(_events("company.creation"))
    forged = WebhookRequest("POST", signed.url, signed.headers, {}, signed.body.replace(b"123", b"999"))
    v1_only = WebhookRequest("POST", HOOK_URL, {hooks.SIGNATURE: hooks.sign_v1(CLIENT_SECRET, signed.body),
                                                hooks.SIGNATURE_VERSION: "v1"}, {}, signed.body)
    for request in (forged, v1_only):
        reply = hook_connector.webhook(request)
        assert reply.status == 401 and reply.events == []


def test_a_signed_but_malformed_body_is_a_400_with_no_events(hook_connector: HubSpotConnector) -> None:
    for body in (b"[{\"eventId\": 1,", b"{\"eventId\": 1}", b"[{\"subscriptionType\": \"company.creation\"}]"):
        reply = hook_connector.webhook(_signed_v3(body))
        assert reply.status == 400 and reply.events == []


def test_v2_signature_reproduces_hubspots_published_examples() -> None:
    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    assert hooks.sign_v2(secret, "GET", "https://www.example.com/webhook_uri", b"") == \
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    assert hooks.sign_v2(secret, "POST", "https://www.example.com/webhook_uri", b'{"example_field":"example_value"}') == \
        "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"


def test_a_v2_webhook_is_accepted_and_a_wrong_v2_refused(hook_connector: HubSpotConnector) -> None:
    body = _events("contact.creation")
    good = {hooks.SIGNATURE: hooks.sign_v2(CLIENT_SECRET, "POST", HOOK_URL, body), hooks.SIGNATURE_VERSION: "v2"}
    reply = hook_connector.webhook(WebhookRequest("POST", HOOK_URL, good, {}, body))
    assert reply.status == 200 and [e.object for e in reply.events] == ["contacts"]
    elsewhere = hook_connector.webhook(WebhookRequest("POST", HOOK_URL + "/other", good, {}, body))
    assert elsewhere.status == 401 and elsewhere.events == []


def test_the_sandbox_retries_a_refused_webhook_with_a_new_attempt_number(sandbox: RunningServer) -> None:
    from connectors.sandbox.webhooks import OutboundCall

    portal_sandbox = sandbox.app.state.sandbox
    seen: list[OutboundCall] = []
    build = portal_sandbox._builder([{"eventId": 1, "subscriptionType": "company.creation", "objectId": 5}])
    seen.extend([build(HOOK_URL), build(HOOK_URL)])
    attempts = [json.loads(call.body)[0]["attemptNumber"] for call in seen]
    assert attempts == [0, 1]
    for call in seen:
        stamp = call.headers[hooks.TIMESTAMP]
        assert call.headers[hooks.SIGNATURE_V3] == hooks.sign_v3(CLIENT_SECRET, "POST", HOOK_URL, call.body, stamp)


# --- helpers ---------------------------------------------------------------------------------


def _ms(text: str) -> int:
    from connectors.hubspot.connector import epoch_ms

    value = epoch_ms(text)
    assert value is not None
    return value


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    response.url = "https://api.hubapi.com/crm/v3/objects/companies/search"
    response.request = requests.Request("POST", response.url).prepare()
    return response


def test_a_batch_refused_as_a_whole_is_split_to_find_the_bad_input() -> None:
    """Real portals sometimes answer 400 for a whole batch when one input is bad."""
    app = FastAPI()

    @app.post("/crm/v3/objects/companies/batch/create")
    async def create(request: Request) -> JSONResponse:
        inputs = (await request.json())["inputs"]
        if any(i["properties"].get("credit_limit") == "a lot" for i in inputs):
            return JSONResponse({"status": "error", "message": "Property values were not valid", "category":
                                 "VALIDATION_ERROR", "correlationId": "c"}, status_code=400)
        results = [{"id": str(900 + int(i["objectWriteTraceId"]) + len(i["properties"]["name"])),
                    "properties": i["properties"], "objectWriteTraceId": i["objectWriteTraceId"],
                    "createdAt": "2024-05-01T00:00:00.000Z", "updatedAt": "2024-05-01T00:00:00.000Z"} for i in inputs]
        return JSONResponse({"status": "COMPLETE", "results": results, "startedAt": "x", "completedAt": "y"},
                            status_code=201)

    server = serve(app)
    connector = HubSpotConnector(System(name="hs", connector="hubspot", base_url=server.base_url,
                                        auth={"access_token": "pat"}, webhook={"client_secret": "s"}, timeout=5))
    try:
        ops = [WriteOp(OpKind.CREATE, {"properties": {"name": name, **extra}}, f"hub-{n}")
               for n, (name, extra) in enumerate([("Acme", {}), ("Bad", {"credit_limit": "a lot"}), ("Globex", {})])]
        good, bad, other = connector.push("companies", ops)
    finally:
        connector.close()
        server.stop()
    assert good.ok and other.ok and good.external_id != other.external_id
    assert isinstance(bad.error, Rejected) and "Property values were not valid" in bad.error.reason


def test_a_deal_built_through_the_api_carries_the_line_items_associated_to_it(sandbox: RunningServer) -> None:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {PRIVATE_APP_TOKEN}"
    base = sandbox.base_url
    company = sandbox_records(sandbox, "companies")[0]["id"]
    deal = api.post(f"{base}/crm/v3/objects/deals", json={"properties": {
        "dealname": "SO-2024-0042 Hamburg", "amount": "2561", "dealstage": "closedwon",
        "closedate": "2024-05-01T08:00:00Z", "deal_currency_code": "EUR"}}, timeout=10).json()["id"]
    items = api.post(f"{base}/crm/v3/objects/line_items/batch/create", json={"inputs": [
        {"properties": {"name": "Servo Motor SM-750", "quantity": "1", "price": "2450.5", "amount": "2450.5",
                        "hs_position_on_quote": "0"}},
        {"properties": {"name": "Versand", "quantity": "1", "price": "110.5", "amount": "110.5",
                        "hs_position_on_quote": "1"}}]}, timeout=10).json()["results"]
    for item in reversed(items):  # associated in reverse: the quote position decides the order
        linked = api.put(f"{base}/crm/v4/objects/deal/{deal}/associations/default/line_item/{item['id']}", timeout=10)
        assert linked.json()["results"][0]["associationSpec"]["associationTypeId"] == 19
    api.put(f"{base}/crm/v4/objects/deals/{deal}/associations/default/companies/{company}", timeout=10).raise_for_status()
    read = api.get(f"{base}/crm/v3/objects/deals/{deal}", params={"associations": "line_items"}, timeout=10).json()
    assert sorted(a["id"] for a in read["associations"]["line_items"]["results"]) == sorted(i["id"] for i in items)
    connector = connector_for(sandbox)
    try:
        [got] = connector.get("deals", [deal])
    finally:
        connector.close()
    order = load_mapping("mappings/hubspot/deals.order.yaml").to_canonical(got)
    assert order.errors == []
    assert order.value["customer_id"] == company and order.value["status"] == "approved"
    assert [(line["name"], line["unit_price"]) for line in order.value["lines"]] == [
        ("Servo Motor SM-750", "2450.5"), ("Versand", "110.5")]


# --- security review: future timestamps, partial pushes, non-JSON answers --------------------


def _offline(**options: Any) -> HubSpotConnector:
    declared = system_config("http://127.0.0.1:9")
    return HubSpotConnector(System(name="crm", connector="hubspot", base_url=declared["base_url"], auth=declared["auth"],
                                   webhook=declared["webhook"], options={**declared["options"], **options}))


def test_a_v3_webhook_from_the_future_is_refused() -> None:
    """A timestamp far ahead would keep a captured request replayable until that time."""
    connector = _offline()
    try:
        for ahead_ms in (5 * 60 * 1000 + 1000, 365 * 86400 * 1000):
            reply = connector.webhook(_signed_v3(_events("company.creation"), timestamp=int(time.time() * 1000) + ahead_ms))
            assert reply.status == 401 and reply.events == []
        assert connector.webhook(_signed_v3(_events("company.creation"),
                                            timestamp=int(time.time() * 1000) + 60_000)).status == 200  # clock skew
    finally:
        connector.close()


def test_a_push_failing_after_its_creates_were_written_hands_back_only_the_updates() -> None:
    connector = _offline()
    calls: list[str] = []

    def call(method: str, path: str, params: Any = None, json: Any = None) -> tuple[int, dict[str, Any]]:
        calls.append(path.rsplit("/", 1)[-1])
        if path.endswith("/update"):
            raise RateLimited("TEN_SECONDLY_ROLLING", 1.0)
        return 201, {"results": [{"id": str(100 + i), "objectWriteTraceId": e["objectWriteTraceId"], "properties": {}}
                                 for i, e in enumerate(json["inputs"])]}

    connector.client.call = call  # type: ignore[method-assign]
    ops = [WriteOp(OpKind.CREATE, {"name": "new"}, "k1"), WriteOp(OpKind.UPDATE, {"name": "changed"}, "k2", external_id="5")]
    try:
        created, updated = connector.push("companies", ops)
    finally:
        connector.close()
    assert calls == ["create", "update"]
    assert (created.ok, created.external_id, created.created) == (True, "100", True)
    assert not updated.ok and isinstance(updated.error, RateLimited) and updated.error.retryable


def test_an_outage_while_writing_a_refused_batch_one_by_one_keeps_what_was_written() -> None:
    connector = _offline()
    answers = iter(["refuse", "ok", "down"])

    def call(method: str, path: str, params: Any = None, json: Any = None) -> tuple[int, dict[str, Any]]:
        answer = next(answers)
        if answer == "refuse":
            raise Rejected("Property values were not valid", "VALIDATION_ERROR")
        if answer == "down":
            raise Unavailable("hubspot: HTTP 502")
        return 201, {"results": [{"id": "100", "objectWriteTraceId": "0", "properties": {}}]}

    connector.client.call = call  # type: ignore[method-assign]
    ops = [WriteOp(OpKind.CREATE, {"name": f"c{i}"}, f"k{i}") for i in range(3)]
    try:
        results = connector.push("companies", ops)
    finally:
        connector.close()
    assert [r.ok for r in results] == [True, False, False]
    assert all(isinstance(r.error, Unavailable) for r in results[1:])


def test_a_list_answer_that_is_not_json_is_unavailable() -> None:
    connector = _offline(properties={"companies": ["name"]})

    def send(method: str, path: str, **_: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = 200, b"<html>maintenance</html>"
        response.url = f"http://127.0.0.1:9{path}"
        response.request = requests.Request(method, response.url).prepare()
        return response

    connector.client.send = send  # type: ignore[method-assign]
    try:
        with pytest.raises(Unavailable, match="not JSON"):
            next(connector.pull("companies", None))
    finally:
        connector.close()
