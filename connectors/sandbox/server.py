"""Serving a sandbox on loopback from a background thread, over HTTP or self-signed TLS.

Tests, benchmarks, the demo and `synchub sandbox` all start sandboxes the same way:
`serve(app)` binds 127.0.0.1 (port 0 picks a free one), waits until uvicorn listens, and
returns the base URL. `tls=True` serves HTTPS with a certificate from a throw-away CA made
at start-up (trustme); clients trust `ca_file`, for vendor libraries that insist on https.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

HOST = "127.0.0.1"


@dataclass
class RunningServer:
    """A started sandbox: where it listens, and how to stop it."""

    app: Any
    base_url: str
    port: int
    ca_file: str | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _tmp: Any = field(default=None, repr=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        kit = getattr(getattr(self.app, "state", None), "kit", None)
        if kit is not None:
            kit.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HideDroppedConnections(logging.Filter):
    """uvicorn logs the exception a `drop` fault raises on purpose; it is not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return type(exc).__name__ != "DroppedConnection"


def serve(app: Any, port: int = 0, tls: bool = False, log_level: str = "warning") -> RunningServer:
    """Start `app` on 127.0.0.1:`port` in a daemon thread and wait until it listens."""
    tmp = ca_file = None
    ssl: dict[str, str] = {}
    if tls:
        tmp = tempfile.TemporaryDirectory(prefix="synchub-tls-")
        ca_file, ssl = _self_signed(Path(tmp.name))
    logging.getLogger("uvicorn.error").addFilter(_HIDE_DROPS)
    config = uvicorn.Config(app, host=HOST, port=port, log_level=log_level, lifespan="off",
                            access_log=False, timeout_graceful_shutdown=2, **ssl)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox did not start on {HOST}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    return RunningServer(app, f"{scheme}://{HOST}:{bound}", bound, ca_file, server, thread, tmp)


def _self_signed(folder: Path) -> tuple[str, dict[str, str]]:
    import trustme  # only needed for TLS

    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return str(ca_file), {"ssl_certfile": str(cert_file), "ssl_keyfile": str(key_file)}


_HIDE_DROPS = _HideDroppedConnections()
