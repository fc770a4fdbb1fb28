"""The `synchub` command: one group, with its subcommands in the modules beside this one."""

from hub.cli import demo, files, operations, sandboxes, service  # noqa: F401  (registers the subcommands)
from hub.cli.common import main

__all__ = ["main"]
