"""Finding connectors by name through the `synchub.connectors` entry-point group.

An entry point names a connector's package. The package declares `SETTINGS_SCHEMA`: the
JSON Schemas of the `auth`, `webhook` and `options` blocks of a system using it, so that
`synchub check` can point at a misspelt credential key before anything connects.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

GROUP = "synchub.connectors"
SETTING_BLOCKS = ("auth", "webhook", "options")


class UnknownConnector(LookupError):
    """No installed package registers a connector under this name."""


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    """Names of every installed connector, sorted."""
    return sorted(_entry_points())


@cache
def package(name: str) -> ModuleType:
    """The connector's package, imported on first use."""
    try:
        ep = _entry_points()[name]
    except KeyError:
        raise UnknownConnector(name) from None
    module = ep.load()
    if not isinstance(module, ModuleType):
        raise TypeError(f"entry point {name!r} in {GROUP} must name a package, not {type(module).__name__}")
    return module


def settings_schema(name: str, block: str) -> dict[str, Any]:
    """JSON Schema of one settings block (`auth`, `webhook`, `options`) of a connector."""
    declared: dict[str, Any] = getattr(package(name), "SETTINGS_SCHEMA", {})
    return declared.get(block, {"type": "object"})


class ConnectorNotAvailable(LookupError):
    """The connector's package is installed but ships no `Connector` class (yet)."""


def connector_class(name: str) -> type:
    """The connector class a package exports as `Connector`."""
    cls = getattr(package(name), "Connector", None)
    if cls is None:
        raise ConnectorNotAvailable(f"connector '{name}' declares its settings but has no Connector class yet")
    return cls  # type: ignore[no-any-return]
