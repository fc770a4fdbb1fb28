"""The hub's error hierarchy.

Errors are typed so that callers decide by class, never by parsing a message: the CLI turns
an `InvalidInput` into located lines and exit code 2, the engine dead-letters a record whose
mapping produced `FieldError`s, and a transform signals bad data with `TransformError`.
Messages never carry a secret: config problems are reported before `${...}` is resolved.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 4
_REPR.maxlevel = 2
SHOW_LIMIT = 60


def show(value: Any) -> str:
    """A bounded repr for messages: a 10 MB string or a 5,000-digit int must not flood a log."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ or an int too long to print must not hide the error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOW_LIMIT else text[: SHOW_LIMIT - 3] + "..."


class SynchubError(Exception):
    """Root of every error the hub raises on purpose."""


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source file, 1-based, as editors count."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.col <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One located complaint about a config or mapping file.

    `path` is the dotted path of the offending node inside the document (for example
    `systems.crm.auth.client_id`) so that a message stays useful even without the file.
    """

    location: Location
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f" (at {self.path})" if self.path else ""
        return f"{self.location}: {self.message}{where}"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.location.file, self.location.line, self.location.col, self.message)


class InvalidInput(SynchubError):
    """A file the admin wrote is wrong; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(InvalidInput):
    """The hub config (systems, flows, store) is invalid."""


class MappingError(InvalidInput):
    """A mapping file is invalid: bad YAML, unknown keys, unknown transforms or fields."""


class TransformError(SynchubError):
    """A transform cannot turn this value into what it promises; the reason is for humans."""


class RuleError(SynchubError):
    """A rule inside a mapping is wrong (unknown transform, bad argument, bad path).

    Raised while compiling; the mapping loader catches it and attaches the file location.
    """


class SecretError(SynchubError):
    """A `${...}` reference cannot be resolved. The message names the reference, never a value."""


@dataclass(frozen=True)
class FieldError:
    """Why one field of one record could not be mapped: data, not an exception.

    `code` lets the engine treat kinds differently (`unresolved_ref` waits for the referenced
    record; everything else dead-letters the record).
    """

    field: str
    reason: str
    source: str = ""
    code: str = "invalid"

    def __str__(self) -> str:
        origin = f" (from {self.source})" if self.source else ""
        named = f"{self.field}: " if self.field else ""
        return f"{named}{self.reason}{origin}"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "source": self.source, "code": self.code}


@dataclass
class RecordRejected(SynchubError):
    """A record failed mapping or validation; holds every field error at once."""

    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)
