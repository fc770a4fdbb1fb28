"""Outbound webhooks of a sandbox: delivered from a thread, retried as the vendor retries.

A vendor's sandbox calls `send(build, accept)` when a record changes. `build(url)` makes
the request of one attempt (each attempt builds anew, so a timestamp or a signature is
fresh, as the vendor's would be); `accept(response)` says whether the hub answered what
the vendor requires (DingTalk wants an encrypted `success`, the others a 2xx). A refused
or failed attempt is tried again after the vendor's next delay, scaled by `retry_scale`
so that tests need not wait a vendor's minutes. Every delivery is kept for
`GET /_sandbox/webhooks`, so a test can see what was sent, how often, and how it ended.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog

log = structlog.get_logger()


@dataclass(frozen=True)
class OutboundCall:
    """One attempt's request, as the vendor would send it."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


Build = Callable[[str], OutboundCall]
Accept = Callable[[requests.Response], bool]


def accept_2xx(response: requests.Response) -> bool:
    return 200 <= response.status_code < 300


@dataclass
class Delivery:
    """One event's delivery: its attempts and how it ended."""

    id: int
    event: str
    attempts: int = 0
    status: str = "pending"  # pending / delivered / failed
    last_status: int | None = None
    last_error: str | None = None
    last_body: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class WebhookSender:
    """Delivers events to the configured URL from one background thread."""

    def __init__(self, url: str | None, delays: Sequence[float], retry_scale: float = 1.0,
                 timeout: float = 5.0) -> None:
        self.url = url
        self.delays = tuple(delays)  # seconds before the 2nd, 3rd... attempt
        self.retry_scale = retry_scale
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._due: list[tuple[float, int, Delivery, Build, Accept]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._session = requests.Session()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def send(self, event: str, build: Build, accept: Accept = accept_2xx) -> Delivery | None:
        """Queue one event; None when no URL is configured (the vendor has no subscriber)."""
        if not self.url:
            return None
        delivery = Delivery(next(self._ids), event)
        with self._lock:
            self.deliveries.append(delivery)
            heapq.heappush(self._due, (time.monotonic(), delivery.id, delivery, build, accept))
            self._start()
            self._lock.notify()
        return delivery

    def pending(self) -> int:
        with self._lock:
            return len(self._due)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued (for tests and the demo)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0 and all(d.status != "pending" for d in self.deliveries):
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify()
        self._session.close()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._stopped:
                    return
                _, _, delivery, build, accept = heapq.heappop(self._due)
            self._attempt(delivery, build, accept)

    def _attempt(self, delivery: Delivery, build: Build, accept: Accept) -> None:
        delivery.attempts += 1
        call = build(self.url or "")
        try:
            response = self._session.request(call.method, call.url, data=call.body, headers=call.headers,
                                             timeout=self.timeout)
            delivery.last_status, delivery.last_body = response.status_code, response.text[:500]
            delivery.last_error = None
            if accept(response):
                delivery.status = "delivered"
                return
        except requests.RequestException as exc:
            delivery.last_error = type(exc).__name__
        if delivery.attempts > len(self.delays):
            delivery.status = "failed"
            log.warning("sandbox webhook given up", webhook_event=delivery.event, attempts=delivery.attempts)
            return
        delay = self.delays[delivery.attempts - 1] * self.retry_scale
        with self._lock:
            heapq.heappush(self._due, (time.monotonic() + delay, delivery.id, delivery, build, accept))
            self._lock.notify()
