"""HTTP for a declared REST API: the five auth kinds and the declared error mapping.

Auth is whatever the admin declared: a static bearer token, HTTP basic, an API key in a
header or the query string, OAuth2 client credentials (the token is cached until shortly
before it expires, and fetched again when the server answers 401), or nothing. Static
credentials cannot be refreshed, so a 401 with them is final (`AuthExpired`).

Errors follow HTTP, with the vendor's words found where `options.errors.message` points:
429 is `RateLimited` and 408/5xx `Unavailable` (both with Retry-After), 401 `AuthExpired`,
any other 4xx `Rejected`. APIs that answer errors inside a 200 (common with Chinese ERP
gateways) declare `errors.ok`, a condition a successful answer satisfies.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, TokenCache, retry_after, short
from connectors.rest.paths import Expr, compile_expr
from hub.config.model import System
from hub.config.secrets import Secret, reveal

DEFAULT_TOKEN_LIFETIME = 3600.0  # when the token endpoint does not say
TOKEN_MARGIN = 60.0              # seconds before expiry at which a new token is fetched


class NotFound(Rejected):
    """HTTP 404: for a get by id, the record does not exist (it is left out, not an error)."""


@dataclass(frozen=True)
class AuthSettings:
    """The `auth` block with secrets revealed (never shown: `repr=False`)."""

    kind: str = "none"
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    key: str = field(default="", repr=False)
    name: str = ""
    location: str = "header"
    token_url: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""
    client_auth: str = "basic"

    @classmethod
    def of(cls, block: dict[str, Any]) -> AuthSettings:
        values = {k: str(reveal(v)) for k, v in block.items() if v is not None}
        if "in" in values:
            values["location"] = values.pop("in")
        return cls(**values)


@dataclass(frozen=True)
class ErrorSettings:
    message: Expr | None = None
    code: Expr | None = None
    ok: Expr | None = None

    @classmethod
    def of(cls, block: dict[str, Any]) -> ErrorSettings:
        return cls(compile_expr(block.get("message"), "options.errors.message"),
                   compile_expr(block.get("code"), "options.errors.code"),
                   compile_expr(block.get("ok"), "options.errors.ok"))


class RestClient(HttpClient):
    """`HttpClient` with the declared auth and error mapping (see the module docstring)."""

    def __init__(self, system: System) -> None:
        options = system.options or {}
        verify: bool | str = options.get("ca_file") or bool(options.get("verify_tls", True))
        super().__init__(str(reveal(system.base_url) or ""), timeout=system.timeout, verify=verify)
        self.vendor = system.name
        self.auth = AuthSettings.of(dict(system.auth or {}))
        self.protect(self.auth.token, self.auth.password, self.auth.key, self.auth.client_secret)
        self.errors = ErrorSettings.of(dict(options.get("errors") or {}))
        for name, value in (options.get("headers") or {}).items():
            self.session.headers[name] = str(reveal(value))
            if isinstance(value, Secret):  # a header given as ${...} is a credential
                self.protect(str(reveal(value)))
        self.tokens = TokenCache(self._fetch_token, margin=TOKEN_MARGIN)
        self.log = structlog.get_logger().bind(connector="rest", system=system.name)

    # --- auth ------------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        auth = self.auth
        if auth.kind == "bearer":
            headers["Authorization"] = f"Bearer {auth.token}"
        elif auth.kind == "basic":
            headers["Authorization"] = basic_header(auth.username, auth.password)
        elif auth.kind == "api_key":
            (params if auth.location == "query" else headers)[auth.name] = auth.key
        elif auth.kind == "oauth2":
            headers["Authorization"] = f"Bearer {self.tokens.get()}"

    def refresh_auth(self) -> None:
        if self.auth.kind != "oauth2":  # static credentials: a 401 is final
            raise AuthExpired(f"{self.vendor}: the server refused the {self.auth.kind} credentials (HTTP 401); "
                              "they cannot be refreshed, check them")
        self.log.info("oauth2 token refused, fetching a new one")
        self.tokens.forget()

    def _fetch_token(self) -> tuple[str, float]:
        auth = self.auth
        form = {"grant_type": "client_credentials"}
        if auth.scope:
            form["scope"] = auth.scope
        headers: dict[str, str] = {"Accept": "application/json"}
        if auth.client_auth == "body":
            form.update(client_id=auth.client_id, client_secret=auth.client_secret)
        else:
            headers["Authorization"] = basic_header(auth.client_id, auth.client_secret)
        try:
            response = self.send("POST", auth.token_url, data=form, headers=headers, authorize=False)
        except (Rejected, AuthExpired) as exc:
            raise AuthExpired(f"{self.vendor}: the token endpoint refused the client credentials: {exc}") from None
        try:
            answer = response.json()
            token = str(answer["access_token"])
        except (ValueError, KeyError, TypeError):
            raise Unavailable(f"{self.vendor}: the token endpoint answered no access_token") from None
        lifetime = answer.get("expires_in") if isinstance(answer, dict) else None
        try:
            seconds = float(lifetime) if lifetime is not None else DEFAULT_TOKEN_LIFETIME
        except (TypeError, ValueError):
            seconds = DEFAULT_TOKEN_LIFETIME
        self.log.info("oauth2 token fetched", expires_in=seconds)
        return token, seconds

    # --- errors ----------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status < 400:
            return self._envelope_error(response)
        message, code = self.vendor_message(response)
        where = f"{self.vendor}: HTTP {status} from {response.request.method} {_path(response.url)}"
        if status == 429:
            return RateLimited(f"{where}: {message}", retry_after(response.headers))
        if status == 401:
            return AuthExpired(f"{where}: {message}")
        if status >= 500 or status == 408:
            return Unavailable(f"{where}: {message}", retry_after(response.headers))
        if status == 404:
            return NotFound(message or where, code or "404")
        return Rejected(message or where, code or str(status))

    def _envelope_error(self, response: requests.Response) -> ConnectorError | None:
        if self.errors.ok is None or not response.content or self._is_token_answer(response):
            return None
        try:
            answer = response.json()
        except ValueError:
            return None
        if self.errors.ok.search(answer):
            return None
        message, code = self._message_of(answer, "")
        return Rejected(message or f"{self.vendor}: the answer does not satisfy errors.ok ({self.errors.ok.text})",
                        code)

    def _is_token_answer(self, response: requests.Response) -> bool:
        """Token endpoints speak RFC 6749, not the API's envelope: `errors.ok` does not apply."""
        if self.auth.kind != "oauth2":
            return False
        return _path(response.url) == _path(self.url(self.auth.token_url))

    def vendor_message(self, response: requests.Response) -> tuple[str, str | None]:
        """The error text the declaration points at (else the body, shortened) and its code."""
        try:
            answer: Any = response.json()
        except ValueError:
            return short(response.text), None
        return self._message_of(answer, short(response.text))

    def _message_of(self, answer: Any, fallback: str) -> tuple[str, str | None]:
        message = self.errors.message.search(answer) if self.errors.message else None
        code = self.errors.code.search(answer) if self.errors.code else None
        text = short(message if isinstance(message, str) else _as_text(message)) if message not in (None, "") else fallback
        return text, None if code in (None, "") else str(code)


def basic_header(username: str, password: str) -> str:
    """RFC 7617 credentials, UTF-8 encoded (Chinese user names are common)."""
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_as_text(v) for v in value)
    return str(value)


def _path(url: str) -> str:
    return requests.utils.urlparse(url).path or "/"
