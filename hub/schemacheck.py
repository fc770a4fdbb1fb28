"""jsonschema validation of hand-written YAML, reported as located, readable problems.

jsonschema's own messages are written for programmers ("Additional properties are not
allowed ('clinet_id' was unexpected)"). Admins get one problem per mistake, pointing at the
offending key or value, with a suggestion when a name looks misspelt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from hub.errors import Problem, show
from hub.suggest import did_you_mean
from hub.yamldoc import Document, PathKey

_BOUNDS = {
    "minimum": "at least",
    "exclusiveMinimum": "greater than",
    "maximum": "at most",
    "exclusiveMaximum": "less than",
}

_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "empty",
}


def schema_problems(doc: Document, schema: dict[str, Any], data: Any = None, base: PathKey = ()) -> list[Problem]:
    """Every way `data` (default: the whole document) breaks `schema`, located in `doc`."""
    validator = jsonschema.Draft202012Validator(schema)
    target = doc.data if data is None else data
    problems: list[Problem] = []
    for error in validator.iter_errors(target):
        problems.extend(_explain(doc, error, base))
    return problems


def is_clean(problems: list[Problem], path: str) -> bool:
    """True if no problem lies at or under the dotted `path`: that part can be checked further."""
    for problem in problems:
        p = problem.path
        if p == path or p.startswith(path + ".") or p.startswith(path + "[") or (not path):
            return False
    return True


def _explain(doc: Document, error: ValidationError, base: PathKey) -> Iterable[Problem]:
    path: PathKey = (*base, *error.absolute_path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        for extra in _extra_keys(error):
            message = f"unknown key '{extra}'{did_you_mean(str(extra), allowed)}"
            yield doc.problem((*path, extra), message, at_key=True)
        return
    if kind == "required":
        missing = _quoted_name(error.message)
        yield doc.problem(path, f"missing required key '{missing}'", at_key=True)
        return
    if "propertyNames" in error.schema_path:
        yield doc.problem((*path, error.instance), _message(error), at_key=True)
        return
    yield doc.problem(path, _message(error))


def _message(error: ValidationError) -> str:
    kind, value, expected = error.validator, error.instance, error.validator_value
    custom = error.schema.get("x-error") if isinstance(error.schema, dict) else None
    if custom:
        return f"{custom}, got {show(value)}"
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        words = [_TYPE_NAMES.get(n, n) for n in names]
        wanted = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        return f"must be {wanted}, got {show(value)}"
    if kind == "enum":
        options = ", ".join(str(v) for v in expected)
        hint = did_you_mean(value, [str(v) for v in expected]) if isinstance(value, str) else ""
        return f"{show(value)} is not one of: {options}{hint}"
    if kind == "const":
        return f"must be {expected!r}, got {show(value)}"
    if kind == "pattern":
        return f"{show(value)} does not have the expected form ({expected})"
    if kind in ("minLength", "minItems", "minProperties"):
        return "must not be empty" if expected == 1 else f"is too short (at least {expected})"
    if kind in ("maxLength", "maxItems", "maxProperties"):
        return f"is too long (at most {expected})"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {expected}, got {show(value)}"
    if kind == "propertyNames":
        return f"key {show(value)} is not allowed here"
    return error.message


def _extra_keys(error: ValidationError) -> list[Any]:
    allowed = set(error.schema.get("properties", {}))
    patterns = error.schema.get("patternProperties", {})
    if patterns:
        return []  # jsonschema reports these precisely enough through other validators
    return [k for k in error.instance if k not in allowed]


def _quoted_name(message: str) -> str:
    """jsonschema says "'url' is a required property"; we only want `url`."""
    return message.split("'")[1] if message.count("'") >= 2 else message
