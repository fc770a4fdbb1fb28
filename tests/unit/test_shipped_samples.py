"""Every shipped vendor sample maps through its mapping as mappings/README.md promises: every
record maps cleanly and validates, except the last one, which is deliberately bad. A mapping
reads samples/<object>.<entity>.jsonl when it has its own, else samples/<object>.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import canonical
from hub.mapping import load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def sample_of(mapping: Path) -> Path:
    """samples/<object>.<entity>.jsonl when the mapping has its own, else samples/<object>.jsonl."""
    own = mapping.parent / "samples" / f"{mapping.name.rsplit('.', 1)[0]}.jsonl"
    return own if own.exists() else mapping.parent / "samples" / f"{mapping.name.rsplit('.', 2)[0]}.jsonl"


PAIRS = sorted((mapping, sample_of(mapping)) for mapping in MAPPINGS.glob("*/*.yaml"))
PAIRS = [(m, s) for m, s in PAIRS if s.exists()]


def test_every_vendor_folder_ships_samples() -> None:
    vendors = {p.parent.name for p in MAPPINGS.glob("*/*.yaml")}
    assert vendors == {m.parent.name for m, _ in PAIRS}


@pytest.mark.parametrize("mapping_file,sample", PAIRS, ids=[f"{m.parent.name}/{m.name}" for m, _ in PAIRS])
def test_samples_map_inbound_except_the_bad_last_record(mapping_file: Path, sample: Path) -> None:
    mapping = load_mapping(mapping_file)
    records = [json.loads(line) for line in sample.read_text("utf-8").splitlines() if line.strip()]
    assert len(records) >= 3, f"{sample} should hold several records and end with a bad one"
    results = [mapping.to_canonical(record) for record in records]
    failing = [i + 1 for i, result in enumerate(results) if result.errors]
    assert failing == [len(records)], f"{sample.name}: failing lines {failing}"
    for result in results[:-1]:
        assert canonical.validate(mapping.entity, result.value) == []
