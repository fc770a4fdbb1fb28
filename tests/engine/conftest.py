"""Fixtures of the engine tests live in harness.py, importable by its own name."""

from harness import hub  # noqa: F401  (the `hub` fixture)
