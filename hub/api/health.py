"""`/healthz` (the process answers), `/readyz` (store reachable and migrated), `/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.state import HubState, state_of

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store is reachable and at the current schema",
            responses={503: {"description": "Not ready, with the reason"}})
async def readyz(request: Request) -> JSONResponse:
    ready, reason = await run_in_threadpool(_store_ready, state_of(request))
    body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    if reason:
        body["reason"] = reason
    return JSONResponse(body, status_code=200 if ready else 503)


def _store_ready(hub: HubState) -> tuple[bool, str | None]:
    try:
        if not hub.store.is_current():
            return False, "the store is not at the current schema (run `synchub db upgrade`)"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return False, f"the store is unreachable ({type(exc).__name__})"
    return True, None


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    hub = state_of(request)
    await run_in_threadpool(_refresh, hub)
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _refresh(hub: HubState) -> None:
    """Read what the store knows (queue, dead letters) and the connectors' call counters."""
    try:
        with hub.store.transaction() as tx:
            depth = tx.queue_depth()
    except Exception:  # noqa: BLE001 - metrics must answer even when the store does not
        depth = {}
    for status, count in depth.items():
        hub.metrics.queue_depth.labels(status).set(count)
    hub.metrics.dead_letters.set(depth.get("dead", 0))
    for system, connector in list(hub.engine.connectors().items()):
        client = getattr(connector, "client", None)
        for status, count in dict(getattr(client, "calls", {}) or {}).items():
            hub.metrics.vendor_calls.labels(system, str(status)).set(count)
