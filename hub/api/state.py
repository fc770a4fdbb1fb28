"""What every route of one hub process shares: config, store, engine (for connectors), tokens, metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from connectors.base import Connector
from hub.api.auth import Tokens
from hub.api.metrics import Metrics
from hub.config import HubConfig
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
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connector(self, system: str) -> Connector:
        """The system's connector, opened once per process (routes run in several threads)."""
        with self._lock:
            return self.engine.connector(system)


def state_of(request: Request) -> HubState:
    return request.app.state.hub  # type: ignore[no-any-return]
