"""Webhook intake: OA callbacks per second the hub accepts, against a bare FastAPI endpoint.

For each OA vendor (DingTalk, Feishu, WeCom) and each store (SQLite, PostgreSQL), on loopback:
  - the hub runs as `synchub api --upgrade` in its own process, from a temporary config with
    the three OA systems (the sandboxes' callback keys, `base_url` on a port nothing listens
    on: accepting a callback makes no vendor call) and one `webhook: true` approval flow per
    vendor (dingtalk -> feishu, feishu -> wecom, wecom -> dingtalk, object `contract`);
  - a bare endpoint runs in another process on the same server stack (FastAPI under uvicorn,
    one process, log level warning, no access log): `POST /webhooks/{system}` answers 200
    `success` and does nothing else;
  - N callbacks per vendor are built before timing, each a distinct approval status change,
    encrypted and signed as the vendor's sandbox builds it (fresh instance id, current
    timestamp, fresh nonce), and sent by K client threads, each with its own keep-alive
    connection, as fast as the server answers. The bare endpoint gets the very same requests
    (same URLs, headers and bodies) right before and again right after the hub does; its
    figure is over both passes, so that drift in the machine's load hits both sides alike.
The client is the standard library's `http.client` (one connection per thread): a
`requests.Session` costs the client ~1 ms of CPU per call, which on 2 CPUs caps the client
near 1,000 calls/s with the bare server 30-40% busy, so the "bare" figure would be the
client's (`--client requests` shows it).
After timing, every hub answer must be the vendor's success answer (DingTalk: the encrypted,
signed `success`; Feishu: 200; WeCom: 200 with an empty body) and the store's webhook inbox
must hold N new events of the system, with N new record jobs of its flow.

It prints callbacks/s of the hub and of the bare endpoint, their ratio, the hub's p50/p99
latency, and the CPU each server process spent per callback (a server near 1 CPU-second per
second is saturated; the client shares the machine). The hub logs at its default level, info
(`--hub-log-level`), to a file; any warning or error it logs fails the run.

Target (issue 5): the hub accepts at least 0.5x the callbacks per second of the bare endpoint.

    .venv/bin/python bench/webhooks.py [--callbacks 3000] [--clients 8] [--stores sqlite,postgresql]
                                       [--vendors dingtalk,feishu,wecom]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapping import machine  # noqa: E402  (bench/mapping.py: one description of the machine for every benchmark)
from sqlalchemy import func, select  # noqa: E402

from connectors.dingtalk import sandbox as dingtalk_sandbox  # noqa: E402
from connectors.dingtalk.webhook import is_success_reply, nonce, sealed  # noqa: E402
from connectors.feishu import sandbox as feishu_sandbox  # noqa: E402
from connectors.wecom import sandbox as wecom_sandbox  # noqa: E402
from connectors.wecom.crypto import WeComCrypto  # noqa: E402
from connectors.wecom.webhook import render_envelope  # noqa: E402
from hub.logging import configure as configure_logging  # noqa: E402
from hub.store import Store  # noqa: E402
from hub.store.schema import jobs, webhook_inbox  # noqa: E402
from hub.store.testing import temporary_postgres_database  # noqa: E402

VENDORS = ("dingtalk", "feishu", "wecom")
SANDBOXES = {"dingtalk": dingtalk_sandbox, "feishu": feishu_sandbox, "wecom": wecom_sandbox}
TARGET_SYSTEM = {"dingtalk": "feishu", "feishu": "wecom", "wecom": "dingtalk"}  # no non-OA approval mapping ships
KIND = "contract"
TARGET = 0.5
WARMUP = 100  # callbacks per vendor and server before timing (connections, lazily opened connectors, caches)
START_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def flow_name(vendor: str) -> str:
    return f"{vendor}-contracts"


# --- callbacks, as each vendor's sandbox builds them --------------------------------------------


@dataclass(frozen=True)
class Call:
    """One prebuilt request: path with query, body, headers."""

    path: str
    body: bytes
    headers: dict[str, str]


def dingtalk_calls(count: int, tag: str) -> list[Call]:
    """`bpms_instance_change` finish events (see connectors/dingtalk/sandbox.py `_deliver`)."""
    keys = dingtalk_sandbox.callback_keys()
    process = dingtalk_sandbox.PROCESSES[KIND]
    applicant = dingtalk_sandbox.APPLICANTS[0]
    calls = []
    for i in range(count):
        now = int(time.time() * 1000)
        instance_id = f"{base64.b64encode(secrets.token_bytes(15), b'xy').decode()}{tag}{i:07d}"
        message = {
            "EventType": "bpms_instance_change", "processInstanceId": instance_id, "corpId": dingtalk_sandbox.CORP_ID,
            "createTime": now - 3_600_000, "title": f"{dingtalk_sandbox.USERS[applicant]}提交的{process.name}",
            "type": "finish", "staffId": applicant,
            "url": f"https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm?dinghash=approval&procInstId={instance_id}",
            "processCode": process.code, "bizCategoryId": "", "businessId": f"{tag}{i:012d}", "finishTime": now,
            "result": "agree"}
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp, nonce_value = str(now), nonce()
        encrypt, signature = sealed(text, keys.token, keys.key, keys.owner_key, timestamp, nonce_value)
        calls.append(Call(f"/webhooks/dingtalk?msg_signature={signature}&timestamp={timestamp}&nonce={nonce_value}",
                          json.dumps({"encrypt": encrypt}).encode("utf-8"), {"Content-Type": "application/json"}))
    return calls


def feishu_calls(count: int, tag: str) -> list[Call]:
    """1.0 `approval_instance` status events (see connectors/feishu/sandbox.py `deliver`)."""
    code = feishu_sandbox.BY_KIND[KIND].code
    calls = []
    for _ in range(count):
        instance = {"approval_code": code, "instance_code": str(uuid.uuid4()).upper(), "uuid": uuid.uuid4().hex[:16]}
        event = feishu_sandbox._status_event(instance, "APPROVED", int(time.time() * 1000))
        outbound = feishu_sandbox.signed_call("/webhooks/feishu", event)
        calls.append(Call(outbound.url, outbound.body, dict(outbound.headers)))
    return calls


def wecom_calls(count: int, tag: str) -> list[Call]:
    """`sys_approval_change` events, approved (see connectors/wecom/sandbox.py `Approvals.notify`)."""
    template = wecom_sandbox.TEMPLATES[KIND]
    crypto = WeComCrypto(wecom_sandbox.CALLBACK_TOKEN, wecom_sandbox.ENCODING_AES_KEY, wecom_sandbox.CORP_ID)
    calls = []
    for i in range(count):
        now = int(time.time())
        info = {
            "sp_no": f"{tag}{i:08d}", "sp_name": template.name, "sp_status": 2, "template_id": template.template_id,
            "apply_time": now - 3600, "applyer": {"userid": wecom_sandbox.SALES[0], "partyid": "2"},
            "sp_record": [{"sp_status": 2, "approverattr": 1,
                           "details": [{"approver": {"userid": user}, "speech": "同意", "sp_status": 2,
                                        "sptime": now, "media_id": []} for user in users]}
                          for users in template.approvers],
            "comments": []}
        message = wecom_sandbox.approval_xml(info, 2, now)
        timestamp, nonce_value = str(now), str(secrets.randbelow(10**10 - 10**8) + 10**8)
        encrypted = crypto.encrypt(message)
        query = f"msg_signature={crypto.sign(timestamp, nonce_value, encrypted)}&timestamp={timestamp}&nonce={nonce_value}"
        calls.append(Call(f"/webhooks/wecom?{query}",
                          render_envelope(wecom_sandbox.CORP_ID, wecom_sandbox.AGENT_ID, encrypted),
                          {"Content-Type": "text/xml"}))
    return calls


BUILDERS: dict[str, Callable[[int, str], list[Call]]] = {
    "dingtalk": dingtalk_calls, "feishu": feishu_calls, "wecom": wecom_calls}


def is_vendor_success(vendor: str, status: int, body: bytes) -> bool:
    """Whether the vendor would count the callback as delivered (and stop retrying)."""
    if vendor == "dingtalk":
        return status == 200 and is_success_reply(body, dingtalk_sandbox.callback_keys())
    if vendor == "wecom":
        return status == 200 and body == b""
    return status == 200


# --- the two servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp: Path, store_url: str) -> Path:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the webhook path makes no vendor call
    systems = {}
    for vendor in VENDORS:
        declared = SANDBOXES[vendor].system_config(dead)
        systems[vendor] = {key: declared[key] for key in ("connector", "base_url", "auth", "webhook", "options")}
    flows = {flow_name(v): {"entity": "approval", "source": {"system": v, "object": KIND},
                            "targets": [{"system": TARGET_SYSTEM[v], "object": KIND}], "webhook": True}
             for v in VENDORS}
    config = {"version": 1, "store": {"url": store_url}, "mappings_dir": str(ROOT / "mappings"),
              "systems": systems, "flows": flows}
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def serve_bare(port: int) -> None:
    """The bare endpoint: the hub's server stack (FastAPI, uvicorn, one process) and nothing else."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI(title="bare")

    @app.post("/webhooks/{system}")
    async def receive(system: str) -> PlainTextResponse:
        return PlainTextResponse("success")

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    # the same settings as `synchub api` (hub/cli/service.py)
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                  timeout_graceful_shutdown=10)).run()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def cpu_seconds(self) -> tuple[float, float]:
        """(user, system) CPU time the server process has used so far, all its threads."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(name: str, command: list[str], port: int, log: Path, env: dict[str, str]) -> Server:
    handle = log.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode} before it was ready:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit(f"{name} not ready after {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


# --- load ------------------------------------------------------------------------------------


@dataclass
class Load:
    seconds: float
    latencies: list[float]
    answers: list[tuple[int, bytes]]
    server_user: float  # CPU seconds of the server process during the load
    server_sys: float

    @property
    def server_cpu(self) -> float:
        return self.server_user + self.server_sys

    @property
    def per_s(self) -> float:
        return len(self.answers) / self.seconds

    def percentile_ms(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


class HttpClient:
    """One keep-alive connection of the standard library's HTTP client (`http.client`)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)

    def post(self, call: Call) -> tuple[int, bytes]:
        self.connection.request("POST", call.path, body=call.body, headers=call.headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.connection.close()


class RequestsClient:
    """One keep-alive `requests.Session` (costs the client ~1 ms of CPU per call: see `--client`)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def post(self, call: Call) -> tuple[int, bytes]:
        response = self.session.post(self.base_url + call.path, data=call.body, headers=call.headers, timeout=60)
        return response.status_code, response.content

    def close(self) -> None:
        self.session.close()


CLIENTS: dict[str, type[HttpClient] | type[RequestsClient]] = {"http.client": HttpClient, "requests": RequestsClient}


def send(server: Server, calls: list[Call], clients: int, client_kind: str) -> Load:
    """Every call once, from `clients` threads with a keep-alive connection each, as fast as answered."""
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(calls)
    latencies = [0.0] * len(calls)
    connections = [CLIENTS[client_kind](server.base_url) for _ in range(clients)]
    next_index = itertools.count().__next__  # atomic under the GIL
    go = threading.Event()
    errors: list[BaseException] = []

    def client(connection: HttpClient | RequestsClient) -> None:
        post, clock = connection.post, time.perf_counter
        go.wait()
        try:
            while (i := next_index()) < len(calls):
                began = clock()
                answers[i] = post(calls[i])
                latencies[i] = clock() - began
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in connections]
    for thread in threads:
        thread.start()
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    for connection in connections:
        connection.close()
    if errors:
        raise SystemExit(f"{server.name}: a client failed: {errors[0]!r}")
    return Load(seconds, latencies, answers, cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])


def inbox_counts(store_url: str) -> dict[str, tuple[int, int]]:
    """(inbox events, record jobs of its flow) per OA system."""
    store = Store.open(store_url)
    try:
        with store.transaction() as tx:
            counts = {}
            for vendor in VENDORS:
                events = tx.connection.execute(select(func.count()).select_from(webhook_inbox)
                                               .where(webhook_inbox.c.system == vendor)).scalar_one()
                queued = tx.connection.execute(select(func.count()).select_from(jobs)
                                               .where(jobs.c.flow == flow_name(vendor))).scalar_one()
                counts[vendor] = (int(events), int(queued))
            return counts
    finally:
        store.dispose()


def hub_env(log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCHUB_")}  # no store URL override etc.
    env["SYNCHUB_LOG_LEVEL"] = log_level
    return env


def bench_store(label: str, store_url: str, vendors: list[str], count: int, clients: int, client_kind: str,
                bare: Server, tmp: Path, log_level: str) -> list[dict[str, Any]]:
    config = make_config(tmp, store_url)
    port = free_port()
    hub = start_server(f"hub ({label})", [sys.executable, "-m", "hub.cli", "api", "--config", str(config),
                                          "--port", str(port), "--upgrade"], port, tmp / f"hub-{label}.log",
                       hub_env(log_level))
    results = []
    try:
        for vendor in vendors:
            tag = secrets.token_hex(3)
            warm = BUILDERS[vendor](WARMUP, tag + "w")
            send(bare, warm, clients, client_kind)
            warmed = send(hub, warm, clients, client_kind)
            bad = [a for a in warmed.answers if not is_vendor_success(vendor, *a)]
            if bad:
                raise SystemExit(f"{vendor} on {label}: the hub refused a warm-up callback: {bad[0][0]} {bad[0][1][:300]!r}")
            before = inbox_counts(store_url)[vendor]
            calls = BUILDERS[vendor](count, tag + "t")
            built = time.time()
            bare_first = send(bare, calls, clients, client_kind)  # the bare endpoint right before and right
            hub_load = send(hub, calls, clients, client_kind)     # after the hub, so that drift in the
            age = time.time() - built                             # machine's load hits both sides alike
            bare_second = send(bare, calls, clients, client_kind)
            bare_load = Load(bare_first.seconds + bare_second.seconds, bare_first.latencies + bare_second.latencies,
                             bare_first.answers + bare_second.answers, bare_first.server_user + bare_second.server_user,
                             bare_first.server_sys + bare_second.server_sys)
            if any(status != 200 for status, _ in bare_load.answers):
                raise SystemExit(f"{vendor}: the bare endpoint answered something other than 200")
            after = inbox_counts(store_url)[vendor]
            refused = [(i, a) for i, a in enumerate(hub_load.answers) if not is_vendor_success(vendor, *a)]
            stored, queued = after[0] - before[0], after[1] - before[1]
            result = {
                "store": label, "vendor": vendor, "callbacks": count, "clients": clients, "client": client_kind,
                "hub_s": round(hub_load.seconds, 3), "hub_per_s": round(hub_load.per_s),
                "bare_s": [round(bare_first.seconds, 3), round(bare_second.seconds, 3)],
                "bare_per_s": round(bare_load.per_s),
                "bare_per_s_runs": [round(bare_first.per_s), round(bare_second.per_s)],
                "ratio": round(hub_load.per_s / bare_load.per_s, 3),
                "hub_p50_ms": round(hub_load.percentile_ms(50), 2), "hub_p99_ms": round(hub_load.percentile_ms(99), 2),
                "bare_p50_ms": round(bare_load.percentile_ms(50), 2),
                "bare_p99_ms": round(bare_load.percentile_ms(99), 2),
                "hub_cpu_ms_per_callback": round(hub_load.server_cpu / count * 1000, 3),
                "hub_sys_ms_per_callback": round(hub_load.server_sys / count * 1000, 3),
                "bare_cpu_ms_per_callback": round(bare_load.server_cpu / (2 * count) * 1000, 3),
                "bare_sys_ms_per_callback": round(bare_load.server_sys / (2 * count) * 1000, 3),
                "hub_cpu_busy": round(hub_load.server_cpu / hub_load.seconds, 2),
                "bare_cpu_busy": round(bare_load.server_cpu / bare_load.seconds, 2),
                "request_bytes": round(statistics.mean(len(c.body) for c in calls)),
                "success_answers": count - len(refused), "stored": stored, "jobs": queued,
                "oldest_callback_age_s": round(age, 1)}
            print(json.dumps(result), flush=True)
            if refused:
                i, (status, body) = refused[0]
                stale = " (callbacks older than the 300 s the connectors accept: use fewer)" if age > 240 else ""
                raise SystemExit(f"{vendor} on {label}: {len(refused)} answers were not the vendor's success{stale}; "
                                 f"the first (callback {i}): {status} {body[:300]!r}")
            if stored != count or queued != count:
                raise SystemExit(f"{vendor} on {label}: expected {count} new inbox events and jobs, "
                                 f"found {stored} events and {queued} jobs")
            results.append(result)
    finally:
        hub.stop()
    problems = [line for line in hub.log.read_text("utf-8", "replace").splitlines()
                if any(mark in line for mark in ('"level": "error"', '"level": "warning"', "ERROR:", "WARNING:",
                                                 "Traceback"))]
    if problems:
        raise SystemExit(f"hub ({label}) logged {len(problems)} warnings or errors, the first: {problems[0][:500]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=3000, help="callbacks per vendor and store (default 3000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads (default 8)")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="http.client",
                        help="HTTP client of each thread (default http.client; requests saturates the client "
                             "near 1,000 calls/s on 2 CPUs, well below the bare endpoint)")
    parser.add_argument("--stores", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--vendors", default=",".join(VENDORS), help="comma-separated: " + ", ".join(VENDORS))
    parser.add_argument("--pg-url", default=os.environ.get("SYNCHUB_TEST_PG_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--hub-log-level", default="info",
                        help="the hub process's SYNCHUB_LOG_LEVEL (default info, what `synchub api` runs at)")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        serve_bare(args.bare_server)
        return
    vendors = [v.strip() for v in args.vendors.split(",") if v.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if unknown := [v for v in vendors if v not in VENDORS]:
        parser.error(f"unknown vendor {unknown[0]!r}; choose from {', '.join(VENDORS)}")
    if unknown := [s for s in stores if s not in ("sqlite", "postgresql")]:
        parser.error(f"unknown store {unknown[0]!r}; choose from sqlite, postgresql")
    if args.callbacks < 100 or args.clients < 1:
        parser.error("--callbacks must be at least 100 and --clients at least 1")
    configure_logging("warning", as_json=True)
    m = machine()
    print(f"webhook benchmark, {time.strftime('%Y-%m-%d')}, {m['arch']}, {m['nproc']} CPUs, {m['cpu']}, "
          f"{m['implementation']} {m['python']}; {args.callbacks} callbacks per vendor, {args.clients} {args.client} clients, "
          f"hub log level {args.hub_log_level}", flush=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="synchub-bench-webhooks-") as folder:
        tmp = Path(folder)
        port = free_port()
        bare = start_server("bare endpoint", [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)],
                            port, tmp / "bare.log", hub_env("warning"))
        try:
            for label in stores:
                if label == "sqlite":
                    results += bench_store("sqlite", f"sqlite:///{tmp / 'hub.db'}", vendors, args.callbacks,
                                           args.clients, args.client, bare, tmp, args.hub_log_level)
                else:
                    with temporary_postgres_database(args.pg_url, prefix="synchub_bench_") as url:
                        results += bench_store("postgresql", url, vendors, args.callbacks, args.clients, args.client,
                                               bare, tmp, args.hub_log_level)
        finally:
            bare.stop()
    for r in results:
        print(f"  {r['store']:<10} {r['vendor']:<8} hub {r['hub_per_s']:>6,}/s (p50 {r['hub_p50_ms']:.1f} ms, "
              f"p99 {r['hub_p99_ms']:.1f} ms, {r['hub_cpu_ms_per_callback']:.2f} CPU-ms/callback)  "
              f"bare {r['bare_per_s']:>6,}/s ({r['bare_cpu_ms_per_callback']:.2f} CPU-ms/callback)  "
              f"ratio {r['ratio']:.2f}x  {'PASS' if r['ratio'] >= TARGET else 'FAIL'} vs {TARGET}x")


if __name__ == "__main__":
    main()
