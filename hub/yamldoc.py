"""Safe YAML loading that remembers where every value came from.

Config and mapping files are written by hand, so every complaint about them must point at a
line and column. PyYAML's safe composer gives us nodes with marks; we build plain Python
data from them ourselves (dicts, lists, scalars, nothing else) and keep a side table from
each value's path to its location. Building it ourselves also lets us refuse what a plain
`safe_load` would accept or choke on: duplicate keys, documents nested deep enough to
exhaust the stack, alias bombs that expand to millions of values, non-UTF-8 bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.errors import InvalidInput, Location, Problem

PathKey = tuple[str | int, ...]

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 200_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


@dataclass(frozen=True)
class Span:
    """Where one value sits: the key that names it (if any) and the value itself."""

    key: Location | None
    value: Location


@dataclass
class Document:
    """Plain data from a YAML file plus the location of every value in it."""

    file: str
    data: Any
    spans: dict[PathKey, Span] = field(default_factory=dict)
    digest: str = ""  # of the raw bytes: tells a changed file from an unchanged one

    def location(self, path: PathKey, *, at_key: bool = False) -> Location:
        """The location of `path`, or of its nearest ancestor that exists in the file."""
        found = self.existing(path)
        span = self.spans.get(found)
        if span is None:
            return Location(self.file)
        if at_key and found == tuple(path) and span.key is not None:
            return span.key
        return span.value

    def existing(self, path: PathKey) -> PathKey:
        """The longest prefix of `path` that is in the file."""
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.spans:
                return tuple(path[:end])
        return ()

    def problem(self, path: PathKey, message: str, *, at_key: bool = False) -> Problem:
        """A problem at `path`; a path missing from the file (a required key) is named in full."""
        label = path if at_key else self.existing(path) or path
        return Problem(self.location(path, at_key=at_key), message, dotted(label, self.data))


def dotted(path: PathKey, data: Any = None) -> str:
    """`('systems', 'crm', 'auth')` as `systems.crm.auth`; list indexes as `[0]`."""
    out = ""
    node = data
    for part in path:
        is_index = isinstance(part, int) and isinstance(node, list)
        out += f"[{part}]" if is_index else (f".{part}" if out else str(part))
        node = _child(node, part)
    return out


def _child(node: Any, part: str | int) -> Any:
    try:
        return node[part]
    except (KeyError, IndexError, TypeError):
        return None


def load_yaml(path: str | Path, error: type[InvalidInput] = InvalidInput, display: str | None = None) -> Document:
    """Read one YAML document safely, or raise `error` with every located problem found."""
    name = display or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise error([Problem(Location(name), f"cannot read file: {exc.strerror or exc}")]) from None
    return parse_yaml(raw, name, error)


def parse_yaml(raw: bytes, name: str, error: type[InvalidInput] = InvalidInput) -> Document:
    """Parse bytes already in memory; `name` is what messages call the file."""
    text = _decode(raw, name, error)
    try:
        _check_shape(text, name, error)
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            _check_size(root, name, error)
            builder = _Builder(name, loader)
            data = builder.build(root, ()) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise error([_yaml_problem(exc, name)]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"invalid YAML: character #x{exc.character:04x} is not allowed in YAML text"
        raise error([Problem(Location(name, line, col), message)]) from None
    except yaml.YAMLError as exc:
        raise error([Problem(Location(name), f"invalid YAML: {exc}")]) from None
    if builder.problems:
        raise error(builder.problems)
    return Document(name, data, builder.spans, hashlib.blake2b(raw, digest_size=8).hexdigest())


def _decode(raw: bytes, name: str, error: type[InvalidInput]) -> str:
    if len(raw) > MAX_BYTES:
        raise error([Problem(Location(name), f"file is larger than {MAX_BYTES // 1024 // 1024} MiB")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 1].hex()
        message = f"file is not UTF-8: byte 0x{bad} cannot be decoded (save the file as UTF-8)"
        raise error([Problem(Location(name, line, col), message)]) from None


def _check_shape(text: str, name: str, error: type[InvalidInput]) -> None:
    """Refuse documents nested too deep before composing them, since composing recurses."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                where = _mark(event.start_mark, name)
                raise error([Problem(where, f"document is nested more than {MAX_DEPTH} levels deep")])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_size(root: yaml.Node | None, name: str, error: type[InvalidInput]) -> None:
    """Refuse alias bombs before expanding them: sizes are counted once per distinct node."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        return total

    if root is not None and size(root) > MAX_VALUES:
        where = _mark(root.start_mark, name)
        raise error([Problem(where, f"document expands to more than {MAX_VALUES} values (an alias bomb?)")])


def _mark(mark: yaml.Mark | None, name: str) -> Location:
    if mark is None:
        return Location(name)
    return Location(name, mark.line + 1, mark.column + 1)


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    text = exc.problem or exc.context or "cannot parse"
    if exc.context and exc.problem:
        text = f"{exc.problem} ({exc.context})"
    return Problem(_mark(mark, name), f"invalid YAML: {text}")


class _Builder:
    """Turns composed nodes into plain data, recording spans (sizes were checked before)."""

    def __init__(self, name: str, loader: yaml.SafeLoader) -> None:
        self.name = name
        self.loader = loader
        self.spans: dict[PathKey, Span] = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: PathKey, key: Location | None = None) -> Any:
        self.spans[path] = Span(key, _mark(node.start_mark, self.name))
        if node.tag not in _PLAIN_TAGS and not isinstance(node, yaml.ScalarNode):
            where = _mark(node.start_mark, self.name)
            self.problems.append(Problem(where, f"unsupported YAML tag '{node.tag}'", dotted(path)))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        value = self.loader.construct_object(node)
        if isinstance(value, (dt.date, dt.datetime)):
            return node.value  # dates stay text: transforms parse them with the right zone
        if isinstance(value, bytes):
            return node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in self._pairs(node):
            key = self._key(key_node)
            if key is None:
                continue
            key_loc = _mark(key_node.start_mark, self.name)
            if key in out:
                self.problems.append(Problem(key_loc, f"duplicate key '{key}'", dotted((*path, key))))
            out[key] = self.build(value_node, (*path, key), key_loc)
        return out

    def _pairs(self, node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
        """Pairs of a mapping with YAML merge keys (`<<: *defaults`) spliced in first."""
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.extend(source.value)
                    else:
                        where = _mark(source.start_mark, self.name)
                        self.problems.append(Problem(where, "'<<' must merge a mapping"))
            else:
                own.append((key_node, value_node))
        seen = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        for key_node, value_node in merged:  # the first source to name a key wins
            if key_node.value not in seen:
                seen.add(key_node.value)
                yield key_node, value_node
        yield from own

    def _key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            where = _mark(node.start_mark, self.name)
            self.problems.append(Problem(where, "a key must be a plain value, not a list or mapping"))
            return None
        return self._scalar(node)
