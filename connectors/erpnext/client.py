"""ERPNext / Frappe over HTTP: token auth and Frappe's error bodies turned into typed errors.

Every call carries `Authorization: token <api_key>:<api_secret>`. API keys do not expire,
so there is no token to refresh: a 401 is retried once by `HttpClient.send` (a proxy may
have hiccuped) and then stays an `AuthExpired` for the engine to report.

Frappe answers an exception with its HTTP status (`http_status_code` of the exception class:
417 ValidationError and its kin such as MandatoryError, 409 DuplicateEntryError, 404
DoesNotExistError, 403 PermissionError, 401 AuthenticationError) and a JSON body:
`exc_type`, `exception` (the last traceback line), `exc` (the traceback) and
`_server_messages`, a JSON string holding a list of JSON strings, each a message dict. The
human text a dead letter needs is in `_server_messages`; `exception` is the fallback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from connectors.base import AuthExpired, ConnectorError, RateLimited, Rejected, Unavailable
from connectors.http import HttpClient, retry_after, short

_TAGS = re.compile(r"<[^>]+>")


class ErpnextClient(HttpClient):
    """One ERPNext site, seen with one integration user's API key."""

    vendor = "erpnext"

    def __init__(self, base_url: str, api_key: str, api_secret: str, *, timeout: float, pool_size: int = 8,
                 verify: bool | str = True) -> None:
        super().__init__(base_url, timeout=timeout, pool_size=pool_size, verify=verify)
        self._authorization = f"token {api_key}:{api_secret}"
        self.protect(api_secret, self._authorization)  # scrubbed from any vendor text we raise
        self.session.headers["Accept"] = "application/json"

    # --- hooks ---------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = self._authorization

    def refresh_auth(self) -> None:
        """API keys do not expire: nothing to forget, the retry uses the same key."""

    def classify(self, response: requests.Response) -> ConnectorError | None:
        status = response.status_code
        if status < 400:
            return None
        where = f"erpnext: HTTP {status} from {response.request.method} {_path(response)}"
        exc_type, message = frappe_error(response)
        said = f"{exc_type}: {message}" if exc_type and message else (message or exc_type or "")
        if status == 429:
            return RateLimited(f"{where}: {said or 'too many requests'}", retry_after(response.headers))
        if status == 401:
            return AuthExpired(f"{where}: {said or 'credentials refused'}")
        if status >= 500 or status == 408:
            return Unavailable(f"{where}: {said or 'server error'}", retry_after(response.headers))
        return Rejected(said or where, exc_type or str(status))

    # --- resources -----------------------------------------------------------------------

    def list(self, doctype: str, *, fields: list[str], filters: list[Any] | None = None,
             or_filters: list[Any] | None = None, order_by: str | None = None, start: int = 0,
             length: int = 20) -> list[dict[str, Any]]:
        """`GET /api/resource/{doctype}`: one page of rows (only the parent's own columns)."""
        params: dict[str, Any] = {"fields": _json(fields), "limit_start": start, "limit_page_length": length}
        if filters:
            params["filters"] = _json(filters)
        if or_filters:
            params["or_filters"] = _json(or_filters)
        if order_by:
            params["order_by"] = order_by
        return _rows(self.send("GET", resource_path(doctype), params=params), doctype)

    def read(self, doctype: str, name: str) -> dict[str, Any] | None:
        """`GET /api/resource/{doctype}/{name}`: the full document with its child tables, or None."""
        try:
            response = self.send("GET", resource_path(doctype, name))
        except Rejected as exc:
            if exc.vendor_code == "DoesNotExistError" or exc.vendor_code == "404":
                return None
            raise
        return _document(response, doctype)

    def insert(self, doctype: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /api/resource/{doctype}`: the document as ERPNext saved it."""
        return _document(self.send("POST", resource_path(doctype), json=dict(doc)), doctype)

    def update(self, doctype: str, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /api/resource/{doctype}/{name}`: the fields to change; the saved document back."""
        return _document(self.send("PUT", resource_path(doctype, name), json=dict(changes)), doctype)

    def cancel(self, doctype: str, name: str) -> dict[str, Any]:
        """`POST /api/method/frappe.client.cancel`: cancel a submitted document; the cancelled one back."""
        response = self.send("POST", "api/method/frappe.client.cancel", json={"doctype": doctype, "name": name})
        try:
            body = response.json()
        except ValueError:
            raise Unavailable(f"erpnext: cancel of {doctype} answered with no JSON") from None
        message = body.get("message") if isinstance(body, dict) else None
        return message if isinstance(message, dict) else {"name": name, "docstatus": 2}


def resource_path(doctype: str, name: str | None = None) -> str:
    """`api/resource/Sales%20Order[/SAL-ORD-2024-00001]`: both parts encoded, `/` included."""
    path = f"api/resource/{quote(doctype, safe='')}"
    return path if name is None else f"{path}/{quote(name, safe='')}"


def frappe_error(response: requests.Response) -> tuple[str | None, str]:
    """(exc_type, human message) of a Frappe error answer; the message may be empty."""
    try:
        body = response.json()
    except ValueError:
        return None, _plain(response)
    if not isinstance(body, dict):
        return None, short(str(body))
    exc_type = body.get("exc_type") if isinstance(body.get("exc_type"), str) else None
    messages = server_messages(body.get("_server_messages"))
    if not messages and isinstance(body.get("errors"), list):  # the /api/v2 shape
        messages = [str(e.get("message")) for e in body["errors"] if isinstance(e, dict) and e.get("message")]
        exc_type = exc_type or next((str(e["type"]) for e in body["errors"] if isinstance(e, dict) and e.get("type")), None)
    if not messages and isinstance(body.get("exception"), str):
        messages = [body["exception"]]
    if not messages and isinstance(body.get("message"), str):
        messages = [body["message"]]
    return exc_type, short("; ".join(_untag(m) for m in messages if m))


def server_messages(raw: Any) -> list[str]:
    """The texts of `_server_messages`: a JSON list of JSON-encoded message dicts (or strings)."""
    if not isinstance(raw, str) or not raw:
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        return [raw]
    if not isinstance(items, list):
        items = [items]
    return [text for text in (_message_text(item) for item in items) if text]


def _message_text(item: Any) -> str:
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError:
            return item
    if isinstance(item, dict):
        return str(item.get("message") or "")
    return "" if item is None else str(item)


def _untag(text: str) -> str:
    """Frappe bolds names in messages (`<strong>`); a dead letter wants plain text."""
    return _TAGS.sub("", text).strip()


def _plain(response: requests.Response) -> str:
    text = response.text or ""
    if "<html" in text[:200].lower():  # a proxy's error page: its title is the useful part
        match = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return short(match.group(1)) if match else ""
    return short(text)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _rows(response: requests.Response, doctype: str) -> list[dict[str, Any]]:
    data = _data(response, doctype)
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise Unavailable(f"erpnext: GET {doctype} list answered without a list of rows")
    return data


def _document(response: requests.Response, doctype: str) -> dict[str, Any]:
    data = _data(response, doctype)
    if not isinstance(data, dict):
        raise Unavailable(f"erpnext: {response.request.method} {doctype} answered without a document")
    return data


def _data(response: requests.Response, doctype: str) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise Unavailable(f"erpnext: {response.request.method} {doctype} answered with no JSON") from None
    return body.get("data") if isinstance(body, dict) else None


def _path(response: requests.Response) -> str:
    return unquote(urlsplit(response.url).path) or "/"


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
