"""A connector declared entirely in YAML, for products with no connector of their own.

This package is found through the `synchub.connectors` entry point `rest`. An IT admin
describes a JSON-over-HTTP API (a Kingdee or Yonyou gateway, a Weaver OA REST API, an
in-house system) in the `auth`, `webhook` and `options` blocks of a system: where each
object is listed, fetched and written, how its pages follow each other, which field holds
its modification time, how its webhooks are signed. `SETTINGS_SCHEMA` below is that
language; `synchub check` validates a declaration against it with located messages, and
docs/rest-connector.md explains every key with a worked example.
"""

from typing import Any

_NAME = {"type": "string", "minLength": 1}
_TIME_FORMAT_PATTERN = r"^(iso8601|epoch_seconds|epoch_ms|.*%.*)$"
_TIME_FORMAT_ERROR = "must be iso8601, epoch_seconds, epoch_ms or a strftime format such as '%Y-%m-%d %H:%M:%S'"
_TIME_ZONE_PATTERN = r"^(UTC|[A-Za-z_]+(/[A-Za-z0-9_+\-]+)*|[+-][0-9]{2}:[0-9]{2})$"


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {**_NAME, "description": description, **extra}


def _jmespath(description: str) -> dict[str, Any]:
    """A JMESPath expression; the connector compiles it and names the setting if it is wrong."""
    return _text(f"{description} (a JMESPath expression, see https://jmespath.org).")


def _url_path(description: str, *, template: str | None = None) -> dict[str, Any]:
    schema = _text(description)
    if template:
        schema["pattern"] = r"\{" + template + r"\}"
        schema["x-error"] = f"must contain {{{template}}} where the record's {template} goes"
    else:
        schema["pattern"] = r"^(/|https?://)"
        schema["x-error"] = "must be a path starting with / (relative to base_url) or a full http(s) URL"
    return schema


def _closed(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required or [],
            "properties": properties, **extra}


def _when(key: str, value: str, then: dict[str, Any]) -> dict[str, Any]:
    """An if/then on a discriminator, which jsonschema reports precisely (oneOf would not)."""
    return {"if": {"required": [key], "properties": {key: {"const": value}}}, "then": then}


# --- auth ----------------------------------------------------------------------------------

_AUTH_KEYS: dict[str, list[str]] = {
    "none": [],
    "bearer": ["token"],
    "basic": ["username", "password"],
    "api_key": ["key", "name", "in"],
    "oauth2": ["token_url", "client_id", "client_secret", "scope", "client_auth"],
}
_AUTH_REQUIRED: dict[str, list[str]] = {
    "none": [], "bearer": ["token"], "basic": ["username", "password"], "api_key": ["key", "name"],
    "oauth2": ["token_url", "client_id", "client_secret"],
}


def _auth_rule(kind: str) -> dict[str, Any]:
    others = sorted({k for keys in _AUTH_KEYS.values() for k in keys} - set(_AUTH_KEYS[kind]))
    takes = ", ".join(_AUTH_KEYS[kind]) or "no other key"
    return _when("kind", kind, {
        "required": _AUTH_REQUIRED[kind],
        "propertyNames": {"not": {"enum": others},
                          "x-error": f"is not a setting of auth kind '{kind}' (it takes {takes})"},
    })


AUTH_SCHEMA: dict[str, Any] = _closed(
    {
        "kind": {"enum": list(_AUTH_KEYS), "description": "How every call is authenticated."},
        "token": _text("bearer: the token sent as 'Authorization: Bearer <token>'. Use ${ENV}."),
        "username": _text("basic: the user name of HTTP basic authentication."),
        "password": _text("basic: the password of HTTP basic authentication. Use ${ENV}."),
        "key": _text("api_key: the key itself. Use ${ENV}."),
        "name": _text("api_key: the header name (e.g. X-API-Key) or query parameter name (e.g. api_key)."),
        "in": {"enum": ["header", "query"], "default": "header",
               "description": "api_key: send the key in a header (default) or as a query parameter."},
        "token_url": {**_text("oauth2: the token endpoint (client credentials grant); a path is relative to "
                              "base_url."), "pattern": r"^(/|https?://|\$\{)",
                      "x-error": "must be an http(s) URL or a path starting with /"},
        "client_id": _text("oauth2: the client id."),
        "client_secret": _text("oauth2: the client secret. Use ${ENV}."),
        "scope": _text("oauth2: the scope to ask for, space-separated (optional)."),
        "client_auth": {"enum": ["basic", "body"], "default": "basic",
                        "description": "oauth2: send the client id and secret as HTTP basic authentication "
                                       "(default, RFC 6749) or as client_id/client_secret form fields."},
    },
    ["kind"],
    allOf=[_auth_rule(kind) for kind in _AUTH_KEYS],
    description="Credentials of every call: kind none, bearer, basic, api_key or oauth2.",
)

# --- webhook -------------------------------------------------------------------------------

_SIGNATURE = _closed(
    {
        "header": _text("Header carrying the signature.", default="X-Signature"),
        "algorithm": {"enum": ["sha1", "sha256", "sha512"], "default": "sha256",
                      "description": "Hash of the HMAC."},
        "encoding": {"enum": ["hex", "base64"], "default": "hex", "description": "How the digest is written."},
        "prefix": {"type": "string", "default": "",
                   "description": "Text before the digest in the header, e.g. 'sha256='."},
        "signed": {"enum": ["body", "timestamp_body"], "default": "body",
                   "description": "What is signed: the raw body, or the timestamp header's value + separator "
                                  "+ the raw body (which lets stale calls be refused)."},
        "timestamp_header": _text("Header carrying the timestamp (for signed: timestamp_body).", default="X-Timestamp"),
        "timestamp_unit": {"enum": ["seconds", "milliseconds"], "default": "seconds",
                           "description": "Unit of the Unix timestamp in timestamp_header."},
        "separator": {"type": "string", "default": ".", "description": "Between timestamp and body."},
        "tolerance": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 300,
                      "description": "Seconds a signed timestamp may differ from now before the call is refused."},
    },
    description="How the system signs its calls (HMAC over the raw body).",
)

_REPLY = _closed(
    {
        "status": {"type": "integer", "minimum": 200, "maximum": 299, "default": 200,
                   "description": "HTTP status answered to an accepted call."},
        "body": {"type": "string", "default": "", "description": "Body answered to an accepted call."},
        "content_type": _text("Content type of that body.", default="text/plain"),
    },
    description="What the system expects as an answer to an accepted call.",
)

WEBHOOK_SCHEMA: dict[str, Any] = _closed(
    {
        "secret": _text("Shared secret of the HMAC signature. Use ${ENV}."),
        "signature": _SIGNATURE,
        "events": _jmespath("Where the list of events is in the body; '@' when the body is one event or a list"),
        "event_id": _jmespath("Within an event: its unique id, used to drop redeliveries; without it, a hash "
                              "of the event is used"),
        "object": _jmespath("Within an event: the object name, as declared under options.objects"),
        "default_object": _text("Object of events that do not name one (a system that only sends one kind)."),
        "record_id": _jmespath("Within an event: the id of the changed record"),
        "kind": _jmespath("Within an event: what happened (created, updated, deleted...); default 'changed'"),
        "reply": _REPLY,
    },
    # Required only when the block is there: a system that sends no webhooks leaves it out
    # (the loader reads a top-level `required` as "this block must exist").
    allOf=[{"required": ["secret", "record_id"]}],
    description="Change notifications the system sends to /webhooks/<system>: signature and event shape.",
)

# --- options: one object ---------------------------------------------------------------------

_PAGINATION = _closed(
    {
        "style": {"enum": ["page", "offset", "cursor", "next_url", "link_header", "none"],
                  "description": "page: a page number; offset: offset + limit; cursor: a token from the last "
                                 "answer; next_url: the answer holds the next page's URL; link_header: an RFC 8288 "
                                 "Link header with rel=next; none: one call returns everything."},
        "page_param": _text("page: the page number parameter."),
        "first_page": {"enum": [0, 1], "default": 1, "description": "page: number of the first page."},
        "offset_param": _text("offset: the offset parameter (records to skip)."),
        "cursor_param": _text("cursor: the parameter that sends the cursor back."),
        "next_cursor": _jmespath("cursor: where the next cursor is in the answer; empty or null on the last page"),
        "next_url": _jmespath("next_url: where the next page's URL is in the answer; empty or null on the last page"),
    },
    ["style"],
    allOf=[
        _when("style", "page", {"required": ["page_param"]}),
        _when("style", "offset", {"required": ["offset_param"]}),
        _when("style", "cursor", {"required": ["cursor_param", "next_cursor"]}),
        _when("style", "next_url", {"required": ["next_url"]}),
    ],
    description="How the pages of a list follow each other.",
)

_SINCE = _closed(
    {
        "param": _text("Query parameter (or body field for POST lists) filtering on modification time >= value."),
        "format": {"type": "string", "pattern": _TIME_FORMAT_PATTERN, "x-error": _TIME_FORMAT_ERROR,
                   "description": "How the value is written; default: the object's updated_format."},
        "timezone": {"type": "string", "pattern": _TIME_ZONE_PATTERN,
                     "x-error": "must be an IANA time zone such as Asia/Shanghai, UTC or an offset such as +08:00",
                     "description": "Zone of values without an offset; default: the object's timezone."},
        "lookback": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 0,
                     "description": "Seconds subtracted from the value sent: for servers whose filter is strictly "
                                    "greater, or whose clocks lag. Records already seen are skipped anyway."},
    },
    ["param"],
    description="Incremental pulls: the filter that asks for records changed since the last pull.",
)

_LIST = _closed(
    {
        "path": _url_path("Path of the list endpoint."),
        "method": {"enum": ["GET", "POST"], "default": "GET",
                   "description": "POST sends paging and since parameters in the JSON body (dotted names nest)."},
        "params": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                   "description": "Fixed query parameters of every list call, e.g. a sort order."},
        "body": {"type": "object", "description": "POST: fixed JSON body the paging parameters are added to."},
        "records": _jmespath("Where the list of records is in the answer; default '@' (the answer is the list)"),
        "page_size": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100,
                      "description": "Records per page (sent in page_size_param when set); a shorter page is the last."},
        "page_size_param": _text("Parameter that sets the page size (the limit parameter for offset paging)."),
        "pagination": _PAGINATION,
        "sorted": {"type": "boolean", "default": True,
                   "description": "The list is sorted by modification time, oldest first (then by id): each page "
                                  "can commit progress. false: only the last page of a pull moves the cursor."},
    },
    ["path", "pagination"],
    description="How records are listed (full and incremental pulls).",
)

_GET = _closed(
    {
        "path": _url_path("Path template with {id} (one call per record), or a list path with ids_param."),
        "ids_param": _text("Parameter taking several ids at once; the path is then a list endpoint."),
        "ids_style": {"enum": ["comma", "repeat"], "default": "comma",
                      "description": "ids_param=1,2,3 (comma) or ids_param=1&ids_param=2 (repeat)."},
        "max_ids": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50,
                    "description": "Most ids per call."},
        "records": _jmespath("With ids_param: where the list of records is in the answer; default '@'"),
        "record": _jmespath("With {id}: where the record is in the answer; default '@'"),
    },
    ["path"],
    allOf=[{"if": {"not": {"required": ["ids_param"]}},
            "then": {"properties": {"path": {"pattern": r"\{id\}",
                                             "x-error": "must contain {id}, or set ids_param for a list endpoint"}}}}],
    description="How records are fetched by id (after a webhook, and to check writes).",
)

_BATCH = _closed(
    {
        "path": _url_path("Path of the batch endpoint."),
        "method": {"enum": ["POST", "PUT", "PATCH"], "default": "POST", "description": "HTTP method."},
        "max_size": {"type": "integer", "minimum": 1, "maximum": 10000,
                     "description": "Most records one call takes."},
        "wrap": _text("Key the list of records is sent under (dotted names nest); without it the body is the list."),
        "results": _jmespath("Where the per-record results are in the answer, one per record in order"),
        "id": _jmespath("Within a result: the record's id; default 'id'"),
        "error": _jmespath("Within a result: the error message, empty or null on success; default 'error'"),
    },
    ["path", "max_size", "results"],
    description="A batch endpoint taking several records per call.",
)


def _write(description: str, method: str, methods: list[str], template: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "path": _url_path("Path" + (f" template with {{{template}}}" if template else "") + ".", template=template),
        "method": {"enum": methods, "default": method, "description": "HTTP method."},
        "wrap": _text("Key the record is sent under, e.g. 'data' for {\"data\": {...}} (dotted names nest)."),
        "id": _jmespath("Where the record's id is in the answer; default 'id'"),
        "batch": _BATCH,
    }
    if template == "key":
        props["created"] = _jmespath("Where a boolean 'was created' is in the answer; default: HTTP 201 means created")
    return _closed(props, ["path"], description=description)


_OBJECT = _closed(
    {
        "id_field": _text("Record field holding the record's id.", default="id"),
        "updated_field": _text("Record field holding its modification time (dotted for nested fields).",
                               default="updated_at"),
        "updated_format": {"type": "string", "pattern": _TIME_FORMAT_PATTERN, "x-error": _TIME_FORMAT_ERROR,
                           "default": "iso8601", "description": "How updated_field is written."},
        "timezone": {"type": "string", "pattern": _TIME_ZONE_PATTERN,
                     "x-error": "must be an IANA time zone such as Asia/Shanghai, UTC or an offset such as +08:00",
                     "default": "UTC", "description": "Zone of times written without an offset."},
        "key_field": _text("Record field holding the hub's id, when the mapping does not say (upserts)."),
        "list": _LIST,
        "since": _SINCE,
        "get": _GET,
        "create": _write("How a record is created.", "POST", ["POST", "PUT"], None),
        "update": _write("How a record is updated.", "PATCH", ["PATCH", "PUT", "POST"], "id"),
        "upsert": _write("How a record is created or updated by the hub's key ({key} in the path).", "PUT",
                         ["PUT", "POST", "PATCH"], "key"),
    },
    ["list"],
    description="One object (table, resource) of the system.",
)

_ERRORS = _closed(
    {
        "message": _jmespath("Where the error message is in an error answer, e.g. error.message"),
        "code": _jmespath("Where an error code is in an error answer"),
        "ok": _jmespath("For APIs that answer errors with HTTP 200: a condition on the answer that is true on "
                        "success, e.g. \"code == '0'\""),
    },
    description="How the system reports errors. 429 and 5xx are retried (Retry-After honoured), 401 refreshes "
                "an OAuth2 token once, any other 4xx rejects the record with the message found here.",
)

OPTIONS_SCHEMA: dict[str, Any] = _closed(
    {
        "objects": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[A-Za-z][A-Za-z0-9_.-]*$",
                              "x-error": "an object name must start with a letter and use only letters, digits, _ . -"},
            "additionalProperties": _OBJECT,
            "description": "The objects of the system, by the name flows use.",
        },
        "errors": _ERRORS,
        "headers": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Fixed headers of every call (a tenant id, Accept-Language)."},
        "verify_tls": {"type": "boolean", "default": True, "description": "Check the server's TLS certificate."},
        "ca_file": _text("PEM file of the CA that signed the server's certificate (a private CA)."),
    },
    ["objects"],
    description="What the system's API looks like.",
)

SETTINGS_SCHEMA: dict[str, Any] = {"auth": AUTH_SCHEMA, "webhook": WEBHOOK_SCHEMA, "options": OPTIONS_SCHEMA}

from connectors.rest.connector import RestConnector  # noqa: E402

Connector = RestConnector

__all__ = ["SETTINGS_SCHEMA", "Connector", "RestConnector"]
