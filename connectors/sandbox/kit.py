"""What every sandbox shares: options, fault middleware, call statistics and the control API.

A vendor's `sandbox.py` builds its FastAPI app with `SandboxKit.create_app(...)`, adds its
vendor routes, and says how its vendor answers a rate limit and a server error
(`fault_answer`). The kit then gives every sandbox the same back door under `/_sandbox`:

- `GET/PUT /_sandbox/faults`: the fault spec, counts of faults served, and forced faults
  (`{"next": ["rate_limit"]}` makes the next call rate limited);
- `GET/DELETE /_sandbox/stats`: API calls served, by route and by status, which is how
  the benchmarks count calls against the vendor's minimum;
- `GET/PUT /_sandbox/webhooks`: the outbound webhook URL and every delivery made.

Vendor control routes (expire tokens, give records one timestamp, decide an approval) live
under `/_sandbox/` too; the Salesforce and Odoo sandboxes also take records through the back
door (`POST /_sandbox/records/{obj}` stores records as they are, `PATCH .../{id}` edits one as
a user would, stamped now), so that a test can seed data the API would refuse and act as the
product's users while the hub runs. Nothing under `/_sandbox` is faulted or counted.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Body, FastAPI, HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.sandbox.faults import Faults, FaultSpec, FaultSpecError
from connectors.sandbox.webhooks import WebhookSender

CONTROL_PREFIX = "/_sandbox"

FaultAnswer = Callable[[str, FaultSpec], Response]  # ("rate_limit" | "error", spec) -> the vendor's answer


@dataclass
class SandboxOptions:
    """How to start a sandbox: `records` seeded, faults, and where its webhooks go.

    `first` is the number of the first seeded company (`seed.companies`): a CRM seeded with
    companies 1-5,000 and an ERP with 4,001-9,000 share the 1,000 companies of the overlap,
    as two systems of one company do on day one. The Salesforce and Odoo sandboxes honour it.
    """

    records: int = 0
    seed: int = 7
    faults: FaultSpec = field(default_factory=FaultSpec)
    webhook_url: str | None = None
    webhook_retry_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)
    first: int = 1


class SandboxKit:
    """The shared state of one running sandbox (see the module docstring)."""

    def __init__(self, vendor: str, options: SandboxOptions, fault_answer: FaultAnswer,
                 webhook_delays: tuple[float, ...] = (1.0, 5.0, 30.0)) -> None:
        self.vendor = vendor
        self.options = options
        self.fault_answer = fault_answer
        self.faults = Faults(options.faults)
        self.webhooks = WebhookSender(options.webhook_url, webhook_delays, options.webhook_retry_scale)
        self._lock = threading.Lock()
        self.by_route: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self.by_status.values())

    def count(self, route: str, status: int) -> None:
        with self._lock:
            self.by_route[route] += 1
            self.by_status[status] += 1

    def reset_stats(self) -> None:
        with self._lock:
            self.by_route.clear()
            self.by_status.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": sum(self.by_status.values()), "by_route": dict(self.by_route),
                    "by_status": {str(k): v for k, v in self.by_status.items()}}

    def close(self) -> None:
        self.webhooks.stop()

    def create_app(self, title: str, **fastapi_args: Any) -> FastAPI:
        """A FastAPI app with the fault middleware and the control routes installed."""
        app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, **fastapi_args)
        app.state.kit = self
        app.include_router(self._control_router())
        app.add_middleware(FaultMiddleware, kit=self)
        return app

    def _control_router(self) -> APIRouter:
        router = APIRouter(prefix=CONTROL_PREFIX)

        @router.get("/faults")
        def get_faults() -> dict[str, Any]:
            return {"spec": self.faults.spec.as_dict(), "injected": self.faults.injected}

        @router.put("/faults")
        def put_faults(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
            forced = body.pop("next", [])
            try:
                if body:
                    self.faults.configure(FaultSpec.from_dict(body))
                self.faults.force(list(forced))
            except FaultSpecError as exc:
                raise HTTPException(400, str(exc)) from None
            return get_faults()

        @router.get("/stats")
        def get_stats() -> dict[str, Any]:
            return self.stats()

        @router.delete("/stats")
        def delete_stats() -> dict[str, Any]:
            self.reset_stats()
            return self.stats()

        @router.get("/webhooks")
        def get_webhooks() -> dict[str, Any]:
            return {"url": self.webhooks.url, "deliveries": [d.as_dict() for d in self.webhooks.deliveries]}

        @router.put("/webhooks")
        def put_webhooks(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
            self.webhooks.url = body.get("url") or None
            return get_webhooks()

        return router


class FaultMiddleware:
    """Counts each vendor API call and serves the fault it rolls (see `faults.py`)."""

    def __init__(self, app: ASGIApp, kit: SandboxKit) -> None:
        self.app = app
        self.kit = kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        kind = self.kit.faults.roll()
        try:
            if kind == "slow":
                await asyncio.sleep(self.kit.faults.spec.slow_seconds)
            if kind in ("rate_limit", "error"):
                await self.kit.fault_answer(kind, self.kit.faults.spec)(scope, receive, counting_send)
            elif kind == "drop":
                await _drop(counting_send)
            else:
                await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", None)
            where = f"(fault {kind})" if kind in ("rate_limit", "error", "drop") else route or "(no route)"
            self.kit.count(f"{scope['method']} {where}", status)


async def _drop(send: Send) -> None:
    """Start an answer and cut it short: the client sees the connection drop mid-response."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
    await send({"type": "http.response.body", "body": b'{"partial', "more_body": True})
    raise DroppedConnection("sandbox fault: connection dropped")


class DroppedConnection(ConnectionAbortedError):
    """Raised to make uvicorn close a connection mid-answer; `server.py` keeps it out of the log."""
