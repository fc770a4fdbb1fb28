"""`synchub sandbox` as an admin runs it: sandboxes on loopback, their URLs printed, stopped by SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_sandboxes_start_print_their_urls_and_stop_on_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-m", "hub.cli", "sandbox", "odoo", "hubspot", "--seed", "3",
                                "--faults", "rate_limit=0.0,seed=3"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "SYNCHUB_LOG_LEVEL": "warning"})
    try:
        urls = {}
        assert process.stdout is not None
        for _ in range(2):
            name, url = process.stdout.readline().split()
            urls[name] = url
        assert set(urls) == {"odoo", "hubspot"}
        odoo = requests.get(f"{urls['odoo']}/_sandbox/records/res.partner", timeout=10).json()["records"]
        assert len(odoo) == 3
        assert requests.get(f"{urls['hubspot']}/_sandbox/faults", timeout=10).json()["spec"]["seed"] == 3
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


def test_an_unknown_sandbox_or_a_bad_fault_spec_is_a_clear_error() -> None:
    for args, expected in ((["salesforc"], "no connector named 'salesforc'"),
                           (["odoo", "--faults", "rate_limit=2"], "must be between 0 and 1")):
        result = subprocess.run([sys.executable, "-m", "hub.cli", "sandbox", *args], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0
        assert expected in result.stderr
        assert "Traceback" not in result.stderr
