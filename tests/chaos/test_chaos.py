"""Chaos (issue 6): about one vendor call in ten meets a fault (rate limits with Retry-After,
5xx, slow answers, dropped connections) while 10,000 customers sync both ways between a
Salesforce CRM and an Odoo ERP and 1,000 won deals become ERP orders whose outcome flows back;
the hub (`synchub run`: API, scheduler and worker in one process) is killed with SIGKILL three
times at seeded moments and restarted. At the end every system holds exactly the expected
records, none twice, and the dead-letter queue holds exactly the records seeded as invalid,
each with a reason naming the field.

The kill moments are fractions of the records the hub has to create, drawn from the seed and
measured on the sandboxes (records written, not seconds), so that every kill lands in the
middle of the work on any machine, and most right after a vendor write the hub has not
committed yet. While the hub runs, users keep working: customers are typed into both
products, phones edited in the CRM, credit limits set in the ERP, orders confirmed or
cancelled in the ERP.
"""

from __future__ import annotations

import pickle
import random
import sqlite3
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hubproc import HubProcess, hub_env, synchub
from world import (CRM_COUNT, ERP_COUNT, ERP_FIRST, WON_DEALS, Ledger, World, decide_orders, faults, start, tax_key,
                   users_at_work)

pytestmark = pytest.mark.slow

SEED = 6
CONFIG = Path(__file__).with_name("hub.yaml")
FLOWS = ("customers-crm-to-erp", "customers-erp-to-crm", "orders-crm-to-erp", "orders-erp-to-crm")
# What the hub must create: the customers each side lacks, and an order per valid won deal.
OVERLAP = CRM_COUNT + 1 - ERP_FIRST
TO_CREATE = (CRM_COUNT - OVERLAP) + (ERP_COUNT - OVERLAP) + WON_DEALS
KILL_WINDOWS = ((0.05, 0.30), (0.35, 0.65), (0.70, 0.95))  # one kill in each, as a fraction of TO_CREATE
PROGRESS_TIMEOUT = 240.0
QUIET_TIMEOUT = 300.0


# --- the run ---------------------------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[World]:
    made = start(SEED)
    try:
        yield made
    finally:
        made.close()


def test_chaos_kills_faults_and_users_leave_every_record_exactly_once(world: World, tmp_path: Path) -> None:
    store = tmp_path / "hub.db"
    env = hub_env({"CHAOS_CRM_URL": world.crm.base_url, "CHAOS_ERP_URL": world.erp.base_url,
                   "CHAOS_STORE_URL": f"sqlite:///{store}"})
    world.set_faults(faults(SEED))
    learn_both_sides(env)
    hub = HubProcess(CONFIG, env, tmp_path)
    try:
        hub.start()
        baseline = sum(world.counts().values())
        rng = random.Random(SEED)
        in_flight: list[int] = []  # per kill: records the hub had written but not committed
        for round_no, (low, high) in enumerate(KILL_WINDOWS):
            point = int(rng.uniform(low, high) * TO_CREATE)
            wait_until(lambda p=point: sum(world.counts().values()) - baseline >= p, PROGRESS_TIMEOUT,  # type: ignore[misc]
                       f"the hub to create {point} of {TO_CREATE} records (kill {round_no + 1})", hub)
            hub.kill()
            in_flight.append(uncommitted(world, store))
            hub.start()
            users_at_work(world, round_no)
        wait_until(lambda: world.counts()["erp.sale.order"] >= WON_DEALS, PROGRESS_TIMEOUT,
                   f"the {WON_DEALS} ERP orders", hub)
        decide_orders(world, [int(o["id"]) for o in world.records(world.erp, "sale.order")])
        edits_done = utc_text(datetime.now(UTC))
        wait_until(lambda: quiet(store, edits_done) is None, QUIET_TIMEOUT, "the hub to go quiet", hub,
                   why=lambda: quiet(store, edits_done))
        dead = hub.api("/dead-letters", limit=1000)
        assert hub.stop() == 0, f"the hub did not stop cleanly on SIGTERM:\n{hub.tail()}"
    finally:
        hub.close()
    assert hub.kills == 3
    assert any(in_flight), f"no kill landed between a vendor write and its commit (per kill: {in_flight})"
    final = Final.read(world, store, dead)
    try:
        check_full_syncs_find_nothing_new(env)
        check_dead_letters(final)
        check_customers(final)
        check_orders(final)
        check_faults_were_served(world)
    except AssertionError:
        final.save(tmp_path / "final.pickle")  # to study the failure without running the chaos again
        raise


def learn_both_sides(env: dict[str, str]) -> None:
    """Day one: the hub learns both systems' customers before the first real sync, so that a
    customer present in both is matched by tax id, not created twice (README, `--index`)."""
    for flow in ("customers-erp-to-crm", "customers-crm-to-erp"):
        done = synchub("sync", flow, "--index", "-c", str(CONFIG), env=env)
        assert done.returncode in (0, 1), f"synchub sync {flow} --index failed:\n{done.stderr[-3000:]}"


def wait_until(done: Callable[[], bool], timeout: float, what: str, hub: HubProcess,
               why: Callable[[], str | None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            reason = f" ({why()})" if why else ""
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}{reason}; hub log:\n{hub.tail()}")
        if hub.process is not None and hub.process.poll() is not None:
            raise AssertionError(f"the hub died on its own while waiting for {what}:\n{hub.tail()}")
        time.sleep(0.02)


def uncommitted(world: World, store: Path) -> int:
    """Records that carry the hub's key in a vendor but that the store does not know: written by
    the hub just before it was killed, before the page was committed (what keys must cover)."""
    org, db = world.crm.app.state.org, world.erp.app.state.db
    with org.lock:
        accounts = {i for i, r in org.tables["Account"].items() if r.get("Synchub_Id__c")}
    with db.lock:
        partners = {str(i) for i, r in db.tables["res.partner"].items() if r.get("ref")}
        orders = {str(i) for i, r in db.tables["sale.order"].items() if r.get("origin")}
    known = (set(links(store, "crm", "Account", "customer")) | set(links(store, "erp", "res.partner", "customer"))
             | set(links(store, "erp", "sale.order", "order")))
    return len((accounts | partners | orders) - known)


# --- quiet: nothing left to do -----------------------------------------------------------------


def utc_text(moment: datetime) -> str:
    """A time as the SQLite store writes it (UTC, text that sorts as time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def quiet(store: Path, since: str) -> str | None:
    """None once the hub has nothing left to do, else why not yet.

    Nothing left: no record job waits or runs, and every flow has finished a run that wrote
    nothing and had nothing to retry, started after the last run that wrote anything and
    after the test's last edit. Read straight from the SQLite file, read-only, so that the
    check takes no lock from the hub.
    """
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)) as db:
        pending = db.execute("SELECT count(*) FROM jobs WHERE kind = 'record' AND status IN ('queued', 'running')"
                             ).fetchone()[0]
        runs = db.execute("SELECT flow, started_at, finished_at, created + updated, failed + waiting, status "
                          "FROM runs WHERE finished_at IS NOT NULL").fetchall()
    if pending:
        return f"{pending} record jobs queued or running"
    busy = [finished for _, _, finished, wrote, left, _ in runs if wrote or left]
    after = max([since, *busy])
    idle = {flow for flow, started, _, wrote, left, status in runs
            if started > after and not wrote and not left and status != "failed"}
    missing = [flow for flow in FLOWS if flow not in idle]
    return f"no idle run since {after} yet of {', '.join(missing)}" if missing else None


# --- the checks --------------------------------------------------------------------------------


@dataclass
class Final:
    """Every system at the end, as plain records, with the ledger of what the test did."""

    ledger: Ledger
    accounts: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    partners: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    deal_links: dict[str, str]  # CRM Opportunity Id -> canonical id, from the hub's store
    dead: list[dict[str, Any]]

    @classmethod
    def read(cls, world: World, store: Path, dead: list[dict[str, Any]]) -> Final:
        return cls(world.ledger, world.records(world.crm, "Account"), world.records(world.crm, "Opportunity"),
                   world.records(world.erp, "res.partner"), world.records(world.erp, "sale.order"),
                   world.records(world.erp, "sale.order.line"), links(store, "crm", "Opportunity", "order"), dead)

    def save(self, path: Path) -> None:
        path.write_bytes(pickle.dumps(self))


def check_full_syncs_find_nothing_new(env: dict[str, str]) -> None:
    """A last full sync of every flow, each record looked at again, writes nothing."""
    for flow in FLOWS:
        done = synchub("sync", flow, "--full", "-c", str(CONFIG), env=env)
        counts = dict(part.split("=") for part in done.stdout.split() if "=" in part)
        assert done.returncode in (0, 1) and counts, f"synchub sync {flow} --full failed:\n{done.stderr[-3000:]}"
        changed = {k: v for k, v in counts.items() if k in ("created", "updated", "failed", "waiting") and v != "0"}
        assert not changed, f"a last full sync of {flow} still found work: {changed}\n{done.stdout}"


def check_dead_letters(final: Final) -> None:
    """Exactly the seeded invalid records, each once, each with a reason naming the field."""
    dead = final.dead
    found = Counter((d["flow"], str(d["payload"].get("external_id"))) for d in dead)
    twice = {key: n for key, n in found.items() if n > 1}
    assert not twice, f"records dead-lettered more than once: {twice}"
    expected = {(e.flow, e.external_id): e for e in final.ledger.dead}
    unexpected = [(d["flow"], d["payload"].get("external_id"), d["last_error"]) for d in dead
                  if (d["flow"], str(d["payload"].get("external_id"))) not in expected]
    assert not unexpected, f"dead letters for records that are not invalid: {unexpected}"
    missing = [e.what for key, e in expected.items() if key not in found]
    assert not missing, f"invalid records missing from the dead-letter queue: {missing}"
    for letter in dead:
        wanted = expected[(letter["flow"], str(letter["payload"].get("external_id")))]
        reason = letter["last_error"] or ""
        absent = [word for word in wanted.words if word not in reason]
        assert not absent, f"the dead letter of {wanted.what} does not name {absent}: {reason!r}"


def plain(text: Any) -> str | None:
    """Text as the hub's mappings normalise it on the way (full-width forms folded, trimmed):
    the system a customer was typed into keeps the typing, the other gets the normal form."""
    return unicodedata.normalize("NFKC", str(text)).strip() if text not in (None, False, "") else None


def e164(phone: Any) -> str | None:
    """A phone number as one comparable form (numbers without a country code read as Chinese)."""
    if not phone:
        return None
    return phonenumbers.format_number(phonenumbers.parse(str(phone), "CN"), phonenumbers.PhoneNumberFormat.E164)


def by_tax(records: list[dict[str, Any]], field: str, system: str) -> dict[str, dict[str, Any]]:
    """Records by tax id; a tax id held twice is a duplicate, which fails the test right here."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        grouped[tax_key(record.get(field))].append(record)
    twice = {tax: [r.get("Id") or r.get("id") for r in rs] for tax, rs in grouped.items() if len(rs) > 1 and tax}
    assert not twice, f"{len(twice)} customers are held twice in the {system}, e.g. {list(twice.items())[:5]}"
    return {tax: rs[0] for tax, rs in grouped.items()}


def check_customers(final: Final) -> None:
    """Every valid customer once in each system, with the same values on both sides."""
    ledger = final.ledger
    accounts = [a for a in final.accounts if a["Id"] not in ledger.crm_only_invalid]
    partners = [p for p in final.partners if int(p["id"]) not in ledger.erp_only_invalid]
    crm, erp = by_tax(accounts, "Tax_Id__c", "CRM"), by_tax(partners, "vat", "ERP")
    expected = set(ledger.customers)
    for system, held in (("CRM", crm), ("ERP", erp)):
        missing, extra = sorted(expected - set(held)), sorted(set(held) - expected)
        assert not missing, f"{len(missing)} customers never reached the {system}, e.g. {missing[:5]}"
        assert not extra, f"the {system} holds {len(extra)} customers nobody created, e.g. {extra[:5]}"
    wrong: list[str] = []
    for tax, company in sorted(ledger.customers.items()):
        account, partner = crm[tax], erp[tax]
        phone = e164(ledger.phones.get(tax, company.phone))
        pairs = {"name": (plain(company.name), plain(account["Name"]), plain(partner["name"])),
                 "email": (plain(company.email), plain(account["Email__c"]), plain(partner["email"])),
                 "phone": (phone, e164(account["Phone"]), e164(partner["phone"])),
                 "city": (plain(company.city), plain(account["BillingCity"]), plain(partner["city"]))}
        # the CRM owns the status; where it had none, the ERP's says what it knows (archived or not)
        pairs["status (the CRM's)"] = (ledger.crm_status.get(tax) or ("Active" if partner["active"] else "Inactive"),
                                       account["Status__c"], "(not held)")
        credit = float(partner["credit_limit"] or 0.0)
        pairs["credit limit (the ERP's)"] = (ledger.credit.get(tax, credit), float(account["Credit_Limit__c"] or 0.0),
                                            credit)
        for name, (want, in_crm, in_erp) in pairs.items():
            if want != in_crm or in_erp not in (want, "(not held)"):
                wrong.append(f"{tax} {name}: expected {want!r}, CRM {account['Id']} has {in_crm!r}, "
                             f"ERP {partner['id']} has {in_erp!r}")
    assert not wrong, f"{len(wrong)} customer fields differ between the systems:\n" + "\n".join(wrong[:20])


def links(store: Path, system: str, obj: str, entity: str) -> dict[str, str]:
    """external id -> canonical id of one system's records, read from the hub's store."""
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)) as db:
        rows = db.execute("SELECT external_id, canonical_id FROM links WHERE system = ? AND object = ? AND entity = ?",
                          (system, obj, entity)).fetchall()
    return dict(rows)


def check_orders(final: Final) -> None:
    """Each valid won deal exactly one ERP order, for its customer, with its lines; the ERP's
    number, total and outcome shown on the deal."""
    ledger = final.ledger
    orders = final.orders
    lines = {int(line["id"]): line for line in final.lines}
    partners = {int(p["id"]): p for p in final.partners}
    deals = {d["Id"]: d for d in final.deals}
    origins = Counter(o["origin"] for o in orders)
    twice = {origin: n for origin, n in origins.items() if n > 1}
    assert not twice, f"{len(twice)} deals became several ERP orders: {list(twice.items())[:5]}"
    assert len(orders) == len(ledger.deals), f"{len(orders)} ERP orders for {len(ledger.deals)} valid won deals"
    canonical = final.deal_links
    by_origin = {o["origin"]: o for o in orders}
    wrong: list[str] = []
    for deal_id, deal in sorted(ledger.deals.items()):
        order = by_origin.get(canonical.get(deal_id, "?"))
        if order is None:
            wrong.append(f"deal {deal_id}: no ERP order")
            continue
        got_lines = sorted((lines[i]["product_id"][1].split("]")[0].lstrip("["), lines[i]["product_uom_qty"],
                            lines[i]["price_unit"]) for i in order["order_line"])
        partner = partners[order["partner_id"][0]]
        state = ledger.order_states.get(int(order["id"]), "draft")
        stage = {"cancel": "Closed Lost"}.get(state, "Closed Won")
        shown = deals[deal_id]
        for name, want, got in (("customer", deal.account_tax, tax_key(partner["vat"])),
                                ("lines", sorted(deal.lines), got_lines),
                                ("total", deal.total, order["amount_total"]),
                                ("state", state, order["state"]),
                                ("deal amount", order["amount_total"], shown["Amount"]),
                                ("deal name", order["name"], shown["Name"]),
                                ("deal stage", stage, shown["StageName"])):
            if want != got:
                wrong.append(f"deal {deal_id} / ERP order {order['id']} {name}: expected {want!r}, got {got!r}")
    assert not wrong, f"{len(wrong)} orders are wrong:\n" + "\n".join(wrong[:20])


def check_faults_were_served(world: World) -> None:
    """The chaos was real: each sandbox served every kind of fault."""
    for system, injected in world.faults_served().items():
        missing = [kind for kind, count in injected.items() if not count]
        assert not missing, f"the {system} sandbox never served {missing}: {injected}"
