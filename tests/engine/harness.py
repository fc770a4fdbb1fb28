"""A hub of two fake systems (crm, erp) on a fresh SQLite store, for the engine tests.

Imported by name (`from harness import ...`): pytest puts this folder on sys.path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.fake.connector import FakeVendor
from hub.config import HubConfig, load_config
from hub.engine.report import RunReport
from hub.engine.retry import RetryPolicy
from hub.engine.runner import Engine
from hub.engine.worker import Worker
from hub.store import Store

DATA = Path(__file__).parent / "data"
FAST_RETRIES = RetryPolicy(attempts=6, initial=0.001, max_backoff=0.01, max_wait=5.0)


@dataclass
class Hub:
    """The pieces a test drives: config, store, engine, the two vendors, a worker."""

    config: HubConfig
    store: Store
    engine: Engine
    crm: FakeVendor
    erp: FakeVendor
    tmp: Path

    def sync(self, flow: str, **kwargs: Any) -> RunReport:
        return self.engine.run_flow(flow, **kwargs)

    def worker(self) -> Worker:
        return Worker(self.engine, self.store, owner="test-worker", retry_base=0.0)

    def jobs(self, status: str) -> list[Any]:
        with self.store.transaction() as tx:
            if status == "dead":
                return tx.dead_jobs(limit=1000, offset=0)
            return [j for j in tx.jobs_by_status(status)]

    def faults(self, system: str, **spec: Any) -> None:
        """Set a system's faults; takes effect for connectors opened afterwards."""
        self.config.systems[system].options["faults"] = spec
        self.engine.close()

    def restart_engine(self) -> None:
        self.engine.close()
        self.engine = Engine(self.config, self.store, retry_policy=FAST_RETRIES)


def make_hub(tmp: Path, store_url: str | None = None) -> Hub:
    config = load_config(DATA / "hub.yaml", env={})
    for name in ("crm", "erp"):
        config.systems[name].options["state"] = str(tmp / f"{name}.sqlite")
    store = Store.open(store_url or f"sqlite:///{tmp / 'hub.db'}")
    store.upgrade()
    engine = Engine(config, store, retry_policy=FAST_RETRIES)
    return Hub(config, store, engine, FakeVendor.file(tmp / "crm.sqlite"), FakeVendor.file(tmp / "erp.sqlite"), tmp)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    made = make_hub(tmp_path)
    yield made
    made.engine.close()
    made.store.dispose()


def contact(i: int, **extra: Any) -> dict[str, Any]:
    """A CRM contact as the fake vendor stores it."""
    return {"name": f"客户 {i:05d} 有限公司", "tax_id": f"9131000{i:011d}", "email": f"buyer{i}@example.cn",
            "credit": 1000 + i, "terms": "Net 30", "updated": f"2026-01-01T00:00:{i % 60:02d}Z", **extra}
