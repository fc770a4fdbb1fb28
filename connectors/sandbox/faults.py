"""Seeded fault injection for sandboxes: the bad days of a vendor, made repeatable.

A `FaultSpec` is read from `--faults "rate_limit=0.05,error=0.03,slow=0.02,drop=0.01,seed=7"`
or from `PUT /_sandbox/faults`. Each API call rolls once, from one `random.Random(seed)`,
so a run with the same seed and the same calls meets the same faults. Forced faults
(`"next": ["rate_limit", "error"]`) are served first, one per call, so that a test can
say "the next call is rate limited" without playing with probabilities.

The kinds are the vendor-neutral ones the issue names; each sandbox says what its vendor
answers for `rate_limit` and `error` (a 429 with Retry-After, a Salesforce 403
REQUEST_LIMIT_EXCEEDED, a DingTalk errcode in a 200...). `slow` waits `slow_seconds`
before answering; `drop` cuts the answer short and closes the connection.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = ("rate_limit", "error", "slow", "drop")


class FaultSpecError(ValueError):
    """A fault spec that cannot be read; the message names the bad part."""


@dataclass(frozen=True)
class FaultSpec:
    """Rates in [0, 1] of each fault kind, their parameters and the random seed."""

    rate_limit: float = 0.0
    error: float = 0.0
    slow: float = 0.0
    drop: float = 0.0
    retry_after: float = 1.0
    slow_seconds: float = 0.5
    seed: int = 0

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """`name=value` pairs separated by commas; an empty text means no faults."""
        values: dict[str, Any] = {}
        for part in (text or "").split(","):
            if not part.strip():
                continue
            name, sep, raw = part.partition("=")
            values[name.strip()] = raw.strip() if sep else None
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FaultSpec:
        known = {f.name: f.type for f in fields(cls)}
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise FaultSpecError(f"unknown fault setting '{name}' (known: {', '.join(known)})")
            try:
                parsed[name] = int(raw) if name == "seed" else float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise FaultSpecError(f"fault setting '{name}' needs a number, not {raw!r}") from None
            if name in KINDS and not 0.0 <= parsed[name] <= 1.0:
                raise FaultSpecError(f"fault rate '{name}' must be between 0 and 1, not {raw}")
            if name in ("retry_after", "slow_seconds") and parsed[name] < 0:
                raise FaultSpecError(f"fault setting '{name}' must not be negative")
        if sum(parsed.get(kind, 0.0) for kind in KINDS) > 1.0:
            raise FaultSpecError("fault rates add up to more than 1")
        return cls(**parsed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The faults of one running sandbox: the spec, its random stream and forced faults."""

    def __init__(self, spec: FaultSpec | None = None) -> None:
        self._lock = threading.Lock()
        self._forced: deque[str] = deque()
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.configure(spec or FaultSpec())

    def configure(self, spec: FaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._random = random.Random(spec.seed)

    def force(self, kinds: list[str]) -> None:
        """Serve these faults to the next calls, one each, before any random roll."""
        for kind in kinds:
            if kind not in KINDS:
                raise FaultSpecError(f"unknown fault '{kind}' (known: {', '.join(KINDS)})")
        with self._lock:
            self._forced.extend(kinds)

    def roll(self) -> str | None:
        """The fault this call meets, if any."""
        with self._lock:
            if self._forced:
                kind: str | None = self._forced.popleft()
            else:
                kind = self._roll_random()
            if kind is not None:
                self.injected[kind] += 1
            return kind

    def _roll_random(self) -> str | None:
        spec = self.spec
        if not (spec.rate_limit or spec.error or spec.slow or spec.drop):
            return None
        draw = self._random.random()
        for kind in KINDS:
            rate = float(getattr(spec, kind))
            if draw < rate:
                return kind
            draw -= rate
        return None
