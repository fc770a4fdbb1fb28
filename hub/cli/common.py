"""What every `synchub` command shares: the group, exit codes, loading config and store.

Exit codes are part of the interface, because scripts and CI call these commands:
0 everything went through, 1 some records or files had problems (all of them are reported),
2 the command could not run at all (bad usage, unreadable config or mapping, no store).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import click

from hub import __version__
from hub.config import HubConfig, load_config, reveal
from hub.errors import InvalidInput, SynchubError
from hub.logging import configure as configure_logging
from hub.store import Store

DEFAULT_CONFIG = "config/demo.yaml"
CONFIG_ENV = "SYNCHUB_CONFIG"
LOG_LEVEL_ENV = "SYNCHUB_LOG_LEVEL"
EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """The group, loading the modules of the commands that serve HTTP when one of them is called.

    Those modules import FastAPI, uvicorn and the sandboxes: ~0.5 s of CPU and 17 MB that a
    `synchub sync` run from cron would otherwise pay at every start (measured by bench/e2e.py).
    """

    LAZY = {"api": "hub.cli.service", "run": "hub.cli.service", "demo": "hub.cli.demo", "sandbox": "hub.cli.sandboxes"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.LAZY:
            importlib.import_module(self.LAZY[cmd_name])  # its decorators add the command to this group
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="synchub")
def main() -> None:
    """synchub keeps your CRM, ERP and OA products consistent."""
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"))


def default_config() -> str:
    return os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)


def config_argument(fn: F) -> F:
    """CONFIG as an optional argument: $SYNCHUB_CONFIG, else config/demo.yaml."""
    return click.argument("config", required=False)(fn)


def config_option(fn: F) -> F:
    """--config for commands whose arguments are something else (a flow, job ids)."""
    return click.option("--config", "-c", "config", default=None, metavar="FILE",
                        help="Hub config (default: $SYNCHUB_CONFIG, else config/demo.yaml).")(fn)


def print_problems(path: str | None, exc: InvalidInput) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    if path is not None:
        count = len(exc.problems)
        click.echo(f"{path}: {count} problem{'s' if count != 1 else ''} found", err=True)


def load_or_exit(config: str | None) -> HubConfig:
    """The config, or every problem in it on stderr and exit code 2."""
    path = config or default_config()
    try:
        return load_config(path)
    except InvalidInput as exc:
        print_problems(path, exc)
        sys.exit(EXIT_UNUSABLE)


def store_url(hub: HubConfig) -> str:
    return str(reveal(hub.store_url))


def fail(message: str, code: int = EXIT_UNUSABLE) -> None:
    click.echo(f"synchub: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run a command body; our own errors become one line on stderr and exit 2, not a traceback."""
    try:
        return fn()
    except SynchubError as exc:
        fail(str(exc))


def on_stop_signal(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a clean stop: the job in hand finishes, nothing is lost."""
    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def open_store(hub: HubConfig, upgrade: bool = False) -> Store:
    """The config's store, migrated first when asked; exits when it is unusable or behind."""
    store = guarded(lambda: Store.open(store_url(hub)))
    if upgrade:
        guarded(store.upgrade)
    elif not guarded(store.is_current):
        fail("the store is not at the current schema: run `synchub db upgrade` first")
    return store  # type: ignore[no-any-return]
