"""APScheduler wiring: each flow's schedule enqueues a flow job; one leader does it.

The scheduler only enqueues; workers run. With several scheduler processes on PostgreSQL,
the one holding a session-level advisory lock is the leader and the others wait, retrying
the lock, so that a tick fires once and another takes over when the leader dies (its
connection closes and PostgreSQL releases the lock). On SQLite there is one process, which
is always the leader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub.config import Flow, HubConfig
from hub.engine.worker import flow_job
from hub.store import Store
from hub.store.leader import leader_lock

log = structlog.get_logger()

LEADER_LOCK_KEY = 0x53796E6348756201  # "SyncHub\x01": one advisory lock per synchub database


def trigger_for(flow: Flow) -> CronTrigger | IntervalTrigger | None:
    if flow.schedule is None:
        return None
    if flow.schedule.cron:
        return CronTrigger.from_crontab(flow.schedule.cron, timezone="UTC")
    assert flow.schedule.interval is not None
    return IntervalTrigger(seconds=flow.schedule.interval.total_seconds(), timezone="UTC")


class Scheduler:
    """Enqueues flow jobs on their schedules while this process is the leader."""

    def __init__(self, config: HubConfig, store: Store, misfire_grace_seconds: int = 60,
                 retry_lock_seconds: float = 5.0) -> None:
        self.config = config
        self.store = store
        self.misfire_grace = misfire_grace_seconds
        self.retry_lock = retry_lock_seconds
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.fired: list[str] = []  # flow names, in order; handy for the admin API and tests

    def tick(self, flow: str) -> None:
        """What a schedule does when it fires: enqueue the flow unless one is already open."""
        with self.store.transaction() as tx:
            ids = tx.enqueue([flow_job(flow, "schedule")])
        self.fired.append(flow)
        log.info("schedule fired", flow=flow, enqueued=ids[0] is not None)

    def start(self) -> None:
        for flow in self.config.flows.values():
            trigger = trigger_for(flow)
            if trigger is None or not flow.enabled:
                continue
            self.scheduler.add_job(self.tick, trigger, args=[flow.name], id=flow.name, name=flow.name,
                                   coalesce=True, max_instances=1, misfire_grace_time=self.misfire_grace,
                                   replace_existing=True)
        self.scheduler.start()
        log.info("scheduler started", flows=[j.id for j in self.scheduler.get_jobs()])

    def shutdown(self) -> None:
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def run_as_leader(self, on_leader: Callable[[], None] | None = None) -> None:
        """Block: wait to become the leader, schedule while leading, stop when told to."""
        with leader_lock(self.store, LEADER_LOCK_KEY, self.stopping, self.retry_lock) as leading:
            if not leading:
                return
            log.info("this process is the scheduler leader")
            if on_leader is not None:
                on_leader()
            self.start()
            self.stopping.wait()
        self.shutdown()
