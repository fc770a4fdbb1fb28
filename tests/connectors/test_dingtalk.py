"""DingTalk specifics: the published crypto example, callback edge cases, both API generations,
withdrawal, and the sandbox's decide -> encrypted callback -> connector path with retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors.base import ConnectorError, OpKind, RateLimited, Unavailable, WebhookRequest, WriteOp
from connectors.dingtalk import crypto
from connectors.dingtalk.connector import Connector, Cursor
from connectors.dingtalk.sandbox import (
    APP_KEY,
    APPLICANTS,
    CALLBACK_AES_KEY,
    CALLBACK_TOKEN,
    PROCESSES,
    create_app,
    system_config,
)
from connectors.dingtalk.webhook import CallbackKeys, is_success_reply
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub.config.model import System

# --- the worked example from DingTalk's callback-crypto samples --------------------------------

EXAMPLE = {"token": "mryue", "aes_key": "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", "owner": "ding6ccabc44d2c8d38b",
           "timestamp": "1608001896814", "nonce": "WL4PK6yA",
           "encrypt": "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK"
                      "+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3",
           "signature": "03044561471240d4a14bb09372dfcfd4fd0e40cb", "prefix": b"l7Y3EcX2CU5w8av3"}


def test_worked_example_signature_decryption_and_reencryption_byte_for_byte() -> None:
    e = EXAMPLE
    assert crypto.signature(e["token"], e["timestamp"], e["nonce"], e["encrypt"]) == e["signature"]
    key = crypto.aes_key(e["aes_key"])
    message, owner, prefix = crypto.decrypt(e["encrypt"], key)
    assert message == b'{"EventType":"check_url"}'
    assert owner == e["owner"] and prefix == e["prefix"]
    assert crypto.encrypt(message, key, e["owner"], e["prefix"]) == e["encrypt"]


def test_padding_is_to_32_bytes() -> None:
    assert len(crypto.pad(b"x" * 32)) == 64 and crypto.pad(b"x" * 31)[-1] == 1
    with pytest.raises(crypto.CryptoError):
        crypto.unpad(b"x" * 31 + bytes([33]))


# --- callbacks through the connector -----------------------------------------------------------


def _system(base_url: str, **options: Any) -> System:
    declared = system_config(base_url)
    return System(name="dingtalk-test", connector="dingtalk", base_url=declared["base_url"], auth=declared["auth"],
                  webhook=declared["webhook"], options={**declared["options"], **options}, timeout=10.0)


@pytest.fixture
def connector() -> Iterator[Connector]:
    found = Connector(_system("http://127.0.0.1:9"))  # no calls: webhooks only
    yield found
    found.close()


KEYS = CallbackKeys(CALLBACK_TOKEN, crypto.aes_key(CALLBACK_AES_KEY), APP_KEY)
FINISH = {"EventType": "bpms_instance_change", "processInstanceId": "a1b2c3d4e5f6g7h8i9j0kl00011714541234",
          "corpId": "ding6ccabc44d2c8d38b", "createTime": 1714541234000, "finishTime": 1714551234000,
          "title": "陈静提交的销售合同审批", "type": "finish", "result": "agree", "staffId": APPLICANTS[0],
          "processCode": PROCESSES["contract"].code}


def callback(message: dict[str, Any] | bytes, *, key: bytes = KEYS.key, owner: str = APP_KEY, token: str = CALLBACK_TOKEN,
             timestamp: int | None = None, param: str = "msg_signature", encrypt: str | None = None) -> WebhookRequest:
    text = message if isinstance(message, bytes) else json.dumps(message, ensure_ascii=False).encode()
    encrypt = encrypt if encrypt is not None else crypto.encrypt(text, key, owner)
    stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
    query = {param: crypto.signature(token, stamp, "nOnCe123", encrypt), "timestamp": stamp, "nonce": "nOnCe123"}
    return WebhookRequest("POST", "https://hub.example.com/webhooks/dingtalk", {}, query,
                          json.dumps({"encrypt": encrypt}).encode())


@pytest.mark.parametrize("param", ["msg_signature", "signature"])
def test_an_approval_callback_becomes_one_event_and_is_answered_with_encrypted_success(
        connector: Connector, param: str) -> None:
    reply = connector.webhook(callback(FINISH, param=param))
    assert reply.status == 200 and reply.content_type == "application/json"
    assert set(json.loads(reply.body)) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert is_success_reply(reply.body, KEYS)
    [event] = reply.events
    assert (event.object, event.external_id) == ("contract", FINISH["processInstanceId"])
    assert event.payload["result"] == "agree" and event.event_id.startswith("dingtalk:")


def test_check_url_is_answered_with_encrypted_success_and_no_event(connector: Connector) -> None:
    reply = connector.webhook(callback({"EventType": "check_url"}))
    assert reply.status == 200 and reply.events == []
    assert is_success_reply(reply.body, KEYS)


def test_a_replayed_event_gets_the_same_event_id(connector: Connector) -> None:
    first = connector.webhook(callback(FINISH))
    again = connector.webhook(callback(FINISH, timestamp=int(time.time() * 1000) + 5))
    assert first.events[0].event_id == again.events[0].event_id
    other = connector.webhook(callback({**FINISH, "result": "refuse"}))
    assert other.events[0].event_id != first.events[0].event_id


def _bad_padding() -> str:
    """A ciphertext whose plaintext ends in a pad byte of 0 (not PKCS#7)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = b"0" * 16 + len(b"{}").to_bytes(4, "big") + b"{}" + APP_KEY.encode()
    plain += b"\x00" * (32 - len(plain) % 32)
    enc = Cipher(algorithms.AES(KEYS.key), modes.CBC(KEYS.key[:16])).encryptor()
    import base64

    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


@pytest.mark.parametrize("case", ["wrong signature", "wrong key", "stale", "future", "truncated", "bad padding",
                                  "wrong owner", "not base64"])
def test_an_unauthentic_callback_is_refused_with_401_and_no_events(connector: Connector, case: str) -> None:
    good = crypto.encrypt(json.dumps(FINISH).encode(), KEYS.key, APP_KEY)
    request = {
        "wrong signature": lambda: callback(FINISH, token="not-the-token"),
        "wrong key": lambda: callback(FINISH, key=crypto.aes_key(EXAMPLE["aes_key"])),
        "stale": lambda: callback(FINISH, timestamp=int(time.time() * 1000) - 301_000),
        "future": lambda: callback(FINISH, timestamp=int(time.time() * 1000) + 301_000),
        "truncated": lambda: callback(FINISH, encrypt=good[:-8] + "AAAA"[: len(good[:-8]) % 4 or 0]),
        "bad padding": lambda: callback(FINISH, encrypt=_bad_padding()),
        "wrong owner": lambda: callback(FINISH, owner="dingsomeoneelse"),
        "not base64": lambda: callback(FINISH, encrypt="!!!not base64!!!"),
    }[case]()
    reply = connector.webhook(request)
    assert reply.status == 401, reply.body
    assert reply.events == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"msg": "hello"}'])
def test_a_body_that_is_not_dingtalks_shape_is_400(connector: Connector, body: bytes) -> None:
    request = WebhookRequest("POST", "https://hub.example.com/x", {}, {"msg_signature": "x", "timestamp": "1",
                                                                     "nonce": "n"}, body)
    reply = connector.webhook(request)
    assert reply.status == 400 and reply.events == []


def test_an_unknown_process_code_is_acknowledged_without_events(connector: Connector) -> None:
    reply = connector.webhook(callback({**FINISH, "processCode": "PROC-SOMETHING-ELSE"}))
    assert reply.status == 200 and reply.events == [] and is_success_reply(reply.body, KEYS)


# --- over real HTTP --------------------------------------------------------------------------------


@pytest.fixture
def sandbox() -> Iterator[RunningServer]:
    server = serve(create_app(SandboxOptions(records=6, seed=5, webhook_retry_scale=0.01)))
    yield server
    server.stop()


def _control(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(method, f"{server.base_url}/_sandbox/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def _running(server: RunningServer, kind: str) -> list[str]:
    return [r["processInstanceId"] for r in _control(server, "GET", f"records/{kind}")["records"]
            if r["status"] == "RUNNING"]


def test_decide_sends_a_callback_that_is_retried_until_the_hub_answers_success(sandbox: RunningServer) -> None:
    hub = Connector(_system(sandbox.base_url))
    replies: list[int] = []
    events: list[Any] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        webhook = WebhookRequest("POST", str(request.url), dict(request.headers), dict(request.query_params),
                                 await request.body())
        reply = hub.webhook(webhook)
        replies.append(reply.status)
        if len(replies) == 1:  # first attempt: a plain 200 "ok" is not what DingTalk requires
            return Response("ok", 200)
        events.extend(reply.events)
        return Response(reply.body, reply.status, media_type=reply.content_type)

    receiver = serve(app)
    try:
        _control(sandbox, "PUT", "webhooks", {"url": f"{receiver.base_url}/hook"})
        target = _running(sandbox, "leave")[0]
        _control(sandbox, "POST", f"instances/{target}/decide", {"action": "refuse", "comment": "项目上线期间，请改期"})
        assert sandbox.app.state.kit.webhooks.wait_idle(10)
        deliveries = _control(sandbox, "GET", "webhooks")["deliveries"]
        assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
        assert deliveries[0]["attempts"] == 2 and deliveries[1]["attempts"] == 1
        assert {(e.object, e.external_id) for e in events} == {("leave", target)}
        [record] = hub.get("leave", [target])
        assert (record["status"], record["result"]) == ("COMPLETED", "refuse")
        assert record["operationRecords"][-1]["remark"] == "项目上线期间，请改期"
    finally:
        receiver.stop()
        hub.close()


@pytest.mark.parametrize("api", ["new", "old"])
def test_create_get_pull_and_withdraw_on_both_api_generations(sandbox: RunningServer, api: str) -> None:
    hub = Connector(_system(sandbox.base_url, api=api, page_size=4))
    try:
        form = {"开始时间": "2024-05-06 19:00", "结束时间": "2024-05-06 22:30", "加班时长": 3.5, "加班原因": "版本发布",
                "同步ID": "hub-9"}
        payload = {"originatorUserId": APPLICANTS[1], "form": form}
        [created] = hub.push("overtime", [WriteOp(OpKind.CREATE, payload, "hub-9")])
        assert created.ok and created.created
        [record] = hub.get("overtime", [created.external_id])
        assert record["form"]["加班时长"] == "3.5" and record["form"]["同步ID"] == "hub-9"
        assert record["status"] == "RUNNING" and record["processCode"] == PROCESSES["overtime"].code
        pulled = [r["processInstanceId"] for page in hub.pull("overtime", None) for r in page.records]
        assert sorted(pulled) == sorted(r["processInstanceId"] for r in _control(sandbox, "GET", "records/overtime")["records"])
        _control(sandbox, "DELETE", "stats")
        [ignored] = hub.push("overtime", [WriteOp(OpKind.UPDATE, {"form": {"加班原因": "改了"}}, "hub-9", created.external_id)])
        assert ignored.ok and _control(sandbox, "GET", "stats")["calls"] == 0
        [withdrawn] = hub.push("overtime", [WriteOp(OpKind.UPDATE, {"status": "TERMINATED"}, "hub-9", created.external_id)])
        assert withdrawn.ok
        [record] = hub.get("overtime", [created.external_id])
        assert record["status"] == "TERMINATED"
        [again] = hub.push("overtime", [WriteOp(OpKind.UPDATE, {"status": "TERMINATED"}, "hub-9", created.external_id)])
        assert not again.ok and "已结束" in str(again.error)
        _control(sandbox, "POST", "expire-tokens")
        assert hub.get("overtime", [created.external_id])
    finally:
        hub.close()


@pytest.mark.parametrize("api", ["new", "old"])
def test_throttling_in_either_envelope_is_rate_limited(sandbox: RunningServer, api: str) -> None:
    hub = Connector(_system(sandbox.base_url, api=api))
    try:
        ids = _running(sandbox, "contract")[:1]
        _control(sandbox, "PUT", "faults", {"next": ["rate_limit"]})
        with pytest.raises(RateLimited) as raised:
            hub.get("contract", ids)
        assert raised.value.retry_after == 1.0
    finally:
        hub.close()


def test_a_change_later_in_the_same_minute_to_an_already_yielded_record_is_pulled_again(sandbox: RunningServer) -> None:
    """Minute-precision times: the cursor's fingerprints let a same-minute change through."""
    hub = Connector(_system(sandbox.base_url, page_size=2))
    try:
        _, cursor = _drain(hub, "contract", None)
        target = _running(sandbox, "contract")[0]
        _control(sandbox, "POST", "touch", {"object": "contract", "ids": _running(sandbox, "contract")})
        touched, cursor = _drain(hub, "contract", cursor)
        assert target in touched
        assert Cursor.decode(cursor) is not None
        _control(sandbox, "POST", f"instances/{target}/comment", {"text": "请补充合同扫描件"})
        again, _ = _drain(hub, "contract", cursor)
        assert again == [target]
    finally:
        hub.close()


def _drain(hub: Connector, kind: str, since: str | None) -> tuple[list[str], str | None]:
    ids, cursor = [], since
    for page in hub.pull(kind, since):
        ids += [r["processInstanceId"] for r in page.records]
        cursor = page.cursor or cursor
    return ids, cursor


def test_sandbox_starts_fast_with_ten_thousand_records() -> None:
    started = time.perf_counter()
    app = create_app(SandboxOptions(records=10_000))
    assert time.perf_counter() - started < 0.6
    assert sum(len(s) for s in app.state.org.starts.values()) == 30_000
    assert threading.active_count() >= 1


# --- security review: partial pushes, non-JSON answers, reprs ----------------------------------


@pytest.mark.parametrize("api", ["new", "old"])
def test_an_outage_after_an_approval_was_started_hands_back_only_the_rest(sandbox: RunningServer, api: str) -> None:
    """DingTalk takes no idempotency key: retrying the whole push would start the first approval twice."""
    hub = Connector(_system(sandbox.base_url, api=api))
    real_create = hub.client.create_instance

    def create_then_fail_next(*args: Any, **kwargs: Any) -> str:
        instance = real_create(*args, **kwargs)
        _control(sandbox, "PUT", "faults", {"next": ["error"]})
        return instance

    hub.client.create_instance = create_then_fail_next  # type: ignore[method-assign]
    before = len(_control(sandbox, "GET", "records/overtime")["records"])
    form = {"开始时间": "2024-05-06 19:00", "结束时间": "2024-05-06 22:30", "加班时长": 1, "加班原因": "发布"}
    ops = [WriteOp(OpKind.CREATE, {"originatorUserId": APPLICANTS[1], "form": {**form, "同步ID": f"hub-{n}"}}, f"hub-{n}")
           for n in range(3)]
    try:
        first, second, third = hub.push("overtime", ops)
    finally:
        hub.close()
    assert first.ok and first.created
    assert not second.ok and not third.ok
    assert second.error is not None and second.error.retryable and third.error is second.error
    assert len(_control(sandbox, "GET", "records/overtime")["records"]) == before + 1


def test_an_outage_before_anything_was_written_raises_for_a_whole_retry(sandbox: RunningServer) -> None:
    hub = Connector(_system(sandbox.base_url))
    _control(sandbox, "PUT", "faults", {"next": ["error"]})
    try:
        with pytest.raises(ConnectorError) as caught:
            hub.push("overtime", [WriteOp(OpKind.CREATE, {"originatorUserId": APPLICANTS[1], "form": {}}, "hub-1")])
    finally:
        hub.close()
    assert caught.value.retryable


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b"[1, 2]"])
def test_an_answer_that_is_not_a_json_object_is_unavailable(body: bytes) -> None:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    def anything(path: str) -> Response:
        if path == "v1.0/oauth2/accessToken":
            return Response('{"accessToken": "t", "expireIn": 7200}', media_type="application/json")
        return Response(body, media_type="text/html")

    server = serve(app)
    hub = Connector(_system(server.base_url))
    try:
        with pytest.raises(Unavailable, match="not JSON|not an object"):
            list(hub.pull("overtime", None))
    finally:
        hub.close()
        server.stop()


def test_callback_keys_never_show_their_secrets() -> None:
    shown = repr(KEYS)
    assert CALLBACK_TOKEN not in shown and repr(KEYS.key) not in shown
