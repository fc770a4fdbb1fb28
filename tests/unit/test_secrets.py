"""${ENV} and ${file:} references: resolved when asked, never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config.secrets import Secret, interpolate, reveal
from hub.errors import SecretError

ENV = {"SF_SECRET": "s3cr3t-value", "EMPTY": ""}


def test_plain_text_stays_plain() -> None:
    assert interpolate("https://example.com", ENV, Path(".")) == "https://example.com"


def test_reference_becomes_a_secret_that_never_shows() -> None:
    value = interpolate("${SF_SECRET}", ENV, Path("."))
    assert isinstance(value, Secret)
    assert value.reveal() == "s3cr3t-value"
    for shown in (repr(value), str(value), f"{value}", "%s" % value, str([value]), str({"k": value})):  # noqa: UP031 - %-format is one way to show it
        assert "s3cr3t" not in shown
        assert "${SF_SECRET}" in shown


def test_partial_substitution_is_still_secret() -> None:
    value = interpolate("postgresql+psycopg://u:${SF_SECRET}@db/x", ENV, Path("."))
    assert reveal(value) == "postgresql+psycopg://u:s3cr3t-value@db/x"
    assert "s3cr3t" not in repr(value)


def test_fallbacks_and_escapes() -> None:
    assert reveal(interpolate("${MISSING:-demo}", ENV, Path("."))) == "demo"
    assert reveal(interpolate("${EMPTY:-demo}", ENV, Path("."))) == "demo"
    assert interpolate("price: $${AMOUNT}", ENV, Path(".")) == "price: ${AMOUNT}"


def test_missing_variable_names_it_without_any_value() -> None:
    with pytest.raises(SecretError, match="^environment variable NOPE is not set$"):
        interpolate("${NOPE}", ENV, Path("."))


def test_bad_reference_syntax() -> None:
    with pytest.raises(SecretError, match="is not a reference"):
        interpolate("${not a name}", ENV, Path("."))


def test_file_reference_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n", "utf-8")
    assert reveal(interpolate("${file:key}", ENV, tmp_path)) == "from-file"
    with pytest.raises(SecretError, match="cannot read secret file .*absent"):
        interpolate("${file:absent}", ENV, tmp_path)
