"""What a run did, counted the way the `runs` table and the CLI summary show it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class Counts:
    """Per-run tallies. `failed` counts records parked for a later retry; `dead` those dead-lettered;
    `skipped` those the source mapping's `only` leaves out (not an entity of this flow)."""

    pulled: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_echo: int = 0
    failed: int = 0
    dead: int = 0
    waiting: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def nonzero(self) -> dict[str, int]:
        return {k: v for k, v in self.as_dict().items() if v}


@dataclass
class PlannedWrite:
    """One write a run would make (dry run) or made: for the admin, with the field diff."""

    target: str
    op: str
    canonical_id: str
    external_id: str | None
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    """The result of one run of a flow (or of a few records of it)."""

    flow: str
    run_id: int | None
    counts: Counts = field(default_factory=Counts)
    status: str = "ok"
    planned: list[PlannedWrite] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unfinished: dict[str, str] = field(default_factory=dict)  # external id -> why it waits or failed (parked)

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.as_dict().items())
        return f"{self.flow}: {self.status}: {parts}"


@dataclass
class Preview:
    """One source record seen through a flow without writing: vendor form, canonical form,
    and what each target would receive (payload and field diff against what it holds now)."""

    flow: str
    external_id: str
    vendor: dict[str, Any] | None
    canonical: dict[str, Any] | None
    errors: list[str]
    planned: list[PlannedWrite]
    problems: list[str] = field(default_factory=list)
