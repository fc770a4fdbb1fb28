"""The chaos test's world: a Salesforce CRM and an Odoo ERP sandbox on loopback, seeded with
customers on both sides, won deals, a few invalid records, and what the test expects of them.

Everything is drawn from one seed. Customers are the sandboxes' own seeded companies
(`connectors.sandbox.seed`): the CRM holds companies 1-5,500 and the ERP 4,501-10,000, so the
1,000 companies of the overlap are the same customer on both sides (same tax id), which the
hub must match instead of creating twice. Won deals, invalid records, customers arriving
and edits made while the hub runs go in through the sandboxes' back door
(`/_sandbox/records/...`), as users typing into the products would, never through the faults.

The `Ledger` keeps what the test did, so that the end state is checked against the seeded
data and the edits, never against anything the hub reports about itself.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.salesforce.sandbox import PRODUCTS as SF_PRODUCTS
from connectors.salesforce.sandbox import make_id
from connectors.sandbox import FaultSpec, RunningServer, SandboxOptions, load, serve
from connectors.sandbox.faults import KINDS
from connectors.sandbox.seed import Company, companies

CRM_FIRST, CRM_COUNT = 1, 5_500
ERP_FIRST, ERP_COUNT = 4_501, 5_500
ARRIVALS_FIRST = 20_001  # companies typed in while the hub runs are numbered from here
WON_DEALS = 1_000
UNKNOWN_PRODUCT = make_id("01t", 999)  # a Product2 the CRM sells and the ERP's catalogue lacks
BAD_PHONE = "138-0013-8000-9999"


def faults(seed: int) -> FaultSpec:
    """About one call in ten meets a fault, of every kind the issue names."""
    return FaultSpec(rate_limit=0.03, error=0.03, slow=0.02, drop=0.02, retry_after=0.5, slow_seconds=0.3, seed=seed)


def tax_key(value: Any) -> str:
    """A tax id as both systems should hold it once synced: the hub strips spaces and dashes."""
    return re.sub(r"[\s\-]", "", str(value or "")).upper()


@dataclass(frozen=True)
class ExpectedDead:
    """A record seeded invalid: which flow must dead-letter it, and what its reason must name."""

    flow: str
    external_id: str
    what: str
    words: tuple[str, ...]  # the field and the bad value, as the reason must show them


@dataclass(frozen=True)
class Deal:
    """A won deal as seeded in the CRM: its account's tax id and its lines (code, qty, price)."""

    id: str
    account_tax: str
    lines: tuple[tuple[str, float, float], ...]

    @property
    def total(self) -> float:
        return round(sum(qty * price for _, qty, price in self.lines), 2)


@dataclass
class Ledger:
    """What the test put into the systems, for the final checks."""

    customers: dict[str, Company] = field(default_factory=dict)  # tax key -> the company, every valid one
    crm_status: dict[str, str] = field(default_factory=dict)     # tax key -> Status__c the CRM was seeded with
    crm_only_invalid: set[str] = field(default_factory=set)      # CRM Account Ids that must not reach the ERP
    erp_only_invalid: set[int] = field(default_factory=set)      # ERP partner ids that must not reach the CRM
    deals: dict[str, Deal] = field(default_factory=dict)
    dead: list[ExpectedDead] = field(default_factory=list)
    phones: dict[str, str] = field(default_factory=dict)         # tax key -> phone typed in the CRM later
    credit: dict[str, float] = field(default_factory=dict)       # tax key -> credit limit set in the ERP later
    order_states: dict[int, str] = field(default_factory=dict)   # ERP order id -> state set by an ERP user


@dataclass
class World:
    """The two running sandboxes, their seed and the ledger."""

    crm: RunningServer
    erp: RunningServer
    seed: int
    ledger: Ledger
    rng: random.Random
    account_ids: dict[int, str] = field(default_factory=dict)  # company number -> CRM Account Id
    partner_ids: dict[int, int] = field(default_factory=dict)  # company number -> ERP partner id
    arrivals: int = 0

    # --- reading the sandboxes (the back door: neither faulted nor counted) ------------------

    def records(self, server: RunningServer, obj: str) -> list[dict[str, Any]]:
        answer = requests.get(f"{server.base_url}/_sandbox/records/{obj}", timeout=60)
        answer.raise_for_status()
        return answer.json()["records"]  # type: ignore[no-any-return]

    def counts(self) -> dict[str, int]:
        """Records per object, read in-process under each sandbox's lock (cheap enough to poll)."""
        org, db = self.crm.app.state.org, self.erp.app.state.db
        with org.lock:
            crm = {name: len(org.tables[name]) for name in ("Account", "Opportunity")}
        with db.lock:
            erp = {name: len(db.tables[name]) for name in ("res.partner", "sale.order")}
        return {f"crm.{k}": v for k, v in crm.items()} | {f"erp.{k}": v for k, v in erp.items()}

    def set_faults(self, spec: FaultSpec) -> None:
        """The spec's random faults, after one forced fault of each kind, so that every kind is
        met by each system however few calls it gets."""
        for server in (self.crm, self.erp):
            answer = requests.put(f"{server.base_url}/_sandbox/faults", json={**spec.as_dict(), "next": list(KINDS)},
                                  timeout=10)
            answer.raise_for_status()

    def faults_served(self) -> dict[str, dict[str, int]]:
        return {name: requests.get(f"{server.base_url}/_sandbox/faults", timeout=10).json()["injected"]
                for name, server in (("crm", self.crm), ("erp", self.erp))}

    # --- writing through the back door ---------------------------------------------------------

    def _post(self, server: RunningServer, obj: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        answer = requests.post(f"{server.base_url}/_sandbox/records/{obj}", json={"records": records}, timeout=60)
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def _patch(self, server: RunningServer, obj: str, record_id: str | int, values: dict[str, Any]) -> None:
        answer = requests.patch(f"{server.base_url}/_sandbox/records/{obj}/{record_id}", json=values, timeout=10)
        answer.raise_for_status()

    def add_accounts(self, values: list[dict[str, Any]]) -> list[str]:
        return [r["Id"] for r in self._post(self.crm, "Account", values)["records"]]

    def add_partners(self, values: list[dict[str, Any]]) -> list[int]:
        return [int(i) for i in self._post(self.erp, "res.partner", values)["ids"]]

    def close(self) -> None:
        for server in (self.crm, self.erp):
            server.stop()


def account_values(company: Company) -> dict[str, Any]:
    """A CRM Account as a sales rep would type the company in."""
    return {"Name": company.name, "AccountNumber": f"CUST-{company.number:05d}", "Tax_Id__c": company.tax_id,
            "Email__c": company.email, "Phone": company.phone, "Website": company.website,
            "BillingStreet": company.street, "BillingCity": company.city, "BillingPostalCode": company.postal_code,
            "BillingCountry": company.country, "Industry": company.industry}


def partner_values(company: Company) -> dict[str, Any]:
    """An ERP partner as the finance team would type the company in."""
    return {"name": company.name, "is_company": True, "company_type": "company", "vat": company.tax_id,
            "email": company.email, "phone": company.phone, "website": company.website, "street": company.street,
            "city": company.city, "zip": company.postal_code, "customer_rank": 1}


def start(seed: int) -> World:
    """Both sandboxes started and seeded (no faults yet), with the ledger of what they hold."""
    crm = serve(load("salesforce").create_app(SandboxOptions(records=CRM_COUNT, seed=seed, first=CRM_FIRST)))
    try:
        erp = serve(load("odoo").create_app(SandboxOptions(records=ERP_COUNT, seed=seed, first=ERP_FIRST)))
    except BaseException:
        crm.stop()
        raise
    world = World(crm, erp, seed, Ledger(), random.Random(seed))
    try:
        _learn_seeded(world)
        _seed_won_deals(world)
        _seed_invalid(world)
    except BaseException:
        world.close()
        raise
    return world


def _learn_seeded(world: World) -> None:
    numbers = range(CRM_FIRST, ERP_FIRST + ERP_COUNT)
    for company in companies(len(numbers), world.seed, numbers.start):
        world.ledger.customers[tax_key(company.tax_id)] = company
    by_tax = {tax_key(c.tax_id): c.number for c in world.ledger.customers.values()}
    assert len(by_tax) == len(numbers), "two seeded companies share a tax id: pick another seed"
    for account in world.records(world.crm, "Account"):
        world.account_ids[by_tax[tax_key(account["Tax_Id__c"])]] = account["Id"]
        world.ledger.crm_status[tax_key(account["Tax_Id__c"])] = account["Status__c"]
    for partner in world.records(world.erp, "res.partner"):
        world.partner_ids[by_tax[tax_key(partner["vat"])]] = int(partner["id"])
    assert len(world.account_ids) == CRM_COUNT and len(world.partner_ids) == ERP_COUNT


def _deal_lines(rng: random.Random) -> list[tuple[str, Any]]:
    return rng.sample(sorted(SF_PRODUCTS.items()), rng.randint(1, 3))


def _seed_won_deals(world: World) -> None:
    """Won deals with one to three product lines, on accounts of the CRM (overlap included)."""
    rng = world.rng
    numbers = sorted(world.account_ids)
    opportunities, lines = [], []
    for n in range(WON_DEALS):
        number = rng.choice(numbers)
        close = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        opportunities.append({"AccountId": world.account_ids[number], "Name": f"Chaos deal {n:04d} (customer {number})",
                              "StageName": "Closed Won", "CloseDate": close, "CurrencyIsoCode": "CNY"})
        lines.append([(product_id, product, float(rng.randint(1, 20))) for product_id, product in _deal_lines(rng)])
    stored = world._post(world.crm, "Opportunity", opportunities)["records"]
    items = []
    taxes = {world.account_ids[n]: tax_key(c.tax_id) for n, c in _by_number(world).items() if n in world.account_ids}
    for opportunity, deal_lines in zip(stored, lines, strict=True):
        items.extend({"OpportunityId": opportunity["Id"], "Product2Id": product_id, "Quantity": qty,
                      "UnitPrice": product.price} for product_id, product, qty in deal_lines)
        world.ledger.deals[opportunity["Id"]] = Deal(opportunity["Id"], taxes[opportunity["AccountId"]],
                                                     tuple((p.code, qty, p.price) for _, p, qty in deal_lines))
    world._post(world.crm, "OpportunityLineItem", items)


def _by_number(world: World) -> dict[int, Company]:
    return {c.number: c for c in world.ledger.customers.values()}


def _seed_invalid(world: World) -> None:
    """Two bad accounts and two bad deals in the CRM, two bad partners in the ERP."""
    ledger = world.ledger
    bad = list(companies(4, world.seed + 1, 30_001))  # another seed: tax ids of their own
    email_account = {**account_values(bad[0]), "Email__c": bad[0].email.replace("@", ".")}
    phone_account = {**account_values(bad[1]), "Phone": BAD_PHONE}
    email_id, phone_id = world.add_accounts([email_account, phone_account])
    ledger.crm_only_invalid |= {email_id, phone_id}
    ledger.dead += [
        ExpectedDead("customers-crm-to-erp", email_id, "a CRM account whose e-mail has no @",
                     ("contacts.email", email_account["Email__c"])),
        ExpectedDead("customers-crm-to-erp", phone_id, "a CRM account with an impossible phone number",
                     ("contacts.phone", BAD_PHONE)),
    ]
    some_account = world.account_ids[CRM_FIRST]
    orphan, unknown = world._post(world.crm, "Opportunity", [
        {"Name": "Chaos deal without an account", "StageName": "Closed Won", "CloseDate": "2025-06-30"},
        {"Name": "Chaos deal with a product the ERP lacks", "AccountId": some_account, "StageName": "Closed Won",
         "CloseDate": "2025-06-30"},
    ])["records"]
    world._post(world.crm, "OpportunityLineItem", [
        {"OpportunityId": unknown["Id"], "Product2Id": UNKNOWN_PRODUCT, "Quantity": 2.0, "UnitPrice": 99.0}])
    ledger.dead += [
        ExpectedDead("orders-crm-to-erp", orphan["Id"], "a won deal without an account",
                     ("customer_id", "is required but empty")),
        ExpectedDead("orders-crm-to-erp", unknown["Id"], "a won deal whose product the ERP does not sell",
                     ("product", f"{unknown['Name']} Product")),
    ]
    email_partner = {**partner_values(bad[2]), "email": bad[2].email.replace("@", " at ")}
    parent = world.partner_ids[ERP_FIRST + ERP_COUNT - 1]
    nameless = {"name": False, "type": "delivery", "parent_id": parent, "street": bad[3].street, "city": bad[3].city}
    email_pid, nameless_pid = world.add_partners([email_partner, nameless])
    ledger.erp_only_invalid |= {email_pid, nameless_pid}
    ledger.dead += [
        ExpectedDead("customers-erp-to-crm", str(email_pid), "an ERP partner whose e-mail is not one",
                     ("contacts.email", email_partner["email"])),
        ExpectedDead("customers-erp-to-crm", str(nameless_pid), "an ERP delivery address without a name",
                     ("name", "is required but empty")),
    ]


# --- what users do while the hub runs --------------------------------------------------------


def users_at_work(world: World, round_no: int, per_kind: int = 10) -> None:
    """New customers typed into both products, phones edited in the CRM, credit limits set in
    the ERP: changes that arrive between crashes and must land exactly once."""
    rng = random.Random(world.seed * 100 + round_no)
    ledger = world.ledger
    fresh = list(companies(2 * per_kind, world.seed, ARRIVALS_FIRST + world.arrivals))
    world.arrivals += len(fresh)
    for company in fresh:
        ledger.customers[tax_key(company.tax_id)] = company
    world.add_accounts([account_values(c) for c in fresh[:per_kind]])
    world.add_partners([partner_values(c) for c in fresh[per_kind:]])
    # Edits go to customers of one side only, so that no edit races the hub writing the same
    # record with an older value (a lost update that no sync can prevent without vendor locks).
    crm_only = [n for n in world.account_ids if n < ERP_FIRST]
    erp_only = [n for n in world.partner_ids if n >= CRM_FIRST + CRM_COUNT]
    by_number = _by_number(world)
    for number in rng.sample(crm_only, per_kind):
        phone = f"+86 21 6{rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        world._patch(world.crm, "Account", world.account_ids[number], {"Phone": phone})
        ledger.phones[tax_key(by_number[number].tax_id)] = phone
    for number in rng.sample(erp_only, per_kind):
        credit = float(rng.randint(1, 90) * 10_000)
        world._patch(world.erp, "res.partner", world.partner_ids[number], {"credit_limit": credit})
        ledger.credit[tax_key(by_number[number].tax_id)] = credit


def decide_orders(world: World, order_ids: list[int], per_state: int = 30) -> None:
    """ERP users confirm some sales orders and cancel others; their deals must show it."""
    rng = random.Random(world.seed * 1000)
    for n, order_id in enumerate(rng.sample(sorted(order_ids), 2 * per_state)):
        state = "sale" if n < per_state else "cancel"
        world._patch(world.erp, "sale.order", order_id, {"state": state})
        world.ledger.order_states[order_id] = state
