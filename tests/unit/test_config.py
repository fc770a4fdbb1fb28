"""The hub config: the shipped configs load, and every broken file in the corpus gets exactly
the located messages recorded beside it (tests/data/config/<case>.expected)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Secret, load_config, reveal
from hub.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted((ROOT / "tests/data/config").glob("*.yaml"))


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case", CORPUS, ids=[c.stem for c in CORPUS])
def test_broken_config_gets_exactly_the_expected_messages(case: Path) -> None:
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()
    with pytest.raises(ConfigError) as caught:
        load_config(case.relative_to(ROOT), env={})
    assert [str(p) for p in caught.value.problems] == expected


def test_every_corpus_case_has_an_expectation() -> None:
    assert len(CORPUS) >= 12
    for case in CORPUS:
        assert case.with_suffix(".expected").read_text("utf-8").strip(), case.name


@pytest.mark.parametrize("name", ["config/demo.yaml", "config/example.yaml"])
def test_shipped_configs_load(name: str, tmp_path: Path) -> None:
    env = {k: "x" for k in ("SF_CLIENT_ID", "SF_CLIENT_SECRET", "HUBSPOT_TOKEN", "HUBSPOT_CLIENT_SECRET",
                            "ERPNEXT_API_KEY", "ERPNEXT_API_SECRET", "ERPNEXT_WEBHOOK_SECRET", "DINGTALK_APP_KEY",
                            "DINGTALK_APP_SECRET", "DINGTALK_CALLBACK_TOKEN", "DINGTALK_AES_KEY")}
    # The configs are copied next to a link to the shipped mappings, with the secret file that
    # example.yaml reads from config/secrets/ (a real deployment provides it).
    (tmp_path / "config/secrets").mkdir(parents=True)
    (tmp_path / "config/secrets/odoo_api_key").write_text("key\n", "utf-8")
    (tmp_path / "mappings").symlink_to(ROOT / "mappings")
    copy = tmp_path / name
    copy.write_bytes((ROOT / name).read_bytes())
    hub = load_config(copy, env=env)
    assert hub.flows and hub.systems
    for flow in hub.flows.values():
        assert flow.source.mapping.inbound is not None
        assert all(t.mapping.outbound is not None for t in flow.targets)


def test_demo_resolves_secrets_without_showing_them() -> None:
    hub = load_config("config/demo.yaml", env={"DEMO_SF_CLIENT_SECRET": "very-secret-value"})
    secret = hub.systems["crm"].auth["client_secret"]
    assert isinstance(secret, Secret)
    assert reveal(secret) == "very-secret-value"
    assert "very-secret-value" not in repr(hub)
    assert hub.systems["erp"].auth["database"] == "synchub"


def test_store_url_from_the_environment_wins() -> None:
    url = "postgresql+psycopg://u@127.0.0.1/test"
    assert load_config("config/demo.yaml", env={"SYNCHUB_STORE_URL": url}).store_url == url
    assert load_config("config/demo.yaml", env={}).store_url == "sqlite:///var/synchub.db"


def test_schedules_and_conflict_policy_are_typed() -> None:
    flows = load_config("config/demo.yaml", env={}).flows
    crm_to_erp = flows["customers-crm-to-erp"]
    assert crm_to_erp.schedule is not None and crm_to_erp.schedule.interval is not None
    assert crm_to_erp.schedule.interval.total_seconds() == 300
    assert flows["leave-requests"].schedule.interval.total_seconds() == 900  # type: ignore[union-attr]
    assert flows["contract-decisions"].targets[0].create is False
    assert crm_to_erp.conflict.owners == {"credit_limit": "erp", "payment_terms": "erp"}
    assert crm_to_erp.conflict.priority == ("erp", "crm")  # the flow's systems by priority: erp 20, crm 10
    assert crm_to_erp.match == ("tax_id", "contacts.email")


def test_a_secret_value_never_reaches_a_message(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(
        "version: 1\nsystems:\n  crm:\n    connector: salesforce\n"
        "    auth: {client_id: '${ID}', client_secret: '${SECRET}', grant_type: '${SECRET}'}\nflows: {}\n",
        "utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"ID": "id", "SECRET": "hunter2-secret"})
    assert "hunter2" not in str(caught.value)
    assert "grant_type" in str(caught.value)


def test_a_secret_that_resolves_to_nothing_is_a_located_problem(tmp_path: Path) -> None:
    """The shape check sees `${...}` only; an empty value would verify webhooks signed with the empty key."""
    (tmp_path / "empty_secret").write_text("\n", "utf-8")
    config = tmp_path / "hub.yaml"
    config.write_text(
        "version: 1\nsystems:\n  crm:\n    connector: hubspot\n"
        "    auth: {access_token: '${TOKEN}'}\n"
        "    webhook: {client_secret: '${HOOK_SECRET:-}'}\n"
        "  crm2:\n    connector: hubspot\n"
        "    auth: {access_token: '${file:empty_secret}'}\n"
        "    webhook: {client_secret: '${TOKEN}'}\nflows: {}\n",
        "utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"TOKEN": "pat-na1-very-secret"})
    assert [str(p) for p in caught.value.problems] == [
        f"{config}:6:30: ${{HOOK_SECRET:-}} resolves to an empty value (at systems.crm.webhook.client_secret)",
        f"{config}:9:26: ${{file:empty_secret}} resolves to an empty value (at systems.crm2.auth.access_token)",
    ]
    assert "very-secret" not in str(caught.value)
    (tmp_path / "empty_secret").write_text("pat-na1-from-file\n", "utf-8")
    hub = load_config(config, env={"TOKEN": "pat-na1-very-secret", "HOOK_SECRET": "hook-secret"})
    assert reveal(hub.systems["crm"].webhook["client_secret"]) == "hook-secret"
    assert reveal(hub.systems["crm2"].auth["access_token"]) == "pat-na1-from-file"
