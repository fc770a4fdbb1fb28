"""The sync pipeline end to end between two fake systems: what lands where, and what does not."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from harness import Hub, contact

from hub.engine.page import PageWork
from hub.engine.worker import Worker, flow_job
from hub.mapping import load_mapping


def partners(hub: Hub) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["hub_id"]: r for r in hub.erp.records("partner")}


def test_first_run_creates_every_record_in_the_target(hub: Hub) -> None:
    hub.crm.insert("contact", [contact(i) for i in range(120)])
    report = hub.sync("customers-crm-to-erp")
    assert report.status == "ok"
    assert (report.counts.pulled, report.counts.created, report.counts.updated) == (120, 120, 0)
    created = hub.erp.records("partner")
    assert len(created) == 120
    assert len({r["hub_id"] for r in created}) == 120
    first = next(r for r in created if r["vat"] == "913100000000000007")
    assert first["display_name"] == "客户 00007 有限公司"
    assert first["credit_limit"] == 1007.0


def test_second_run_pulls_nothing_and_full_rerun_writes_nothing(hub: Hub) -> None:
    hub.crm.insert("contact", [contact(i) for i in range(60)])
    hub.sync("customers-crm-to-erp")
    writes_before = hub.erp.modstamp()
    again = hub.sync("customers-crm-to-erp")
    assert again.counts.pulled == 0
    full = hub.sync("customers-crm-to-erp", full=True)
    assert (full.counts.pulled, full.counts.unchanged, full.counts.created, full.counts.updated) == (60, 60, 0, 0)
    assert hub.erp.modstamp() == writes_before


def test_a_change_in_the_source_updates_only_that_record(hub: Hub) -> None:
    made = hub.crm.insert("contact", [contact(i) for i in range(10)])
    hub.sync("customers-crm-to-erp")
    hub.crm.update("contact", made[3]["id"], {"email": "new@example.cn", "updated": "2026-02-01T00:00:00Z"})
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.pulled, report.counts.updated, report.counts.created) == (1, 1, 0)
    assert [p["mail"] for p in hub.erp.records("partner") if p["vat"] == "913100000000000003"] == ["new@example.cn"]


def test_two_way_flows_do_not_ping_pong(hub: Hub) -> None:
    hub.crm.insert("contact", [contact(i) for i in range(30)])
    hub.sync("customers-crm-to-erp")
    back = hub.sync("customers-erp-to-crm")
    assert back.counts.skipped_echo == 30
    assert (back.counts.created, back.counts.updated) == (0, 0)
    assert hub.crm.count("contact") == 30
    again = hub.sync("customers-crm-to-erp")
    assert again.counts.pulled == 0


def test_owner_fields_win_and_the_decision_is_audited(hub: Hub) -> None:
    made = hub.crm.insert("contact", [contact(1)])
    hub.sync("customers-crm-to-erp")
    partner = hub.erp.records("partner")[0]
    hub.erp.update("partner", partner["id"], {"credit_limit": 50000.0, "write_date": "2026-03-01T00:00:00Z"})
    hub.sync("customers-erp-to-crm")
    assert hub.crm.records("contact")[0]["credit"] == 50000.0
    hub.crm.update("contact", made[0]["id"], {"credit": 1.0, "email": "changed@example.cn",
                                              "updated": "2026-04-01T00:00:00Z"})
    report = hub.sync("customers-crm-to-erp")
    assert report.counts.updated == 1
    now = hub.erp.records("partner")[0]
    assert now["credit_limit"] == 50000.0  # the ERP owns credit limits
    assert now["mail"] == "changed@example.cn"  # the newest e-mail wins
    with hub.store.transaction() as tx:
        decisions = [a.detail for a in tx.audit_recent(50) if a.action == "conflict"]
    assert {"field": "credit_limit", "kept_from": "erp", "rejected_from": "crm", "rule": "owner",
            "flow": "customers-crm-to-erp"} in decisions


def test_records_already_on_both_sides_are_matched_not_duplicated(hub: Hub) -> None:
    hub.erp.insert("partner", [{"display_name": "Existing GmbH", "vat": "DE123456789", "mail": "ap@existing.de",
                                "write_date": "2026-01-01T00:00:00Z"}, {"display_name": "Only In ERP", "vat": "X1"}])
    hub.crm.insert("contact", [{"name": "Existing GmbH (CRM)", "tax_id": "de 123 456 789",
                                "updated": "2026-05-01T00:00:00Z"}])
    indexed = hub.sync("customers-erp-to-crm", index_only=True)
    assert indexed.counts.pulled == 2 and hub.crm.count("contact") == 1
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.created, report.counts.updated) == (0, 1)
    assert hub.erp.count("partner") == 2
    back = hub.sync("customers-erp-to-crm")
    # "Only In ERP" reaches the CRM, no duplicate; the matched contact gets the e-mail only the ERP had
    assert (back.counts.created, back.counts.updated) == (1, 1)
    contacts = sorted(hub.crm.records("contact"), key=lambda c: c["name"])
    assert [c["name"] for c in contacts] == ["Existing GmbH (CRM)", "Only In ERP"]
    assert contacts[0]["email"] == "ap@existing.de"


def test_a_system_that_lost_a_conflict_gets_the_golden_value_from_echoes(hub: Hub) -> None:
    # The CRM's credit limit loses to the ERP's (the ERP owns it) when the hub matches the two.
    # The flow that writes to the CRM then sees nothing but the ERP's records as the hub knows
    # them: they are not news, but the CRM must still be brought to the golden record.
    hub.erp.insert("partner", [{"display_name": "Shared GmbH", "vat": "DE111", "credit_limit": 0.0,
                                "write_date": "2026-01-01T00:00:00Z"}])
    hub.crm.insert("contact", [{"name": "Shared GmbH", "tax_id": "DE111", "credit": 5000.0,
                                "updated": "2026-01-01T00:00:00Z"}])
    hub.sync("customers-erp-to-crm", index_only=True)
    hub.sync("customers-crm-to-erp")
    back = hub.sync("customers-erp-to-crm")
    assert back.counts.updated == 1
    [contact_now], [partner_now] = hub.crm.records("contact"), hub.erp.records("partner")
    assert contact_now["credit"] == partner_now["credit_limit"] == 0.0
    again = hub.sync("customers-crm-to-erp")  # the CRM's echo of that write changes nothing
    assert (again.counts.created, again.counts.updated) == (0, 0)


def test_a_record_the_hub_only_read_is_not_rewritten_with_its_own_values(hub: Hub) -> None:
    # A customer both systems already hold alike: matching it must not cost a write to either.
    same = {"vat": "DE222", "mail": "ap@same.de", "credit_limit": 10.0, "payment_terms": "Net 30"}
    hub.erp.insert("partner", [{"display_name": "Same AG", **same, "write_date": "2026-01-01T00:00:00Z"}])
    hub.crm.insert("contact", [{"name": "Same AG", "tax_id": "DE222", "email": "ap@same.de", "credit": 10.0,
                                "terms": "Net 30", "updated": "2026-01-01T00:00:00Z"}])
    hub.sync("customers-erp-to-crm", index_only=True)
    there = hub.sync("customers-crm-to-erp")
    back = hub.sync("customers-erp-to-crm")
    assert (there.counts.created, there.counts.updated, back.counts.created, back.counts.updated) == (0, 0, 0, 0)
    assert hub.crm.count("contact") == hub.erp.count("partner") == 1


def test_a_crash_after_the_push_does_not_make_the_opposite_flow_copy_the_record_back(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hub dies after creating the ERP's customer in the CRM, before committing the page.
    # The CRM's new contact (carrying the hub's key) then comes through the opposite flow
    # before the page is redone: it must be recognised, not taken for a new customer and
    # copied into the ERP, and from there back into the CRM.
    hub.erp.insert("partner", [{"display_name": "Neu GmbH", "vat": "DE333", "mail": "ap@neu.de"}])

    def killed(self: PageWork, tx: Any) -> None:
        raise RuntimeError("killed between the push and the commit")

    with monkeypatch.context() as patch:
        patch.setattr(PageWork, "write", killed)
        with pytest.raises(RuntimeError):
            hub.sync("customers-erp-to-crm")
    assert hub.crm.count("contact") == 1  # the push happened
    hub.sync("customers-crm-to-erp")
    hub.sync("customers-erp-to-crm")
    hub.sync("customers-crm-to-erp")
    assert (hub.crm.count("contact"), hub.erp.count("partner")) == (1, 1)


def test_two_records_of_one_system_never_share_a_canonical_record(hub: Hub) -> None:
    hub.erp.insert("partner", [{"display_name": "A", "mail": "shared@example.cn"},
                               {"display_name": "B", "mail": "shared@example.cn"}])
    report = hub.sync("customers-erp-to-crm")
    assert report.counts.created == 2
    assert len({c["hub_id"] for c in hub.crm.records("contact")}) == 2


def test_an_ambiguous_match_links_nothing_and_is_reported(hub: Hub) -> None:
    hub.faults("crm", reject_field="name", reject_pattern="DUP")  # so that neither has a CRM twin yet
    hub.erp.insert("partner", [{"display_name": "DUP A", "mail": "shared@example.cn"},
                               {"display_name": "DUP B", "mail": "shared@example.cn"}])
    hub.sync("customers-erp-to-crm")
    hub.faults("crm")
    hub.crm.insert("contact", [{"name": "Who?", "email": "shared@example.cn"}, contact(2)])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.dead, report.counts.created) == (1, 1)
    ambiguous = [j for j in hub.jobs("dead") if "ambiguous" in (j.last_error or "")]
    assert len(ambiguous) == 1
    assert ambiguous[0].last_error.startswith("ambiguous match, nothing linked: contacts.email 'shared@example.cn' "
                                              "matches 2 records")


def test_a_bad_record_is_dead_lettered_and_the_rest_go_on(hub: Hub) -> None:
    hub.crm.insert("contact", [contact(1), {"name": "   ", "email": "x@example.cn"}, contact(3, email="not-an-email")])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.created, report.counts.dead, report.status) == (1, 2, "partial")
    reasons = sorted(j.last_error for j in hub.jobs("dead"))
    assert reasons[0].startswith("contacts.email: 'not-an-email'")
    assert reasons[1] == "name: is required but empty (from name)"
    again = hub.sync("customers-crm-to-erp", full=True)
    assert len(hub.jobs("dead")) == 2 and again.counts.dead == 2  # counted again, stored once


def test_a_vendor_rejection_is_dead_lettered_with_its_message(hub: Hub) -> None:
    hub.faults("erp", reject_field="display_name", reject_pattern="INVALID")
    hub.crm.insert("contact", [contact(1), contact(2, name="INVALID Co"), contact(3)])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.created, report.counts.dead) == (2, 1)
    [dead] = hub.jobs("dead")
    assert dead.last_error.startswith("rejected by erp:")
    assert dead.payload["target"] == "erp"


def test_rate_limits_and_outages_are_retried_in_call(hub: Hub) -> None:
    hub.faults("erp", seed=7, rate_limit=0.2, unavailable=0.1)
    hub.faults("crm", seed=8, rate_limit=0.2)
    hub.crm.insert("contact", [contact(i) for i in range(200)])
    report = hub.sync("customers-crm-to-erp")
    assert report.counts.dead == 0
    # A push that fails half-way is retried whole: records already written count as updated;
    # a batch unlucky six times in a row is parked for the worker, not lost.
    assert report.counts.created + report.counts.updated + report.counts.failed == 200
    assert report.counts.failed < 200
    with hub.store.transaction() as tx:
        tx.make_due_now()
    worker = hub.worker()
    while worker.run_once():
        pass
    assert hub.erp.count("partner") == 200
    assert len({p["hub_id"] for p in hub.erp.records("partner")}) == 200


def test_a_long_outage_parks_records_and_the_worker_finishes_them(hub: Hub) -> None:
    hub.faults("erp", seed=1, unavailable=1.0)
    hub.crm.insert("contact", [contact(i) for i in range(25)])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.failed, report.counts.created) == (25, 0)
    assert len(hub.jobs("queued")) == 25
    hub.faults("erp")
    worker = hub.worker()
    with hub.store.transaction() as tx:
        tx.make_due_now()
    while worker.run_once():
        pass
    assert hub.erp.count("partner") == 25
    assert hub.jobs("queued") == []


def test_an_order_waits_for_its_customer(hub: Hub) -> None:
    [customer] = hub.crm.insert("contact", [contact(1)])
    hub.crm.insert("deal", [{"number": "D-1", "contact_id": customer["id"], "amount": "99.5", "stage": "won",
                             "items": [{"sku": "A", "qty": 2, "price": 49.75}]}])
    first = hub.sync("orders-crm-to-erp")
    assert first.counts.waiting == 1 and hub.erp.count("sale") == 0
    hub.sync("customers-crm-to-erp")
    with hub.store.transaction() as tx:
        tx.make_due_now()
    worker = hub.worker()
    while worker.run_once():
        pass
    [sale] = hub.erp.records("sale")
    partner = hub.erp.records("partner")[0]
    assert sale["contact_id"] == partner["id"]
    assert sale["items"] == [{"sku": "A", "qty": 2.0, "price": 49.75}]
    assert sale["stage"] == "won"


def test_a_record_job_that_still_waits_is_retried_as_itself_until_it_dies(hub: Hub) -> None:
    # The job's own run must not queue a second job for its record: the worker retries the job
    # (putting it back used to break the queue's unique index and kill the worker thread), and
    # its attempts run out, so that a reference that never comes ends in the dead-letter queue.
    [customer] = hub.crm.insert("contact", [contact(1)])
    hub.crm.insert("deal", [{"number": "D-1", "contact_id": customer["id"], "amount": "1", "stage": "won"}])
    assert hub.sync("orders-crm-to-erp").counts.waiting == 1
    [job] = hub.jobs("queued")
    worker = hub.worker()
    for attempt in range(1, 5):  # the flow allows 5 attempts
        with hub.store.transaction() as tx:
            tx.make_due_now()
        assert worker.run_once()
        assert [(j.id, j.attempts) for j in hub.jobs("queued")] == [(job.id, attempt)]
    with hub.store.transaction() as tx:
        tx.make_due_now()
    assert worker.run_once()
    assert hub.jobs("queued") == []
    [dead] = hub.jobs("dead")
    assert dead.id == job.id and "gave up after 5 attempts" in (dead.last_error or "")
    assert "customer" in (dead.last_error or "")


def test_a_job_running_past_its_lease_keeps_it(hub: Hub) -> None:
    # A flow run can outlast any fixed lease: the worker renews it while the run goes on, so
    # that no other worker claims the job a second time (and a dead worker's job is taken over
    # soon, since the lease itself is short).
    hub.crm.insert("contact", [contact(i) for i in range(60)])
    for system in ("crm", "erp"):
        hub.faults(system, latency_ms=400)  # every call 0.4 s: the run takes well over the lease
    with hub.store.transaction() as tx:
        tx.enqueue([flow_job("customers-crm-to-erp", "test")])
    worker = Worker(hub.engine, hub.store, owner="slow", lease_seconds=0.6, retry_base=0.0)
    running = threading.Thread(target=worker.run_once)
    running.start()
    time.sleep(1.2)
    assert running.is_alive(), "the run ended before its lease did: the test proves nothing"
    with hub.store.transaction() as tx:
        assert tx.claim("other", 0.6) is None
    running.join(timeout=60)
    assert [j.kind for j in hub.jobs("done")] == ["flow"]
    assert hub.erp.count("partner") == 60


def test_record_jobs_due_together_run_as_one_page(hub: Hub) -> None:
    # After an outage hundreds of orders may wait for their customers; one run per record, each
    # with its own vendor calls, would hold every flow up for minutes.
    customers = hub.crm.insert("contact", [contact(i) for i in range(30)])
    hub.crm.insert("deal", [{"number": f"D-{n}", "contact_id": c["id"], "amount": "1", "stage": "won"}
                            for n, c in enumerate(customers)])
    assert hub.sync("orders-crm-to-erp").counts.waiting == 30
    hub.sync("customers-crm-to-erp")
    with hub.store.transaction() as tx:
        tx.make_due_now()
    assert hub.worker().run_once()
    assert hub.erp.count("sale") == 30
    assert hub.jobs("queued") == []
    with hub.store.transaction() as tx:
        retries = [r for r in tx.runs_recent(limit=10) if r.trigger != "manual"]
    assert [(r.pulled, r.created) for r in retries] == [(30, 30)]


def test_dry_run_writes_nothing_and_shows_the_diff(hub: Hub) -> None:
    made = hub.crm.insert("contact", [contact(i) for i in range(3)])
    hub.sync("customers-crm-to-erp")
    hub.crm.update("contact", made[0]["id"], {"name": "Renamed Ltd", "updated": "2026-06-01T00:00:00Z"})
    hub.crm.insert("contact", [contact(9)])
    stamp = hub.erp.modstamp()
    report = hub.sync("customers-crm-to-erp", dry_run=True)
    assert hub.erp.modstamp() == stamp
    ops = sorted((p.op, p.external_id is None) for p in report.planned)
    assert ops == [("update", False), ("upsert", True)]
    update = next(p for p in report.planned if p.op == "update")
    assert update.diff == {"display_name": ("客户 00000 有限公司", "Renamed Ltd")}
    real = hub.sync("customers-crm-to-erp")
    assert (real.counts.created, real.counts.updated) == (1, 1)


def test_dead_letters_can_be_replayed_after_the_data_is_fixed(hub: Hub) -> None:
    made = hub.crm.insert("contact", [contact(1, email="broken")])
    hub.sync("customers-crm-to-erp")
    [dead] = hub.jobs("dead")
    hub.crm.update("contact", made[0]["id"], {"email": "fixed@example.cn"})
    with hub.store.transaction() as tx:
        assert tx.replay([dead.id]) == 1
    worker = hub.worker()
    while worker.run_once():
        pass
    assert hub.jobs("dead") == []
    assert [p["mail"] for p in hub.erp.records("partner")] == ["fixed@example.cn"]


def test_equal_timestamps_across_a_page_boundary_lose_nothing(hub: Hub) -> None:
    made = hub.crm.insert("contact", [contact(i) for i in range(120)])
    hub.sync("customers-crm-to-erp")
    ids = [r["id"] for r in made[40:110]]
    for rid in ids:
        hub.crm.update("contact", rid, {"terms": "Net 60"})
    hub.crm.touch_many("contact", ids, same_modstamp=True)
    report = hub.sync("customers-crm-to-erp")
    assert report.counts.pulled == 70
    assert sum(1 for p in hub.erp.records("partner") if p["payment_terms"] == "Net 60") == 70


def test_records_the_source_mapping_does_not_take_are_skipped_and_counted(hub: Hub) -> None:
    """A mapping's `only` (e.g. only won deals are orders) leaves other records out, not dead."""
    flow = hub.config.flows["customers-crm-to-erp"]
    copy = hub.tmp / "contact.customer.yaml"
    copy.write_text(Path(flow.source.mapping.file).read_text("utf-8") + "\nonly: {field: kind, not_equals: lead}\n",
                    "utf-8")
    source = replace(flow.source, mapping=load_mapping(copy))
    hub.config.flows["customers-crm-to-erp"] = replace(flow, source=source)
    hub.crm.insert("contact", [contact(1), contact(2, kind="lead"), contact(3)])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.created, report.counts.skipped, report.counts.dead) == (2, 1, 0)
    assert hub.erp.count("partner") == 2
    with hub.store.transaction() as tx:
        run = tx.run_get(report.run_id or 0)
    assert run is not None and run.skipped == 1


def test_an_update_only_target_writes_to_linked_records_and_creates_none(hub: Hub) -> None:
    """`create: false`: an approval's decision goes onto its order, never into a new record."""
    flow = hub.config.flows["customers-crm-to-erp"]
    hub.crm.insert("contact", [contact(1), contact(2)])
    assert hub.sync("customers-crm-to-erp").counts.created == 2  # both now linked in the ERP
    hub.config.flows["customers-crm-to-erp"] = replace(flow, targets=(replace(flow.targets[0], create=False),))
    [first, *_] = hub.crm.records("contact")
    hub.crm.update("contact", first["id"], {"email": "changed@example.cn"})
    hub.crm.insert("contact", [contact(3)])
    report = hub.sync("customers-crm-to-erp")
    assert (report.counts.created, report.counts.updated) == (0, 1)
    assert hub.erp.count("partner") == 2
    assert "changed@example.cn" in [p["mail"] for p in hub.erp.records("partner")]
