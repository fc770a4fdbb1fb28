"""An "in-house system" for the generic REST connector: one customers table, many API habits.

Real home-grown and gateway APIs differ in how they page, so this sandbox serves the same
table under one prefix per paging style, each in the shape such APIs usually answer:

- `GET /page/customers?page=1&page_size=10` → `{"data": [...], "page": 1, "total": n}`
  (also `POST /page/customers/search` with the same fields in a JSON body);
- `GET /offset/customers?offset=0&limit=10` → `{"items": [...], "total": n}`;
- `GET /cursor/customers?limit=10&cursor=…` → `{"results": [...], "next_cursor": "…" | null}`;
- `GET /next/customers?per_page=10` → `{"data": {"records": [...]}, "links": {"next": url | null}}`;
- `GET /link/customers?per_page=10` → a bare JSON list, with `Link: <url>; rel="next"`.

Every list is sorted by `updated_at`, then `id`, and takes `updated_since` (ISO 8601 or
epoch milliseconds, inclusive). Records: `GET /customers/{id}` and `GET /customers?ids=1,2`,
`POST /customers` and `PATCH /customers/{id}` with `{"customer": {...}}`, `PUT
/customers/by-key/{key}` (upsert on `external_key`: 201 created, 200 updated) and `POST
/customers/batch` (`{"customers": [...]}`, at most 50, one result each). Errors are
`{"error": {"message": ...}}`: 422 validation, 404, 401 (with `WWW-Authenticate`), 429 with
Retry-After and 503 for the faults.

Auth: any of a static bearer token, HTTP basic, an API key (`X-API-Key` header or `api_key`
query parameter), or OAuth2 client credentials at `POST /oauth/token` (client id and
secret as basic auth or form fields; tokens expire after `extra["token_lifetime"]`
seconds, and `POST /_sandbox/expire-tokens` ends every token issued so far).

Each change sends `{"events": [{"id", "type", "object", "occurred_at", "data"}]}` to the
webhook URL with `X-Timestamp` (Unix seconds) and `X-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">`, retried after 1, 5 and 30 s.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from connectors.sandbox import SandboxKit, SandboxOptions
from connectors.sandbox.faults import FaultSpec
from connectors.sandbox.seed import Company, companies
from connectors.sandbox.webhooks import OutboundCall

OBJECT = "customers"
BEARER_TOKEN = "sandbox-static-token"
BASIC_USER, BASIC_PASSWORD = "demo", "sandbox-only"
API_KEY = "sandbox-api-key"
CLIENT_ID, CLIENT_SECRET = "synchub-demo", "sandbox-only"
WEBHOOK_SECRET = "sandbox-webhook-secret"
BATCH_LIMIT = 50
MAX_PAGE = 500
WEBHOOK_DELAYS = (1.0, 5.0, 30.0)
WRITABLE = ("name", "tax_no", "email", "phone", "city", "country", "contact", "external_key")
READ_ONLY = ("id", "code", "created_at", "updated_at", "updated_ms")
STYLES = ("page", "offset", "cursor", "next", "link")
_SEED_START_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


class ApiError(Exception):
    """An answer in this system's error shape."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def fault_answer(kind: str, spec: FaultSpec) -> Response:
    if kind == "rate_limit":
        return _error(429, "too many requests, slow down", {"Retry-After": f"{spec.retry_after:g}"})
    return _error(503, "service temporarily unavailable")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Table:
    """The customers, ordered by (modification ms, id) for the lists, behind one lock."""

    def __init__(self, seeded: list[Company]) -> None:
        self.lock = threading.Lock()
        self.rows: dict[int, dict[str, Any]] = {}
        self.by_key: dict[str, int] = {}
        self.order: list[tuple[int, int]] = []
        self.ids = itertools.count(len(seeded) + 1)
        self.last_ms = 0
        for company in seeded:
            ms = _SEED_START_MS + company.number * 60_000
            self.rows[company.number] = {
                "id": company.number, "code": f"C{company.number:06d}", "name": company.name,
                "tax_no": company.tax_id, "email": company.email, "phone": company.phone, "city": company.city,
                "country": company.country_code, "contact": f"{company.contact_first} {company.contact_last}".strip(),
                "external_key": None, "_created": ms, "_stamp": ms,
            }
            self.order.append((ms, company.number))
        self.order.sort()

    # (callers hold self.lock for everything below)

    def tick(self) -> int:
        """A modification time after every earlier one: now, or 1 ms past the last."""
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return self.last_ms

    def stamp(self, rid: int, ms: int) -> None:
        row = self.rows[rid]
        self.order.pop(bisect.bisect_left(self.order, (row["_stamp"], rid)))
        row["_stamp"] = ms
        bisect.insort(self.order, (ms, rid))

    def insert(self, fields: dict[str, Any]) -> dict[str, Any]:
        rid = next(self.ids)
        ms = self.tick()
        row = {"id": rid, "code": f"C{rid:06d}", **dict.fromkeys(WRITABLE), **fields, "_created": ms, "_stamp": ms}
        self.rows[rid] = row
        bisect.insort(self.order, (ms, rid))
        if row.get("external_key"):
            self.by_key[str(row["external_key"])] = rid
        return row

    def change(self, rid: int, fields: dict[str, Any]) -> dict[str, Any]:
        row = self.rows[rid]
        old_key = row.get("external_key")
        row.update(fields)
        if old_key != row.get("external_key"):
            self.by_key.pop(str(old_key), None)
            if row.get("external_key"):
                self.by_key[str(row["external_key"])] = rid
        self.stamp(rid, self.tick())
        return row

    def since(self, since_ms: int | None) -> int:
        """Index in `order` of the first row modified at or after `since_ms`."""
        return 0 if since_ms is None else bisect.bisect_left(self.order, (since_ms, -1))

    def after(self, position: tuple[int, int]) -> int:
        return bisect.bisect_right(self.order, position)


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows it."""
    shown = {k: v for k, v in row.items() if not k.startswith("_")}
    shown["created_at"] = _iso(row["_created"])
    shown["updated_at"] = _iso(row["_stamp"])
    shown["updated_ms"] = row["_stamp"]
    return shown


def validate(fields: Any, partial: bool) -> dict[str, Any]:
    """The writable fields of a payload, or ApiError 422 naming the first problem."""
    if not isinstance(fields, dict):
        raise ApiError(422, "a customer must be a JSON object")
    unknown = [k for k in fields if k not in WRITABLE and k not in READ_ONLY]
    if unknown:
        raise ApiError(422, f"unknown field '{unknown[0]}' (fields: {', '.join(WRITABLE)})")
    kept = {k: v for k, v in fields.items() if k in WRITABLE}
    if not partial or "name" in kept:
        name = kept.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, "name: must not be empty")
    for name, value in kept.items():
        if value is not None and not isinstance(value, str):
            raise ApiError(422, f"{name}: must be text")
    email = kept.get("email")
    if email and ("@" not in email or "." not in email.rsplit("@", 1)[-1]):
        raise ApiError(422, f"email: '{email}' is not an e-mail address")
    return kept


def parse_since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "updated_since: use ISO 8601 or epoch milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _token(position: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{position[0]}:{position[1]}".encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        ms, rid = text.split(":")
        return int(ms), int(rid)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "cursor: not a cursor this API gave") from None


def _int(value: str | None, name: str, default: int, low: int = 0, high: int = 10**9) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(422, f"{name}: must be a whole number") from None
    if not low <= number <= high:
        raise ApiError(422, f"{name}: must be between {low} and {high}")
    return number


class Sandbox:
    """The state and behaviour behind the routes."""

    def __init__(self, options: SandboxOptions) -> None:
        self.kit = SandboxKit("rest", options, fault_answer, webhook_delays=WEBHOOK_DELAYS)
        self.table = Table(list(companies(options.records, options.seed)))
        self.tokens: dict[str, float] = {}
        self.tokens_lock = threading.Lock()
        self.token_lifetime = float(options.extra.get("token_lifetime", 3600))
        self.events = itertools.count(1)

    # --- auth ------------------------------------------------------------------------------

    def issue_token(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic(request.headers.get("authorization"))
        if basic:
            client_id, client_secret = basic
        if form.get("grant_type") != "client_credentials":
            return {"_status": 400, "error": "unsupported_grant_type"}
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return {"_status": 401, "error": "invalid_client", "error_description": "unknown client or bad secret"}
        token = secrets.token_urlsafe(24)
        with self.tokens_lock:
            self.tokens[token] = time.monotonic() + self.token_lifetime
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self.token_lifetime),
                "scope": form.get("scope", "")}

    def expire_tokens(self) -> None:
        with self.tokens_lock:
            self.tokens.clear()

    def check(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer "):]
            if token == BEARER_TOKEN:
                return
            with self.tokens_lock:
                expires = self.tokens.get(token)
            if expires is not None and expires > time.monotonic():
                return
            raise ApiError(401, "invalid or expired token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if _basic(header) == (BASIC_USER, BASIC_PASSWORD):
            return
        if API_KEY in (request.headers.get("x-api-key"), request.query_params.get("api_key")):
            return
        raise ApiError(401, "authentication required", {"WWW-Authenticate": 'Bearer realm="sandbox"'})

    # --- lists -----------------------------------------------------------------------------

    def window(self, since: str | None, start: int, size: int) -> tuple[list[dict[str, Any]], int]:
        """`size` rows from the `start`-th of those modified since `since`, and how many match."""
        since_ms = parse_since(since)
        with self.table.lock:
            first = self.table.since(since_ms)
            slots = self.table.order[first + start:first + start + size]
            return [public(self.table.rows[rid]) for _, rid in slots], len(self.table.order) - first

    def keyset(self, since: str | None, token: str | None, size: int) -> tuple[list[dict[str, Any]], str | None]:
        since_ms = parse_since(since)
        with self.table.lock:
            first = self.table.since(since_ms)
            if token:
                first = max(first, self.table.after(_untoken(token)))
            slots = self.table.order[first:first + size]
            more = first + size < len(self.table.order)
            rows = [public(self.table.rows[rid]) for _, rid in slots]
        return rows, _token(slots[-1]) if slots and more else None

    # --- writes ----------------------------------------------------------------------------

    def create(self, fields: Any) -> dict[str, Any]:
        kept = validate(fields, partial=False)
        with self.table.lock:
            key = kept.get("external_key")
            if key and str(key) in self.table.by_key:
                raise ApiError(422, f"external_key: '{key}' already exists")
            row = public(self.table.insert(kept))
        self.notify("customer.created", row)
        return row

    def update(self, rid: int, fields: Any) -> dict[str, Any]:
        kept = validate(fields, partial=True)
        with self.table.lock:
            if rid not in self.table.rows:
                raise ApiError(404, f"customer {rid} not found")
            key = kept.get("external_key")
            if key and self.table.by_key.get(str(key), rid) != rid:
                raise ApiError(422, f"external_key: '{key}' already exists")
            row = public(self.table.change(rid, kept))
        self.notify("customer.updated", row)
        return row

    def upsert(self, key: str, fields: Any) -> tuple[dict[str, Any], bool]:
        if isinstance(fields, dict):
            fields = {**fields, "external_key": key}
        with self.table.lock:
            rid = self.table.by_key.get(key)
        if rid is None:
            return self.create(fields), True
        return self.update(rid, fields), False

    def touch(self, ids: list[Any]) -> int:
        with self.table.lock:
            ms = self.table.tick()
            wanted = [int(i) for i in ids if str(i).isdigit() and int(i) in self.table.rows]
            for rid in wanted:
                self.table.stamp(rid, ms)
        return len(wanted)

    # --- webhooks --------------------------------------------------------------------------

    def notify(self, kind: str, row: dict[str, Any]) -> None:
        event = {"id": f"evt_{next(self.events):08d}", "type": kind, "object": OBJECT,
                 "occurred_at": row["updated_at"], "data": row}
        body = json.dumps({"events": [event]}, ensure_ascii=False, separators=(",", ":")).encode()

        def build(url: str) -> OutboundCall:
            timestamp = str(int(time.time()))
            mac = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            return OutboundCall(url, body, {"Content-Type": "application/json", "X-Timestamp": timestamp,
                                            "X-Signature": f"sha256={mac}"})

        self.kit.webhooks.send(kind, build)


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[len("Basic "):]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    """A token request's fields: RFC 6749 says form-encoded; some clients send JSON."""
    if content_type.startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip().isdigit()]


# --- the app -------------------------------------------------------------------------------


def create_app(options: SandboxOptions) -> FastAPI:
    state = Sandbox(options)
    app = state.kit.create_app("synchub in-house REST sandbox")
    app.state.sandbox = state

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        return _error(422, f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid')}")

    _token_routes(app, state)
    _list_routes(app, state)
    _record_routes(app, state)
    _control_routes(app, state)
    return app


def _token_routes(app: FastAPI, state: Sandbox) -> None:
    @app.post("/oauth/token")
    async def token(request: Request) -> Response:
        form = _form(await request.body(), request.headers.get("content-type", ""))
        answer = state.issue_token(request, form)
        status = int(answer.pop("_status", 200))
        return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})


def _list_routes(app: FastAPI, state: Sandbox) -> None:
    auth = Depends(state.check)

    def size_of(request: Request, name: str) -> int:
        return _int(request.query_params.get(name), name, 20, 1, MAX_PAGE)

    @app.get("/page/customers", dependencies=[auth])
    def page_list(request: Request) -> dict[str, Any]:
        q = request.query_params
        return by_page(q.get("updated_since"), _int(q.get("page"), "page", 1, 1), size_of(request, "page_size"))

    @app.post("/page/customers/search", dependencies=[auth])
    def page_search(body: Annotated[Any, Body()] = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(422, "the body must be a JSON object")
        get = {k: None if v is None else str(v) for k, v in body.items()}
        return by_page(get.get("updated_since"), _int(get.get("page"), "page", 1, 1),
                       _int(get.get("page_size"), "page_size", 20, 1, MAX_PAGE))

    def by_page(since: str | None, page: int, size: int) -> dict[str, Any]:
        rows, total = state.window(since, (page - 1) * size, size)
        return {"data": rows, "page": page, "page_size": size, "total": total}

    @app.get("/offset/customers", dependencies=[auth])
    def offset_list(request: Request) -> dict[str, Any]:
        q = request.query_params
        rows, total = state.window(q.get("updated_since"), _int(q.get("offset"), "offset", 0), size_of(request, "limit"))
        return {"items": rows, "total": total}

    @app.get("/cursor/customers", dependencies=[auth])
    def cursor_list(request: Request) -> dict[str, Any]:
        q = request.query_params
        rows, token = state.keyset(q.get("updated_since"), q.get("cursor"), size_of(request, "limit"))
        return {"results": rows, "next_cursor": token}

    @app.get("/next/customers", dependencies=[auth])
    def next_list(request: Request) -> dict[str, Any]:
        q = request.query_params
        size = size_of(request, "per_page")
        rows, token = state.keyset(q.get("updated_since"), q.get("page_token"), size)
        following = None
        if token:
            query = {k: v for k, v in {"updated_since": q.get("updated_since"), "per_page": str(size),
                                       "page_token": token}.items() if v}
            following = f"{str(request.base_url).rstrip('/')}/next/customers?{urlencode(query)}"
        return {"data": {"records": rows}, "links": {"next": following}}

    @app.get("/link/customers", dependencies=[auth])
    def link_list(request: Request) -> Response:
        q = request.query_params
        size, page = size_of(request, "per_page"), _int(q.get("page"), "page", 1, 1)
        rows, total = state.window(q.get("updated_since"), (page - 1) * size, size)
        headers = {}
        if page * size < total:
            query = {k: v for k, v in {"updated_since": q.get("updated_since"), "per_page": str(size),
                                       "page": str(page + 1)}.items() if v}
            headers["Link"] = f'<{str(request.base_url).rstrip("/")}/link/customers?{urlencode(query)}>; rel="next"'
        return JSONResponse(rows, headers=headers)


def _record_routes(app: FastAPI, state: Sandbox) -> None:
    auth = Depends(state.check)

    def wrapped(body: Any, key: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise ApiError(422, f'the body must be {{"{key}": ...}}')
        return body[key]

    @app.get("/customers", dependencies=[auth])
    def get_many(ids: str = "") -> dict[str, Any]:
        wanted = _ids(ids)
        if not wanted:
            raise ApiError(422, "ids: give one or more ids, comma-separated")
        with state.table.lock:
            return {"data": [public(state.table.rows[i]) for i in wanted if i in state.table.rows]}

    @app.get("/customers/{rid}", dependencies=[auth])
    def get_one(rid: str) -> dict[str, Any]:
        with state.table.lock:
            row = state.table.rows.get(int(rid)) if rid.isdigit() else None
            if row is None:
                raise ApiError(404, f"customer {rid} not found")
            return {"data": public(row)}

    @app.post("/customers", dependencies=[auth], status_code=201)
    def create(body: Annotated[Any, Body()] = None) -> dict[str, Any]:
        return {"data": state.create(wrapped(body, "customer"))}

    @app.patch("/customers/{rid}", dependencies=[auth])
    def update(rid: str, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
        if not rid.isdigit():
            raise ApiError(404, f"customer {rid} not found")
        return {"data": state.update(int(rid), wrapped(body, "customer"))}

    @app.put("/customers/by-key/{key}", dependencies=[auth])
    def upsert(key: str, body: Annotated[Any, Body()] = None) -> Response:
        row, created = state.upsert(key, wrapped(body, "customer"))
        return JSONResponse({"data": row, "created": created}, status_code=201 if created else 200)

    @app.post("/customers/batch", dependencies=[auth])
    def batch(body: Annotated[Any, Body()] = None) -> dict[str, Any]:
        items = wrapped(body, "customers")
        if not isinstance(items, list) or not items:
            raise ApiError(422, "customers: must be a non-empty list")
        if len(items) > BATCH_LIMIT:
            raise ApiError(422, f"customers: at most {BATCH_LIMIT} records per batch, got {len(items)}")
        results: list[dict[str, Any]] = []
        for item in items:
            try:
                row = state.create(item)
                results.append({"id": row["id"], "created": True, "error": None})
            except ApiError as exc:
                results.append({"id": None, "created": False, "error": {"message": exc.message}})
        return {"results": results}


def _control_routes(app: FastAPI, state: Sandbox) -> None:
    @app.post("/_sandbox/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        state.expire_tokens()
        return {"expired": True}

    @app.post("/_sandbox/touch")
    def touch(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        if body.get("object") != OBJECT:
            raise ApiError(404, f"no object {body.get('object')!r} (this system has {OBJECT})")
        return {"touched": state.touch(list(body.get("ids") or []))}

    @app.get("/_sandbox/records/{obj}")
    def records(obj: str) -> dict[str, Any]:
        if obj != OBJECT:
            raise ApiError(404, f"no object {obj!r} (this system has {OBJECT})")
        with state.table.lock:
            return {"records": [public(state.table.rows[rid]) for _, rid in state.table.order]}


# --- declarations pointing at this sandbox --------------------------------------------------

_LISTS: dict[str, dict[str, Any]] = {
    "page": {"path": "/page/customers", "records": "data", "page_size_param": "page_size",
             "pagination": {"style": "page", "page_param": "page", "first_page": 1}},
    "page_post": {"path": "/page/customers/search", "method": "POST", "records": "data",
                  "page_size_param": "page_size", "pagination": {"style": "page", "page_param": "page"}},
    "offset": {"path": "/offset/customers", "records": "items", "page_size_param": "limit",
               "pagination": {"style": "offset", "offset_param": "offset"}},
    "cursor": {"path": "/cursor/customers", "records": "results", "page_size_param": "limit",
               "pagination": {"style": "cursor", "cursor_param": "cursor", "next_cursor": "next_cursor"}},
    "next_url": {"path": "/next/customers", "records": "data.records", "page_size_param": "per_page",
                 "pagination": {"style": "next_url", "next_url": "links.next"}},
    "link_header": {"path": "/link/customers", "page_size_param": "per_page",
                    "pagination": {"style": "link_header"}},
}
LIST_STYLES = tuple(_LISTS)


def customers_object(style: str = "cursor", page_size: int = 100) -> dict[str, Any]:
    """The `objects.customers` declaration of this sandbox, listing with one paging style."""
    listing = json.loads(json.dumps(_LISTS[style]))
    listing["page_size"] = page_size
    return {
        "id_field": "id",
        "updated_field": "updated_at",
        "updated_format": "iso8601",
        "timezone": "UTC",
        "key_field": "external_key",
        "list": listing,
        "since": {"param": "updated_since"},
        "get": {"path": "/customers", "ids_param": "ids", "max_ids": 100, "records": "data"},
        "create": {"path": "/customers", "wrap": "customer", "id": "data.id",
                   "batch": {"path": "/customers/batch", "max_size": BATCH_LIMIT, "wrap": "customers",
                             "results": "results", "id": "id", "error": "error.message"}},
        "update": {"method": "PATCH", "path": "/customers/{id}", "wrap": "customer", "id": "data.id"},
        "upsert": {"method": "PUT", "path": "/customers/by-key/{key}", "wrap": "customer", "id": "data.id",
                   "created": "created"},
    }


def webhook_config() -> dict[str, Any]:
    return {
        "secret": WEBHOOK_SECRET,
        "signature": {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": "sha256=",
                      "signed": "timestamp_body", "timestamp_header": "X-Timestamp", "separator": ".",
                      "tolerance": 300},
        "events": "events", "event_id": "id", "object": "object", "record_id": "data.id", "kind": "type",
    }


def system_config(base_url: str) -> dict[str, Any]:
    """A `systems:` entry for this sandbox: cursor paging, OAuth2 client credentials."""
    return {
        "connector": "rest",
        "base_url": base_url,
        "auth": {"kind": "oauth2", "token_url": f"{base_url}/oauth/token", "client_id": CLIENT_ID,
                 "client_secret": CLIENT_SECRET, "scope": "customers"},
        "webhook": webhook_config(),
        "options": {"objects": {OBJECT: customers_object("cursor")}, "errors": {"message": "error.message"}},
    }
