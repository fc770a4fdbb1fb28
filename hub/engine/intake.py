"""Webhook intake: vendor events stored and turned into record jobs before the vendor hears back.

The HTTP layer verifies a callback through its connector, then hands the events here
**before** it answers the vendor: once the intake says they are taken, the events are
durable and each new one has a job per flow it triggers, so an acknowledged event can no
longer be lost. A redelivered event (same system and vendor event id) is recognised by the
inbox's unique key and triggers nothing again, whether it was stored long ago or arrives
in the same batch as its first delivery.

Group commit. One transaction per callback costs more than everything else a callback
needs (BEGIN IMMEDIATE and COMMIT on SQLite, five round trips on PostgreSQL), and parallel
transactions only queue on SQLite's writer lock. So one `WebhookIntake` per process owns a
writer thread: callbacks queue up while the writer commits the previous batch, then all of
them go into the next transaction (inbox rows, stored already `done`, plus their jobs), and
each waiting request is answered only when that transaction committed. If it fails, every
callback of the batch fails (the vendors deliver again later) and nothing of it is stored.
The queue is bounded: when it is full a callback is refused at once (`IntakeBusy`, a 503
with Retry-After), rather than memory and latency growing without limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from connectors.base import WebhookEvent
from hub.config import HubConfig
from hub.config.model import Flow
from hub.engine.worker import record_job
from hub.store import Store
from hub.store.models import InboxEvent, NewJob
from hub.store.tx import Tx

log = structlog.get_logger()

TRIGGER = "webhook"

#: Events per transaction. A callback is never split, so a batch holds at least one whole
#: callback; past this many events the next callbacks wait for the next transaction.
MAX_BATCH_EVENTS = 500
#: Events waiting for the writer before callbacks are refused (503, Retry-After). At the
#: writer's pace (a batch of 500 events commits in a few tens of milliseconds) this is well
#: under a second of work; the bound is what keeps memory and latency bounded under overload.
MAX_QUEUED_EVENTS = 5_000
#: Seconds the writer thread waits for work before it ends and hands its connection back;
#: the next callback starts it again (so an app served without lifespan events leaks nothing).
IDLE_SECONDS = 10.0
#: What a refused callback's Retry-After says, in seconds.
RETRY_AFTER_SECONDS = 1
#: The writer's info line sums what it stored over this many seconds at most (`_Tally`).
LOG_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class Intake:
    """What became of one callback's events."""

    stored: int       # new events kept in the inbox
    duplicates: int   # events already received before (vendor redelivery)
    jobs: int         # record jobs queued for the new events


class IntakeBusy(Exception):
    """Too many events are waiting for the writer: refuse the callback, the vendor retries."""


class IntakeClosed(Exception):
    """The process is shutting down and takes no more callbacks."""


Callback = tuple[str, Sequence[WebhookEvent]]  # (system, its events)


def triggered_flows(config: HubConfig, system: str, obj: str) -> list[Flow]:
    """Enabled flows with webhooks on whose source is this system's object."""
    return [flow for flow in config.flows.values()
            if flow.enabled and flow.webhook and flow.source.system == system and flow.source.object == obj]


def store_callbacks(tx: Tx, config: HubConfig, callbacks: Sequence[Callback]) -> list[Intake]:
    """Store the callbacks' events and queue their jobs in `tx`; one `Intake` per callback.

    An event repeated within `callbacks` counts as new for its first callback only.
    """
    rows = [InboxEvent(system, e.event_id, e.object, e.external_id, dict(e.payload))
            for system, events in callbacks for e in events]
    ids = tx.inbox_add(rows, done=True)  # done: their jobs are queued below, in this transaction
    flows: dict[tuple[str, str], list[Flow]] = {}
    jobs: list[NewJob] = []
    intakes: list[Intake] = []
    position = 0
    for system, events in callbacks:
        stored = queued = 0
        for event in events:
            if ids[position] is not None:
                stored += 1
                key = (system, event.object)
                if key not in flows:
                    flows[key] = triggered_flows(config, system, event.object)
                for flow in flows[key]:
                    jobs.append(record_job(flow.name, event.object, event.external_id, TRIGGER))
                    queued += 1
            position += 1
        intakes.append(Intake(stored, len(events) - stored, queued))
    if jobs:
        tx.enqueue(jobs)
    return intakes


Waiter = asyncio.Future[Intake] | concurrent.futures.Future[Intake]


class _Tally:
    """What the writer stored since its last info line: one line per `every` seconds at most.

    A line per batch was hundreds a second under load, and rendering and writing them cost
    ~7% of a callback's CPU (`bench/webhooks.py`, 2026-11-23). The first batch after a quiet
    spell is logged at once; later ones are summed into the next line, written when a batch
    commits after `every` seconds, when the writer has waited that long for work, or when it
    stops. Each batch still gets a debug line.
    """

    def __init__(self, every: float) -> None:
        self.every = every
        self.callbacks = self.stored = self.duplicates = self.jobs = 0
        self.last = -every  # so that the first batch is logged at once

    def add(self, intakes: Sequence[Intake]) -> None:
        self.callbacks += len(intakes)
        for intake in intakes:
            self.stored += intake.stored
            self.duplicates += intake.duplicates
            self.jobs += intake.jobs
        if time.monotonic() - self.last >= self.every:
            self.flush()

    def wait_seconds(self, idle: float) -> float:
        """How long the writer may wait for work before this tally's line is due."""
        if not self.callbacks:
            return idle
        return max(0.0, min(idle, self.last + self.every - time.monotonic()))

    def flush(self) -> None:
        if self.callbacks:
            log.info("webhook events taken", callbacks=self.callbacks, stored=self.stored,
                     duplicates=self.duplicates, jobs=self.jobs)
        self.callbacks = self.stored = self.duplicates = self.jobs = 0
        self.last = time.monotonic()


@dataclass(slots=True)
class _Pending:
    system: str
    events: Sequence[WebhookEvent]
    waiter: Waiter
    loop: asyncio.AbstractEventLoop | None  # the waiter's loop; None for a concurrent future


class WebhookIntake:
    """The process's single webhook writer (see the module docstring). Thread-safe.

    `take` (from the event loop) or `take_blocking` (from a thread) return once the
    callback's events are committed, or raise: `IntakeBusy`, `IntakeClosed`, or the
    store's error. `start` and `close` are the app's lifespan; without them the writer
    starts on the first callback and stops after `idle_seconds` without one.
    """

    def __init__(self, config: HubConfig, store: Store, max_batch: int = MAX_BATCH_EVENTS,
                 max_queued: int = MAX_QUEUED_EVENTS, idle_seconds: float = IDLE_SECONDS,
                 on_jobs: Callable[[], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.on_jobs = on_jobs  # told after a commit that queued jobs (a worker of this process wakes up)
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.idle_seconds = idle_seconds
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self._tally = _Tally(LOG_EVERY_SECONDS)  # the writer thread's alone

    # --- callers ------------------------------------------------------------------------------

    async def take(self, system: str, events: Sequence[WebhookEvent]) -> Intake:
        """Store one callback's events with the next batch; returns after the commit."""
        if not events:
            return Intake(0, 0, 0)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Intake] = loop.create_future()
        self._submit(_Pending(system, events, waiter, loop))
        return await waiter

    def take_blocking(self, system: str, events: Sequence[WebhookEvent], timeout: float | None = None) -> Intake:
        """`take` for a thread that is not an event loop's."""
        if not events:
            return Intake(0, 0, 0)
        waiter: concurrent.futures.Future[Intake] = concurrent.futures.Future()
        self._submit(_Pending(system, events, waiter, None))
        return waiter.result(timeout)

    @property
    def queued(self) -> int:
        """Events waiting for the writer (not counting the batch being committed)."""
        return self._queued_events

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the writer now (app startup); also undoes an earlier `close`."""
        with self._cond:
            self._closing = False
            self._ensure_writer()

    def close(self, timeout: float | None = 30.0) -> None:
        """Refuse new callbacks, commit the queued ones, stop the writer (app shutdown)."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("webhook writer still busy at shutdown", queued=self._queued_events)

    def _submit(self, pending: _Pending) -> None:
        size = len(pending.events)
        with self._cond:
            if self._closing:
                raise IntakeClosed("the hub is shutting down")
            if self._queue and self._queued_events + size > self.max_queued:
                raise IntakeBusy(f"{self._queued_events} events are waiting to be stored")
            self._queue.append(pending)
            self._queued_events += size
            if not self._ensure_writer():
                self._cond.notify()

    def _ensure_writer(self) -> bool:
        """Start the writer thread unless it runs (the caller holds `_cond`); True if started."""
        if self._thread is not None:
            return False
        self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
        self._thread.start()
        return True

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        connection: Connection | None = None
        try:
            while (batch := self._next_batch()) is not None:
                connection = self._commit(batch, connection)
        except BaseException as exc:  # a bug of ours: no request may wait forever
            log.error("webhook writer failed", error_type=type(exc).__name__, exc_info=exc)
            with self._cond:
                stranded = list(self._queue)
                self._queue.clear()
                self._queued_events = 0
                if self._thread is threading.current_thread():
                    self._end()
            _settle(stranded, [exc] * len(stranded))
        finally:
            _close_quietly(connection)

    def _next_batch(self) -> list[_Pending] | None:
        """The callbacks of the next transaction; None when the writer should end."""
        while True:
            with self._cond:
                if self._queue:
                    return self._take_batch()
                if self._closing:
                    return self._end()
                wait = self._tally.wait_seconds(self.idle_seconds)
                if self._cond.wait(wait) or self._queue:
                    continue
                if wait >= self.idle_seconds:
                    return self._end()
            self._tally.flush()  # its line was due while no callback came (outside the lock)

    def _take_batch(self) -> list[_Pending]:
        """As many queued callbacks as one transaction takes (the caller holds `_cond`)."""
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].events) <= self.max_batch):
            pending = self._queue.popleft()
            batch.append(pending)
            size += len(pending.events)
        self._queued_events -= size
        return batch

    def _end(self) -> None:
        """The writer ends: closing with nothing left, or idle (the caller holds `_cond`)."""
        self._tally.flush()
        self._thread = None

    def _commit(self, batch: list[_Pending], connection: Connection | None) -> Connection | None:
        """Store one batch in one transaction and answer its callbacks; returns the connection to reuse.

        The writer keeps its connection between batches: checking one out of the pool
        costs a pre-ping round trip on PostgreSQL. A connection that died meanwhile (server
        restart) fails the batch with a disconnect; it is retried once on a new one. That is
        safe even if the failure hid a commit: the retry then finds the events stored.
        """
        callbacks = [(p.system, p.events) for p in batch]
        tracker = getattr(self.store, "_growth", None)  # the store's ANALYZE bookkeeping (PostgreSQL)
        for attempt in (1, 2):
            try:
                if connection is None:
                    connection = self.store.engine.connect()
                with connection.begin():
                    intakes = store_callbacks(Tx(connection, tracker), self.config, callbacks)
            except Exception as exc:  # noqa: BLE001 - whatever failed, nothing of the batch is stored
                _close_quietly(connection)
                connection = None
                if attempt == 1 and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    log.info("webhook writer lost its store connection; retrying the batch", callbacks=len(batch))
                    continue
                log.error("webhook batch not stored", callbacks=len(batch), error_type=type(exc).__name__)
                _settle(batch, [exc] * len(batch))
                return None
            _settle(batch, intakes)
            if self.on_jobs is not None and any(i.jobs for i in intakes):
                self.on_jobs()
            log.debug("webhook batch stored", callbacks=len(batch))
            self._tally.add(intakes)
            if tracker is not None:
                self._analyze(tracker.due())
            break
        return connection

    def _analyze(self, tables: list[str]) -> None:
        if not tables:
            return
        try:
            self.store.analyze(tables)
        except Exception as exc:  # noqa: BLE001 - statistics are an optimisation
            log.warning("store.analyze_failed", tables=tables, error_type=type(exc).__name__)


def _settle(batch: Sequence[_Pending], outcomes: Sequence[Intake | BaseException]) -> None:
    """Hand each waiter its outcome: one wake-up per event loop, not one per callback."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Waiter, Intake | BaseException]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        if pending.loop is None:
            _resolve([(pending.waiter, outcome)])
        else:
            by_loop.setdefault(pending.loop, []).append((pending.waiter, outcome))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop is closed: nobody waits for these any more
            pass


def _resolve(settled: list[tuple[Waiter, Intake | BaseException]]) -> None:
    for waiter, outcome in settled:
        if waiter.done():  # the request was cancelled (client gone); its events are stored anyway
            continue
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


def _close_quietly(connection: Connection | None) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except Exception as exc:  # noqa: BLE001 - a dead connection may fail to close; it is gone either way
        log.debug("webhook writer connection close failed", error_type=type(exc).__name__)
