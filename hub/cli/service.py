"""`synchub api` and `synchub run`: the hub as a service.

`run` is the small-company shape: API, scheduler and one worker in one process on the
embedded SQLite store. Bigger installations run `synchub api`, `synchub worker` and
`synchub scheduler` apart, on several machines sharing PostgreSQL. On SIGTERM (or Ctrl-C)
uvicorn stops taking requests and finishes the ones in flight, the worker finishes the job
in hand (a job cut short by a kill is released when its lease expires: nothing is lost),
and the scheduler stops firing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
import uvicorn

from hub.api import create_app
from hub.cli.common import config_option, load_or_exit, main, on_stop_signal, open_store
from hub.engine.runner import Engine
from hub.engine.worker import Worker
from hub.scheduler import Scheduler


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handling: ours stops the server and then the worker too.

    (uvicorn re-raises SIGTERM after its own graceful stop, which would end the process
    before the worker could finish its job and the store could be closed.)
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _serve(app: object, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then finish the requests in flight."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=10)
    server = _Server(config)
    stop = threading.Event()
    on_stop_signal(stop)
    threading.Thread(target=lambda: (stop.wait(), setattr(server, "should_exit", True)), daemon=True).start()
    server.run()


def _listen_options(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--port", default=8000, show_default=True, help="Port to listen on.")(fn)
    return click.option("--host", default="127.0.0.1", show_default=True,
                        help="Address to listen on (0.0.0.0 for every interface).")(fn)


@main.command()
@config_option
@_listen_options
@click.option("--upgrade/--no-upgrade", default=False, show_default=True, help="Migrate the store first.")
def api(config: str | None, host: str, port: int, upgrade: bool) -> None:
    """Serve the webhooks and the admin API (stateless: run as many as you like)."""
    hub = load_or_exit(config)
    store = open_store(hub, upgrade=upgrade)
    try:
        _serve(create_app(hub, store), host, port)
    finally:
        store.dispose()


@main.command()
@config_option
@_listen_options
def run(config: str | None, host: str, port: int) -> None:
    """API, scheduler and a worker in one process (migrates the store first)."""
    hub = load_or_exit(config)
    store = open_store(hub, upgrade=True)
    worker_engine = Engine(hub, store)
    worker = Worker(worker_engine, store)
    scheduler = Scheduler(hub, store)
    threads = [threading.Thread(target=worker.run, name="worker", daemon=True),
               threading.Thread(target=scheduler.run_as_leader, name="scheduler", daemon=True)]
    for thread in threads:
        thread.start()
    click.echo(f"synchub serving on http://{host}:{port} (API, scheduler and worker; Ctrl-C stops)", err=True)
    try:
        _serve(create_app(hub, store, on_jobs=worker.wake), host, port)
    finally:
        worker.stop()
        scheduler.stopping.set()
        for thread in threads:
            thread.join(timeout=60)
        worker_engine.close()
        store.dispose()
