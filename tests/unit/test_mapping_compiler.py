"""The mapping language: each rule kind, its errors as data, and located compile problems."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from hub.errors import MappingError
from hub.mapping import Mapping, compile_document
from hub.yamldoc import parse_yaml


def compile_text(text: str) -> Mapping:
    return compile_document(parse_yaml(textwrap.dedent(text).encode(), "m.yaml", MappingError))


def problems_of(text: str) -> list[str]:
    with pytest.raises(MappingError) as caught:
        compile_text(text)
    return [str(p) for p in caught.value.problems]


HEAD = """
connector: test
object: thing
entity: customer
"""


def inbound(rules: str, extra: str = "") -> Mapping:
    return compile_text(HEAD + extra + "inbound:\n" + textwrap.indent(textwrap.dedent(rules), "  "))


def run_in(rules: str, record: dict[str, Any], extra: str = "") -> tuple[dict[str, Any], list[str]]:
    result = inbound(rules, extra).to_canonical(record, validate=False)
    return result.value, [str(e) for e in result.errors]


class TestPaths:
    def test_dotted_and_indexed_paths(self) -> None:
        value, errors = run_in(
            """
            name: a.b
            owner: partner_id[1]
            notes: "lines[-1].text"
            """,
            {"a": {"b": "X"}, "partner_id": [7, "Li Lei"], "lines": [{"text": "first"}, {"text": "last"}]},
        )
        assert errors == []
        assert value == {"name": "X", "owner": "Li Lei", "notes": "last"}

    def test_missing_paths_leave_the_field_out(self) -> None:
        value, errors = run_in("name: a.b\nowner: p[3]\nnotes: q.r.s\n", {"a": "text", "p": [1], "q": None})
        assert (value, errors) == ({}, [])

    def test_nested_targets_build_dicts(self) -> None:
        value, _ = run_in("contacts.email: e\ncontacts.phone: p\n", {"e": "a@b.cn", "p": "+8613800138000"})
        assert value == {"contacts": {"email": "a@b.cn", "phone": "+8613800138000"}}

    def test_null_values_of_the_mapping_mean_empty(self) -> None:
        value, _ = run_in("name: n\nnotes: c\nowner: o\n", {"n": "A", "c": False, "o": ""},
                          extra="null_values: [false, \"\"]\n")
        assert value == {"name": "A"}

    def test_false_is_kept_when_not_declared_empty(self) -> None:
        mapping = compile_text(HEAD + "outbound:\n  active: {from: status, map: {active: true}, default: false}\n")
        assert mapping.to_vendor({"status": "blocked"}).value == {"active": False}


class TestSources:
    def test_const(self) -> None:
        value, _ = run_in("kind: {const: company}\ntags: {const: [a, b]}\n", {})
        assert value == {"kind": "company", "tags": ["a", "b"]}

    def test_const_containers_are_not_shared_between_records(self) -> None:
        mapping = inbound("tags: {const: [a]}\n")
        first = mapping.to_canonical({}, validate=False).value
        first["tags"].append("mutated")
        assert mapping.to_canonical({}, validate=False).value == {"tags": ["a"]}

    def test_template(self) -> None:
        value, _ = run_in('billing_address.street: {template: "{s1}  {s2}, {{No.}} {n}"}\n',
                          {"s1": "浦东大道", "s2": None, "n": 100})
        assert value == {"billing_address": {"street": "浦东大道 , {No.} 100"}}

    def test_template_with_every_placeholder_empty_is_empty(self) -> None:
        value, _ = run_in('notes: {template: "{a} - {b}"}\n', {"a": None})
        assert value == {}

    def test_from_list_with_coalesce(self) -> None:
        value, _ = run_in("contacts.phone: {from: [mobile, phone], transform: coalesce}\n",
                          {"mobile": "", "phone": "+8613800138000"})
        assert value == {"contacts": {"phone": "+8613800138000"}}


class TestModifiers:
    def test_transform_chain_with_arguments(self) -> None:
        value, _ = run_in("credit_limit: {from: c, transform: [trim, {decimal: {places: 2}}]}\n", {"c": " 1,234.5 "})
        assert value == {"credit_limit": "1234.50"}

    def test_transform_error_names_field_and_source(self) -> None:
        _, errors = run_in("credit_limit: {from: amount, transform: decimal}\n", {"amount": "12.5x"})
        assert len(errors) == 1
        assert errors[0].startswith("credit_limit: ")
        assert errors[0].endswith("(from amount)")

    def test_every_bad_field_is_reported_at_once(self) -> None:
        _, errors = run_in("credit_limit: {from: a, transform: decimal}\ncontacts.email: {from: e, transform: email}\n",
                           {"a": "nope", "e": "nope"})
        assert [e.split(":")[0] for e in errors] == ["credit_limit", "contacts.email"]

    def test_value_table_with_default(self) -> None:
        rules = "status: {from: s, map: {A: active, I: inactive}, default: prospect}\n"
        assert run_in(rules, {"s": "I"})[0] == {"status": "inactive"}
        assert run_in(rules, {"s": "Z"})[0] == {"status": "prospect"}
        assert run_in(rules, {})[0] == {"status": "prospect"}

    def test_value_table_without_default_rejects_unknown_values(self) -> None:
        _, errors = run_in("status: {from: s, map: {A: active}}\n", {"s": "Q"})
        assert errors == ["status: 'Q' is not in the value table (known: A) (from s)"]

    def test_boolean_keys_do_not_catch_numbers(self) -> None:
        rules = "status: {from: s, map: {true: active, 0: inactive}}\n"
        assert run_in(rules, {"s": True})[0] == {"status": "active"}
        assert run_in(rules, {"s": "true"})[0] == {"status": "active"}
        assert run_in(rules, {"s": 0})[0] == {"status": "inactive"}
        assert run_in(rules, {"s": 1})[1] == ["status: 1 is not in the value table (known: true, 0) (from s)"]
        assert run_in(rules, {"s": False})[1] == ["status: False is not in the value table (known: true, 0) (from s)"]

    def test_when_conditions(self) -> None:
        rules = """
        name: {from: n, when: {field: deleted, equals: false}}
        kind: {const: company, when: [{field: t, in: [A, B]}, {field: n, exists: true}]}
        """
        assert run_in(rules, {"n": "X", "deleted": False, "t": "A"})[0] == {"name": "X", "kind": "company"}
        assert run_in(rules, {"n": "X", "deleted": 0, "t": "C"})[0] == {}

    def test_required(self) -> None:
        _, errors = run_in("name: {from: n, transform: trim, required: true}\n", {"n": "   "})
        assert errors == ["name: is required but empty (from n)"]

    def test_default_when_source_is_missing(self) -> None:
        assert run_in("currency: {from: c, default: CNY}\n", {})[0] == {"currency": "CNY"}


class Resolver:
    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.calls: list[tuple[str, Any]] = []

    def resolve(self, entity: str, value: Any) -> Any:
        self.calls.append((entity, value))
        return self.known.get(value)


ORDER = """
connector: test
object: so
entity: order
id: id
inbound:
  number: name
  customer_id: {from: "partner_id[0]", ref: customer}
  currency: {from: $.cur, default: CNY}
  lines:
    from: order_line
    where: {field: display_type, not_in: [line_section, line_note]}
    each:
      sku: code
      quantity: {from: qty, transform: decimal}
      unit_price: {from: price, transform: decimal}
"""


class TestEachAndRef:
    def test_each_maps_items_filters_and_reads_the_root(self) -> None:
        mapping = compile_text(ORDER)
        record = {
            "name": "S00042", "partner_id": [7, "ACME"], "cur": "EUR",
            "order_line": [
                {"code": "A-1", "qty": 2, "price": 10.5, "display_type": False},
                {"display_type": "line_section", "name": "Hardware"},
                {"code": "B-2", "qty": "1.5", "price": "3", "display_type": False},
            ],
        }
        resolver = Resolver({7: "cust-1"})  # type: ignore[dict-item]
        result = mapping.to_canonical(record, resolver, validate=False)
        assert result.errors == []
        assert result.value == {
            "number": "S00042", "customer_id": "cust-1", "currency": "EUR",
            "lines": [{"sku": "A-1", "quantity": "2", "unit_price": "10.5"},
                      {"sku": "B-2", "quantity": "1.5", "unit_price": "3"}],
        }
        assert resolver.calls == [("customer", 7)]

    def test_item_errors_name_the_item(self) -> None:
        record = {"name": "S1", "order_line": [{"code": "A", "qty": 1}, {"code": "B", "qty": "x"}]}
        errors = compile_text(ORDER).to_canonical(record, validate=False).errors
        assert [(e.field, e.source) for e in errors] == [("lines[1].quantity", "order_line[1].qty")]

    def test_unresolved_reference_is_a_wait_not_a_failure(self) -> None:
        result = compile_text(ORDER).to_canonical({"name": "S1", "partner_id": [9, "X"]}, Resolver({}), validate=False)
        assert [(e.field, e.code) for e in result.errors] == [("customer_id", "unresolved_ref")]

    def test_each_over_a_non_list_is_a_field_error(self) -> None:
        errors = compile_text(ORDER).to_canonical({"name": "S1", "order_line": "nope"}, validate=False).errors
        assert [e.field for e in errors] == ["lines"]


class TestOutbound:
    def test_key_field_carries_the_canonical_id(self) -> None:
        mapping = compile_text(HEAD + "id: Id\nkey: Synchub_Id__c\noutbound:\n  Name: name\n")
        result = mapping.to_vendor({"id": "c-1", "name": "ACME"})
        assert result.value == {"Name": "ACME", "Synchub_Id__c": "c-1"}
        assert mapping.hub_key({"Synchub_Id__c": "c-1"}) == "c-1"
        assert mapping.external_id({"Id": "001A"}) == "001A"

    def test_outbound_sources_must_be_canonical_fields(self) -> None:
        found = problems_of(HEAD + "outbound:\n  Name: nmae\n")
        assert found == ["m.yaml:6:9: outbound: 'nmae' is not a field of customer (did you mean 'name'?) (at outbound.Name)"]

    def test_a_record_that_is_not_an_object_is_an_error(self) -> None:
        mapping = compile_text(HEAD + "outbound:\n  Name: name\n")
        assert mapping.to_vendor(["x"]).errors[0].reason.startswith("a record must be a JSON object")  # type: ignore[arg-type]


class TestCompileProblems:
    def test_unknown_transform_is_located_with_a_suggestion(self) -> None:
        found = problems_of(HEAD + "inbound:\n  name: {from: n, transform: [trim, uppper]}\n")
        assert found == ["m.yaml:6:37: unknown transform 'uppper' (did you mean 'upper'?) (at inbound.name.transform[1])"]

    def test_unknown_canonical_field(self) -> None:
        found = problems_of(HEAD + "inbound:\n  contacts.emial: e\n")
        assert found == [
            "m.yaml:6:3: inbound: 'contacts.emial' is not a field of customer (did you mean 'contacts.email'?) "
            "(at inbound.contacts.emial)"
        ]

    def test_unknown_rule_key(self) -> None:
        found = problems_of(HEAD + "inbound:\n  name: {form: n}\n")
        assert found == ["m.yaml:6:10: unknown key 'form' (did you mean 'from'?) (at inbound.name.form)"]

    def test_rule_needs_exactly_one_source(self) -> None:
        found = problems_of(HEAD + "inbound:\n  name: {from: n, const: x}\n")
        assert found == ["m.yaml:6:9: a rule needs exactly one of 'from', 'const' or 'template' (at inbound.name)"]

    def test_many_problems_at_once(self) -> None:
        found = problems_of(HEAD + "inbound:\n  nmae: n\n  tax_id: {from: t, transform: {decimal: {place: 2}}}\n"
                            "  status: {from: s, ref: custmer}\n")
        assert len(found) == 3
        assert "'nmae' is not a field of customer (did you mean 'name'?)" in found[0]
        assert "unknown argument 'place'" in found[1] and "did you mean 'places'?" in found[1]
        assert "unknown entity 'custmer' (did you mean 'customer'?)" in found[2]

    def test_bad_paths(self) -> None:
        found = problems_of(HEAD + "inbound:\n  name: 'a..b'\n  notes: {template: 'fixed'}\n")
        assert found[0].startswith("m.yaml:6:9: 'a..b' is not a field path")
        assert "needs at least one {field} placeholder" in found[1]

    def test_unknown_entity_and_missing_header(self) -> None:
        assert problems_of("connector: x\nobject: y\nentity: custmer\ninbound: {name: n}\n") == [
            "m.yaml:3:9: unknown entity 'custmer' (did you mean 'customer'?) (at entity)"
        ]
        assert problems_of("connector: x\ninbound: {name: n}\n") == [
            "m.yaml:1:1: missing required key 'entity'",
            "m.yaml:1:1: missing required key 'object'",
        ]


class TestOnly:
    """`only`: the vendor records that are this entity at all (others are skipped, not errors)."""

    MAPPING = HEAD + textwrap.dedent("""\
        only:
          - {field: StageName, in: [Closed Won]}
          - {field: IsDeleted, not_equals: true}
        inbound:
          name: Name
        """)

    def test_records_meeting_every_condition_are_taken(self) -> None:
        mapping = compile_text(self.MAPPING)
        assert mapping.takes({"Name": "A", "StageName": "Closed Won", "IsDeleted": False})
        assert not mapping.takes({"Name": "B", "StageName": "Prospecting"})
        assert not mapping.takes({"Name": "C", "StageName": "Closed Won", "IsDeleted": True})

    def test_a_mapping_without_only_takes_everything(self) -> None:
        assert compile_text(HEAD + "inbound:\n  name: Name\n").takes({})

    def test_a_bad_condition_is_located(self) -> None:
        problems = problems_of(HEAD + "only: {field: StageName, is: won}\ninbound:\n  name: Name\n")
        assert problems and all(p.startswith("m.yaml:") and "(at only" in p for p in problems)
