"""The canonical model: JSON Schemas of customer, order and approval, and small helpers.

Every record crossing the hub is first turned into one of these entities, so that each
vendor needs one mapping to the model instead of one per other vendor. The schemas are the
contract: `validate` checks a mapped record (the engine dead-letters it on any error), and
`field_exists` / `field_paths` / `field_kind` let the mapping compiler reject a misspelt
canonical field when a mapping is loaded instead of when a record first flows through it.

Schemas are read from the JSON files beside this module and resolved through an in-memory
`referencing.Registry`: a `$ref` never reaches the network.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from hub.errors import FieldError, SynchubError, show
from hub.suggest import did_you_mean

if TYPE_CHECKING:
    from referencing._core import Resolver  # not re-exported by referencing itself

__all__ = ["ENTITIES", "UnknownEntity", "field_exists", "field_kind", "field_paths", "schema", "validate"]

ENTITIES: tuple[str, ...] = ("customer", "order", "approval")

_HERE = Path(__file__).parent
_FILES = ("common", *ENTITIES)
_INDEX = re.compile(r"\[-?\d+\]")
_ZONELESS = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SHOW_MAX = 40
_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "empty",
}
# When one field breaks several keywords, only the most basic complaint is kept: a value of
# the wrong type, or a zoneless datetime that also fails `format`, needs one message, not two.
_PRIORITY = {"type": 0, "required": 0, "additionalProperties": 0, "enum": 1, "const": 1,
             "minLength": 2, "maxLength": 2, "pattern": 3, "format": 4}


class UnknownEntity(SynchubError):
    """An entity name that is not one of `ENTITIES` (a typo in a mapping or on the CLI)."""


# --- loading ------------------------------------------------------------------------------


@cache
def _documents() -> dict[str, dict[str, Any]]:
    return {name: json.loads((_HERE / f"{name}.schema.json").read_text(encoding="utf-8")) for name in _FILES}


@cache
def _registry() -> Registry:
    resources = [(doc["$id"], DRAFT202012.create_resource(doc)) for doc in _documents().values()]
    return Registry().with_resources(resources)


@cache
def _inlined(entity: str) -> dict[str, Any]:
    """The entity's schema with every `$ref` replaced by its target, resolved via the registry.

    jsonschema resolves a `$ref` again on every record it checks, which doubles the cost of
    validating an order; the model has no recursive references, so inlining them once is
    exact. A `$ref`'s sibling keywords (its description) win over the target's.
    """
    root = _documents()[entity]
    return _inline(root, _registry().resolver(base_uri=root["$id"]))


def _inline(node: Any, resolver: Resolver) -> Any:
    if isinstance(node, list):
        return [_inline(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        resolved = resolver.lookup(node["$ref"])
        target = _inline(resolved.contents, resolved.resolver)
        siblings = {k: _inline(v, resolver) for k, v in node.items() if k != "$ref"}
        return {**target, **siblings}
    return {k: _inline(v, resolver) for k, v in node.items()}


def _check(entity: str) -> None:
    if entity not in ENTITIES:
        hint = did_you_mean(str(entity), ENTITIES)
        raise UnknownEntity(f"unknown entity '{entity}'{hint}; expected one of: {', '.join(ENTITIES)}")


def schema(entity: str) -> dict[str, Any]:
    """The entity's JSON Schema (a copy: the cached original backs the validator)."""
    _check(entity)
    return copy.deepcopy(_documents()[entity])


# --- validation ---------------------------------------------------------------------------


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return bool(_DATE.match(value)) and date.fromisoformat(value) is not None
    except ValueError:
        return False


def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    return bool(at and local) and len(value) <= 254 and len(labels) > 1 and all(labels)


_FORMATS: dict[str, Callable[[object], bool]] = {"date-time": _is_datetime, "date": _is_date, "email": _is_email}


def _formats() -> jsonschema.FormatChecker:
    """Only the formats the model uses, checked with the stdlib (no optional packages)."""
    checker = jsonschema.FormatChecker(formats=())
    for name, check in _FORMATS.items():
        checker.checks(name)(check)
    return checker


@cache
def _fast(entity: str) -> Callable[[Any], Any]:
    """The same schema compiled to Python by fastjsonschema: ~20x faster on valid records.

    It answers only "valid or not"; every explanation comes from jsonschema, which stays the
    reference (a record the two disagree on is judged by jsonschema).
    """
    return fastjsonschema.compile(_inlined(entity), formats=_FORMATS)


@cache
def _validator(entity: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_inlined(entity), registry=_registry(), format_checker=_formats())


def validate(entity: str, record: dict[str, Any]) -> list[FieldError]:
    """Every way `record` breaks the entity's schema, one FieldError per field, sorted by field.

    Valid records (the common case, once per record in a sync) cost one call of the compiled
    fast check; only invalid ones pay for collecting and explaining errors.
    """
    _check(entity)
    try:
        _fast(entity)(record)
        return []
    except fastjsonschema.JsonSchemaException:
        pass
    validator = _validator(entity)
    if validator.is_valid(record):
        return []
    best: dict[str, tuple[int, tuple[Any, ...], str]] = {}
    for parts, rank, reason in _explain_all(entity, validator.iter_errors(record)):
        name = _render(parts)
        if name not in best or rank < best[name][0]:
            best[name] = (rank, _sort_key(parts), reason)
    ordered = sorted(best.items(), key=lambda item: item[1][1])
    return [FieldError(name, reason) for name, (_, _, reason) in ordered]


def _explain_all(entity: str, errors: Iterator[ValidationError]) -> Iterator[tuple[list[Any], int, str]]:
    for error in errors:
        path = list(error.absolute_path)
        rank = _PRIORITY.get(str(error.validator), 5)
        kind = error.validator
        if kind == "required" and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    yield [*path, name], rank, "is required"
        elif kind == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            owner = ".".join([entity, *(p for p in path if isinstance(p, str))])
            for key in error.instance:
                if key not in allowed:
                    yield [*path, key], rank, f"not a field of {owner}{did_you_mean(str(key), allowed)}"
        else:
            yield path, rank, _reason(error)


def _reason(error: ValidationError) -> str:
    kind, value, expected = error.validator, error.instance, error.validator_value
    schema_ = error.schema if isinstance(error.schema, dict) else {}
    custom = schema_.get("x-error")
    if schema_.get("format") == "date-time" and isinstance(value, str) and _ZONELESS.match(value):
        return f"must carry a time zone (Z or ±HH:MM), got {_show(value)}"
    if kind == "type":
        if custom:
            return f"{custom}, got {_show(value)}"
        names = expected if isinstance(expected, list) else [expected]
        return f"must be {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {_show(value)}"
    if kind == "enum":
        options = [str(v) for v in expected]
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        return f"must be one of: {', '.join(options)}, got {_show(value)}{hint}"
    if kind in ("pattern", "format"):
        return f"{custom}, got {_show(value)}" if custom else f"{_show(value)} is not a valid {expected}"
    if "propertyNames" in error.relative_schema_path:
        return f"field names must not be empty, got {_show(value)}"
    if kind == "minLength":
        return "must not be empty" if expected == 1 else f"must be at least {expected} characters long"
    if kind == "maxLength":
        return f"must be at most {expected} characters long"
    if kind == "minimum":
        return f"must be at least {expected}, got {_show(value)}"
    if kind == "maximum":
        return f"must be at most {expected}, got {_show(value)}"
    if kind == "uniqueItems":
        return "must not list the same item twice"
    return _truncate(error.message)


def _show(value: Any) -> str:
    """Canonical values are shown as the JSON they are (`"done"`, `12.5`), bounded."""
    try:
        return _truncate(json.dumps(value, ensure_ascii=False, default=str))
    except ValueError:  # an int too long to print
        return show(value)


def _truncate(text: str) -> str:
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 1] + "…"


def _render(parts: Sequence[Any]) -> str:
    """`["lines", 0, "quantity"]` to `lines[0].quantity`, the way mappings write paths."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _sort_key(parts: Sequence[Any]) -> tuple[Any, ...]:
    """Natural order: `lines[2]` before `lines[10]`."""
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts)


# --- field paths --------------------------------------------------------------------------


@cache
def _fields(entity: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """All dotted paths of `entity` with their kinds, and the free-form object paths."""
    kinds: dict[str, str] = {}
    free: list[str] = []
    _walk(_inlined(entity), "", kinds, free)
    return kinds, tuple(free)


def _walk(node: dict[str, Any], prefix: str, kinds: dict[str, str], free: list[str]) -> None:
    if _kind(node) == "array" and isinstance(node.get("items"), dict):
        node = node["items"]  # arrays are transparent: lines.sku
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        kinds[path] = _kind(sub)
        _walk(sub, path, kinds, free)
    if prefix and _kind(node) == "object" and node.get("additionalProperties", True) is not False:
        free.append(prefix)


def _kind(node: dict[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, str):
        return kind
    values = node.get("enum")
    if values and all(isinstance(v, str) for v in values):
        return "string"
    return "any"


def _lookup(entity: str, path: str) -> str | None:
    _check(entity)
    kinds, free = _fields(entity)
    names = _INDEX.sub("", path)
    if names in kinds:
        return kinds[names]
    if any(names.startswith(f"{prefix}.") and len(names) > len(prefix) + 1 for prefix in free):
        return "any"
    return None


def field_exists(entity: str, path: str) -> bool:
    """Whether `path` (`contacts.email`, `lines.sku`, `form.leave_type`) names a field of `entity`.

    List indexes are ignored (`lines[0].sku` is `lines.sku`) and any key below a free-form
    object such as approval `form` exists, since its keys are the OA form's own.
    """
    return _lookup(entity, path) is not None


def field_paths(entity: str) -> list[str]:
    """Every dotted path of `entity`, objects and leaves, in schema order (for "did you mean")."""
    _check(entity)
    return list(_fields(entity)[0])


def field_kind(entity: str, path: str) -> str | None:
    """JSON type of the field at `path` ("object", "array", "string", "integer", ...).

    "any" for a key below a free-form object (approval `form.*`), None if there is no such field.
    """
    return _lookup(entity, path)
