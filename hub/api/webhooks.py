"""`/webhooks/{system}`: vendor callbacks, verified by their connector and stored before the answer.

The order of things is the consistency rule of DESIGN.md: read the body (refusing one over
the configured size with 413), let the system's connector verify and parse it (a bad
signature is its 401, a handshake its exact answer), store the events in the inbox with
their jobs (`hub.engine.intake`: the process's writer commits the callbacks that arrive
together in one transaction), and only then answer what the vendor expects. If the store
cannot take the events, or too many wait to be stored, the answer is 503 (with Retry-After
when busy), so the vendor delivers again later. Nothing a caller sends can make this route
answer 500.

Callbacks are served ahead of the app's middleware and router (`serve`, called by
`HubApp.__call__`): a vendor may send thousands a second, and every other hop costs CPU
that the hub's single event loop spends per callback. FastAPI's parameter solving measured
~60 µs per request; its middleware stack (server errors, telemetry, body limit, exception
handlers, exit stack) and matching the admin API's routes first, another ~50 µs
(`bench/webhooks.py`). `serve` does what of that a callback needs itself: 405 for another
method, a JSON 500 (and the log line) for a bug of ours. The OpenAPI document still
describes the path: `documentation` holds its two operations as FastAPI routes that are
never served, only read when the app builds its schema.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.base import WebhookReply, WebhookRequest
from hub.api.errors import error
from hub.api.state import HubState, state_of
from hub.engine.intake import RETRY_AFTER_SECONDS, IntakeBusy, IntakeClosed
from hub.suggest import did_you_mean

log = structlog.get_logger()

#: Bodies up to this size are verified on the event loop. The OA connectors' `webhook()`
#: takes 20-60 µs per callback (Feishu 20, WeCom ~58, DingTalk ~40-60 with its encrypted
#: reply), less than a hop to the thread pool and back (~100 µs plus GIL hand-offs). Measured
#: with `bench/webhooks.py` (SQLite, 3,000 callbacks, 8 clients, 2 CPUs, two runs each way,
#: 2026-11-23): inline 1,315-2,019 callbacks/s at 0.50-0.72 CPU-ms each (0.26-0.41x the bare
#: endpoint), `run_in_threadpool` 963-1,675/s at 0.60-1.04 CPU-ms (0.17-0.31x). Decryption
#: grows with the body, so larger bodies (up to the 1 MiB limit) and a connector's first use
#: (opening it) still go to a thread.
INLINE_VERIFY_MAX_BODY = 64 * 1024


class BodyTooLarge(Exception):
    """The body passed the configured limit while being read."""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


PREFIX = "/webhooks/"
METHODS = ("GET", "POST")


def system_of(path: str) -> str | None:
    """The system a path calls back, `/webhooks/{system}`; None for any other path."""
    if not path.startswith(PREFIX):
        return None
    system = path[len(PREFIX):]
    return system if system and "/" not in system else None


async def serve(app: ASGIApp, system: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one callback to `app` (the hub's), without its middleware or router (module docstring)."""
    scope["app"] = app  # what `state_of` reads, as on a routed request
    scope["path_params"] = {"system": system}
    request = Request(scope, receive)
    if request.method not in METHODS:
        response: Response = error(405, f"{request.method} is not allowed here", headers={"Allow": ", ".join(METHODS)})
    else:
        try:
            response = await take_callback(request, system)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: the caller gets a 500, the log the detail
            log.error("api error", path=scope["path"], error_type=type(exc).__name__, exc_info=exc)
            response = error(500, "internal error (see the hub's log)", "internal")
    await response(scope, receive, send)


async def take_callback(request: Request, system: str) -> Response:
    """Verify, store, answer: the order of the module docstring."""
    hub = state_of(request)
    started = time.perf_counter()
    if system not in hub.config.systems:
        return error(404, f"no system named '{system}'{did_you_mean(system, hub.config.systems)}")
    try:
        body = await _read_body(request, hub.max_body)
    except BodyTooLarge:
        return _count(hub, system, started, error(413, f"the body is over {hub.max_body} bytes"))
    # Starlette's headers and query are read-only mappings already (headers case-insensitive):
    # no copies of them per callback
    vendor_request = WebhookRequest(request.method, str(request.url), request.headers, request.query_params, body)
    if len(body) <= INLINE_VERIFY_MAX_BODY and hub.opened_connector(system) is not None:
        reply = _verify(hub, system, vendor_request)
    else:
        reply = await run_in_threadpool(_verify, hub, system, vendor_request)
    if reply is None:
        return _count(hub, system, started, error(400, "the callback could not be read"))
    if reply.events and 200 <= reply.status < 300:
        try:
            intake = await hub.intake.take(system, reply.events)
        except (IntakeBusy, IntakeClosed) as exc:
            log.warning("webhook refused for now", system=system, reason=str(exc))
            return _count(hub, system, started, error(503, "the hub is busy; deliver again later",
                                                      headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
        except Exception as exc:  # noqa: BLE001 - any store failure: the vendor must deliver again
            log.error("webhook events not stored", system=system, error_type=type(exc).__name__)
            return _count(hub, system, started, error(503, "the hub could not store the events; deliver again later"))
        hub.metrics.webhook_events_taken(system, intake.stored, intake.duplicates)
    answer = Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    return _count(hub, system, started, answer)


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "Accepted, or the vendor's handshake answer"},
    400: {"description": "Not a callback of this vendor's shape; nothing stored"},
    401: {"description": "Signature or credentials refused; nothing stored"},
    404: {"description": "No such system"}, 413: {"description": "Body over the size limit"},
    503: {"description": "The store could not take the events, or too many wait to be stored (Retry-After); "
                         "the vendor should deliver again"}}

async def _documented(system: str) -> None:
    """The operation's parameters as FastAPI documents them (never called: `serve` serves the path)."""


documentation = APIRouter(tags=["webhooks"])
documentation.post("/webhooks/{system}", operation_id="receive_webhook", summary="Receive a vendor callback",
                   description="Verified by the system's connector (signature, decryption, handshakes); the events "
                               "are stored before the answer, whose body is what the vendor expects.",
                   responses=_RESPONSES, response_class=Response)(_documented)
documentation.get("/webhooks/{system}", operation_id="verify_webhook_url", summary="Answer a vendor's URL check",
                  description="Vendors such as WeCom verify a callback URL by GET (echostr); the connector answers.",
                  responses=_RESPONSES, response_class=Response)(_documented)


def without_validation_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the 422 FastAPI lists for the webhook operations: any system name is
    a valid path, so the route answers 404 for an unknown one, never 422."""
    for operation in schema["paths"]["/webhooks/{system}"].values():
        operation["responses"].pop("422", None)
    return schema


def _verify(hub: HubState, system: str, request: WebhookRequest) -> WebhookReply | None:
    """The connector's verdict; a connector that raises is a bug of ours, not the caller's."""
    try:
        connector = hub.opened_connector(system) or hub.connector(system)
        return connector.webhook(request)
    except Exception as exc:  # noqa: BLE001 - never a 500 for what a caller sent
        log.error("webhook connector failed", system=system, error_type=type(exc).__name__, exc_info=exc)
        return None


def _count(hub: HubState, system: str, started: float, response: Response) -> Response:
    hub.metrics.webhook_answered(system, response.status_code, time.perf_counter() - started)
    return response
