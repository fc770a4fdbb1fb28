"""The hub configuration as typed, validated objects (what `load_config` returns).

By the time these exist the file has passed every check: names resolve, mappings compiled,
secrets resolved into `Secret`s. Code past this point never re-validates the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hub.mapping import Mapping

CONFLICT_RULES = ("owner", "newest", "priority")


@dataclass(frozen=True)
class System:
    """One product the hub talks to: which connector, where, with which credentials."""

    name: str
    connector: str
    base_url: Any = None
    auth: dict[str, Any] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    timeout: float = 30.0


@dataclass(frozen=True)
class Endpoint:
    """One side of a flow: a system's object and the mapping between it and the entity."""

    system: str
    object: str
    mapping: Mapping
    create: bool = True  # a target with False only updates records already linked to the canonical one


@dataclass(frozen=True)
class Schedule:
    """When a flow runs on its own: every `interval`, or on a five-field `cron` expression."""

    interval: timedelta | None = None
    cron: str | None = None
    text: str = ""

    def __str__(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {self.text or self.interval}"


@dataclass(frozen=True)
class ConflictPolicy:
    """How the golden record picks a value when systems disagree (see DESIGN.md)."""

    owners: dict[str, str] = field(default_factory=dict)
    prefer: tuple[str, ...] = CONFLICT_RULES
    priority: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flow:
    """Records of one entity moving from a source system to one or more targets."""

    name: str
    entity: str
    source: Endpoint
    targets: tuple[Endpoint, ...]
    schedule: Schedule | None = None
    webhook: bool = False
    match: tuple[str, ...] = ()
    conflict: ConflictPolicy = field(default_factory=ConflictPolicy)
    attempts: int = 8
    enabled: bool = True


@dataclass(frozen=True)
class HubConfig:
    """A whole, valid hub configuration."""

    file: Path
    store_url: Any
    mappings_dir: Path
    systems: dict[str, System]
    flows: dict[str, Flow]

    def mappings(self) -> list[Mapping]:
        """Every distinct mapping the flows use, in a stable order."""
        seen: dict[str, Mapping] = {}
        for flow in self.flows.values():
            for endpoint in (flow.source, *flow.targets):
                seen.setdefault(endpoint.mapping.file, endpoint.mapping)
        return [seen[k] for k in sorted(seen)]
