"""`connectors.http.HttpClient` against real loopback servers: redirects are never followed
(credentials must not travel to another host), known credentials are scrubbed from vendor
error texts, and a successful answer that is not JSON is a retryable `Unavailable`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.base import AuthExpired, Rejected, Unavailable
from connectors.dingtalk.client import DingTalkClient
from connectors.http import HttpClient, Token, TokenCache
from connectors.salesforce.client import SalesforceClient
from hub.config.model import System

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    """A loopback HTTP server answering every request with `answer(seen)`; records what it saw."""

    answer: Callable[[Seen], Answer]
    host: str = "127.0.0.1"
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                stub.seen.append(seen)
                status, headers, body = stub.answer(seen)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = _any

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Stub]:
    """Another host (127.0.0.2) that must never see a request."""
    stub = Stub(lambda seen: (200, {"Content-Type": "application/json"}, b'{"errcode":0,"result":{"list":[]}}'),
                host="127.0.0.2")
    yield stub
    stub.stop()


def redirecting(status: int, target: Stub, spare: str = "") -> Stub:
    """A server that redirects every request (except paths starting with `spare`) to `target`."""
    def answer(seen: Seen) -> Answer:
        if spare and seen.path.startswith(spare):
            return 200, {"Content-Type": "application/json"}, b'{"accessToken":"REAL-TOKEN","expireIn":7200}'
        return status, {"Location": f"{target.url}{seen.path}"}, b""
    return Stub(answer)


class BearerClient(HttpClient):
    vendor = "acme"

    def __init__(self, base_url: str, token: str = "tok-1234567890") -> None:
        super().__init__(base_url, timeout=5)
        self.tokens = TokenCache(lambda: (token, 3600.0))

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self.tokens.get()}"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_unavailable_naming_the_status(status: int, elsewhere: Stub) -> None:
    api = redirecting(status, elsewhere)
    client = BearerClient(api.url)
    try:
        with pytest.raises(Unavailable) as caught:
            client.send("POST", "/v1/records", json={"name": "ACME"})
    finally:
        client.close()
        api.stop()
    assert elsewhere.seen == []
    assert f"HTTP {status}" in str(caught.value) and "redirects are not followed" in str(caught.value)
    assert "127.0.0.2" in str(caught.value) and "tok-1234567890" not in str(caught.value)


def test_a_token_request_is_not_redirected_with_its_secret(elsewhere: Stub) -> None:
    api = redirecting(307, elsewhere)
    client = HttpClient(api.url, timeout=5)
    try:
        with pytest.raises(Unavailable):
            client.send("POST", "/oauth/token", data={"client_secret": "s3cr3t-value"}, authorize=False)
    finally:
        client.close()
        api.stop()
    assert elsewhere.seen == []


def test_dingtalk_api_calls_are_not_redirected_with_the_access_token(elsewhere: Stub) -> None:
    """The reviewer's case: a token fetched from the real host, then a 307 to another host."""
    api = redirecting(307, elsewhere, spare="/v1.0/oauth2/accessToken")
    client = DingTalkClient(api.url, "appkey", "APPSECRET", timeout=5)
    try:
        with pytest.raises(Unavailable, match="307"):
            client.list_instance_ids("PROC", 0, 1, 0, 20)
    finally:
        client.close()
        api.stop()
    assert elsewhere.seen == []


def test_a_300_still_reaches_the_vendors_classify() -> None:
    """Salesforce answers 300 when several records match an external id: a Rejected of its own."""
    api = Stub(lambda seen: (300, {"Content-Type": "application/json"}, b'["/services/data/v60.0/sobjects/Account/001"]'))
    settings = System(name="crm", connector="salesforce", base_url=api.url,
                      auth={"client_id": "id", "client_secret": "secret"}, webhook={}, options={}, timeout=5.0)
    salesforce, plain = SalesforceClient(settings), HttpClient(api.url, timeout=5)
    try:
        with pytest.raises(Rejected) as caught:
            salesforce.send("PATCH", f"{api.url}/services/data/v60.0/sobjects/Account/Key__c/k1", authorize=False)
        assert caught.value.vendor_code == "MULTIPLE_CHOICES"
        with pytest.raises(Unavailable, match="HTTP 300"):  # a client without its own meaning for 300
            plain.send("GET", "/x", authorize=False)
    finally:
        salesforce.close()
        plain.close()
        api.stop()


def echo_request(status: int) -> Callable[[Seen], Answer]:
    """A vendor whose error text repeats the request: its headers and its body."""
    def answer(seen: Seen) -> Answer:
        text = f"bad request: auth={seen.headers.get('Authorization')} body={seen.body.decode()}"
        return status, {"Content-Type": "application/json"}, json.dumps({"message": text}).encode()
    return answer


def test_a_token_echoed_in_a_vendor_error_is_scrubbed() -> None:
    api = Stub(echo_request(400))
    client = BearerClient(api.url, token="tok-abcdef-0123456789")
    try:
        with pytest.raises(Rejected) as caught:
            client.send("POST", "/v1/records", json={"name": "ACME"})
    finally:
        client.close()
        api.stop()
    assert "tok-abcdef-0123456789" not in str(caught.value) and "tok-abcdef" not in caught.value.reason
    assert "auth=***" in caught.value.reason and "ACME" in caught.value.reason


def test_a_protected_secret_sent_in_a_body_is_scrubbed_from_an_auth_error() -> None:
    api = Stub(echo_request(401))
    client = HttpClient(api.url, timeout=5)
    client.protect("client-secret-XYZ-987", "", None)
    try:
        with pytest.raises(AuthExpired) as caught:
            client.send("POST", "/oauth/token", data={"client_secret": "client-secret-XYZ-987"}, authorize=False)
    finally:
        client.close()
        api.stop()
    assert "client-secret-XYZ-987" not in str(caught.value) and "client_secret=***" in str(caught.value)


def test_vendor_clients_protect_the_secrets_of_their_token_requests() -> None:
    api = Stub(echo_request(400))
    client = DingTalkClient(api.url, "appkey", "APP-SECRET-4242", timeout=5)
    try:
        with pytest.raises(Rejected) as caught:
            client.list_instance_ids("PROC", 0, 1, 0, 20)  # the token request itself is refused
    finally:
        client.close()
        api.stop()
    assert "APP-SECRET-4242" not in str(caught.value)


def test_a_token_never_shows_in_a_repr() -> None:
    assert "secret-token-value" not in repr(Token("secret-token-value", 1.0))


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"truncated": ', b"[" * 100_000 + b"]" * 100_000])
def test_a_success_that_is_not_json_is_unavailable(body: bytes) -> None:
    api = Stub(lambda seen: (200, {"Content-Type": "text/html"}, body))
    client = HttpClient(api.url, timeout=5)
    try:
        with pytest.raises(Unavailable, match="GET /list answered HTTP 200 with a body that is not JSON"):
            client.json_body(client.send("GET", "/list", authorize=False))
    finally:
        client.close()
        api.stop()


def test_json_that_is_not_an_object_is_unavailable_where_an_object_is_needed() -> None:
    api = Stub(lambda seen: (200, {"Content-Type": "application/json"}, b"[1, 2]"))
    client = HttpClient(api.url, timeout=5)
    try:
        response = client.send("GET", "/list", authorize=False)
        assert client.json_body(response) == [1, 2]
        with pytest.raises(Unavailable, match="not an object"):
            client.json_object(response)
    finally:
        client.close()
        api.stop()
