"""`synchub sync`, `worker` and `dlq` as an admin runs them, over two fake vendors in files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connectors.fake.connector import FakeVendor

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/engine/data"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    spec = yaml.safe_load((DATA / "hub.yaml").read_text("utf-8"))
    spec["mappings_dir"] = str(DATA / "mappings")
    spec["store"] = {"url": f"sqlite:///{tmp_path / 'hub.db'}"}
    for name in ("crm", "erp"):
        spec["systems"][name]["options"]["state"] = str(tmp_path / f"{name}.sqlite")
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    FakeVendor.file(tmp_path / "crm.sqlite").insert("contact", [
        {"name": "华为技术有限公司", "tax_id": "914403001922038216", "email": "a@huawei.example"},
        {"name": "ACME GmbH", "tax_id": "DE123456789", "email": "broken-address"},
    ])
    return path


def synchub(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYNCHUB_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_dry_run_then_sync_then_dead_letters(config: Path, tmp_path: Path) -> None:
    dry = synchub(config, "sync", "customers-crm-to-erp", "--dry-run")
    assert dry.returncode == 1  # the broken e-mail fails even in a dry run
    assert "would upsert erp (new) for" in dry.stdout
    assert '    display_name: null -> "华为技术有限公司"' in dry.stdout
    assert FakeVendor.file(tmp_path / "erp.sqlite").count("partner") == 0

    real = synchub(config, "sync", "customers-crm-to-erp")
    assert real.returncode == 1
    assert "customers-crm-to-erp: partial" in real.stdout
    assert "created=1" in real.stdout and "dead=1" in real.stdout

    listed = synchub(config, "dlq", "list", "--json")
    [dead] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert dead["reason"].startswith("contacts.email: 'broken-address'")

    shown = synchub(config, "dlq", "show", str(dead["id"]))
    assert json.loads(shown.stdout)["payload"]["record"]["name"] == "ACME GmbH"

    crm = FakeVendor.file(tmp_path / "crm.sqlite")
    broken = next(r for r in crm.records("contact") if r["name"] == "ACME GmbH")
    crm.update("contact", broken["id"], {"email": "ap@acme.example"})
    assert synchub(config, "dlq", "replay", str(dead["id"])).stdout.strip() == "1 dead letter queued again"
    assert synchub(config, "worker", "--once").returncode == 0
    assert synchub(config, "dlq", "list").stdout.strip() == "the dead-letter queue is empty"
    assert sorted(p["mail"] for p in FakeVendor.file(tmp_path / "erp.sqlite").records("partner")) == [
        "a@huawei.example", "ap@acme.example"]


def test_unknown_flow_and_missing_job(config: Path) -> None:
    unknown = synchub(config, "sync", "customers-crm-to-rep")
    assert unknown.returncode == 2
    assert "unknown flow 'customers-crm-to-rep' (did you mean 'customers-crm-to-erp'?)" in unknown.stderr
    assert synchub(config, "db", "upgrade").returncode == 0
    assert synchub(config, "dlq", "show", "999").returncode == 1
    assert synchub(config, "dlq", "replay").returncode == 2
