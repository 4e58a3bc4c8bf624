"""The `inferfleet` command: validate, plan, schema; one line per problem, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.cli import main

ROOT = Path(__file__).resolve().parents[1]
STACKS = sorted((ROOT / "stacks").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<path>\S+): (?P<message>.+)$")
DEV_TEXT = (ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_dev(tmp_path: Path, text: str, name: str = "dev.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit_dev(old: str, new: str) -> str:
    assert DEV_TEXT.count(old) == 1, old
    return DEV_TEXT.replace(old, new)


def test_example_stacks_exist():
    assert [p.name for p in STACKS] == ["dev.yaml", "prod.yaml", "staging.yaml"]


# validate


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_validate_example_stack_exits_0_and_prints_nothing_on_stdout(capsys, stack):
    code, out, err = run_cli(capsys, "validate", str(stack))
    assert (code, out) == (0, "")
    assert err == f"{stack}: ok\n"


def test_validate_all_example_stacks_at_once(capsys):
    code, out, err = run_cli(capsys, "validate", *map(str, STACKS))
    assert (code, out) == (0, "")
    assert err.splitlines() == [f"{stack}: ok" for stack in STACKS]


def test_validate_invalid_spec_exits_1_with_one_line_per_problem(capsys, tmp_path):
    text = edit_dev("    maxSize: 2\nservices:\n", "    maxSize: 2\n    warmPool:\n      size: 1\nservices:\n")
    text = text.replace("    maxModelLen: 8192\n", "    maxModelLen: 1000\n")
    path = write_dev(tmp_path, text)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}:27: gpuPools.0.warmPool: a warm pool needs capacityType onDemand: "
        "AWS refuses warm pools on groups with spot instances",
        f"{path}:39: services.0.workload: inputTokens + outputTokens = 1280 exceeds maxModelLen 1000; "
        "such requests would be refused",
    ]
    assert "Traceback" not in err


def test_validate_yaml_syntax_error_exits_1_with_its_line(capsys, tmp_path):
    path = write_dev(tmp_path, edit_dev("  availabilityZones: [us-east-1a, us-east-1b]\n", "  availabilityZones: [us-east-1a\n"))
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    [line] = out.splitlines()
    assert line.startswith(f"{path}:11: <root>: YAML syntax error: ")
    assert err == ""


def test_validate_unknown_key_suggests_the_right_one(capsys, tmp_path):
    path = write_dev(tmp_path, edit_dev("    maxModelLen: 8192\n", "    maxModelLn: 8192\n"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert out == f"{path}:36: services.0.maxModelLn: unknown key 'maxModelLn'; did you mean maxModelLen?\n"


def test_validate_missing_file_exits_1(capsys, tmp_path):
    path = tmp_path / "missing.yaml"
    code, out, err = run_cli(capsys, "validate", str(path))
    assert (code, out, err) == (1, f"{path}:1: <root>: no such file\n", "")


def test_validate_unknown_instance_type_is_a_catalog_problem_with_a_line(capsys, tmp_path):
    path = write_dev(tmp_path, edit_dev("    instanceTypes: [g6.xlarge]\n", "    instanceTypes: [g6.2xlarge, g9.xlarge]\n"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert out.startswith(f"{path}:23: gpuPools.0.instanceTypes.1: unknown instance type 'g9.xlarge'")
    assert len(out.splitlines()) == 1


def test_validate_unknown_model_asks_for_an_architecture(capsys, tmp_path):
    path = write_dev(tmp_path, edit_dev("      name: meta-llama/Llama-3.1-8B-Instruct\n", "      name: acme/secret-model\n"))
    code, out, _ = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert out == (
        f"{path}:31: services.0.model.name: 'acme/secret-model' is not in the catalog; "
        "give model.architecture (a catalog id or the architecture inline)\n"
    )


def test_validate_several_files_reports_each_and_exits_1_if_any_fails(capsys, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    wrong_stem = write_dev(tmp_path / "a", DEV_TEXT, name="qa.yaml")
    bad_region = write_dev(tmp_path / "b", edit_dev("  region: us-east-1\n", "  region: mars\n"))
    good = ROOT / "stacks" / "dev.yaml"
    code, out, err = run_cli(capsys, "validate", str(wrong_stem), str(good), str(bad_region))
    assert code == 1
    assert out.splitlines() == [
        f"{wrong_stem}:3: environment: 'dev' must equal the file's stem 'qa'",
        f"{bad_region}:9: aws.region: String should match pattern '^[a-z]{{2}}(-gov)?-[a-z]+-\\d$' (got 'mars')",
    ]
    assert err == f"{good}: ok\n"


def test_validate_without_files_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["validate"])
    assert raised.value.code == 2
    assert "usage: inferfleet validate" in capsys.readouterr().err


# schema


def test_schema_prints_the_json_schema(capsys):
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "inferfleet stack"
    assert {"environment", "aws", "cluster", "gpuPools", "services"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "maxModelLen" in schema["$defs"]["ServiceSpec"]["properties"]
    assert "warmPool" in schema["$defs"]["GpuPoolSpec"]["properties"]


def test_checked_in_schema_equals_the_schema_command(capsys):
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    checked_in = (ROOT / "schema" / "stack.schema.json").read_text(encoding="utf-8")
    assert json.loads(checked_in) == json.loads(out), "run: inferfleet schema > schema/stack.schema.json"
    assert checked_in == out, "run: inferfleet schema > schema/stack.schema.json"


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_example_stack_points_editors_at_the_schema(stack):
    first_line = stack.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schema/stack.schema.json"


# plan

SERVICE_KEYS = {
    "name", "pool", "engine", "instanceType", "gpusPerReplica", "tensorParallelSize", "pipelineParallelSize",
    "weightsGiB", "kvCacheTokensPerReplica", "maxConcurrentSequences", "maxOutputTokensPerSecondPerReplica",
    "ttftMs", "itlMs", "replicasNeeded", "sloFeasible", "reasons",
}
POOL_KEYS = {"name", "hourlyUsdMin", "hourlyUsdMax"}
COST_KEYS = {"hourlyUsdMin", "hourlyUsdMax", "monthlyUsdMin", "monthlyUsdMax", "usdPerMillionOutputTokens"}


def test_plan_json_on_prod_has_services_pools_and_cost(capsys):
    code, out, err = run_cli(capsys, "plan", str(ROOT / "stacks" / "prod.yaml"), "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert SERVICE_KEYS <= set(plan["services"][0])
    for service in plan["services"]:
        assert SERVICE_KEYS <= set(service)
        assert isinstance(service["reasons"], list)
        assert isinstance(service["sloFeasible"], bool)
    assert {s["name"] for s in plan["services"]} == {"chat", "rag", "rerank"}
    assert {s["engine"] for s in plan["services"]} == {"vllm", "ray-serve", "triton"}
    pool_names = [p["name"] for p in plan["pools"]]
    assert [n for n in pool_names if n != "system"] == [
        "h100-ondemand", "h100-spot", "h200-spot", "a100-spot",
        "l40s-ondemand", "l40s-spot", "l40s-24xl-spot", "l4-ondemand",
    ]
    for pool in plan["pools"]:
        assert POOL_KEYS <= set(pool)
        assert 0 <= pool["hourlyUsdMin"] <= pool["hourlyUsdMax"]
    assert COST_KEYS <= set(plan["cost"])
    assert 0 < plan["cost"]["hourlyUsdMin"] <= plan["cost"]["hourlyUsdMax"]
    assert plan["cost"]["monthlyUsdMin"] <= plan["cost"]["monthlyUsdMax"]


def test_plan_text_on_dev_exits_0(capsys):
    code, out, err = run_cli(capsys, "plan", str(ROOT / "stacks" / "dev.yaml"))
    assert code == 0, err
    assert "chat" in out
    assert "Traceback" not in err


def test_plan_on_invalid_file_exits_1_with_located_problems(capsys, tmp_path):
    path = write_dev(tmp_path, edit_dev("    replicas: {min: 0, max: 2}\n", "    replicas: {min: 3, max: 2}\n"))
    code, out, err = run_cli(capsys, "plan", str(path), "--json")
    assert code == 1
    assert out == f"{path}:35: services.0.replicas.min: 3 is above max 2\n"
    assert err == ""


def test_plan_on_missing_file_exits_1(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "plan", str(tmp_path / "dev.yaml"))
    assert (code, out) == (1, f"{tmp_path / 'dev.yaml'}:1: <root>: no such file\n")


# the real process


def test_module_entry_point_on_a_broken_file_prints_problems_not_a_traceback(tmp_path):
    path = write_dev(tmp_path, "environment: dev\naws: [\n  - : :\n\t\n", name="dev.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "validate", str(path), str(tmp_path / "absent.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(PROBLEM_LINE.match(line) for line in lines), lines
    assert lines[0].startswith(f"{path}:")
    assert lines[1] == f"{tmp_path / 'absent.yaml'}:1: <root>: no such file"
