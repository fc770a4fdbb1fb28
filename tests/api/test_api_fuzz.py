"""A schema-driven fuzz run of the hub's OpenAPI document over real HTTP: no answer is a 500.

schemathesis reads `/openapi.json` from the running service and sends generated requests to
every operation (webhooks included), with an operator token so that the admin routes are
reached past authentication.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import given, settings

from connectors.sandbox import serve
from hub.api import create_app
from hub.api.auth import Tokens
from tests.api.test_api import ENGINE_DATA, OPERATOR, READ, SECRET  # noqa: F401  (one hub config for the API tests)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import yaml

    from hub.config import load_config
    from hub.engine.runner import Engine
    from hub.store import Store

    tmp = tmp_path_factory.mktemp("fuzz")
    raw = yaml.safe_load((ENGINE_DATA / "hub.yaml").read_text("utf-8"))
    raw["mappings_dir"] = str(ENGINE_DATA / "mappings")
    for name in ("crm", "erp"):
        raw["systems"][name]["options"]["state"] = str(tmp / f"{name}.sqlite")
        raw["systems"][name]["webhook"] = {"secret": SECRET}
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    config = load_config(path, env={})
    store = Store.open(f"sqlite:///{tmp / 'hub.db'}")
    store.upgrade()
    engine = Engine(config, store)
    with serve(create_app(config, store, Tokens.of(read=[READ], operator=[OPERATOR]), engine)) as server:
        yield server.base_url
    engine.close()
    store.dispose()


def test_no_generated_request_gets_a_server_error(hub_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{hub_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=25, database=None)
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        call()
    assert failures == []
