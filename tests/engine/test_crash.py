"""Crash safety: `synchub sync` killed with SIGKILL at seeded moments, then restarted, must
leave the target with exactly the expected records: nothing lost, nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from harness import DATA, contact

from connectors.fake.connector import FakeVendor

RECORDS = 900


def write_config(tmp: Path) -> Path:
    config = yaml.safe_load((DATA / "hub.yaml").read_text("utf-8"))
    config["mappings_dir"] = str(DATA / "mappings")
    config["store"] = {"url": f"sqlite:///{tmp / 'hub.db'}"}
    for name in ("crm", "erp"):
        options = config["systems"][name]["options"]
        options["state"] = str(tmp / f"{name}.sqlite")
        options["faults"] = {"seed": 3, "latency_ms": 4}
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def sync(config: Path, kill_after: float | None) -> int | None:
    """Run one sync in a subprocess; SIGKILL it after `kill_after` seconds if still running."""
    env = {**os.environ, "SYNCHUB_CONFIG": str(config)}
    process = subprocess.Popen([sys.executable, "-m", "hub.cli", "sync", "customers-crm-to-erp"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()[-2000:]
        return process.returncode
    try:
        process.wait(timeout=kill_after)
        return process.returncode
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return None


def clean_run_seconds(folder: Path) -> float:
    """How long an uninterrupted first sync of the same records takes here."""
    folder.mkdir()
    config = write_config(folder)
    FakeVendor.file(folder / "crm.sqlite").insert("contact", [contact(i) for i in range(RECORDS)])
    started = time.monotonic()
    sync(config, kill_after=None)
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 23])
def test_sigkill_at_seeded_moments_loses_and_duplicates_nothing(tmp_path: Path, seed: int) -> None:
    duration = clean_run_seconds(tmp_path / "baseline")  # kill moments scale with this machine's speed
    config = write_config(tmp_path)
    crm = FakeVendor.file(tmp_path / "crm.sqlite")
    erp = FakeVendor.file(tmp_path / "erp.sqlite")
    crm.insert("contact", [contact(i) for i in range(RECORDS)])
    rng = random.Random(seed)
    killed = 0
    for _ in range(4):
        if sync(config, kill_after=rng.uniform(0.15, 0.85) * duration) is None:
            killed += 1
        # a change arriving between crashes must also land exactly once
        crm.update("contact", crm.records("contact")[rng.randrange(RECORDS)]["id"], {"terms": f"Net {rng.randint(1, 90)}"})
    sync(config, kill_after=None)
    assert killed >= 1, "no run was killed: the crash test did not test anything"

    partners = erp.records("partner")
    contacts = {c["id"]: c for c in crm.records("contact")}
    assert len(partners) == RECORDS
    assert len({p["hub_id"] for p in partners}) == RECORDS
    by_tax = {p["vat"]: p for p in partners}
    for c in contacts.values():
        partner = by_tax[c["tax_id"]]
        assert partner["display_name"] == c["name"]
        assert partner["payment_terms"] == c["terms"]
