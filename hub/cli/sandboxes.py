"""`synchub sandbox`: start vendor sandboxes on loopback for the demo, tests and trials.

Each sandbox speaks its vendor's wire protocol (see `connectors/<vendor>/sandbox.py`), so a
config whose systems point at the printed URLs works as it would against the real product.
"""

from __future__ import annotations

import threading
from types import ModuleType

import click

from connectors import registry
from connectors.sandbox import (
    FaultSpec,
    FaultSpecError,
    NoSandbox,
    RunningServer,
    SandboxOptions,
    load,
    serve,
)
from connectors.sandbox import names as sandbox_names
from hub.cli.common import EXIT_UNUSABLE, main, on_stop_signal
from hub.suggest import did_you_mean


def _sandbox_module(name: str) -> ModuleType:
    try:
        return load(name)
    except registry.UnknownConnector:
        raise NoSandbox(f"no connector named '{name}'{did_you_mean(name, sandbox_names())}") from None


@main.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--port", "-p", default=0, show_default=True,
              help="Port of the first sandbox; the next ones take the following ports (0: any free port).")
@click.option("--seed", "records", default=20, show_default=True, help="Records to seed in each sandbox.")
@click.option("--random-seed", default=7, show_default=True, help="Seed of the data and of the faults.")
@click.option("--faults", default="", metavar="SPEC",
              help='Fault rates, e.g. "rate_limit=0.05,error=0.03,slow=0.02,drop=0.01,seed=7".')
@click.option("--webhook-url", default=None, help="Where the sandboxes send their change webhooks.")
@click.option("--tls", is_flag=True, help="Serve HTTPS with a throw-away self-signed CA.")
def sandbox(names: tuple[str, ...], port: int, records: int, random_seed: int, faults: str,
            webhook_url: str | None, tls: bool) -> None:
    """Start the sandboxes NAME... (e.g. salesforce odoo dingtalk) until Ctrl-C or SIGTERM."""
    try:
        spec = FaultSpec.parse(faults)
        modules = [_sandbox_module(name) for name in names]
    except (FaultSpecError, NoSandbox) as exc:
        raise click.ClickException(str(exc)) from None
    started: list[RunningServer] = []
    try:
        for offset, (name, module) in enumerate(zip(names, modules, strict=True)):
            options = SandboxOptions(records=records, seed=random_seed, faults=spec, webhook_url=webhook_url)
            server = serve(module.create_app(options), port=port + offset if port else 0, tls=tls)
            started.append(server)
            click.echo(f"{name:<12} {server.base_url}")
        if tls:
            click.echo(f"CA certificate: {started[0].ca_file}")
        stop = threading.Event()
        on_stop_signal(stop)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_UNUSABLE) from None
    finally:
        for server in started:
            server.stop()
