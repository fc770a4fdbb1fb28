"""The canonical model: schemas, validation messages, field paths and status lifecycles."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing.exceptions
from hypothesis import given
from hypothesis import strategies as st
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from hub import canonical
from hub.canonical import status
from hub.errors import FieldError, SynchubError

SCHEMA_DIR = Path(canonical.__file__).parent
FILES = ["common", "customer", "order", "approval"]


def load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


CUSTOMER_CN: dict[str, Any] = {
    "id": "cus_01HZX3",
    "name": "上海云杉科技有限公司",
    "kind": "company",
    "tax_id": "91310115MA1H7GXX2Q",
    "contacts": {"email": "sales@yunshan.cn", "phone": "+862150501234", "mobile": "+8613800138000",
                 "website": "https://www.yunshan.cn"},
    "billing_address": {"street": "张江路 88 号", "street2": "3 号楼 501 室", "city": "上海", "state": "上海市",
                        "postal_code": "201203", "country": "中国", "country_code": "CN"},
    "status": "active",
    "owner": "li.na@example.com",
    "currency": "CNY",
    "credit_limit": "500000.00",
    "payment_terms": "月结60天",
    "industry": "软件",
    "tags": ["重点客户", "华东"],
    "notes": "年度框架协议客户",
    "created_at": "2023-11-02T01:15:00Z",
    "updated_at": "2024-05-01T08:30:00+08:00",
}

CUSTOMER_DE: dict[str, Any] = {
    "name": "Müller & Schmidt GmbH",
    "kind": "company",
    "tax_id": "DE123456789",
    "contacts": {"email": "einkauf@mueller-schmidt.de", "phone": "+4930123456"},
    "shipping_address": {"street": "Friedrichstraße 123", "city": "Berlin", "postal_code": "10117",
                         "country": "Germany", "country_code": "DE"},
    "status": "prospect",
    "currency": "EUR",
    "payment_terms": "Net 30",
}

ORDER: dict[str, Any] = {
    "id": "ord_7f3a",
    "number": "SO-2024-00042",
    "customer_id": "cus_01HZX3",
    "po_number": "PO-YS-2024-118",
    "currency": "CNY",
    "lines": [
        {"line_no": 1, "sku": "LIC-ENT", "name": "企业版许可证", "quantity": "10", "unit_price": "12000.00",
         "tax_rate": "0.13", "discount": "0.05", "amount": "114000.00"},
        {"line_no": 2, "sku": "SVC-DAY", "name": "Implementation services", "quantity": "2.5",
         "unit_price": "3000", "tax_rate": "0.06", "discount": "0", "amount": "7500.00"},
    ],
    "totals": {"untaxed": "121500.00", "tax": "15270.00", "total": "136770.00"},
    "status": "pending_approval",
    "ordered_at": "2024-05-01T08:30:00Z",
    "delivery_date": "2024-06-15",
    "notes": "Deliver to Shanghai office",
    "created_at": "2024-05-01T08:30:00Z",
    "updated_at": "2024-05-01T09:00:00.123456Z",
}

APPROVAL: dict[str, Any] = {
    "id": "apv_91c2",
    "kind": "contract",
    "title": "销售合同审批 SO-2024-00042",
    "number": "202405010930000123",
    "subject": {"entity": "order", "id": "ord_7f3a"},
    "applicant": {"user_id": "manager4021", "name": "李娜", "email": "li.na@example.com",
                  "mobile": "+8613912345678", "employee_no": "E1024"},
    "approvers": [
        {"user_id": "ou_7d8a6e6d", "name": "John Carter", "status": "approved",
         "decided_at": "2024-05-01T10:00:00Z", "comment": "OK"},
        {"user_id": "ou_1b2c3d4e", "name": "王伟", "status": "pending"},
    ],
    "form": {"amount": "136770.00", "currency": "CNY", "order_number": "SO-2024-00042",
             "customer_name": "上海云杉科技有限公司", "attachments": ["contract.pdf", None], "urgent": False,
             "pages": 12},
    "status": "pending",
    "submitted_at": "2024-05-01T09:30:00+08:00",
    "comments": [{"author": {"name": "John Carter"}, "text": "价格已确认", "at": "2024-05-01T10:00:00Z"}],
    "created_at": "2024-05-01T01:30:00Z",
    "updated_at": "2024-05-01T02:00:00Z",
}

LEAVE: dict[str, Any] = {
    "kind": "leave",
    "status": "approved",
    "applicant": {"user_id": "zhangsan", "name": "张三"},
    "form": {"leave_type": "年假", "start": "2024-07-01", "end": "2024-07-03", "days": "2.5", "reason": "家事"},
    "decided_at": "2024-06-20T03:00:00Z",
}


def errors(entity: str, record: Any) -> dict[str, str]:
    return {e.field: e.reason for e in canonical.validate(entity, record)}


def with_changes(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copied = copy.deepcopy(record)
    copied.update(changes)
    return copied


# --- the schema files ---------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    doc = load(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"https://synchub.dev/schemas/{name}.schema.json"


def _walk(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk(value, f"{where}/{i}"))
    return found


@pytest.mark.parametrize("name", FILES)
def test_every_property_has_a_description(name: str) -> None:
    missing = [f"{where}/properties/{key}" for where, node in _walk(load(name))
               for key, prop in node.get("properties", {}).items()
               if isinstance(node.get("properties"), dict) and not str(prop.get("description", "")).strip()]
    assert missing == []


@pytest.mark.parametrize("name", FILES)
def test_objects_are_closed_except_the_approval_form(name: str) -> None:
    open_objects = [where for where, node in _walk(load(name))
                    if node.get("type") == "object" and node.get("additionalProperties") is not False]
    assert open_objects == (["/properties/form"] if name == "approval" else [])


def test_refs_are_relative_and_resolve_through_a_registry_without_network() -> None:
    docs = {name: load(name) for name in FILES}
    refs = [node["$ref"] for doc in docs.values() for _, node in _walk(doc) if "$ref" in node]
    assert refs and all(r.startswith(("common.schema.json#/$defs/", "#/$defs/")) for r in refs)
    registry = Registry().with_resources((d["$id"], DRAFT202012.create_resource(d)) for d in docs.values())
    validator = jsonschema.Draft202012Validator(docs["order"], registry=registry)
    assert validator.is_valid(ORDER)
    assert not validator.is_valid(with_changes(ORDER, currency="cny"))
    with pytest.raises(referencing.exceptions.Unresolvable):  # nothing is ever fetched
        registry.resolver().lookup("https://synchub.dev/schemas/missing.schema.json")


def test_approvers_have_every_field_of_a_person() -> None:
    person = set(load("common")["$defs"]["person"]["properties"])
    approver = set(load("approval")["properties"]["approvers"]["items"]["properties"])
    assert person <= approver
    assert approver - person == {"status", "decided_at", "comment"}


def test_schema_returns_a_copy_of_the_entity_schema() -> None:
    first = canonical.schema("order")
    assert first["$id"].endswith("/order.schema.json")
    first["properties"].clear()
    assert canonical.schema("order")["properties"]
    assert canonical.validate("order", ORDER) == []


# --- validation: valid records ------------------------------------------------------------


@pytest.mark.parametrize(("entity", "record"), [
    ("customer", CUSTOMER_CN), ("customer", CUSTOMER_DE), ("customer", {"name": "Jane Smith", "kind": "person"}),
    ("order", ORDER), ("order", {"number": "SO-1", "customer_id": "cus_1"}),
    ("approval", APPROVAL), ("approval", LEAVE),
])
def test_valid_records_have_no_errors(entity: str, record: dict[str, Any]) -> None:
    assert canonical.validate(entity, record) == []


# --- validation: each kind of violation ---------------------------------------------------


def test_float_money_is_refused_with_an_example_of_the_right_form() -> None:
    record = copy.deepcopy(ORDER)
    record["lines"][1]["unit_price"] = 12.5
    assert canonical.validate("order", record) == [
        FieldError("lines[1].unit_price", 'must be a decimal string like "1234.50", got 12.5')]


@pytest.mark.parametrize("value", ["1,234.50", "12.", ".5", "01", "1e3", "¥12", " 12", "12.5 "])
def test_malformed_money_strings_are_refused(value: str) -> None:
    assert errors("customer", with_changes(CUSTOMER_DE, credit_limit=value)) == {
        "credit_limit": f'must be a decimal string like "1234.50", got "{value}"'}


@pytest.mark.parametrize("value", ["0", "-12.30", "1234.50", "0.001", "1000000000000.00"])
def test_well_formed_money_strings_pass(value: str) -> None:
    assert errors("customer", with_changes(CUSTOMER_DE, credit_limit=value)) == {}


def test_datetime_without_a_zone_is_refused() -> None:
    found = errors("order", with_changes(ORDER, ordered_at="2024-05-01T08:30:00"))
    assert found == {"ordered_at": 'must carry a time zone (Z or ±HH:MM), got "2024-05-01T08:30:00"'}


@pytest.mark.parametrize("value", ["2024-05-01", "2024-13-01T00:00:00Z", "2024-02-30T08:00:00Z",
                                   "2024-05-01 08:30:00Z", "yesterday"])
def test_malformed_datetimes_are_refused(value: str) -> None:
    reason = errors("order", with_changes(ORDER, ordered_at=value))["ordered_at"]
    assert reason.startswith("must be a date-time with a time zone like")


def test_impossible_date_is_refused() -> None:
    assert errors("order", with_changes(ORDER, delivery_date="2024-02-30")) == {
        "delivery_date": 'must be a date like "2024-05-01", got "2024-02-30"'}


def test_bad_enum_lists_the_allowed_values() -> None:
    assert errors("order", with_changes(ORDER, status="aproved")) == {
        "status": "must be one of: draft, pending_approval, approved, rejected, fulfilled, cancelled, "
                  "got \"aproved\" (did you mean 'approved'?)"}
    assert errors("approval", with_changes(APPROVAL, kind=3)) == {
        "kind": "must be one of: contract, discount, leave, overtime, expense, other, got 3"}


def test_unknown_field_suggests_the_closest_one() -> None:
    assert errors("order", with_changes(ORDER, nmuber="SO-1")) == {
        "nmuber": "not a field of order (did you mean 'number'?)"}
    record = copy.deepcopy(CUSTOMER_CN)
    record["contacts"]["emial"] = "x@example.com"
    assert errors("customer", record) == {"contacts.emial": "not a field of customer.contacts (did you mean 'email'?)"}
    assert errors("customer", with_changes(CUSTOMER_DE, zzz=1)) == {"zzz": "not a field of customer"}


def test_missing_required_fields_are_reported_by_full_path() -> None:
    record = copy.deepcopy(ORDER)
    del record["number"], record["customer_id"]
    del record["lines"][1]["quantity"]
    assert canonical.validate("order", record) == [
        FieldError("customer_id", "is required"),
        FieldError("lines[1].quantity", "is required"),
        FieldError("number", "is required"),
    ]
    assert errors("approval", with_changes(APPROVAL, subject={"id": "ord_1"})) == {"subject.entity": "is required"}


def test_blank_required_text_is_refused() -> None:
    assert errors("customer", {"name": ""}) == {"name": "must not be empty"}
    assert errors("customer", {"name": "   "}) == {"name": 'must not be blank, got "   "'}


@pytest.mark.parametrize("phone", ["13800138000", "+86 138 0013 8000", "+0123456789", "+12345"])
def test_phones_must_be_e164(phone: str) -> None:
    record = copy.deepcopy(CUSTOMER_CN)
    record["contacts"]["mobile"] = phone
    assert errors("customer", record) == {
        "contacts.mobile": f'must be a phone number in E.164 form like "+8613800138000", got "{phone}"'}


@pytest.mark.parametrize("email", ["li.na", "li.na@localhost", "a@b..com", "a b@example.com", "@example.com"])
def test_bad_emails_are_refused(email: str) -> None:
    record = copy.deepcopy(APPROVAL)
    record["applicant"]["email"] = email
    assert errors("approval", record) == {
        "applicant.email": f'must be an e-mail address like "name@example.com", got "{email}"'}


def test_line_fields_are_checked_with_their_index() -> None:
    record = copy.deepcopy(ORDER)
    record["lines"][0].update(line_no=0, tax_rate="13", discount="1.5")
    record["lines"][1]["quantity"] = "two"
    found = errors("order", record)
    assert found["lines[0].line_no"] == "must be at least 1, got 0"
    assert found["lines[0].tax_rate"].startswith("must be a fraction between 0 and 1")
    assert found["lines[0].discount"].startswith("must be a fraction between 0 and 1")
    assert found["lines[1].quantity"] == 'must be a decimal string like "2.5", got "two"'


def test_all_errors_are_returned_sorted_by_field_in_natural_order() -> None:
    record = with_changes(ORDER, currency="rmb", lines=[{"quantity": "1"} for _ in range(12)], status="done")
    record["lines"][10]["quantity"] = 1
    record["lines"][2]["quantity"] = 2
    fields = [e.field for e in canonical.validate("order", record)]
    assert fields == ["currency", "lines[2].quantity", "lines[10].quantity", "status"]
    assert all(e.code == "invalid" for e in canonical.validate("order", record))


def test_tags_must_be_unique_and_non_empty() -> None:
    assert errors("customer", with_changes(CUSTOMER_DE, tags=["VIP", "VIP", ""])) == {
        "tags": "must not list the same item twice", "tags[2]": "must not be empty"}


def test_form_values_are_scalars_or_lists_of_scalars() -> None:
    record = with_changes(LEAVE, form={"days": 1.5, "nested": {"a": 1}, "list": ["a", ["b"]]})
    assert errors("approval", record) == {
        "form.list[1]": 'a form list may hold only text, numbers, true/false or null, got ["b"]',
        "form.nested": 'a form value must be text, a number, true/false, null or a list of those, got {"a": 1}',
    }


def test_long_values_are_truncated_in_messages() -> None:
    reason = errors("order", with_changes(ORDER, currency="X" * 500))["currency"]
    assert reason.endswith("…") and len(reason) < 120


def test_a_record_that_is_not_an_object() -> None:
    assert canonical.validate("customer", ["not", "a", "record"]) == [  # type: ignore[arg-type]
        FieldError("", 'must be an object, got ["not", "a", "record"]')]


def test_unknown_entity_is_a_synchub_error_with_a_suggestion() -> None:
    for call in (lambda: canonical.schema("orders"), lambda: canonical.validate("orders", {}),
                 lambda: canonical.field_exists("orders", "id"), lambda: canonical.field_paths("orders"),
                 lambda: canonical.field_kind("orders", "id"), lambda: status.can_transition("orders", "a", "b")):
        with pytest.raises(SynchubError, match=r"unknown entity 'orders' \(did you mean 'order'\?\)"):
            call()


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_decimal_written_plainly_is_valid_money(value: Decimal) -> None:
    text = format(value, "f")  # plain notation, as the `decimal` transform writes it
    assert errors("customer", with_changes(CUSTOMER_DE, credit_limit=text)) == {}


@given(st.floats(allow_nan=False) | st.integers())
def test_json_numbers_are_never_money(value: float) -> None:
    assert set(errors("customer", with_changes(CUSTOMER_DE, credit_limit=value))) == {"credit_limit"}


@given(st.dictionaries(st.sampled_from(canonical.field_paths("order")), st.text(max_size=5) | st.integers()))
def test_validate_explains_any_record_without_crashing(record: dict[str, Any]) -> None:
    found = canonical.validate("order", record)
    assert all(isinstance(e, FieldError) and e.reason for e in found)
    assert len({e.field for e in found}) == len(found)  # one complaint per field


# --- field paths --------------------------------------------------------------------------


@pytest.mark.parametrize("entity", canonical.ENTITIES)
def test_common_fields_exist_everywhere(entity: str) -> None:
    for name in ("id", "created_at", "updated_at"):
        assert canonical.field_exists(entity, name)
        assert canonical.field_kind(entity, name) == "string"


@pytest.mark.parametrize(("entity", "path", "kind"), [
    ("customer", "name", "string"),
    ("customer", "contacts", "object"),
    ("customer", "contacts.email", "string"),
    ("customer", "billing_address.country_code", "string"),
    ("customer", "tags", "array"),
    ("customer", "status", "string"),
    ("order", "lines", "array"),
    ("order", "lines.sku", "string"),
    ("order", "lines[0].sku", "string"),
    ("order", "lines.line_no", "integer"),
    ("order", "totals.total", "string"),
    ("approval", "approvers.name", "string"),
    ("approval", "approvers.status", "string"),
    ("approval", "comments.author.email", "string"),
    ("approval", "subject.id", "string"),
    ("approval", "form", "object"),
    ("approval", "form.leave_type", "any"),
    ("approval", "form.金额", "any"),
])
def test_field_kind_of_existing_paths(entity: str, path: str, kind: str) -> None:
    assert canonical.field_exists(entity, path)
    assert canonical.field_kind(entity, path) == kind


@pytest.mark.parametrize(("entity", "path"), [
    ("customer", "email"), ("customer", "contacts.fax"), ("customer", "name.first"), ("customer", ""),
    ("order", "lines.price"), ("order", "customer"), ("order", "form.x"),
    ("approval", "forms.x"), ("approval", "form."), ("approval", "approvers.foo"),
])
def test_missing_paths(entity: str, path: str) -> None:
    assert not canonical.field_exists(entity, path)
    assert canonical.field_kind(entity, path) is None


def test_field_paths_list_objects_and_leaves() -> None:
    paths = canonical.field_paths("order")
    assert {"lines", "lines.quantity", "totals", "totals.untaxed", "customer_id"} <= set(paths)
    assert len(paths) == len(set(paths))
    assert "contacts.mobile" in canonical.field_paths("customer")
    assert "form" in canonical.field_paths("approval")
    assert all(canonical.field_exists(e, p) for e in canonical.ENTITIES for p in canonical.field_paths(e))


# --- status lifecycles --------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), [
    ("draft", "pending_approval"), ("pending_approval", "approved"), ("pending_approval", "rejected"),
    ("approved", "fulfilled"), ("draft", "cancelled"), ("pending_approval", "cancelled"),
    ("approved", "cancelled"), ("rejected", "draft"), ("rejected", "cancelled"),
    ("draft", "approved"), ("rejected", "pending_approval"),  # skipped states a poll did not see
    ("approved", "approved"), (None, "fulfilled"),
])
def test_order_moves_forward(old: str | None, new: str) -> None:
    assert status.can_transition("order", old, new)


@pytest.mark.parametrize(("old", "new"), [
    ("pending_approval", "draft"), ("approved", "pending_approval"), ("approved", "rejected"),
    ("fulfilled", "approved"), ("cancelled", "draft"), ("fulfilled", "cancelled"), ("cancelled", "fulfilled"),
    ("approved", "draft"), ("draft", "shipped"), ("shipped", "draft"),
])
def test_order_never_moves_backwards(old: str, new: str) -> None:
    assert not status.can_transition("order", old, new)


def test_approval_lifecycle() -> None:
    for outcome in ("approved", "rejected", "withdrawn"):
        assert status.can_transition("approval", "pending", outcome)
        assert not status.can_transition("approval", outcome, "pending")
        assert status.can_transition("approval", outcome, outcome)
    assert not status.can_transition("approval", "approved", "rejected")


def test_customers_have_no_lifecycle() -> None:
    assert status.can_transition("customer", "blocked", "prospect")


def test_lifecycles_cover_exactly_the_schema_enums() -> None:
    assert set(status.ORDER_TRANSITIONS) == set(load("order")["properties"]["status"]["enum"])
    assert set(status.APPROVAL_TRANSITIONS) == set(load("approval")["properties"]["status"]["enum"])
    for graph in status.TRANSITIONS.values():
        assert all(targets <= set(graph) for targets in graph.values())


def test_one_vendor_record_seen_as_two_entities_gets_two_canonical_ids() -> None:
    """A golden record is keyed by its canonical id alone: an Odoo sale.order indexed as an
    order and as the request of its approval must not share (and overwrite) one."""
    from hub.engine.identity import new_canonical_id  # noqa: PLC0415

    order = new_canonical_id("order", "erp", "sale.order", "42")
    assert order == new_canonical_id("order", "erp", "sale.order", "42")  # a retry derives the same id
    assert order != new_canonical_id("approval", "erp", "sale.order", "42")
