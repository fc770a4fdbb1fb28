"""A push cut short after it wrote some records: the engine sends only the rest, at once.

A vendor push is often many calls (Odoo: a key search and a create per batch of 200, a write
per updated record). When one call fails after others wrote records, the connector returns
what was written and fails only the rest (`finish_partial`); retrying the whole push would
rewrite every record already written, one call each in Odoo, and under a steady rate of
faults never finish. Run over real HTTP against the Salesforce and Odoo sandboxes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from connectors.sandbox import RunningServer, SandboxOptions, load, serve
from connectors.sandbox.seed import companies
from hub.config import load_config
from hub.engine.retry import RetryPolicy
from hub.engine.runner import Engine
from hub.store import Store

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
ACCOUNTS = 250  # two Odoo batches: 200 and 50


@pytest.fixture
def sandboxes() -> Iterator[dict[str, RunningServer]]:
    started = {name: serve(load(name).create_app(SandboxOptions(records=0))) for name in ("salesforce", "odoo")}
    yield started
    for server in started.values():
        server.stop()


def _engine(tmp: Path, crm: RunningServer, erp: RunningServer) -> Engine:
    systems = {"crm": load("salesforce").system_config(crm.base_url), "erp": load("odoo").system_config(erp.base_url)}
    config = {"version": 1, "store": {"url": f"sqlite:///{tmp / 'hub.db'}"}, "mappings_dir": str(MAPPINGS),
              "systems": systems,
              "flows": {"customers-crm-to-erp": {"entity": "customer", "source": {"system": "crm", "object": "Account"},
                                                 "targets": [{"system": "erp", "object": "res.partner"}]}}}
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    store = Store.open(f"sqlite:///{tmp / 'hub.db'}")
    store.upgrade()
    return Engine(load_config(path, env={}), store, retry_policy=RetryPolicy(attempts=3, initial=0.01, max_backoff=0.05))


def test_a_push_cut_short_sends_only_what_it_did_not_write(tmp_path: Path, sandboxes: dict[str, RunningServer]) -> None:
    crm, erp = sandboxes["salesforce"], sandboxes["odoo"]
    accounts = [{"Name": c.name, "Tax_Id__c": c.tax_id, "Email__c": c.email} for c in companies(ACCOUNTS, seed=4)]
    requests.post(f"{crm.base_url}/_sandbox/records/Account", json={"records": accounts}, timeout=30).raise_for_status()
    # Odoo's calls: authenticate, then per batch a key search and a create; the second batch's
    # key search fails, after the first batch was created.
    requests.put(f"{erp.base_url}/_sandbox/faults", json={"slow_seconds": 0.01, "next": ["slow", "slow", "slow", "error"]},
                 timeout=10).raise_for_status()
    engine = _engine(tmp_path, crm, erp)
    try:
        report = engine.run_flow("customers-crm-to-erp")
    finally:
        engine.close()
        engine.store.dispose()
    assert (report.counts.created, report.counts.failed, report.counts.waiting) == (ACCOUNTS, 0, 0)
    partners = requests.get(f"{erp.base_url}/_sandbox/records/res.partner", timeout=30).json()["records"]
    assert len(partners) == len({p["ref"] for p in partners}) == ACCOUNTS
    stats = requests.get(f"{erp.base_url}/_sandbox/stats", timeout=10).json()["by_route"]
    assert stats.get("POST (fault error)") == 1, stats  # the failure really happened mid-push
    assert "POST /jsonrpc res.partner.write" not in stats, f"records already created were written again: {stats}"
