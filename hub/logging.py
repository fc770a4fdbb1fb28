"""structlog set-up: JSON lines for machines, readable colour on a terminal.

Library code only ever calls `structlog.get_logger()` and binds context; what the lines look
like is decided once, here, by the process entry point.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words; such secrets are weak anyway
_REDACTED = "***"


class _Redactor:
    """The values every log line must never show: config secrets and API tokens, as loaded.

    Code is written not to log secrets; this is the net under it. `Secret` registers each
    value it wraps, the API registers its tokens, and the processor below replaces any of
    them in every string value of a line (the rendered exception included) before output.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def protect(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            ordered = sorted(self._values, key=len, reverse=True)  # the longest first, for overlaps
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        pattern = self._pattern
        if pattern is None:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = pattern.sub(_REDACTED, value)
            elif not isinstance(value, (int, float, bool)) and value is not None:
                text = str(value)
                if pattern.search(text):
                    event[key] = pattern.sub(_REDACTED, text)
        return event


redact = _Redactor()


def protect(value: str) -> None:
    """Never show this value in a log line (see `_Redactor`)."""
    redact.protect(value)


def configure(level: str = "info", as_json: bool | None = None) -> None:
    """Configure structlog for this process; JSON when stderr is not a terminal."""
    use_json = not sys.stderr.isatty() if as_json is None else as_json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
