"""Field paths such as `BillingAddress.city`, `partner_id[0]` or `$.currency`.

A path is parsed once, when a mapping is compiled, into a getter specialised for its shape,
because getters run for every field of every record: the common one- and two-key paths
get closures with no loop at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import RuleError

Getter = Callable[[Any], Any]
Setter = Callable[[dict[str, Any], Any], None]

_SEGMENT = re.compile(r"([^.\[\]\s][^.\[\]]*)((?:\[-?\d+\])*)")
_INDEX = re.compile(r"\[(-?\d+)\]")
ROOT_PREFIX = "$."


@dataclass(frozen=True)
class FieldPath:
    """A parsed path: its parts (names and list indexes) and whether it starts at the root."""

    text: str
    parts: tuple[str | int, ...]
    from_root: bool = False

    @property
    def names(self) -> str:
        """The path without list indexes, as the canonical schema names fields: `lines.sku`."""
        return ".".join(p for p in self.parts if isinstance(p, str))


def parse_path(text: str) -> FieldPath:
    """Parse `a.b[0].c` (or `$.a` inside `each`); raise RuleError on anything else."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError("a field path must be non-empty text")
    body, from_root = (text[len(ROOT_PREFIX) :], True) if text.startswith(ROOT_PREFIX) else (text, False)
    parts: list[str | int] = []
    for segment in body.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise RuleError(f"'{text}' is not a field path (expected names joined by '.', with optional [n] indexes)")
        parts.append(match.group(1))
        parts.extend(int(i) for i in _INDEX.findall(match.group(2)))
    return FieldPath(text, tuple(parts), from_root)


def make_getter(path: FieldPath) -> Getter:
    """A function reading `path` from a record, giving None wherever the path runs out."""
    parts = path.parts
    if all(isinstance(p, str) for p in parts):
        if len(parts) == 1:
            return _key1(parts[0])  # type: ignore[arg-type]
        if len(parts) == 2:
            return _key2(parts[0], parts[1])  # type: ignore[arg-type]
    if len(parts) == 2 and isinstance(parts[0], str) and isinstance(parts[1], int):
        return _key_index(parts[0], parts[1])  # Odoo's many2one: partner_id[0]
    return _walk(parts)


def _key1(a: str) -> Getter:
    def get(record: Any) -> Any:
        try:
            return record[a]
        except (KeyError, TypeError, IndexError):
            return None

    return get


def _key2(a: str, b: str) -> Getter:
    def get(record: Any) -> Any:
        try:
            return record[a][b]
        except (KeyError, TypeError, IndexError):
            return None

    return get


def _key_index(a: str, i: int) -> Getter:
    def get(record: Any) -> Any:
        try:
            node = record[a]
        except (KeyError, TypeError, IndexError):
            return None
        if not isinstance(node, (list, tuple)):
            return None
        try:
            return node[i]
        except IndexError:
            return None

    return get


def _walk(parts: tuple[str | int, ...]) -> Getter:
    def get(record: Any) -> Any:
        node = record
        for part in parts:
            if isinstance(part, int):
                if not isinstance(node, (list, tuple)) or not -len(node) <= part < len(node):
                    return None
                node = node[part]
            elif isinstance(node, dict):
                node = node.get(part)
            else:
                return None
        return node

    return get


def make_setter(path: FieldPath) -> Setter:
    """A function writing a value at a target path, creating the dicts along the way."""
    if any(isinstance(p, int) for p in path.parts) or path.from_root:
        raise RuleError(f"'{path.text}' cannot be a target: targets are names joined by '.'")
    *parents, last = path.parts
    if not parents:

        def set_top(out: dict[str, Any], value: Any) -> None:
            out[last] = value  # type: ignore[index]

        return set_top

    def set_nested(out: dict[str, Any], value: Any) -> None:
        node = out
        for name in parents:
            child = node.get(name)  # type: ignore[call-overload]
            if child is None:
                child = node[name] = {}  # type: ignore[index]
            node = child
        node[last] = value  # type: ignore[index]

    return set_nested
