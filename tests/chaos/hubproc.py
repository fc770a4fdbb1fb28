"""The hub under test as a real process: `synchub run` (API, scheduler and worker in one
process, SQLite store), started, killed with SIGKILL, restarted and stopped by its pid only.

Every process this module starts is remembered and ended by `HubProcess.close`, so that a
failing test leaves nothing running. Output goes to one log file per incarnation, whose tail
is what an assertion message shows when the hub misbehaves.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

READ_TOKEN = "chaos-read-token"  # an API token of this test only, for the admin API's read routes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def synchub(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """One `synchub` command to completion (`sync`, `dlq` ...), its output captured."""
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class HubProcess:
    """`synchub run -c CONFIG --port PORT`, one incarnation after another."""

    config: Path
    env: dict[str, str]
    logs: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    kills: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start an incarnation and wait until its API answers `/readyz` (the store is migrated)."""
        assert self.process is None, "the hub is already running"
        self.incarnation += 1
        log = (self.logs / f"hub-{self.incarnation}.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "-c", str(self.config), "--port", str(self.port)],
            env={**self.env, "SYNCHUB_API_READ_TOKENS": READ_TOKEN}, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the hub exited at start with {self.process.returncode}:\n{self.tail()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the hub did not become ready in {timeout:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction finishes, leases stay held."""
        process = self._running()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.process = None
        self.kills += 1

    def stop(self, timeout: float = 90.0) -> int:
        """SIGTERM, as an admin stops the service; the job in hand finishes. Its exit code."""
        process = self._running()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout)
        finally:
            self.process = None
        return code

    def close(self) -> None:
        """End the incarnation this object started, if one still runs (test teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None and self.process.poll() is None, f"the hub is not running:\n{self.tail()}"
        return self.process

    def api(self, path: str, **params: Any) -> Any:
        """A read route of the admin API, with this test's read token."""
        answer = requests.get(f"{self.url}/api/v1{path}", params=params, timeout=30,
                              headers={"Authorization": f"Bearer {READ_TOKEN}"})
        answer.raise_for_status()
        return answer.json()

    def tail(self, lines: int = 40) -> str:
        """The last lines of the current (or last) incarnation's log."""
        path = self.logs / f"hub-{self.incarnation}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])

    def log_text(self) -> str:
        """Every incarnation's log, in order."""
        return "\n".join((self.logs / f"hub-{n}.log").read_text("utf-8", "replace")
                         for n in range(1, self.incarnation + 1) if (self.logs / f"hub-{n}.log").exists())


def hub_env(config_env: dict[str, str]) -> dict[str, str]:
    """The environment of every hub process: this one's, plus the config's CHAOS_* values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCHUB_")}
    return {**env, **config_env, "SYNCHUB_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}
