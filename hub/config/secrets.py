"""`${ENV}` and `${file:/path}` references in config values, resolved into `Secret`s.

A value that went through substitution is wrapped in `Secret`, whose repr and str show the
reference (`${SF_CLIENT_SECRET}`), never the value: a config object can be logged, printed
or put in an error message without leaking. Code that needs the value calls `reveal()`,
which makes every use of a secret easy to find.

Syntax: `${NAME}`, `${NAME:-fallback}` (when NAME is unset or empty), `${file:/run/secrets/x}`
(the file's text, trailing newline removed; relative paths are relative to the config file),
and `$${` for a literal `${`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hub.errors import SecretError
from hub.logging import protect

_REFERENCE = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Secret:
    """A config value that came from the environment or a file; never shows its value."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self.reference = reference
        if not _plain_url(value):  # a URL picked by environment is an address, not a secret
            protect(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))


_PLAIN_URL = re.compile(r"https?://[^@\s/?#]+(/[^@\s?#]*)?")


def _plain_url(value: str) -> bool:
    """An http(s) URL with no user info, query or fragment: nothing in it can be a credential."""
    return bool(_PLAIN_URL.fullmatch(value))


def reveal(value: Any) -> Any:
    """The real value of a config value, whether or not it was a secret."""
    return value.reveal() if isinstance(value, Secret) else value


def has_reference(text: str) -> bool:
    return "${" in text


def interpolate(text: str, env: Mapping[str, str], base_dir: Path) -> str | Secret:
    """Resolve every reference in `text`; raise SecretError naming the first bad one."""
    if not has_reference(text):
        return text
    substituted = False

    def replace(match: re.Match[str]) -> str:
        nonlocal substituted
        if match.group(0) == "$${":
            return "${"
        substituted = True
        return _resolve(match.group(1).strip(), env, base_dir)

    value = _REFERENCE.sub(replace, text)
    return Secret(value, text) if substituted else value


def _resolve(reference: str, env: Mapping[str, str], base_dir: Path) -> str:
    if reference.startswith("file:"):
        return _read_file(reference[len("file:") :].strip(), base_dir)
    name, has_fallback, fallback = reference.partition(":-")
    if not _ENV_NAME.fullmatch(name):
        raise SecretError(f"'${{{reference}}}' is not a reference: use ${{NAME}}, ${{NAME:-fallback}} or ${{file:/path}}")
    value = env.get(name, "")
    if value:
        return value
    if has_fallback:
        return fallback
    raise SecretError(f"environment variable {name} is not set")


def _read_file(raw_path: str, base_dir: Path) -> str:
    path = Path(raw_path)
    if not path.is_absolute():
        path = base_dir / path
    try:
        return path.read_text("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SecretError(f"cannot read secret file {raw_path}: {reason}") from None


def resolve_tree(data: Any, on_error: Callable[[tuple[Any, ...], SecretError], None],
                 env: Mapping[str, str], base_dir: Path, path: tuple[Any, ...] = ()) -> Any:
    """A copy of `data` with every string interpolated; errors go to `on_error` with their path."""
    if isinstance(data, dict):
        return {k: resolve_tree(v, on_error, env, base_dir, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_tree(v, on_error, env, base_dir, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str):
        try:
            return interpolate(data, env, base_dir)
        except SecretError as exc:
            on_error(path, exc)
            return None
    return data


def environ() -> Mapping[str, str]:
    return os.environ
