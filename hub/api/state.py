"""What every route of one hub process shares: config, store, engine (for connectors), tokens, metrics,
and the webhook writer (`hub.engine.intake.WebhookIntake`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from connectors.base import Connector
from hub.api.auth import Tokens
from hub.api.metrics import Metrics
from hub.config import HubConfig
from hub.engine.intake import WebhookIntake
from hub.engine.runner import Engine
from hub.store import Store

DEFAULT_MAX_BODY = 1024 * 1024  # bytes of a webhook body; vendors send far less


@dataclass
class HubState:
    config: HubConfig
    store: Store
    engine: Engine
    tokens: Tokens
    metrics: Metrics = field(default_factory=Metrics)
    max_body: int = DEFAULT_MAX_BODY
    on_jobs: Callable[[], None] | None = None  # told when a route queued jobs (see `create_app`)
    intake: WebhookIntake = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _opened: dict[str, Connector] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.intake = WebhookIntake(self.config, self.store, on_jobs=self.on_jobs)

    def jobs_queued(self) -> None:
        """A route queued jobs: wake this process's worker, if it has one."""
        if self.on_jobs is not None:
            self.on_jobs()

    def connector(self, system: str) -> Connector:
        """The system's connector, opened once per process (routes run in several threads)."""
        with self._lock:
            connector = self.engine.connector(system)
            self._opened[system] = connector
            return connector

    def opened_connector(self, system: str) -> Connector | None:
        """The system's connector if it was opened already, without waiting for the lock."""
        return self._opened.get(system)


def state_of(request: Request) -> HubState:
    return request.app.state.hub  # type: ignore[no-any-return]
