"""In-call retries of vendor calls (DESIGN.md, "Errors are typed").

Short waits happen here, inside the call, with exponential backoff and jitter, never shorter
than the vendor's Retry-After. When a vendor stays down longer than `RetryPolicy.max_wait`,
the error escapes and the engine parks the record in the job queue with a later
next-attempt time instead of holding a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from connectors.base import AuthExpired, ConnectorError

T = TypeVar("T")
log = structlog.get_logger()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.2
    max_backoff: float = 5.0
    max_wait: float = 30.0  # total seconds spent retrying one call before giving up to the queue


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ConnectorError) and exc.retryable


def call(fn: Callable[[], T], policy: RetryPolicy, what: str, on_retry: Callable[[BaseException], None] | None = None) -> T:
    """Run `fn`, retrying rate limits, outages and (once) expired tokens."""
    backoff = wait_exponential_jitter(multiplier=policy.initial, max=policy.max_backoff)
    auth_retries = 0

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None) or 0.0
        return max(float(hint), backoff(state))

    def keep_going(exc: BaseException) -> bool:
        nonlocal auth_retries
        if isinstance(exc, AuthExpired):
            auth_retries += 1
            return auth_retries <= 1
        return _retryable(exc)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("retrying vendor call", call=what, attempt=state.attempt_number, error=type(exc).__name__,
                 reason=str(exc)[:200])
        if on_retry is not None and exc is not None:
            on_retry(exc)

    retrying = Retrying(
        retry=retry_if_exception(keep_going),
        wait=wait,
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_wait),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
