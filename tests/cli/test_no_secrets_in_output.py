"""A whole sync at debug level, with faults on the way, never shows a configured secret.

The hub syncs Salesforce accounts into Odoo (both sandboxes over HTTP) with `synchub sync`
in a subprocess, its log at debug level; the sandboxes answer a few calls with errors and
rate limits so that error paths log too. Every credential the config holds must be absent
from everything the command printed, and from the dead-letter queue's listing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from connectors.sandbox import RunningServer, SandboxOptions, load, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandboxes() -> Iterator[dict[str, RunningServer]]:
    started = {name: serve(load(name).create_app(SandboxOptions(records=6))) for name in ("salesforce", "odoo")}
    yield started
    for server in started.values():
        server.stop()


def test_a_sync_with_faults_at_debug_level_prints_no_secret(tmp_path: Path, sandboxes: dict[str, RunningServer]) -> None:
    crm, erp = (load(name).system_config(sandboxes[name].base_url) for name in ("salesforce", "odoo"))
    secrets = {"SF_SECRET": crm["auth"]["client_secret"], "ODOO_KEY": erp["auth"]["api_key"],
               "ODOO_HOOK": erp["webhook"]["secret"]}
    crm["auth"]["client_secret"], erp["auth"]["api_key"] = "${SF_SECRET}", "${ODOO_KEY}"
    erp["webhook"]["secret"] = "${ODOO_HOOK}"
    config = {"version": 1, "store": {"url": f"sqlite:///{tmp_path / 'hub.db'}"}, "mappings_dir": str(ROOT / "mappings"),
              "systems": {"crm": crm, "erp": erp},
              "flows": {"customers": {"entity": "customer", "source": {"system": "crm", "object": "Account"},
                                      "targets": [{"system": "erp", "object": "res.partner"}],
                                      "match": ["tax_id"]}}}
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    for server in sandboxes.values():  # the next calls fail, then the retries go through
        requests.put(f"{server.base_url}/_sandbox/faults", json={"next": ["error", "rate_limit"], "retry_after": 0.1},
                     timeout=10).raise_for_status()
    requests.post(f"{sandboxes['salesforce'].base_url}/_sandbox/expire-tokens", timeout=10)
    env = {**os.environ, **secrets, "SYNCHUB_LOG_LEVEL": "debug", "SYNCHUB_CONFIG": str(path)}
    printed = ""
    for args in (["sync", "customers"], ["sync", "customers", "--full"], ["dlq", "list"]):
        result = subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=120)
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
        printed += result.stdout + result.stderr
    assert "run finished" in printed and "customers" in printed
    assert "retry" in printed.lower()  # the faults were met and logged
    for name, value in secrets.items():
        assert value not in printed, f"{name} was printed"
