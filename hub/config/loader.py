"""Loading the hub config: shape, names, mappings and secrets, every problem reported at once.

The order matters for what admins see. The JSON Schema check runs on the raw text, before
any `${...}` is resolved, so no message can contain a secret. Then names are checked against
what exists (connectors installed, systems declared, entities, canonical fields) with a
"did you mean", every mapping a flow uses is compiled, and only a config with no problem at
all gets its secrets resolved. Since the shape check saw only the `${...}` text, a value that
resolves to nothing (`${NAME:-}`, an empty secret file) is caught after resolution, located
like any other problem: an empty webhook secret would otherwise verify signatures made
with the empty key, which anyone can make.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping as MappingType
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from connectors import registry
from hub import canonical
from hub.config.model import ConflictPolicy, Endpoint, Flow, HubConfig, Schedule, System
from hub.config.secrets import Secret, resolve_tree
from hub.errors import ConfigError, MappingError, Problem, SecretError
from hub.mapping import Mapping, load_mapping
from hub.schemacheck import is_clean, schema_problems
from hub.suggest import did_you_mean
from hub.yamldoc import Document, PathKey, dotted, load_yaml

DEFAULT_STORE_URL = "sqlite:///var/synchub.db"
DEFAULT_MAPPINGS_DIR = "../mappings"
STORE_URL_ENV = "SYNCHUB_STORE_URL"
_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@cache
def config_schema() -> dict[str, Any]:
    text = resources.files("hub.config").joinpath("config.schema.json").read_text("utf-8")
    return json.loads(text)


def load_config(path: str | Path, env: MappingType[str, str] | None = None) -> HubConfig:
    """Load, check and resolve a hub config, or raise ConfigError with every problem in it."""
    file = Path(path)
    doc = load_yaml(file, ConfigError)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "a hub config must be a YAML mapping with version, systems and flows")])
    problems = schema_problems(doc, config_schema())
    if not is_clean(problems, "systems") and not isinstance(doc.data.get("systems"), dict) or not isinstance(
            doc.data.get("flows", {}), dict):
        raise ConfigError(problems)
    return _Loader(doc, file, os.environ if env is None else env, problems).load()


class _Loader:
    """One pass over a schema-valid config document, collecting problems as it builds."""

    def __init__(self, doc: Document, file: Path, env: MappingType[str, str], problems: list[Problem]) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.base = file.resolve().parent
        self.file = file
        self.env = env
        self.problems: list[Problem] = list(problems)
        self.shape_problems = problems
        self.mapping_cache: dict[Path, Mapping | None] = {}

    def clean(self, *path: str) -> bool:
        """Whether a part passed the shape check, so that its names can be checked too."""
        return is_clean(self.shape_problems, dotted(path, self.data))

    def load(self) -> HubConfig:
        mappings_dir = (self.base / str(self.data.get("mappings_dir", DEFAULT_MAPPINGS_DIR))).resolve()
        for name, system in self.data["systems"].items():
            if self.clean("systems", name, "connector") and isinstance(system, dict) and "connector" in system:
                self._check_system(name, system)
        flows = {
            name: self._flow(name, spec, mappings_dir)
            for name, spec in self.data.get("flows", {}).items()
            if self.clean("flows", name)
        }
        if self.problems:
            raise ConfigError(self.problems)
        resolved = resolve_tree(self.data, self._secret_problem, self.env, self.base)
        for path, secret in _empty_secrets(resolved):
            self.fail(path, f"{secret.reference} resolves to an empty value")
        if self.problems:
            raise ConfigError(self.problems)
        systems = {name: _system(name, spec) for name, spec in resolved["systems"].items()}
        store_url = self.env.get(STORE_URL_ENV) or resolved.get("store", {}).get("url", DEFAULT_STORE_URL)
        return HubConfig(self.file, store_url, mappings_dir, systems, flows)  # type: ignore[arg-type]

    def fail(self, path: PathKey, message: str, *, at_key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, at_key=at_key))

    def _secret_problem(self, path: tuple[Any, ...], exc: SecretError) -> None:
        self.fail(path, str(exc))

    # --- systems ---------------------------------------------------------------------------

    def _check_system(self, name: str, spec: dict[str, Any]) -> None:
        connector = spec["connector"]
        known = registry.names()
        if connector not in known:
            hint = did_you_mean(connector, known) or f" (installed: {', '.join(known) or 'none'})"
            self.fail(("systems", name, "connector"), f"unknown connector '{connector}'{hint}")
            return
        for block in registry.SETTING_BLOCKS:
            schema = registry.settings_schema(connector, block)
            if block in spec and self.clean("systems", name, block):
                self.problems.extend(schema_problems(self.doc, schema, spec[block], ("systems", name, block)))
            elif block not in spec and schema.get("required"):
                needed = ", ".join(schema["required"])
                self.fail(("systems", name, block), f"missing required key '{block}' ({connector} needs {needed})")

    # --- flows -----------------------------------------------------------------------------

    def _flow(self, name: str, spec: dict[str, Any], mappings_dir: Path) -> Flow:
        here: PathKey = ("flows", name)
        entity = spec["entity"]
        if entity not in canonical.ENTITIES:
            self.fail((*here, "entity"), f"unknown entity '{entity}'{did_you_mean(entity, canonical.ENTITIES)}")
            entity = None
        source = self._endpoint(spec["source"], (*here, "source"), entity, mappings_dir, "inbound")
        targets = tuple(
            self._endpoint(t, (*here, "targets", i), entity, mappings_dir, "outbound")
            for i, t in enumerate(spec["targets"])
        )
        members = [spec["source"]["system"], *(t["system"] for t in spec["targets"])]
        self._check_members(members, here)
        if entity is not None:
            for i, key in enumerate(spec.get("match", [])):
                self._check_field(entity, key, (*here, "match", i))
        conflict = self._conflict(spec.get("conflict", {}), (*here, "conflict"), entity, members)
        schedule = self._schedule(spec.get("schedule"), (*here, "schedule"))
        return Flow(name, entity or "", source, targets, schedule, bool(spec.get("webhook", False)),  # type: ignore[arg-type]
                    tuple(spec.get("match", [])), conflict, int(spec.get("attempts", 8)), bool(spec.get("enabled", True)))

    def _endpoint(self, spec: dict[str, Any], here: PathKey, entity: str | None, mappings_dir: Path,
                  direction: str) -> Endpoint | None:
        system_name = spec["system"]
        systems = self.data["systems"]
        if system_name not in systems:
            self.fail((*here, "system"), f"unknown system '{system_name}'{did_you_mean(system_name, systems)}")
            return None
        if not self.clean("systems", system_name):
            return None
        connector = systems[system_name]["connector"]
        if entity is None or connector not in registry.names():
            return None
        relative = spec.get("mapping") or f"{connector}/{spec['object']}.{entity}.yaml"
        where = (*here, "mapping" if "mapping" in spec else "object")
        if not (mappings_dir / relative).is_file() and "mapping" not in spec:
            objects = [p.name[: -len(f".{entity}.yaml")] for p in (mappings_dir / connector).glob(f"*.{entity}.yaml")]
            hint = did_you_mean(spec["object"], objects)
            self.fail(where, f"no mapping for {connector} {spec['object']} to {entity}: expected "
                             f"{_shown(mappings_dir / relative)}{hint}")
            return None
        mapping = self._mapping(mappings_dir / relative, where)
        if mapping is None:
            return None
        self._check_mapping_matches(mapping, connector, spec["object"], entity, direction, here)
        return Endpoint(system_name, spec["object"], mapping, bool(spec.get("create", True)))

    def _mapping(self, file: Path, here: PathKey) -> Mapping | None:
        file = file.resolve()
        if file not in self.mapping_cache:
            self.mapping_cache[file] = self._compile(file, here)
        return self.mapping_cache[file]

    def _compile(self, file: Path, here: PathKey) -> Mapping | None:
        if not file.is_file():
            self.fail(here, f"no mapping file {_shown(file)}: write one (see docs/mappings.md) or name it with 'mapping:'")
            return None
        try:
            return load_mapping(file, _shown(file))
        except MappingError as exc:
            self.problems.extend(exc.problems)
            return None

    def _check_mapping_matches(self, mapping: Mapping, connector: str, obj: str, entity: str, direction: str,
                               here: PathKey) -> None:
        declared = (mapping.connector, mapping.object, mapping.entity)
        if declared != (connector, obj, entity):
            self.fail(here, f"mapping {mapping.file} maps {declared[0]} {declared[1]} to {declared[2]}, "
                            f"but this flow needs {connector} {obj} to {entity}")
        if getattr(mapping, direction) is None:
            self.fail(here, f"mapping {mapping.file} has no {direction} rules, which this side of the flow needs")

    def _check_members(self, members: list[str], here: PathKey) -> None:
        if members[0] in members[1:]:
            self.fail((*here, "targets"), f"system '{members[0]}' is both the source and a target")
        for i, target in enumerate(members[1:]):
            if target in members[1 : i + 1]:
                self.fail((*here, "targets", i), f"system '{target}' is a target twice")

    def _check_field(self, entity: str, field: str, here: PathKey) -> bool:
        if canonical.field_exists(entity, field):
            return True
        self.fail(here, f"'{field}' is not a field of {entity}{did_you_mean(field, canonical.field_paths(entity))}")
        return False

    def _conflict(self, spec: dict[str, Any], here: PathKey, entity: str | None, members: list[str]) -> ConflictPolicy:
        owners = spec.get("owners", {})
        for field, owner in owners.items():
            if entity is not None:
                self._check_field(entity, field, (*here, "owners", field))
            if owner not in members:
                self.fail((*here, "owners", field), f"owner '{owner}' is not a system of this flow{did_you_mean(owner, members)}")
        systems = self.data["systems"]
        by_rank = sorted(members, key=lambda m: -_priority(systems.get(m)))
        priority = spec.get("priority", by_rank)  # default: the systems' own priority, highest first
        for i, system in enumerate(priority):
            if system not in members:
                self.fail((*here, "priority", i), f"'{system}' is not a system of this flow{did_you_mean(system, members)}")
        prefer = tuple(spec.get("prefer", ConflictPolicy.prefer))
        return ConflictPolicy(dict(owners), prefer, tuple(priority))

    def _schedule(self, text: str | None, here: PathKey) -> Schedule | None:
        if text is None:
            return None
        match = _INTERVAL.match(text)
        if match:
            amount = int(match.group(1))
            if amount <= 0:
                self.fail(here, "an interval must be at least 1")
                return None
            return Schedule(interval=timedelta(**{_UNITS[match.group(2)]: amount}), text=text.strip())
        try:
            CronTrigger.from_crontab(text)
        except ValueError as exc:
            self.fail(here, f"'{text}' is neither an interval (30s, 5m, 1h, 1d) nor a cron expression: {exc}")
            return None
        return Schedule(cron=text, text=text)


def _empty_secrets(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Secret]]:
    """Where substitution left nothing but whitespace; the `Secret` shows only its reference."""
    if isinstance(data, dict):
        return [found for k, v in data.items() for found in _empty_secrets(v, (*path, k))]
    if isinstance(data, list):
        return [found for i, v in enumerate(data) for found in _empty_secrets(v, (*path, i))]
    if isinstance(data, Secret) and not data.reveal().strip():
        return [(path, data)]
    return []


def _priority(spec: Any) -> int:
    value = spec.get("priority", 0) if isinstance(spec, dict) else 0
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _system(name: str, spec: dict[str, Any]) -> System:
    return System(name, spec["connector"], spec.get("base_url"), spec.get("auth", {}), spec.get("webhook", {}),
                  spec.get("options", {}), int(spec.get("priority", 0)), float(spec.get("timeout", 30.0)))


def _shown(file: Path) -> str:
    """A path as messages show it: relative to the working directory when it is inside it."""
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return str(file)
