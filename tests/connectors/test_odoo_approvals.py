"""Approvals all the way into Odoo, over real HTTP on loopback against the Odoo sandbox.

The two approval mappings (mappings/odoo/sale.order.approval.yaml and hr.leave.approval.yaml)
run on what the sandbox really answers, and their payloads are pushed through the connector:
quotations read as contract approval requests, decisions turned into Odoo's own actions
(never a raw `state` write), leave requests with employee and time off type found by text,
and upserts keyed by Odoo external ids.
"""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.base import OpKind, Rejected, WriteOp
from connectors.odoo import Connector
from connectors.odoo import sandbox as odoo_sandbox
from connectors.odoo.connector import EXTERNAL_ID, xmlid_key, xmlid_name
from connectors.sandbox import RunningServer, SandboxOptions, serve
from hub import canonical
from hub.config.model import System
from hub.mapping import Mapping, load_mapping

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings" / "odoo"
DB, LOGIN, KEY = odoo_sandbox.DATABASE, odoo_sandbox.LOGIN, odoo_sandbox.API_KEY


@pytest.fixture(scope="module")
def contract_mapping() -> Mapping:
    return load_mapping(MAPPINGS / "sale.order.approval.yaml")


@pytest.fixture(scope="module")
def leave_mapping() -> Mapping:
    return load_mapping(MAPPINGS / "hr.leave.approval.yaml")


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = serve(odoo_sandbox.create_app(SandboxOptions(records=4, seed=11)))
    yield running
    running.stop()


@pytest.fixture
def connector(server: RunningServer) -> Iterator[Connector]:
    declared = odoo_sandbox.system_config(server.base_url)
    opened = Connector(System(name="odoo-approvals", connector="odoo", base_url=server.base_url, auth=declared["auth"],
                              webhook=declared["webhook"], options={"page_size": 4}, timeout=10.0))
    yield opened
    opened.close()


def _records(server: RunningServer, model: str) -> dict[int, dict[str, Any]]:
    response = requests.get(f"{server.base_url}/_sandbox/records/{model}", timeout=10)
    response.raise_for_status()
    return {r["id"]: r for r in response.json()["records"]}


def _stats(server: RunningServer) -> dict[str, int]:
    response = requests.get(f"{server.base_url}/_sandbox/stats", timeout=10)
    response.raise_for_status()
    return response.json()["by_route"]  # type: ignore[no-any-return]


def _reset_stats(server: RunningServer) -> None:
    requests.delete(f"{server.base_url}/_sandbox/stats", timeout=10).raise_for_status()


def _quotations(connector: Connector, count: int) -> list[int]:
    ops = [WriteOp(OpKind.CREATE, {"partner_id": str(n % 4 + 1), "origin": f"hub-order-{n}",
                                   "order_line": [{"product_id": "FURN_7800", "product_uom_qty": n + 1}]}, f"hub-order-{n}")
           for n in range(count)]
    results = connector.push("sale.order", ops)
    assert all(r.ok for r in results), [str(r.error) for r in results]
    return [int(r.external_id or 0) for r in results]


class _Links:
    """The hub's links table as far as a `ref: order` needs it: Odoo order id -> canonical id."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.asked: list[tuple[str, Any]] = []

    def resolve(self, entity: str, value: Any) -> Any | None:
        self.asked.append((entity, value))
        return self.known.get(str(value))


# --- contract approvals: quotations as approval requests --------------------------------------------


def test_quotations_are_read_as_contract_approvals_and_confirmed_orders_are_skipped(
        server: RunningServer, connector: Connector, contract_mapping: Mapping) -> None:
    ids = _quotations(connector, 4)
    assert connector.client.execute_kw("sale.order", "action_confirm", [[ids[1]]]) is True
    pulled = [r for page in connector.pull("sale.order", None) for r in page.records]
    assert sorted(r["id"] for r in pulled) == sorted(ids)

    taken = [r for r in pulled if contract_mapping.takes(r)]
    assert sorted(r["id"] for r in taken) == sorted(i for i in ids if i != ids[1])  # the confirmed one is skipped
    links = _Links({str(i): f"order-{i}" for i in ids})
    for record in taken:
        result = contract_mapping.to_canonical(record, links)
        assert result.errors == [], [str(e) for e in result.errors]
        approval = result.value
        assert canonical.validate("approval", approval) == []
        assert approval["kind"] == "contract" and approval["status"] == "pending"
        assert approval["number"] == record["name"] and approval["title"] == f"销售合同审批 {record['name']}"
        assert approval["subject"] == {"entity": "order", "id": f"order-{record['id']}"}
        assert approval["form"] == {"customer_name": record["partner_id"][1], "order_number": record["name"],
                                    "amount": f"{record['amount_total']:.2f}", "currency": "CNY"}
    assert ("order", str(taken[0]["id"])) in links.asked

    unlinked = contract_mapping.to_canonical(taken[0], _Links({}))
    assert [e.code for e in unlinked.errors] == ["unresolved_ref"]  # waits for the order flow's link


def test_the_form_keys_are_the_ones_the_oa_contract_mappings_write(contract_mapping: Mapping) -> None:
    record = {"id": 42, "name": "S00042", "state": "sent", "partner_id": [7, "上海申通国际物流（中国）有限公司"],
              "amount_total": 5608.19, "currency_id": [7, "CNY"], "date_order": "2024-05-02 06:40:12",
              "create_date": "2024-05-02 06:40:12", "write_date": "2024-05-02 06:40:12", "user_id": False}
    approval = contract_mapping.to_canonical(record).value
    approval["id"] = "approval-1"
    dingtalk = load_mapping(MAPPINGS.parent / "dingtalk" / "contract.approval.yaml").to_vendor(approval)
    assert dingtalk.errors == []
    assert dingtalk.value["form"] == {"客户名称": "上海申通国际物流（中国）有限公司", "订单编号": "S00042",
                                      "合同金额": "5608.19", "币种": "CNY", "关联订单": "42", "同步ID": "approval-1"}


# --- contract decisions: actions, not state writes ------------------------------------------------


def _decision_ops(mapping: Mapping, decisions: list[tuple[int, str]]) -> list[WriteOp]:
    ops = []
    for order_id, status in decisions:
        payload = mapping.to_vendor({"id": f"approval-{order_id}", "kind": "contract", "status": status})
        assert payload.errors == []
        ops.append(WriteOp(OpKind.UPDATE, payload.value, f"approval-{order_id}", str(order_id)))
    return ops


def test_decisions_confirm_or_cancel_the_order_through_odoos_actions(
        server: RunningServer, connector: Connector, contract_mapping: Mapping) -> None:
    ids = _quotations(connector, 5)
    models = xmlrpc.client.ServerProxy(f"{server.base_url}/xmlrpc/2/object")
    models.execute_kw(DB, 2, KEY, "sale.order", "write", [[ids[3]], {"state": "sent"}])  # a quotation sent by e-mail
    _reset_stats(server)

    decisions = [(ids[0], "approved"), (ids[1], "approved"), (ids[2], "rejected"), (ids[3], "rejected"),
                 (ids[4], "pending")]
    results = connector.push("sale.order", _decision_ops(contract_mapping, decisions))
    assert [r.ok for r in results] == [True] * 5, [str(r.error) for r in results]
    assert [r.external_id for r in results] == [str(i) for i in ids] and not any(r.created for r in results)

    states = {i: r["state"] for i, r in _records(server, "sale.order").items()}
    assert [states[i] for i in ids] == ["sale", "sale", "cancel", "cancel", "draft"]
    stats = _stats(server)
    assert stats.get("POST /jsonrpc sale.order.action_confirm") == 1  # one call for both approved orders
    assert stats.get("POST /jsonrpc sale.order.action_cancel") == 1
    assert "POST /jsonrpc sale.order.write" not in stats  # state was never written raw
    assert sum(stats.values()) == 2


def test_a_decision_applied_twice_is_not_an_error(server: RunningServer, connector: Connector,
                                                  contract_mapping: Mapping) -> None:
    ids = _quotations(connector, 3)
    ops = _decision_ops(contract_mapping, [(ids[0], "approved"), (ids[1], "rejected")])
    assert all(r.ok for r in connector.push("sale.order", ops))
    again = _decision_ops(contract_mapping, [(ids[0], "approved"), (ids[1], "rejected"), (ids[2], "approved")])
    results = connector.push("sale.order", again)  # Odoo refuses to confirm a confirmed order: checked per record
    assert all(r.ok for r in results), [str(r.error) for r in results]
    states = {i: r["state"] for i, r in _records(server, "sale.order").items()}
    assert [states[i] for i in ids] == ["sale", "cancel", "sale"]


def test_a_decision_odoo_refuses_rejects_only_that_order(server: RunningServer, connector: Connector,
                                                         contract_mapping: Mapping) -> None:
    ids = _quotations(connector, 2)
    assert connector.client.execute_kw("sale.order", "action_cancel", [[ids[0]]]) is True  # a draft: no wizard
    results = connector.push("sale.order", _decision_ops(contract_mapping, [(ids[0], "approved"), (ids[1], "approved")]))
    bad, good = results
    assert isinstance(bad.error, Rejected) and "action_confirm" in bad.error.reason
    assert "It is not allowed to confirm an order in the following states: Cancelled" in bad.error.reason
    assert bad.error.vendor_code == "odoo.exceptions.UserError"
    assert good.ok and _records(server, "sale.order")[ids[1]]["state"] == "sale"


def test_odoo_cancels_a_sent_quotation_only_without_the_warning_wizard(server: RunningServer,
                                                                       connector: Connector) -> None:
    [order] = _quotations(connector, 1)
    models = xmlrpc.client.ServerProxy(f"{server.base_url}/xmlrpc/2/object")
    models.execute_kw(DB, 2, KEY, "sale.order", "write", [[order], {"state": "sent"}])
    wizard = models.execute_kw(DB, 2, KEY, "sale.order", "action_cancel", [[order]])
    assert wizard["res_model"] == "sale.order.cancel" and _records(server, "sale.order")[order]["state"] == "sent"
    assert models.execute_kw(DB, 2, KEY, "sale.order", "action_cancel", [[order]],
                             {"context": {"disable_cancel_warning": True}}) is True
    assert _records(server, "sale.order")[order]["state"] == "cancel"


def test_states_odoo_sets_itself_are_refused_and_other_fields_are_written(server: RunningServer,
                                                                          connector: Connector) -> None:
    ids = _quotations(connector, 2)
    locked, noted = connector.push("sale.order", [
        WriteOp(OpKind.UPDATE, {"state": "done"}, "a1", str(ids[0])),
        WriteOp(OpKind.UPDATE, {"state": "sale", "client_order_ref": "PO-77"}, "a2", str(ids[1])),
    ])
    assert isinstance(locked.error, Rejected) and locked.error.vendor_code == "STATE_NOT_WRITABLE"
    assert "'done'" in locked.error.reason and "cancel, sale" in locked.error.reason
    assert noted.ok
    orders = _records(server, "sale.order")
    assert orders[ids[0]]["state"] == "draft"
    assert (orders[ids[1]]["state"], orders[ids[1]]["client_order_ref"]) == ("sale", "PO-77")


# --- leave requests --------------------------------------------------------------------------------


def _leave(hub_id: str, applicant: dict[str, str], leave_type: str = "年假", status: str = "approved",
           start: str = "2024-05-06T01:00:00Z", end: str = "2024-05-08T10:00:00Z", days: str = "3") -> dict[str, Any]:
    return {"id": hub_id, "kind": "leave", "title": "请假", "applicant": applicant, "status": status,
            "form": {"leave_type": leave_type, "start": start, "end": end, "days": days, "reason": "回老家探亲"}}


def _leave_ops(mapping: Mapping, leaves: list[dict[str, Any]]) -> list[WriteOp]:
    ops = []
    for leave in leaves:
        assert canonical.validate("approval", leave) == []
        payload = mapping.to_vendor(leave)
        assert payload.errors == [], [str(e) for e in payload.errors]
        ops.append(WriteOp(OpKind.UPSERT, payload.value, leave["id"], key_field=mapping.key_path))
    return ops


def _ids_by_name(server: RunningServer, model: str) -> dict[str, int]:
    return {r["name"]: i for i, r in _records(server, model).items()}


def test_leave_approvals_create_time_off_with_the_right_employee_and_type(
        server: RunningServer, connector: Connector, leave_mapping: Mapping) -> None:
    leaves = [_leave("leave-1", {"user_id": "dt-001", "name": "李娜"}),
              _leave("leave-2", {"email": "anna.weber@example.de", "name": "Anna W."}, "病假", "pending",
                     "2024-05-09T00:00:00Z", "2024-05-09T09:00:00Z", "1"),
              _leave("leave-3", {"name": "王伟"}, "调休", "rejected", "2024-05-13", "2024-05-13", "1"),
              _leave("leave-4", {"name": "李娜"}, "annual", "withdrawn", "2024-06-03T01:00:00Z", "2024-06-04T10:00:00Z", "2")]
    _reset_stats(server)
    results = connector.push("hr.leave", _leave_ops(leave_mapping, leaves))
    assert all(r.ok and r.created for r in results), [str(r.error) for r in results]

    employees, types = _ids_by_name(server, "hr.employee"), _ids_by_name(server, "hr.leave.type")
    stored = _records(server, "hr.leave")
    got = [stored[int(r.external_id or 0)] for r in results]
    assert [(g["employee_id"][0], g["holiday_status_id"][0]) for g in got] == [
        (employees["李娜"], types["Paid Time Off"]), (employees["Anna Weber"], types["Sick Time Off"]),
        (employees["王伟"], types["Compensatory Days"]), (employees["李娜"], types["Paid Time Off"])]
    assert [(g["request_date_from"], g["request_date_to"], g["number_of_days"]) for g in got] == [
        ("2024-05-06", "2024-05-08", 3.0), ("2024-05-09", "2024-05-09", 1.0), ("2024-05-13", "2024-05-13", 1.0),
        ("2024-06-03", "2024-06-04", 2.0)]
    assert [g["state"] for g in got] == ["validate", "confirm", "refuse", "refuse"]
    assert got[0]["name"] == "回老家探亲"

    stats = _stats(server)
    assert stats["POST /jsonrpc hr.employee.search_read"] == 1 and stats["POST /jsonrpc hr.leave.type.search_read"] == 1
    assert stats["POST /jsonrpc hr.leave.create"] == 1
    assert stats["POST /jsonrpc hr.leave.action_validate"] == 1 and stats["POST /jsonrpc hr.leave.action_refuse"] == 1
    assert "POST /jsonrpc hr.leave.write" not in stats
    assert stats["POST /jsonrpc ir.model.data.search_read"] == 1 and stats["POST /jsonrpc ir.model.data.create"] == 1


def test_an_unknown_or_ambiguous_employee_rejects_only_that_leave(
        server: RunningServer, connector: Connector, leave_mapping: Mapping) -> None:
    connector.client.execute_kw("hr.employee", "create", [[{"name": "王伟", "work_email": "wang.wei2@example.cn"}]])
    leaves = [_leave("leave-1", {"name": "李娜"}), _leave("leave-2", {"name": "No Such Person"}),
              _leave("leave-3", {"name": "王伟"}), _leave("leave-4", {"email": "wang.wei2@example.cn", "name": "王伟"}),
              _leave("leave-5", {"name": "Anna Weber"}, "事假")]
    first, unknown, ambiguous, by_email, no_type = connector.push("hr.leave", _leave_ops(leave_mapping, leaves))
    assert first.ok and by_email.ok
    assert isinstance(unknown.error, Rejected) and unknown.error.vendor_code == "EMPLOYEE_NOT_FOUND"
    assert unknown.error.reason == "odoo: no employee with work e-mail or name 'No Such Person'"
    assert isinstance(ambiguous.error, Rejected) and "2 hr.employee records have the name '王伟'" in ambiguous.error.reason
    assert isinstance(no_type.error, Rejected) and no_type.error.vendor_code == "LEAVE_TYPE_NOT_FOUND"
    assert "'Unpaid'" in no_type.error.reason  # the sandbox has no "Unpaid" time off type
    stored = _records(server, "hr.leave")
    assert sorted(stored) == sorted(int(r.external_id or 0) for r in (first, by_email))
    assert stored[int(by_email.external_id or 0)]["employee_id"] == [max(_records(server, "hr.employee")), "王伟"]


def test_upserting_a_leave_twice_by_external_id_gives_one_time_off(
        server: RunningServer, connector: Connector, leave_mapping: Mapping) -> None:
    hub_id = "5d0c2b7e9a4f4e1c8b3a6f0d2e9c7b1a"
    pending = _leave_ops(leave_mapping, [_leave(hub_id, {"name": "李娜"}, status="pending")])
    [first] = connector.push("hr.leave", pending)
    [second] = connector.push("hr.leave", pending)
    assert first.ok and second.ok, (first.error, second.error)
    assert first.created and not second.created and first.external_id == second.external_id
    assert len(_records(server, "hr.leave")) == 1

    xmlids = list(_records(server, "ir.model.data").values())
    assert [(x["module"], x["name"], x["model"], x["res_id"]) for x in xmlids] == \
        [("synchub", f"hr_leave_{hub_id}", "hr.leave", int(first.external_id or 0))]
    [pulled] = [r for page in connector.pull("hr.leave", None) for r in page.records]
    assert pulled[EXTERNAL_ID] == hub_id and leave_mapping.hub_key(pulled) == hub_id
    assert EXTERNAL_ID not in _records(server, "hr.leave")[pulled["id"]]  # the marker is never a field

    [approved] = connector.push("hr.leave", _leave_ops(leave_mapping, [_leave(hub_id, {"name": "李娜"})]))
    assert approved.ok and not approved.created and approved.external_id == first.external_id
    assert _records(server, "hr.leave")[pulled["id"]]["state"] == "validate"
    back = leave_mapping.to_canonical(connector.get("hr.leave", [pulled["id"]])[0]).value
    assert (back["status"], back["applicant"], back["form"]["leave_type"]) == ("approved", {"name": "李娜"}, "年假")


def test_the_same_key_twice_in_one_batch_is_one_time_off(server: RunningServer, connector: Connector,
                                                         leave_mapping: Mapping) -> None:
    ops = _leave_ops(leave_mapping, [_leave("k-1", {"name": "李娜"}, status="pending"), _leave("k-1", {"name": "李娜"})])
    first, second = connector.push("hr.leave", ops)
    assert first.created and not second.created and first.external_id == second.external_id
    [stored] = _records(server, "hr.leave").values()
    assert stored["state"] == "validate"


def test_a_deleted_time_off_loses_its_external_id_and_is_created_again(
        server: RunningServer, connector: Connector, leave_mapping: Mapping) -> None:
    ops = _leave_ops(leave_mapping, [_leave("k-2", {"name": "王伟"}, status="pending")])
    [first] = connector.push("hr.leave", ops)
    connector.client.execute_kw("hr.leave", "unlink", [[int(first.external_id or 0)]])
    assert _records(server, "ir.model.data") == {}  # Odoo's unlink deletes the external ids too
    [again] = connector.push("hr.leave", ops)
    assert again.created and again.external_id != first.external_id


def test_external_id_names_are_valid_and_reversible() -> None:
    for key in ("5d0c2b7e9a4f4e1c8b3a6f0d2e9c7b1a", "3f6c1a2e-8b0d-4e57-9a41-0c2d7e5b9f10", "a b.c/d", "请假_1", "x_41"):
        name = xmlid_name("hr.leave", key)
        assert " " not in name and "." not in name and name.startswith("hr_leave_")
        assert xmlid_key("hr.leave", name) == key
    assert xmlid_key("hr.leave", "hr_leave_x_zz") is None and xmlid_key("sale.order", "hr_leave_abc") is None


def test_a_sample_leave_reads_back_through_the_mapping(leave_mapping: Mapping) -> None:
    [first, *_] = [json.loads(line) for line in (MAPPINGS / "samples" / "hr.leave.jsonl").read_text("utf-8").splitlines()]
    value = leave_mapping.to_canonical(first).value
    assert leave_mapping.hub_key(first) == first[EXTERNAL_ID]
    sent = leave_mapping.to_vendor({**value, "id": first[EXTERNAL_ID]})
    assert sent.errors == []
    assert {k: sent.value[k] for k in ("employee_id", "holiday_status_id", "request_date_from", "request_date_to",
                                       "number_of_days", "state", "name")} == \
        {"employee_id": first["employee_id"][1], "holiday_status_id": first["holiday_status_id"][1],
         "request_date_from": first["request_date_from"], "request_date_to": first["request_date_to"],
         "number_of_days": first["number_of_days"], "state": first["state"], "name": first["name"]}
