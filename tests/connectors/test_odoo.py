"""Odoo specifics, over real HTTP on loopback against the sandbox.

Odoo's own documentation uses Python's `xmlrpc.client.ServerProxy`, so the first tests are
its "External API" examples run unchanged against the sandbox's XML-RPC endpoints. The rest
check what the generic contract suite cannot see: the domain evaluator, multi-create
fallback, sale orders with lines, re-authentication, error classification and webhooks.
"""

from __future__ import annotations

import json
import threading
import xmlrpc.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors.base import AuthExpired, OpKind, RateLimited, Rejected, Unavailable, WebhookRequest, WriteOp
from connectors.odoo import Connector
from connectors.odoo import sandbox as odoo_sandbox
from connectors.odoo.client import OdooClient
from connectors.odoo.connector import keyset_domain, make_cursor, parse_cursor
from connectors.odoo.sandbox import MODELS, Database, InvalidValue, compile_domain, parse_order
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config.model import System

DB, LOGIN, KEY = odoo_sandbox.DATABASE, odoo_sandbox.LOGIN, odoo_sandbox.API_KEY


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = serve(odoo_sandbox.create_app(SandboxOptions(records=5, seed=3, webhook_retry_scale=0.001)))
    yield running
    running.stop()


def _system(base_url: str, **options: Any) -> System:
    declared = odoo_sandbox.system_config(base_url)
    return System(name="odoo-test", connector="odoo", base_url=base_url, auth=declared["auth"],
                  webhook=declared["webhook"], options=options, timeout=10.0)


@pytest.fixture
def connector(server: RunningServer) -> Iterator[Connector]:
    opened = Connector(_system(server.base_url, page_size=3))
    yield opened
    opened.close()


def _control(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{server.base_url}/_sandbox/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


# --- Odoo's External API documentation, with xmlrpc.client ---------------------------------------


def test_the_external_api_examples_of_the_odoo_documentation(server: RunningServer) -> None:
    url, db, username, password = server.base_url, DB, LOGIN, KEY
    common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
    assert common.version()["server_version"] == "17.0"
    uid = common.authenticate(db, username, password, {})
    assert uid == 2
    assert common.authenticate(db, username, "wrong password", {}) is False

    models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object")
    companies = models.execute_kw(db, uid, password, "res.partner", "search", [[["is_company", "=", True]]])
    assert sorted(companies) == [1, 2, 3, 4, 5]  # in res.partner's default order (by name)
    assert models.execute_kw(db, uid, password, "res.partner", "search", [[["is_company", "=", True]]],
                             {"offset": 1, "limit": 2}) == companies[1:3]
    assert models.execute_kw(db, uid, password, "res.partner", "search_count", [[["is_company", "=", True]]]) == 5

    [record] = models.execute_kw(db, uid, password, "res.partner", "read", [[companies[0]]])
    assert record["id"] == companies[0] and record["is_company"] is True and record["mobile"] is False
    assert isinstance(record["country_id"], list) and record["country_id"][1] in {"China", "Germany", "France",
                                                                                 "United Kingdom", "United States"}
    few = models.execute_kw(db, uid, password, "res.partner", "read", [companies[:2]],
                            {"fields": ["name", "country_id", "comment"]})
    assert [sorted(r) for r in few] == [["comment", "country_id", "id", "name"]] * 2

    described = models.execute_kw(db, uid, password, "res.partner", "fields_get", [],
                                  {"attributes": ["string", "help", "type"]})
    assert described["name"] == {"string": "Name", "type": "char"}
    assert described["country_id"]["type"] == "many2one"

    rows = models.execute_kw(db, uid, password, "res.partner", "search_read", [[["is_company", "=", True]]],
                             {"fields": ["name", "country_id", "comment"], "limit": 5})
    assert len(rows) == 5 and all(set(r) == {"id", "name", "country_id", "comment"} for r in rows)

    new_id = models.execute_kw(db, uid, password, "res.partner", "create", [{"name": "New Partner"}])
    assert isinstance(new_id, int)
    assert models.execute_kw(db, uid, password, "res.partner", "write", [[new_id], {"name": "Newer partner"}]) is True
    assert models.execute_kw(db, uid, password, "res.partner", "read", [[new_id], ["display_name"]]) == \
        [{"id": new_id, "display_name": "Newer partner"}]
    assert models.execute_kw(db, uid, password, "res.partner", "unlink", [[new_id]]) is True
    assert models.execute_kw(db, uid, password, "res.partner", "search", [[["id", "=", new_id]]]) == []


def test_xmlrpc_faults_carry_odoo_codes_and_messages(server: RunningServer) -> None:
    models = xmlrpc.client.ServerProxy(f"{server.base_url}/xmlrpc/2/object")
    with pytest.raises(xmlrpc.client.Fault) as refused:
        models.execute_kw(DB, 2, KEY, "res.partner", "create", [{"email": "x@example.com"}])
    assert refused.value.faultCode == 2 and "Contacts require a name" in refused.value.faultString
    with pytest.raises(xmlrpc.client.Fault) as denied:
        models.execute_kw(DB, 2, "not the key", "res.partner", "search", [[]])
    assert denied.value.faultCode == 3
    with pytest.raises(xmlrpc.client.Fault) as unknown:
        models.execute_kw(DB, 2, KEY, "res.partner", "search_read", [[]], {"fields": ["nmae"]})
    assert "Invalid field 'nmae' on model 'res.partner'" in unknown.value.faultString


def test_xmlrpc_refuses_entity_declarations(server: RunningServer) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<methodCall><methodName>version</methodName><params><param><value><string>&b;</string></value>"
            b"</param></params></methodCall>")
    response = requests.post(f"{server.base_url}/xmlrpc/2/common", data=bomb, timeout=10,
                             headers={"Content-Type": "text/xml"})
    assert response.status_code == 400


# --- the domain evaluator and order strings ------------------------------------------------------


@pytest.fixture(scope="module")
def database() -> Database:
    db = Database()
    db.seed(SandboxOptions(records=0))
    partners = MODELS["res.partner"]
    with db.transaction():
        db.create(partners, [
            {"name": "Acme GmbH", "is_company": True, "city": "München", "customer_rank": 3, "ref": "hub-1"},
            {"name": "acme trading", "is_company": True, "city": "Austin", "customer_rank": 0},
            {"name": "Li Na", "email": "li.na@example.cn", "customer_rank": 1},
            {"name": "Archived Ltd", "active": False, "customer_rank": 0},
            {"name": "Beta_Co", "city": False},
        ])
    return db


def _names(db: Database, domain: list[Any], **kw: Any) -> list[str]:
    partners = MODELS["res.partner"]
    return [db.tables["res.partner"][i]["name"] for i in db.search(partners, domain, order="id", **kw)]


@pytest.mark.parametrize(("domain", "expected"), [
    ([], ["Acme GmbH", "acme trading", "Li Na", "Beta_Co"]),
    ([("name", "=", "Acme GmbH")], ["Acme GmbH"]),
    ([("name", "like", "cme")], ["Acme GmbH", "acme trading"]),
    ([("name", "like", "Acme")], ["Acme GmbH"]),
    ([("name", "ilike", "ACME")], ["Acme GmbH", "acme trading"]),
    ([("name", "not ilike", "acme")], ["Li Na", "Beta_Co"]),
    ([("name", "=like", "Acme%")], ["Acme GmbH"]),
    ([("name", "=ilike", "acme%")], ["Acme GmbH", "acme trading"]),
    ([("name", "=like", "Beta_Co")], ["Beta_Co"]),
    ([("customer_rank", ">", 0)], ["Acme GmbH", "Li Na"]),
    ([("customer_rank", ">=", 1), ("customer_rank", "<", 3)], ["Li Na"]),
    ([("customer_rank", "=", 0)], ["acme trading", "Beta_Co"]),
    ([("customer_rank", "<=", 0)], ["acme trading", "Beta_Co"]),
    ([("city", "=", False)], ["Li Na", "Beta_Co"]),
    ([("city", "!=", False)], ["Acme GmbH", "acme trading"]),
    ([("city", "in", ["Austin", "München"])], ["Acme GmbH", "acme trading"]),
    ([("city", "not in", ["Austin"])], ["Acme GmbH", "Li Na", "Beta_Co"]),
    ([("ref", "in", ["hub-1", "hub-2"])], ["Acme GmbH"]),
    (["|", ("city", "=", "Austin"), ("email", "ilike", "example.cn")], ["acme trading", "Li Na"]),
    (["!", ("is_company", "=", True)], ["Li Na", "Beta_Co"]),
    (["&", ("is_company", "=", True), "!", ("city", "=", "Austin")], ["Acme GmbH"]),
    (["|", "&", ("is_company", "=", True), ("customer_rank", ">", 1), ("name", "=", "Li Na")], ["Acme GmbH", "Li Na"]),
    ([("active", "=", False)], ["Archived Ltd"]),
])
def test_domains_select_what_odoo_would(database: Database, domain: list[Any], expected: list[str]) -> None:
    assert _names(database, domain) == expected


def test_archived_records_are_found_with_active_test_false(database: Database) -> None:
    assert "Archived Ltd" in _names(database, [], context={"active_test": False})


def test_the_keyset_domain_resumes_inside_a_shared_second(database: Database) -> None:
    partners = MODELS["res.partner"]
    table = database.tables["res.partner"]
    stamp = "2024-05-01 08:00:00"
    ids = sorted(table)
    for rid in ids:
        table[rid]["write_date"] = stamp if rid != ids[-1] else "2024-05-01 08:00:01"
    after = parse_cursor(make_cursor(stamp, ids[1]))
    found = database.search(partners, keyset_domain(after), order="write_date asc, id asc",
                            context={"active_test": False})
    assert found == ids[2:]


def test_a_change_later_in_the_cursors_second_is_pulled_while_that_second_is_recent(
        server: RunningServer, connector: Connector) -> None:
    # write_date is kept to the second: a record written in the cursor's second after the pull
    # that made the cursor, with a lower id, must not fall behind the keyset for good.
    db: Database = server.app.state.db
    table = db.tables["res.partner"]
    recent = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    for stamp in (recent, old):
        for record in table.values():
            record["write_date"] = stamp
        pages = list(connector.pull("res.partner", None))
        table[1]["phone"] = "+86 21 6000 0001"  # written late, stamped with the same second
        again = [r["id"] for p in connector.pull("res.partner", pages[-1].cursor) for r in p.records]
        if stamp == recent:  # the whole recent second again; the engine skips what it has seen
            assert 1 in again and sorted(again) == sorted(table)
        else:  # an old second is closed: the keyset resumes exactly
            assert again == []


def test_a_pull_retried_after_a_failed_page_continues_exactly(server: RunningServer, connector: Connector) -> None:
    # The engine retries a failed page by pulling again from the last page's cursor: that pull
    # continues where the first stopped instead of reading the recent second again, which a
    # steady rate of faults would otherwise make endless on a crowded second.
    db: Database = server.app.state.db
    recent = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    for record in db.tables["res.partner"].values():
        record["write_date"] = recent
    pulling = connector.pull("res.partner", None)
    first = next(pulling)
    _control(server, "PUT", "faults", {"next": ["error"]})
    with pytest.raises(Unavailable):
        next(pulling)
    rest = [r["id"] for p in connector.pull("res.partner", first.cursor) for r in p.records]
    assert [r["id"] for r in first.records] + rest == sorted(db.tables["res.partner"])
    again = [r["id"] for p in connector.pull("res.partner", first.cursor) for r in p.records]
    assert sorted(again) == sorted(db.tables["res.partner"])  # a later run from that cursor reads the second again


@pytest.mark.parametrize("bad", [[("nmae", "=", "x")], [("name", "child_of", 1)], ["|", ("name", "=", "x")],
                                 [("name", "=")], "name = x"])
def test_malformed_domains_are_value_errors(database: Database, bad: Any) -> None:
    with pytest.raises(InvalidValue):
        compile_domain(database, MODELS["res.partner"], bad)


def test_order_strings_are_parsed_and_checked() -> None:
    partners = MODELS["res.partner"]
    assert parse_order(partners, "write_date asc, id asc") == [("write_date", False), ("id", False)]
    assert parse_order(partners, " name DESC,id") == [("name", True), ("id", False)]
    for bad in ("name sideways", "nmae", "name; drop table"):
        with pytest.raises(InvalidValue):
            parse_order(partners, bad)


def test_write_dates_have_second_resolution_and_touch_shares_one(server: RunningServer, connector: Connector) -> None:
    ids = [r.external_id for r in connector.push("res.partner", [
        WriteOp(OpKind.CREATE, {"name": f"Touch {n}"}, f"t{n}", key_field="ref") for n in range(4)])]
    _control(server, "POST", "touch", {"object": "res.partner", "ids": [int(i) for i in ids if i]})
    stamps = {r["write_date"] for r in connector.get("res.partner", [i for i in ids if i])}
    assert len(stamps) == 1 and len(stamps.pop()) == len("2024-05-01 08:00:00")


# --- pushing -------------------------------------------------------------------------------------


def _stats(server: RunningServer) -> dict[str, int]:
    return _control(server, "GET", "stats")["by_route"]  # type: ignore[no-any-return]


def test_a_multi_create_with_one_bad_record_rejects_only_that_one(server: RunningServer, connector: Connector) -> None:
    ops = [WriteOp(OpKind.CREATE, {"name": f"Good {n}", "email": f"g{n}@example.com"}, f"hub-g{n}", key_field="ref")
           for n in range(5)]
    ops.insert(2, WriteOp(OpKind.CREATE, {"email": "nameless@example.com"}, "hub-bad", key_field="ref"))
    _control(server, "DELETE", "stats")
    results = connector.push("res.partner", ops)
    assert [r.ok for r in results] == [True, True, False, True, True, True]
    bad = results[2].error
    assert isinstance(bad, Rejected) and bad.reason == "The operation cannot be completed: Contacts require a name"
    assert bad.vendor_code == "odoo.exceptions.ValidationError"
    names = [r["name"] for r in requests.get(f"{server.base_url}/_sandbox/records/res.partner", timeout=10).json()["records"]]
    assert {f"Good {n}" for n in range(5)} <= set(names)
    assert len(names) == 5 + 5  # seeded + good ones: the refused list created nothing (one transaction)
    assert _stats(server)["POST /jsonrpc res.partner.create"] == 1 + 6  # the refused batch, then one by one


def test_identical_updates_share_one_write_and_distinct_ones_do_not(server: RunningServer, connector: Connector) -> None:
    ids = [str(i) for i in range(1, 6)]
    _control(server, "DELETE", "stats")
    results = connector.push("res.partner", [
        *(WriteOp(OpKind.UPDATE, {"customer_rank": 5}, f"k{i}", i) for i in ids[:3]),
        WriteOp(OpKind.UPDATE, {"name": "Renamed"}, "k4", ids[3]),
        WriteOp(OpKind.UPDATE, {"name": "Missing"}, "k9", "999999"),
    ])
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert isinstance(results[4].error, Rejected) and "does not exist" in results[4].error.reason
    assert _stats(server)["POST /jsonrpc res.partner.write"] == 3


def test_upsert_searches_the_key_once_then_creates_or_writes(server: RunningServer, connector: Connector) -> None:
    first = connector.push("res.partner", [WriteOp(OpKind.UPSERT, {"name": "Keyed"}, "hub-k1", key_field="ref")])
    _control(server, "DELETE", "stats")
    again = connector.push("res.partner", [
        WriteOp(OpKind.UPSERT, {"name": "Keyed again"}, "hub-k1", key_field="ref"),
        WriteOp(OpKind.UPSERT, {"name": "Fresh"}, "hub-k2", key_field="ref"),
        WriteOp(OpKind.UPSERT, {"name": "Fresh twice"}, "hub-k2", key_field="ref"),
    ])
    assert first[0].created and not again[0].created and again[0].external_id == first[0].external_id
    assert again[1].created and not again[2].created and again[2].external_id == again[1].external_id
    stats = _stats(server)
    assert stats["POST /jsonrpc res.partner.search_read"] == 1 and stats["POST /jsonrpc res.partner.create"] == 1
    [fresh] = connector.get("res.partner", [again[1].external_id or ""])
    assert fresh["name"] == "Fresh twice" and fresh["ref"] == "hub-k2"


def test_a_push_of_several_batches_searches_its_keys_once(server: RunningServer, connector: Connector) -> None:
    """A first sync is all upserts that find nothing: one search for the whole push, not one per
    batch of 200, and a key created in an earlier batch is written, not created again."""
    ops = [WriteOp(OpKind.UPSERT, {"name": f"Batch {n}"}, f"hub-b{n}", key_field="ref") for n in range(450)]
    ops.append(WriteOp(OpKind.UPSERT, {"name": "Batch 3, renamed"}, "hub-b3", key_field="ref"))  # third batch
    _control(server, "DELETE", "stats")
    results = connector.push("res.partner", ops)
    assert all(r.ok for r in results)
    assert not results[-1].created and results[-1].external_id == results[3].external_id
    stats = _stats(server)
    assert stats["POST /jsonrpc res.partner.search_read"] == 1
    assert stats["POST /jsonrpc res.partner.create"] == 3 and stats["POST /jsonrpc res.partner.write"] == 1
    [renamed] = connector.get("res.partner", [results[3].external_id or ""])
    assert renamed["name"] == "Batch 3, renamed"


def test_sale_orders_with_lines_are_created_read_back_and_replaced(server: RunningServer, connector: Connector) -> None:
    order = {"partner_id": "2", "client_order_ref": "PO-7788", "origin": "hub-order-1",
             "order_line": [[0, 0, {"product_id": "[FURN_8220] Four Person Desk", "product_uom_qty": 2.0,
                                    "price_unit": 2300.0}],
                            {"product_id": "Installation", "name": "Installation on site", "product_uom_qty": 1.0}]}
    [created] = connector.push("sale.order", [WriteOp(OpKind.CREATE, order, "hub-order-1", key_field="origin")])
    assert created.ok, created.error
    [read] = connector.get("sale.order", [created.external_id or ""])
    assert read["name"].startswith("S0") and read["partner_id"][0] == 2 and read["state"] == "draft"
    assert [(line["product_id"][1], line["product_uom_qty"], line["price_unit"]) for line in read["order_line"]] == \
        [("[FURN_8220] Four Person Desk", 2.0, 2300.0), ("[SRV_INST] Installation", 1.0, 120.0)]
    assert read["order_line"][1]["name"] == "Installation on site"
    assert read["amount_total"] == 4720.0

    replace = {"order_line": [[0, 0, {"product_id": "E-COM07", "product_uom_qty": 3.0}]]}
    [updated] = connector.push("sale.order", [WriteOp(OpKind.UPDATE, replace, "hub-order-1", created.external_id)])
    assert updated.ok, updated.error
    [read] = connector.get("sale.order", [created.external_id or ""])
    assert [line["product_id"][1] for line in read["order_line"]] == ["[E-COM07] Large Cabinet"]
    lines = requests.get(f"{server.base_url}/_sandbox/records/sale.order.line", timeout=10).json()["records"]
    assert len(lines) == 1  # the old lines were deleted, not orphaned

    client = connector.client
    assert client.execute_kw("sale.order", "action_confirm", [[int(created.external_id or 0)]]) is True
    [refused] = connector.push("sale.order", [WriteOp(OpKind.UPDATE, replace, "hub-order-1", created.external_id)])
    assert isinstance(refused.error, Rejected) and "Once a sales order is confirmed" in refused.error.reason


def test_an_unknown_product_rejects_only_its_order(connector: Connector) -> None:
    ops = [WriteOp(OpKind.CREATE, {"partner_id": "1", "order_line": [{"product_id": "No Such Thing"}]}, "o1"),
           WriteOp(OpKind.CREATE, {"partner_id": "1", "order_line": [{"product_id": "DESK0004"}]}, "o2")]
    bad, good = connector.push("sale.order", ops)
    assert isinstance(bad.error, Rejected) and "No Such Thing" in bad.error.reason
    assert good.ok


def test_pulling_sale_orders_attaches_lines_with_one_read_per_page(server: RunningServer, connector: Connector) -> None:
    ops = [WriteOp(OpKind.CREATE, {"partner_id": "1", "order_line": [{"product_id": "DESK0004", "product_uom_qty": n},
                                                                    {"product_id": "FURN_7800"}]}, f"o{n}")
           for n in range(1, 6)]
    assert all(r.ok for r in connector.push("sale.order", ops))
    _control(server, "DELETE", "stats")
    pages = list(connector.pull("sale.order", None))
    assert [len(p.records) for p in pages] == [3, 2]
    assert all(len(o["order_line"]) == 2 and isinstance(o["order_line"][0], dict) for p in pages for o in p.records)
    stats = _stats(server)
    assert stats["POST /jsonrpc sale.order.search_read"] == 2 and stats["POST /jsonrpc sale.order.line.read"] == 2


# --- auth and errors -----------------------------------------------------------------------------


def test_access_denied_authenticates_again_once(server: RunningServer, connector: Connector) -> None:
    assert len(connector.get("res.partner", ["1", "2"])) == 2
    assert connector.client.authentications == 1
    _control(server, "POST", "expire-tokens")  # the user now has another uid
    assert len(connector.get("res.partner", ["1", "2"])) == 2
    assert connector.client.authentications == 2
    assert len(connector.get("res.partner", ["1"])) == 1
    assert connector.client.authentications == 2  # the new uid is cached


def test_a_refused_api_key_is_auth_expired_and_never_echoed(server: RunningServer) -> None:
    system = _system(server.base_url)
    wrong = "wrong-key-5e1d"
    opened = Connector(System(**{**system.__dict__, "auth": {**system.auth, "api_key": wrong}}))
    with pytest.raises(AuthExpired) as refused:
        opened.get("res.partner", ["1"])
    assert wrong not in str(refused.value) and wrong not in repr(opened.client)
    opened.close()


def test_rate_limits_and_proxy_errors_are_typed(server: RunningServer, connector: Connector) -> None:
    _control(server, "PUT", "faults", {"retry_after": 7, "next": ["rate_limit", "error"]})
    with pytest.raises(RateLimited) as limited:
        connector.get("res.partner", ["1"])
    assert limited.value.retry_after == 7
    with pytest.raises(Unavailable) as down:
        connector.get("res.partner", ["1"])
    assert "503 Service Temporarily Unavailable" in str(down.value) and KEY not in str(down.value)


def _envelope(name: str, message: str, code: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
        "code": code, "message": "Odoo Server Error", "data": {"name": name, "message": message}}}).encode()
    return response


@pytest.mark.parametrize(("name", "kind"), [
    ("odoo.exceptions.ValidationError", Rejected), ("odoo.exceptions.UserError", Rejected),
    ("odoo.exceptions.MissingError", Rejected), ("odoo.exceptions.AccessError", Rejected),
    ("builtins.ValueError", Rejected), ("odoo.exceptions.AccessDenied", AuthExpired),
    ("psycopg2.errors.SerializationFailure", Unavailable),
])
def test_the_error_envelope_is_classified_by_exception_name(name: str, kind: type) -> None:
    client = OdooClient("http://127.0.0.1:9", DB, LOGIN, KEY, timeout=1)
    error = client.classify(_envelope(name, f"something about {KEY}"))
    assert isinstance(error, kind)
    assert KEY not in str(error)
    if isinstance(error, Rejected):
        assert error.vendor_code == name and error.reason == "something about ***"
    client.close()


# --- webhooks ------------------------------------------------------------------------------------


class _Receiver:
    """Answers 500 to the first call and 200 after, keeping every request."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []
        self.arrived = threading.Event()
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.requests.append(WebhookRequest(request.method, str(request.url), dict(request.headers),
                                                dict(request.query_params), await request.body()))
            if len(self.requests) == 1:
                return Response(status_code=500)
            self.arrived.set()
            return Response(status_code=200)

        self.server = serve(app)
        self.url = f"{self.server.base_url}/hook?source=odoo"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    found = _Receiver()
    yield found
    found.server.stop()


def test_sandbox_webhooks_look_like_odoos_and_are_retried(server: RunningServer, connector: Connector,
                                                          receiver: _Receiver) -> None:
    _control(server, "PUT", "webhooks", {"url": receiver.url})
    [result] = connector.push("sale.order", [WriteOp(OpKind.CREATE, {"partner_id": "3", "origin": "hub-o9"}, "hub-o9")])
    assert receiver.arrived.wait(10)
    first, second = receiver.requests[:2]
    assert first.body == second.body and first.query["token"] == odoo_sandbox.WEBHOOK_TOKEN
    assert first.query["source"] == "odoo"  # the admin's own query is kept
    body = json.loads(first.body)
    assert body["_model"] == "sale.order" and body["_id"] == int(result.external_id or 0)
    assert body["partner_id"] == 3 and body["origin"] == "hub-o9" and body["_action"].endswith(")")
    assert list(body) == sorted(body)  # json.dumps(sort_keys=True), as Odoo sends it
    reply = connector.webhook(second)
    assert reply.status == 200
    [event] = reply.events
    assert (event.object, event.external_id) == ("sale.order", result.external_id)
    assert event.event_id.startswith(f"sale.order:{result.external_id}:{body['write_date']}:")
    # Odoo never retries and may send identical bodies for two writes in one second: each
    # delivery is its own event (a double delivery only asks for the record's sync twice)
    assert connector.webhook(first).events[0].event_id != event.event_id


def _hook(body: bytes, headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest("POST", "https://hub.example.com/webhooks/odoo", headers or {}, query or {}, body)


def test_webhook_tokens_from_header_or_query_and_bad_bodies(connector: Connector) -> None:
    token = odoo_sandbox.WEBHOOK_TOKEN
    body = json.dumps({"_action": "x(#1)", "_id": 7, "_model": "res.partner", "write_date": "2024-05-01 08:00:00"})
    by_header = connector.webhook(_hook(body.encode(), {"x-odoo-webhook-token": token}))
    by_query = connector.webhook(_hook(body.encode(), query={"token": token}))
    assert by_header.status == by_query.status == 200
    for accepted in (by_header, by_query):
        assert accepted.events[0].event_id.startswith("res.partner:7:2024-05-01 08:00:00:")
    for bad in ({}, {"token": token[:-1]}, {"token": token + "x"}, {"token": ""}):
        refused = connector.webhook(_hook(body.encode(), query=bad))
        assert refused.status == 401 and refused.events == []
    for junk in (b"not json", b'{"_model": "res.partner"}', b"[1, 2]", b"\xff\xfe"):
        refused = connector.webhook(_hook(junk, query={"token": token}))
        assert refused.status == 400 and refused.events == []


def test_without_a_configured_secret_every_webhook_is_refused(server: RunningServer) -> None:
    system = _system(server.base_url)
    opened = Connector(System(**{**system.__dict__, "webhook": {}}))
    reply = opened.webhook(_hook(b'{"_model": "res.partner", "_id": 1}', query={"token": ""}))
    assert reply.status == 401 and reply.events == []
    opened.close()


# --- options and other models --------------------------------------------------------------------


def test_the_fields_option_limits_what_is_read_but_keeps_the_cursor_field(server: RunningServer) -> None:
    opened = Connector(_system(server.base_url, fields={"res.partner": ["name", "ref"]}))
    [page] = list(opened.pull("res.partner", None))
    assert all(set(r) == {"id", "name", "ref", "write_date"} for r in page.records)
    got = opened.get("res.partner", ["3", "1", "x", "2"])
    assert [r["id"] for r in got] == [3, 1, 2]  # in the order asked, the malformed id left out
    opened.close()


def test_generic_models_work_too(connector: Connector) -> None:
    leave = {"name": "年假", "employee_id": "1", "holiday_status_id": "1", "request_date_from": "2024-05-06",
             "request_date_to": "2024-05-08", "number_of_days": 3}
    [created] = connector.push("hr.leave", [WriteOp(OpKind.CREATE, leave, "hub-leave-1")])
    assert created.ok, created.error
    pulled = [r for page in connector.pull("hr.leave", None) for r in page.records]
    assert [(r["employee_id"][1], r["state"], r["number_of_days"]) for r in pulled] == [("李娜", "confirm", 3.0)]
    [missing] = connector.push("hr.leave", [WriteOp(OpKind.CREATE, {"name": "no dates", "employee_id": 1,
                                                                    "holiday_status_id": 1}, "hub-leave-2")])
    assert isinstance(missing.error, Rejected) and "Field: Request Start Date (request_date_from)" in missing.error.reason


def test_relational_commands_on_order_lines(database: Database) -> None:
    orders, lines = MODELS["sale.order"], MODELS["sale.order.line"]

    def line_products(order_id: int) -> list[int]:
        order = database.tables["sale.order"][order_id]
        return [database.tables["sale.order.line"][i]["product_id"] for i in order["order_line"]]

    with database.transaction():
        [oid] = database.create(orders, [{"partner_id": 1, "order_line": [[0, 0, {"product_id": 1}],
                                                                          [0, 0, {"product_id": 2}]]}])
    first, second = database.tables["sale.order"][oid]["order_line"]
    with database.transaction():
        database.write(orders, [oid], {"order_line": [[1, first, {"product_uom_qty": 4}], [2, second]]})
    assert line_products(oid) == [1] and database.tables["sale.order.line"][first]["product_uom_qty"] == 4.0
    with database.transaction():
        [spare] = database.create(lines, [{"order_id": oid, "product_id": 3}])
        database.write(orders, [oid], {"order_line": [[6, 0, [spare]]]})
    assert line_products(oid) == [3] and first not in database.tables["sale.order.line"]
    with database.transaction():
        database.write(orders, [oid], {"order_line": [[5]]})
    assert line_products(oid) == [] and database.tables["sale.order"][oid]["amount_total"] == 0.0
    with pytest.raises(InvalidValue), database.transaction():
        database.write(orders, [oid], {"order_line": [[9, 0, 0]]})
