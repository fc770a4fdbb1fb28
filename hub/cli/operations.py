"""Commands that run the hub: `db upgrade`, `sync`, `worker`, `scheduler`, `dlq`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hub.cli.common import EXIT_PROBLEMS, config_option, fail, guarded, load_or_exit, main, on_stop_signal, open_store
from hub.engine.report import Counts, RunReport
from hub.engine.runner import Engine
from hub.engine.worker import Worker
from hub.scheduler import Scheduler
from hub.store import Job

# --- db ------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The hub's own database."""


@db.command("upgrade")
@config_option
def db_upgrade(config: str | None) -> None:
    """Create or migrate the store's tables to the current schema."""
    store = open_store(load_or_exit(config), upgrade=True)
    click.echo(f"store is at the current schema ({store.dialect})")


# --- sync ----------------------------------------------------------------------------------


@main.command()
@click.argument("flow")
@config_option
@click.option("--dry-run", is_flag=True, help="Write nothing; list what would be created or updated, with field diffs.")
@click.option("--full", is_flag=True, help="Ignore the flow's cursor and look at every record of the source.")
@click.option("--index", "index_only", is_flag=True,
              help="Learn the source's records (identities, golden records) without writing to any target.")
@click.option("--upgrade/--no-upgrade", default=True, show_default=True, help="Migrate the store first.")
def sync(flow: str, config: str | None, dry_run: bool, full: bool, index_only: bool, upgrade: bool) -> None:
    """Run FLOW once, now, and print a summary. Exit code 1 if any record failed."""
    hub = load_or_exit(config)
    store = open_store(hub, upgrade=upgrade)
    engine = Engine(hub, store)

    def progress(page: int, counts: Counts) -> None:
        click.echo(f"  page {page}: {counts.pulled} records pulled so far", err=True)

    try:
        report = guarded(lambda: engine.run_flow(flow, full=full, dry_run=dry_run, progress=progress,
                                                 index_only=index_only))
    finally:
        engine.close()
        store.dispose()
    _print_report(report, dry_run)
    if report.counts.dead or report.counts.failed:
        sys.exit(EXIT_PROBLEMS)


def _print_report(report: RunReport, dry_run: bool) -> None:
    if dry_run:
        for write in report.planned:
            where = write.external_id or "(new)"
            click.echo(f"would {write.op} {write.target} {where} for {write.canonical_id}")
            for field, (old, new) in sorted(write.diff.items()):
                click.echo(f"    {field}: {json.dumps(old, ensure_ascii=False)} -> {json.dumps(new, ensure_ascii=False)}")
    counts = report.counts.as_dict()
    click.echo(f"{report.flow}: {'dry run, nothing written' if dry_run else report.status}")
    click.echo("  " + "  ".join(f"{k}={v}" for k, v in counts.items()))


# --- worker and scheduler ------------------------------------------------------------------


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit.")
def worker(config: str | None, once: bool) -> None:
    """Run queued jobs (flow runs, retries, webhooks) until stopped with SIGTERM."""
    hub = load_or_exit(config)
    store = open_store(hub)
    engine = Engine(hub, store)
    runner = Worker(engine, store)
    try:
        if once:
            while runner.run_once():
                pass
        else:
            on_stop_signal(runner.stopping)
            runner.run()
    finally:
        engine.close()
        store.dispose()


@main.command()
@config_option
def scheduler(config: str | None) -> None:
    """Enqueue each flow on its schedule; on PostgreSQL one leader among many."""
    hub = load_or_exit(config)
    store = open_store(hub)
    runner = Scheduler(hub, store)
    on_stop_signal(runner.stopping)
    try:
        runner.run_as_leader()
    finally:
        store.dispose()


# --- dead-letter queue ---------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """The dead-letter queue: records that could not be synced, with their reasons."""


@dlq.command("list")
@config_option
@click.option("--flow", default=None, help="Only this flow's dead letters.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
def dlq_list(config: str | None, flow: str | None, limit: int, as_json: bool) -> None:
    """List dead-lettered records, newest first."""
    store = open_store(load_or_exit(config))
    with store.transaction() as tx:
        jobs = tx.dead_jobs(limit=limit, offset=0, flow=flow)
    for job in jobs:
        if as_json:
            click.echo(json.dumps(_job_dict(job), ensure_ascii=False, default=str))
        else:
            payload = job.payload or {}
            record = payload.get("external_id") or "-"
            click.echo(f"{job.id:>8}  {job.flow or '-':<24} {record!s:<20} {(job.last_error or '')[:100]}")
    if not jobs and not as_json:
        click.echo("the dead-letter queue is empty")


@dlq.command("show")
@click.argument("job_id", type=int)
@config_option
def dlq_show(job_id: int, config: str | None) -> None:
    """Everything about one dead letter: reason, field errors, the record as it was."""
    store = open_store(load_or_exit(config))
    with store.transaction() as tx:
        job = tx.job_get(job_id)
    if job is None or job.status != "dead":
        fail(f"no dead letter with id {job_id}", EXIT_PROBLEMS)
    click.echo(json.dumps(_job_dict(job), ensure_ascii=False, indent=2, default=str))  # type: ignore[arg-type]


@dlq.command("replay")
@click.argument("job_ids", type=int, nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@config_option
def dlq_replay(job_ids: tuple[int, ...], replay_all: bool, config: str | None) -> None:
    """Queue dead letters again (after fixing the mapping or the data); a worker runs them."""
    if not job_ids and not replay_all:
        fail("name job ids, or use --all")
    store = open_store(load_or_exit(config))
    with store.transaction() as tx:
        count = tx.replay(None if replay_all else list(job_ids))
    click.echo(f"{count} dead letter{'s' if count != 1 else ''} queued again")


@dlq.command("discard")
@click.argument("job_ids", type=int, nargs=-1, required=True)
@config_option
def dlq_discard(job_ids: tuple[int, ...], config: str | None) -> None:
    """Delete dead letters that need no replay."""
    store = open_store(load_or_exit(config))
    with store.transaction() as tx:
        count = tx.discard(list(job_ids))
    click.echo(f"{count} dead letter{'s' if count != 1 else ''} discarded")


def _job_dict(job: Job) -> dict[str, Any]:
    return {"id": job.id, "flow": job.flow, "kind": job.kind, "attempts": job.attempts, "reason": job.last_error,
            "payload": job.payload, "created_at": job.created_at, "updated_at": job.updated_at}
