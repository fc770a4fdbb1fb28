"""The business story of DESIGN.md, played on the demo stage, step by step.

Each step acts as a user of one product would (an edit in the CRM, a deal won, an approver's
decision in the OA), through that product's own API, then waits until the hub has carried
the change to the other products, and says what moved where. Nothing here calls the hub's
sync directly except the first full sync of the customers, which is what an admin does on
day one; everything after that travels through the vendors' webhooks and the hub's worker.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from connectors.base import OpKind, WriteOp
from hub.demo.stage import Stage
from hub.errors import SynchubError

T = TypeVar("T")
Say = Callable[[str], None]

APPROVER_COMMENTS = {"agree": "合同条款已审核，同意签署。", "refuse": "付款条件不符合公司政策，驳回。"}


class DemoFailed(SynchubError):
    """A step of the story did not happen in time; the message says which and what was seen."""


@dataclass
class Outcome:
    """What the story did, for the closing table and for the end-to-end test."""

    account_id: str = ""
    partner_id: str = ""
    deals: dict[str, str] = field(default_factory=dict)        # decision -> Opportunity id
    orders: dict[str, str] = field(default_factory=dict)       # decision -> sale.order id
    instances: dict[str, str] = field(default_factory=dict)    # decision -> DingTalk instance id
    leave_instance: str = ""
    leave_id: str = ""


def wait_for(check: Callable[[], T | None], what: str, say: Say, timeout: float = 45.0) -> T:
    """Poll `check` until it gives a value; report progress every few seconds."""
    started = last = time.monotonic()
    while True:
        value = check()
        if value:
            return value
        now = time.monotonic()
        if now - started > timeout:
            raise DemoFailed(f"gave up after {timeout:.0f} s waiting for {what}")
        if now - last >= 3:
            say(f"      … still waiting for {what} ({now - started:.0f} s)")
            last = now
        time.sleep(0.2)


# --- lookups -------------------------------------------------------------------------------


def canonical_of(stage: Stage, system: str, obj: str, external_id: str, entity: str) -> str | None:
    with stage.store.transaction() as tx:
        link = tx.links_by_external(system, obj, [external_id], entity).get(external_id)
    return link.canonical_id if link else None


def counterpart(stage: Stage, system: str, obj: str, external_id: str, entity: str, target: str) -> str | None:
    """The id in `target` of the record `external_id` of `system`, once the hub has linked both."""
    canonical = canonical_of(stage, system, obj, external_id, entity)
    if canonical is None:
        return None
    with stage.store.transaction() as tx:
        link = tx.links_for_entity(target, entity, [canonical]).get(canonical)
    return link.external_id if link else None


def record(stage: Stage, system: str, obj: str, external_id: str) -> dict[str, Any] | None:
    found = stage.connector(system).get(obj, [external_id])
    return found[0] if found else None


def push_one(stage: Stage, system: str, obj: str, op: WriteOp) -> str:
    [result] = stage.connector(system).push(obj, [op])
    if not result.ok or not result.external_id:
        raise DemoFailed(f"{system} refused the demo's {op.kind.value} of {obj}: {result.error}")
    return result.external_id


# --- the five steps ------------------------------------------------------------------------


def customers(stage: Stage, say: Say, out: Outcome) -> None:
    say("1. Customers: the CRM's accounts and the ERP's customer master become one")
    learned = stage.engine.run_flow("customers-erp-to-crm", trigger="demo", index_only=True).counts
    say(f"   Day one: the hub first learns the ERP's {learned.pulled} customers (`synchub sync --index`), "
        "so that customers already on both sides are matched, not created twice")
    for flow, label in (("customers-crm-to-erp", "CRM → ERP"), ("customers-erp-to-crm", "ERP → CRM")):
        counts = stage.engine.run_flow(flow, trigger="demo").counts
        say(f"   {label}: {counts.pulled} read, {counts.created} created, {counts.updated} updated, "
            f"{counts.unchanged} already equal, {counts.skipped_echo} recognised as the hub's own writes (echoes), "
            f"{counts.dead} dead-lettered")
    # The vendors stamp changes to the second and the hub breaks a tie of timestamps by system
    # priority; a user's edit comes a moment after the first sync, not within the same second.
    time.sleep(1.1)
    account = stage.records("crm", "Account")[0]
    out.account_id = account["Id"]
    out.partner_id = wait_for(lambda: counterpart(stage, "crm", "Account", out.account_id, "customer", "erp"),
                              "the account's ERP partner", say)
    say(f"   A sales rep edits {account['Name']} in the CRM: new phone +86 21 6000 8888")
    stage.connector("crm").push("Account", [WriteOp(OpKind.UPDATE, {"Phone": "+86 21 6000 8888"}, "demo",
                                                    out.account_id)])
    wait_for(lambda: (record(stage, "erp", "res.partner", out.partner_id) or {}).get("phone") == "+862160008888",
             "the phone to reach the ERP partner", say)
    say(f"   → the ERP partner {out.partner_id} has it, through the CRM's outbound message")
    say("   Finance sets a credit limit of 500,000 on the partner in the ERP")
    stage.connector("erp").push("res.partner", [WriteOp(OpKind.UPDATE, {"credit_limit": 500000.0}, "demo",
                                                        out.partner_id)])
    wait_for(lambda: float((record(stage, "crm", "Account", out.account_id) or {}).get("Credit_Limit__c") or 0)
             == 500000.0, "the credit limit to reach the CRM", say)
    say("   → the CRM account shows it (the ERP owns credit limits)")


def deals_won(stage: Stage, say: Say, out: Outcome) -> None:
    say("2. Two deals are won in the CRM and become sales orders in the ERP")
    from connectors.salesforce.sandbox import PRODUCTS  # the sandbox's catalogue: the demo is its user

    products = list(PRODUCTS.items())
    close = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    for n, decision in enumerate(("agree", "refuse")):
        name = f"年度设备采购 {'A' if n == 0 else 'B'}"
        deal = push_one(stage, "crm", "Opportunity", WriteOp(OpKind.CREATE, {
            "Name": name, "AccountId": out.account_id, "StageName": "Negotiation/Review", "CloseDate": close,
            "Amount": 0, "CurrencyIsoCode": "CNY"}, f"demo-deal-{n}"))
        for line, (product_id, product) in enumerate(products[n * 2: n * 2 + 2]):
            push_one(stage, "crm", "OpportunityLineItem", WriteOp(OpKind.CREATE, {
                "OpportunityId": deal, "Product2Id": product_id, "Quantity": float(2 + line), "UnitPrice": product.price},
                f"demo-line-{n}-{line}"))
        stage.connector("crm").push("Opportunity", [WriteOp(OpKind.UPDATE, {"StageName": "Closed Won"}, "demo", deal)])
        out.deals[decision] = deal
        say(f"   {name}: Closed Won in the CRM")
    for decision, deal in out.deals.items():
        order = wait_for(lambda d=deal: counterpart(stage, "crm", "Opportunity", d, "order", "erp"),  # type: ignore[misc]
                         "the won deal's ERP sales order", say)
        out.orders[decision] = order
        so = record(stage, "erp", "sale.order", order) or {}
        say(f"   → ERP sales order {so.get('name')} (quotation, {len(so.get('order_line') or [])} lines, "
            f"total {so.get('amount_total')})")


def contract_approvals(stage: Stage, say: Say, out: Outcome) -> None:
    say("3. Each new sales order opens a contract approval in the OA")
    for decision, order in out.orders.items():
        instance = wait_for(lambda o=order: counterpart(stage, "erp", "sale.order", o, "approval", "oa"),  # type: ignore[misc]
                            "the contract approval in the OA", say)
        out.instances[decision] = instance
        shown = record(stage, "oa", "contract", instance) or {}
        say(f"   → DingTalk approval {instance}: {shown.get('title')} ({shown.get('status')})")


def decisions(stage: Stage, say: Say, out: Outcome) -> None:
    say("4. The approver decides in the OA; the ERP order is released or cancelled, the CRM deal follows")
    for decision, instance in out.instances.items():
        approve_all(stage, say, instance, decision, APPROVER_COMMENTS[decision])
    for decision, state, stage_name in (("agree", "sale", "Closed Won"), ("refuse", "cancel", "Closed Lost")):
        order = out.orders[decision]
        wait_for(lambda o=order, s=state: (record(stage, "erp", "sale.order", o) or {}).get("state") == s,  # type: ignore[misc]
                 f"the ERP order to become '{state}'", say)
        deal = out.deals[decision]
        wait_for(lambda d=deal, n=stage_name: (record(stage, "crm", "Opportunity", d) or {}).get("StageName") == n,  # type: ignore[misc]
                 f"the CRM deal to show {stage_name}", say)
        say(f"   → ERP order {order}: {state}; CRM deal {deal}: {stage_name}")


def approve_all(stage: Stage, say: Say, instance: str, decision: str, comment: str) -> None:
    """Each approver of the chain in turn decides, until the instance is finished."""
    for _ in range(10):  # an approval chain is a handful of people
        shown = stage.sandbox_call("oa", f"instances/{instance}/decide", {"action": decision, "comment": comment})
        state = shown.get("instance") or {}
        last = (state.get("operationRecords") or [{}])[-1]
        who = last.get("showName") or last.get("userId") or "the approver"
        say(f"   {who} {'agrees' if decision == 'agree' else 'refuses'} in DingTalk: “{comment}”")
        if state.get("status") != "RUNNING":
            return
    raise DemoFailed(f"the approval {instance} is still running after ten decisions")


def leave_request(stage: Stage, say: Say, out: Outcome) -> None:
    say("5. A leave request approved in the OA reaches the ERP's HR records")
    from hub.mapping import load_mapping

    mapping = load_mapping(stage.config.mappings_dir / "dingtalk" / "leave.approval.yaml")
    start = (datetime.now(UTC) + timedelta(days=7)).replace(hour=9, minute=0, second=0, microsecond=0)
    request = {"kind": "leave", "applicant": {"user_id": "0533617284019256", "name": "陈静"},
               "form": {"leave_type": "年假", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "end": (start + timedelta(days=2, hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "days": 3, "reason": "家中有事，请年假三天。"},
               "status": "pending"}
    payload = mapping.to_vendor(request)
    if payload.errors:
        raise DemoFailed(f"the demo's leave request does not map: {payload.errors[0]}")
    out.leave_instance = push_one(stage, "oa", "leave", WriteOp(OpKind.CREATE, payload.value, "demo-leave"))
    say(f"   陈静 asks for three days of annual leave in DingTalk ({out.leave_instance})")
    approve_all(stage, say, out.leave_instance, "agree", "同意，注意交接。")
    out.leave_id = wait_for(lambda: counterpart(stage, "oa", "leave", out.leave_instance, "approval", "erp"),
                            "the leave to reach the ERP", say)
    wait_for(lambda: (record(stage, "erp", "hr.leave", out.leave_id) or {}).get("state") == "validate",
             "the ERP leave to be approved", say)
    say(f"   → ERP time off {out.leave_id}: approved")


STEPS = (customers, deals_won, contract_approvals, decisions, leave_request)


def play(stage: Stage, say: Say) -> Outcome:
    out = Outcome()
    for step in STEPS:
        step(stage, say, out)
        say("")
    return out


# --- the closing table ---------------------------------------------------------------------


def state_table(stage: Stage) -> list[tuple[str, str, str]]:
    """(system, what, how many) rows describing every system at the end."""
    rows: list[tuple[str, str, str]] = []

    def by(system: str, obj: str, field_name: str) -> str:
        records = stage.records(system, obj)
        tally = Counter(str(r.get(field_name)) for r in records)
        return f"{len(records)} ({', '.join(f'{k}: {v}' for k, v in sorted(tally.items()))})"

    rows.append(("CRM (Salesforce)", "Accounts", str(len(stage.records("crm", "Account")))))
    rows.append(("CRM (Salesforce)", "Opportunities", by("crm", "Opportunity", "StageName")))
    rows.append(("ERP (Odoo)", "Customers (res.partner)", str(len(stage.records("erp", "res.partner")))))
    rows.append(("ERP (Odoo)", "Sales orders", by("erp", "sale.order", "state")))
    rows.append(("ERP (Odoo)", "Time off (hr.leave)", by("erp", "hr.leave", "state")))
    rows.append(("OA (DingTalk)", "Contract approvals", by("oa", "contract", "status")))
    rows.append(("OA (DingTalk)", "Leave requests", by("oa", "leave", "status")))
    with stage.store.transaction() as tx:
        depth = tx.queue_depth()
        runs = tx.runs_recent(limit=500)
    rows.append(("hub", "Runs", str(len(runs))))
    rows.append(("hub", "Jobs", ", ".join(f"{k}: {v}" for k, v in sorted(depth.items())) or "none"))
    return rows
