"""Engine throughput: customers from one fake vendor to another through the whole pipeline.

No HTTP: both vendors are `connectors.fake` (SQLite files), so the figures are the engine's
and the store's own cost. For each store (SQLite, PostgreSQL) it prints:
  - records/s of a first run that creates every record in the target,
  - the time of a second run with nothing changed, as a ratio of the first: both the
    incremental one (cursor: nothing to pull) and a full one (`--full`: every record pulled
    again, recognised as unchanged, nothing written),
  - peak RSS of the process.
`--rss-only N` runs one first sync of N records in a fresh process and prints its peak RSS,
for the memory target at 1,000,000 records.

Targets (issue 3): >= 5,000 records/s on SQLite on a 2-core machine; the no-change run at
most 15% of the first; peak RSS under 300 MB at 1,000,000 records.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapping import machine  # noqa: E402  (bench/mapping.py: one description of the machine for every benchmark)

from connectors.fake.connector import FakeVendor  # noqa: E402
from hub.config import load_config  # noqa: E402
from hub.engine.runner import Engine  # noqa: E402
from hub.logging import configure as configure_logging  # noqa: E402
from hub.store import Store  # noqa: E402
from hub.store.testing import temporary_postgres_database  # noqa: E402

DATA = Path(__file__).parent / "data"
FLOW = "customers-crm-to-erp"
SEED_CHUNK = 10_000


def contact(i: int) -> dict[str, Any]:
    return {"name": f"客户 {i:07d} 贸易有限公司", "tax_id": f"91310{i:013d}", "email": f"buyer{i}@example.cn",
            "credit": 1000 + i % 5000, "terms": "Net 30", "updated": "2026-01-01T00:00:00Z"}


def make_config(tmp: Path, store_url: str) -> Path:
    config = yaml.safe_load((DATA / "hub.yaml").read_text("utf-8"))
    config["mappings_dir"] = str(DATA / "mappings")
    config["store"] = {"url": store_url}
    for name in ("crm", "erp"):
        config["systems"][name]["options"]["state"] = str(tmp / f"{name}.sqlite")
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def seed(tmp: Path, records: int) -> None:
    crm = FakeVendor.file(tmp / "crm.sqlite")
    for start in range(0, records, SEED_CHUNK):
        crm.insert("contact", [contact(i) for i in range(start, min(start + SEED_CHUNK, records))])
    crm.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_run(engine: Engine, full: bool = False) -> tuple[float, Any]:
    started = time.perf_counter()
    report = engine.run_flow(FLOW, full=full)
    return time.perf_counter() - started, report


def bench_store(label: str, store_url: str, records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="synchub-bench-") as folder:
        tmp = Path(folder)
        url = store_url.replace("{tmp}", str(tmp))
        seed(tmp, records)
        config = load_config(make_config(tmp, url), env={})
        store = Store.open(url)
        store.upgrade()
        engine = Engine(config, store)
        first, report = timed_run(engine)
        assert report.counts.created == records, report.counts
        incremental, again = timed_run(engine)
        full, rerun = timed_run(engine, full=True)
        assert rerun.counts.unchanged == records and not rerun.counts.updated, rerun.counts
        created = FakeVendor.file(tmp / "erp.sqlite").count("partner")
        engine.close()
        store.dispose()
    assert created == records, created
    return {"store": label, "records": records, "first_s": round(first, 2), "records_per_s": round(records / first),
            "no_change_incremental_s": round(incremental, 3), "incremental_ratio": round(incremental / first, 4),
            "no_change_full_s": round(full, 2), "full_ratio": round(full / first, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def rss_only(records: int) -> None:
    """One first sync in this fresh process; prints peak RSS as JSON on the last line."""
    with tempfile.TemporaryDirectory(prefix="synchub-rss-") as folder:
        tmp = Path(folder)
        seed(tmp, records)
        before = peak_rss_mb()
        url = f"sqlite:///{tmp / 'hub.db'}"
        store = Store.open(url)
        store.upgrade()
        engine = Engine(load_config(make_config(tmp, url), env={}), store)
        seconds, report = timed_run(engine)
        engine.close()
        store.dispose()
    print(json.dumps({"records": records, "seconds": round(seconds, 1), "records_per_s": round(records / seconds),
                      "peak_rss_after_seeding_mb": round(before, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
                      "created": report.counts.created}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("SYNCHUB_TEST_PG_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--rss-records", type=int, default=0, help="also run the RSS check at this many records")
    parser.add_argument("--rss-only", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("warning", as_json=True)  # the runs' info lines would cost time and flood the output
    if args.rss_only:
        rss_only(args.rss_only)
        return
    m = machine()
    print(f"engine benchmark, {time.strftime('%Y-%m-%d')}, {m['arch']}, {m['nproc']} CPUs, {m['cpu']}, "
          f"{m['implementation']} {m['python']}")
    results = []
    for label in args.stores.split(","):
        if label == "sqlite":
            results.append(bench_store("sqlite", "sqlite:///{tmp}/hub.db", args.records))
        elif label == "postgresql":
            with temporary_postgres_database(args.pg_url, prefix="synchub_bench_") as url:
                results.append(bench_store("postgresql", url, args.records))
        print(json.dumps(results[-1]))
    for r in results:
        verdict = "PASS" if r["records_per_s"] >= 5000 else "FAIL"
        print(f"  {r['store']:<10} {r['records']:>9,} records  first {r['first_s']:>7.1f} s  "
              f"{r['records_per_s']:>7,} rec/s ({verdict} vs 5,000 on sqlite)  "
              f"no-change: incremental {r['incremental_ratio']:.2%}, full {r['full_ratio']:.1%} "
              f"({'PASS' if r['full_ratio'] <= 0.15 else 'FAIL'} vs 15%)  peak RSS {r['peak_rss_mb']} MB")
    if args.rss_records:
        child = subprocess.run([sys.executable, __file__, "--rss-only", str(args.rss_records)], capture_output=True,
                               text=True, check=True)
        rss = json.loads(child.stdout.strip().splitlines()[-1])
        verdict = "PASS" if rss["peak_rss_mb"] < 300 else "FAIL"
        print(f"  RSS at {rss['records']:,} records: peak {rss['peak_rss_mb']} MB ({verdict} vs 300 MB), "
              f"{rss['records_per_s']:,} rec/s")


if __name__ == "__main__":
    main()
