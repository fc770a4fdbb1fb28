"""`synchub run` as an admin starts it: one process serving webhooks and the admin API while
its worker syncs what arrives, stopped cleanly by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from connectors.fake.connector import SIGNATURE_HEADER, FakeVendor, sign

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/engine/data"
SECRET = "service-test-webhook-secret"
TOKEN = "service-test-operator-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(tmp: Path) -> Path:
    spec = yaml.safe_load((DATA / "hub.yaml").read_text("utf-8"))
    spec["mappings_dir"] = str(DATA / "mappings")
    spec["store"] = {"url": f"sqlite:///{tmp / 'hub.db'}"}
    for name in ("crm", "erp"):
        spec["systems"][name]["options"]["state"] = str(tmp / f"{name}.sqlite")
        spec["systems"][name]["webhook"] = {"secret": "${TEST_WEBHOOK_SECRET}"}
    spec["flows"]["customers-crm-to-erp"]["webhook"] = True
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    return path


def _wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError("synchub run did not become ready")


def test_run_serves_webhooks_syncs_them_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = _config(tmp_path)
    crm = FakeVendor.file(tmp_path / "crm.sqlite")
    [record] = crm.insert("contact", [{"name": "华为技术有限公司", "tax_id": "914403001922038216",
                                       "email": "a@huawei.example"}])
    port = _free_port()
    env = {**os.environ, "TEST_WEBHOOK_SECRET": SECRET, "SYNCHUB_API_OPERATOR_TOKENS": TOKEN,
           "SYNCHUB_LOG_LEVEL": "info"}
    process = subprocess.Popen([sys.executable, "-m", "hub.cli", "run", "--config", str(config), "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        body = json.dumps({"events": [{"id": "e1", "object": "contact", "record_id": record["id"]}]}).encode()
        answer = requests.post(f"{url}/webhooks/crm", data=body, headers={SIGNATURE_HEADER: sign(SECRET, body)},
                               timeout=10)
        assert answer.status_code == 200
        erp = FakeVendor.file(tmp_path / "erp.sqlite")
        deadline = time.monotonic() + 20
        while erp.count("partner") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert erp.count("partner") == 1
        flows = requests.get(f"{url}/api/v1/flows", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert flows.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    for secret in (SECRET, TOKEN):
        assert secret not in stderr
