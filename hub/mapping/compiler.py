"""Compiles the rules of a mapping into closures, once, so that mapping a record is only calls.

Each rule becomes a `RuleFn(record, ctx) -> value | None` built from small pieces (a path
getter, a transform chain, a value table, ...) chosen when the file is loaded; nothing is
looked up by name while records flow. `None` means "no value": the field is left out.

A bad value never raises out of `CompiledRules.apply`: it becomes a `FieldError` naming the
target field, the source path and the reason, so that one bad field rejects one record,
and the caller sees every problem of that record at once.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hub import canonical
from hub.errors import FieldError, Problem, RuleError, TransformError, show
from hub.mapping import transforms
from hub.mapping.paths import FieldPath, Setter, make_getter, make_setter, parse_path
from hub.schemacheck import is_clean
from hub.suggest import did_you_mean
from hub.yamldoc import Document, PathKey, dotted


class Resolver(Protocol):
    """Turns an id of another entity into the id the other side knows, or None if unknown yet."""

    def resolve(self, entity: str, value: Any) -> Any | None: ...


class PassThrough:
    """The resolver used where no links table exists (`synchub map`): ids stay as they are."""

    def resolve(self, entity: str, value: Any) -> Any | None:
        return value


class Context:
    """Per-record state the closures need besides the value they work on."""

    __slots__ = ("root", "resolver")

    def __init__(self, root: Any, resolver: Resolver) -> None:
        self.root = root
        self.resolver = resolver


RuleFn = Callable[[Any, Context], Any]
Predicate = Callable[[Any, Context], bool]
Step = tuple[Setter, RuleFn, str, str]


class _Failed(Exception):
    """Internal: a rule produced field errors already named in full."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__()
        self.errors = errors


@dataclass(frozen=True)
class CompiledRules:
    """An ordered set of compiled rules producing one output dict."""

    steps: tuple[Step, ...]

    def apply(self, record: Any, ctx: Context) -> tuple[dict[str, Any], list[FieldError]]:
        out: dict[str, Any] = {}
        errors: list[FieldError] = []
        for setter, rule, target, source in self.steps:
            try:
                value = rule(record, ctx)
            except TransformError as exc:
                errors.append(FieldError(target, str(exc), source))
                continue
            except _Failed as failed:
                errors.extend(failed.errors)
                continue
            if value is not None:
                setter(out, value)
        return out, errors


@dataclass(frozen=True)
class Scope:
    """Where a set of rules sits: which side is canonical, and under which canonical path."""

    entity: str
    inbound: bool
    prefix: str = ""

    def nested(self, names: str) -> Scope:
        return Scope(self.entity, self.inbound, _join(self.prefix, names))


_NO_DEFAULT = object()
CANONICAL_NULL_VALUES: list[Any] = [None, ""]
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


class RuleCompiler:
    """Compiles the rule dicts of one mapping document, collecting located problems."""

    def __init__(self, doc: Document, null_values: list[Any], shape_problems: list[Problem] | None = None) -> None:
        self.doc = doc
        self.vendor_nulls = list(null_values)
        self.vendor_nullify = make_nullify(null_values)
        self.canonical_nullify = make_nullify(CANONICAL_NULL_VALUES)
        self.shape_problems = shape_problems or []
        self.problems: list[Problem] = list(self.shape_problems)

    def rules(self, specs: dict[str, Any], path: PathKey, scope: Scope) -> CompiledRules:
        steps = []
        for target, spec in specs.items():
            if not is_clean(self.shape_problems, dotted((*path, target), self.doc.data)):
                continue  # its shape is already reported; compiling it would only add noise
            step = self._step(str(target), spec, (*path, target), scope)
            if step is not None:
                steps.append(step)
        return CompiledRules(tuple(steps))

    def fail(self, path: PathKey, message: str, *, at_key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, at_key=at_key))

    def _step(self, target: str, spec: Any, path: PathKey, scope: Scope) -> Step | None:
        try:
            target_path = parse_path(target)
            setter = make_setter(target_path)
        except RuleError as exc:
            self.fail(path, str(exc), at_key=True)
            return None
        if scope.inbound:
            self._check_canonical(scope, target_path.names, scope.prefix, path, at_key=True)
        rule_spec = {"from": spec} if isinstance(spec, str) else spec
        try:
            rule, source = self._rule(target_path, rule_spec, path, scope)
        except RuleError as exc:
            self.fail(path, str(exc))
            return None
        return setter, rule, target, source

    def _rule(self, target: FieldPath, spec: dict[str, Any], path: PathKey, scope: Scope) -> tuple[RuleFn, str]:
        sources = [k for k in ("from", "const", "template") if k in spec]
        if len(sources) != 1:
            raise RuleError("a rule needs exactly one of 'from', 'const' or 'template'")
        read, source = self._source(spec, sources[0], path, scope)
        if "each" in spec:
            read = self._each(target, spec, read, source, path, scope)
        stages = self._stages(spec, path)
        when = self.conditions(spec.get("when"), (*path, "when"), scope)
        ref = self._ref(spec.get("ref"), (*path, "ref"))
        default = copy.deepcopy(spec["default"]) if "default" in spec else _NO_DEFAULT
        required = bool(spec.get("required", False))
        rule = _assemble(read, stages, when, ref, default, required, target.text, source)
        return rule, source

    # --- sources -------------------------------------------------------------------------

    def _source(self, spec: dict[str, Any], kind: str, path: PathKey, scope: Scope) -> tuple[RuleFn, str]:
        if kind == "const":
            return _const(spec["const"]), "const"
        if kind == "template":
            return self._template(spec["template"], (*path, "template"), scope), spec["template"]
        paths = spec["from"]
        if isinstance(paths, list):
            readers = [self._reader(p, (*path, "from", i), scope) for i, p in enumerate(paths)]
            return _read_list(readers), ", ".join(paths)
        return self._reader(paths, (*path, "from"), scope), paths

    def _reader(self, text: str, path: PathKey, scope: Scope) -> RuleFn:
        field = self._parse(text, path)
        if not scope.inbound:
            self._check_canonical(scope, field.names, "" if field.from_root else scope.prefix, path)
        nulls = self.vendor_nulls if scope.inbound else CANONICAL_NULL_VALUES
        if not field.from_root and len(field.parts) == 1 and isinstance(field.parts[0], str):
            fast = _key_reader(field.parts[0], nulls)
            if fast is not None:
                return fast
        get = make_getter(field)
        nullify = self._nullify(scope)
        if field.from_root:
            return lambda record, ctx: nullify(get(ctx.root))
        return lambda record, ctx: nullify(get(record))

    def _template(self, text: str, path: PathKey, scope: Scope) -> RuleFn:
        pieces: list[str | RuleFn] = []
        last = 0
        for match in _PLACEHOLDER.finditer(text):
            pieces.append(text[last : match.start()])
            last = match.end()
            token = match.group(0)
            if token in ("{{", "}}"):
                pieces.append(token[0])
            else:
                pieces.append(self._reader(match.group(1).strip(), path, scope))
        pieces.append(text[last:])
        if not any(callable(p) for p in pieces):
            raise RuleError("a template needs at least one {field} placeholder; use 'const' for fixed text")
        return _render(pieces)

    def _each(self, target: FieldPath, spec: dict[str, Any], read: RuleFn, source: str,
              path: PathKey, scope: Scope) -> RuleFn:
        if "from" not in spec or isinstance(spec["from"], list):
            raise RuleError("'each' needs 'from' naming one list")
        inner_scope = scope.nested(target.names if scope.inbound else parse_path(spec["from"]).names)
        inner = self.rules(spec["each"], (*path, "each"), inner_scope)
        where = self.conditions(spec.get("where"), (*path, "where"), inner_scope)
        return _each_items(read, inner, where, target.text, source)

    # --- modifiers -----------------------------------------------------------------------

    def _stages(self, spec: dict[str, Any], path: PathKey) -> list[Callable[[Any], Any]]:
        stages = self._transforms(spec.get("transform"), (*path, "transform"))
        if "map" in spec:
            stages.append(_value_table(spec["map"], spec.get("default", _NO_DEFAULT)))
        return stages

    def _ref(self, entity: str | None, path: PathKey) -> str | None:
        if entity is not None and entity not in canonical.ENTITIES:
            self.fail(path, f"unknown entity '{entity}'{did_you_mean(entity, canonical.ENTITIES)}")
        return entity

    def _transforms(self, spec: Any, path: PathKey) -> list[Callable[[Any], Any]]:
        if spec is None:
            return []
        items = spec if isinstance(spec, list) else [spec]
        built: list[Callable[[Any], Any]] = []
        for i, item in enumerate(items):
            where = (*path, i) if isinstance(spec, list) else path
            try:
                built.append(_build_transform(item))
            except RuleError as exc:
                self.fail(where, str(exc))
        return built

    def conditions(self, spec: Any, path: PathKey, scope: Scope) -> Predicate | None:
        if spec is None:
            return None
        items = spec if isinstance(spec, list) else [spec]
        tests = [self._condition(c, (*path, i) if isinstance(spec, list) else path, scope) for i, c in enumerate(items)]
        if len(tests) == 1:
            return tests[0]
        return lambda record, ctx: all(test(record, ctx) for test in tests)

    def _condition(self, spec: dict[str, Any], path: PathKey, scope: Scope) -> Predicate:
        field = self._parse(spec["field"], (*path, "field"))
        if not scope.inbound:
            self._check_canonical(scope, field.names, "" if field.from_root else scope.prefix, (*path, "field"))
        get = make_getter(field)
        read: RuleFn = (lambda r, ctx: get(ctx.root)) if field.from_root else (lambda r, ctx: get(r))
        op = next(k for k in spec if k != "field")
        return _predicate(op, spec[op], read, self._nullify(scope))

    def _nullify(self, scope: Scope) -> Callable[[Any], Any]:
        """Vendor "no value" markers apply to vendor records only; canonical `false` is a value."""
        return self.vendor_nullify if scope.inbound else self.canonical_nullify

    # --- checks --------------------------------------------------------------------------

    def _parse(self, text: str, path: PathKey) -> FieldPath:
        try:
            return parse_path(text)
        except RuleError as exc:
            self.fail(path, str(exc))
            return FieldPath(text, (text,))

    def _check_canonical(self, scope: Scope, names: str, prefix: str, path: PathKey, *, at_key: bool = False) -> None:
        entity = scope.entity
        full = _join(prefix, names)
        if not canonical.field_exists(entity, full):
            hint = did_you_mean(full, canonical.field_paths(entity))
            where = "inbound" if at_key else "outbound"
            self.fail(path, f"{where}: '{full}' is not a field of {entity}{hint}", at_key=at_key)


# --- building blocks (pure functions returning closures) -----------------------------------


def make_nullify(null_values: list[Any]) -> Callable[[Any], Any]:
    """A function mapping the vendor's "no value" markers to None and leaving others alone."""
    empty_text = any(v == "" and isinstance(v, str) for v in null_values)
    false = any(v is False for v in null_values)
    others = [v for v in null_values if v is not None and v is not False and v != ""]
    if others:
        def nullify_any(value: Any) -> Any:
            if value is None or (false and value is False) or (empty_text and value == ""):
                return None
            for other in others:
                if type(value) is type(other) and value == other:
                    return None
            return value

        return nullify_any
    if false and empty_text:
        return lambda v: None if v is None or v is False or v == "" else v
    if empty_text:
        return lambda v: None if v == "" else v
    if false:
        return lambda v: None if v is False else v
    return lambda v: v


def _const(value: Any) -> RuleFn:
    if isinstance(value, (dict, list)):
        return lambda record, ctx: copy.deepcopy(value)
    return lambda record, ctx: value


def _read_list(readers: list[RuleFn]) -> RuleFn:
    return lambda record, ctx: [read(record, ctx) for read in readers]


def _render(pieces: list[str | RuleFn]) -> RuleFn:
    def render(record: Any, ctx: Context) -> str | None:
        out: list[str] = []
        filled = False
        for piece in pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = piece(record, ctx)
            if value is not None:
                filled = True
                out.append(_text(value))
        text = " ".join("".join(out).split()) if filled else ""
        return text or None  # placeholders holding only spaces are as empty as missing ones

    return render


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _each_items(read: RuleFn, inner: CompiledRules, where: Predicate | None, target: str, source: str) -> RuleFn:
    def each(record: Any, ctx: Context) -> list[dict[str, Any]] | None:
        items = read(record, ctx)
        if items is None:
            return None
        if not isinstance(items, list):
            raise TransformError(f"expected a list, got {show(items)}")
        out: list[dict[str, Any]] = []
        errors: list[FieldError] = []
        for i, item in enumerate(items):
            if where is not None and not where(item, ctx):
                continue
            value, problems = inner.apply(item, ctx)
            for p in problems:
                errors.append(FieldError(f"{target}[{len(out)}].{p.field}", p.reason, f"{source}[{i}].{p.source}", p.code))
            out.append(value)
        if errors:
            raise _Failed(errors)
        return out or None  # no items (or none kept by `where`) writes nothing, like any empty value

    return each


def _build_transform(item: Any) -> Callable[[Any], Any]:
    if isinstance(item, str):
        return transforms.build(item)
    if isinstance(item, dict) and len(item) == 1:
        name, args = next(iter(item.items()))
        return transforms.build(str(name), args)
    raise RuleError("a transform is a name, or a one-key mapping of a name to its arguments")


def _value_table(table: dict[Any, Any], default: Any) -> Callable[[Any], Any]:
    # Booleans match only through their text, so that `true:` never catches the number 1.
    exact = {k: v for k, v in table.items() if not isinstance(k, bool)}
    by_text = {_text(k): v for k, v in table.items()}
    known = ", ".join(_text(k) for k in table)

    def lookup(value: Any) -> Any:
        if not isinstance(value, bool):
            try:
                return exact[value]
            except (KeyError, TypeError):
                pass
        text = _text(value)
        if text in by_text:
            return by_text[text]
        if default is not _NO_DEFAULT:
            return default
        raise TransformError(f"{show(value)} is not in the value table (known: {known})")

    return lookup


def _predicate(op: str, expected: Any, read: RuleFn, nullify: Callable[[Any], Any]) -> Predicate:
    if op == "equals":
        return lambda r, ctx: _same(read(r, ctx), expected)
    if op == "not_equals":
        return lambda r, ctx: not _same(read(r, ctx), expected)
    if op in ("in", "not_in"):
        member = _member(tuple(expected))
        if op == "in":
            return lambda r, ctx: member(read(r, ctx))
        return lambda r, ctx: not member(read(r, ctx))
    wanted = bool(expected)
    return lambda r, ctx: (nullify(read(r, ctx)) is not None) == wanted


def _member(options: tuple[Any, ...]) -> Callable[[Any], bool]:
    """Membership with `_same`'s equality, reading the value once; plain `in` when no option is a bool."""
    if any(isinstance(o, bool) for o in options):
        return lambda value: any(_same(value, o) for o in options)

    def member(value: Any) -> bool:
        if value.__class__ is bool:
            return False
        try:
            return value in options
        except TypeError:
            return False

    return member


def _same(value: Any, expected: Any) -> bool:
    """Equality that keeps booleans apart from 0 and 1, as an admin would expect."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected)


def _assemble(read: RuleFn, stages: list[Callable[[Any], Any]], when: Predicate | None, ref_entity: str | None,
              default: Any, required: bool, target: str, source: str) -> RuleFn:
    """Glue a rule's pieces in the documented order into one closure, skipping absent ones.

    The two shortcuts (a bare path; a path with one transform) cover most rules of real
    mappings and save a few calls per field, which is what keeps compiled mappings close to
    hand-written code.
    """
    has_default = default is not _NO_DEFAULT
    simple = when is None and ref_entity is None and not has_default and not required
    if simple and not stages:
        return read
    if simple and len(stages) == 1:
        only = stages[0]

        def single(record: Any, ctx: Context) -> Any:
            value = read(record, ctx)
            if value is None:
                return None
            value = only(value)
            return None if value == "" or value == [] else value

        return single
    if when is None and ref_entity is None and len(stages) <= 1:
        return _compact(read, stages[0] if stages else None, default, has_default, required, target, source)

    def rule(record: Any, ctx: Context) -> Any:
        if when is not None and not when(record, ctx):
            return None
        value = _run(stages, read(record, ctx))
        if value is not None and ref_entity is not None:
            resolved = ctx.resolver.resolve(ref_entity, value)
            if resolved is None:
                reason = f"{ref_entity} {show(value)} has no id on this side yet"
                raise _Failed([FieldError(target, reason, source, "unresolved_ref")])
            value = resolved
        if value is None and has_default:
            value = copy.deepcopy(default) if isinstance(default, (dict, list)) else default
        if value is None and required:
            raise _Failed([FieldError(target, "is required but empty", source, "required")])
        return value

    return rule


def _compact(read: RuleFn, only: Callable[[Any], Any] | None, default: Any, has_default: bool, required: bool,
             target: str, source: str) -> RuleFn:
    """At most one transform plus `default` / `required`: the next most common rule shape."""
    container = isinstance(default, (dict, list))

    def compact(record: Any, ctx: Context) -> Any:
        value = read(record, ctx)
        if value is not None and only is not None:
            value = only(value)
            if value == "" or value == []:
                value = None
        if value is None:
            if has_default:
                value = copy.deepcopy(default) if container else default
            if value is None and required:
                raise _Failed([FieldError(target, "is required but empty", source, "required")])
        return value

    return compact


def _key_reader(key: str, nulls: list[Any]) -> RuleFn | None:
    """A reader of one top-level key with the null check inlined, for the usual null sets."""
    plain = [v for v in nulls if v is not None]
    if plain == [""]:
        def read_text(record: Any, ctx: Context) -> Any:
            try:
                value = record[key]
            except (KeyError, TypeError, IndexError):
                return None
            return None if value == "" else value

        return read_text
    if len(plain) == 2 and "" in plain and any(v is False for v in plain):
        def read_odoo(record: Any, ctx: Context) -> Any:
            try:
                value = record[key]
            except (KeyError, TypeError, IndexError):
                return None
            return None if value is False or value == "" else value

        return read_odoo
    return None


def _run(stages: list[Callable[[Any], Any]], value: Any) -> Any:
    for stage in stages:
        if value is None:
            return None
        value = stage(value)
        if value == "" or value == []:
            return None
    return value


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


__all__ = ["CompiledRules", "Context", "PassThrough", "Resolver", "RuleCompiler", "Scope"]
