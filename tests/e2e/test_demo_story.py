"""The business story of DESIGN.md end to end, over real HTTP on loopback: the Salesforce,
Odoo and DingTalk sandboxes, the hub's service with its webhooks and worker, approvals
decided in the OA, and the outcomes back in the ERP and the CRM (what `synchub demo` plays)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.demo.stage import Stage, start
from hub.demo.story import Outcome, play, record, state_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stage, Outcome, list[str]]]:
    folder: Path = tmp_path_factory.mktemp("demo")
    stage = start(port=0, records=12, store_url=f"sqlite:///{folder / 'hub.db'}")
    said: list[str] = []
    try:
        outcome = play(stage, said.append)
        yield stage, outcome, said
    finally:
        stage.close()


def test_customers_edited_on_either_side_reach_the_other(played: tuple[Stage, Outcome, list[str]]) -> None:
    stage, out, _ = played
    partner = record(stage, "erp", "res.partner", out.partner_id) or {}
    account = record(stage, "crm", "Account", out.account_id) or {}
    assert partner["phone"] == "+862160008888"
    assert account["Credit_Limit__c"] == 500000.0
    # matched on day one by tax id, not created twice on either side
    assert len(stage.records("crm", "Account")) == len(stage.records("erp", "res.partner")) == 12


def test_won_deals_became_orders_whose_approval_decided_their_fate(played: tuple[Stage, Outcome, list[str]]) -> None:
    stage, out, _ = played
    approved, refused = out.orders["agree"], out.orders["refuse"]
    assert (record(stage, "erp", "sale.order", approved) or {})["state"] == "sale"
    assert (record(stage, "erp", "sale.order", refused) or {})["state"] == "cancel"
    assert (record(stage, "crm", "Opportunity", out.deals["agree"]) or {})["StageName"] == "Closed Won"
    assert (record(stage, "crm", "Opportunity", out.deals["refuse"]) or {})["StageName"] == "Closed Lost"
    lines = (record(stage, "erp", "sale.order", approved) or {})["order_line"]
    assert len(lines) == 2  # the deal's products, found in the ERP by their code


def test_the_approved_leave_reached_the_erp(played: tuple[Stage, Outcome, list[str]]) -> None:
    stage, out, _ = played
    leave = record(stage, "erp", "hr.leave", out.leave_id) or {}
    assert leave["state"] == "validate"
    assert "陈静" in str(leave["employee_id"])


def test_nothing_was_dead_lettered_and_the_queue_drained(played: tuple[Stage, Outcome, list[str]]) -> None:
    stage, _, said = played
    with stage.store.transaction() as tx:
        depth = tx.queue_depth()
    assert depth.get("dead", 0) == 0
    assert depth.get("queued", 0) == 0
    table = {(system, what): count for system, what, count in state_table(stage)}
    assert table[("ERP (Odoo)", "Sales orders")] == "2 (cancel: 1, sale: 1)"
    assert any("Closed Won in the CRM" in line for line in said)
