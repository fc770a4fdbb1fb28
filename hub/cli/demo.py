"""`synchub demo`: start the sandboxes and the hub, play the story, show every system's state."""

from __future__ import annotations

import threading

import click

from hub.cli.common import EXIT_PROBLEMS, EXIT_UNUSABLE, main, on_stop_signal
from hub.demo.stage import Stage, start
from hub.demo.story import DemoFailed, play, state_table
from hub.logging import configure as configure_logging


@main.command()
@click.option("--once", is_flag=True, help="Exit when the story ends (otherwise the hub keeps serving).")
@click.option("--port", default=8000, show_default=True,
              help="The hub's port; the sandboxes take PORT+101..PORT+103 (0: free ports for all).")
@click.option("--records", default=12, show_default=True, help="Records seeded in each sandbox.")
@click.option("--verbose", is_flag=True, help="Show the hub's own log lines too.")
def demo(once: bool, port: int, records: int, verbose: bool) -> None:
    """Run the CRM → ERP → OA story on the bundled sandboxes (Salesforce, Odoo, DingTalk)."""
    configure_logging("info" if verbose else "warning")
    try:
        stage = start(port=port, records=records, schedule=not once)
    except (OSError, RuntimeError) as exc:
        click.echo(f"error: could not start the demo on port {port} and {port + 101}-{port + 103} ({exc}); "
                   "is another demo running? `--port 0` picks free ports", err=True)
        raise SystemExit(EXIT_UNUSABLE) from None
    try:
        _introduce(stage)
        try:
            play(stage, click.echo)
        except DemoFailed as exc:
            click.echo(f"\nThe demo stopped: {exc}", err=True)
            raise SystemExit(EXIT_PROBLEMS) from None
        _table(stage)
        if not once:
            click.echo(f"\nThe hub keeps serving on {stage.hub_url} (webhooks, /api/v1, /metrics); Ctrl-C stops it.")
            stop = threading.Event()
            on_stop_signal(stop)
            stop.wait()
    finally:
        stage.close()


def _introduce(stage: Stage) -> None:
    click.echo("synchub demo: three products and one hub, on this machine\n")
    for system, server in stage.sandboxes.items():
        connector = stage.config.systems[system].connector
        click.echo(f"   {system:<4} {connector:<11} sandbox  {server.base_url}")
    click.echo(f"   hub  synchub              {stage.hub_url}  (store {stage.store.url})\n")


def _table(stage: Stage) -> None:
    rows = state_table(stage)
    width = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    click.echo("Where everything stands:\n")
    for system, what, count in rows:
        click.echo(f"   {system:<{width[0]}}  {what:<{width[1]}}  {count}")
