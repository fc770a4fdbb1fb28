"""Running a flow: pages from the source, each carried through `PageWork`, cursor after commit.

`Engine` is what the CLI, the worker and the API call. It owns the connectors of one hub
config (opened lazily, one per system) and the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from connectors import registry
from connectors.base import Connector, ConnectorError, Page
from hub.config import Flow, HubConfig, System
from hub.engine import retry
from hub.engine.page import PageContext, PageWork
from hub.engine.report import Counts, Preview, RunReport
from hub.errors import SynchubError
from hub.store import Store
from hub.suggest import did_you_mean

log = structlog.get_logger()

ConnectorFactory = Callable[[System], Connector]
Progress = Callable[[int, Counts], None]


class UnknownFlow(SynchubError):
    """A flow name that the config does not declare."""


def open_connector(system: System) -> Connector:
    """The default factory: the connector class registered under the system's connector name."""
    cls = registry.connector_class(system.connector)
    return cls(system)  # type: ignore[no-any-return]


class Engine:
    """Syncs flows of one hub config against one store."""

    def __init__(self, config: HubConfig, store: Store, connector_factory: ConnectorFactory = open_connector,
                 retry_policy: retry.RetryPolicy | None = None,
                 on_retry: Callable[[str, BaseException], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.factory = connector_factory
        self.retry_policy = retry_policy or retry.RetryPolicy()
        self.on_retry = on_retry
        self._connectors: dict[str, Connector] = {}

    def connector(self, system: str) -> Connector:
        if system not in self._connectors:
            self._connectors[system] = self.factory(self.config.systems[system])
        return self._connectors[system]

    def connectors(self) -> dict[str, Connector]:
        """The connectors opened so far, by system."""
        return dict(self._connectors)

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()
        self._connectors.clear()

    def flow(self, name: str) -> Flow:
        try:
            return self.config.flows[name]
        except KeyError:
            raise UnknownFlow(f"unknown flow '{name}'{did_you_mean(name, self.config.flows)}") from None

    # --- whole flows -------------------------------------------------------------------------

    def run_flow(self, name: str, trigger: str = "manual", full: bool = False, dry_run: bool = False,
                 progress: Progress | None = None, index_only: bool = False) -> RunReport:
        """Pull everything changed since the flow's cursor (or everything, with `full`) and sync it.

        `index_only` learns the source's records (identity, golden records, match keys)
        without writing to any target or moving the cursor: run it for every system that
        already holds data before the first real sync, so that a customer present on both
        sides is matched instead of created twice.
        """
        full = full or index_only
        flow = self.flow(name)
        report = RunReport(flow.name, None if dry_run else self._start_run(flow.name, trigger))
        bound = log.bind(flow=flow.name, run_id=report.run_id, trigger=trigger)
        bound.info("run started", full=full, dry_run=dry_run)
        try:
            with self.store.transaction() as tx:
                cursor = None if full else tx.cursor_get(flow.name)
            for number, page in enumerate(self._pages(flow, cursor), start=1):
                self._page(flow, page.records, report, dry_run=dry_run, cursor=page.cursor, index_only=index_only)
                if progress is not None:
                    progress(number, report.counts)
        except Exception as exc:
            report.status = "failed"
            report.problems.append(f"{type(exc).__name__}: {exc}")
            bound.error("run failed", error=str(exc)[:500], exc_info=not isinstance(exc, ConnectorError))
            self._finish_run(report)
            raise
        self._finish_run(report)
        bound.info("run finished", status=report.status, **report.counts.nonzero())
        return report

    def run_records(self, name: str, external_ids: list[str], trigger: str = "record",
                    requeue: bool = True) -> RunReport:
        """Sync a few records now (a webhook, a retry, a replay), whatever their last seen state.

        A record that cannot be finished now (a missing reference, a vendor that stays down)
        gets a record job, unless `requeue` is False: the caller is that record's job and
        retries it itself, with its own attempts and backoff.
        """
        flow = self.flow(name)
        connector = self.connector(flow.source.system)
        records = retry.call(lambda: connector.get(flow.source.object, external_ids), self.retry_policy,
                             f"{flow.source.system}.get")
        report = RunReport(flow.name, self._start_run(flow.name, trigger))
        try:
            if records:
                self._page(flow, records, report, force=True, requeue=requeue)
        except Exception as exc:
            report.status = "failed"
            report.problems.append(f"{type(exc).__name__}: {exc}")
            self._finish_run(report)
            raise
        self._finish_run(report)
        return report

    def preview(self, name: str, external_id: str) -> Preview:
        """What syncing one source record would do now, writing nothing (the admin's preview).

        The record goes through the whole pipeline as a dry run: mapped in, matched, merged,
        mapped out per target and compared with what each target holds now.
        """
        flow = self.flow(name)
        connector = self.connector(flow.source.system)
        records = retry.call(lambda: connector.get(flow.source.object, [external_id]), self.retry_policy,
                             f"{flow.source.system}.get")
        if not records:
            return Preview(flow.name, external_id, None, None, [], [])
        mapped = flow.source.mapping.to_canonical(records[0])
        report = RunReport(flow.name, None)
        self._page(flow, records[:1], report, dry_run=True, force=True)
        return Preview(flow.name, external_id, records[0], mapped.value, [str(e) for e in mapped.errors],
                       report.planned, report.problems)

    # --- pages -------------------------------------------------------------------------------

    def _pages(self, flow: Flow, cursor: str | None) -> Iterator[Page]:
        """The source's pages; after a failed pull, starts again from the last page handed out."""
        connector = self.connector(flow.source.system)
        position = cursor
        failures = 0
        while True:
            try:
                for page in connector.pull(flow.source.object, position):
                    failures = 0
                    yield page
                    if page.cursor is not None:
                        position = page.cursor
                return
            except ConnectorError as exc:
                failures += 1
                if not exc.retryable or failures >= self.retry_policy.attempts:
                    raise
                backoff = min(self.retry_policy.initial * 2 ** failures, self.retry_policy.max_backoff)
                delay = max(getattr(exc, "retry_after", None) or 0.0, backoff)  # as retry.call: Retry-After wins
                log.info("pull interrupted, resuming from the last page", flow=flow.name, error=str(exc)[:200],
                         attempt=failures)
                if self.on_retry is not None:
                    self.on_retry(flow.source.system, exc)
                time.sleep(delay)

    def _page(self, flow: Flow, records: list[dict[str, Any]], report: RunReport, dry_run: bool = False,
              force: bool = False, cursor: str | None = None, index_only: bool = False, requeue: bool = True) -> None:
        ctx = PageContext(flow, self.connector, self.retry_policy, report.run_id, force=force, dry_run=dry_run,
                          index_only=index_only, on_retry=self.on_retry, requeue=requeue)
        work = PageWork(ctx, records)
        with self.store.transaction() as tx:
            work.read(tx)
            if not dry_run:
                work.write_identity(tx)  # before any vendor write: a crash must not lose who a record is
        work.push()
        report.planned.extend(work.planned)
        if not dry_run:
            with self.store.transaction() as tx:
                work.write(tx)
                if cursor is not None and not index_only:
                    tx.cursor_set(flow.name, cursor)
                tx.run_add(report.run_id, **work.counts.as_dict())
        report.counts.add(work.counts)
        report.problems.extend(work.notes)
        report.unfinished.update(work.unfinished)

    def _start_run(self, flow: str, trigger: str) -> int:
        with self.store.transaction() as tx:
            return tx.run_start(flow, trigger)

    def _finish_run(self, report: RunReport) -> None:
        if report.status == "ok" and (report.counts.dead or report.counts.failed or report.counts.waiting):
            report.status = "partial"
        if report.run_id is None:
            return
        with self.store.transaction() as tx:
            tx.run_finish(report.run_id, report.status, "; ".join(report.problems)[:2000] or None)
