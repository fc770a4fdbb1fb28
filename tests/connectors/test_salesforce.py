"""Salesforce specifics over real HTTPS on loopback: simple-salesforce against the sandbox,
the OAuth flow, the SOQL subset, query paging, sObject Collections, and Outbound Messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import Response
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest, SalesforceRefusedRequest

from connectors.base import OpKind, RateLimited, Rejected, WebhookRequest, WriteOp
from connectors.salesforce import Connector, sandbox, webhook
from connectors.salesforce.connector import decode_cursor
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config.model import System
from hub.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    records = getattr(request, "param", 20)
    server = serve(sandbox.create_app(SandboxOptions(records=records, seed=3, webhook_retry_scale=0.001)), tls=True)
    yield server
    server.stop()


@pytest.fixture
def sf(org: RunningServer) -> Iterator[Salesforce]:
    found = client(org)
    yield found
    found.session.close()  # an open keep-alive connection would hold up the server's shutdown


@pytest.fixture(scope="module")
def shared_sf() -> Iterator[Salesforce]:
    """One org for tests that only read."""
    server = serve(sandbox.create_app(SandboxOptions(records=5, seed=3)), tls=True)
    found = client(server)
    yield found
    found.session.close()
    server.stop()


def seeded(count: int) -> Any:
    return pytest.mark.parametrize("org", [count], indirect=True)


def token(server: RunningServer, **form: str) -> requests.Response:
    grant = {"grant_type": "client_credentials", "client_id": sandbox.CLIENT_ID, "client_secret": sandbox.CLIENT_SECRET}
    return requests.post(f"{server.base_url}/services/oauth2/token", data={**grant, **form}, verify=server.ca_file,
                         timeout=10)


def client(server: RunningServer) -> Salesforce:
    session = requests.Session()
    session.verify = server.ca_file
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace the sandbox's CA
    session.headers["Connection"] = "close"  # no idle keep-alive holding up the server's shutdown
    answer = token(server).json()
    return Salesforce(instance_url=answer["instance_url"], session_id=answer["access_token"], session=session,
                      version="60.0")


def connector(server: RunningServer, **options: Any) -> Connector:
    config = sandbox.system_config(server.base_url)
    return Connector(System(name="sf", connector="salesforce", base_url=config["base_url"], auth=config["auth"],
                            webhook=config["webhook"], options={**config["options"], "ca_file": server.ca_file, **options},
                            timeout=10))


def control(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{server.base_url}/_sandbox/{path}", json=body, verify=server.ca_file, timeout=10)
    response.raise_for_status()
    return response.json()


# --- OAuth -----------------------------------------------------------------------------------


def test_client_credentials_grant_answers_like_salesforce_with_a_valid_signature(org: RunningServer) -> None:
    answer = token(org)
    assert answer.status_code == 200
    body = answer.json()
    assert body["instance_url"] == org.base_url and body["token_type"] == "Bearer"
    expected = hmac.new(sandbox.CLIENT_SECRET.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert body["id"].endswith(f"/id/{sandbox.ORG_ID}/{sandbox.USER_ID}")


def test_password_grant_takes_the_password_with_the_security_token(org: RunningServer) -> None:
    good = token(org, grant_type="password", username=sandbox.USERNAME, password=sandbox.PASSWORD + sandbox.SECURITY_TOKEN)
    assert good.status_code == 200 and good.json()["access_token"]
    bad = token(org, grant_type="password", username=sandbox.USERNAME, password="wrong")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")
    assert token(org, client_secret="nope").json() == {"error": "invalid_client",
                                                       "error_description": "invalid client credentials"}


def test_the_password_grant_works_through_the_connector(org: RunningServer) -> None:
    auth = {"grant_type": "password", "client_id": sandbox.CLIENT_ID, "client_secret": sandbox.CLIENT_SECRET,
            "username": sandbox.USERNAME, "password": sandbox.PASSWORD + sandbox.SECURITY_TOKEN,
            "login_url": org.base_url}
    system = System(name="sf", connector="salesforce", base_url="https://login.invalid", auth=auth,
                    options={"ca_file": org.ca_file}, timeout=10)
    found = Connector(system)
    try:
        ids = [r["Id"] for r in control(org, "GET", "records/Account")["records"][:2]]
        assert sorted(r["Id"] for r in found.get("Account", ids)) == sorted(ids)
        assert found.client.instance_url == org.base_url
    finally:
        found.close()


def test_an_expired_session_is_refused_with_invalid_session_id(org: RunningServer, sf: Salesforce) -> None:
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    control(org, "POST", "expire-tokens")
    with pytest.raises(SalesforceExpiredSession) as raised:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert raised.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_wrong_connector_credentials_are_an_auth_error_without_the_secret(org: RunningServer) -> None:
    config = sandbox.system_config(org.base_url)
    system = System(name="sf", connector="salesforce", base_url=org.base_url,
                    auth={**config["auth"], "client_secret": "s3cr3t-value"}, options={"ca_file": org.ca_file})
    found = Connector(system)
    found.client.session.headers["Connection"] = "close"
    try:
        with pytest.raises(Exception) as raised:
            found.get("Account", ["001000000000001AAA"])
        assert "invalid_client" in str(raised.value) and "s3cr3t-value" not in str(raised.value)
    finally:
        found.close()


# --- simple-salesforce -------------------------------------------------------------------------


@seeded(450)
def test_query_all_follows_next_records_url_and_reports_api_usage(sf: Salesforce) -> None:
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g") and first["nextRecordsUrl"].endswith("-200")
    every = sf.query_all("SELECT Id, Name FROM Account ORDER BY Id", headers={"Sforce-Query-Options": "batchSize=200"})
    ids = [r["Id"] for r in every["records"]]
    assert len(ids) == len(set(ids)) == 450 and ids == sorted(ids)
    assert every["records"][0]["attributes"]["type"] == "Account"
    assert sf.api_usage["api-usage"].used >= 4


def test_sobject_create_update_get_and_upsert_by_external_id(org: RunningServer, sf: Salesforce) -> None:
    created = sf.Account.create({"Name": "Hooli Software Inc. (900)", "BillingCity": "Austin"})
    assert created["success"] and created["id"].startswith("001") and len(created["id"]) == 18
    assert sf.Account.update(created["id"], {"Phone": "+1 512 555 0100"}) == 204
    record = sf.Account.get(created["id"])
    assert (record["Name"], record["Phone"], record["BillingCity"]) == ("Hooli Software Inc. (900)", "+1 512 555 0100", "Austin")
    assert sf.Account.get(created["id"][:15])["Id"] == created["id"]  # 15-character ids work too

    assert sf.Account.upsert("Synchub_Id__c/hub-77", {"Name": "上海宏图科技有限公司"}) == 201
    assert sf.Account.upsert("Synchub_Id__c/hub-77", {"Name": "上海宏图科技有限公司（更名）"}) == 200
    by_key = sf.Account.get_by_custom_id("Synchub_Id__c", "hub-77")
    assert by_key["Name"] == "上海宏图科技有限公司（更名）"
    assert [r["Synchub_Id__c"] for r in control(org, "GET", "records/Account")["records"]].count("hub-77") == 1


def test_single_record_errors_are_salesforce_error_arrays(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Account.create({"BillingCity": "Lyon"})
    assert missing.value.content == [{"message": "Required fields are missing: [Name]",
                                      "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Account.create({"Name": "Acme", "Colour__c": "blue"})
    assert unknown.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        sf.Account.create({"Name": "Acme", "SystemModstamp": "2024-01-01T00:00:00.000+0000"})
    assert read_only.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_a_collection_with_bad_records_saves_the_good_ones(sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": "Stark Machines GmbH (901)"},
               {"attributes": {"type": "Account"}, "BillingCity": "München"},
               {"attributes": {"type": "Account"}, "Name": "x" * 256},
               {"attributes": {"type": "Account"}, "Name": "Umbrella Pharma Ltd", "Status__c": "Dormant"},
               {"attributes": {"type": "Account"}, "Name": "Soylent Foods", "Email__c": "orders.soylent.com"}]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in answer] == [True, False, False, False, False]
    assert [r["errors"][0]["statusCode"] for r in answer[1:]] == [
        "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_EMAIL_ADDRESS"]
    assert answer[2]["errors"][0]["message"].endswith("(max length=255)")
    too_many = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(201)]}
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.restful("composite/sobjects", method="POST", json=too_many)
    assert raised.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_a_rate_limit_is_a_403_request_limit_exceeded(org: RunningServer, sf: Salesforce) -> None:
    control(org, "PUT", "faults", {"next": ["rate_limit"]})
    with pytest.raises(SalesforceRefusedRequest) as raised:
        sf.query("SELECT Id FROM Account")
    assert raised.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    found = connector(org)
    found.client.session.headers["Connection"] = "close"
    try:
        found.get("Account", ["0015j0000000001AAA"])  # token and describe
        control(org, "PUT", "faults", {"next": ["rate_limit"]})
        with pytest.raises(RateLimited):
            found.get("Account", ["0015j0000000001AAA"])
    finally:
        found.close()


# --- SOQL subset -------------------------------------------------------------------------------


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY"),
    ("SELECT COUNT() FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE NOT Name = 'x'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
    ("SELECT Id, Owner.Name FROM Account", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account LIMIT 5 OFFSET 2", "MALFORMED_QUERY"),
    ("SELECT Id FROM Account; DELETE", "MALFORMED_QUERY"),
    ("SELECT Nmae FROM Account", "INVALID_FIELD"),
    ("SELECT Id FROM Acount", "INVALID_TYPE"),
    ("SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "INVALID_TYPE"),
])
def test_queries_outside_the_subset_are_refused_with_salesforce_codes(shared_sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as raised:
        shared_sf.query(soql)
    assert raised.value.status == 400 and raised.value.content[0]["errorCode"] == code


def _ids(org_state: sandbox.Org, soql: str) -> list[str]:
    return [r["Id"] for r in org_state.run(sandbox.parse_soql(soql), 2000, "v60.0")["records"]]


def test_where_clauses_combine_like_soql() -> None:
    state = sandbox.Org(SandboxOptions(records=30, seed=5))
    accounts = list(state.tables["Account"].values())
    munich = sorted(r["Id"] for r in accounts if r["BillingCity"] == "München")
    assert munich, "seed 5 has companies in München"
    assert sorted(_ids(state, "select id from account where billingcity = 'MÜNCHEN'")) == munich  # text ignores case
    some = [r["Id"] for r in accounts[:3]]
    quoted = ", ".join(f"'{i}'" for i in some)
    assert sorted(_ids(state, f"SELECT Id FROM Account WHERE Id IN ({quoted})")) == sorted(some)
    like = sorted(r["Id"] for r in accounts if "gmbh" in r["Name"].lower())
    assert sorted(_ids(state, "SELECT Id FROM Account WHERE Name LIKE '%gmbh%'")) == like
    prospects = {r["Id"] for r in accounts if r["Status__c"] == "Prospect"}
    either = sorted(prospects | set(munich))
    assert sorted(_ids(state, "SELECT Id FROM Account WHERE Status__c = 'Prospect' OR (BillingCity = 'München' "
                              "AND Credit_Limit__c >= 0)")) == either
    # AND binds tighter than OR
    assert sorted(_ids(state, "SELECT Id FROM Account WHERE Status__c = 'Prospect' OR BillingCity = 'München' "
                              "AND Credit_Limit__c < 0")) == sorted(prospects)
    newest = sorted(accounts, key=lambda r: (r["SystemModstamp"], r["Id"]), reverse=True)[:4]
    assert _ids(state, "SELECT Id FROM Account ORDER BY SystemModstamp DESC, Id DESC LIMIT 4") == [r["Id"] for r in newest]
    middle = sorted(accounts, key=lambda r: r["SystemModstamp"])[10]["SystemModstamp"]
    literal = middle[:19] + "Z"
    later = sorted(r["Id"] for r in accounts if r["SystemModstamp"] > middle)
    assert sorted(_ids(state, f"SELECT Id FROM Account WHERE SystemModstamp > {literal}")) == later
    assert sorted(_ids(state, f"SELECT Id FROM Account WHERE SystemModstamp > {middle[:19]}+00:00")) == later
    assert _ids(state, "SELECT Id FROM Account WHERE Description != null") == []
    assert _ids(state, "SELECT Id FROM Account WHERE Name = 'O\\'Brien \\\\ Sons'") == []


def test_a_subquery_returns_the_line_items_of_each_opportunity() -> None:
    state = sandbox.Org(SandboxOptions(records=40, seed=5))
    query = sandbox.parse_soql("SELECT Id, Name, (SELECT Id, Quantity, UnitPrice, TotalPrice FROM OpportunityLineItems) "
                               "FROM Opportunity ORDER BY Id")
    records = state.run(query, 2000, "v60.0")["records"]
    assert len(records) == 4
    for record in records:
        lines = record["OpportunityLineItems"]
        assert lines["done"] and lines["totalSize"] == len(lines["records"]) >= 1
        for line in lines["records"]:
            assert line["attributes"]["type"] == "OpportunityLineItem" and line["Id"].startswith("00k")
            assert line["TotalPrice"] == round(line["Quantity"] * line["UnitPrice"], 2)


# --- the connector -----------------------------------------------------------------------------


@seeded(450)
def test_pull_pages_by_batch_size_with_cursors_that_resume_exactly(org: RunningServer) -> None:
    found = connector(org, page_size=200)
    try:
        pages = list(found.pull("Account", None))
        assert [len(p.records) for p in pages] == [200, 200, 50]
        stamps = [decode_cursor(p.cursor or "") for p in pages]
        assert stamps == sorted(stamps)
        rest = [r["Id"] for p in found.pull("Account", pages[0].cursor) for r in p.records]
        assert rest == [r["Id"] for p in pages[1:] for r in p.records]
        assert list(found.pull("Account", pages[-1].cursor)) == []
    finally:
        found.close()


@seeded(6)
def test_a_change_later_in_the_cursors_second_is_pulled_while_that_second_is_recent(org: RunningServer) -> None:
    # SystemModstamp is kept to the second: a record changed in the cursor's second after the
    # pull that made the cursor, with a lower Id, must not fall behind the keyset for good.
    state: sandbox.Org = org.app.state.org
    accounts = sorted(state.tables["Account"])
    recent = sandbox.sf_datetime(datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=2))
    old = sandbox.sf_datetime(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    found = connector(org)
    try:
        for stamp in (recent, old):
            for record_id in accounts:
                state.tables["Account"][record_id]["SystemModstamp"] = stamp
            [page] = list(found.pull("Account", None))
            state.tables["Account"][accounts[0]]["Description"] = "changed late in the same second"
            again = [r["Id"] for p in found.pull("Account", page.cursor) for r in p.records]
            if stamp == recent:  # the whole recent second again; the engine skips what it has seen
                assert accounts[0] in again and sorted(again) == accounts
            else:  # an old second is closed: the keyset resumes exactly
                assert again == []
    finally:
        found.close()


@seeded(40)
def test_opportunities_are_pulled_with_their_lines_and_map_to_orders(org: RunningServer) -> None:
    found = connector(org)
    mapping = load_mapping(ROOT / "mappings/salesforce/Opportunity.order.yaml")
    try:
        records = [r for page in found.pull("Opportunity", None) for r in page.records]
        assert len(records) == 4
        for record in records:
            result = mapping.to_canonical(record)
            assert result.errors == [], result.errors
            assert result.value["customer_id"] == record["AccountId"]
            assert len(result.value["lines"]) == record["OpportunityLineItems"]["totalSize"]
        got = found.get("Opportunity", [records[0]["Id"], "0065j00000zzzzzAAA"])
        assert [r["Id"] for r in got] == [records[0]["Id"]] and got[0]["OpportunityLineItems"]["records"]
        deal = mapping.to_vendor({**mapping.to_canonical(records[0]).value, "id": "ord-1", "status": "rejected"}).value
        [result] = found.push("Opportunity", [WriteOp(OpKind.UPDATE, deal, "ord-1", records[0]["Id"], "Synchub_Id__c")])
        assert result.ok, result.error
        [after] = found.get("Opportunity", [records[0]["Id"]])
        assert (after["StageName"], after["IsClosed"], after["IsWon"]) == ("Closed Lost", True, False)
    finally:
        found.close()


def test_push_mixes_kinds_in_order_and_reports_vendor_errors(org: RunningServer) -> None:
    found = connector(org)
    try:
        [first] = found.push("Account", [WriteOp(OpKind.CREATE, {"Name": "Vandelay Trading Inc."}, "hub-1",
                                                 key_field="Synchub_Id__c")])
        ops = [WriteOp(OpKind.UPSERT, {"Name": "Tyrell Materials Ltd"}, "hub-2", key_field="Synchub_Id__c"),
               WriteOp(OpKind.UPDATE, {"Phone": "+1 512 555 0199"}, "hub-1", first.external_id, "Synchub_Id__c"),
               WriteOp(OpKind.CREATE, {"BillingCity": "London"}, "hub-3", key_field="Synchub_Id__c"),
               WriteOp(OpKind.UPSERT, {"Name": "Vandelay Trading Inc. (renamed)"}, "hub-1", key_field="Synchub_Id__c"),
               WriteOp(OpKind.UPDATE, {"Name": "nobody"}, "hub-4", None, "Synchub_Id__c"),
               WriteOp(OpKind.CREATE, {"Name": "Duplicate key"}, "hub-2", key_field="Synchub_Id__c")]
        results = found.push("Account", ops)
        assert [r.ok for r in results] == [True, True, False, True, False, False]
        assert results[0].created and not results[1].created and not results[3].created
        assert results[3].external_id == results[1].external_id == first.external_id
        assert isinstance(results[2].error, Rejected)
        assert str(results[2].error) == "REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)"
        assert results[2].error.vendor_code == "REQUIRED_FIELD_MISSING"
        assert results[5].error is not None and "DUPLICATE_VALUE" in str(results[5].error)
        [record] = found.get("Account", [first.external_id or ""])
        assert (record["Name"], record["Phone"]) == ("Vandelay Trading Inc. (renamed)", "+1 512 555 0199")
    finally:
        found.close()


# --- outbound messages -------------------------------------------------------------------------


class Listener:
    """A loopback endpoint answering outbound messages with what `answers` says, in turn."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.answers = answers
        self.done = threading.Event()
        app = FastAPI()

        @app.post("/sfdc")
        async def receive(request: Request) -> Response:
            self.bodies.append(await request.body())
            self.headers.append(dict(request.headers))
            status, body = self.answers[min(len(self.bodies), len(self.answers)) - 1]
            if len(self.bodies) >= len(self.answers):
                self.done.set()
            return Response(body, status, media_type="text/xml")

        self.server = serve(app)
        self.url = f"{self.server.base_url}/sfdc"


def _request(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example/webhooks/sf", {"content-type": "text/xml; charset=utf-8"}, {}, body)


def test_an_outbound_message_is_acked_with_the_exact_envelope_and_names_every_record(org: RunningServer) -> None:
    listener = Listener([(200, webhook.ACK)])
    found = connector(org)
    try:
        control(org, "PUT", "webhooks", {"url": listener.url})
        ids = [r["Id"] for r in control(org, "GET", "records/Account")["records"][:3]]
        results = found.push("Account", [WriteOp(OpKind.UPDATE, {"Description": f"Note {i} & <more>"}, f"k{i}", rid)
                                         for i, rid in enumerate(ids)])
        assert all(r.ok for r in results)
        assert listener.done.wait(10)
        assert listener.headers[0]["content-type"].startswith("text/xml") and listener.headers[0]["soapaction"] == '""'
        reply = found.webhook(_request(listener.bodies[0]))
        assert (reply.status, reply.content_type, reply.body) == (200, "text/xml; charset=utf-8", webhook.ACK)
        assert [e.external_id for e in reply.events] == ids
        assert all(e.object == "Account" and e.event_id.startswith("04l") for e in reply.events)
        assert reply.events[0].payload["fields"]["Description"] == "Note 0 & <more>"
        deliveries = control(org, "GET", "webhooks")["deliveries"]
        assert [d["status"] for d in deliveries] == ["delivered"]
    finally:
        found.close()
        listener.server.stop()


def test_a_message_without_an_ack_is_redelivered_with_the_same_notification_ids(org: RunningServer, sf: Salesforce) -> None:
    listener = Listener([(500, b"oops"), (200, b"<ok/>"), (200, webhook.ACK)])
    try:
        control(org, "PUT", "webhooks", {"url": listener.url})
        created = sf.Opportunity.create({"Name": "Cyberdyne - pilot", "StageName": "Prospecting", "CloseDate": "2024-08-01"})
        assert listener.done.wait(10)
        parsed = [webhook.parse(body) for body in listener.bodies]
        assert {n.id for m in parsed for n in m.notifications} == {parsed[0].notifications[0].id}
        assert parsed[0].notifications[0].object == "Opportunity"
        assert parsed[0].notifications[0].record_id == created["id"]
        [delivery] = control(org, "GET", "webhooks")["deliveries"]
        assert (delivery["attempts"], delivery["status"]) == (3, "delivered")
    finally:
        listener.server.stop()


def _message(organization_id: str = sandbox.ORG_ID) -> bytes:
    record = {"Id": "0015j00000Q8aLmAAJ", "Name": "华信科技", "IsDeleted": False}
    body = sandbox.notifications_envelope("https://example.my.salesforce.com", [("04l5j000000aBcDAAU", "Account", record)])
    return body.replace(sandbox.ORG_ID.encode(), organization_id.encode())


def test_the_organization_id_decides_and_a_15_character_one_matches(org: RunningServer) -> None:
    found = connector(org)
    try:
        assert found.webhook(_request(_message())).status == 200
        other = found.webhook(_request(_message("00D5j00000EvilOrgAAA")))
        assert (other.status, other.events, other.content_type) == (401, [], "text/xml; charset=utf-8")
        assert b"<faultcode>" in other.body and webhook.ACK != other.body
        assert found.webhook(_request(_message()[:-40])).status == 400
        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>' + _message().split(b"?>", 1)[1]
        refused = found.webhook(_request(bomb))
        assert (refused.status, refused.events) == (400, [])
    finally:
        found.close()
    assert webhook.same_organization(sandbox.ORG_ID, sandbox.ORG_ID[:15])
    assert not webhook.same_organization(sandbox.ORG_ID, "")
    unset = Connector(System(name="sf", connector="salesforce", base_url=org.base_url, auth={}, webhook={}))
    assert unset.webhook(_request(_message())).status == 401  # no org configured: nothing is trusted
    unset.close()


def test_the_ack_is_the_envelope_salesforce_documents() -> None:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(webhook.ACK)
    ack = root.find(f"{{{webhook.SOAP_ENV}}}Body/{{{webhook.OUTBOUND}}}notificationsResponse/{{{webhook.OUTBOUND}}}Ack")
    assert ack is not None and ack.text == "true"
    assert json.dumps(webhook.ACK.decode()).count("Ack") == 2


# --- security review: encodings, partial pushes ----------------------------------------------


def _utf16(message: bytes, doctype: str = "") -> bytes:
    head, rest = message.decode("utf-8").split("?>", 1)
    return (head.replace('encoding="UTF-8"', 'encoding="UTF-16"') + "?>" + doctype + rest).encode("utf-16")


def _offline(organization_id: str = sandbox.ORG_ID) -> Connector:
    return Connector(System(name="sf", connector="salesforce", base_url="http://127.0.0.1:9", auth={},
                            webhook={"organization_id": organization_id}))


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE e [<!ENTITY x "INJECTED-ENTITY">]>',
    '<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/hostname">]>',
    '<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY x "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    "<!DOCTYPE e>",
])
def test_a_utf16_message_with_a_dtd_is_refused_like_a_utf8_one(doctype: str) -> None:
    """A byte-level `<!DOCTYPE` check misses UTF-16; the parser itself must refuse the DTD."""
    injected = _message().replace("华信科技".encode(), b"&x;")
    found = _offline()
    try:
        for body in (_utf16(injected, doctype), _utf16(_message(), doctype)):
            reply = found.webhook(_request(body))
            assert (reply.status, reply.events) == (400, []), body[:80]
            assert b"INJECTED" not in reply.body and b"DTD" in reply.body
        with pytest.raises(webhook.BadMessage, match="DTD"):
            webhook.parse(_utf16(injected, doctype))
    finally:
        found.close()


def test_a_utf16_message_without_a_dtd_is_read_with_its_namespaces() -> None:
    found = _offline()
    try:
        reply = found.webhook(_request(_utf16(_message())))
    finally:
        found.close()
    assert reply.status == 200 and reply.body == webhook.ACK
    [event] = reply.events
    assert (event.object, event.external_id, event.payload["fields"]["Name"]) == ("Account", "0015j00000Q8aLmAAJ", "华信科技")


class _Org:
    """`client.api` of an org that creates records until `fail_after` of them exist, then fails."""

    def __init__(self, fail_after: int, error: Exception) -> None:
        self.fail_after, self.error, self.created = fail_after, error, 0

    def api(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        if self.created >= self.fail_after:
            raise self.error
        answer = [{"success": True, "id": f"001{self.created + i:015d}", "created": True} for i in range(len(body["records"]))]
        self.created += len(answer)
        return answer


def test_a_push_failing_after_a_written_chunk_returns_it_and_hands_back_only_the_rest() -> None:
    found = _offline()
    org_ = _Org(fail_after=200, error=RateLimited("REQUEST_LIMIT_EXCEEDED", 7.0))
    found.client.api = org_.api  # type: ignore[method-assign]
    ops = [WriteOp(OpKind.CREATE, {"Name": f"Account {i}"}, f"k{i}") for i in range(250)]
    try:
        results = found.push("Account", ops)
    finally:
        found.close()
    assert len(results) == 250 and org_.created == 200
    assert all(r.ok and r.created for r in results[:200])
    assert {type(r.error) for r in results[200:]} == {RateLimited} and not any(r.ok for r in results[200:])
    assert all(r.error is not None and r.error.retryable for r in results[200:])


def test_a_push_failing_before_anything_was_written_raises_for_a_whole_retry() -> None:
    found = _offline()
    found.client.api = _Org(fail_after=0, error=RateLimited("REQUEST_LIMIT_EXCEEDED")).api  # type: ignore[method-assign]
    try:
        with pytest.raises(RateLimited):
            found.push("Account", [WriteOp(OpKind.CREATE, {"Name": "A"}, "k1")])
    finally:
        found.close()


def test_a_chunk_refused_as_a_whole_is_its_records_failure_and_the_next_chunk_is_written() -> None:
    found = _offline()
    calls: list[int] = []

    def api(method: str, path: str, body: Any = None, **_: Any) -> Any:
        calls.append(len(body["records"]))
        if len(calls) == 1:
            raise Rejected("JSON_PARSER_ERROR: bad request", "JSON_PARSER_ERROR")
        return [{"success": True, "id": f"001{i:015d}", "created": True} for i in range(len(body["records"]))]

    found.client.api = api  # type: ignore[method-assign]
    try:
        results = found.push("Account", [WriteOp(OpKind.CREATE, {"Name": f"A{i}"}, f"k{i}") for i in range(201)])
    finally:
        found.close()
    assert calls == [200, 1]
    assert all(isinstance(r.error, Rejected) for r in results[:200]) and results[200].ok


def test_configured_fields_are_read_without_a_describe_call() -> None:
    """Option `fields` names what to read per sObject; a pull then makes no describe call."""
    from connectors import registry
    from connectors.sandbox import SandboxOptions, load, serve, system_for

    with serve(load("salesforce").create_app(SandboxOptions(records=5))) as server:
        system = system_for("salesforce", server, "crm", {"fields": {"Account": ["Name", "Phone"]}})
        connector = registry.connector_class("salesforce")(system)
        try:
            records = [r for page in connector.pull("Account", None) for r in page.records]
        finally:
            connector.close()
        routes = server.app.state.kit.stats()["by_route"]
    assert len(records) == 5
    assert set(records[0]) - {"attributes"} == {"Id", "SystemModstamp", "Name", "Phone"}
    assert not any("describe" in route for route in routes)
