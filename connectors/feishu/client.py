"""Feishu's open API over HTTP: tenant_access_token and the `{"code", "msg", "data"}` envelope.

Feishu answers errors with a non-zero `code` in the body, often with HTTP 200 or 400, so the
body decides before the HTTP status does:

- 99991663 (invalid or expired token), 99991661 (missing token), 99991668 (token of a
  previous secret): `AuthExpired`, so that `HttpClient.send` fetches a new token and retries once;
- 99991400 (frequency limit, HTTP 429): `RateLimited`, with the wait from the gateway's
  `x-ogw-ratelimit-reset` header (seconds) or `Retry-After`;
- 1395001 / 65001 (server errors, "please try again later") and any HTTP 5xx: `Unavailable`;
- 10003 / 10014 on the token call (wrong app id / secret): `AuthExpired` (nothing a retry of
  the record would fix, and nothing to dead-letter a record for);
- any other code: `Rejected` with Feishu's own `msg` and the code.
"""

from __future__ import annotations

from typing import Any

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, TokenCache, retry_after, short

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
TOKEN_CODES = frozenset({99991661, 99991663, 99991668})
RATE_LIMIT_CODES = frozenset({99991400})
SERVER_CODES = frozenset({1395001, 65001})
CREDENTIAL_CODES = frozenset({10003, 10014})
TOKEN_MARGIN = 300.0  # seconds before expiry when a cached token is replaced

log = structlog.get_logger()


class FeishuClient(HttpClient):
    """One app's view of the Feishu open API (see the module docstring)."""

    vendor = "feishu"

    def __init__(self, base_url: str, app_id: str, app_secret: str, *, timeout: float,
                 verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, verify=verify)
        self._app_id = app_id
        self._app_secret = app_secret
        self.protect(app_secret)
        self.tokens = TokenCache(self._fetch_token, margin=TOKEN_MARGIN)
        self.session.headers["Content-Type"] = "application/json; charset=utf-8"

    def _fetch_token(self) -> tuple[str, float]:
        """A new tenant_access_token and its lifetime (Feishu: 7200 s)."""
        response = self.send("POST", TOKEN_PATH, json={"app_id": self._app_id, "app_secret": self._app_secret},
                             authorize=False)
        body = _envelope(response) or {}
        token = body.get("tenant_access_token")
        if not isinstance(token, str) or not token:
            raise Unavailable(f"feishu: POST {TOKEN_PATH} answered without a tenant_access_token")
        log.debug("feishu token fetched", app_id=self._app_id, expire=body.get("expire"))
        return token, float(body.get("expire") or 7200)

    # --- hooks ---------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self.tokens.get()}"

    def refresh_auth(self) -> None:
        self.tokens.forget()

    def classify(self, response: requests.Response) -> ConnectorError | None:
        body = _envelope(response)
        code = body.get("code") if body is not None else None
        if body is None or not isinstance(code, int):
            return super().classify(response)
        if code == 0:
            return None if response.status_code < 400 else super().classify(response)
        message = short(str(body.get("msg") or "")) or "no message"
        where = f"feishu: {response.request.method} {_path(response)}"
        text = f"{where}: {message} (code {code})"
        if code in TOKEN_CODES or code in CREDENTIAL_CODES:
            return AuthExpired(text)
        if code in RATE_LIMIT_CODES or response.status_code == 429:
            return RateLimited(text, _rate_limit_wait(response))
        if code in SERVER_CODES or response.status_code >= 500:
            return Unavailable(text, retry_after(response.headers))
        return Rejected(f"{message} (code {code})", str(code))

    # --- calls ---------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             json: Any = None) -> dict[str, Any]:
        """One API call; its `data` object (empty when Feishu sent none)."""
        response = self.send(method, path, params=params, json=json)
        body = _envelope(response)
        if body is None:
            raise Unavailable(f"feishu: {method} {path.split('?', 1)[0]} answered without a JSON body")
        data = body.get("data")
        return data if isinstance(data, dict) else {}


def _envelope(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _rate_limit_wait(response: requests.Response) -> float | None:
    reset = response.headers.get("x-ogw-ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset))
        except ValueError:
            pass
    return retry_after(response.headers)


def _path(response: requests.Response) -> str:
    return requests.utils.urlparse(response.url).path or "/"
