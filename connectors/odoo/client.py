"""Odoo's external API over JSON-RPC: `common.authenticate` once, then `object.execute_kw`.

Odoo keeps no session for the external API: the database, the user id and the API key
travel in the body of every call. So the only thing worth caching is the uid that
`authenticate` answers; it is forgotten and fetched again once when a call answers
`AccessDenied` (a rebuilt database gives the user a new uid), and a second refusal is final.

Odoo answers HTTP 200 with an error envelope for every server-side exception, so the
classification looks inside the body: `data.name` is the exception's dotted class name.
The API key is in every request body; it is never logged, and any message that might echo
it (Odoo's own texts do not, but a proxy's might) is scrubbed before it leaves this module.
"""

from __future__ import annotations

import itertools
import json
import threading
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests
import structlog

from connectors.base import (
    AuthExpired,
    ConnectorError,
    RateLimited,
    Rejected,
    Unavailable,
)
from connectors.http import HttpClient, retry_after, short

log = structlog.get_logger()

PATH = "/jsonrpc"
# Exceptions that say "this record or call is wrong": retrying the same call cannot help.
_REJECTIONS = {
    "odoo.exceptions.ValidationError", "odoo.exceptions.UserError", "odoo.exceptions.MissingError",
    "odoo.exceptions.AccessError", "odoo.exceptions.RedirectWarning", "odoo.exceptions.CacheMiss",
    "builtins.ValueError", "builtins.TypeError", "builtins.KeyError", "builtins.AttributeError",
    "psycopg2.errors.UniqueViolation", "psycopg2.errors.NotNullViolation", "psycopg2.errors.ForeignKeyViolation",
    "psycopg2.errors.CheckViolation", "psycopg2.IntegrityError",
}
# Exceptions of a busy or restarting server: the same call may well succeed later.
_TRANSIENT = {
    "psycopg2.errors.SerializationFailure", "psycopg2.extensions.TransactionRollbackError",
    "psycopg2.errors.LockNotAvailable", "psycopg2.OperationalError", "psycopg2.errors.DeadlockDetected",
}
_AUTH = {"odoo.exceptions.AccessDenied", "odoo.http.SessionExpiredException"}


def _wire(value: Any) -> Any:
    """Values mappings may produce beyond JSON's own, as Odoo's fields take them."""
    if isinstance(value, Decimal):
        return float(value)  # Odoo's float and monetary fields take JSON numbers
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class OdooClient(HttpClient):
    """One Odoo database seen as one user (see the module docstring)."""

    vendor = "odoo"

    def __init__(self, base_url: str, database: str, login: str, api_key: str, *, timeout: float,
                 verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, verify=verify)
        self.database = database
        self.login = login
        self._api_key = api_key
        self._uid: int | None = None
        self._uid_lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self.authentications = 0
        self.log = log.bind(vendor="odoo", database=database, login=login)

    def __repr__(self) -> str:
        return f"OdooClient(base_url={self.base_url!r}, database={self.database!r}, login={self.login!r})"

    # --- auth ----------------------------------------------------------------------------

    def uid(self) -> int:
        """The user id, from `common.authenticate` on first use."""
        with self._uid_lock:
            if self._uid is None:
                answer = self.rpc("common", "authenticate", [self.database, self.login, self._api_key, {}])
                self.authentications += 1
                if isinstance(answer, bool) or not isinstance(answer, int):
                    raise AuthExpired(f"odoo: authenticate refused login {self.login!r} on database {self.database!r}")
                self._uid = answer
                self.log.info("odoo authenticated", uid=answer)
            return self._uid

    def refresh_auth(self) -> None:
        """Forget the uid, so that the next call authenticates again."""
        with self._uid_lock:
            self._uid = None

    # --- calls ---------------------------------------------------------------------------

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        """`object.execute_kw` with the cached uid; one re-authentication on AccessDenied."""
        for attempt in (1, 2):
            uid = self.uid()
            try:
                return self.rpc("object", "execute_kw",
                                [self.database, uid, self._api_key, model, method, args, kwargs or {}],
                                what=f"{model}.{method}")
            except AuthExpired:
                if attempt == 2:
                    raise
                self.log.info("odoo access denied, authenticating again", model=model, method=method)
                self.refresh_auth()
        raise AssertionError("unreachable")

    def rpc(self, service: str, method: str, args: list[Any], what: str | None = None) -> Any:
        """One JSON-RPC call; the result, or the typed error its envelope means."""
        call = {"jsonrpc": "2.0", "method": "call", "id": next(self._request_ids),
                "params": {"service": service, "method": method, "args": args}}
        try:
            body = json.dumps(call, default=_wire, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise Rejected(f"odoo: {what or method}: payload is not JSON: {exc}", "BAD_PAYLOAD") from None
        response = self.send("POST", PATH, data=body, headers={"Content-Type": "application/json"}, authorize=False)
        try:
            return response.json()["result"]
        except (ValueError, KeyError, TypeError):
            raise Unavailable(f"odoo: POST {PATH} {what or method}: answer is not a JSON-RPC result") from None

    # --- errors --------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status != 200:
            return self._http_error(response)
        try:
            payload = response.json()
        except ValueError:
            return Unavailable(f"odoo: POST {PATH}: HTTP 200 but the answer is not JSON")
        if not isinstance(payload, dict):
            return Unavailable(f"odoo: POST {PATH}: HTTP 200 but the answer is not a JSON-RPC object")
        error = payload.get("error")
        if error is None:
            return None
        return self.envelope_error(error)

    def _http_error(self, response: requests.Response) -> ConnectorError:
        status = response.status_code
        where = f"odoo: HTTP {status} from POST {PATH}"
        if status == 429:
            return RateLimited(f"{where}: too many requests", retry_after(response.headers))
        if status in (502, 503, 504) or status >= 500 or status == 408:
            return Unavailable(f"{where}: {self.scrub(short(_text_of(response)))}", retry_after(response.headers))
        if status in (401, 403):
            return AuthExpired(f"{where}: access refused by the server or a proxy in front of it")
        return Rejected(f"{where}: {self.scrub(short(_text_of(response)))}", str(status))

    def envelope_error(self, error: Any) -> ConnectorError:
        """Odoo's `{"code", "message", "data": {"name", "message", ...}}` as a typed error."""
        data = error.get("data") if isinstance(error, dict) else None
        data = data if isinstance(data, dict) else {}
        name = str(data.get("name") or "")
        message = self.scrub(short(str(data.get("message") or (error or {}).get("message") or "Odoo Server Error")))
        code = error.get("code") if isinstance(error, dict) else None
        if name in _AUTH or code == 100:
            return AuthExpired(f"odoo: {name or 'session expired'}: {message}")
        if name in _TRANSIENT:
            return Unavailable(f"odoo: {name}: {message}")
        if name in _REJECTIONS or name.startswith("odoo.exceptions."):
            return Rejected(message, name)
        # anything else is a server-side bug or an unknown exception: retrying will not fix it
        return Rejected(message, name or str(code))

    def scrub(self, text: str) -> str:
        """The text with the API key masked, should anything ever echo it."""
        return text.replace(self._api_key, "***") if self._api_key else text


def _text_of(response: requests.Response) -> str:
    """The useful words of an error page: a proxy's HTML title, or the body as it is."""
    text = response.text or ""
    lowered = text.lower()
    start, end = lowered.find("<title>"), lowered.find("</title>")
    if 0 <= start < end:
        return text[start + len("<title>"):end].strip()
    return text
