"""The fake vendor follows the connector contract: pages, cursors, batches, faults, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connectors.base import (
    Connector,
    ConnectorError,
    OpKind,
    RateLimited,
    Rejected,
    Unavailable,
    WebhookRequest,
    WriteOp,
)
from connectors.fake import SETTINGS_SCHEMA, FakeConnector, FakeVendor, sign, signed_request
from connectors.fake import Connector as ExportedConnector
from hub.config.model import System
from hub.config.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-test"


@pytest.fixture(autouse=True)
def _fresh_memory_stores() -> Iterator[None]:
    FakeVendor.reset()
    yield
    FakeVendor.reset()


def make(name: str = "vendor", *, webhook: dict[str, Any] | None = None, **options: Any) -> FakeConnector:
    return FakeConnector(System(name, "fake", options=options, webhook=webhook or {}))


def pull_all(conn: FakeConnector, obj: str, since: str | None = None) -> list[Any]:
    return list(conn.pull(obj, since))


def ids_of(pages: list[Any]) -> list[str]:
    return [r["id"] for page in pages for r in page.records]


def upsert(key: str, **fields: Any) -> WriteOp:
    return WriteOp(OpKind.UPSERT, dict(fields), key=key)


# --- shape -----------------------------------------------------------------------------------


def test_package_exports_a_connector_that_meets_the_protocol() -> None:
    assert ExportedConnector is FakeConnector
    conn = make()
    assert isinstance(conn, Connector)
    assert conn.name == "fake"


def test_settings_schema_is_valid_and_accepts_the_documented_options() -> None:
    for block in ("auth", "webhook", "options"):
        jsonschema.Draft202012Validator.check_schema(SETTINGS_SCHEMA[block])
    options = {"state": "/tmp/x.db", "page_size": 1000, "batch_size": 100, "key_field": "ext",
               "faults": {"seed": 1, "rate_limit": 0.1, "unavailable": 0.05, "latency_ms": 3,
                          "reject_field": "email", "reject_pattern": "@bad"}}
    jsonschema.validate(options, SETTINGS_SCHEMA["options"])
    jsonschema.validate({"anything": 1}, SETTINGS_SCHEMA["auth"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"faults": {"rate_limit": 2}}, SETTINGS_SCHEMA["options"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"pagesize": 10}, SETTINGS_SCHEMA["options"])


# --- pull ------------------------------------------------------------------------------------


def test_full_pull_pages_in_modstamp_order_one_call_per_page() -> None:
    conn = make(page_size=10)
    seeded = conn.vendor.insert("customer", [{"name": f"c{i}"} for i in range(25)])
    assert [r["id"] for r in seeded][:2] == ["F-000001", "F-000002"]
    pages = pull_all(conn, "customer")
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert ids_of(pages) == [r["id"] for r in seeded]
    assert conn.calls["pull"] == 3
    last = pages[-1].records[-1]
    assert pages[-1].cursor == f"{last['modstamp']}:{last['id']}"
    stamps = [r["modstamp"] for p in pages for r in p.records]
    assert stamps == sorted(stamps) and len(set(stamps)) == 25


def test_pull_of_an_exact_multiple_of_the_page_size_makes_no_extra_call() -> None:
    conn = make(page_size=5)
    conn.vendor.insert("customer", [{"n": i} for i in range(10)])
    assert [len(p.records) for p in pull_all(conn, "customer")] == [5, 5]
    assert conn.calls["pull"] == 2


def test_empty_pull_yields_no_page() -> None:
    conn = make()
    assert pull_all(conn, "customer") == []
    assert conn.calls["pull"] == 1


def test_incremental_pull_resumes_strictly_after_the_cursor() -> None:
    conn = make(page_size=10)
    seeded = conn.vendor.insert("customer", [{"name": f"c{i}"} for i in range(15)])
    cursor = pull_all(conn, "customer")[-1].cursor
    assert pull_all(conn, "customer", cursor) == []
    conn.vendor.update("customer", seeded[3]["id"], {"name": "changed"})
    conn.vendor.insert("customer", [{"name": "new"}])
    pages = pull_all(conn, "customer", cursor)
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records] == [seeded[3]["id"], "F-000016"]
    assert records[0]["name"] == "changed"
    assert records[0]["modstamp"] > seeded[-1]["modstamp"]
    assert pull_all(conn, "customer", pages[-1].cursor) == []


def test_records_sharing_a_modstamp_across_page_boundaries_are_neither_lost_nor_repeated() -> None:
    conn = make(page_size=4)
    seeded = conn.vendor.insert("customer", [{"n": i} for i in range(14)])
    same = [r["id"] for r in seeded[2:12]]  # ten records, one modstamp, spanning three pages
    assert conn.touch_many("customer", same) == 10
    stamps = {r["id"]: r["modstamp"] for r in conn.vendor.records("customer")}
    assert len({stamps[i] for i in same}) == 1

    pages = pull_all(conn, "customer")
    pulled = ids_of(pages)
    assert sorted(pulled) == sorted(r["id"] for r in seeded)
    assert len(pulled) == len(set(pulled)) == 14
    # a run that crashes after any committed page resumes from its cursor: the rest, exactly
    for i, page in enumerate(pages):
        rest = ids_of(pull_all(conn, "customer", page.cursor))
        assert rest == ids_of(pages[i + 1 :])


def test_touch_many_with_distinct_modstamps() -> None:
    vendor = FakeVendor("vendor")
    seeded = vendor.insert("customer", [{"n": i} for i in range(3)])
    before = vendor.modstamp()
    vendor.touch_many("customer", [seeded[2]["id"], seeded[0]["id"], "F-404"], same_modstamp=False)
    records = vendor.records("customer")
    assert [r["id"] for r in records] == [seeded[1]["id"], seeded[2]["id"], seeded[0]["id"]]
    assert [r["modstamp"] for r in records[1:]] == [before + 1, before + 2]


def test_a_garbage_cursor_is_a_connector_error() -> None:
    conn = make()
    with pytest.raises(ConnectorError):
        pull_all(conn, "customer", "not-a-cursor")


def test_objects_are_separate_tables_with_their_own_ids() -> None:
    vendor = FakeVendor("vendor")
    vendor.insert("customer", [{"n": 1}])
    vendor.insert("order", [{"n": 1}, {"n": 2}])
    assert (vendor.count("customer"), vendor.count("order")) == (1, 2)
    assert [r["id"] for r in vendor.records("order")] == ["F-000001", "F-000002"]
    assert vendor.objects() == ["customer", "order"]


# --- get -------------------------------------------------------------------------------------


def test_get_returns_existing_records_in_order_and_leaves_missing_ones_out() -> None:
    conn = make(batch_size=2)
    seeded = conn.vendor.insert("customer", [{"name": f"c{i}"} for i in range(5)])
    got = conn.get("customer", [seeded[4]["id"], "F-999999", seeded[0]["id"], seeded[2]["id"]])
    assert [r["id"] for r in got] == [seeded[4]["id"], seeded[0]["id"], seeded[2]["id"]]
    assert got[0] == seeded[4]
    assert conn.calls["get"] == 2
    assert conn.get("customer", []) == []


# --- push ------------------------------------------------------------------------------------


def test_create_assigns_ids_and_bumps_modstamps() -> None:
    conn = make()
    results = conn.push("customer", [WriteOp(OpKind.CREATE, {"name": "a", "id": "ignored"}, key="k1"),
                                     WriteOp(OpKind.CREATE, {"name": "b"}, key="k2")])
    assert [(r.ok, r.external_id, r.created) for r in results] == [(True, "F-000001", True), (True, "F-000002", True)]
    records = conn.vendor.records("customer")
    assert [r["name"] for r in records] == ["a", "b"]
    assert records[0]["modstamp"] < records[1]["modstamp"]
    assert conn.calls["push"] == 1


def test_update_merges_fields_and_a_missing_record_is_rejected() -> None:
    conn = make()
    [seeded] = conn.vendor.insert("customer", [{"name": "a", "city": "Paris"}])
    results = conn.push("customer", [
        WriteOp(OpKind.UPDATE, {"name": "b"}, key="k1", external_id=seeded["id"]),
        WriteOp(OpKind.UPDATE, {"name": "c"}, key="k2", external_id="F-404040"),
    ])
    assert (results[0].ok, results[0].external_id, results[0].created) == (True, seeded["id"], False)
    assert not results[1].ok and isinstance(results[1].error, Rejected)
    assert "no such record" in results[1].error.reason
    [record] = conn.vendor.records("customer")
    assert (record["name"], record["city"]) == ("b", "Paris")
    assert record["modstamp"] > seeded["modstamp"]


def test_upsert_is_idempotent_on_the_key_field() -> None:
    conn = make()
    first = conn.push("customer", [upsert("cust-1", name="Acme")])
    again = conn.push("customer", [upsert("cust-1", name="Acme Ltd")])
    assert first[0].created and not again[0].created
    assert first[0].external_id == again[0].external_id
    [record] = conn.vendor.records("customer")
    assert record["hub_id"] == "cust-1"  # the key is written into the key field
    assert record["name"] == "Acme Ltd"


def test_upsert_twice_in_one_batch_and_onto_a_vendor_created_record() -> None:
    conn = make(key_field="ext_id")
    [seeded] = conn.vendor.insert("customer", [{"name": "seeded", "ext_id": "k-seed"}])
    results = conn.push("customer", [upsert("k-new", name="x"), upsert("k-new", name="y"),
                                     upsert("k-seed", name="matched")])
    assert [r.created for r in results] == [True, False, False]
    assert results[0].external_id == results[1].external_id
    assert results[2].external_id == seeded["id"]
    assert conn.vendor.count("customer") == 2
    assert conn.vendor.record("customer", seeded["id"])["name"] == "matched"


def test_a_batch_larger_than_batch_size_is_several_calls_with_one_result_per_op_in_order() -> None:
    conn = make(batch_size=200)
    ops = [upsert(f"k{i}", n=i) for i in range(450)]
    results = conn.push("customer", ops)
    assert conn.calls["push"] == math.ceil(450 / 200)
    assert len(results) == 450 and all(r.ok and r.created for r in results)
    by_id = {r["id"]: r for r in conn.vendor.records("customer")}
    assert [by_id[r.external_id]["n"] for r in results] == list(range(450))
    assert conn.push("customer", []) == [] and conn.calls["push"] == 3


def test_values_beyond_json_are_stored_as_text_and_unserialisable_ones_are_rejected() -> None:
    from datetime import date
    from decimal import Decimal

    conn = make()
    results = conn.push("customer", [upsert("a", amount=Decimal("1.50"), on=date(2024, 5, 1)),
                                     upsert("b", bad=object()), upsert("c", nan=float("nan"))])
    assert results[0].ok
    assert [r.ok for r in results[1:]] == [False, False]
    assert all(isinstance(r.error, Rejected) for r in results[1:])
    [record] = conn.vendor.records("customer")
    assert (record["amount"], record["on"]) == ("1.50", "2024-05-01")


# --- faults ----------------------------------------------------------------------------------


def outcomes(conn: FakeConnector, n: int) -> list[str]:
    seen = []
    for _ in range(n):
        try:
            conn.get("customer", ["F-000001"])
            seen.append("ok")
        except RateLimited as exc:
            assert exc.retry_after is not None and 0.01 <= exc.retry_after <= 0.05
            seen.append("rate_limited")
        except Unavailable:
            seen.append("unavailable")
    return seen


def test_faults_happen_at_the_configured_rates_and_are_deterministic_with_a_seed() -> None:
    faults = {"seed": 42, "rate_limit": 0.2, "unavailable": 0.1}
    first = outcomes(make("a", faults=faults), 2000)
    second = outcomes(make("b", faults=faults), 2000)
    assert first == second
    assert 0.16 < first.count("rate_limited") / 2000 < 0.24
    assert 0.07 < first.count("unavailable") / 2000 < 0.13
    other_seed = outcomes(make("c", faults={**faults, "seed": 43}), 2000)
    assert other_seed != first


def test_a_failed_call_applies_nothing_and_is_counted() -> None:
    conn = make(faults={"seed": 1, "rate_limit": 1.0})
    with pytest.raises(RateLimited):
        conn.push("customer", [upsert("k1", name="x")])
    assert conn.vendor.count("customer") == 0
    assert conn.calls["push"] == 1 and conn.injected["rate_limited"] == 1
    down = make("down", faults={"unavailable": 1.0})
    with pytest.raises(Unavailable):
        pull_all(down, "customer")


def test_latency_is_added_per_call() -> None:
    conn = make(faults={"latency_ms": 30})
    start = time.perf_counter()
    conn.get("customer", ["F-000001"])
    assert time.perf_counter() - start >= 0.03


def test_rejected_records_fail_alone_while_the_rest_of_the_batch_applies() -> None:
    conn = make(faults={"reject_field": "email", "reject_pattern": "@invalid"})
    results = conn.push("customer", [
        upsert("k1", email="a@example.com"),
        upsert("k2", email="b@invalid.test"),
        upsert("k3", email="c@example.com"),
    ])
    assert [r.ok for r in results] == [True, False, True]
    error = results[1].error
    assert isinstance(error, Rejected)
    assert error.reason.startswith("email ") and error.reason.endswith("is invalid (fake validation)")
    assert "b@invalid.test" in error.reason
    assert sorted(r["hub_id"] for r in conn.vendor.records("customer")) == ["k1", "k3"]
    assert conn.injected["rejected"] == 1


# --- shared state ----------------------------------------------------------------------------


def test_memory_state_is_shared_by_system_name_only() -> None:
    one, two, other = make("crm"), make("crm"), make("erp")
    one.push("customer", [upsert("k1", name="x")])
    assert [r["hub_id"] for r in two.vendor.records("customer")] == ["k1"]
    assert FakeVendor("crm").count("customer") == 1
    assert other.vendor.count("customer") == 0
    one.close()
    assert two.get("customer", ["F-000001"])[0]["name"] == "x"


def test_sqlite_file_state_is_shared_between_instances_and_survives_them(tmp_path: Path) -> None:
    path = str(tmp_path / "vendor.db")
    writer, reader = make("crm", state=path), make("other-name", state=path)
    writer.push("customer", [upsert(f"k{i}", n=i) for i in range(3)])
    assert ids_of(pull_all(reader, "customer")) == ["F-000001", "F-000002", "F-000003"]
    stamp = FakeVendor(path).modstamp()
    writer.close()
    reader.close()
    again = make("crm", state=path)
    result = again.push("customer", [upsert("k0", n=10), upsert("k9", n=9)])
    assert [(r.external_id, r.created) for r in result] == [("F-000001", False), ("F-000004", True)]
    assert min(r["modstamp"] for r in again.get("customer", ["F-000001", "F-000004"])) > stamp
    assert FakeVendor.file(path).count("customer") == 4
    again.close()


def _child(code: str, path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent(f"""
        from connectors.base import OpKind, WriteOp
        from connectors.fake import FakeConnector
        from hub.config.model import System
        conn = FakeConnector(System("child", "fake", options={{"state": {path!r}, "batch_size": 100}}))
    """) + textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)


def test_another_process_sees_the_same_vendor(tmp_path: Path) -> None:
    path = str(tmp_path / "vendor.db")
    FakeVendor(path).insert("customer", [{"name": "seeded", "hub_id": "k-seed"}])
    child = _child("""
        conn.push("customer", [WriteOp(OpKind.UPSERT, {"name": "child"}, key="k-seed"),
                               WriteOp(OpKind.UPSERT, {"name": "new"}, key="k-new")])
    """, path)
    assert child.wait(timeout=60) == 0
    records = FakeVendor(path).records("customer")
    assert [(r["id"], r["name"]) for r in records] == [("F-000001", "child"), ("F-000002", "new")]


def test_a_sigkilled_writer_leaves_only_whole_batches(tmp_path: Path) -> None:
    path = str(tmp_path / "vendor.db")
    vendor = FakeVendor(path)
    child = _child("""
        i = 0
        while True:
            conn.push("customer", [WriteOp(OpKind.CREATE, {"n": i + j}, key=str(i + j)) for j in range(300)])
            i += 300
    """, path)
    deadline = time.monotonic() + 30
    while vendor.count("customer") < 1000 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    count = vendor.count("customer")
    assert count >= 1000 and count % 100 == 0  # one transaction per API call of batch_size
    records = vendor.records("customer")
    assert [r["n"] for r in sorted(records, key=lambda r: r["id"])] == list(range(count))
    assert vendor.modstamp() == max(r["modstamp"] for r in records)
    after = FakeVendor(path).insert("customer", [{"n": "after"}])
    assert after[0]["id"] == f"F-{count + 1:06d}"


# --- webhooks --------------------------------------------------------------------------------


def webhook_request(body: bytes, signature: str | None, header: str = "X-Fake-Signature") -> WebhookRequest:
    headers = {} if signature is None else {header: signature}
    return WebhookRequest("POST", "/webhooks/vendor", headers, {}, body)


def test_a_signed_webhook_yields_its_events() -> None:
    conn = make(webhook={"secret": Secret(SECRET, "${FAKE_SECRET}")})
    body = json.dumps({"events": [{"id": "e1", "object": "customer", "record_id": "F-000001"},
                                  {"id": 2, "object": "order", "record_id": "F-000009", "kind": "deleted"}]}).encode()
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == expected
    for header in ("X-Fake-Signature", "x-fake-signature"):
        reply = conn.webhook(webhook_request(body, expected, header))
        assert reply.status == 200 and json.loads(reply.body) == {"ok": True}
        assert [(e.event_id, e.object, e.external_id, e.kind) for e in reply.events] == [
            ("e1", "customer", "F-000001", "changed"), ("2", "order", "F-000009", "deleted")]
    helper = conn.webhook(signed_request(SECRET, [{"id": "e3", "object": "customer", "record_id": "F-1"}]))
    assert helper.status == 200 and helper.events[0].event_id == "e3"


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "deadbeef", "é" * 64])
def test_a_bad_or_missing_signature_is_a_401_with_no_events(signature: str | None) -> None:
    conn = make(webhook={"secret": SECRET})
    body = json.dumps({"events": [{"id": "e1", "object": "customer", "record_id": "F-000001"}]}).encode()
    reply = conn.webhook(webhook_request(body, signature))
    assert reply.status == 401 and reply.events == []


def test_without_a_configured_secret_every_webhook_is_refused() -> None:
    conn = make()
    body = b'{"events": []}'
    assert conn.webhook(webhook_request(body, sign("anything", body))).status == 401


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe", b"[]", b'{"events": {}}', b'{"events": [1]}',
    b'{"events": [{"id": "e1", "object": "customer"}]}',
    b'{"events": [{"id": null, "object": "customer", "record_id": "F-1"}]}',
    b'{"events": [{"id": "e1", "object": "customer", "record_id": "F-1", "payload": []}]}',
    b"[" * 100_000,
])
def test_a_malformed_body_is_a_400_never_an_exception(body: bytes) -> None:
    conn = make(webhook={"secret": SECRET})
    reply = conn.webhook(webhook_request(body, sign(SECRET, body)))
    assert reply.status == 400 and reply.events == []
