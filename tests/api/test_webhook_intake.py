"""Group commit of webhooks (`hub.engine.intake.WebhookIntake`), over real loopback HTTP where it matters.

The rules under test: a callback is answered only after its events (and their jobs) are
committed; the callbacks of one batch share one transaction, so a failing batch fails every
one of them and stores nothing; a redelivered event triggers nothing again, in the same
batch or a later one; a full queue refuses with 503 and Retry-After; shutdown drains.

`Gate` holds the writer inside a transaction so that the tests can line callbacks up behind
it deterministically (no sleeps): the next batch then holds exactly the queued ones.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from structlog.testing import capture_logs

import hub.engine.intake as intake_module
from connectors.base import WebhookEvent
from connectors.fake.connector import SIGNATURE_HEADER, sign
from connectors.sandbox import RunningServer, serve
from hub.api import create_app
from hub.api.auth import Tokens
from hub.config import HubConfig, load_config
from hub.engine.intake import IntakeBusy, IntakeClosed, WebhookIntake
from hub.engine.runner import Engine
from hub.store import Store
from hub.store.schema import webhook_inbox
from hub.store.tx import Tx
from tests.store.fixtures import BACKENDS, make_store

ENGINE_DATA = Path(__file__).parents[1] / "engine" / "data"
SECRET = "webhook-secret-for-tests"
CONTACT_FLOWS = ("customers-crm-to-erp", "customers-crm-copy")  # two flows triggered by a CRM contact
DEAL_FLOWS = ("orders-crm-to-erp",)
WAIT = 10.0  # seconds any single wait may take before the test fails


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    yield from make_store(request, request.param)


@pytest.fixture
def config(tmp_path: Path) -> HubConfig:
    raw = yaml.safe_load((ENGINE_DATA / "hub.yaml").read_text("utf-8"))
    raw["mappings_dir"] = str(ENGINE_DATA / "mappings")
    for name in ("crm", "erp"):
        raw["systems"][name]["options"]["state"] = str(tmp_path / f"{name}.sqlite")
        raw["systems"][name]["webhook"] = {"secret": SECRET}
    raw["flows"]["customers-crm-copy"] = copy.deepcopy(raw["flows"]["customers-crm-to-erp"])
    for flow in CONTACT_FLOWS + DEAL_FLOWS:
        raw["flows"][flow]["webhook"] = True
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return load_config(path, env={})


@dataclass
class Hub:
    server: RunningServer
    app: Any
    store: Store

    @property
    def intake(self) -> WebhookIntake:
        return self.app.state.hub.intake  # type: ignore[no-any-return]

    def hook(self, events: list[dict[str, Any]], session: requests.Session | None = None) -> requests.Response:
        body = json.dumps({"events": events}).encode()
        return (session or requests).post(f"{self.server.base_url}/webhooks/crm", data=body, timeout=WAIT,
                                          headers={SIGNATURE_HEADER: sign(SECRET, body),
                                                   "Content-Type": "application/json"})


@pytest.fixture
def hub(config: HubConfig, store: Store) -> Iterator[Hub]:
    """The hub app served like `connectors.sandbox.serve` does: without lifespan events."""
    engine = Engine(config, store)
    app = create_app(config, store, Tokens.of(read=["r"], operator=["o"]), engine)
    server = serve(app)
    yield Hub(server, app, store)
    server.stop()
    app.state.hub.intake.close()
    engine.close()


def _event(event_id: str, record: str, obj: str = "contact") -> dict[str, Any]:
    return {"id": event_id, "object": obj, "record_id": record}


def _inbox(store: Store) -> list[tuple[str, str]]:
    with store.transaction() as tx:
        rows = tx.connection.execute(select(webhook_inbox.c.event_id, webhook_inbox.c.status)
                                     .order_by(webhook_inbox.c.id)).all()
    return [(row.event_id, row.status) for row in rows]


def _jobs_by_record(store: Store) -> dict[str, list[str]]:
    """Flows of the record jobs per external id."""
    found: dict[str, list[str]] = {}
    with store.transaction() as tx:
        for job in tx.jobs_by_status("queued"):
            found.setdefault(job.payload["external_id"], []).append(job.flow or "")
    return {record: sorted(flows) for record, flows in found.items()}


def _committed(store: Store, event_ids: list[str]) -> int:
    """How many of these events another connection sees now, without waiting for any lock.

    (The store's own SQLite transactions begin IMMEDIATE: they would wait for the writer's
    commit and hide an answer sent before it.)
    """
    if store.dialect == "sqlite":
        with closing(sqlite3.connect(store.engine.url.database or "")) as connection:  # autocommit reads
            marks = ",".join("?" * len(event_ids))
            return int(connection.execute(f"SELECT count(*) FROM webhook_inbox WHERE event_id IN ({marks})",
                                          event_ids).fetchone()[0])
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(webhook_inbox)
                                      .where(webhook_inbox.c.event_id.in_(event_ids))).scalar_one())


class Gate:
    """Holds the writer inside its transaction, before it stores anything, until `open()`.

    `batches` records the callbacks of every transaction, in order.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.batches: list[list[tuple[str, list[str]]]] = []
        real = intake_module.store_callbacks

        def gated(tx: Tx, config: HubConfig, callbacks: Any) -> Any:
            self.batches.append([(system, [e.event_id for e in events]) for system, events in callbacks])
            self.entered.set()
            assert self.opened.wait(WAIT), "the gate was never opened"
            return real(tx, config, callbacks)

        monkeypatch.setattr(intake_module, "store_callbacks", gated)

    def open(self) -> None:
        self.opened.set()


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    done = threading.Event()
    for _ in range(int(WAIT / 0.005)):
        if condition():
            return
        done.wait(0.005)
    raise AssertionError(f"timed out waiting for {what}")


# --- over HTTP -----------------------------------------------------------------------------


def test_concurrent_callbacks_are_each_stored_once_and_answered_only_after_commit(hub: Hub) -> None:
    """200 callbacks from 16 threads, some with two events, some redelivered: each event
    stored once, one job per (record, flow), and every answer finds its events committed."""
    callbacks = []
    for i in range(200):
        events = [_event(f"evt-{i}", f"C-{i}")]
        if i % 10 == 0:
            events.append(_event(f"evt-deal-{i}", f"D-{i}", "deal"))
        callbacks.append(events)
    callbacks += [callbacks[i] for i in range(0, 200, 25)]  # redeliveries, in the same run
    sessions = threading.local()

    def deliver(events: list[dict[str, Any]]) -> tuple[int, bool]:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        answer = hub.hook(events, sessions.session)
        ids = [e["id"] for e in events]
        return answer.status_code, _committed(hub.store, ids) == len(ids)

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(deliver, callbacks))
    assert all(status == 200 for status, _ in outcomes)
    assert all(visible for _, visible in outcomes), "an answer came before its events were committed"
    inbox = _inbox(hub.store)
    assert len(inbox) == 220 and len({event_id for event_id, _ in inbox}) == 220
    assert {status for _, status in inbox} == {"done"}
    by_record = _jobs_by_record(hub.store)
    assert len(by_record) == 220
    assert all(by_record[f"C-{i}"] == sorted(CONTACT_FLOWS) for i in range(200))
    assert all(by_record[f"D-{i}"] == list(DEAL_FLOWS) for i in range(0, 200, 10))


def test_a_store_failure_answers_503_to_every_callback_of_its_batch_and_stores_none(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    real_enqueue = Tx.enqueue

    def enqueue(tx: Tx, batch: Any, now: Any = None) -> Any:  # fails after the inbox rows were inserted
        if any(str(job.payload["external_id"]).startswith("BOOM") for job in batch):
            raise RuntimeError("the disk is full")
        return real_enqueue(tx, batch, now)

    monkeypatch.setattr(Tx, "enqueue", enqueue)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(hub.hook, [_event("evt-first", "C-first")])
        assert gate.entered.wait(WAIT)
        doomed = [pool.submit(hub.hook, [_event(f"evt-{i}", f"BOOM-{i}")]) for i in range(5)]
        doomed.append(pool.submit(hub.hook, [_event("evt-ok-but-unlucky", "C-ok")]))  # same batch, fine alone
        _wait_for(lambda: hub.intake.queued == 6, "six callbacks queued behind the gate")
        gate.open()
        assert first.result().status_code == 200
        answers = [f.result() for f in doomed]
    assert [a.status_code for a in answers] == [503] * 6
    assert all("deliver again" in a.json()["error"]["message"] for a in answers)
    assert len(gate.batches) == 2 and len(gate.batches[1]) == 6  # the six shared one transaction
    assert _inbox(hub.store) == [("evt-first", "done")]
    assert _jobs_by_record(hub.store) == {"C-first": sorted(CONTACT_FLOWS)}
    # the vendor delivers again: the unlucky one is taken now, the bad ones still fail alone
    assert hub.hook([_event("evt-ok-but-unlucky", "C-ok")]).status_code == 200
    assert hub.hook([_event("evt-0", "BOOM-0")]).status_code == 503
    assert [event_id for event_id, _ in _inbox(hub.store)] == ["evt-first", "evt-ok-but-unlucky"]


def test_duplicates_within_one_batch_and_across_batches_trigger_one_job(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(hub.hook, [_event("evt-a", "C-a")])
        assert gate.entered.wait(WAIT)
        same_batch = [pool.submit(hub.hook, [_event("evt-b", "C-b"), _event("evt-b", "C-b")]),
                      pool.submit(hub.hook, [_event("evt-b", "C-b")]),
                      pool.submit(hub.hook, [_event("evt-a", "C-a")]),  # redelivery of the batch before
                      pool.submit(hub.hook, [_event("evt-c", "C-b")])]  # another event, same record
        _wait_for(lambda: hub.intake.queued == 5, "five events queued behind the gate")
        gate.open()
        assert first.result().status_code == 200
        assert [f.result().status_code for f in same_batch] == [200] * 4
    assert len(gate.batches) == 2 and len(gate.batches[1]) == 4
    assert hub.hook([_event("evt-b", "C-b")]).status_code == 200  # and once more, later
    assert sorted(event_id for event_id, _ in _inbox(hub.store)) == ["evt-a", "evt-b", "evt-c"]
    assert _jobs_by_record(hub.store) == {"C-a": sorted(CONTACT_FLOWS), "C-b": sorted(CONTACT_FLOWS)}
    metrics = requests.get(f"{hub.server.base_url}/metrics", timeout=WAIT).text
    assert 'synchub_webhook_events_total{fate="stored",system="crm"} 3.0' in metrics
    assert 'synchub_webhook_events_total{fate="duplicate",system="crm"} 4.0' in metrics


def test_a_full_queue_answers_503_with_retry_after(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.app.state.hub.intake = WebhookIntake(hub.app.state.hub.config, hub.store, max_queued=3)
    gate = Gate(monkeypatch)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(hub.hook, [_event("evt-0", "C-0")])
        assert gate.entered.wait(WAIT)
        queued = [pool.submit(hub.hook, [_event(f"evt-{i}", f"C-{i}")]) for i in (1, 2, 3)]
        _wait_for(lambda: hub.intake.queued == 3, "three events queued behind the gate")
        refused = hub.hook([_event("evt-4", "C-4")])
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        gate.open()
        assert [f.result().status_code for f in [first, *queued]] == [200] * 4
    assert hub.hook([_event("evt-4", "C-4")]).status_code == 200  # room again: the retry is taken
    assert sorted(event_id for event_id, _ in _inbox(hub.store)) == [f"evt-{i}" for i in range(5)]


def test_the_lifespan_starts_the_writer_and_shutdown_drains_it(config: HubConfig, store: Store) -> None:
    engine = Engine(config, store)
    app = create_app(config, store, Tokens.of(read=["r"], operator=["o"]), engine)
    intake: WebhookIntake = app.state.hub.intake
    body = json.dumps({"events": [_event("evt-1", "C-1")]}).encode()
    headers = {SIGNATURE_HEADER: sign(SECRET, body), "Content-Type": "application/json"}
    try:
        with TestClient(app) as client:
            assert intake.running
            assert client.post("/webhooks/crm", content=body, headers=headers).status_code == 200
        assert not intake.running
        with TestClient(app, raise_server_exceptions=False) as client:  # a restarted app takes callbacks again
            assert client.post("/webhooks/crm", content=body, headers=headers).status_code == 200
    finally:
        intake.close()
        engine.close()
    assert _inbox(store) == [("evt-1", "done")]


# --- the writer on its own ---------------------------------------------------------------------


def _events(*ids: str) -> list[WebhookEvent]:
    return [WebhookEvent(event_id, "contact", f"C-{event_id}", {"n": event_id}) for event_id in ids]


def test_close_commits_what_is_queued_then_refuses(config: HubConfig, store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    intake = WebhookIntake(config, store)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(intake.take_blocking, "crm", _events("e0"), WAIT)
        assert gate.entered.wait(WAIT)
        queued = [pool.submit(intake.take_blocking, "crm", _events(f"e{i}"), WAIT) for i in range(1, 6)]
        _wait_for(lambda: intake.queued == 5, "five callbacks queued behind the gate")
        closing: Future[None] = pool.submit(intake.close, WAIT)
        _wait_for(lambda: _refuses(intake), "the intake to refuse new callbacks")
        assert not closing.done()  # still draining, held by the gate
        gate.open()
        closing.result(WAIT)
        assert [f.result().stored for f in [first, *queued]] == [1] * 6
    assert not intake.running
    assert sorted(event_id for event_id, _ in _inbox(store)) == [f"e{i}" for i in range(6)]


def _refuses(intake: WebhookIntake) -> bool:
    try:
        intake.take_blocking("crm", _events("late"), WAIT)
    except IntakeClosed:
        return True
    return False


def test_the_writer_starts_on_demand_and_ends_when_idle(config: HubConfig, store: Store) -> None:
    intake = WebhookIntake(config, store, idle_seconds=0.05)
    try:
        assert not intake.running
        assert intake.take_blocking("crm", _events("e1"), WAIT).stored == 1
        _wait_for(lambda: not intake.running, "the idle writer to end")
        again = intake.take_blocking("crm", _events("e1", "e2"), WAIT)
        assert (again.stored, again.duplicates, again.jobs) == (1, 1, 2)
        assert intake.take_blocking("crm", [], WAIT).stored == 0  # nothing to store: no transaction
    finally:
        intake.close()


def test_the_writer_sums_its_batches_into_one_info_line_per_interval(config: HubConfig, store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A line per batch would be hundreds a second under load: the first batch after a quiet
    spell is logged at once, the next ones summed into a line written once the interval has
    passed, here while the writer waits for work."""
    monkeypatch.setattr(intake_module, "LOG_EVERY_SECONDS", 0.3)
    intake = WebhookIntake(config, store)

    def lines() -> list[dict[str, Any]]:
        return [{key: line[key] for key in ("callbacks", "stored", "duplicates", "jobs")}
                for line in logs if line["event"] == "webhook events taken"]

    try:
        with capture_logs() as logs:
            intake.take_blocking("crm", _events("e1"), WAIT)
            assert lines() == [{"callbacks": 1, "stored": 1, "duplicates": 0, "jobs": 2}]
            intake.take_blocking("crm", _events("e2", "e3"), WAIT)
            intake.take_blocking("crm", _events("e1"), WAIT)
            assert len(lines()) == 1  # summed, not yet written
            _wait_for(lambda: len(lines()) == 2, "the summed line")
    finally:
        intake.close()
    assert lines()[1] == {"callbacks": 2, "stored": 2, "duplicates": 1, "jobs": 4}


def test_one_callback_larger_than_a_batch_is_taken_whole(config: HubConfig, store: Store) -> None:
    intake = WebhookIntake(config, store, max_batch=3, max_queued=3)
    try:
        taken = intake.take_blocking("crm", _events(*(f"e{i}" for i in range(7))), WAIT)
        assert (taken.stored, taken.jobs) == (7, 14)
    finally:
        intake.close()


def test_busy_is_refused_only_when_others_wait(config: HubConfig, store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate(monkeypatch)
    intake = WebhookIntake(config, store, max_queued=2)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(intake.take_blocking, "crm", _events("e0"), WAIT)
        assert gate.entered.wait(WAIT)
        big = pool.submit(intake.take_blocking, "crm", _events("e1", "e2", "e3"), WAIT)  # alone in the queue: taken
        _wait_for(lambda: intake.queued == 3, "the big callback queued")
        with pytest.raises(IntakeBusy):
            intake.take_blocking("crm", _events("e4"), WAIT)
        gate.open()
        assert first.result().stored == 1 and big.result().stored == 3
    intake.close()


@pytest.mark.postgres
@pytest.mark.parametrize("store", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_lost_connection_is_retried_once_on_a_new_one(config: HubConfig, store: Store) -> None:
    intake = WebhookIntake(config, store)
    try:
        assert intake.take_blocking("crm", _events("e1"), WAIT).stored == 1
        with store.engine.connect() as admin:  # the server drops every other session of this database
            admin.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            admin.commit()
        assert intake.take_blocking("crm", _events("e2"), WAIT).stored == 1
    finally:
        intake.close()
    assert [event_id for event_id, _ in _inbox(store)] == ["e1", "e2"]


def test_a_worker_in_the_same_process_starts_the_callbacks_jobs_at_once(config: HubConfig, store: Store) -> None:
    """`synchub run` wires the intake to its worker (`create_app(on_jobs=worker.wake)`): the
    job starts now, not at the worker's next look at the queue, here a minute away."""
    from hub.engine.worker import Worker  # noqa: PLC0415

    engine = Engine(config, store)
    worker = Worker(Engine(config, store), store, owner="same-process", idle_seconds=60.0)
    app = create_app(config, store, Tokens.of(read=["r"], operator=["o"]), engine, on_jobs=worker.wake)
    server = serve(app)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        hub = Hub(server, app, store)
        assert hub.hook([_event("wake-1", "c-wake")]).status_code == 200
        deadline = threading.Event()
        for _ in range(int(WAIT / 0.05)):
            with store.transaction() as tx:
                depth = tx.queue_depth()
            if not depth.get("queued") and not depth.get("running"):
                break
            deadline.wait(0.05)
        assert not depth.get("queued") and not depth.get("running"), f"the job still waits for the worker: {depth}"
        assert sum(depth.values()) == len(CONTACT_FLOWS)
    finally:
        worker.stop()
        thread.join(WAIT)
        server.stop()
        app.state.hub.intake.close()
        engine.close()
        worker.engine.close()
    assert not thread.is_alive(), "stop() must end the idle wait at once"
