"""read_spec: every problem of a stack file as `FILE:LINE: dotted.path: message`, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.spec import Problem, StackError, read_spec

# Line numbers matter in this file: BASE is valid, each test edits it and names the lines.
BASE = """\
environment: dev
tags:
  owner: ml-platform
aws:
  region: us-east-1
  availabilityZones: [us-east-1a, us-east-1b]
network:
  vpcCidr: 10.0.0.0/16
cluster:
  kubernetesVersion: "1.34"
  endpointAccess: public
gpuPools:
  - name: ondemand
    instanceTypes: [g6.xlarge]
    capacityType: onDemand
    minSize: 1
    maxSize: 3
    warmPool:
      size: 1
services:
  - name: chat
    engine: vllm
    model:
      name: meta-llama/Llama-3.1-8B-Instruct
      uri: s3://inferfleet-dev-models/llama-8b
    pools: [ondemand]
    replicas: {min: 1, max: 2}
    maxModelLen: 8192
    workload:
      inputTokens: 1024
      outputTokens: 256
      peakRequestsPerSecond: 1
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def problem_lines(path: Path) -> list[str]:
    with pytest.raises(StackError) as raised:
        read_spec(path)
    assert str(raised.value) == "\n".join(str(p) for p in raised.value.problems)
    return [str(p) for p in raised.value.problems]


def test_base_text_is_valid(write_text):
    source = read_spec(write_text(BASE))
    assert source.spec.environment == "dev"
    assert source.spec.gpu_pools[0].warm_pool.size == 1


def test_yaml_syntax_error_has_file_and_line(write_text):
    path = write_text(edit("    pools: [ondemand]\n", "    pools: [ondemand\n"))
    [line] = problem_lines(path)
    assert line.startswith(f"{path}:27: <root>: YAML syntax error: ")
    assert "expected ',' or ']'" in line


def test_bad_indentation_is_a_syntax_error_on_its_line(write_text):
    path = write_text(edit("    capacityType: onDemand\n", "   capacityType: onDemand\n"))
    [line] = problem_lines(path)
    assert line.startswith(f"{path}:15: <root>: YAML syntax error: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n", "---\n", "null\n"])
def test_empty_file(write_text, text):
    path = write_text(text)
    assert problem_lines(path) == [f"{path}:1: <root>: the stack file is empty"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [("- a\n- b\n", "list"), ("just words\n", "str"), ("42\n", "int"), ("true\n", "bool"), ("1.5\n", "float")],
)
def test_document_that_is_not_a_mapping(write_text, text, kind):
    path = write_text(text)
    assert problem_lines(path) == [f"{path}:1: <root>: a stack file must be a mapping of keys, not a {kind}"]


def test_wrong_types_are_each_reported_at_their_line(write_text):
    text = edit("    maxSize: 3\n", "    maxSize: many\n")
    text = text.replace("      outputTokens: 256\n", "      outputTokens: [256]\n")
    text = text.replace("  availabilityZones: [us-east-1a, us-east-1b]\n", "  availabilityZones: us-east-1a\n")
    path = write_text(text)
    assert problem_lines(path) == [
        f"{path}:6: aws.availabilityZones: should be a valid list (got 'us-east-1a')",
        f"{path}:17: gpuPools.0.maxSize: should be a valid integer (got 'many')",
        f"{path}:31: services.0.workload.outputTokens: should be a valid integer",
    ]


def test_value_out_of_range_names_the_bound(write_text):
    path = write_text(edit("    replicas: {min: 1, max: 2}\n", "    replicas: {min: -1, max: 2}\n"))
    assert problem_lines(path) == [f"{path}:27: services.0.replicas.min: should be greater than or equal to 0 (got -1)"]


def test_literal_choice_lists_the_allowed_values(write_text):
    path = write_text(edit("    capacityType: onDemand\n", "    capacityType: reserved\n"))
    assert problem_lines(path) == [f"{path}:15: gpuPools.0.capacityType: should be 'onDemand' or 'spot' (got 'reserved')"]


def test_engine_args_value_of_no_allowed_type_is_one_problem(write_text):
    path = write_text(BASE + "    engineArgs:\n      enable-prefix-caching: [true]\n")
    assert problem_lines(path) == [
        f"{path}:34: services.0.engineArgs.enable-prefix-caching: should be a valid boolean, integer, number or string"
    ]


def test_parallelism_accepts_auto_or_positive_integer_only(write_text):
    path = write_text(edit("    maxModelLen: 8192\n", "    maxModelLen: 8192\n    tensorParallelSize: 0\n    pipelineParallelSize: max\n"))
    assert problem_lines(path) == [
        f"{path}:29: services.0.tensorParallelSize: must be a positive integer or 'auto' (got 0)",
        f"{path}:30: services.0.pipelineParallelSize: must be a positive integer or 'auto' (got 'max')",
    ]


def test_unknown_key_suggests_the_close_key(write_text):
    path = write_text(edit("    maxModelLen: 8192\n", "    maxModelLength: 8192\n"))
    assert problem_lines(path) == [
        f"{path}:28: services.0.maxModelLength: unknown key 'maxModelLength'; did you mean maxModelLen?"
    ]


def test_snake_case_key_suggests_the_camel_case_key(write_text):
    path = write_text(edit("    maxModelLen: 8192\n", "    max_model_len: 8192\n"))
    assert problem_lines(path) == [
        f"{path}:28: services.0.max_model_len: unknown key 'max_model_len'; did you mean maxModelLen?"
    ]


def test_unknown_key_in_warm_pool_suggests_size(write_text):
    path = write_text(edit("      size: 1\n", "      sizee: 1\n"))
    assert problem_lines(path) == [
        f"{path}:18: gpuPools.0.warmPool.size: required key is missing",
        f"{path}:19: gpuPools.0.warmPool.sizee: unknown key 'sizee'; did you mean size?",
    ]


def test_unknown_key_in_workload_suggests_the_workload_key(write_text):
    path = write_text(edit("      peakRequestsPerSecond: 1\n", "      peakRequestsPerSecond: 1\n      inputToken: 5\n"))
    assert problem_lines(path) == [
        f"{path}:33: services.0.workload.inputToken: unknown key 'inputToken'; did you mean inputTokens?"
    ]


def test_unknown_key_with_no_close_match_lists_the_allowed_keys(write_text):
    path = write_text(edit("  endpointAccess: public\n", "  endpointAccess: public\n  zzz: 1\n"))
    assert problem_lines(path) == [
        f"{path}:12: cluster.zzz: unknown key 'zzz'; expected one of: "
        "deployRunner, endpointAccess, gpuAmiFamily, gpuAmiId, kubernetesVersion, publicAccessCidrs, systemPool"
    ]


def test_unknown_top_level_key(write_text):
    path = write_text(BASE + "servics: []\n")
    assert problem_lines(path) == [f"{path}:33: servics: unknown key 'servics'; did you mean services?"]


def test_missing_required_key_is_located_at_its_parent(write_text):
    path = write_text(edit("  region: us-east-1\n", ""))
    assert problem_lines(path) == [f"{path}:4: aws.region: required key is missing"]


def test_missing_required_key_of_a_list_item_is_located_at_the_item(write_text):
    path = write_text(edit("    capacityType: onDemand\n", ""))
    assert problem_lines(path) == [f"{path}:13: gpuPools.0.capacityType: required key is missing"]


def test_missing_required_top_level_key_is_on_line_1(write_text):
    path = write_text(edit("environment: dev\n", "# environment removed\n"))
    assert problem_lines(path) == [f"{path}:1: environment: required key is missing"]


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    assert problem_lines(path) == [f"{path}:1: <root>: no such file"]


def test_directory_instead_of_file(tmp_path):
    assert problem_lines(tmp_path) == [f"{tmp_path}:1: <root>: is a directory, not a stack file"]


def test_non_utf8_file(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_bytes(BASE.encode("utf-8").replace(b"ml-platform", b"ml-\xe9quipe"))
    assert problem_lines(path) == [f"{path}:3: <root>: not UTF-8 text: invalid continuation byte"]


def test_environment_must_equal_the_file_stem(write_text):
    path = write_text(BASE, name="staging.yaml")
    assert problem_lines(path) == [f"{path}:1: environment: 'dev' must equal the file's stem 'staging'"]


def test_environment_stem_check_ignores_the_directory_and_suffix(tmp_path):
    (tmp_path / "stacks.d").mkdir()
    path = tmp_path / "stacks.d" / "dev.yml"
    path.write_text(BASE, encoding="utf-8")
    assert read_spec(path).spec.environment == "dev"


def test_duplicate_key_is_reported_with_its_line(write_text):
    path = write_text(edit("    maxSize: 3\n", "    maxSize: 3\n    maxSize: 4\n"))
    assert problem_lines(path) == [f"{path}:18: gpuPools.0.maxSize: duplicate key 'maxSize'"]


def test_duplicate_key_is_reported_next_to_type_errors(write_text):
    text = edit("    maxSize: 3\n", "    maxSize: 3\n    maxSize: 4\n").replace("    minSize: 1\n", "    minSize: one\n")
    path = write_text(text)
    assert problem_lines(path) == [
        f"{path}:16: gpuPools.0.minSize: should be a valid integer (got 'one')",
        f"{path}:18: gpuPools.0.maxSize: duplicate key 'maxSize'",
    ]


def test_merge_key_overrides_are_not_duplicates(write_text):
    text = edit(
        "gpuPools:\n  - name: ondemand\n",
        "x-pool: &pool {capacityType: spot, maxSize: 2}\ngpuPools:\n  - <<: *pool\n    name: ondemand\n",
    )
    # x-pool is not a spec key, so the stack is invalid for that reason alone
    path = write_text(text)
    assert problem_lines(path) == [f"{path}:12: x-pool: unknown key 'x-pool'; expected one of: "
                                   "aws, cluster, deployGate, environment, gpuPools, images, network, observability, services, tags"]


def test_many_problems_are_reported_together_sorted_by_line(write_text):
    text = edit("environment: dev\n", "environment: dev\nenvirons: x\n")
    text = text.replace("      uri: s3://inferfleet-dev-models/llama-8b\n", "      uri: ftp://host/x\n")
    text = text.replace("  kubernetesVersion: \"1.34\"\n", "  kubernetesVersion: 1.34.0\n")
    text = text.replace("    pools: [ondemand]\n", "    pools: []\n")
    path = write_text(text)
    lines = problem_lines(path)
    assert [line.split(": ", 2)[0:2] for line in lines] == [
        [f"{path}:2", "environs"],
        [f"{path}:11", "cluster.kubernetesVersion"],
        [f"{path}:26", "services.0.model.uri"],
        [f"{path}:27", "services.0.pools"],
    ]
    assert "should match pattern" in lines[1]
    assert "should have at least 1 item" in lines[3]


def test_spec_rule_problems_are_reported_all_at_once_sorted_by_line(write_text):
    text = edit("    minSize: 1\n    maxSize: 3\n", "    minSize: 5\n    maxSize: 3\n")
    text = text.replace("    pools: [ondemand]\n", "    pools: [ondemand, gone]\n")
    text = text.replace("  availabilityZones: [us-east-1a, us-east-1b]\n", "  availabilityZones: [us-east-1a, us-west-2b]\n")
    path = write_text(text)
    assert problem_lines(path) == [
        f"{path}:6: aws.availabilityZones.1: 'us-west-2b' is not an AZ of region us-east-1; its AZs: "
        "us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f",
        f"{path}:16: gpuPools.0.minSize: 5 is above maxSize 3",
        f"{path}:26: services.0.pools.1: no GPU pool named 'gone'; pools: ondemand",
    ]


def test_rules_do_not_run_while_the_schema_fails(write_text):
    text = edit("    pools: [ondemand]\n", "    pools: [gone]\n").replace("    maxSize: 3\n", "    maxSize: 0\n")
    path = write_text(text)
    assert problem_lines(path) == [f"{path}:17: gpuPools.0.maxSize: should be greater than or equal to 1 (got 0)"]


def test_valid_file_returns_the_source_with_line_map(write_text):
    source = read_spec(write_text(BASE))
    assert source.file.endswith("dev.yaml")
    assert source.document.line_of(("services", 0, "workload", "inputTokens")) == 30
    [located] = source.locate([Problem(("gpuPools", 0, "name"), "x")])
    assert str(located) == f"{source.file}:13: gpuPools.0.name: x"


def test_path_with_a_spaced_key_stays_one_word(write_text):
    path = write_text(edit("  owner: ml-platform\n", "  owner: ml-platform\n  cost center: [1]\n"))
    assert problem_lines(path) == [f'{path}:4: tags."cost\\u0020center": should be a valid string']


def test_path_with_an_empty_key_is_quoted(write_text):
    path = write_text(BASE + '"": 1\n')
    [line] = problem_lines(path)
    assert line.startswith(f'{path}:33: "": unknown key \'\'; expected one of: ')


def test_control_character_in_the_file_is_a_located_syntax_error(write_text):
    path = write_text(edit("    engine: vllm\n", "    engine: vl\x07lm\n"))
    assert problem_lines(path) == [f"{path}:22: <root>: YAML syntax error: special characters are not allowed: U+0007"]


def test_a_stage_env_name_must_be_an_environment_variable_name(tmp_path):
    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    rag = next(s for s in raw["services"] if s["name"] == "rag")
    rag["pipeline"][0]["env"] = {"NOT-A-NAME": "x"}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    (line,) = problem_lines(path)
    assert "services.1.pipeline.0.env.NOT-A-NAME" in line and "should match pattern" in line
