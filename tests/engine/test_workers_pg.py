"""Several workers and schedulers sharing one PostgreSQL store (skipped without SYNCHUB_TEST_PG_URL)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import DATA, contact, make_hub

from hub.config import load_config
from hub.engine.runner import Engine
from hub.engine.worker import Worker, record_job
from hub.scheduler import Scheduler
from hub.store import Job, Store

pytestmark = pytest.mark.postgres


class RecordingWorker(Worker):
    """A worker that notes when it starts and ends each job, to catch any job run twice."""

    def __init__(self, *args: Any, log: list[tuple[int, str, float, float]], lock: threading.Lock, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.journal = log
        self.lock = lock

    def _execute(self, jobs: list[Job]) -> dict[int, str]:
        started = time.monotonic()
        result = super()._execute(jobs)
        with self.lock:
            self.journal.extend((job.id, self.owner, started, time.monotonic()) for job in jobs)
        return result


def test_two_workers_never_run_a_job_twice(tmp_path: Path, postgres_store: Store) -> None:
    hub = make_hub(tmp_path, store_url=postgres_store.engine.url.render_as_string(hide_password=False))
    contacts = hub.crm.insert("contact", [contact(i) for i in range(240)])
    with hub.store.transaction() as tx:
        tx.enqueue([record_job("customers-crm-to-erp", "contact", c["id"], "test") for c in contacts])
    journal: list[tuple[int, str, float, float]] = []
    lock = threading.Lock()
    workers = [RecordingWorker(Engine(hub.config, hub.store), hub.store, owner=f"w{i}", log=journal, lock=lock,
                               record_batch=10)  # many small claims, so that the two contend for jobs
               for i in range(2)]

    def drain(worker: Worker) -> None:
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    runs = Counter(job_id for job_id, *_ in journal)
    assert len(runs) == 240
    assert max(runs.values()) == 1
    assert {owner for _, owner, _, _ in journal} == {"w0", "w1"}  # both really worked
    assert hub.erp.count("partner") == 240
    assert len({p["hub_id"] for p in hub.erp.records("partner")}) == 240
    for w in workers:
        w.engine.close()
    hub.engine.close()


def test_one_scheduler_leads_and_another_takes_over(tmp_path: Path, postgres_store: Store) -> None:
    config = yaml.safe_load((DATA / "hub.yaml").read_text("utf-8"))
    config["mappings_dir"] = str(DATA / "mappings")
    config["flows"]["customers-crm-to-erp"]["schedule"] = "1s"
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    hub_config = load_config(path, env={})
    first = Scheduler(hub_config, postgres_store, retry_lock_seconds=0.2)
    second = Scheduler(hub_config, postgres_store, retry_lock_seconds=0.2)
    threads = [threading.Thread(target=s.run_as_leader, daemon=True) for s in (first, second)]
    threads[0].start()
    time.sleep(0.5)
    threads[1].start()
    time.sleep(3.6)
    assert 2 <= len(first.fired) <= 5
    assert second.fired == []  # the standby never fires while the leader lives
    with postgres_store.transaction() as tx:
        open_flow_jobs = [j for j in tx.jobs_by_status("queued") if j.kind == "flow"]
    assert len(open_flow_jobs) == 1  # ticks coalesce into one open job per flow
    first.stopping.set()
    threads[0].join(timeout=10)
    deadline = time.monotonic() + 10
    while not second.fired and time.monotonic() < deadline:
        time.sleep(0.1)
    assert second.fired, "the standby did not take over"
    second.stopping.set()
    threads[1].join(timeout=10)
