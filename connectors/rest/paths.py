"""The small expression languages of a REST declaration: JMESPath, path templates, dotted keys.

An admin points at data inside an answer with JMESPath (`data.items`, `error.message`) and
names where a value goes in a request with a path template (`/customers/{id}`) or a dotted
key (`paging.page` in a POST body). These are compiled once, when the connector is built,
so that a typo fails at start-up with the name of the setting rather than mid-sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult


class DeclarationError(ValueError):
    """A setting the schema accepted but that cannot work (a bad JMESPath, a bad time zone)."""


@dataclass(frozen=True)
class Expr:
    """A compiled JMESPath expression that remembers its text, for messages."""

    text: str
    parsed: ParsedResult

    def search(self, data: Any) -> Any:
        return self.parsed.search(data)


def compile_expr(text: str | None, setting: str, default: str | None = None) -> Expr | None:
    """Compile `text` (or `default` when unset); raise DeclarationError naming `setting`."""
    source = text if text is not None else default
    if source is None:
        return None
    try:
        return Expr(source, jmespath.compile(source))
    except JMESPathError as exc:
        reason = " ".join(str(exc).split())
        raise DeclarationError(f"{setting}: {source!r} is not a JMESPath expression: {reason}") from None


def search_list(expr: Expr | None, data: Any, what: str) -> list[Any]:
    """The list `expr` finds in `data` (None finds nothing); anything else is a declaration bug."""
    found = data if expr is None else expr.search(data)
    if found is None:
        return []
    if isinstance(found, list):
        return found
    if isinstance(found, dict) and expr is not None:
        raise DeclarationError(f"{what}: {expr.text!r} found an object, not a list of records")
    raise DeclarationError(f"{what}: expected a list of records, found {type(found).__name__}")


def fill(template: str, **values: str) -> str:
    """A path template with `{id}`/`{key}` replaced by URL-quoted values (a '/' in an id stays data)."""
    result = template
    for name, value in values.items():
        result = result.replace("{" + name + "}", quote(str(value), safe=""))
    return result


def set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Put `value` at `a.b.c` in a JSON body, creating the objects on the way."""
    *parents, last = dotted.split(".")
    node = target
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


def wrapped(value: Any, wrap: str | None) -> Any:
    """`value` placed under the dotted key `wrap` (`data` gives {"data": value}); as is without one."""
    if not wrap:
        return value
    body: dict[str, Any] = {}
    set_dotted(body, wrap, value)
    return body


def dotted_get(record: dict[str, Any], dotted: str) -> Any:
    """The value at `a.b` in a record (a field name containing a dot is tried first)."""
    if dotted in record:
        return record[dotted]
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
