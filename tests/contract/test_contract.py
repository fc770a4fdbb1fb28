"""The connector contract, checked for every connector against its sandbox over real HTTP.

Each test runs once per kit in `kits/` (see `kit.py`). The sandbox is started per test on a
free loopback port, so tests share nothing; records are seeded by the sandbox itself.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from connectors import registry
from connectors.base import Connector, OpKind, RateLimited, Rejected, Unavailable, WebhookRequest, WriteOp
from connectors.sandbox import serve
from hub.engine import retry
from tests.contract.kit import ContractKit, Sandbox
from tests.contract.kits import all_kits

KITS = all_kits()
pytestmark = pytest.mark.skipif(not KITS, reason="no connector kit yet")


@pytest.fixture(params=KITS, ids=lambda kit: kit.name)
def kit(request: pytest.FixtureRequest) -> ContractKit:
    return request.param  # type: ignore[no-any-return]


def _open(kit: ContractKit, sandbox: Sandbox) -> Connector:
    return registry.connector_class(kit.name)(kit.system(sandbox))  # type: ignore[no-any-return]


@pytest.fixture
def env(kit: ContractKit, request: pytest.FixtureRequest) -> Iterator[tuple[ContractKit, Sandbox, Connector]]:
    reason = kit.skips.get(request.node.originalname)
    if reason:
        pytest.skip(f"{kit.name}: {reason}")
    records = getattr(request, "param", None) or 0
    sandbox = kit.start(records)
    connector = _open(kit, sandbox)
    yield kit, sandbox, connector
    connector.close()
    sandbox.stop()


def seeded(count: int) -> Any:
    """Seed the sandbox of `env` with `count` records."""
    return pytest.mark.parametrize("env", [count], indirect=True)


def _pull_all(connector: Connector, kit: ContractKit, since: str | None) -> tuple[list[str], str | None]:
    records, cursor = _pull_records(connector, kit, since)
    return [kit.record_id(r) for r in records], cursor


def _pull_records(connector: Connector, kit: ContractKit, since: str | None) -> tuple[list[dict[str, Any]], str | None]:
    records: list[dict[str, Any]] = []
    cursor = since
    for page in connector.pull(kit.obj, since):
        records.extend(page.records)
        cursor = page.cursor if page.cursor is not None else cursor
    return records, cursor


def _check_since(kit: ContractKit, pulled: list[dict[str, Any]], expected: set[str], cursor_stamp: Any) -> None:
    """A pull from a cursor returned every record in `expected`, each once, and nothing else,
    except, for a connector that reads a recent cursor's second again, records of that second."""
    ids = [kit.record_id(r) for r in pulled]
    assert len(ids) == len(set(ids)), "a record came twice in one pull"
    assert expected <= set(ids), f"changes since the cursor were not pulled: {sorted(expected - set(ids))}"
    again = [r for r in pulled if kit.record_id(r) not in expected]
    if kit.rereads_stamp is None:
        assert again == [], f"records older than the cursor were pulled: {[kit.record_id(r) for r in again]}"
    else:
        assert all(r[kit.rereads_stamp] == cursor_stamp for r in again), "records older than the cursor's second"


def _create(connector: Connector, kit: ContractKit, numbers: range) -> list[str]:
    ops = [WriteOp(OpKind.CREATE, kit.new_record(n, f"hub-{n}"), f"hub-{n}", key_field=kit.key_field) for n in numbers]
    results = connector.push(kit.obj, ops)
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    return [r.external_id for r in results if r.external_id]


# --- pull ----------------------------------------------------------------------------------


@seeded(25)
def test_full_pull_returns_every_record_once(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    ids, cursor = _pull_all(connector, kit, None)
    assert sorted(ids) == sorted(kit.record_id(r) for r in sandbox.records(kit.obj))
    assert len(ids) == len(set(ids)) == 25
    assert cursor is not None


@seeded(12)
def test_incremental_pull_returns_only_what_changed_since_the_cursor(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    before, cursor = _pull_records(connector, kit, None)
    time.sleep(1.1)  # vendors with second-resolution timestamps: the changes come strictly later
    created = _create(connector, kit, range(1000, 1002))
    edited = kit.record_id(before[3])
    kit.change(sandbox, connector, edited, 7)
    changed, _ = _pull_records(connector, kit, cursor)
    stamp = before[-1][kit.rereads_stamp] if kit.rereads_stamp else None
    _check_since(kit, changed, {*created, edited}, stamp)


@seeded(3)
def test_records_sharing_a_timestamp_across_a_page_boundary_are_neither_lost_nor_repeated(
        env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    before, cursor = _pull_records(connector, kit, None)
    time.sleep(1.1)
    fresh = _create(connector, kit, range(2000, 2000 + kit.page_size * 2 + 3))
    sandbox.touch(kit.obj, fresh)  # one timestamp across three pages
    pages = list(connector.pull(kit.obj, cursor))
    seen = [r for page in pages for r in page.records]
    _check_since(kit, seen, set(fresh), before[-1][kit.rereads_stamp] if kit.rereads_stamp else None)
    # a sync that stopped after the first page resumes from that page's cursor
    first = pages[0]
    assert first.cursor is not None
    rest, _ = _pull_records(connector, kit, first.cursor)
    first_ids = {kit.record_id(r) for r in first.records}
    stamp = first.records[-1][kit.rereads_stamp] if kit.rereads_stamp else None
    _check_since(kit, rest, set(fresh) - first_ids, stamp)


# --- get -----------------------------------------------------------------------------------


@seeded(5)
def test_get_returns_the_records_asked_for_and_leaves_out_missing_ones(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    ids = [kit.record_id(r) for r in sandbox.records(kit.obj)][:3]
    missing = _missing_id(kit, sandbox, connector)
    got = connector.get(kit.obj, [*ids, missing])
    assert sorted(kit.record_id(r) for r in got) == sorted(ids)


def _missing_id(kit: ContractKit, sandbox: Sandbox, connector: Connector) -> str:
    """An id shaped like the vendor's that names no record: create one and compare."""
    ids = [kit.record_id(r) for r in sandbox.records(kit.obj)]
    sample = ids[0]
    digits = sum(c.isdigit() for c in sample)
    if sample.isdigit():
        return str(int(max(ids, key=int)) + 10_000)
    if digits >= 4:
        return sample[:-4] + "9999"
    return "no-such-record-" + uuid.uuid4().hex[:8]


# --- push ----------------------------------------------------------------------------------


def test_create_then_update(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    if not kit.updates:
        pytest.skip(f"{kit.name} {kit.obj} records are not updated through push")
    [result] = connector.push(kit.obj, [WriteOp(OpKind.CREATE, kit.new_record(1, "hub-1"), "hub-1",
                                                key_field=kit.key_field)])
    assert result.ok and result.created and result.external_id
    [updated] = connector.push(kit.obj, [WriteOp(OpKind.UPDATE, kit.edit(1), "hub-1", result.external_id,
                                                 key_field=kit.key_field)])
    assert updated.ok and not updated.created and updated.external_id == result.external_id
    [record] = connector.get(kit.obj, [result.external_id])
    assert kit.label(record) == kit.label(kit.edit(1))


def test_upsert_twice_gives_one_record(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    if not kit.upserts:
        pytest.skip(f"{kit.name} has no upsert by a key of ours")
    op = WriteOp(OpKind.UPSERT, kit.new_record(5, "hub-5"), "hub-5", key_field=kit.key_field)
    [first] = connector.push(kit.obj, [op])
    [second] = connector.push(kit.obj, [op])
    assert first.ok and second.ok
    assert first.created and not second.created
    assert first.external_id == second.external_id
    assert [kit.key_of(r) for r in sandbox.records(kit.obj)].count("hub-5") == 1


def test_a_batch_larger_than_the_vendor_limit_is_split_into_few_calls(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    count = kit.batch_limit * 2 + 1 if kit.batch_limit > 1 else 25
    sandbox.reset_stats()
    ids = _create(connector, kit, range(count))
    assert len(set(ids)) == count
    assert len(sandbox.records(kit.obj)) == count
    used = kit.write_calls(sandbox.stats())
    assert used <= kit.min_push_calls(count) * 1.1, sandbox.stats()


def test_one_invalid_record_is_rejected_with_the_vendor_message_and_the_rest_go_on(
        env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    ops = [WriteOp(OpKind.CREATE, kit.invalid_record(), "hub-bad", key_field=kit.key_field),
           WriteOp(OpKind.CREATE, kit.new_record(2, "hub-2"), "hub-2", key_field=kit.key_field)]
    bad, good = connector.push(kit.obj, ops)
    assert not bad.ok and isinstance(bad.error, Rejected)
    assert bad.error.reason.strip()
    assert good.ok and good.external_id


# --- errors --------------------------------------------------------------------------------


@seeded(2)
def test_a_rate_limit_answer_is_raised_as_rate_limited_and_retried(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    ids = [kit.record_id(r) for r in sandbox.records(kit.obj)]
    sandbox.force("rate_limit")
    with pytest.raises(RateLimited) as raised:
        connector.get(kit.obj, ids)
    assert raised.value.retry_after is None or raised.value.retry_after >= 0
    sandbox.force("rate_limit", "rate_limit")
    policy = retry.RetryPolicy(attempts=5, initial=0.01, max_backoff=0.05, max_wait=5.0)
    got = retry.call(lambda: connector.get(kit.obj, ids), policy, "get")
    assert len(got) == 2


@seeded(2)
def test_server_errors_and_dropped_connections_are_unavailable(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    ids = [kit.record_id(r) for r in sandbox.records(kit.obj)]
    for fault in ("error", "drop"):
        sandbox.force(fault)
        with pytest.raises(Unavailable):
            connector.get(kit.obj, ids)
    assert len(connector.get(kit.obj, ids)) == 2


@seeded(2)
def test_an_expired_token_is_refreshed_once_and_the_call_goes_through(env: tuple[ContractKit, Sandbox, Connector]) -> None:
    kit, sandbox, connector = env
    if not kit.token_expiry:
        pytest.skip(f"{kit.name} credentials do not expire")
    ids = [kit.record_id(r) for r in sandbox.records(kit.obj)]
    assert len(connector.get(kit.obj, ids)) == 2
    sandbox.expire_tokens()
    assert len(connector.get(kit.obj, ids)) == 2


# --- webhooks ------------------------------------------------------------------------------


class Receiver:
    """A loopback endpoint that keeps each webhook exactly as it arrived, answering 200."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []
        self.arrived = threading.Event()
        app = FastAPI()

        @app.api_route("/hook", methods=["GET", "POST"])
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.requests.append(WebhookRequest(request.method, str(request.url), dict(request.headers),
                                                dict(request.query_params), body))
            self.arrived.set()
            return Response(status_code=200)

        self.server = serve(app)
        self.url = f"{self.server.base_url}/hook"

    def first(self, timeout: float = 10.0) -> WebhookRequest:
        assert self.arrived.wait(timeout), "the sandbox sent no webhook"
        return self.requests[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.stop()


@seeded(3)
def test_a_webhook_signed_by_the_vendor_is_accepted_and_names_the_changed_record(
        env: tuple[ContractKit, Sandbox, Connector], receiver: Receiver) -> None:
    kit, sandbox, connector = env
    target = kit.record_id(sandbox.records(kit.obj)[1])
    sandbox.webhooks_to(receiver.url)
    kit.change(sandbox, connector, target, 9)
    reply = connector.webhook(receiver.first())
    assert 200 <= reply.status < 300
    assert target in [event.external_id for event in reply.events]
    assert all(event.event_id for event in reply.events)


@seeded(3)
def test_a_webhook_with_a_bad_signature_is_refused_with_nothing_to_store(
        env: tuple[ContractKit, Sandbox, Connector], receiver: Receiver) -> None:
    kit, sandbox, connector = env
    target = kit.record_id(sandbox.records(kit.obj)[0])
    sandbox.webhooks_to(receiver.url)
    kit.change(sandbox, connector, target, 3)
    reply = connector.webhook(kit.tamper(receiver.first()))
    assert reply.status in (400, 401, 403)
    assert reply.events == []


@seeded(3)
def test_a_stale_webhook_is_refused(env: tuple[ContractKit, Sandbox, Connector], receiver: Receiver) -> None:
    kit, sandbox, connector = env
    if not kit.webhook_timestamps:
        pytest.skip(f"{kit.name} webhooks carry no timestamp")
    target = kit.record_id(sandbox.records(kit.obj)[0])
    sandbox.webhooks_to(receiver.url)
    kit.change(sandbox, connector, target, 4)
    reply = connector.webhook(kit.stale(receiver.first(), sandbox))
    assert reply.status in (400, 401, 403)
    assert reply.events == []
