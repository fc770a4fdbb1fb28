"""Links, golden records, match keys and cursors."""

from __future__ import annotations

import pytest

from hub.store import Golden, Link, Store


def _link(ext: str, canonical: str, **kw: str | None) -> Link:
    return Link("customer", canonical, "crm", "Account", ext, **kw)


# --- links -----------------------------------------------------------------------------------


def test_links_by_external_and_canonical(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links([_link("A1", "c1", seen_hash="s1"), _link("A2", "c2"), _link("A3", "c3")])
        tx.upsert_links([Link("customer", "c1", "erp", "res.partner", "7", written_hash="w1")])
    with store.transaction() as tx:
        found = tx.links_by_external("crm", "Account", ["A1", "A2", "missing", "A1"])
        assert set(found) == {"A1", "A2"}
        assert found["A1"].canonical_id == "c1"
        assert found["A1"].seen_hash == "s1"
        assert found["A1"].id is not None and found["A1"].updated_at is not None
        assert tx.links_by_external("erp", "Account", ["A1"]) == {}
        by_canonical = tx.links_by_canonical("crm", "Account", ["c1", "c3", "nope"])
        assert {k: v.external_id for k, v in by_canonical.items()} == {"c1": "A1", "c3": "A3"}
        erp = tx.links_by_canonical("erp", "res.partner", ["c1"])
        assert erp["c1"].external_id == "7" and erp["c1"].written_hash == "w1"
        assert tx.links_by_external("crm", "Account", []) == {}


def test_links_of_lists_every_system(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links(
            [
                _link("A1", "c1"),
                Link("customer", "c1", "erp", "res.partner", "7"),
                Link("customer", "c1", "oa", "contact", "x9"),
                _link("A2", "c2"),
            ]
        )
        assert [(lk.system, lk.external_id) for lk in tx.links_of("customer", "c1")] == [
            ("crm", "A1"),
            ("erp", "7"),
            ("oa", "x9"),
        ]
        assert tx.links_of("order", "c1") == []


def test_upsert_links_is_idempotent_on_the_unique_key(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links([_link("A1", "c1", seen_hash="s1", written_hash="w1")])
        tx.upsert_links([_link("A1", "c1", seen_hash="s1", written_hash="w1")])
        first = tx.links_by_external("crm", "Account", ["A1"])["A1"]
        # a re-match moves the link; a None hash keeps the stored one
        tx.upsert_links([_link("A1", "c9", seen_hash="s2")])
        moved = tx.links_by_external("crm", "Account", ["A1"])["A1"]
        assert moved.id == first.id
        assert (moved.canonical_id, moved.seen_hash, moved.written_hash) == ("c9", "s2", "w1")
        # the same key twice in one batch: last wins, no error
        tx.upsert_links([_link("A1", "c1", seen_hash="x"), _link("A1", "c2", seen_hash="y")])
        again = tx.links_by_external("crm", "Account", ["A1"])["A1"]
        assert (again.canonical_id, again.seen_hash) == ("c2", "y")
        assert len(tx.links_of("customer", "c2")) == 1
        # the key is (system, object, external_id): same external id elsewhere is another link
        tx.upsert_links([Link("customer", "c2", "crm", "Contact", "A1")])
        assert len(tx.links_of("customer", "c2")) == 2


def test_one_vendor_record_can_be_linked_as_several_entities(store: Store) -> None:
    """An ERP sales order is an order, and also the request of its contract approval."""
    with store.transaction() as tx:
        tx.upsert_links([Link("order", "ord-1", "erp", "sale.order", "42"),
                         Link("approval", "apr-1", "erp", "sale.order", "42")])
        tx.upsert_links([Link("approval", "apr-1", "erp", "sale.order", "42", seen_hash="s")])
        assert tx.links_by_external("erp", "sale.order", ["42"], "order")["42"].canonical_id == "ord-1"
        assert tx.links_by_external("erp", "sale.order", ["42"], "approval")["42"].canonical_id == "apr-1"
        assert tx.links_of("order", "ord-1")[0].external_id == "42"
        assert tx.links_of("approval", "apr-1")[0].seen_hash == "s"


def test_links_by_canonical_keeps_to_one_entity(store: Store) -> None:
    """Stores from before entity-specific canonical ids may hold an order and an approval
    under one id, both linked to the same sales order: each flow must see its own link."""
    with store.transaction() as tx:
        tx.upsert_links([Link("order", "same-id", "erp", "sale.order", "42", written_hash="order"),
                         Link("approval", "same-id", "erp", "sale.order", "42", written_hash="approval")])
        assert tx.links_by_canonical("erp", "sale.order", ["same-id"], "approval")["same-id"].written_hash == "approval"
        assert tx.links_by_canonical("erp", "sale.order", ["same-id"], "order")["same-id"].written_hash == "order"


def test_hash_setters_update_in_batch(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links([_link(f"A{i}", f"c{i}", written_hash="old") for i in range(5)])
        assert tx.set_seen_hashes("crm", "Account", {"A0": "s0", "A1": "s1", "nope": "x"}) == 2
        assert tx.set_written_hashes("crm", "Account", {"A0": None, "A2": "w2"}) == 2
        assert tx.set_written_hashes("crm", "Account", {}) == 0
        found = tx.links_by_external("crm", "Account", ["A0", "A1", "A2", "A3"])
        assert [(found[k].seen_hash, found[k].written_hash) for k in ("A0", "A1", "A2", "A3")] == [
            ("s0", None),
            ("s1", "old"),
            (None, "w2"),
            (None, "old"),
        ]


def test_links_by_canonical_with_duplicates_picks_the_oldest(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links([_link("A1", "c1")])
        tx.upsert_links([_link("A0", "c1")])
        assert tx.links_by_canonical("crm", "Account", ["c1"])["c1"].external_id == "A1"


def test_links_lookups_span_many_chunks(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_links([_link(f"A{i}", f"c{i}") for i in range(1_300)])
        ids = [f"A{i}" for i in range(1_300)]
        assert len(tx.links_by_external("crm", "Account", ids)) == 1_300
        assert len(tx.links_by_canonical("crm", "Account", [f"c{i}" for i in range(1_300)])) == 1_300


# --- golden ----------------------------------------------------------------------------------


def test_golden_put_inserts_then_bumps_version(store: Store) -> None:
    provenance = {"name": {"system": "crm", "updated_at": "2024-01-01T00:00:00Z"}}
    a = Golden("c1", "customer", {"name": "ACME"}, provenance, "h1")
    b = Golden("c2", "customer", {"name": "Globex", "tags": ["x", 1, None]}, {}, "h2")
    with store.transaction() as tx:
        assert tx.golden_put([a, b]) == {"c1": 1, "c2": 1}
        assert tx.golden_put([]) == {}
    with store.transaction() as tx:
        got = tx.golden_get(["c1", "c2", "missing"])
        assert set(got) == {"c1", "c2"}
        assert got["c1"].data == {"name": "ACME"}
        assert got["c1"].meta["name"]["system"] == "crm"
        assert got["c2"].data["tags"] == ["x", 1, None]
        assert got["c1"].version == 1 and got["c1"].updated_at is not None
        changed = Golden("c1", "customer", {"name": "ACME Ltd"}, {}, "h3", version=99)
        assert tx.golden_put([changed, changed]) == {"c1": 2}
        assert tx.golden_put([changed]) == {"c1": 3}
        got = tx.golden_get(["c1"], for_update=True)["c1"]
        assert (got.data, got.hash, got.version) == ({"name": "ACME Ltd"}, "h3", 3)
        assert got.updated_at is not None and got.updated_at.tzinfo is not None


# --- match keys ------------------------------------------------------------------------------


def test_match_lookup_returns_every_candidate(store: Store) -> None:
    with store.transaction() as tx:
        tx.match_put(
            "customer",
            [
                ("email", "a@x.com", "c2"),
                ("email", "a@x.com", "c1"),
                ("email", "b@x.com", "c3"),
                ("tax_id", "a@x.com", "c9"),
            ],
        )
        tx.match_put("order", [("email", "a@x.com", "o1")])
        tx.match_put("customer", [("email", "a@x.com", "c1")])  # idempotent
        found = tx.match_lookup("customer", "email", ["a@x.com", "b@x.com", "none@x.com"])
        assert found == {"a@x.com": ["c1", "c2"], "b@x.com": ["c3"]}
        assert tx.match_lookup("customer", "email", []) == {}


def test_match_delete(store: Store) -> None:
    with store.transaction() as tx:
        tx.match_put(
            "customer", [("email", "a@x.com", "c1"), ("tax_id", "T1", "c1"), ("email", "b@x.com", "c2")]
        )
        assert tx.match_delete("customer", ["c1"], key="email") == 1
        assert tx.match_lookup("customer", "tax_id", ["T1"]) == {"T1": ["c1"]}
        assert tx.match_delete("customer", ["c1", "c2"]) == 2
        assert tx.match_lookup("customer", "email", ["a@x.com", "b@x.com"]) == {}


# --- cursors ---------------------------------------------------------------------------------


def test_cursor_set_get_delete(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.cursor_get("crm-to-erp") is None
        tx.cursor_set("crm-to-erp", "2024-01-01T00:00:00Z")
        tx.cursor_set("other", "5")
    with store.transaction() as tx:
        assert tx.cursor_get("crm-to-erp") == "2024-01-01T00:00:00Z"
        tx.cursor_set("crm-to-erp", "2024-02-01T00:00:00Z")
        assert tx.cursor_get("crm-to-erp") == "2024-02-01T00:00:00Z"
        tx.cursor_set("crm-to-erp", None)
        assert tx.cursor_get("crm-to-erp") is None
        assert tx.cursor_delete("crm-to-erp") is True
        assert tx.cursor_delete("crm-to-erp") is False
        assert tx.cursor_get("other") == "5"


@pytest.mark.parametrize("flow", ["a/b c", "流程"])
def test_cursor_names_are_plain_text(store: Store, flow: str) -> None:
    with store.transaction() as tx:
        tx.cursor_set(flow, "x")
        assert tx.cursor_get(flow) == "x"
