"""Merging a system's version of a record into the golden record (DESIGN.md, "Conflicts").

Fields are merged leaf by leaf (`contacts.email` and `contacts.phone` can come from
different systems); lists are leaves. For each field the incoming value wins or loses by the
flow's rules, in its configured order: the owner of a field always wins; otherwise the newest
`updated_at` wins; otherwise the higher-priority system wins; if no rule decides, the value
that arrived last wins. Every time an incoming value loses, a `Decision` says why, so that
the run log shows it.

A field missing from the incoming record keeps its golden value: a system that does not
carry a field must not erase it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.config import ConflictPolicy

Meta = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Decision:
    """Why a field kept its golden value instead of the incoming one."""

    field: str
    kept_from: str
    rejected_from: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "kept_from": self.kept_from, "rejected_from": self.rejected_from, "rule": self.rule}


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted leaves: {"a": {"b": 1}} -> {"a.b": 1}; lists stay whole."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def unflatten(leaves: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in leaves.items():
        node = out
        *parents, last = path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = value
    return out


def merge(golden: dict[str, Any] | None, meta: Meta | None, incoming: dict[str, Any], source: str,
          policy: ConflictPolicy) -> tuple[dict[str, Any], Meta, list[Decision]]:
    """The new golden record and provenance after `source` delivered `incoming`."""
    stamp = incoming.get("updated_at")
    leaves = flatten(golden or {})
    provenance: Meta = dict(meta or {})
    decisions: list[Decision] = []
    for field, value in flatten(incoming).items():
        current = leaves.get(field)
        if field in leaves and current == value:
            continue
        origin = provenance.get(field)
        rule = _loser_rule(field, field in leaves, origin, source, stamp, policy)
        if rule is None:
            leaves[field] = value
            provenance[field] = {"system": source, "updated_at": stamp}
        else:
            decisions.append(Decision(field, origin["system"] if origin else "?", source, rule))
    return unflatten(leaves), provenance, decisions


def _loser_rule(field: str, present: bool, origin: dict[str, Any] | None, source: str, stamp: Any,
                policy: ConflictPolicy) -> str | None:
    """The rule by which the incoming value loses, or None when it wins."""
    if not present or origin is None or origin.get("system") == source:
        return None  # nothing to defend, or a system updating its own value
    for rule in policy.prefer:
        verdict = _RULES[rule](field, origin, source, stamp, policy)
        if verdict is not None:
            return None if verdict else rule
    return None


def _owner(field: str, policy: ConflictPolicy) -> str | None:
    """The owning system of a field, or of the closest parent field that has one."""
    parts = field.split(".")
    for end in range(len(parts), 0, -1):
        owner = policy.owners.get(".".join(parts[:end]))
        if owner is not None:
            return owner
    return None


def _by_owner(field: str, origin: dict[str, Any], source: str, stamp: Any, policy: ConflictPolicy) -> bool | None:
    owner = _owner(field, policy)
    if owner is None:
        return None
    if owner == source:
        return True
    return False if origin.get("system") == owner else None


def _by_newest(field: str, origin: dict[str, Any], source: str, stamp: Any, policy: ConflictPolicy) -> bool | None:
    theirs = origin.get("updated_at")
    if not stamp or not theirs or stamp == theirs:
        return None
    return bool(stamp > theirs)  # canonical datetimes are UTC ISO strings: they sort as text


def _by_priority(field: str, origin: dict[str, Any], source: str, stamp: Any, policy: ConflictPolicy) -> bool | None:
    ranks = {system: i for i, system in enumerate(policy.priority)}
    mine, theirs = ranks.get(source), ranks.get(origin.get("system", ""))
    if mine is None or theirs is None or mine == theirs:
        return None
    return mine < theirs


_RULES = {"owner": _by_owner, "newest": _by_newest, "priority": _by_priority}
