"""The generic REST connector against its sandbox over loopback HTTP: every paging style, every
auth kind, the HMAC webhook variants, the error mapping, and the located config messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connectors import registry
from connectors.base import (
    AuthExpired,
    ConnectorError,
    OpKind,
    RateLimited,
    Rejected,
    Unavailable,
    WebhookRequest,
    WriteOp,
)
from connectors.rest import SETTINGS_SCHEMA
from connectors.rest import sandbox as sb
from connectors.rest.connector import RestConnector
from connectors.rest.pagination import Position, TimeFormat, id_order, zone
from connectors.rest.paths import DeclarationError
from connectors.rest.webhook import BadSignature, Signing, verify
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config import load_config
from hub.config.model import System
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def rest_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install made before `rest` joined pyproject's entry points does not list it yet."""
    if "rest" in registry.names():
        return
    found = {**registry._entry_points(), "rest": EntryPoint("rest", "connectors.rest", registry.GROUP)}
    monkeypatch.setattr(registry, "_entry_points", lambda: found)


class Env:
    """A started sandbox and the connectors opened on it."""

    def __init__(self, records: int, **extra: Any) -> None:
        self.server: RunningServer = serve(sb.create_app(SandboxOptions(records=records, seed=3, extra=extra)))
        self.base_url = self.server.base_url
        self.opened: list[RestConnector] = []

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def connector(self, style: str = "cursor", page_size: int = 10, auth: dict[str, Any] | None = None,
                  obj: dict[str, Any] | None = None, webhook: dict[str, Any] | None = None,
                  **options: Any) -> RestConnector:
        declared = sb.system_config(self.base_url)
        objects = {"customers": obj or sb.customers_object(style, page_size)}
        system = System("inhouse", "rest", self.base_url, auth if auth is not None else declared["auth"],
                        declared["webhook"] if webhook is None else webhook,
                        {**declared["options"], "objects": objects, **options}, timeout=10.0)
        connector = RestConnector(system)
        self.opened.append(connector)
        return connector

    def list_calls(self) -> int:
        routes = self.control("GET", "stats")["by_route"]
        return sum(n for route, n in routes.items() if "customers" in route and "token" not in route)

    def close(self) -> None:
        for connector in self.opened:
            connector.close()
        self.server.stop()


@pytest.fixture
def env() -> Iterator[Env]:
    started = Env(25)
    yield started
    started.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Env]:
    """One sandbox for the tests that write nothing (starting one per test costs a tenth of a second)."""
    started = Env(25)
    yield started
    started.close()


def _ids(pages: list[Any]) -> list[str]:
    return [str(r["id"]) for page in pages for r in page.records]


def _create(connector: RestConnector, count: int, start: int = 100) -> list[str]:
    ops = [WriteOp(OpKind.CREATE, {"name": f"Customer {n}", "email": f"c{n}@example.com"}, f"hub-{n}",
                   key_field="external_key") for n in range(start, start + count)]
    results = connector.push("customers", ops)
    assert all(r.ok for r in results), [str(r.error) for r in results]
    return [str(r.external_id) for r in results]


# --- pagination ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", sb.LIST_STYLES)
def test_every_paging_style_returns_every_record_once_in_the_fewest_calls(env: Env, style: str) -> None:
    connector = env.connector(style, page_size=10)
    env.control("DELETE", "stats")
    pages = list(connector.pull("customers", None))
    assert _ids(pages) == [str(n) for n in range(1, 26)]  # sorted by (updated_at, id)
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert env.list_calls() == 3
    assert Position.decode(pages[-1].cursor) == Position(
        TimeFormat().parse(env.control("GET", "records/customers")["records"][-1]["updated_at"]) or 0, "25")


@pytest.mark.parametrize("style", sb.LIST_STYLES)
def test_equal_timestamps_across_a_page_boundary_are_neither_lost_nor_repeated(env: Env, style: str) -> None:
    connector = env.connector(style, page_size=10)
    cursor = list(connector.pull("customers", None))[-1].cursor
    fresh = _create(connector, 23)
    env.control("POST", "touch", {"object": "customers", "ids": fresh})  # one timestamp for all 23
    pages = list(connector.pull("customers", cursor))
    assert sorted(_ids(pages), key=int) == fresh
    for stop in range(len(pages) - 1):  # a sync that stopped after any page resumes exactly
        resumed = list(connector.pull("customers", pages[stop].cursor))
        assert sorted(_ids(pages[: stop + 1]) + _ids(resumed), key=int) == fresh
    assert _ids(list(connector.pull("customers", pages[-1].cursor))) == []


def test_the_since_filter_reaches_the_server_so_an_incremental_pull_reads_only_changes(env: Env) -> None:
    connector = env.connector("page", page_size=10)
    cursor = list(connector.pull("customers", None))[-1].cursor
    [changed] = _create(connector, 1)
    env.control("DELETE", "stats")
    assert _ids(list(connector.pull("customers", cursor))) == [changed]
    assert env.list_calls() == 1


def test_epoch_milliseconds_and_a_lookback_work_like_iso_times(env: Env) -> None:
    obj = sb.customers_object("offset", 10)
    obj.update(updated_field="updated_ms", updated_format="epoch_ms")
    obj["since"] = {"param": "updated_since", "format": "epoch_ms", "lookback": 5}
    connector = env.connector(obj=obj)
    cursor = list(connector.pull("customers", None))[-1].cursor
    fresh = _create(connector, 12)
    env.control("POST", "touch", {"object": "customers", "ids": fresh})
    pages = list(connector.pull("customers", cursor))
    assert sorted(_ids(pages), key=int) == fresh
    resumed = list(connector.pull("customers", pages[0].cursor))
    assert sorted(_ids(pages[:1]) + _ids(resumed), key=int) == fresh


def test_an_unsorted_list_moves_the_cursor_only_on_its_last_page(shared: Env) -> None:
    obj = sb.customers_object("page", 10)
    obj["list"]["sorted"] = False
    pages = list(shared.connector(obj=obj).pull("customers", None))
    assert [p.cursor is None for p in pages] == [True, True, False]
    assert len(_ids(pages)) == 25


def test_a_post_list_sends_its_paging_in_the_json_body(shared: Env) -> None:
    obj = sb.customers_object("page_post", 10)
    obj["list"]["body"] = {"filter": {"active": True}}
    pages = list(shared.connector(obj=obj).pull("customers", None))
    assert len(_ids(pages)) == 25


def test_a_next_url_on_another_host_is_refused_before_credentials_leave() -> None:
    app = FastAPI()

    @app.get("/items")
    def items() -> JSONResponse:
        return JSONResponse({"items": [{"id": 1, "updated_at": "2024-01-01T00:00:00Z"}],
                             "next": "http://198.51.100.7/items?page=2"})

    server = serve(app)
    try:
        obj = {"list": {"path": "/items", "records": "items", "pagination": {"style": "next_url", "next_url": "next"}}}
        connector = RestConnector(System("other", "rest", server.base_url, {"kind": "bearer", "token": "t0ken"}, {},
                                         {"objects": {"items": obj}}))
        with pytest.raises(ConnectorError, match="another host"):
            list(connector.pull("items", None))
        connector.close()
    finally:
        server.stop()


# --- auth ----------------------------------------------------------------------------------

AUTHS = {
    "bearer": {"kind": "bearer", "token": sb.BEARER_TOKEN},
    "basic": {"kind": "basic", "username": sb.BASIC_USER, "password": sb.BASIC_PASSWORD},
    "api_key_header": {"kind": "api_key", "name": "X-API-Key", "key": sb.API_KEY},
    "api_key_query": {"kind": "api_key", "in": "query", "name": "api_key", "key": sb.API_KEY},
    "oauth2_basic": {"kind": "oauth2", "token_url": "/oauth/token", "client_id": sb.CLIENT_ID,
                     "client_secret": sb.CLIENT_SECRET},
    "oauth2_body": {"kind": "oauth2", "token_url": "/oauth/token", "client_id": sb.CLIENT_ID,
                    "client_secret": sb.CLIENT_SECRET, "client_auth": "body", "scope": "customers"},
}
WRONG = {"token": "nope", "password": "nope", "key": "nope", "client_secret": "nope"}


@pytest.mark.parametrize("kind", AUTHS)
def test_each_auth_kind_is_accepted_and_wrong_credentials_are_auth_expired(shared: Env, kind: str) -> None:
    good = shared.connector(auth=AUTHS[kind])
    assert len(good.get("customers", ["1", "2"])) == 2
    wrong = {k: WRONG.get(k, v) for k, v in AUTHS[kind].items()}
    with pytest.raises(AuthExpired) as raised:
        shared.connector(auth=wrong).get("customers", ["1"])
    assert "nope" not in str(raised.value)


def test_no_auth_against_a_protected_api_is_auth_expired(shared: Env) -> None:
    with pytest.raises(AuthExpired, match="refused the none credentials"):
        shared.connector(auth={"kind": "none"}).get("customers", ["1"])


def test_an_oauth2_token_is_reused_then_fetched_again_after_a_401(shared: Env) -> None:
    connector = shared.connector()
    for _ in range(3):
        connector.get("customers", ["1"])
    assert connector.client.tokens.fetches == 1
    shared.control("POST", "expire-tokens")
    assert len(connector.get("customers", ["1"])) == 1
    assert connector.client.tokens.fetches == 2


def test_a_short_lived_token_is_renewed_before_it_expires() -> None:
    short = Env(2, token_lifetime=1)
    try:
        connector = short.connector()
        connector.get("customers", ["1"])
        time.sleep(0.6)  # past half the lifetime: the cache fetches anew instead of risking a 401
        connector.get("customers", ["1"])
        assert connector.client.tokens.fetches == 2
        assert short.control("GET", "stats")["by_status"].get("401", 0) == 0
    finally:
        short.close()


def test_an_api_key_in_the_query_never_reaches_an_error_message(shared: Env) -> None:
    connector = shared.connector(auth=AUTHS["api_key_query"])
    shared.control("PUT", "faults", {"next": ["error"]})
    with pytest.raises(Unavailable) as raised:
        connector.get("customers", ["1"])
    assert sb.API_KEY not in str(raised.value) and "service temporarily unavailable" in str(raised.value)


# --- errors --------------------------------------------------------------------------------


def test_rate_limits_carry_retry_after_and_validation_errors_the_vendor_message(env: Env) -> None:
    connector = env.connector()
    env.control("PUT", "faults", {"retry_after": 7, "next": ["rate_limit"]})
    with pytest.raises(RateLimited) as raised:
        connector.get("customers", ["1"])
    assert raised.value.retry_after == 7
    single = sb.customers_object()
    del single["create"]["batch"]
    bad, good = env.connector(obj=single).push("customers", [
        WriteOp(OpKind.CREATE, {"name": "X", "email": "no-at-sign"}, "k1"),
        WriteOp(OpKind.CREATE, {"name": "Y"}, "k2")])
    assert isinstance(bad.error, Rejected) and bad.error.reason == "email: 'no-at-sign' is not an e-mail address"
    assert good.ok and good.created


def test_errors_inside_a_200_answer_are_found_by_errors_ok() -> None:
    app = FastAPI()

    @app.post("/auth/token")
    def token() -> JSONResponse:
        return JSONResponse({"access_token": "tok", "token_type": "Bearer", "expires_in": 7200})

    @app.get("/api/items")
    def items(ids: str = "") -> JSONResponse:
        if ids == "1":
            return JSONResponse({"code": "0", "data": [{"id": 1}]})
        return JSONResponse({"code": "1001", "msg": "单据不存在"})

    server = serve(app)
    try:
        obj = {"list": {"path": "/api/items", "pagination": {"style": "none"}},
               "get": {"path": "/api/items", "ids_param": "ids", "records": "data"}}
        auth = {"kind": "oauth2", "token_url": "/auth/token", "client_id": "app", "client_secret": "s"}
        connector = RestConnector(System("kd", "rest", server.base_url, auth, {},
                                         {"objects": {"items": obj},
                                          "errors": {"ok": "code == '0'", "message": "msg", "code": "code"}}))
        assert connector.get("items", ["1"]) == [{"id": 1}]
        with pytest.raises(Rejected) as raised:
            connector.get("items", ["2"])
        assert (raised.value.reason, raised.value.vendor_code) == ("单据不存在", "1001")
        connector.close()
    finally:
        server.stop()


# --- get and push --------------------------------------------------------------------------


def test_get_by_id_template_leaves_out_missing_records(shared: Env) -> None:
    obj = sb.customers_object()
    obj["get"] = {"path": "/customers/{id}", "record": "data"}
    got = shared.connector(obj=obj).get("customers", ["3", "99999", "5"])
    assert [r["id"] for r in got] == [3, 5]


def test_a_batch_the_server_refuses_as_a_whole_is_written_one_by_one(env: Env) -> None:
    obj = sb.customers_object()
    obj["create"]["batch"]["max_size"] = 60  # more than the server's 50: it refuses the call
    connector = env.connector(obj=obj)
    ops = [WriteOp(OpKind.CREATE, {"name": f"N{n}"} if n != 7 else {"name": ""}, f"k{n}") for n in range(55)]
    results = connector.push("customers", ops)
    assert [r.ok for r in results] == [n != 7 for n in range(55)]
    assert results[7].error is not None and "name" in str(results[7].error)
    assert len(env.control("GET", "records/customers")["records"]) == 25 + 54


def test_upsert_reports_created_from_the_status_when_no_created_path_is_declared(env: Env) -> None:
    obj = sb.customers_object()
    del obj["upsert"]["created"]
    connector = env.connector(obj=obj)
    op = WriteOp(OpKind.UPSERT, {"name": "Upserted"}, "hub-77", key_field="external_key")
    first, second = connector.push("customers", [op]), connector.push("customers", [op])
    assert first[0].created and not second[0].created and first[0].external_id == second[0].external_id


def test_results_keep_the_order_of_mixed_operations(env: Env) -> None:
    connector = env.connector()
    ops = [WriteOp(OpKind.UPDATE, {"name": "Renamed"}, "k", external_id="2"),
           WriteOp(OpKind.CREATE, {"name": "New"}, "k-new"),
           WriteOp(OpKind.UPDATE, {"name": "Ghost"}, "k", external_id="424242")]
    updated, created, missing = connector.push("customers", ops)
    assert updated.ok and updated.external_id == "2" and not updated.created
    assert created.ok and created.created
    assert not missing.ok and isinstance(missing.error, Rejected) and "not found" in missing.error.reason


# --- webhooks ------------------------------------------------------------------------------

BODY = b'{"events":[{"id":"evt_1","type":"customer.updated","object":"customers","data":{"id":5}}]}'


def _mac(algorithm: str, encoding: str, message: bytes, secret: bytes = b"s3cret") -> str:
    digest = hmac.new(secret, message, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("prefix", ["", "sha256="])
@pytest.mark.parametrize("signed", ["body", "timestamp_body"])
def test_hmac_variants_verify_and_a_changed_byte_does_not(algorithm: str, encoding: str, prefix: str,
                                                          signed: str) -> None:
    signing = Signing(header="X-Hub-Sig", algorithm=algorithm, encoding=encoding, prefix=prefix, signed=signed,
                      timestamp_header="X-Ts", separator=":")
    now = 1_700_000_000
    message = f"{now}:".encode() + BODY if signed == "timestamp_body" else BODY
    headers = {"x-hub-sig": prefix + _mac(algorithm, encoding, message), "x-ts": str(now)}
    verify("s3cret", signing, headers, BODY, now=now + 10)
    with pytest.raises(BadSignature):
        verify("s3cret", signing, headers, BODY.replace(b"5", b"6"), now=now + 10)
    with pytest.raises(BadSignature):
        verify("other", signing, headers, BODY, now=now + 10)


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "no X-Signature"),
    ({"X-Signature": "sha256=00"}, "no X-Timestamp"),
    ({"X-Signature": "md5=00", "X-Timestamp": "1700000000"}, "prefix"),
    ({"X-Signature": "sha256=zz", "X-Timestamp": "yesterday"}, "not a Unix time"),
    ({"X-Signature": "sha256=" + _mac("sha256", "hex", b"1699999000." + BODY), "X-Timestamp": "1699999000"}, "300 s"),
    ({"X-Signature": "sha256=" + _mac("sha256", "hex", b"1700001000." + BODY), "X-Timestamp": "1700001000"}, "300 s"),
])
def test_missing_malformed_stale_and_future_signatures_are_refused(headers: dict[str, str], reason: str) -> None:
    signing = Signing(prefix="sha256=", signed="timestamp_body")
    with pytest.raises(BadSignature, match=reason):
        verify("s3cret", signing, headers, BODY, now=1_700_000_000)


def test_timestamps_in_milliseconds() -> None:
    signing = Signing(signed="timestamp_body", timestamp_unit="milliseconds")
    sent = "1700000000500"
    headers = {"X-Signature": _mac("sha256", "hex", f"{sent}.".encode() + BODY), "X-Timestamp": sent}
    verify("s3cret", signing, headers, BODY, now=1_700_000_100)
    with pytest.raises(BadSignature):
        verify("s3cret", signing, headers, BODY, now=1_700_000_400)


def _request(body: bytes, signing: Signing, secret: str = "s3cret") -> WebhookRequest:
    now = str(int(time.time()))
    message = f"{now}{signing.separator}".encode() + body if signing.signed == "timestamp_body" else body
    headers = {signing.header: signing.prefix + _mac(signing.algorithm, signing.encoding, message, secret.encode()),
               signing.timestamp_header: now}
    return WebhookRequest("POST", "http://hub/webhooks/inhouse", headers, {}, body)


def test_the_connector_parses_events_where_the_declaration_says(shared: Env) -> None:
    hook = {"secret": "s3cret", "signature": {"algorithm": "sha512", "encoding": "base64"},
            "events": "@", "record_id": "payload.customerId", "default_object": "customers",
            "reply": {"status": 202, "body": '{"received":true}', "content_type": "application/json"}}
    connector = shared.connector(webhook=hook)
    body = json.dumps({"payload": {"customerId": 42}, "action": "edit"}).encode()
    reply = connector.webhook(_request(body, Signing(algorithm="sha512", encoding="base64")))
    assert (reply.status, reply.body, reply.content_type) == (202, b'{"received":true}', "application/json")
    [event] = reply.events
    assert (event.object, event.external_id, event.kind) == ("customers", "42", "changed")
    assert event.event_id.startswith("sha256:")  # no id declared: a hash of the event, stable for redeliveries
    assert connector.webhook(_request(body, Signing(algorithm="sha512", encoding="base64"))).events[0] == event


def test_a_signed_webhook_naming_no_record_is_a_400_and_an_unsigned_one_a_401(shared: Env) -> None:
    connector = shared.connector(webhook={"secret": "s3cret", "record_id": "id", "default_object": "customers"})
    assert connector.webhook(_request(b'{"other": 1}', Signing())).status == 400
    assert connector.webhook(_request(b"not json", Signing())).status == 400
    unsigned = WebhookRequest("POST", "http://hub/webhooks/inhouse", {}, {}, b'{"id": 1}')
    reply = connector.webhook(unsigned)
    assert (reply.status, reply.events) == (401, [])
    assert shared.connector(webhook={}).webhook(unsigned).status == 404


def test_the_sandbox_signs_its_webhooks_as_declared(env: Env) -> None:
    received: list[WebhookRequest] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        received.append(WebhookRequest("POST", str(request.url), dict(request.headers), {}, await request.body()))
        return JSONResponse({})

    receiver = serve(app)
    try:
        env.control("PUT", "webhooks", {"url": f"{receiver.base_url}/hook"})
        connector = env.connector()
        [result] = connector.push("customers", [WriteOp(OpKind.UPSERT, {"name": "Hooked"}, "hub-h",
                                                       key_field="external_key")])
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        reply = connector.webhook(received[0])
        assert reply.status == 200
        [event] = reply.events
        assert (event.object, event.external_id, event.kind) == ("customers", result.external_id, "customer.created")
    finally:
        receiver.stop()


# --- time, ids, declaration ----------------------------------------------------------------


def test_time_formats_parse_and_format_in_their_zone() -> None:
    shanghai = TimeFormat("%Y-%m-%d %H:%M:%S", zone("Asia/Shanghai", "tz"))
    us = shanghai.parse("2024-05-01 16:00:00")
    assert us == int(datetime(2024, 5, 1, 8, tzinfo=UTC).timestamp()) * 1_000_000
    assert shanghai.format_value(us) == "2024-05-01 16:00:00"
    assert TimeFormat("epoch_seconds").format_value(us + 999_999) == "1714550400"
    assert TimeFormat("epoch_ms").parse(1714550400123) == 1714550400123000
    assert TimeFormat("iso8601").format_value(1714550400123000) == "2024-05-01T08:00:00.123Z"
    assert TimeFormat("iso8601", zone("+08:00", "tz")).format_value(us) == "2024-05-01T16:00:00.000+08:00"
    assert TimeFormat("iso8601").parse("2024-05-01T16:00:00+08:00") == us
    assert TimeFormat("iso8601").parse("garbage") is None


def test_ids_sort_numerically_when_they_are_numbers() -> None:
    assert sorted(["10", "9", "A-2", "A-10"], key=id_order) == ["9", "10", "A-10", "A-2"]
    with pytest.raises(ConnectorError, match="not written by this connector"):
        Position.decode("2024-05-01")


def test_a_declaration_the_schema_cannot_check_fails_at_start_up_with_the_setting_name(shared: Env) -> None:
    obj = sb.customers_object()
    obj["list"]["records"] = "data[?"
    with pytest.raises(DeclarationError, match=r"options.objects.customers.list.records: 'data\[\?'"):
        shared.connector(obj=obj)
    obj = sb.customers_object()
    obj["timezone"] = "Mars/Olympus"
    with pytest.raises(DeclarationError, match="unknown time zone 'Mars/Olympus'"):
        shared.connector(obj=obj)


def test_the_sandbox_declaration_is_valid_and_its_limits_are_the_declared_sizes(shared: Env) -> None:
    declared = sb.system_config(shared.base_url)
    for block in ("auth", "webhook", "options"):
        jsonschema.Draft202012Validator(SETTINGS_SCHEMA[block]).validate(declared[block])
    connector = shared.connector(page_size=40)
    assert (connector.limits.page_size, connector.limits.batch_size) == (40, sb.BATCH_LIMIT)


# --- config messages -----------------------------------------------------------------------

BROKEN = """\
version: 1
systems:
  gw:
    connector: rest
    base_url: https://gw.example.cn
    auth:
      kind: bearer
      tokne: abc
      username: someone
    webhook:
      signature:
        algorithm: sha384
        encodng: hex
      events: events
    options:
      objects:
        customers:
          updated_format: yyyy-mm-dd
          timezone: Asia Shanghai
          list:
            path: customers
            pagination:
              style: pages
          get:
            path: /customers
          update:
            path: /customers
        orders:
          list:
            path: /orders
            pagination: {style: cursor, cursor_param: after}
          create:
            path: /orders
            batch: {path: /orders/batch, results: results}
  gw2:
    connector: rest
    auth: {kind: oauth2, client_id: x}
  gw3:
    connector: rest
    auth: {kind: api_key, key: k, name: X-Key, in: cookie}
    options:
      objects: {}
flows: {}
"""

EXPECTED = """\
6:5: missing required key 'token' (at systems.gw.auth)
8:7: unknown key 'tokne' (did you mean 'token'?) (at systems.gw.auth.tokne)
9:7: is not a setting of auth kind 'bearer' (it takes token), got 'username' (at systems.gw.auth.username)
10:5: missing required key 'record_id' (at systems.gw.webhook)
10:5: missing required key 'secret' (at systems.gw.webhook)
12:20: 'sha384' is not one of: sha1, sha256, sha512 (did you mean 'sha1'?) (at systems.gw.webhook.signature.algorithm)
13:9: unknown key 'encodng' (did you mean 'encoding'?) (at systems.gw.webhook.signature.encodng)
18:27: must be iso8601, epoch_seconds, epoch_ms or a strftime format such as '%Y-%m-%d %H:%M:%S', got 'yyyy-mm-dd' \
(at systems.gw.options.objects.customers.updated_format)
19:21: must be an IANA time zone such as Asia/Shanghai, UTC or an offset such as +08:00, got 'Asia Shanghai' \
(at systems.gw.options.objects.customers.timezone)
21:19: must be a path starting with / (relative to base_url) or a full http(s) URL, got 'customers' \
(at systems.gw.options.objects.customers.list.path)
23:22: 'pages' is not one of: page, offset, cursor, next_url, link_header, none (did you mean 'page'?) \
(at systems.gw.options.objects.customers.list.pagination.style)
25:19: must contain {id}, or set ids_param for a list endpoint, got '/customers' \
(at systems.gw.options.objects.customers.get.path)
27:19: must contain {id} where the record's id goes, got '/customers' (at systems.gw.options.objects.customers.update.path)
31:13: missing required key 'next_cursor' (at systems.gw.options.objects.orders.list.pagination)
34:13: missing required key 'max_size' (at systems.gw.options.objects.orders.create.batch)
36:5: missing required key 'options' (rest needs objects) (at systems.gw2)
37:5: missing required key 'client_secret' (at systems.gw2.auth)
37:5: missing required key 'token_url' (at systems.gw2.auth)
40:52: 'cookie' is not one of: header, query (at systems.gw3.auth.in)
42:16: must not be empty (at systems.gw3.options.objects)
"""


def test_a_broken_rest_declaration_gets_every_located_message(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(BROKEN, "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={})
    assert [str(p) for p in caught.value.problems] == [f"{config}:{line}" for line in EXPECTED.splitlines()]


def test_a_secret_in_a_wrong_place_is_not_echoed(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(BROKEN.replace("username: someone", "password: hunter2-very-secret"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={})
    assert "hunter2" not in str(caught.value)
    assert "is not a setting of auth kind 'bearer' (it takes token), got 'password'" in str(caught.value)


def test_the_example_config_checks_and_runs_against_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    hub = load_config("config/rest-example.yaml", env={})
    system = hub.systems["inhouse"]
    assert hub.flows["customers-inhouse-to-erp"].source.mapping.connector == "rest"
    started = Env(12)
    try:
        base = started.base_url
        moved = System(system.name, system.connector, base, system.auth, system.webhook, system.options, timeout=10)
        connector = RestConnector(moved)
        assert sum(len(p.records) for p in connector.pull("customers", None)) == 12
        connector.close()
    finally:
        started.close()


# --- security review: empty secrets, NaN timestamps, partial pushes, non-JSON answers --------


def test_an_empty_webhook_secret_refuses_a_request_signed_with_the_empty_key(shared: Env) -> None:
    from hub.config.secrets import Secret

    hook = {**sb.webhook_config(), "secret": Secret("", "${REST_HOOK:-}")}
    connector = shared.connector(webhook=hook)
    forged = _request(BODY, Signing.of(hook["signature"]), secret="")
    reply = connector.webhook(forged)
    assert reply.status in (401, 404) and reply.events == []
    with pytest.raises(BadSignature):
        verify("", Signing(), {"X-Signature": _mac("sha256", "hex", BODY, b"")}, BODY)


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-inf"])
def test_a_timestamp_that_is_not_a_finite_number_is_refused(stamp: str) -> None:
    """NaN compares false with everything, so `abs(now - nan) > tolerance` let it through."""
    signing = Signing(signed="timestamp_body")
    headers = {"X-Signature": _mac("sha256", "hex", f"{stamp}.".encode() + BODY), "X-Timestamp": stamp}
    with pytest.raises(BadSignature):
        verify("s3cret", signing, headers, BODY, now=1_700_000_000)


def test_a_push_failing_after_a_written_batch_hands_back_only_the_unwritten_records(env: Env) -> None:
    connector = env.connector()
    real_send = connector.client.send
    batches: list[int] = []

    def send(method: str, path: str, **kwargs: Any) -> requests.Response:
        response = real_send(method, path, **kwargs)
        if path.endswith("/batch"):
            batches.append(len(kwargs["json"]["customers"]))
            env.control("PUT", "faults", {"next": ["error"]})  # the next batch meets an outage
        return response

    connector.client.send = send  # type: ignore[method-assign]
    before = len(env.control("GET", "records/customers")["records"])
    ops = [WriteOp(OpKind.CREATE, {"name": f"Customer {n}"}, f"hub-{n}", key_field="external_key") for n in range(60)]
    results = connector.push("customers", ops)
    assert batches == [sb.BATCH_LIMIT]
    assert all(r.ok and r.created for r in results[:sb.BATCH_LIMIT])
    assert all(isinstance(r.error, Unavailable) for r in results[sb.BATCH_LIMIT:])
    assert len(env.control("GET", "records/customers")["records"]) == before + sb.BATCH_LIMIT


def test_a_get_answer_that_is_not_json_is_unavailable(shared: Env) -> None:
    connector = shared.connector()

    def send(method: str, path: str, **_: Any) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = 200, b"<html>gateway</html>"
        response.url = f"{shared.base_url}{path}"
        response.request = requests.Request(method, response.url).prepare()
        return response

    connector.client.send = send  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="not JSON"):
        connector.get("customers", ["1", "2"])
