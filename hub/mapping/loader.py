"""Loading a mapping file: safe YAML, shape check, then compilation into a `Mapping`.

Every problem in the file is collected and raised at once as a `MappingError`, each with
`file:line:col`, so an admin fixes a mapping in one pass instead of one error per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from hub import canonical
from hub.errors import FieldError, MappingError, RuleError
from hub.mapping.compiler import CompiledRules, Context, PassThrough, Predicate, Resolver, RuleCompiler, Scope
from hub.mapping.paths import Getter, make_getter, make_setter, parse_path
from hub.schemacheck import is_clean, schema_problems
from hub.suggest import did_you_mean
from hub.yamldoc import Document, load_yaml

DEFAULT_NULL_VALUES: list[Any] = [None, ""]  # what "no value" means in a vendor record by default
_PASS_THROUGH = PassThrough()


class MapResult(NamedTuple):
    """A mapped record and every field error met on the way (empty when it mapped cleanly)."""

    value: dict[str, Any]
    errors: list[FieldError]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Mapping:
    """A compiled mapping between one vendor object and one canonical entity."""

    file: str
    connector: str
    object: str
    entity: str
    id_path: str | None
    key_path: str | None
    inbound: CompiledRules | None
    outbound: CompiledRules | None
    _id_getter: Getter | None = None
    _key_getter: Getter | None = None
    fingerprint: str = ""  # changes whenever the file does, so records mapped by an old version look changed
    _only: Predicate | None = None

    def takes(self, record: dict[str, Any]) -> bool:
        """Whether this vendor record is an entity of this mapping at all (its `only` conditions)."""
        return self._only is None or bool(self._only(record, Context(record, _PASS_THROUGH)))

    def to_canonical(self, record: dict[str, Any], resolver: Resolver = _PASS_THROUGH,
                     validate: bool = True) -> MapResult:
        """Vendor record to canonical record; validated against the entity's schema by default."""
        if self.inbound is None:
            return MapResult({}, [FieldError("", f"{self.file} has no inbound rules")])
        if not isinstance(record, dict):
            return MapResult({}, [FieldError("", f"a record must be a JSON object, got {type(record).__name__}")])
        value, errors = self.inbound.apply(record, Context(record, resolver))
        if validate and not errors:
            errors = canonical.validate(self.entity, value)
        return MapResult(value, errors)

    def to_vendor(self, record: dict[str, Any], resolver: Resolver = _PASS_THROUGH) -> MapResult:
        """Canonical record to the payload the vendor receives, with the idempotency key set."""
        if self.outbound is None:
            return MapResult({}, [FieldError("", f"{self.file} has no outbound rules")])
        if not isinstance(record, dict):
            return MapResult({}, [FieldError("", f"a record must be a JSON object, got {type(record).__name__}")])
        return MapResult(*self.outbound.apply(record, Context(record, resolver)))

    def external_id(self, record: dict[str, Any]) -> Any:
        """The vendor's own id of a vendor record (None if the mapping names no `id`, or it is empty)."""
        return self._id_getter(record) if self._id_getter else None

    def hub_key(self, record: dict[str, Any]) -> Any:
        """The canonical id the hub wrote into a vendor record, or None if it carries none."""
        return self._key_getter(record) if self._key_getter else None


@cache
def mapping_schema() -> dict[str, Any]:
    text = resources.files("hub.mapping").joinpath("mapping.schema.json").read_text("utf-8")
    return json.loads(text)


def load_mapping(path: str | Path, display: str | None = None) -> Mapping:
    """Load and compile one mapping file, or raise MappingError listing every problem."""
    doc = load_yaml(path, MappingError, display)
    return compile_document(doc)


def compile_document(doc: Document) -> Mapping:
    """Compile an already-parsed mapping document."""
    if not isinstance(doc.data, dict):
        raise MappingError([doc.problem((), "a mapping file must be a YAML mapping with connector, object, entity")])
    shape = schema_problems(doc, mapping_schema())
    data = doc.data
    entity = data.get("entity")
    if not is_clean(shape, "entity") or entity is None:
        raise MappingError(shape)
    if entity not in canonical.ENTITIES:
        hint = did_you_mean(entity, canonical.ENTITIES)
        raise MappingError([*shape, doc.problem(("entity",), f"unknown entity '{entity}'{hint}")])
    if "inbound" not in data and "outbound" not in data:
        raise MappingError([*shape, doc.problem((), "a mapping needs 'inbound' rules, 'outbound' rules or both")])
    nulls = data.get("null_values", DEFAULT_NULL_VALUES) if is_clean(shape, "null_values") else DEFAULT_NULL_VALUES
    compiler = RuleCompiler(doc, nulls, shape)
    inbound = _direction(compiler, data, "inbound", Scope(entity, inbound=True))
    outbound = _direction(compiler, data, "outbound", Scope(entity, inbound=False))
    only = compiler.conditions(data.get("only"), ("only",), Scope(entity, inbound=True)) \
        if is_clean(shape, "only") else None
    id_getter = _getter(compiler, data, "id")
    key_getter = _getter(compiler, data, "key")
    if outbound is not None and key_getter is not None:
        outbound = _with_key(outbound, data["key"])
    if compiler.problems:
        raise MappingError(compiler.problems)
    return Mapping(doc.file, data["connector"], data["object"], entity, data.get("id"), data.get("key"),
                   inbound, outbound, id_getter, key_getter, doc.digest, only)


def _direction(compiler: RuleCompiler, data: dict[str, Any], name: str, scope: Scope) -> CompiledRules | None:
    if name not in data or not isinstance(data[name], dict):
        return None
    return compiler.rules(data[name], (name,), scope)


def _getter(compiler: RuleCompiler, data: dict[str, Any], name: str) -> Getter | None:
    if not isinstance(data.get(name), str):
        return None
    try:
        path = parse_path(data[name])
        if name == "key":
            make_setter(path)  # the key is also written outbound, so it must be a plain target
        get, nullify = make_getter(path), compiler.vendor_nullify
        return lambda record: nullify(get(record))  # Odoo's `ref: false` is no key at all
    except RuleError as exc:
        compiler.fail((name,), str(exc))
        return None


def _with_key(rules: CompiledRules, key: str) -> CompiledRules:
    """Outbound payloads carry the canonical id in the key field: retries update, not create."""
    setter = make_setter(parse_path(key))
    read_id = make_getter(parse_path("id"))
    step = (setter, lambda record, ctx: read_id(record), key, "id")
    return CompiledRules((*rules.steps, step))
