"""HubSpot's HTTP API: bearer auth (private app or OAuth refresh), and its error bodies.

A private app token never expires, so a 401 with one is final. An OAuth app trades its
refresh token for an access token at `POST /oauth/v1/token` (30 minutes of life), which a
`TokenCache` keeps and forgets on a 401 so that the call is retried once with a new one.

HubSpot explains every failure in a JSON body (`status`, `message`, `category`,
`correlationId`); 429s add `policyName` (SECONDLY, TEN_SECONDLY_ROLLING, DAILY) and
`X-HubSpot-RateLimit-*` headers, from which the wait is derived when there is no
`Retry-After`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import DEFAULT_TIMEOUT, HttpClient, TokenCache, retry_after, short
from hub.config.secrets import reveal

log = structlog.get_logger()

TOKEN_PATH = "/oauth/v1/token"
DAILY_WAIT = 3600.0  # the daily limit resets at midnight in the portal's zone, which we do not know
SECONDLY_WAIT = 1.0


class HubSpotClient(HttpClient):
    """One portal's API with one credential (see the module docstring)."""

    vendor = "hubspot"

    def __init__(self, base_url: str, auth: Mapping[str, Any], *, timeout: float = DEFAULT_TIMEOUT,
                 verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, verify=verify)
        values = {k: reveal(v) for k, v in (auth or {}).items()}
        self._static_token: str | None = values.get("access_token")
        self._oauth = {k: values.get(k) for k in ("client_id", "client_secret", "refresh_token")}
        self.protect(self._static_token, self._oauth["client_secret"], self._oauth["refresh_token"])
        self.tokens: TokenCache | None = None
        if not self._static_token:
            missing = [k for k, v in self._oauth.items() if not v]
            if missing:
                raise ConnectorError(f"hubspot: auth needs access_token, or client_id, client_secret and "
                                     f"refresh_token (missing {', '.join(missing)})")
            self.tokens = TokenCache(self._fetch_token, margin=120.0)
        self.log = log.bind(vendor="hubspot", host=urlsplit(self.base_url).netloc,
                            auth="private_app" if self._static_token else "oauth")

    # --- auth ----------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        token = self._static_token or (self.tokens.get() if self.tokens else None)
        headers["Authorization"] = f"Bearer {token}"

    def refresh_auth(self) -> None:
        if self.tokens is None:
            raise AuthExpired("hubspot: the private app token was refused (revoked or wrong portal)")
        self.log.info("hubspot access token refused, refreshing")
        self.tokens.forget()

    def _fetch_token(self) -> tuple[str, float]:
        """Trade the refresh token for an access token (HubSpot may hand back a new refresh token)."""
        form = {"grant_type": "refresh_token", **self._oauth}
        response = self.send("POST", TOKEN_PATH, data=form, authorize=False,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        body = self.json_object(response)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthExpired("hubspot: token endpoint answered without an access_token")
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            self._oauth["refresh_token"] = body["refresh_token"]
            self.protect(body["refresh_token"])
        self.log.info("hubspot access token fetched", expires_in=body.get("expires_in"))
        return token, float(body.get("expires_in") or 1800)

    # --- errors --------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status < 400:
            return None
        body = _json(response)
        words = _message(body) or short(response.text) or response.reason or ""
        where = f"hubspot: HTTP {status} from {response.request.method} {urlsplit(response.url).path or '/'}"
        if status == 429:
            return RateLimited(f"{where}: {words}", _rate_limit_wait(response.headers, body))
        if status == 401:
            return AuthExpired(f"{where}: {words}")
        if status >= 500 or status == 408:
            return Unavailable(f"{where}: {words}", retry_after(response.headers))
        if response.request.url and urlsplit(response.request.url).path == TOKEN_PATH:
            return AuthExpired(f"{where}: {words}")  # a refused refresh token: credentials, not data
        return Rejected(words or where, str(body.get("category") or status))

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None) -> tuple[int, dict[str, Any]]:
        """One JSON call: its status (207 is not an error) and its decoded body (`Unavailable`
        when a success is not JSON: a proxy's page, a truncated answer)."""
        response = self.send(method, path, params=params, json=json)
        if not response.content:
            return response.status_code, {}
        body = self.json_body(response)
        return response.status_code, body if isinstance(body, dict) else {"results": body}


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"results": body}


def _message(body: Mapping[str, Any]) -> str:
    """HubSpot's words: message and category, plus the first detail when there is one."""
    message = str(body.get("message") or "").strip()
    category = body.get("category") or body.get("errorType")
    text = f"{message} ({category})" if message and category else message
    return short(text)


def _rate_limit_wait(headers: Mapping[str, str], body: Mapping[str, Any]) -> float:
    """Seconds to wait after a 429: Retry-After, else the policy's window."""
    given = retry_after(headers)
    if given is not None:
        return given
    policy = str(body.get("policyName") or "").upper()
    if policy == "DAILY":
        return DAILY_WAIT
    interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        return max(0.0, float(interval) / 1000.0) if interval else SECONDLY_WAIT
    except ValueError:
        return SECONDLY_WAIT
