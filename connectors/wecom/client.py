"""WeCom's HTTP API: the access_token flow and the `errcode` envelope as typed errors.

WeCom answers almost everything with HTTP 200 and puts the outcome in the body
(`{"errcode": 0, "errmsg": "ok"}`), so `classify` reads the body after HTTP itself:

- 40014 (invalid access_token), 42001 (expired), 41001 (missing) -> `AuthExpired`: the token
  is fetched again at once and the call retried once (`HttpClient.send`);
- 45009 (API frequency limit) and 45033 (too many concurrent calls) -> `RateLimited`
  (WeCom gives no Retry-After, so the engine's backoff decides);
- -1 (system busy) -> `Unavailable`;
- anything else -> `Rejected` with WeCom's own errcode and errmsg.

The token travels as `?access_token=`; `HttpClient` never puts a query string into a message,
and neither does this module.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, TokenCache, short

log = structlog.get_logger()

TOKEN_PATH = "cgi-bin/gettoken"
AUTH_CODES = frozenset({40014, 42001, 41001})
RATE_CODES = frozenset({45009, 45033})
BUSY_CODES = frozenset({-1})


class WeComClient(HttpClient):
    """One app's view of WeCom: a cached access_token and JSON calls under /cgi-bin."""

    vendor = "wecom"

    def __init__(self, base_url: str, corp_id: str, secret: str, *, timeout: float,
                 verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, verify=verify)
        self._corp_id = corp_id
        self._secret = secret
        self.protect(secret)
        self.tokens = TokenCache(self._fetch_token)
        self.log = log.bind(vendor=self.vendor)

    # --- auth ----------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        response = self.send("GET", TOKEN_PATH, params={"corpid": self._corp_id, "corpsecret": self._secret},
                             authorize=False)
        body = response.json()
        token = body.get("access_token")
        if not token:
            raise Unavailable("wecom: GET /cgi-bin/gettoken answered without an access_token")
        self.log.info("wecom token fetched", expires_in=body.get("expires_in"))
        return str(token), float(body.get("expires_in") or 7200)

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        params["access_token"] = self.tokens.get()

    def refresh_auth(self) -> None:
        self.tokens.forget()

    # --- errors --------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        error = super().classify(response)
        if error is not None:
            return error
        try:
            body = response.json()
        except ValueError:
            where = f"{response.request.method} {_path(response.url)}"
            return Unavailable(f"wecom: {where} answered HTTP {response.status_code} without JSON")
        if not isinstance(body, dict):
            return Unavailable(f"wecom: {response.request.method} {_path(response.url)} answered a non-object")
        return error_for(body, f"{response.request.method} {_path(response.url)}")

    # --- calls ---------------------------------------------------------------------------

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One JSON call; the envelope already checked."""
        result: dict[str, Any] = self.send("POST", path, json=body).json()
        return result


def error_for(body: dict[str, Any], where: str) -> ConnectorError | None:
    """The typed error a WeCom envelope stands for, or None when errcode is 0."""
    try:
        code = int(body.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return Unavailable(f"wecom: {where} answered an unreadable errcode")
    if code == 0:
        return None
    message = f"wecom: {where}: errcode {code}: {short(str(body.get('errmsg', '')))}"
    if code in AUTH_CODES:
        return AuthExpired(message)
    if code in RATE_CODES:
        return RateLimited(message, None)
    if code in BUSY_CODES:
        return Unavailable(message)
    return Rejected(short(f"errcode {code}: {body.get('errmsg', '')}"), str(code))


def _path(url: str) -> str:
    """The path of a URL without its query, which holds the access_token."""
    return urlsplit(url).path or "/"
