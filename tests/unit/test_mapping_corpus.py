"""Broken mapping files get exactly the located messages recorded beside them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.errors import MappingError
from hub.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(p.with_suffix(".yaml") for p in (ROOT / "tests/data/mappings").glob("*.expected"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_mapping_gets_exactly_the_expected_messages(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    relative = str(case.relative_to(ROOT))
    with pytest.raises(MappingError) as caught:
        load_mapping(relative)
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()
    assert [str(p) for p in caught.value.problems] == expected


def test_the_corpus_covers_the_kinds_of_mistake() -> None:
    assert {c.stem for c in CASES} >= {"bad_shapes", "broken", "not_utf8", "outbound_unknown_fields",
                                        "transform_arguments"}
