"""`synchub check` and `synchub map`: the commands for the files an admin writes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from hub import canonical
from hub.cli.common import EXIT_PROBLEMS, EXIT_UNUSABLE, config_argument, default_config, main, print_problems
from hub.config import HubConfig, load_config
from hub.errors import FieldError, InvalidInput
from hub.mapping import Mapping, load_mapping


@main.command()
@config_argument
def check(config: str | None) -> None:
    """Validate a hub config and every mapping its flows use.

    CONFIG defaults to $SYNCHUB_CONFIG, else config/demo.yaml. Every problem is listed as
    file:line:col: message; the exit code is 1 if there is any.
    """
    path = config or default_config()
    try:
        hub = load_config(path)
    except InvalidInput as exc:
        print_problems(path, exc)
        sys.exit(EXIT_PROBLEMS)
    _print_summary(hub)


def _print_summary(hub: HubConfig) -> None:
    click.echo(f"{hub.file}: OK")
    click.echo(f"  systems:  {', '.join(f'{s.name} ({s.connector})' for s in hub.systems.values())}")
    for flow in hub.flows.values():
        targets = ", ".join(f"{t.system}/{t.object}" for t in flow.targets)
        when = f", {flow.schedule}" if flow.schedule else ""
        hook = ", webhook" if flow.webhook else ""
        click.echo(f"  flow {flow.name}: {flow.entity} {flow.source.system}/{flow.source.object} -> {targets}{when}{hook}")
    click.echo(f"  mappings: {len(hub.mappings())} compiled")


@main.command("map")
@click.argument("mapping")
@click.option("--direction", type=click.Choice(["inbound", "outbound"]), default="inbound", show_default=True,
              help="inbound: vendor records to canonical; outbound: canonical to vendor payloads.")
@click.option("--in", "input_file", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="JSON Lines to read (default: standard input).")
@click.option("--out", "output_file", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="Where to write mapped JSON Lines (default: standard output).")
def map_records(mapping: str, direction: str, input_file: str, output_file: str) -> None:
    """Run MAPPING over JSON Lines records.

    MAPPING is a mapping file. Records that fail go to standard error with every field
    error, as input:line: field: reason; the exit code is 1 if any record failed.
    """
    try:
        compiled = load_mapping(mapping)
    except InvalidInput as exc:
        print_problems(None, exc)
        sys.exit(EXIT_UNUSABLE)
    name = "<stdin>" if input_file == "-" else input_file
    try:
        source = _open_in(input_file)
    except OSError as exc:
        click.echo(f"{name}: cannot read: {exc.strerror}", err=True)
        sys.exit(EXIT_UNUSABLE)
    with source, click.open_file(output_file, "w", encoding="utf-8") as sink:
        failed, total = _map_stream(compiled, direction, source, sink, name)
    if failed:
        click.echo(f"{name}: {failed} of {total} records failed", err=True)
        sys.exit(EXIT_PROBLEMS)


def _open_in(path: str) -> IO[bytes]:
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return Path(path).open("rb")


def _map_stream(mapping: Mapping, direction: str, source: IO[bytes], sink: IO[str], name: str) -> tuple[int, int]:
    failed = total = 0
    for line_no, record, error in _records(source):
        total += 1
        errors = [FieldError("", error)] if error else _map_one(mapping, direction, record, sink)
        if errors:
            failed += 1
            _report(name, line_no, _record_id(mapping, direction, record), errors)
    return failed, total


def _map_one(mapping: Mapping, direction: str, record: Any, sink: IO[str]) -> list[FieldError]:
    if direction == "inbound":
        result = mapping.to_canonical(record)
    else:
        problems = canonical.validate(mapping.entity, record) if isinstance(record, dict) else []
        if problems:
            return problems
        result = mapping.to_vendor(record)
    if result.errors:
        return result.errors
    sink.write(json.dumps(result.value, ensure_ascii=False) + "\n")
    return []


def _records(source: IO[bytes]) -> Iterator[tuple[int, Any, str]]:
    """(line number, record, error) for each non-blank line; a line that is not JSON has an error."""
    for line_no, raw in enumerate(source, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield line_no, None, "line is not UTF-8"
            continue
        if not text.strip():
            continue
        try:
            yield line_no, json.loads(text), ""
        except json.JSONDecodeError as exc:
            yield line_no, None, f"not valid JSON: {exc.msg} at column {exc.colno}"


def _record_id(mapping: Mapping, direction: str, record: Any) -> Any:
    if not isinstance(record, dict):
        return None
    return mapping.external_id(record) if direction == "inbound" else record.get("id")


def _report(name: str, line_no: int, ident: Any, errors: list[FieldError]) -> None:
    label = f" record {ident}:" if ident is not None else ""
    for error in errors:
        click.echo(f"{name}:{line_no}:{label} {error}", err=True)

