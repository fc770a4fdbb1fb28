"""The `synchub` command: one group, with its subcommands in the modules beside this one
(those that serve HTTP are loaded when called, see `common.LazyGroup`)."""

from hub.cli import files, operations  # noqa: F401  (registers the subcommands)
from hub.cli.common import main

__all__ = ["main"]
