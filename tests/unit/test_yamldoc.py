"""Safe, located YAML: what is refused and where each value is found."""

from __future__ import annotations

import pytest

from hub.errors import InvalidInput
from hub.yamldoc import MAX_DEPTH, dotted, load_yaml, parse_yaml


def problem(raw: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_yaml(raw, "f.yaml")
    assert len(caught.value.problems) == 1
    return str(caught.value.problems[0])


def test_values_keep_their_locations() -> None:
    doc = parse_yaml(b"a: 1\nb:\n  c: [x, y]\n", "f.yaml")
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert str(doc.location(("b", "c", 1))) == "f.yaml:3:10"
    assert str(doc.location(("b", "c"), at_key=True)) == "f.yaml:3:3"
    assert str(doc.location(("b", "missing"))) == "f.yaml:3:3"  # nearest existing ancestor


def test_dates_stay_text_and_merge_keys_work() -> None:
    doc = parse_yaml(b"base: &b {x: 1, y: 2}\nday: 2024-05-01\nother:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert doc.data["day"] == "2024-05-01"
    assert doc.data["other"] == {"x": 1, "y": 3}


def test_duplicate_keys_are_refused() -> None:
    assert problem(b"a: 1\nb: 2\na: 3\n") == "f.yaml:3:1: duplicate key 'a' (at a)"


def test_syntax_errors_are_located() -> None:
    assert problem(b"a: [1, 2\nb: 3\n").startswith("f.yaml:2:2: invalid YAML: ")


def test_non_utf8_is_located() -> None:
    assert problem(b"name: ok\ncity: Shangh\xe4i\n") == (
        "f.yaml:2:13: file is not UTF-8: byte 0xe4 cannot be decoded (save the file as UTF-8)"
    )


def test_utf8_bom_is_accepted() -> None:
    assert parse_yaml("\ufeffname: 上海".encode(), "f.yaml").data == {"name": "上海"}


def test_control_characters_are_located() -> None:
    assert problem(b"a: 1\nb: x\x00y\n") == "f.yaml:2:5: invalid YAML: character #x0000 is not allowed in YAML text"


def test_deep_nesting_is_refused_before_composing() -> None:
    depth = MAX_DEPTH + 1
    message = problem(b"[" * depth * 20 + b"]" * depth * 20)
    assert message == f"f.yaml:1:{MAX_DEPTH + 1}: document is nested more than {MAX_DEPTH} levels deep"


def test_alias_bomb_is_refused() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    assert "an alias bomb?" in problem("\n".join(lines).encode())


@pytest.mark.parametrize("text", [
    b"x: !!python/object/apply:os.system ['true']\n",
    b"x: !!python/name:os.system\n",
    b"x: !!python/object:collections.OrderedDict {}\n",
    b"x: !custom value\n",
])
def test_no_tag_can_build_python_objects(text: bytes) -> None:
    assert problem(text).startswith("f.yaml:1:4: ")


def test_only_one_document() -> None:
    assert "expected a single document" in problem(b"a: 1\n---\nb: 2\n")


def test_keys_must_be_scalars() -> None:
    assert problem(b"? [a, b]\n: 1\n") == "f.yaml:1:3: a key must be a plain value, not a list or mapping"


def test_unreadable_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as caught:
        load_yaml(tmp_path / "absent.yaml")
    assert "cannot read file" in str(caught.value)


def test_dotted_paths() -> None:
    data = {"flows": {"f": {"targets": [{"system": "x"}]}}, "map": {1: "a"}}
    assert dotted(("flows", "f", "targets", 0, "system"), data) == "flows.f.targets[0].system"
    assert dotted(("map", 1), data) == "map.1"
