"""Bearer tokens for the admin API, with two scopes: `read` and `operator`.

Tokens come from the environment, never from the config file or the repository:
`SYNCHUB_API_READ_TOKENS` and `SYNCHUB_API_OPERATOR_TOKENS`, each a comma-separated list
(several tokens let one be rotated while the other still works). An operator token can do
everything a read token can. Tokens are compared through their SHA-256 digests with
`hmac.compare_digest`, so neither the comparison time nor a log line reveals them. With no
token configured at all the admin API answers 401 to everyone: it is never open by accident.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from hub.logging import protect

Scope = Literal["read", "operator"]
READ_ENV = "SYNCHUB_API_READ_TOKENS"
OPERATOR_ENV = "SYNCHUB_API_OPERATOR_TOKENS"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Tokens:
    """Digests of the accepted tokens, by scope."""

    read: tuple[bytes, ...] = ()
    operator: tuple[bytes, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tokens:
        env = os.environ if env is None else env
        return cls(_parse(env.get(READ_ENV, "")), _parse(env.get(OPERATOR_ENV, "")))

    @classmethod
    def of(cls, read: list[str] | None = None, operator: list[str] | None = None) -> Tokens:
        return cls(tuple(_digest(t) for t in read or []), tuple(_digest(t) for t in operator or []))

    def scope_of(self, token: str) -> Scope | None:
        """The widest scope this token has, or None. Every digest is compared, match or not."""
        digest = _digest(token)
        is_operator = _any_equal(digest, self.operator)
        is_reader = _any_equal(digest, self.read)
        return "operator" if is_operator else "read" if is_reader else None


def _parse(text: str) -> tuple[bytes, ...]:
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    for token in tokens:
        protect(token)
    return tuple(_digest(t) for t in tokens)


def _any_equal(digest: bytes, accepted: tuple[bytes, ...]) -> bool:
    found = False
    for candidate in accepted:
        found |= hmac.compare_digest(digest, candidate)
    return found


def allows(granted: Scope, needed: Scope) -> bool:
    return granted == "operator" or needed == "read"
