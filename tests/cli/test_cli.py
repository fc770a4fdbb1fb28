"""The `synchub` command as an admin runs it: a real subprocess, real files, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYNCHUB = shutil.which("synchub", path=str(Path(sys.executable).parent)) or "synchub"
ODOO_MAPPING = "mappings/odoo/res.partner.customer.yaml"
ODOO_SAMPLES = "mappings/odoo/samples/res.partner.jsonl"


def synchub(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([SYNCHUB, *args], cwd=ROOT, input=stdin, capture_output=True, timeout=60,
                            env={"PATH": str(Path(sys.executable).parent), **(env or {})})
    out = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_check_demo_config_passes() -> None:
    result = synchub("check", "config/demo.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config/demo.yaml: OK")
    assert "flow customers-crm-to-erp: customer crm/Account -> erp/res.partner, every 5m, webhook" in result.stdout


def test_check_defaults_to_the_environment_then_demo() -> None:
    assert synchub("check").returncode == 0
    result = synchub("check", env={"SYNCHUB_CONFIG": "tests/data/config/unknown_keys.yaml"})
    assert result.returncode == 1


def test_check_reports_every_problem_located_and_exits_1() -> None:
    result = synchub("check", "tests/data/config/unknown_keys.yaml")
    assert result.returncode == 1
    expected = (ROOT / "tests/data/config/unknown_keys.expected").read_text("utf-8")
    assert result.stderr == expected + "tests/data/config/unknown_keys.yaml: 6 problems found\n"
    assert result.stdout == ""


def test_check_a_missing_file() -> None:
    result = synchub("check", "config/nope.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("config/nope.yaml: cannot read file: No such file or directory")


def test_check_never_prints_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text((ROOT / "config/demo.yaml").read_text("utf-8").replace("../mappings", str(ROOT / "mappings")))
    result = synchub("check", str(config), env={"DEMO_SF_CLIENT_SECRET": "visible-if-leaked"})
    assert result.returncode == 0, result.stderr
    assert "visible-if-leaked" not in result.stdout + result.stderr


def test_map_inbound_samples_reports_the_bad_record_and_keeps_the_rest() -> None:
    result = synchub("map", ODOO_MAPPING, "--in", ODOO_SAMPLES)
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 9
    assert all(r["name"] for r in records)
    assert result.stderr.splitlines() == [
        f"{ODOO_SAMPLES}:10: record 58: name: is required but empty (from name)",
        f"{ODOO_SAMPLES}: 1 of 10 records failed",
    ]


def test_map_reads_stdin_and_writes_stdout() -> None:
    line = b'{"id": 7, "name": "  \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xe6\x9c\x89\xe9\x99\x90\xe5\x85\xac\xe5\x8f\xb8 ", "vat": false}\n'
    result = synchub("map", ODOO_MAPPING, stdin=line)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "ABC有限公司"


def test_map_outbound_writes_the_hub_key(tmp_path: Path) -> None:
    out = tmp_path / "payloads.jsonl"
    result = synchub("map", ODOO_MAPPING, "--direction", "outbound", "--in", "mappings/samples/customer.jsonl",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    canonical = [json.loads(line) for line in (ROOT / "mappings/samples/customer.jsonl").read_text("utf-8").splitlines()]
    payloads = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(payloads) == len(canonical)
    assert [p["ref"] for p in payloads] == [c["id"] for c in canonical]


def test_map_outbound_validates_canonical_input() -> None:
    result = synchub("map", ODOO_MAPPING, "--direction", "outbound",
                     stdin=b'{"id": "c1", "name": "ACME", "credit_limit": 12.5}\n')
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("<stdin>:1: record c1: credit_limit: must be a decimal string")


def test_map_survives_lines_that_are_not_records() -> None:
    lines = b'{"id": 1, "name": "A"}\nnot json\n\n"a string"\n{"id": 2, "name": "\xff"}\n{"id": 3, "name": "C"}\n'
    result = synchub("map", ODOO_MAPPING, stdin=lines)
    assert result.returncode == 1
    assert [json.loads(x)["name"] for x in result.stdout.splitlines()] == ["A", "C"]
    assert result.stderr.splitlines() == [
        "<stdin>:2: not valid JSON: Expecting value at column 1",
        "<stdin>:4: a record must be a JSON object, got str",
        "<stdin>:5: line is not UTF-8",
        "<stdin>: 3 of 5 records failed",
    ]


def test_map_with_a_broken_mapping_exits_2_with_located_problems() -> None:
    result = synchub("map", "tests/data/mappings/broken.yaml", stdin=b"{}\n")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "tests/data/mappings/broken.yaml:6:40: unknown transform 'halfwdth' (did you mean 'halfwidth'?) "
        "(at inbound.name.transform[1])"
    )


def test_map_with_a_missing_input_file_exits_2() -> None:
    result = synchub("map", ODOO_MAPPING, "--in", "nope.jsonl")
    assert result.returncode == 2
    assert "nope.jsonl" in result.stderr


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["map", "--help"], ["check", "--help"]])
def test_help_and_version(args: list[str]) -> None:
    result = synchub(*args)
    assert result.returncode == 0
    assert result.stdout


def test_usage_errors_exit_2() -> None:
    assert synchub("map").returncode == 2
    assert synchub("map", ODOO_MAPPING, "--direction", "sideways").returncode == 2


def test_commands_that_do_not_serve_http_start_without_the_http_stack() -> None:
    probe = ("import sys\nfrom hub.cli import main\n"
             "try:\n    main(['check', 'config/demo.yaml'])\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
             "print(sorted(m for m in ('fastapi', 'uvicorn', 'connectors.sandbox') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    listed = synchub("--help").stdout
    assert all(f"  {name} " in listed for name in ("api", "run", "demo", "sandbox", "sync"))
    assert "Serve the webhooks" in synchub("api", "--help").stdout
