"""Feishu specifics over real HTTP on loopback: the callback cryptography (Feishu's worked
example byte for byte, and lark-oapi agreeing with us), every way a callback is refused, the
URL check, the sandbox's decide -> callback -> connector path with Feishu's retries, Feishu's
own SDK against the sandbox, withdrawal, and the shipped mappings through the connector."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors.base import OpKind, RateLimited, Rejected, Unavailable, WebhookReply, WebhookRequest, WriteOp
from connectors.feishu import Connector, crypto
from connectors.feishu import sandbox as feishu_sandbox
from connectors.feishu.connector import Kind, Widget, decode_form, encode_form
from connectors.feishu.webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config.model import System
from hub.mapping import load_mapping

WORKED_KEY = "test key"
WORKED_ENCRYPT = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="
KEY = feishu_sandbox.ENCRYPT_KEY


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Env:
    server: RunningServer
    connector: Connector
    base_url: str

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.base_url}/_sandbox/{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def codes(self, kind: str = "contract") -> list[str]:
        return [r["instance_code"] for r in self.control("GET", f"records/{kind}")["records"]]

    def instance(self, code: str, kind: str = "contract") -> dict[str, Any]:
        return next(r for r in self.control("GET", f"records/{kind}")["records"] if r["instance_code"] == code)


def _system(base_url: str, **options: Any) -> System:
    declared = feishu_sandbox.system_config(base_url)
    return System(name="oa", connector="feishu", base_url=base_url, auth=declared["auth"],
                  webhook=declared["webhook"], options={**declared["options"], **options}, timeout=10.0)


@pytest.fixture
def env() -> Iterator[Env]:
    server = serve(feishu_sandbox.create_app(SandboxOptions(records=6, seed=3, webhook_retry_scale=0.00005)))
    connector = Connector(_system(server.base_url, page_size=4))
    yield Env(server, connector, server.base_url)
    connector.close()
    server.stop()


@pytest.fixture(scope="module")
def hook() -> Iterator[Connector]:
    """A connector for callback tests that need no sandbox (nothing listens at its base URL)."""
    connector = Connector(_system("http://127.0.0.1:9"))
    yield connector
    connector.close()


@dataclass
class HubReceiver:
    """A stand-in for the hub's webhook route: connector.webhook's reply, answered as is.
    `fail_first` answers 500 to that many deliveries first (the hub being down)."""

    connector: Connector
    fail_first: int = 0
    replies: list[WebhookReply] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/oa")
        async def hook(request: Request) -> Response:
            body = await request.body()
            if self.fail_first > 0:
                self.fail_first -= 1
                return Response("down", status_code=500)
            reply = self.connector.webhook(WebhookRequest("POST", str(request.url), dict(request.headers),
                                                          dict(request.query_params), body))
            self.replies.append(reply)
            self.arrived.set()
            return Response(reply.body, status_code=reply.status, media_type=reply.content_type)

        return app


def _signed(payload: dict[str, Any], *, encrypt_key: str = KEY, sign_key: str = KEY,
            timestamp: str | None = None, encrypted: str | None = None) -> WebhookRequest:
    """A callback built as Feishu builds it (optionally with a foreign key or a given ciphertext)."""
    if encrypted is None:
        encrypted = crypto.encrypt(encrypt_key, json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    body = json.dumps({"encrypt": encrypted}).encode("utf-8")
    stamp, nonce = timestamp or str(int(time.time())), "a1b2c3d4"
    headers = {TIMESTAMP_HEADER: stamp, NONCE_HEADER: nonce,
               SIGNATURE_HEADER: crypto.signature(stamp, nonce, sign_key, body), "Content-Type": "application/json"}
    return WebhookRequest("POST", "http://hub/webhooks/oa", headers, {}, body)


def _status_event(code: str, status: str = "APPROVED", event_uuid: str = "9f1c2b3a4d5e6f708192a3b4c5d6e7f8",
                  approval_code: str | None = None, app_id: str = feishu_sandbox.APP_ID) -> dict[str, Any]:
    return {"uuid": event_uuid, "token": feishu_sandbox.VERIFICATION_TOKEN, "ts": "1714550400.1234567",
            "type": "event_callback",
            "event": {"app_id": app_id, "tenant_key": feishu_sandbox.TENANT_KEY, "type": "approval_instance",
                      "approval_code": approval_code or feishu_sandbox.BY_KIND["contract"].code,
                      "instance_code": code, "status": status, "operate_time": "1714550400000"}}


# --- the worked example and the SDK's crypto -----------------------------------------------


def test_feishu_worked_example_decrypts_and_re_encrypts_byte_for_byte() -> None:
    assert crypto.decrypt(WORKED_KEY, WORKED_ENCRYPT) == b"hello world"
    iv, _ = crypto.split(WORKED_ENCRYPT)
    assert crypto.encrypt(WORKED_KEY, b"hello world", iv) == WORKED_ENCRYPT


def test_lark_oapi_decrypts_what_we_encrypt_and_signs_as_we_do() -> None:
    from lark_oapi.core.model import RawRequest
    from lark_oapi.core.utils import AESCipher
    from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

    assert AESCipher(WORKED_KEY).decrypt_str(WORKED_ENCRYPT) == "hello world"
    text = "审批通过 ✓ " * 7
    assert AESCipher(KEY).decrypt_str(crypto.encrypt(KEY, text.encode("utf-8"))) == text
    request = _signed(_status_event("X"))
    raw = RawRequest()
    raw.headers, raw.body = dict(request.headers), request.body
    EventDispatcherHandler._verify_sign(EventDispatcherHandler(), raw, KEY)  # raises when it disagrees
    raw.headers[SIGNATURE_HEADER] = "0" * 64
    with pytest.raises(Exception, match="signature"):
        EventDispatcherHandler._verify_sign(EventDispatcherHandler(), raw, KEY)


def test_lark_oapi_dispatcher_accepts_a_sandbox_callback_and_sees_the_event_we_see(env: Env) -> None:
    import lark_oapi as lark
    from lark_oapi.core.model import RawRequest

    code = env.codes()[0]
    event = feishu_sandbox._status_event(env.instance(code), "APPROVED", 1714550400000)
    call = feishu_sandbox.signed_call("http://hub/webhooks/oa", event)
    seen: list[dict[str, Any]] = []
    handler = (lark.EventDispatcherHandler.builder(KEY, feishu_sandbox.VERIFICATION_TOKEN)
               .register_p1_customized_event("approval_instance", lambda e: seen.append(e.event)).build())
    raw = RawRequest()
    raw.uri, raw.headers, raw.body = "/webhooks/oa", call.headers, call.body
    answer = handler.do(raw)
    assert answer.status_code == 200, answer.content
    reply = env.connector.webhook(WebhookRequest("POST", call.url, call.headers, {}, call.body))
    assert reply.status == 200 and json.loads(answer.content) == json.loads(reply.body) == {"msg": "success"}
    [ours] = reply.events
    assert seen[0]["instance_code"] == ours.external_id == code
    assert ours.event_id == event["uuid"] and ours.object == "contract" and ours.payload["status"] == "APPROVED"


# --- callbacks: accepted, refused ----------------------------------------------------------


def test_a_signed_encrypted_status_callback_becomes_one_event(hook: Connector) -> None:
    reply = hook.webhook(_signed(_status_event("INST-1")))
    assert (reply.status, json.loads(reply.body)) == (200, {"msg": "success"})
    [event] = reply.events
    assert (event.event_id, event.object, event.external_id) == ("9f1c2b3a4d5e6f708192a3b4c5d6e7f8", "contract", "INST-1")


def test_a_replayed_delivery_gives_the_same_event_id_for_the_inbox_to_drop(hook: Connector) -> None:
    payload = _status_event("INST-2")
    first, second = hook.webhook(_signed(payload)), hook.webhook(_signed(payload))
    assert first.status == second.status == 200
    assert [e.event_id for e in first.events] == [e.event_id for e in second.events] == [payload["uuid"]]


def _bad_padding_ciphertext() -> str:
    """A whole-block ciphertext under the right key whose plaintext ends in an invalid pad byte."""
    iv = bytes(range(16))
    block = b'{"a":1}' + b"\x00" * 8 + b"\x07"  # 16 bytes ending in 7 preceded by zeros: bad PKCS#7
    encryptor = Cipher(algorithms.AES(crypto.aes_key(KEY)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(block) + encryptor.finalize()).decode()


def _truncated_ciphertext() -> str:
    whole = base64.b64decode(crypto.encrypt(KEY, json.dumps(_status_event("X")).encode()))
    return base64.b64encode(whole[:-5]).decode()


@pytest.mark.parametrize("request_of", [
    pytest.param(lambda: _tamper(_signed(_status_event("X"))), id="wrong-signature"),
    pytest.param(lambda: _signed(_status_event("X"), encrypt_key="another key", sign_key="another key"), id="wrong-key"),
    pytest.param(lambda: _signed(_status_event("X"), encrypt_key="another key"), id="wrong-encryption-key"),
    pytest.param(lambda: _signed(_status_event("X"), timestamp=str(int(time.time()) - 301)), id="stale"),
    pytest.param(lambda: _signed(_status_event("X"), timestamp=str(int(time.time()) + 3600)), id="from-the-future"),
    pytest.param(lambda: _signed({}, encrypted=_truncated_ciphertext()), id="truncated-ciphertext"),
    pytest.param(lambda: _signed({}, encrypted=_bad_padding_ciphertext()), id="wrong-padding"),
    pytest.param(lambda: _signed({}, encrypted="not*base64!"), id="not-base64"),
    pytest.param(lambda: _signed(_status_event("X", app_id="cli_someone_else")), id="another-app"),
    pytest.param(lambda: _signed({**_status_event("X"), "token": "forged"}), id="wrong-verification-token"),
    pytest.param(lambda: _unsigned(_signed(_status_event("X"))), id="unsigned-event"),
])
def test_refused_callbacks_get_401_and_no_events(hook: Connector, request_of: Any) -> None:
    reply = hook.webhook(request_of())
    assert reply.status == 401, reply.body
    assert reply.events == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"encrypt": 5}', b'{"hello": "world"}'])
def test_bodies_that_are_not_feishu_callbacks_get_400(hook: Connector, body: bytes) -> None:
    reply = hook.webhook(WebhookRequest("POST", "/", {}, {}, body))
    assert reply.status == 400 and reply.events == []


def test_an_event_without_a_uuid_gets_an_id_from_instance_status_and_time(hook: Connector) -> None:
    payload = {k: v for k, v in _status_event("INST-3").items() if k != "uuid"}
    first, second = hook.webhook(_signed(payload)), hook.webhook(_signed(payload))
    rejected = hook.webhook(_signed({**payload, "event": {**payload["event"], "status": "REJECTED"}}))
    [a], [b], [c] = first.events, second.events, rejected.events
    assert a.event_id == b.event_id != c.event_id and len(a.event_id) == 32


def test_an_event_for_an_unconfigured_approval_code_is_acknowledged_without_events(hook: Connector) -> None:
    reply = hook.webhook(_signed(_status_event("X", approval_code="00000000-UNKNOWN")))
    assert reply.status == 200 and reply.events == []


def test_url_verification_is_answered_with_exactly_the_challenge(hook: Connector) -> None:
    check = {"challenge": "ajls384kdjx98XX", "token": feishu_sandbox.VERIFICATION_TOKEN, "type": "url_verification"}
    for request in (_signed(check), _unsigned(_signed(check))):  # signed or not, as lark-oapi accepts it
        reply = hook.webhook(request)
        assert (reply.status, reply.body, reply.events) == (200, b'{"challenge":"ajls384kdjx98XX"}', [])
        assert reply.content_type.startswith("application/json")
    forged = hook.webhook(_signed({**check, "token": "forged"}))
    assert forged.status == 401 and b"ajls" not in forged.body
    stale = hook.webhook(_signed(check, timestamp="1500000000"))
    assert stale.status == 401


def _tamper(request: WebhookRequest) -> WebhookRequest:
    headers = dict(request.headers)
    headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER][:-1] + ("0" if headers[SIGNATURE_HEADER][-1] != "0" else "1")
    return WebhookRequest(request.method, request.url, headers, request.query, request.body)


def _unsigned(request: WebhookRequest) -> WebhookRequest:
    skip = {TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER}
    return WebhookRequest(request.method, request.url, {k: v for k, v in request.headers.items() if k not in skip},
                          request.query, request.body)


# --- the sandbox's deliveries through a receiver -------------------------------------------


def _deliveries(env: Env) -> list[dict[str, Any]]:
    return env.control("GET", "webhooks")["deliveries"]  # type: ignore[no-any-return]


def _wait_delivered(env: Env, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _deliveries(env)
        if len(found) >= count and all(d["status"] != "pending" for d in found):
            return found
        time.sleep(0.02)
    raise AssertionError(f"deliveries not finished: {_deliveries(env)}")


def test_decide_calls_back_and_a_failed_delivery_is_retried_until_the_hub_answers_200(env: Env) -> None:
    receiver = HubReceiver(env.connector, fail_first=2)
    server = serve(receiver.app())
    try:
        env.control("PUT", "webhooks", {"url": f"{server.base_url}/webhooks/oa"})
        code = env.codes()[2]
        env.control("POST", f"instances/{code}/decide", {"action": "refuse", "comment": "价格低于底价，不同意"})
        [delivery] = _wait_delivered(env, 1)
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("delivered", 3, 200)
        [reply] = receiver.replies
        [event] = reply.events
        assert (event.external_id, event.object, event.payload["status"]) == (code, "contract", "REJECTED")
        [record] = env.connector.get("contract", [code])
        assert record["status"] == "REJECTED" and record["comment_list"][0]["comment"] == "价格低于底价，不同意"
    finally:
        server.stop()


def test_a_hub_that_refuses_the_signature_makes_feishu_retry_and_give_up(env: Env) -> None:
    wrong = Connector(System(name="oa", connector="feishu", base_url=env.base_url,
                             auth=_system(env.base_url).auth, webhook={"encrypt_key": "a different key"},
                             options=_system(env.base_url).options))
    server = serve(HubReceiver(wrong).app())
    try:
        env.control("PUT", "webhooks", {"url": f"{server.base_url}/webhooks/oa"})
        env.control("POST", f"instances/{env.codes()[0]}/decide", {"action": "agree"})
        [delivery] = _wait_delivered(env, 1)
        assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == ("failed", 5, 401)
    finally:
        wrong.close()
        server.stop()


def test_the_sandbox_url_check_is_answered_by_the_connector(env: Env) -> None:
    receiver = HubReceiver(env.connector)
    server = serve(receiver.app())
    try:
        env.control("PUT", "webhooks", {"url": f"{server.base_url}/webhooks/oa"})
        sent = env.control("POST", "verify-url", {"challenge": "c-12345"})
        env.control("POST", "verify-url", {"challenge": "c-unsigned", "signed": False})
        found = _wait_delivered(env, 2)
        assert [d["status"] for d in found] == ["delivered", "delivered"] and sent["challenge"] == "c-12345"
        assert [r.body for r in receiver.replies] == [b'{"challenge":"c-12345"}', b'{"challenge":"c-unsigned"}']
    finally:
        server.stop()


# --- Feishu's own SDK against the sandbox ---------------------------------------------------


def test_lark_oapi_client_gets_a_token_and_creates_lists_gets_and_cancels_instances(env: Env) -> None:
    import lark_oapi as lark
    from lark_oapi.api.approval.v4 import (
        CancelInstanceRequest,
        CreateInstanceRequest,
        GetInstanceRequest,
        InstanceCancel,
        InstanceCreate,
        ListInstanceRequest,
    )
    from lark_oapi.core.token.manager import TokenManager

    TokenManager.cache.cache.pop(f"self_tenant_token:{feishu_sandbox.APP_ID}", None)  # tokens of other sandboxes
    client = lark.Client.builder().app_id(feishu_sandbox.APP_ID).app_secret(feishu_sandbox.APP_SECRET) \
        .domain(env.base_url).build()
    definition = feishu_sandbox.BY_KIND["overtime"]
    applicant = feishu_sandbox.DEFAULT_APPLICANT
    form = [{"id": "widget_ot_start", "type": "date", "value": "2024-05-11T09:00:00+08:00"},
            {"id": "widget_ot_end", "type": "date", "value": "2024-05-11T17:00:00+08:00"},
            {"id": "widget_ot_hours", "type": "number", "value": 8},
            {"id": "widget_ot_reason", "type": "textarea", "value": "周六版本上线保障"}]
    created = client.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(
        InstanceCreate.builder().approval_code(definition.code).open_id(applicant.open_id)
        .form(json.dumps(form, ensure_ascii=False)).uuid("7C468A54-8745-2245-9675-08B7C63E7A87").build()).build())
    assert created.success(), (created.code, created.msg)
    code = created.data.instance_code
    again = client.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(
        InstanceCreate.builder().approval_code(definition.code).open_id(applicant.open_id)
        .form(json.dumps(form, ensure_ascii=False)).uuid("7c468a54-8745-2245-9675-08b7c63e7a87").build()).build())
    assert again.code == 60012  # uuids are compared case-insensitively

    got = client.approval.v4.instance.get(GetInstanceRequest.builder().instance_id(code).build())
    assert got.success() and got.data.status == "PENDING" and json.loads(got.data.form)[2]["value"] == 8
    now = int(time.time() * 1000)
    listed = client.approval.v4.instance.list(ListInstanceRequest.builder().approval_code(definition.code)
                                              .start_time(now - 60_000).end_time(now + 60_000).page_size(100).build())
    assert listed.success() and code in listed.data.instance_code_list
    cancelled = client.approval.v4.instance.cancel(CancelInstanceRequest.builder().user_id_type("open_id").request_body(
        InstanceCancel.builder().approval_code(definition.code).instance_code(code).user_id(applicant.open_id).build())
        .build())
    assert cancelled.success(), (cancelled.code, cancelled.msg)
    assert env.instance(code, "overtime")["status"] == "CANCELED"
    missing = client.approval.v4.instance.get(GetInstanceRequest.builder().instance_id("NO-SUCH-INSTANCE").build())
    assert missing.code == 1390003

    env.control("POST", "expire-tokens")
    expired = client.approval.v4.instance.get(GetInstanceRequest.builder().instance_id(code).build())
    assert expired.code == 99991663  # the SDK caches the token for its lifetime: Feishu's expiry answer


# --- pull, push, errors ---------------------------------------------------------------------


def test_pull_pages_resume_exactly_and_see_decisions_of_old_instances(env: Env) -> None:
    pages = list(env.connector.pull("contract", None))
    assert [len(p.records) for p in pages] == [4, 2]
    ids = [r["instance_code"] for p in pages for r in p.records]
    rest = [r["instance_code"] for p in env.connector.pull("contract", pages[0].cursor) for r in p.records]
    assert rest == ids[4:]
    env.control("POST", f"instances/{ids[0]}/decide", {"action": "agree", "comment": "同意"})
    changed = [r for p in env.connector.pull("contract", pages[-1].cursor) for r in p.records]
    assert [(r["instance_code"], r["status"]) for r in changed] == [(ids[0], "APPROVED")]


def test_withdrawal_cancels_and_other_updates_make_no_call(env: Env) -> None:
    code = env.codes()[1]
    before = env.control("GET", "stats")["calls"]
    [kept] = env.connector.push("contract", [WriteOp(OpKind.UPDATE, {"form_values": {"amount": "1"}}, "k", code)])
    assert kept.ok and kept.external_id == code and env.control("GET", "stats")["calls"] == before
    [withdrawn] = env.connector.push("contract", [WriteOp(OpKind.UPDATE, {"status": "CANCELED"}, "k", code)])
    assert withdrawn.ok and env.instance(code)["status"] == "CANCELED"
    [again] = env.connector.push("contract", [WriteOp(OpKind.UPDATE, {"status": "CANCELED"}, "k", code)])
    assert again.ok
    env.control("POST", f"instances/{env.codes()[2]}/decide", {"action": "agree"})
    [late] = env.connector.push("contract", [WriteOp(OpKind.UPDATE, {"status": "CANCELED"}, "k", env.codes()[2])])
    assert not late.ok and isinstance(late.error, Rejected) and "cannot be cancelled" in late.error.reason


def test_rate_limits_carry_the_gateway_wait_and_server_errors_are_unavailable(env: Env) -> None:
    env.control("PUT", "faults", {"retry_after": 7, "next": ["rate_limit"]})
    with pytest.raises(RateLimited) as limited:
        env.connector.get("contract", env.codes()[:1])
    assert limited.value.retry_after == 7.0 and "99991400" in str(limited.value)
    env.control("PUT", "faults", {"next": ["error"]})
    with pytest.raises(Unavailable, match="1395001"):
        env.connector.get("contract", env.codes()[:1])


@pytest.mark.parametrize("kind", ["contract", "leave", "overtime"])
def test_shipped_mappings_round_trip_through_the_connector_and_the_sandbox(env: Env, kind: str) -> None:
    mapping = load_mapping(f"mappings/feishu/{kind}.approval.yaml")
    forms = {
        "contract": {"customer_name": "上海华信科技有限公司", "order_number": "SO-2024-00042", "amount": "128000.50",
                     "currency": "CNY"},
        "leave": {"leave_type": "年假", "start": "2024-05-13T01:00:00Z", "end": "2024-05-15T10:00:00Z", "days": "2.5",
                  "reason": "回老家探亲"},
        "overtime": {"start": "2024-05-11T01:00:00Z", "end": "2024-05-11T09:00:00Z", "hours": "7.5",
                     "reason": "周六版本上线保障"},
    }
    approval = {"id": f"hub-{kind}-1", "kind": kind, "status": "pending", "form": forms[kind],
                "applicant": {"user_id": feishu_sandbox.USERS[3].open_id}}
    if kind == "contract":
        approval["subject"] = {"entity": "order", "id": "order-42"}
    payload = mapping.to_vendor(approval)
    assert payload.errors == []
    [result] = env.connector.push(kind, [WriteOp(OpKind.CREATE, payload.value, approval["id"], key_field="uuid")])
    assert result.ok and result.created
    [record] = env.connector.get(kind, [str(result.external_id)])
    back = mapping.to_canonical(record)
    assert back.errors == []
    assert back.value["form"] == forms[kind] and back.value["status"] == "pending"
    assert back.value["applicant"] == approval["applicant"] and mapping.hub_key(record) == approval["id"]
    assert back.value.get("subject") == approval.get("subject")


def test_form_layout_encoding_puts_parts_where_feishu_wants_them() -> None:
    leave = Kind("leave", "L", {"start": Widget("period", "dateInterval", "start"),
                                "end": Widget("period", "dateInterval", "end"),
                                "days": Widget("period", "dateInterval", "interval"),
                                "amount": Widget("money", "amount"), "currency": Widget("money", "amount", "currency")})
    values = {"start": "2024-05-13T09:00:00+08:00", "end": "2024-05-15T18:00:00+08:00", "days": "3",
              "amount": "12.50", "currency": "EUR"}
    encoded = encode_form(leave, values)
    assert json.loads(encoded) == [
        {"id": "period", "type": "dateInterval",
         "value": {"start": "2024-05-13T09:00:00+08:00", "end": "2024-05-15T18:00:00+08:00", "interval": 3}},
        {"id": "money", "type": "amount", "value": 12.5, "currency": "EUR"}]
    assert decode_form(leave, encoded) == {**values, "days": 3, "amount": 12.5}
    with pytest.raises(Rejected, match="not a number"):
        encode_form(leave, {"amount": "十二元"})
    with pytest.raises(Rejected, match="not in the leave form layout"):
        encode_form(leave, {"colour": "red"})


# --- refusals leak nothing (security review) -----------------------------------------------


def _unsigned_encrypt(encrypted: str) -> WebhookRequest:
    return WebhookRequest("POST", "http://hub/webhooks/oa", {}, {}, json.dumps({"encrypt": encrypted}).encode())


def _flipped(encrypted: str, position: int) -> str:
    raw = bytearray(base64.b64decode(encrypted))
    raw[position] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_every_refusal_of_an_unsigned_request_has_one_body_so_decryption_is_no_oracle(hook: Connector) -> None:
    good = crypto.encrypt(KEY, b'{"a":1}')
    requests_ = {
        "bad padding": _unsigned_encrypt(_flipped(good, -17)),
        "padding ok, not JSON": _unsigned_encrypt(_flipped(good, 0)),
        "truncated": _unsigned_encrypt(good[:20]),
        "not base64": _unsigned_encrypt("!!!"),
        "decrypts, not a url check": _unsigned_encrypt(good),
        "real event, unsigned": _unsigned(_signed(_status_event("X"))),
        "bad signature": _tamper(_signed(_status_event("X"))),
        "wrong verification token": _signed({**_status_event("X"), "token": "forged"}),
    }
    replies = {name: hook.webhook(request) for name, request in requests_.items()}
    assert {name: (r.status, r.events) for name, r in replies.items()} == {name: (401, []) for name in requests_}
    assert {r.body for r in replies.values()} == {b'{"msg":"unauthorized"}'}


def test_an_unsigned_url_check_needs_the_configured_verification_token() -> None:
    check = {"challenge": "c-1", "token": feishu_sandbox.VERIFICATION_TOKEN, "type": "url_verification"}
    unsigned = _unsigned(_signed(check))
    without_token = Connector(_system_with_webhook(verification_token=None))
    try:
        assert without_token.webhook(unsigned).status == 401
        assert without_token.webhook(_signed(check)).status == 200  # signed: the Encrypt Key proves the sender
    finally:
        without_token.close()
    with_token = Connector(_system_with_webhook())
    try:
        assert with_token.webhook(_unsigned(_signed({**check, "token": "forged"}))).status == 401
        assert with_token.webhook(unsigned).body == b'{"challenge":"c-1"}'
    finally:
        with_token.close()


def test_an_empty_encrypt_key_refuses_a_callback_forged_with_the_empty_key() -> None:
    from hub.config.secrets import Secret

    connector = Connector(_system_with_webhook(encrypt_key=Secret("", "${FEISHU_ENCRYPT_KEY:-}")))
    try:
        forged = _signed(_status_event("X"), encrypt_key="", sign_key="")
        reply = connector.webhook(forged)
        assert (reply.status, reply.events, reply.body) == (401, [], b'{"msg":"unauthorized"}')
    finally:
        connector.close()


def test_the_callback_keys_never_show_in_a_repr(hook: Connector) -> None:
    shown = repr(hook.keys)
    assert KEY not in shown and feishu_sandbox.VERIFICATION_TOKEN not in shown


def _system_with_webhook(**changes: Any) -> System:
    system = _system("http://127.0.0.1:9")
    hook_settings = {**system.webhook, **changes}
    return System(name=system.name, connector=system.connector, base_url=system.base_url, auth=system.auth,
                  webhook={k: v for k, v in hook_settings.items() if v is not None}, options=system.options,
                  timeout=system.timeout)
