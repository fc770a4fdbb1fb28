"""What the benchmarks that start servers as processes share (`e2e.py`, `webhooks.py`)."""

from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, as an admin stops a service, then SIGKILL if it is not gone after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
