"""The demo's stage: three vendor sandboxes and one hub, all on loopback, wired together.

The sandboxes (a Salesforce CRM, an Odoo ERP, a DingTalk OA) send their change webhooks to
the hub as the real products would; the hub serves its API and webhooks, and a worker runs
the jobs they queue. Everything runs in this process, so that the demo (and its end-to-end
test) can watch every system while the story plays.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from connectors.base import Connector
from connectors.sandbox import RunningServer, SandboxOptions, load, serve
from hub.api import create_app
from hub.api.auth import Tokens
from hub.config import HubConfig, load_config
from hub.engine.retry import RetryPolicy
from hub.engine.runner import Engine
from hub.engine.worker import Worker
from hub.scheduler import Scheduler
from hub.store import Store

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
SYSTEMS = {"crm": ("salesforce", "DEMO_CRM_URL"), "erp": ("odoo", "DEMO_ERP_URL"), "oa": ("dingtalk", "DEMO_OA_URL")}
PORT_OFFSETS = {"crm": 101, "erp": 102, "oa": 103}  # hub on PORT, sandboxes on PORT+101.. (8000: 8101..8103)


@dataclass
class Stage:
    """A running demo: sandboxes by system name, the hub's config, store, engine and service."""

    config: HubConfig
    store: Store
    engine: Engine
    hub: RunningServer
    sandboxes: dict[str, RunningServer]
    worker: Worker
    scheduler: Scheduler | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    tokens: Tokens = field(default_factory=Tokens)

    @property
    def hub_url(self) -> str:
        return self.hub.base_url

    def connector(self, system: str) -> Connector:
        """The system's connector, as a user's tool for acting in that product (not the hub's)."""
        return self.engine.connector(system)

    def records(self, system: str, obj: str) -> list[dict[str, Any]]:
        """Every record of an object, read through the sandbox's back door (for the tables)."""
        answer = requests.get(f"{self.sandboxes[system].base_url}/_sandbox/records/{obj}", timeout=10)
        answer.raise_for_status()
        return answer.json()["records"]  # type: ignore[no-any-return]

    def sandbox_call(self, system: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(f"{self.sandboxes[system].base_url}/_sandbox/{path}", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.worker.stop()
        if self.scheduler is not None:
            self.scheduler.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.hub.stop()
        for server in self.sandboxes.values():
            server.stop()
        self.engine.close()
        self.store.dispose()


def fresh_sqlite(path: Path) -> str:
    """A store URL for a new, empty SQLite file (the sandboxes start empty too, every run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def start(port: int = 8000, records: int = 12, store_url: str | None = None, schedule: bool = False,
          config_path: Path = DEMO_CONFIG, env: dict[str, str] | None = None) -> Stage:
    """Start the sandboxes and the hub on loopback; `port` 0 picks free ports for everything."""
    environment = dict(os.environ if env is None else env)
    sandboxes: dict[str, RunningServer] = {}
    hub_port = port
    try:
        for system, (connector, variable) in SYSTEMS.items():
            sandbox_port = port + PORT_OFFSETS[system] if port else 0
            webhook = f"http://127.0.0.1:{hub_port}/webhooks/{system}" if port else None
            options = SandboxOptions(records=records, seed=7, webhook_url=webhook, webhook_retry_scale=0.05)
            sandboxes[system] = serve(load(connector).create_app(options), port=sandbox_port)
            environment[variable] = sandboxes[system].base_url
        config = load_config(config_path, env=environment)
        store = Store.open(store_url or fresh_sqlite(Path("var/demo.db")))
        store.upgrade()
        engine = Engine(config, store, retry_policy=RetryPolicy(attempts=5, initial=0.05, max_backoff=1.0))
        tokens = Tokens.from_env(environment)
        worker = Worker(Engine(config, store, retry_policy=engine.retry_policy), store, owner="demo-worker",
                        idle_seconds=0.1, retry_base=1.0)
        hub = serve(create_app(config, store, tokens, on_jobs=worker.wake), port=hub_port)
        if not port:  # free ports: tell the sandboxes where the hub listens now that it does
            for system, server in sandboxes.items():
                server.app.state.kit.webhooks.url = f"{hub.base_url}/webhooks/{system}"
    except BaseException:
        for server in sandboxes.values():
            server.stop()
        raise
    stage = Stage(config, store, engine, hub, sandboxes, worker, tokens=tokens)
    stage.threads.append(threading.Thread(target=worker.run, name="demo-worker", daemon=True))
    if schedule:
        stage.scheduler = Scheduler(config, store)
        stage.threads.append(threading.Thread(target=stage.scheduler.run_as_leader, name="demo-scheduler",
                                              daemon=True))
    for thread in stage.threads:
        thread.start()
    return stage
