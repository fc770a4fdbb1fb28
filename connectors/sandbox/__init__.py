"""The toolkit every vendor sandbox is built from (the sandboxes themselves live beside
their connectors, in `connectors/<vendor>/sandbox.py`).

A vendor's `sandbox.py` exports:

- `create_app(options: SandboxOptions) -> FastAPI`: the vendor's API under its real paths,
  seeded with `options.records` companies from `seed.companies`, built on `SandboxKit`
  (faults, call statistics, the `/_sandbox` control API, outbound webhooks);
- `system_config(base_url: str) -> dict`: the `systems:` entry of a hub config that points
  the connector at this sandbox with the sandbox's own credentials.

`load(name)` finds a vendor's sandbox module by connector name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from connectors import registry
from connectors.sandbox.faults import FaultSpec, FaultSpecError
from connectors.sandbox.kit import SandboxKit, SandboxOptions
from connectors.sandbox.server import RunningServer, serve

__all__ = ["FaultSpec", "FaultSpecError", "NoSandbox", "RunningServer", "SandboxKit", "SandboxOptions",
           "load", "names", "serve"]


class NoSandbox(LookupError):
    """The connector has no sandbox module."""


def load(name: str) -> ModuleType:
    """The sandbox module of connector `name`."""
    package = registry.package(name)
    try:
        return importlib.import_module(f"{package.__name__}.sandbox")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package.__name__}.sandbox":
            raise
        raise NoSandbox(f"connector '{name}' has no sandbox") from None


def names() -> list[str]:
    """Connectors that ship a sandbox."""
    found = []
    for name in registry.names():
        try:
            load(name)
        except (NoSandbox, registry.UnknownConnector):
            continue
        found.append(name)
    return found
