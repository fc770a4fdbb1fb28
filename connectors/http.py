"""What every HTTP connector shares: a pooled session, timeouts, typed errors, token refresh.

A vendor client subclasses `HttpClient` and overrides three hooks:

- `authorize(headers, params)` adds the credentials of one call (a bearer header, a
  `?access_token=`), fetching a token through its `TokenCache` when there is none yet;
- `refresh_auth()` forgets the token, so that the next `authorize` fetches a new one;
- `classify(response)` turns a vendor answer into a `ConnectorError`, or `None` when it is a
  success. The default covers what HTTP itself says (429, 401, 5xx, other 4xx); vendors
  whose errors hide in a 200 envelope (DingTalk, Feishu, WeCom) look inside the body too.

`send` then does the rest the same way for every vendor: a timeout on every call, network
failures as `Unavailable`, one token refresh and retry on `AuthExpired`, and an API-call
count by status for the benchmarks and `/metrics`. Messages carry the method, the path and
the vendor's words, never a query string or a header, so that no token reaches a log line.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable

DEFAULT_TIMEOUT = 30.0
_MESSAGE_LIMIT = 500  # characters of a vendor's error text kept in a message


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a `Retry-After` header, given as seconds or as an HTTP date."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def short(text: str) -> str:
    """A vendor's error text cut to a size a log line and a dead letter can hold."""
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


@dataclass
class Token:
    """An access token and the monotonic time after which it must not be used."""

    value: str
    expires_at: float


class TokenCache:
    """One token per client, fetched on first use and again shortly before it expires.

    `fetch` returns the token and its lifetime in seconds. A lock keeps concurrent calls of
    one client (ERPNext pushes documents from a few threads) from fetching it several times.
    """

    def __init__(self, fetch: Callable[[], tuple[str, float]], margin: float = 300.0) -> None:
        self._fetch = fetch
        self._margin = margin
        self._token: Token | None = None
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self) -> str:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at:
                value, lifetime = self._fetch()
                self.fetches += 1
                usable = max(lifetime - self._margin, lifetime / 2)
                token = self._token = Token(value, time.monotonic() + usable)
            return token.value

    def forget(self) -> None:
        with self._lock:
            self._token = None


class HttpClient:
    """A vendor's HTTP API as seen by one connector instance (see the module docstring)."""

    vendor = "http"

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT, pool_size: int = 8,
                 verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "synchub"
        self.calls: Counter[int] = Counter()  # API calls by HTTP status; 0 = no answer

    def close(self) -> None:
        self.session.close()

    # --- hooks ---------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Add this call's credentials. The default sends none."""

    def refresh_auth(self) -> None:
        """Forget the current token. The default has none to forget, so expiry is final."""
        raise AuthExpired(f"{self.vendor}: credentials refused")

    def classify(self, response: requests.Response) -> ConnectorError | None:
        """The error this answer means, or None for a success (see the module docstring)."""
        status = response.status_code
        if status < 400:
            return None
        text = short(response.text)
        where = f"{self.vendor}: HTTP {status} from {response.request.method} {_path(response.url)}"
        if status == 429:
            return RateLimited(f"{where}: {text}", retry_after(response.headers))
        if status == 401:
            return AuthExpired(f"{where}: {text}")
        if status >= 500 or status == 408:
            return Unavailable(f"{where}: {text}", retry_after(response.headers))
        return Rejected(text or where, str(status))

    # --- calls ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL for a path relative to the base URL (absolute URLs pass through)."""
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, data: Any = None, headers: Mapping[str, str] | None = None,
             authorize: bool = True, timeout: float | None = None) -> requests.Response:
        """One API call, classified; an `AuthExpired` gets one token refresh and one retry."""
        for attempt in (1, 2):
            call_headers = dict(headers or {})
            call_params = dict(params or {})
            if authorize:
                self.authorize(call_headers, call_params)
            response = self._send_once(method, path, call_params, json, data, call_headers, timeout)
            error = self.classify(response)
            if error is None:
                return response
            if isinstance(error, AuthExpired) and authorize and attempt == 1:
                self.refresh_auth()
                continue
            raise error
        raise AssertionError("unreachable")

    def _send_once(self, method: str, path: str, params: dict[str, Any], json: Any, data: Any,
                   headers: dict[str, str], timeout: float | None) -> requests.Response:
        url = self.url(path)
        try:
            # `verify` given explicitly: requests lets REQUESTS_CA_BUNDLE override session.verify
            response = self.session.request(method, url, params=params or None, json=json, data=data,
                                            headers=headers, timeout=timeout or self.timeout,
                                            verify=self.session.verify)
        except requests.Timeout:
            self.calls[0] += 1
            raise Unavailable(f"{self.vendor}: {method} {_path(url)} timed out after {timeout or self.timeout:g} s") from None
        except requests.RequestException as exc:
            self.calls[0] += 1
            raise Unavailable(f"{self.vendor}: {method} {_path(url)} failed: {type(exc).__name__}") from None
        self.calls[response.status_code] += 1
        return response

    @property
    def call_count(self) -> int:
        """API calls made so far, answered or not."""
        return sum(self.calls.values())


def _path(url: str) -> str:
    """The path of a URL without its query, which may hold a token."""
    return urlsplit(url).path or "/"
