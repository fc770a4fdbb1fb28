"""WeCom specifics: the published crypto example, wechatpy interop both ways, every way a
callback can be wrong, the decide -> callback -> connector path over real HTTP with WeCom's
retries, wechatpy's own API client against the sandbox, and form encoding round trips."""

from __future__ import annotations

import base64
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from fastapi import FastAPI, Request
from fastapi.responses import Response
from wechatpy.enterprise.client import WeChatClient
from wechatpy.enterprise.crypto import WeChatCrypto

from connectors.base import (
    ConnectorError,
    OpKind,
    RateLimited,
    Rejected,
    Unavailable,
    WebhookReply,
    WebhookRequest,
    WriteOp,
)
from connectors.sandbox import RunningServer, SandboxOptions, serve
from connectors.wecom import Connector
from connectors.wecom import crypto as wc
from connectors.wecom import sandbox as sb
from connectors.wecom import webhook as hooks
from hub.config.model import System
from hub.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]

# WeCom's official crypto sample
EX_TOKEN, EX_KEY, EX_CORP = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
EX_SIGNATURE, EX_TIMESTAMP, EX_NONCE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780"
EX_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="


# --- helpers -------------------------------------------------------------------------------


def _system(base_url: str = "http://127.0.0.1:9", **options: Any) -> System:
    declared = sb.system_config(base_url)
    return System(name="oa", connector="wecom", base_url=base_url, auth=declared["auth"],
                  webhook=declared["webhook"], options={**declared["options"], **options}, timeout=10.0)


def _settings() -> hooks.CallbackSettings:
    crypto = wc.WeComCrypto(sb.CALLBACK_TOKEN, sb.ENCODING_AES_KEY, sb.CORP_ID)
    return hooks.CallbackSettings(crypto, {t.template_id: k for k, t in sb.TEMPLATES.items()})


def _info(sp_no: str = "202405010001", kind: str = "contract") -> dict[str, Any]:
    template = sb.TEMPLATES[kind]
    return {"sp_no": sp_no, "sp_name": template.name, "sp_status": 2, "template_id": template.template_id,
            "apply_time": 1714530000, "applyer": {"userid": "zhangwei", "partyid": "2"},
            "sp_record": [{"sp_status": 2, "approverattr": 1, "details": [
                {"approver": {"userid": "wangfang"}, "speech": "同意 ]]> <x/>", "sp_status": 2, "sptime": 1714533600}]}],
            "notifyer": [], "apply_data": {"contents": []}, "comments": []}


def _signed(message: bytes, *, timestamp: str | None = None, key: str = sb.ENCODING_AES_KEY,
            corp: str = sb.CORP_ID, token: str = sb.CALLBACK_TOKEN, encrypted: str | None = None) -> WebhookRequest:
    """A POST callback encrypted and signed as WeCom does it (parts overridable to break it)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = "1372623149"
    encrypted = encrypted or wc.encrypt(wc.aes_key(key), message, corp)
    query = {"msg_signature": wc.signature(token, timestamp, nonce, encrypted), "timestamp": timestamp, "nonce": nonce}
    return WebhookRequest("POST", f"http://hub.example/webhooks/oa?{urlencode(query)}", {"content-type": "text/xml"},
                          query, hooks.render_envelope(sb.CORP_ID, sb.AGENT_ID, encrypted))


def _refused(reply: WebhookReply, status: int = 401) -> None:
    assert reply.status == status
    assert reply.events == []
    assert reply.body == b""


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = serve(sb.create_app(SandboxOptions(records=6, seed=3, webhook_retry_scale=0.01)))
    yield running
    running.stop()


@pytest.fixture
def connector(server: RunningServer) -> Iterator[Connector]:
    opened = Connector(_system(server.base_url, page_size=4))
    yield opened
    opened.close()


def _control(server: RunningServer, method: str, path: str, json: Any = None) -> Any:
    answer = requests.request(method, f"{server.base_url}/_sandbox/{path}", json=json, timeout=10)
    answer.raise_for_status()
    return answer.json()


def _ids(server: RunningServer, kind: str = "contract") -> list[str]:
    return [r["sp_no"] for r in _control(server, "GET", f"records/{kind}")["records"]]


# --- the published worked example ----------------------------------------------------------


def test_the_worked_example_url_check_is_answered_byte_for_byte() -> None:
    crypto = wc.WeComCrypto(EX_TOKEN, EX_KEY, EX_CORP)
    assert crypto.sign(EX_TIMESTAMP, EX_NONCE, EX_ECHOSTR) == EX_SIGNATURE
    query = {"msg_signature": EX_SIGNATURE, "timestamp": EX_TIMESTAMP, "nonce": EX_NONCE, "echostr": EX_ECHOSTR}
    request = WebhookRequest("GET", "http://hub.example/webhooks/oa?" + urlencode(query), {}, query, b"")
    reply = hooks.handle(request, hooks.CallbackSettings(crypto, {}), now=lambda: int(EX_TIMESTAMP) + 1)
    assert (reply.status, reply.body, reply.events) == (200, b"1616140317555161061", [])


def test_the_worked_example_re_encrypts_to_the_same_bytes_with_its_random_prefix() -> None:
    key = wc.aes_key(EX_KEY)
    found = wc.decrypt(key, EX_ECHOSTR, EX_CORP)
    assert found.message == b"1616140317555161061" and found.receive_id == EX_CORP
    assert wc.encrypt(key, found.message, EX_CORP, found.random_prefix) == EX_ECHOSTR


def test_a_worked_example_check_outside_the_time_window_is_refused() -> None:
    crypto = wc.WeComCrypto(EX_TOKEN, EX_KEY, EX_CORP)
    query = {"msg_signature": EX_SIGNATURE, "timestamp": EX_TIMESTAMP, "nonce": EX_NONCE, "echostr": EX_ECHOSTR}
    _refused(hooks.handle(WebhookRequest("GET", "http://h/", {}, query, b""), hooks.CallbackSettings(crypto, {})))


# --- wechatpy interop ----------------------------------------------------------------------


def test_wechatpy_decrypts_and_verifies_what_we_encrypt() -> None:
    ours = wc.WeComCrypto(sb.CALLBACK_TOKEN, sb.ENCODING_AES_KEY, sb.CORP_ID)
    theirs = WeChatCrypto(sb.CALLBACK_TOKEN, sb.ENCODING_AES_KEY, sb.CORP_ID)
    echostr = ours.encrypt("回声 echo 12345".encode())
    signature = ours.sign("1700000000", "42", echostr)
    assert theirs.check_signature(signature, "1700000000", "42", echostr) == "回声 echo 12345"
    request = _signed(sb.approval_xml(_info(), 2, 1714533600))
    assert theirs.decrypt_message(request.body, request.query["msg_signature"], request.query["timestamp"],
                                  request.query["nonce"]) == sb.approval_xml(_info(), 2, 1714533600).decode()


def test_a_callback_encrypted_by_wechatpy_is_accepted() -> None:
    theirs = WeChatCrypto(sb.CALLBACK_TOKEN, sb.ENCODING_AES_KEY, sb.CORP_ID)
    timestamp = str(int(time.time()))
    reply_xml = theirs.encrypt_message(sb.approval_xml(_info(), 2, 1714533600).decode(), "777", timestamp)
    outer = hooks.parse_xml(reply_xml.encode())
    encrypted, signature = outer.findtext("Encrypt") or "", outer.findtext("MsgSignature") or ""
    query = {"msg_signature": signature, "timestamp": timestamp, "nonce": "777"}
    request = WebhookRequest("POST", "http://h/", {}, query, hooks.render_envelope(sb.CORP_ID, sb.AGENT_ID, encrypted))
    reply = hooks.handle(request, _settings())
    assert reply.status == 200 and [e.external_id for e in reply.events] == ["202405010001"]


# --- callbacks: accepted, and every way to be wrong ----------------------------------------


def test_an_approval_callback_becomes_one_event_and_a_replay_has_the_same_event_id() -> None:
    message = sb.approval_xml(_info(), 2, 1714533600)
    first = hooks.handle(_signed(message), _settings())
    again = hooks.handle(_signed(message), _settings())  # WeCom's retry: same message, new envelope
    assert (first.status, first.body, again.status, again.body) == (200, b"", 200, b"")
    [event] = first.events
    assert (event.object, event.external_id, event.kind) == ("contract", "202405010001", "changed")
    assert event.payload["sp_status"] == 2 and event.payload["change_event"] == 2
    assert [e.event_id for e in again.events] == [event.event_id]
    other = hooks.handle(_signed(sb.approval_xml(_info(), 3, 1714533700)), _settings())
    assert other.events[0].event_id != event.event_id


@pytest.mark.parametrize("case", ["signature", "key", "token", "stale", "future", "truncated", "padding",
                                  "receiver", "not_base64", "no_signature"])
def test_a_bad_callback_is_refused_with_401_and_no_events(case: str) -> None:
    message = sb.approval_xml(_info(), 2, 1714533600)
    key = wc.aes_key(sb.ENCODING_AES_KEY)
    other_key = "a" * 43
    if case == "signature":
        good = _signed(message)
        request = WebhookRequest("POST", good.url, good.headers, {**good.query, "msg_signature": "0" * 40}, good.body)
    elif case == "key":
        request = _signed(message, key=other_key)
    elif case == "token":
        request = _signed(message, token="not-our-token")
    elif case == "stale":
        request = _signed(message, timestamp=str(int(time.time()) - 301))
    elif case == "future":
        request = _signed(message, timestamp=str(int(time.time()) + 301))
    elif case == "truncated":
        full = wc.encrypt(key, message, sb.CORP_ID)
        request = _signed(message, encrypted=base64.b64encode(base64.b64decode(full)[:-16]).decode())
    elif case == "padding":
        request = _signed(message, encrypted=_badly_padded(key, message))
    elif case == "receiver":
        request = _signed(message, corp="wwSomeoneElse0001")
    elif case == "not_base64":
        request = _signed(message, encrypted="!!!not base64!!!")
    else:
        good = _signed(message)
        request = WebhookRequest("POST", good.url, good.headers, {"timestamp": good.query["timestamp"]}, good.body)
    _refused(hooks.handle(request, _settings()))


def _badly_padded(key: bytes, message: bytes) -> str:
    """Encrypt with a pad whose bytes disagree with its length (as a wrong implementation would)."""
    plain = b"0123456789abcdef" + struct.pack(">I", len(message)) + message + sb.CORP_ID.encode()
    count = 32 - len(plain) % 32
    padded = plain + bytes([count - 1 or 33]) * count
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


@pytest.mark.parametrize("body", [b"not xml at all", b"<xml><ToUserName>x</ToUserName></xml>",
                                  b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
                                  b"<xml><Encrypt>&b;</Encrypt></xml>",
                                  b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><Encrypt>x</Encrypt></xml>',
                                  '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY a "aaaa">]>'
                                  "<xml><Encrypt>&a;</Encrypt></xml>".encode("utf-16")])
def test_a_body_that_is_not_wecoms_envelope_is_a_400(body: bytes) -> None:
    good = _signed(b"<xml/>")
    _refused(hooks.handle(WebhookRequest("POST", good.url, good.headers, good.query, body), _settings()), 400)


def test_other_events_and_unconfigured_templates_are_acknowledged_without_events() -> None:
    other_event = b"<xml><ToUserName>x</ToUserName><MsgType>event</MsgType><Event>change_contact</Event></xml>"
    assert hooks.handle(_signed(other_event), _settings()) == WebhookReply(200, b"", "text/plain", [])
    foreign = _info()
    foreign["template_id"] = "SomeOtherTemplate"
    assert hooks.handle(_signed(sb.approval_xml(foreign, 1, 1714530000)), _settings()).events == []


def test_the_url_check_answers_the_plaintext_and_refuses_a_tampered_echostr() -> None:
    ours = wc.WeComCrypto(sb.CALLBACK_TOKEN, sb.ENCODING_AES_KEY, sb.CORP_ID)
    echostr, timestamp = ours.encrypt(b"8412395802937"), str(int(time.time()))
    query = {"msg_signature": ours.sign(timestamp, "5", echostr), "timestamp": timestamp, "nonce": "5", "echostr": echostr}
    connector = Connector(_system())
    try:
        reply = connector.webhook(WebhookRequest("GET", "http://h/", {}, query, b""))
        assert (reply.status, reply.body, reply.content_type) == (200, b"8412395802937", "text/plain")
        _refused(connector.webhook(WebhookRequest("GET", "http://h/", {}, {**query, "echostr": echostr[:-4] + "AAA="},
                                                  b"")))
    finally:
        connector.close()


# --- decide -> callback -> connector.webhook over real HTTP, with WeCom's retries ------------


def test_a_decision_reaches_the_connector_and_a_bad_answer_is_retried(server: RunningServer,
                                                                      connector: Connector) -> None:
    replies: list[int] = []
    events: list[Any] = []
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received = WebhookRequest("POST", str(request.url), dict(request.headers), dict(request.query_params),
                                  await request.body())
        reply = connector.webhook(received)
        with lock:
            if not replies:  # the hub is down once: WeCom must try again
                replies.append(503)
                return Response(status_code=503)
            replies.append(reply.status)
            events.extend(reply.events)
        return Response(reply.body, reply.status, media_type=reply.content_type)

    receiver = serve(app)
    try:
        _control(server, "PUT", "webhooks", {"url": f"{receiver.base_url}/hook"})
        target = next(r["sp_no"] for r in _control(server, "GET", "records/contract")["records"] if r["sp_status"] == 1)
        _control(server, "POST", f"instances/{target}/decide", {"action": "refuse", "comment": "价格需重新核定"})
        server.app.state.kit.webhooks.wait_idle(10)
        [delivery] = _control(server, "GET", "webhooks")["deliveries"]
        assert delivery["status"] == "delivered" and delivery["attempts"] == 2
        assert replies == [503, 200]
        [event] = events
        assert (event.object, event.external_id, event.payload["sp_status"]) == ("contract", target, 3)
        [record] = connector.get("contract", [target])
        assert record["sp_status"] == 3 and record["approvers"][0]["speech"] == "价格需重新核定"
    finally:
        receiver.stop()


def test_a_hub_that_never_answers_200_gets_the_first_attempt_and_three_retries(server: RunningServer) -> None:
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> Response:
        return Response(status_code=401)

    receiver = serve(app)
    try:
        _control(server, "PUT", "webhooks", {"url": f"{receiver.base_url}/hook"})
        _control(server, "POST", f"instances/{_ids(server)[0]}/comment", {"comment": "请补充附件"})
        server.app.state.kit.webhooks.wait_idle(10)
        [delivery] = _control(server, "GET", "webhooks")["deliveries"]
        assert (delivery["status"], delivery["attempts"]) == ("failed", 4)
    finally:
        receiver.stop()


# --- wechatpy's API client against the sandbox ----------------------------------------------


class SandboxWeChatClient(WeChatClient):
    """wechatpy's enterprise client with only its base URL changed."""

    def __init__(self, base_url: str) -> None:
        self.API_BASE_URL = f"{base_url}/cgi-bin/"
        self._token_url = f"{base_url}/cgi-bin/gettoken"
        super().__init__(sb.CORP_ID, sb.SECRET)

    def fetch_access_token(self) -> Any:
        return self._fetch_access_token(url=self._token_url, params={"corpid": self.corp_id, "corpsecret": self.secret})


def test_wechatpy_submits_lists_and_reads_approvals_in_the_sandbox(server: RunningServer) -> None:
    client = SandboxWeChatClient(server.base_url)
    template = sb.TEMPLATES["overtime"]
    contents = [{"control": "Date", "id": "Date-1570000000201", "value": {"date": {"type": "hour", "s_timestamp": "1715162400"}}},
                {"control": "Date", "id": "Date-1570000000202", "value": {"date": {"type": "hour", "s_timestamp": "1715173200"}}},
                {"control": "Number", "id": "Number-1570000000203", "value": {"new_number": "3"}}]
    created = client.OA.apply_event("chenjing", template.template_id, 1, None, {"contents": contents},
                                    [{"summary_info": [{"text": "加班 3 小时", "lang": "zh_CN"}]}])
    sp_no = created["sp_no"]
    now = int(time.time())
    listed = client.OA.get_approval_info(now - 86400 * 30, now + 60, 0, 100,
                                         [{"key": "template_id", "value": template.template_id}])
    assert sp_no in listed["sp_no_list"]
    _control(server, "POST", "expire-tokens")  # wechatpy refreshes on 42001 by itself
    detail = client.OA.get_approval_detail(sp_no)["info"]
    assert detail["applyer"]["userid"] == "chenjing" and detail["sp_status"] == 1
    assert client.OA.get_template_detail(template.template_id)["template_names"][0]["text"] == "加班"


# --- client: errors and secrecy ------------------------------------------------------------


def test_throttling_busy_and_refusals_are_typed_and_never_carry_the_token(server: RunningServer,
                                                                         connector: Connector) -> None:
    ids = _ids(server)[:1]
    assert connector.get("contract", ids)
    token = connector.client.tokens.get()
    _control(server, "PUT", "faults", {"next": ["rate_limit"]})
    with pytest.raises(RateLimited) as limited:
        connector.get("contract", ids)
    _control(server, "PUT", "faults", {"next": ["error"]})
    with pytest.raises(Unavailable) as busy:
        connector.get("contract", ids)
    bad = WriteOp(OpKind.CREATE, {"creator_userid": "nobody", "form": {"customer_name": "x", "order_number": "y",
                                                                        "amount": "1", "currency": "CNY"}}, "k")
    [refused] = connector.push("contract", [bad])
    assert isinstance(refused.error, Rejected) and refused.error.vendor_code == "40003"
    for error in (limited.value, busy.value, refused.error):
        assert token not in str(error) and "access_token" not in str(error)
    assert "45009" in str(limited.value) and "/cgi-bin/oa/getapprovaldetail" in str(limited.value)


def test_a_form_value_the_layout_cannot_take_is_rejected_without_a_call(server: RunningServer,
                                                                        connector: Connector) -> None:
    connector.get("contract", _ids(server)[:1])  # token fetched
    _control(server, "DELETE", "stats")
    payloads = [{"creator_userid": "lina", "form": {"customer_name": "x", "order_number": "y", "amount": "一千",
                                                     "currency": "CNY"}},
                {"creator_userid": "lina", "form": {"customer_name": "x", "order_number": "y", "amount": "1",
                                                     "currency": "JPY"}},
                {"creator_userid": "lina", "form": {"customer_name": "x", "colour": "red"}},
                {"form": {"customer_name": "x"}}]
    results = connector.push("contract", [WriteOp(OpKind.CREATE, p, f"k{i}") for i, p in enumerate(payloads)])
    reasons = [str(r.error) for r in results]
    assert not any(r.ok for r in results)
    assert "not a number" in reasons[0] and "JPY" in reasons[1] and "colour" in reasons[2] and "creator" in reasons[3]
    assert _control(server, "GET", "stats")["calls"] == 0


# --- writes that WeCom cannot do -------------------------------------------------------------


def test_withdrawal_is_refused_with_the_reason_and_other_updates_make_no_call(server: RunningServer,
                                                                              connector: Connector) -> None:
    sp_no = _ids(server)[0]
    _control(server, "DELETE", "stats")
    withdraw, edit, upsert = connector.push("contract", [
        WriteOp(OpKind.UPDATE, {"withdraw": True}, "k1", sp_no),
        WriteOp(OpKind.UPDATE, {"summary": "new"}, "k2", sp_no),
        WriteOp(OpKind.UPSERT, {"creator_userid": "lina"}, "k3", key_field="form.synchub_id")])
    assert isinstance(withdraw.error, Rejected) and "no API to withdraw" in withdraw.error.reason
    assert edit.ok and edit.external_id == sp_no and not edit.created
    assert isinstance(upsert.error, Rejected) and "key" in upsert.error.reason
    assert _control(server, "GET", "stats")["calls"] == 0


def test_a_rate_limit_after_a_submission_is_reported_per_op_instead_of_raised(server: RunningServer,
                                                                               connector: Connector) -> None:
    kit_record = {"creator_userid": "zhangwei", "summary": "s",
                  "form": {"customer_name": "甲", "order_number": "SO-1", "amount": "1.00", "currency": "CNY"}}
    connector.get("contract", _ids(server)[:1])
    ops = [WriteOp(OpKind.CREATE, kit_record, f"k{i}") for i in range(3)]
    first = connector.push("contract", ops[:1])
    assert first[0].ok
    before = len(_ids(server))
    # the second op meets a rate limit: the first was submitted, so nothing is raised (no duplicate on retry)
    original = connector.client.post
    calls = {"n": 0}

    def flaky(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RateLimited("wecom: POST /cgi-bin/oa/applyevent: errcode 45009: api freq out of limit")
        return original(path, body)

    connector.client.post = flaky  # type: ignore[method-assign]
    results = connector.push("contract", ops)
    assert [r.ok for r in results] == [True, False, False]
    assert all(isinstance(r.error, RateLimited) for r in results[1:])
    assert len(_ids(server)) == before + 1


def test_an_error_that_is_not_retryable_after_a_submission_still_hands_the_rest_back_for_a_retry(
        server: RunningServer, connector: Connector) -> None:
    """The engine dead-letters an op whose own error is not retryable; the unwritten ops must
    be parked instead, as they would be had the whole push raised."""
    kit_record = {"creator_userid": "zhangwei", "summary": "s",
                  "form": {"customer_name": "甲", "order_number": "SO-1", "amount": "1.00", "currency": "CNY"}}
    original = connector.client.post
    calls = {"n": 0}

    def broken_after_one(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectorError("wecom: POST /cgi-bin/oa/applyevent answered something unreadable")
        return original(path, body)

    connector.client.post = broken_after_one  # type: ignore[method-assign]
    results = connector.push("contract", [WriteOp(OpKind.CREATE, kit_record, f"k{i}") for i in range(3)])
    assert [r.ok for r in results] == [True, False, False]
    assert all(isinstance(r.error, Unavailable) and r.error.retryable and "unreadable" in str(r.error)
               for r in results[1:])


# --- pulls -----------------------------------------------------------------------------------


def test_a_pull_longer_than_31_days_is_split_into_windows_and_resumes_from_its_cursor(server: RunningServer) -> None:
    connector = Connector(_system(server.base_url, page_size=4, history_days=75))
    try:
        _control(server, "DELETE", "stats")
        pages = list(connector.pull("contract", None))
        seen = [r["sp_no"] for p in pages for r in p.records]
        assert sorted(seen) == sorted(_ids(server)) and len(pages) == 2
        listing = _control(server, "GET", "stats")["by_route"]["POST /cgi-bin/oa/getapprovalinfo"]
        assert listing >= 3  # 75 days need three windows of at most 31 days
        rest = [r["sp_no"] for p in connector.pull("contract", pages[0].cursor) for r in p.records]
        assert sorted(rest + [r["sp_no"] for r in pages[0].records]) == sorted(seen)
        assert list(connector.pull("contract", pages[-1].cursor)) == []
    finally:
        connector.close()


def test_a_missed_callback_is_caught_up_by_the_next_pull(server: RunningServer, connector: Connector) -> None:
    cursor = None
    for page in connector.pull("leave", None):
        cursor = page.cursor
    time.sleep(1.05)
    target = next(r["sp_no"] for r in _control(server, "GET", "records/leave")["records"] if r["sp_status"] == 1)
    _control(server, "POST", f"instances/{target}/withdraw")  # no webhook URL: the callback is lost
    [record] = [r for p in connector.pull("leave", cursor) for r in p.records]
    mapped = load_mapping(ROOT / "mappings/wecom/leave.approval.yaml").to_canonical(record)
    assert mapped.errors == [] and mapped.value["status"] == "withdrawn" and mapped.value["number"] == target


# --- forms through the mappings and the sandbox ----------------------------------------------


@pytest.mark.parametrize("kind, form", [
    ("contract", {"customer_name": "上海瑞丰贸易有限公司", "order_number": "SO-2024-00777", "amount": "88000.50",
                  "currency": "USD"}),
    ("leave", {"leave_type": "病假", "start": "2024-05-20T01:00:00Z", "end": "2024-05-21T10:00:00Z", "days": "1.5",
               "reason": "发烧，需要休息"}),
    ("overtime", {"start": "2024-05-18T10:00:00Z", "end": "2024-05-18T13:30:00Z", "hours": "3.5",
                  "reason": "配合客户系统割接"}),
])
def test_a_canonical_approval_goes_out_and_reads_back_the_same(server: RunningServer, connector: Connector,
                                                               kind: str, form: dict[str, Any]) -> None:
    mapping = load_mapping(ROOT / f"mappings/wecom/{kind}.approval.yaml")
    canonical = {"kind": kind, "status": "pending", "applicant": {"user_id": "zhaolei"}, "form": form}
    if kind == "contract":
        canonical["subject"] = {"entity": "order", "id": "9f2c1e4a-0d6b-4c8e-a1f3-5b7d9e0c2a64"}
    sent = mapping.to_vendor(canonical)
    assert sent.errors == []
    [result] = connector.push(kind, [WriteOp(OpKind.CREATE, sent.value, "hub-1")])
    assert result.ok and result.created, result.error
    [record] = connector.get(kind, [str(result.external_id)])
    back = mapping.to_canonical(record)
    assert back.errors == []
    assert back.value["form"] == form
    assert back.value.get("subject") == canonical.get("subject")
    assert (back.value["status"], back.value["applicant"], back.value["number"]) == ("pending", {"user_id": "zhaolei"},
                                                                                     result.external_id)
    submitted = datetime.fromisoformat(back.value["submitted_at"].replace("Z", "+00:00"))
    assert abs(submitted - datetime.now(UTC)).total_seconds() < 60
