"""The hub's HTTP service: vendor webhooks, the admin API, health and metrics (FastAPI).

`create_app(config, store)` builds one app; `synchub api` and `synchub run` serve it with
uvicorn. HTTP routing lives only in this package; what a route does is the engine's and the
store's business. The app's lifespan starts the webhook writer and, at shutdown, lets it
commit what is queued before it stops (served without lifespan events, e.g. by
`connectors.sandbox.serve`, the writer starts on the first callback instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import Receive, Scope, Send

from hub import __version__
from hub.api import admin, errors, health, webhooks
from hub.api.auth import Tokens
from hub.api.state import DEFAULT_MAX_BODY, HubState
from hub.config import HubConfig
from hub.engine.runner import Engine, open_connector
from hub.store import Store

__all__ = ["HubApp", "create_app"]


class HubApp(FastAPI):
    """FastAPI, but vendor callbacks go straight to `webhooks.serve`, ahead of the middleware
    and the router (the webhooks module says why); every other request takes FastAPI's way."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (system := webhooks.system_of(scope["path"])) is not None:
            await webhooks.serve(self, system, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(config: HubConfig, store: Store, tokens: Tokens | None = None, engine: Engine | None = None,
               max_body: int = DEFAULT_MAX_BODY, on_jobs: Callable[[], None] | None = None) -> HubApp:
    """The app of one hub process; `tokens` default to the environment's (see `auth.py`).

    `on_jobs` is called whenever a route has queued jobs (webhook events, a flow run now):
    a process that also runs a worker (`synchub run`) passes the worker's `wake`, so a
    callback's job starts at once instead of at the worker's next look at the queue.
    """
    hub = HubState(config, store, engine or Engine(config, store, open_connector),
                   tokens if tokens is not None else Tokens.from_env(), max_body=max_body, on_jobs=on_jobs)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub.intake.start()
        try:
            yield
        finally:  # uvicorn has finished the requests in flight; commit what is still queued
            await asyncio.to_thread(hub.intake.close)

    app = HubApp(title="synchub", version=__version__, lifespan=lifespan,
                  description="Webhooks from the vendors, and the admin API of a running synchub.")
    app.state.hub = hub
    errors.install(app)
    app.include_router(admin.router)
    app.include_router(health.router)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema of the app, with the webhook operations it does not route (see webhooks.py)."""
        if app.openapi_schema is None:
            app.openapi_schema = webhooks.without_validation_errors(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=[*webhooks.documentation.routes, *app.routes]))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
