"""The hub's HTTP service over real loopback HTTP: webhooks, admin API, auth, health, metrics.

The hub runs on a fake CRM and ERP (`connectors.fake`), whose webhooks are signed with an
HMAC of the body; the vendor-specific callbacks are tested with their connectors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from connectors.fake.connector import SIGNATURE_HEADER, FakeVendor, sign
from connectors.sandbox import RunningServer, serve
from hub.api import create_app
from hub.api.auth import Tokens
from hub.config import load_config
from hub.engine.retry import RetryPolicy
from hub.engine.runner import Engine
from hub.engine.worker import Worker
from hub.store import Store

ENGINE_DATA = Path(__file__).parents[1] / "engine" / "data"
READ, OPERATOR = "read-token-for-tests", "operator-token-for-tests"
SECRET = "webhook-secret-for-tests"


@dataclass
class Service:
    server: RunningServer
    store: Store
    engine: Engine
    crm: FakeVendor
    erp: FakeVendor

    @property
    def url(self) -> str:
        return self.server.base_url

    def get(self, path: str, token: str | None = READ, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, headers=_auth(token), timeout=10, **kwargs)

    def post(self, path: str, token: str | None = OPERATOR, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, headers={**_auth(token), **kwargs.pop("headers", {})}, timeout=10,
                             **kwargs)

    def hook(self, events: list[dict[str, Any]], secret: str = SECRET, system: str = "crm") -> requests.Response:
        body = json.dumps({"events": events}).encode()
        return requests.post(f"{self.url}/webhooks/{system}", data=body, timeout=10,
                             headers={SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"})

    def jobs(self, status: str) -> list[Any]:
        with self.store.transaction() as tx:
            return tx.jobs_by_status(status)


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    raw = yaml.safe_load((ENGINE_DATA / "hub.yaml").read_text("utf-8"))
    raw["mappings_dir"] = str(ENGINE_DATA / "mappings")
    for name in ("crm", "erp"):
        raw["systems"][name]["options"]["state"] = str(tmp_path / f"{name}.sqlite")
        raw["systems"][name]["webhook"] = {"secret": SECRET}
    raw["flows"]["customers-crm-to-erp"]["webhook"] = True
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    config = load_config(path, env={})
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    store.upgrade()
    engine = Engine(config, store, retry_policy=RetryPolicy(attempts=3, initial=0.001, max_backoff=0.01))
    app = create_app(config, store, Tokens.of(read=[READ], operator=[OPERATOR]), engine, max_body=64 * 1024)
    server = serve(app)
    made = Service(server, store, engine, FakeVendor.file(tmp_path / "crm.sqlite"),
                   FakeVendor.file(tmp_path / "erp.sqlite"))
    yield made
    server.stop()
    engine.close()
    store.dispose()


def _contact(i: int) -> dict[str, Any]:
    return {"name": f"客户 {i:05d} 有限公司", "tax_id": f"9131000{i:011d}", "email": f"buyer{i}@example.cn",
            "credit": 1000 + i, "terms": "Net 30", "updated": "2026-01-01T00:00:00Z"}


# --- webhooks ------------------------------------------------------------------------------


def test_a_signed_webhook_is_stored_before_the_answer_and_becomes_one_job(service: Service) -> None:
    [record] = service.crm.insert("contact", [_contact(1)])
    event = {"id": "evt-1", "object": "contact", "record_id": record["id"]}
    answer = service.hook([event])
    assert answer.status_code == 200
    [job] = service.jobs("queued")
    assert job.payload["external_id"] == record["id"] and job.flow == "customers-crm-to-erp"
    # the worker syncs it into the ERP
    Worker(service.engine, service.store, owner="t", retry_base=0.0).run_once()
    assert service.erp.count("partner") == 1


def test_a_redelivered_event_triggers_nothing_again(service: Service) -> None:
    [record] = service.crm.insert("contact", [_contact(2)])
    event = {"id": "evt-2", "object": "contact", "record_id": record["id"]}
    assert service.hook([event]).status_code == 200
    assert service.hook([event, event]).status_code == 200
    assert len(service.jobs("queued")) == 1


def test_a_bad_signature_is_refused_with_401_and_nothing_stored(service: Service) -> None:
    answer = service.hook([{"id": "evt-3", "object": "contact", "record_id": "F-1"}], secret="wrong")
    assert answer.status_code == 401
    assert service.jobs("queued") == []


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe\x00garbage", b"[1, 2", b'{"events": "no"}',
                                  b'{"events": [{"id": 1}]}'])
def test_malformed_bodies_get_a_4xx_never_a_500(service: Service, body: bytes) -> None:
    answer = requests.post(f"{service.url}/webhooks/crm", data=body, timeout=10,
                           headers={SIGNATURE_HEADER: sign(SECRET, body)})
    assert 400 <= answer.status_code < 500
    assert service.jobs("queued") == []


def test_a_body_over_the_limit_is_refused_with_413(service: Service) -> None:
    body = b"x" * (64 * 1024 + 1)
    answer = requests.post(f"{service.url}/webhooks/crm", data=body, timeout=10)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"


def test_an_unknown_system_is_a_404_with_a_suggestion(service: Service) -> None:
    answer = requests.post(f"{service.url}/webhooks/crn", data=b"{}", timeout=10)
    assert answer.status_code == 404
    assert "did you mean 'crm'" in answer.json()["error"]["message"]


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("token,status", [(None, 401), ("nope", 401), (READ, 200), (OPERATOR, 200)])
def test_reads_need_a_valid_token(service: Service, token: str | None, status: int) -> None:
    answer = service.get("/api/v1/flows", token=token)
    assert answer.status_code == status
    if status == 401:
        assert answer.json()["error"]["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_changes_need_the_operator_scope(service: Service) -> None:
    refused = service.post("/api/v1/flows/customers-crm-to-erp/run", token=READ)
    assert refused.status_code == 403
    queued = service.post("/api/v1/flows/customers-crm-to-erp/run")
    assert queued.status_code == 202 and queued.json()["job_id"]
    again = service.post("/api/v1/flows/customers-crm-to-erp/run")
    assert again.status_code == 202 and again.json()["job_id"] is None  # one run queued per flow


def test_no_configured_token_means_no_access(tmp_path: Path, service: Service) -> None:
    app = create_app(service.engine.config, service.store, Tokens.of(), service.engine)
    with serve(app) as server:
        assert requests.get(f"{server.base_url}/api/v1/flows", headers=_auth(""), timeout=10).status_code == 401
        assert requests.get(f"{server.base_url}/api/v1/flows", headers=_auth("anything"),
                            timeout=10).status_code == 401


# --- admin ---------------------------------------------------------------------------------


def test_flows_runs_and_links_after_a_sync(service: Service) -> None:
    service.crm.insert("contact", [_contact(i) for i in range(3)])
    report = service.engine.run_flow("customers-crm-to-erp")
    flows = {f["name"]: f for f in service.get("/api/v1/flows").json()}
    last = flows["customers-crm-to-erp"]["last_run"]
    assert last["id"] == report.run_id and last["created"] == 3
    assert service.get(f"/api/v1/runs/{report.run_id}").json()["pulled"] == 3
    assert service.get("/api/v1/runs/999999").status_code == 404
    with service.store.transaction() as tx:
        some = tx.links_by_external("crm", "contact", [service.crm.records("contact")[0]["id"]])
    [link] = some.values()
    found = service.get(f"/api/v1/links/customer/{link.canonical_id}").json()
    assert sorted(x["system"] for x in found) == ["crm", "erp"]


def test_the_dead_letter_queue_lists_shows_replays_and_discards(service: Service) -> None:
    service.crm.insert("contact", [{**_contact(5), "name": ""}, {**_contact(6), "name": ""}])
    service.engine.run_flow("customers-crm-to-erp")
    dead = service.get("/api/v1/dead-letters").json()
    assert len(dead) == 2 and all(d["last_error"] for d in dead)
    one = service.get(f"/api/v1/dead-letters/{dead[0]['id']}").json()
    assert one["id"] == dead[0]["id"]
    assert service.post("/api/v1/dead-letters/replay", json={"ids": [dead[0]["id"]]}).json() == {"count": 1}
    assert service.post("/api/v1/dead-letters/replay", json={}).status_code == 422
    discarded = requests.delete(f"{service.url}/api/v1/dead-letters/{dead[1]['id']}", headers=_auth(OPERATOR),
                                timeout=10)
    assert discarded.json() == {"count": 1}
    assert service.get("/api/v1/dead-letters").json() == []


def test_the_mapping_preview_shows_vendor_canonical_and_target_payload_with_diff(service: Service) -> None:
    [record] = service.crm.insert("contact", [_contact(7)])
    preview = service.get(f"/api/v1/preview/customers-crm-to-erp/{record['id']}").json()
    assert preview["found"] and preview["vendor"]["id"] == record["id"]
    assert preview["canonical"]["name"] == _contact(7)["name"]
    [target] = preview["targets"]
    assert target["target"] == "erp" and target["payload"] and target["diff"]
    assert service.erp.count("partner") == 0  # a preview writes nothing
    assert service.get("/api/v1/preview/customers-crm-to-erp/F-999999").json()["found"] is False


def test_parameters_are_validated_with_a_located_json_error(service: Service) -> None:
    answer = service.get("/api/v1/runs?limit=0")
    assert answer.status_code == 422
    assert answer.json()["error"]["problems"][0]["where"] == "query.limit"


# --- health --------------------------------------------------------------------------------


def test_health_readiness_and_metrics(service: Service) -> None:
    assert service.get("/healthz", token=None).json() == {"status": "ok"}
    assert service.get("/readyz", token=None).json() == {"status": "ready"}
    service.hook([{"id": "evt-9", "object": "contact", "record_id": "F-000001"}])
    text = service.get("/metrics", token=None).text
    assert 'synchub_webhooks_total{status="200",system="crm"} 1.0' in text
    assert 'synchub_queue_jobs{status="queued"} 1.0' in text
    assert "synchub_webhook_seconds_bucket" in text


def test_the_openapi_document_lists_every_route(service: Service) -> None:
    doc = service.get("/openapi.json", token=None).json()
    paths = set(doc["paths"])
    assert {"/webhooks/{system}", "/api/v1/flows", "/api/v1/dead-letters/replay", "/api/v1/preview/{flow}/{external_id}",
            "/healthz", "/readyz", "/metrics"} <= paths
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


def test_the_openapi_document_describes_the_webhook_operations_as_served(service: Service) -> None:
    webhook = service.get("/openapi.json", token=None).json()["paths"]["/webhooks/{system}"]
    assert {webhook["post"]["operationId"], webhook["get"]["operationId"]} == {"receive_webhook", "verify_webhook_url"}
    for operation in webhook.values():
        assert [p["name"] for p in operation["parameters"]] == ["system"]
        assert set(operation["responses"]) == {"200", "400", "401", "404", "413", "503"}
    assert service.post("/webhooks/no-such-system", data=b"{}", token=None).status_code == 404
