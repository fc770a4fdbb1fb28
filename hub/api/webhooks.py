"""`/webhooks/{system}`: vendor callbacks, verified by their connector and stored before the answer.

The order of things is the consistency rule of DESIGN.md: read the body (refusing one over
the configured size with 413), let the system's connector verify and parse it (a bad
signature is its 401, a handshake its exact answer), store the events in the inbox with
their jobs (`hub.engine.intake`), and only then answer what the vendor expects. If the
store cannot take the events the answer is 503, so the vendor delivers again later.
Nothing a caller sends can make this route answer 500.
"""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from connectors.base import WebhookReply, WebhookRequest
from hub.api.errors import error
from hub.api.state import HubState, state_of
from hub.engine.intake import take_events
from hub.suggest import did_you_mean

log = structlog.get_logger()

router = APIRouter(tags=["webhooks"])


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


async def receive(system: str, request: Request) -> Response:
    hub = state_of(request)
    started = time.perf_counter()
    if system not in hub.config.systems:
        return error(404, f"no system named '{system}'{did_you_mean(system, hub.config.systems)}")
    try:
        body = await _read_body(request, hub.max_body)
    except BodyTooLarge:
        return _count(hub, system, started, error(413, f"the body is over {hub.max_body} bytes"))
    vendor_request = WebhookRequest(request.method, str(request.url), dict(request.headers),
                                    dict(request.query_params), body)
    reply = await run_in_threadpool(_verify, hub, system, vendor_request)
    if reply is None:
        return _count(hub, system, started, error(400, "the callback could not be read"))
    if reply.events and 200 <= reply.status < 300:
        try:
            intake = await run_in_threadpool(take_events, hub.config, hub.store, system, reply.events)
        except Exception as exc:  # noqa: BLE001 - any store failure: the vendor must deliver again
            log.error("webhook events not stored", system=system, error_type=type(exc).__name__)
            return _count(hub, system, started, error(503, "the hub could not store the events; deliver again later"))
        hub.metrics.webhook_events.labels(system, "stored").inc(intake.stored)
        hub.metrics.webhook_events.labels(system, "duplicate").inc(intake.duplicates)
    answer = Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    return _count(hub, system, started, answer)


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "Accepted, or the vendor's handshake answer"},
    400: {"description": "Not a callback of this vendor's shape; nothing stored"},
    401: {"description": "Signature or credentials refused; nothing stored"},
    404: {"description": "No such system"}, 413: {"description": "Body over the size limit"},
    503: {"description": "The store could not take the events; the vendor should deliver again"}}

router.post("/webhooks/{system}", operation_id="receive_webhook", summary="Receive a vendor callback",
            description="Verified by the system's connector (signature, decryption, handshakes); the events are "
                        "stored before the answer, whose body is what the vendor expects.",
            responses=_RESPONSES)(receive)
router.get("/webhooks/{system}", operation_id="verify_webhook_url", summary="Answer a vendor's URL check",
           description="Vendors such as WeCom verify a callback URL by GET (echostr); the connector answers.",
           responses=_RESPONSES)(receive)


def _verify(hub: HubState, system: str, request: WebhookRequest) -> WebhookReply | None:
    """The connector's verdict; a connector that raises is a bug of ours, not the caller's."""
    try:
        return hub.connector(system).webhook(request)
    except Exception as exc:  # noqa: BLE001 - never a 500 for what a caller sent
        log.error("webhook connector failed", system=system, error_type=type(exc).__name__, exc_info=exc)
        return None


def _count(hub: HubState, system: str, started: float, response: Response) -> Response:
    hub.metrics.webhooks.labels(system, str(response.status_code)).inc()
    hub.metrics.webhook_seconds.labels(system).observe(time.perf_counter() - started)
    return response
