"""Approvals into ERPNext over real HTTP on loopback: the contract approval read from draft Sales
Orders, the OA's decision released (submit) or cancelled (submit, then cancel) on the order, and
leave approvals written as Leave Applications with the employee looked up, submitted once decided.

Canonical approvals are built the way the hub builds them: through the shipped mappings
(`mappings/erpnext/*.approval.yaml`, and DingTalk's leave mapping for the OA side).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.base import OpKind, Rejected, WriteOp
from connectors.erpnext import Connector
from connectors.erpnext import sandbox as erp
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub import canonical
from hub.config.model import System
from hub.mapping import Mapping, load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
AUTH = {"Authorization": f"token {erp.API_KEY}:{erp.API_SECRET}"}


@pytest.fixture
def site() -> Iterator[RunningServer]:
    server = serve(erp.create_app(SandboxOptions(records=12, seed=5, webhook_retry_scale=0.01,
                                                 extra={"sales_orders": 6})))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def contract() -> Mapping:
    return load_mapping(MAPPINGS / "erpnext" / "Sales Order.approval.yaml")


@pytest.fixture(scope="module")
def leave() -> Mapping:
    return load_mapping(MAPPINGS / "erpnext" / "Leave Application.approval.yaml")


def connector(server: RunningServer) -> Connector:
    declared = erp.system_config(server.base_url)
    return Connector(System(name="erp", connector="erpnext", base_url=declared["base_url"], auth=declared["auth"],
                            webhook=declared["webhook"], options=declared["options"], timeout=5.0))


def records(server: RunningServer, doctype: str) -> list[dict[str, Any]]:
    response = requests.get(f"{server.base_url}/_sandbox/records/{doctype}", timeout=5)
    return response.json()["records"]  # type: ignore[no-any-return]


def document(server: RunningServer, doctype: str, name: str) -> dict[str, Any]:
    response = requests.get(f"{server.base_url}/api/resource/{doctype}/{name}", headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def calls_by_route(server: RunningServer) -> dict[str, int]:
    return requests.get(f"{server.base_url}/_sandbox/stats", timeout=5).json()["by_route"]  # type: ignore[no-any-return]


def reset_stats(server: RunningServer) -> None:
    requests.delete(f"{server.base_url}/_sandbox/stats", timeout=5).raise_for_status()


class OrderLinks:
    """The links table as `ref: order` sees it: ERPNext Sales Order names to canonical order ids."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known

    def resolve(self, entity: str, value: Any) -> Any | None:
        assert entity == "order"
        return self.known.get(str(value))


def decided(contract: Mapping, status: str) -> dict[str, Any]:
    """The outbound payload of a contract approval with this outcome (what the engine pushes)."""
    approval = {"id": "appr-1", "kind": "contract", "status": status, "subject": {"entity": "order", "id": "ord-1"},
                "form": {"order_number": "SAL-ORD-2024-00001", "amount": "100", "currency": "CNY"}}
    result = contract.to_vendor(approval)
    assert result.ok, result.errors
    return result.value


def leave_request(leave: Mapping, hub_id: str, status: str, applicant: dict[str, str], start: str, end: str,
                  days: str, leave_type: str = "年假") -> WriteOp:
    approval = {"id": hub_id, "kind": "leave", "status": status, "applicant": applicant,
                "form": {"leave_type": leave_type, "start": start, "end": end, "days": days, "reason": "回老家探亲"}}
    assert canonical.validate("approval", approval) == []
    result = leave.to_vendor(approval)
    assert result.ok, result.errors
    return WriteOp(OpKind.UPSERT, result.value, hub_id, key_field=leave.key_path)


# --- contract approvals: Sales Order -> approval -------------------------------------------


def test_draft_sales_orders_are_contract_approvals_and_submitted_ones_are_skipped(
        site: RunningServer, contract: Mapping) -> None:
    orders = [r for page in connector(site).pull("Sales Order", None) for r in page.records]
    drafts = sorted(o["name"] for o in orders if o["docstatus"] == 0)
    assert drafts and len(drafts) < len(orders)  # the seed has both kinds
    taken = [o for o in orders if contract.takes(o)]
    assert sorted(o["name"] for o in taken) == drafts

    links = OrderLinks({o["name"]: f"ord-{i}" for i, o in enumerate(orders)})
    for order in taken:
        result = contract.to_canonical(order, links)
        assert result.ok, result.errors
        approval = result.value
        assert approval["kind"] == "contract" and approval["status"] == "pending"
        assert approval["title"] == f"销售合同审批 {order['name']}" and approval["number"] == order["name"]
        assert approval["subject"] == {"entity": "order", "id": links.known[order["name"]]}
        assert approval["form"] == {"customer_name": order["customer_name"], "order_number": order["name"],
                                    "amount": _decimal(order["grand_total"]), "currency": order["currency"]}
        assert approval["updated_at"].endswith("Z")

    # An order the order flow has not linked yet: the approval waits for the reference.
    waiting = contract.to_canonical(taken[0], OrderLinks({}))
    assert [e.code for e in waiting.errors] == ["unresolved_ref"]


def _decimal(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# --- contract decisions: approval -> Sales Order -------------------------------------------


def _a_draft(site: RunningServer) -> str:
    return next(o["name"] for o in records(site, "Sales Order") if o["docstatus"] == 0)


def test_an_approved_contract_submits_the_order(site: RunningServer, contract: Mapping) -> None:
    name = _a_draft(site)
    payload = decided(contract, "approved")
    assert payload == {"synchub_decision": "approved"}  # no key: synchub_id belongs to the order flow
    reset_stats(site)
    [result] = connector(site).push("Sales Order", [WriteOp(OpKind.UPDATE, payload, "appr-1", name)])
    assert result.ok and result.external_id == name and not result.created
    assert calls_by_route(site) == {"GET /api/resource/{doctype}": 1, "PUT /api/resource/{doctype}/{name:path}": 1}
    order = document(site, "Sales Order", name)
    assert order["docstatus"] == 1 and order["status"] == "To Deliver and Bill" and order["synchub_id"] is None


def test_a_rejected_contract_ends_the_draft_cancelled_through_a_submit(site: RunningServer, contract: Mapping) -> None:
    name = _a_draft(site)
    erpnext = connector(site)
    op = WriteOp(OpKind.UPDATE, decided(contract, "rejected"), "appr-1", name)
    [result] = erpnext.push("Sales Order", [op])
    assert result.ok and result.external_id == name
    order = document(site, "Sales Order", name)
    assert order["docstatus"] == 2 and order["status"] == "Cancelled"
    # A retry (the engine lost the result) finds the order cancelled already: nothing is sent.
    reset_stats(site)
    [again] = erpnext.push("Sales Order", [op])
    assert again.ok and calls_by_route(site) == {"GET /api/resource/{doctype}": 1}
    # An approval arriving for an order someone cancelled meanwhile is refused, not reported done.
    [late] = erpnext.push("Sales Order", [WriteOp(OpKind.UPDATE, decided(contract, "approved"), "appr-2", name)])
    assert isinstance(late.error, Rejected) and "is cancelled" in late.error.reason


def test_a_rejection_resumes_with_the_cancel_when_the_order_is_already_submitted(
        site: RunningServer, contract: Mapping) -> None:
    name = _a_draft(site)
    requests.put(f"{site.base_url}/api/resource/Sales%20Order/{name}", headers=AUTH, json={"docstatus": 1},
                 timeout=5).raise_for_status()  # the first step of an earlier, interrupted attempt
    reset_stats(site)
    [result] = connector(site).push("Sales Order", [WriteOp(OpKind.UPDATE, decided(contract, "rejected"), "a", name)])
    assert calls_by_route(site) == {"GET /api/resource/{doctype}": 1, "POST /api/method/{method:path}": 1}
    assert result.ok and document(site, "Sales Order", name)["docstatus"] == 2


def test_pending_and_withdrawn_approvals_write_nothing(site: RunningServer, contract: Mapping) -> None:
    name = _a_draft(site)
    before = document(site, "Sales Order", name)
    reset_stats(site)
    ops = [WriteOp(OpKind.UPDATE, decided(contract, status), "appr-1", name) for status in ("pending", "withdrawn")]
    assert all(op.payload == {} for op in ops)
    assert all(r.ok and r.external_id == name for r in connector(site).push("Sales Order", ops))
    assert calls_by_route(site) == {}
    assert document(site, "Sales Order", name)["modified"] == before["modified"]


def test_a_decision_the_doctype_does_not_know_is_refused(site: RunningServer) -> None:
    name = _a_draft(site)
    [result] = connector(site).push("Sales Order", [WriteOp(OpKind.UPDATE, {"synchub_decision": "escalated"}, "a", name)])
    assert isinstance(result.error, Rejected) and result.error.vendor_code == "UnknownDecision"
    assert document(site, "Sales Order", name)["docstatus"] == 0


# --- leave requests: approval -> Leave Application -----------------------------------------


def test_an_approved_leave_creates_a_submitted_leave_application_for_the_right_employee(
        site: RunningServer, leave: Mapping) -> None:
    op = leave_request(leave, "leave-1", "approved", {"name": "赵敏"}, "2024-10-14T01:00:00Z", "2024-10-15T10:00:00Z", "2")
    assert op.payload["employee"] == "赵敏" and op.payload["synchub_id"] == "leave-1"
    [result] = connector(site).push("Leave Application", [op])
    assert result.ok and result.created
    doc = document(site, "Leave Application", result.external_id or "")
    assert (doc["employee"], doc["employee_name"]) == ("HR-EMP-00004", "赵敏")
    assert (doc["docstatus"], doc["status"]) == (1, "Approved")
    assert (doc["leave_type"], doc["from_date"], doc["to_date"], doc["total_leave_days"]) == \
        ("Annual Leave", "2024-10-14", "2024-10-15", 2.0)
    assert doc["description"] == "回老家探亲" and doc["synchub_id"] == "leave-1"

    # Read back through the same mapping: the request the OA sent, keyed by the hub's id.
    [again] = connector(site).get("Leave Application", [doc["name"]])
    back = leave.to_canonical(again)
    assert back.ok, back.errors
    assert leave.hub_key(again) == "leave-1"
    assert back.value["form"] | {"reason": "回老家探亲"} == {"leave_type": "年假", "start": "2024-10-14",
                                                         "end": "2024-10-15", "days": "2", "reason": "回老家探亲"}
    assert back.value["status"] == "approved" and back.value["applicant"]["employee_no"] == "HR-EMP-00004"


def test_pending_is_an_open_draft_and_rejected_is_submitted_as_rejected(site: RunningServer, leave: Mapping) -> None:
    ops = [leave_request(leave, "leave-p", "pending", {"email": "John.Smith@synchub-demo.com"},
                         "2024-10-21T01:00:00Z", "2024-10-21T05:00:00Z", "0.5", "事假"),
           leave_request(leave, "leave-r", "rejected", {"employee_no": "EMP-0002"},
                         "2024-10-21T01:00:00Z", "2024-10-22T10:00:00Z", "2", "病假")]
    pending, rejected = connector(site).push("Leave Application", ops)
    assert pending.ok and rejected.ok
    draft = document(site, "Leave Application", pending.external_id or "")
    assert (draft["employee"], draft["docstatus"], draft["status"]) == ("HR-EMP-00007", 0, "Open")
    assert (draft["leave_type"], draft["half_day"], draft["total_leave_days"]) == ("Leave Without Pay", 1, 0.5)
    refused = document(site, "Leave Application", rejected.external_id or "")
    assert (refused["employee"], refused["docstatus"], refused["status"]) == ("HR-EMP-00002", 1, "Rejected")


def test_an_unknown_or_ambiguous_employee_rejects_only_that_record(site: RunningServer, leave: Mapping) -> None:
    ops = [leave_request(leave, "leave-a", "approved", {"name": "Nobody Known"}, "2024-11-04T01:00:00Z",
                         "2024-11-04T10:00:00Z", "1"),
           leave_request(leave, "leave-b", "approved", {"name": "刘洋"}, "2024-11-04T01:00:00Z",
                         "2024-11-04T10:00:00Z", "1"),
           leave_request(leave, "leave-c", "approved", {"name": "王伟"}, "2024-11-04T01:00:00Z",
                         "2024-11-04T10:00:00Z", "1")]
    reset_stats(site)
    unknown, ambiguous, known = connector(site).push("Leave Application", ops)
    # One Employee lookup for the batch, one key lookup, one insert.
    assert calls_by_route(site) == {"GET /api/resource/{doctype}": 2, "POST /api/resource/{doctype}": 1}
    assert isinstance(unknown.error, Rejected) and "no Employee matches employee 'Nobody Known'" in unknown.error.reason
    assert isinstance(ambiguous.error, Rejected) and "2 Employee documents match employee '刘洋'" in ambiguous.error.reason
    # Two employees are called 王伟; the one who left does not shadow the active one.
    assert known.ok and document(site, "Leave Application", known.external_id or "")["employee"] == "HR-EMP-00001"
    assert [r["synchub_id"] for r in records(site, "Leave Application") if r["synchub_id"]] == ["leave-c"]


def test_upserting_a_leave_twice_gives_one_leave_application(site: RunningServer, leave: Mapping) -> None:
    erpnext = connector(site)
    applicant = {"name": "杨磊"}
    [first] = erpnext.push("Leave Application", [leave_request(leave, "leave-u", "pending", applicant,
                                                               "2024-12-02T01:00:00Z", "2024-12-03T10:00:00Z", "2")])
    [second] = erpnext.push("Leave Application", [leave_request(leave, "leave-u", "approved", applicant,
                                                                "2024-12-02T01:00:00Z", "2024-12-03T10:00:00Z", "2")])
    assert first.ok and first.created and second.ok and not second.created
    assert second.external_id == first.external_id
    mine = [r for r in records(site, "Leave Application") if r["synchub_id"] == "leave-u"]
    assert len(mine) == 1 and (mine[0]["docstatus"], mine[0]["status"]) == (1, "Approved")
    # Once submitted it is final in ERPNext: a third write changes nothing and is not an error.
    [third] = erpnext.push("Leave Application", [leave_request(leave, "leave-u", "approved", applicant,
                                                               "2024-12-02T01:00:00Z", "2024-12-04T10:00:00Z", "3")])
    assert third.ok and document(site, "Leave Application", first.external_id or "")["to_date"] == "2024-12-03"


def test_dingtalk_leave_approvals_reach_erpnext_with_frappes_own_refusals(site: RunningServer, leave: Mapping) -> None:
    dingtalk = load_mapping(MAPPINGS / "dingtalk" / "leave.approval.yaml")
    lines = (MAPPINGS / "dingtalk" / "samples" / "leave.jsonl").read_text("utf-8").splitlines()[:-1]
    ops, names = [], []
    for i, line in enumerate(lines):
        record = json.loads(line)
        approval = dingtalk.to_canonical(record).value
        # The DingTalk mapping keeps only the applicant's DingTalk user id; the name is in the
        # first operation record (see the report: the OA mapping could read it).
        approval |= {"id": f"dt-{i}", "applicant": {**approval["applicant"],
                                                     "name": record["operationRecords"][0]["showName"]}}
        names.append(approval["applicant"]["name"])
        payload = leave.to_vendor(approval)
        assert payload.ok, payload.errors
        ops.append(WriteOp(OpKind.UPSERT, payload.value, approval["id"], key_field="synchub_id"))
    results = connector(site).push("Leave Application", ops)
    for name, result in zip(names, results, strict=True):
        if name == "陈静":  # an Inactive employee in the sandbox, as HRMS refuses them
            assert isinstance(result.error, Rejected) and result.error.vendor_code == "InactiveEmployeeStatusError"
        else:
            assert result.ok, result.error
    written = {r["synchub_id"]: r for r in records(site, "Leave Application") if r["synchub_id"]}
    assert len(written) == 6
    half_day = written["dt-1"]  # 杨磊, 0.5 day, still running in DingTalk
    assert (half_day["employee"], half_day["status"], half_day["docstatus"], half_day["total_leave_days"]) == \
        ("HR-EMP-00005", "Open", 0, 0.5)
    assert (written["dt-0"]["status"], written["dt-0"]["docstatus"]) == ("Rejected", 1)
    assert (written["dt-5"]["status"], written["dt-5"]["docstatus"]) == ("Cancelled", 0)  # terminated: withdrawn
    assert (written["dt-8"]["status"], written["dt-8"]["docstatus"]) == ("Approved", 1)


# --- the sandbox keeps HRMS's rules --------------------------------------------------------


def test_the_sandbox_refuses_what_hrms_refuses(site: RunningServer) -> None:
    def post(doc: dict[str, Any]) -> requests.Response:
        return requests.post(f"{site.base_url}/api/resource/Leave%20Application", headers=AUTH, json=doc, timeout=5)

    base = {"employee": "HR-EMP-00006", "leave_type": "Sick Leave", "from_date": "2025-03-03", "to_date": "2025-03-04"}
    open_submit = post({**base, "docstatus": 1})
    assert open_submit.status_code == 417 and "with status 'Approved' and 'Rejected'" in open_submit.text
    assert post(base).status_code == 200
    overlap = post({**base, "from_date": "2025-03-04", "to_date": "2025-03-05"})
    assert overlap.status_code == 417 and overlap.json()["exc_type"] == "OverlapError"
    assert post({**base, "status": "Rejected", "from_date": "2025-03-04", "to_date": "2025-03-05"}).status_code == 200
    missing = post({**base, "employee": "HR-EMP-09999", "from_date": "2025-04-01", "to_date": "2025-04-01"})
    assert missing.status_code == 417 and missing.json()["exc_type"] == "LinkValidationError"
    unknown_type = post({**base, "leave_type": "Work From Home", "from_date": "2025-04-01", "to_date": "2025-04-01"})
    assert unknown_type.status_code == 417 and "Could not find Leave Type: Work From Home" in unknown_type.text
    staff = {e["employee_name"] for e in records(site, "Employee")}
    assert {"王伟", "Anna Müller", "赵敏", "陈静"} <= staff and len(records(site, "Leave Type")) >= 9
