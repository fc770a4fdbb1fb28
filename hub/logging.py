"""structlog set-up: JSON lines for machines, readable colour on a terminal.

Library code only ever calls `structlog.get_logger()` and binds context; what the lines look
like is decided once, here, by the process entry point.
"""

from __future__ import annotations

import logging
import sys

import structlog


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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
