"""The toolkit every vendor sandbox is built from (the sandboxes themselves live beside
their connectors, in `connectors/<vendor>/sandbox.py`).

A vendor's `sandbox.py` exports:

- `create_app(options: SandboxOptions) -> FastAPI`: the vendor's API under its real paths,
  seeded with `options.records` companies from `seed.companies`, built on `SandboxKit`
  (faults, call statistics, the `/_sandbox` control API, outbound webhooks);
- `system_config(base_url: str) -> dict`: the `systems:` entry of a hub config that points
  the connector at this sandbox with the sandbox's own credentials.

`load(name)` finds a vendor's sandbox module by connector name; `system_for(name, server)`
is the `System` a connector needs to talk to a started sandbox.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from connectors import registry
from connectors.sandbox.faults import FaultSpec, FaultSpecError
from connectors.sandbox.kit import SandboxKit, SandboxOptions
from connectors.sandbox.server import RunningServer, serve
from hub.config.model import System

__all__ = ["FaultSpec", "FaultSpecError", "NoSandbox", "RunningServer", "SandboxKit", "SandboxOptions",
           "load", "names", "serve", "system_for"]


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


def system_for(name: str, server: RunningServer, system: str | None = None, options: dict[str, Any] | None = None,
               timeout: float = 30.0) -> System:
    """The System of connector `name` pointed at its started sandbox, with the sandbox's own
    credentials; `options` are added to the declared ones, and a TLS sandbox's CA is trusted."""
    declared = load(name).system_config(server.base_url)
    merged = {**declared.get("options", {}), **(options or {})}
    if server.ca_file:
        merged["ca_file"] = server.ca_file
    return System(name=system or name, connector=name, base_url=declared.get("base_url"),
                  auth=declared.get("auth", {}), webhook=declared.get("webhook", {}), options=merged, timeout=timeout)
