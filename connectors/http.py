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

Redirects are never followed: `requests` would resend the body (a token request's client
secret, a record) and, for a same-host hop, the credentials to wherever `Location` points.
Any 3xx is an `Unavailable` naming the status (the base URL needs fixing; records wait
instead of being dead-lettered), except what a vendor's `classify` makes of a 300 (Salesforce's
"several records match this external id").

Vendors echo what they were sent in their error texts, tokens included. The client knows
every credential it sends (what `authorize` adds, and what a subclass registers with
`protect`, such as a client secret sent in a token request's body), and replaces each with
`***` in the message of every error `send` raises, so none reaches a log line or a dead letter.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable

DEFAULT_TIMEOUT = 30.0
_MESSAGE_LIMIT = 500  # characters of a vendor's error text kept in a message
SCRUBBED = "***"
_RECENT_CREDENTIALS = 16  # per-call credentials remembered for scrubbing (current and recent tokens)


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

    value: str = field(repr=False)
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
        self._secrets: set[str] = set()  # registered with `protect`
        self._sent: deque[str] = deque(maxlen=_RECENT_CREDENTIALS)  # what `authorize` added lately
        self._secrets_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    # --- secrets -------------------------------------------------------------------------

    def protect(self, *values: Any) -> None:
        """Credentials this client sends outside `authorize` (a client secret in a token
        request, an app secret in a query): `send` scrubs them from every error message."""
        with self._secrets_lock:
            self._secrets.update(str(v) for v in values if isinstance(v, str) and v.strip())

    def scrub(self, text: str) -> str:
        """`text` with every known credential replaced by `***`, longest first."""
        with self._secrets_lock:
            known = sorted({*self._secrets, *self._sent}, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, SCRUBBED)
        return text

    def _remember_sent(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Remember the header and query values `authorize` added: they are credentials. A
        `Bearer <token>` is remembered whole and as the bare token, which vendors echo."""
        for name, value in after.items():
            if not isinstance(value, str) or not value.strip() or before.get(name) == value:
                continue
            scheme, _, rest = value.partition(" ")
            for credential in (value, rest.strip()) if rest.strip() and scheme.isalpha() else (value,):
                with self._secrets_lock:
                    if credential not in self._sent:
                        self._sent.append(credential)

    def _scrubbed(self, error: ConnectorError) -> ConnectorError:
        """`error` with credentials scrubbed from its message (and from `Rejected.reason`)."""
        if error.args and isinstance(error.args[0], str):
            error.args = (self.scrub(error.args[0]), *error.args[1:])
        if isinstance(error, Rejected):
            error.reason = self.scrub(error.reason)
        return error

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

    def redirect_error(self, response: requests.Response) -> ConnectorError:
        """A 3xx: never followed (see the module docstring), so the base URL needs fixing."""
        status = response.status_code
        target = urlsplit(response.headers.get("Location") or "").hostname
        to = f" to host {target}" if target else ""
        return Unavailable(f"{self.vendor}: HTTP {status} from {response.request.method} {_path(response.url)}: "
                           f"redirected{to}, and redirects are not followed (check the base URL)")

    def json_body(self, response: requests.Response) -> Any:
        """The decoded JSON of a successful answer. A 2xx that is not JSON (a proxy's HTML
        page, a truncated body) is `Unavailable`: worth retrying, unlike a JSONDecodeError."""
        try:
            return response.json()
        except (ValueError, RecursionError):
            raise Unavailable(f"{self.vendor}: {response.request.method} {_path(response.url)} answered "
                              f"HTTP {response.status_code} with a body that is not JSON") from None

    def json_object(self, response: requests.Response) -> dict[str, Any]:
        """`json_body` when it is a JSON object; any other JSON is `Unavailable` too."""
        body = self.json_body(response)
        if not isinstance(body, dict):
            raise Unavailable(f"{self.vendor}: {response.request.method} {_path(response.url)} answered "
                              f"HTTP {response.status_code} with JSON that is not an object")
        return body

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
                before_headers, before_params = dict(call_headers), dict(call_params)
                self.authorize(call_headers, call_params)
                self._remember_sent(before_headers, call_headers)
                self._remember_sent(before_params, call_params)
            response = self._send_once(method, path, call_params, json, data, call_headers, timeout)
            error = self._error_of(response)
            if error is None:
                return response
            if isinstance(error, AuthExpired) and authorize and attempt == 1:
                self.refresh_auth()
                continue
            raise self._scrubbed(error)
        raise AssertionError("unreachable")

    def _error_of(self, response: requests.Response) -> ConnectorError | None:
        """`classify`, except that a redirect is always an error: 301-399 never reach
        `classify`, and a 300 it calls a success is one too."""
        status = response.status_code
        error = None if 300 < status < 400 else self.classify(response)
        if error is None and 300 <= status < 400:
            error = self.redirect_error(response)
        return error

    def _send_once(self, method: str, path: str, params: dict[str, Any], json: Any, data: Any,
                   headers: dict[str, str], timeout: float | None) -> requests.Response:
        url = self.url(path)
        try:
            # `verify` given explicitly: requests lets REQUESTS_CA_BUNDLE override session.verify
            response = self.session.request(method, url, params=params or None, json=json, data=data,
                                            headers=headers, timeout=timeout or self.timeout,
                                            verify=self.session.verify, allow_redirects=False)
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
