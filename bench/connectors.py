"""Connector throughput and API-call economy, each connector against its own sandbox over HTTP.

For each connector with a sandbox and a shipped customer mapping, on loopback:
  - push: N canonical customers (from the sandbox seed generator) mapped outbound with the
    shipped mapping and created through `Connector.push` (the engine hands a connector one
    page of writes at a time; so does this);
  - pull: a full `Connector.pull` of the N records the push created.
It prints records/s of each, and the API calls the sandbox served against the fewest the
vendor's limits allow (`Connector.limits`: page size, batch size): for a push, the sum over
push calls of ceil(ops / batch size). Every call counts as used, token and metadata calls
(Salesforce describe, Odoo authenticate) included.

Target (issue 4): calls used at most 1.1x the minimum, for every connector, both ways.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapping import machine  # noqa: E402  (bench/mapping.py)

from connectors import registry  # noqa: E402
from connectors.base import OpKind, WriteOp  # noqa: E402
from connectors.sandbox import SandboxOptions, load, serve, system_for  # noqa: E402
from connectors.sandbox.seed import Company, companies  # noqa: E402
from hub.logging import configure as configure_logging  # noqa: E402
from hub.mapping import Mapping, load_mapping  # noqa: E402

PAGE = 1000  # writes handed to one push call, as the engine hands over one page of a source
TARGET = 1.1


def canonical(company: Company) -> dict[str, Any]:
    """The canonical customer the hub would hold for a seeded company."""
    return {
        "id": f"cus_{company.number:012d}",
        "name": company.name, "kind": "company", "tax_id": company.tax_id.replace("-", ""),
        "contacts": {"email": company.email, "phone": company.phone.replace(" ", ""), "website": company.website},
        "billing_address": {"street": company.street, "city": company.city, "state": company.state,
                            "postal_code": company.postal_code, "country": company.country,
                            "country_code": company.country_code},
        "status": "active",
    }


def customer_mapping(name: str) -> Mapping | None:
    found = sorted((ROOT / "mappings" / name).glob("*.customer.yaml"))
    return load_mapping(found[0]) if found else None


def read_fields(mapping: Mapping) -> list[str]:
    """The vendor fields the mapping's inbound rules read (top-level names)."""
    names = (re.split(r"[.\[]", str(step[3]), maxsplit=1)[0] for step in (mapping.inbound.steps if mapping.inbound else ()))
    return sorted({n for n in names if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) and n != "const"})


def bench_connector(name: str, count: int, fields: bool = False) -> dict[str, Any]:
    """`fields`: configure the fields to read (Salesforce option `fields`, from the mapping)."""
    mapping = customer_mapping(name)
    if mapping is None:
        return {"connector": name, "skipped": "no shipped customer mapping"}
    server = serve(load(name).create_app(SandboxOptions(records=0)))
    kit = server.app.state.kit
    extra = {"fields": {mapping.object: read_fields(mapping)}} if fields else None
    connector = registry.connector_class(name)(system_for(name, server, f"{name}-bench", extra))
    try:
        payloads = []
        for company in companies(count, seed=3):
            record = canonical(company)
            result = mapping.to_vendor(record)
            if result.errors:
                raise SystemExit(f"{name}: the shipped mapping refused a seeded customer: {result.errors[0]}")
            payloads.append((record["id"], result.value))
        key_field = mapping.key_path
        kit.reset_stats()
        push_min = 0
        started = time.perf_counter()
        for start in range(0, count, PAGE):
            ops = [WriteOp(OpKind.CREATE, payload, key, key_field=key_field)
                   for key, payload in payloads[start:start + PAGE]]
            push_min += math.ceil(len(ops) / connector.limits.batch_size)
            failed = [r for r in connector.push(mapping.object, ops) if not r.ok]
            if failed:
                raise SystemExit(f"{name}: push failed: {failed[0].error}")
        push_s = time.perf_counter() - started
        push_calls = kit.calls
        kit.reset_stats()
        started = time.perf_counter()
        pulled = sum(len(page.records) for page in connector.pull(mapping.object, None))
        pull_s = time.perf_counter() - started
        pull_calls = kit.calls
    finally:
        connector.close()
        server.stop()
    pull_min = math.ceil(count / connector.limits.page_size)
    return {"connector": name + (" (fields configured)" if fields else ""), "records": count, "pulled": pulled,
            "push_s": round(push_s, 2), "push_per_s": round(count / push_s), "push_calls": push_calls,
            "push_min": push_min, "push_ratio": round(push_calls / push_min, 3),
            "pull_s": round(pull_s, 2), "pull_per_s": round(pulled / pull_s), "pull_calls": pull_calls,
            "pull_min": pull_min, "pull_ratio": round(pull_calls / pull_min, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--connectors", default="salesforce,hubspot,odoo,erpnext",
                        help="comma-separated connector names")
    args = parser.parse_args()
    configure_logging("warning", as_json=True)
    m = machine()
    print(f"connector benchmark, {time.strftime('%Y-%m-%d')}, {m['arch']}, {m['nproc']} CPUs, {m['cpu']}, "
          f"{m['implementation']} {m['python']}")
    runs = [(name.strip(), False) for name in args.connectors.split(",")]
    if "salesforce" in dict(runs):  # a config listing its fields spares the describe call
        runs.append(("salesforce", True))
    for name, fields in runs:
        result = bench_connector(name, args.records, fields)
        print(json.dumps(result, ensure_ascii=False))
        if "skipped" in result:
            continue
        worst = max(result["push_ratio"], result["pull_ratio"])
        print(f"  {result['connector']:<31} push {result['push_per_s']:>6,} rec/s, {result['push_calls']:>6,} calls "
              f"(min {result['push_min']:,}, {result['push_ratio']:.2f}x)   pull {result['pull_per_s']:>6,} rec/s, "
              f"{result['pull_calls']:>5,} calls (min {result['pull_min']:,}, {result['pull_ratio']:.2f}x)   "
              f"{'PASS' if worst <= TARGET else 'FAIL'} vs {TARGET}x")


if __name__ == "__main__":
    main()
