"""Salesforce's REST API over `HttpClient`: the OAuth2 token flow and Salesforce's error bodies.

The token endpoint lives on the login host (`login.salesforce.com`, `test.salesforce.com`,
a My Domain) while every API call goes to the `instance_url` the token answer names, so the
client learns where to call only once it has a token. Salesforce does not say how long a
session lives (it is an org setting, two hours by default): the client assumes two hours and
relies on the `401 INVALID_SESSION_ID` answer, on which `HttpClient.send` refreshes once.

Error bodies are arrays of `{"message", "errorCode", "fields"}`; the token endpoint answers
`{"error", "error_description"}` instead. Both become typed errors carrying the vendor's
words and code, never a header or a query string (a SOQL query may hold customer data).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, TokenCache, retry_after, short
from hub.config.model import System
from hub.config.secrets import reveal

log = structlog.get_logger()

DEFAULT_API_VERSION = "v60.0"
SESSION_LIFETIME = 7200.0  # seconds; Salesforce's default session timeout, never stated in the answer
TOKEN_PATH = "/services/oauth2/token"
_RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS"})
_UNAVAILABLE_CODES = frozenset({"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"})


def vendor_errors(response: requests.Response) -> list[dict[str, Any]]:
    """The `[{"message", "errorCode"}]` of an answer, whichever of Salesforce's shapes it has."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict) and "error" in body:  # the OAuth endpoint
        return [{"errorCode": str(body.get("error")), "message": str(body.get("error_description") or "")}]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [item for item in body if isinstance(item, dict) and ("errorCode" in item or "message" in item)]


def describe_errors(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """`"CODE: message"` of the first error (and how many more there were), and the first code."""
    if not errors:
        return "", None
    first = errors[0]
    code = str(first.get("errorCode") or first.get("statusCode") or "") or None
    message = str(first.get("message") or "").strip()
    fields = first.get("fields")
    if fields:
        message = f"{message} (fields: {', '.join(map(str, fields))})"
    text = f"{code}: {message}" if code else message
    if len(errors) > 1:
        text += f" (+{len(errors) - 1} more)"
    return short(text), code


class SalesforceClient(HttpClient):
    """One Salesforce org seen through its REST API (see the module docstring)."""

    vendor = "salesforce"

    def __init__(self, settings: System) -> None:
        auth = {name: reveal(value) for name, value in (settings.auth or {}).items()}
        options = {name: reveal(value) for name, value in (settings.options or {}).items()}
        login_url = str(auth.get("login_url") or reveal(settings.base_url) or "https://login.salesforce.com")
        super().__init__(login_url, timeout=settings.timeout, verify=options.get("ca_file") or True)
        if options.get("ca_file"):
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `session.verify`; an
            # explicitly configured CA must win, so the environment is not consulted.
            self.session.trust_env = False
        self.login_url = login_url.rstrip("/")
        self.api_version = str(options.get("api_version") or DEFAULT_API_VERSION)
        self.instance_url: str | None = None
        self._auth = auth
        self.protect(auth.get("client_secret"), auth.get("password"))
        self.tokens = TokenCache(self._fetch_token)
        self.log = log.bind(vendor=self.vendor, system=settings.name)

    # --- auth ----------------------------------------------------------------------------

    def _grant(self) -> dict[str, str]:
        grant = str(self._auth.get("grant_type") or "client_credentials")
        form = {"grant_type": grant, "client_id": str(self._auth.get("client_id") or ""),
                "client_secret": str(self._auth.get("client_secret") or "")}
        if grant == "password":
            form["username"] = str(self._auth.get("username") or "")
            form["password"] = str(self._auth.get("password") or "")
        return form

    def _fetch_token(self) -> tuple[str, float]:
        """A new access token; remembers the instance the org lives on."""
        response = self.send("POST", self.login_url + TOKEN_PATH, data=self._grant(), authorize=False,
                             headers={"Accept": "application/json"})
        try:
            body = response.json()
            token, instance_url = str(body["access_token"]), str(body["instance_url"])
        except (ValueError, KeyError, TypeError):
            raise Unavailable(f"salesforce: POST {TOKEN_PATH} answered without a token") from None
        self.instance_url = instance_url.rstrip("/")
        self.log.info("salesforce session opened", instance=self.instance_url)
        lifetime = body.get("expires_in")
        return token, float(lifetime) if isinstance(lifetime, (int, float, str)) and str(lifetime).isdigit() \
            else SESSION_LIFETIME

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = "Bearer " + self.tokens.get()

    def refresh_auth(self) -> None:
        self.tokens.forget()

    # --- addresses -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        """API paths are relative to `/services/data/<version>/` on the instance; paths that
        start with `/services/` (a `nextRecordsUrl`) are relative to the instance itself."""
        if "://" in path:
            return path
        instance = self.instance_url or self.login_url
        if path.startswith("/services/"):
            return instance + path
        return f"{instance}/services/data/{self.api_version}/{path.lstrip('/')}"

    def api(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
            headers: dict[str, str] | None = None) -> Any:
        """One REST call with a JSON body (if any); the decoded answer, None when empty."""
        call_headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, default=_json_default).encode("utf-8")
            call_headers["Content-Type"] = "application/json"
        response = self.send(method, path, params=params, data=data, headers=call_headers)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise Unavailable(f"salesforce: {method} {path.split('?')[0]} answered with something that is not JSON") from None

    # --- errors --------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status < 300:
            return None
        where = f"salesforce: HTTP {status} from {response.request.method} {_path(response.url)}"
        text, code = describe_errors(vendor_errors(response))
        if not text:
            text = short(response.text) or where
        if _path(response.url).endswith(TOKEN_PATH) and status in (400, 401, 403) and code not in _RATE_LIMIT_CODES:
            return AuthExpired(f"salesforce: the token request was refused: {text}")
        if status == 401 or code == "INVALID_SESSION_ID":
            return AuthExpired(f"{where}: {text}")
        if code in _RATE_LIMIT_CODES or status == 429:
            return RateLimited(f"{where}: {text}", retry_after(response.headers))
        if status >= 500 or status == 408 or code in _UNAVAILABLE_CODES:
            return Unavailable(f"{where}: {text}", retry_after(response.headers))
        if status == 300:
            return Rejected(f"several records match the external id ({where})", "MULTIPLE_CHOICES")
        return Rejected(text, code or str(status))


def _path(url: str) -> str:
    """The path of a URL without its query (a SOQL query may hold customer data)."""
    return urlsplit(url).path or "/"


def _json_default(value: Any) -> Any:
    """Mapped payloads may hold decimals and dates; Salesforce takes them as number and text."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
