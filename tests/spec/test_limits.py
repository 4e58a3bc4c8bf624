"""Every number of the spec is finite and bounded (components/spec/limits.py), and a stack that validates plans.

- the models: every int and float field has a lower and an upper bound, and floats are finite;
- every numeric field just past either bound, and every float at inf or nan, is refused at its own line;
- hypothesis: values from the extremes (and anywhere) for a few numeric fields of a stack that holds every spec
  object at once: `load_stack` refuses it with located problems, or `plan_stack` runs without an exception;
- the largest allowed values everywhere (the largest request rate with the smallest SLO) and the smallest ones
  plan; the largest render, and no resource carries more program tags than the room kept for them;
- the program's own tags fit PROGRAM_TAGS_RESERVED and are all keys the spec may not set; the AWS layer's bucket
  rule is the spec's.
"""

from __future__ import annotations

import copy
import math
import os
import re
import typing
from pathlib import Path
from typing import Any

import annotated_types as at
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from components.catalog import load_catalog
from components.planner import plan_stack
from components.spec import StackError
from components.spec import limits as L
from components.spec.models import SpecModel, StackSpec
from components.spec.problems import dotted
from components.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]
PROBLEM_LINE = re.compile(r"^.+:\d+: \S+: .+$")
PARALLELISM = {"tensor_parallel_size", "pipeline_parallel_size"}


def full_stack() -> dict[str, Any]:
    """prod.yaml plus what it lacks, so that every spec object with a number is present: a shadow, an inline
    architecture, headroom, the system pool's disk, Prometheus' volume, explicit parallelism and planned flags."""
    data = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text(encoding="utf-8"))
    data["gpuPools"][0]["headroomGpus"] = 8
    data["cluster"]["systemPool"]["diskSizeGiB"] = 100
    data["observability"].update(retentionDays=30, storageGiB=200)
    data["observability"]["alerting"]["repeatIntervalHours"] = 4
    chat = data["services"][0]
    chat["shadow"] = {"mirrorPercent": 10, "replicas": 1, "engineArgs": {"max-num-seqs": 64}}
    chat["engineArgs"].update({"gpu-memory-utilization": 0.9, "max-num-seqs": 128, "max-num-batched-tokens": 8192})
    chat["tensorParallelSize"] = 4
    chat["pipelineParallelSize"] = 1
    data["services"][2]["triton"]["instancesPerGpu"] = 1
    data["services"].append({
        "name": "custom",
        "engine": "vllm",
        "model": {
            "name": "acme/custom-8b",
            "uri": "s3://inferfleet-prod-models/acme/custom-8b",
            "architecture": {
                "parameters": 8030261248, "activeParameters": 8030261248, "layers": 32, "hiddenSize": 4096,
                "intermediateSize": 14336, "attentionHeads": 32, "kvHeads": 8, "headDim": 128, "vocabSize": 128256,
                "contextLength": 131072, "experts": 0, "activeExperts": 0,
            },
        },
        "pools": ["l4-ondemand"],
        "replicas": {"min": 1, "max": 2},
        "maxModelLen": 8192,
        "workload": {"inputTokens": 1000, "outputTokens": 200, "peakRequestsPerSecond": 1},
        "slo": {"ttftP99Ms": 3000, "itlP99Ms": 100, "availability": 0.999},
    })
    return data


FULL = full_stack()


# ---- walking the models -----------------------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) is dict:
        return []
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _numeric_type(annotation: Any) -> type | None:
    members = {annotation, *typing.get_args(annotation)}
    return float if float in members else int if int in members else None


def _bounds(name: str, field) -> tuple[Any, bool, Any, bool]:
    """(lower, inclusive, upper, inclusive); None where the field has no such bound."""
    if name in PARALLELISM:
        return 1, True, L.MAX_PARALLEL_SIZE, True
    low = high = None
    low_in = high_in = True
    for meta in field.metadata:
        if isinstance(meta, at.Ge):
            low = meta.ge
        elif isinstance(meta, at.Gt):
            low, low_in = meta.gt, False
        elif isinstance(meta, at.Le):
            high = meta.le
        elif isinstance(meta, at.Lt):
            high, high_in = meta.lt, False
    return low, low_in, high, high_in


def all_numeric_fields(model: type[BaseModel] = StackSpec, seen: set | None = None):
    """(model, field name, field) of every int and float field of every spec model."""
    seen = set() if seen is None else seen
    for name, field in model.model_fields.items():
        if _numeric_type(field.annotation):
            yield model, name, field
        for child in _models_in(field.annotation):
            if child not in seen:
                seen.add(child)
                yield from all_numeric_fields(child, seen)


def numeric_paths(model: type[BaseModel], data: dict, prefix: tuple = ()):
    """(document path, model, field name, field) of every numeric field of every object present in `data`,
    the field itself present or not."""
    for name, field in model.model_fields.items():
        key = field.alias or name
        if _numeric_type(field.annotation):
            yield (*prefix, key), model, name, field
            continue
        value = data.get(key)
        for child in _models_in(field.annotation):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        yield from numeric_paths(child, item, (*prefix, key, index))
            elif isinstance(value, dict):
                yield from numeric_paths(child, value, (*prefix, key))


ALL_PATHS = list(numeric_paths(StackSpec, FULL))
FIRST_PATHS = list({(model, name): (path, model, name, field) for path, model, name, field in reversed(ALL_PATHS)}.values())
"""One path per field (its first occurrence), for the per-field tests."""
ENGINE_ARG_PATHS = [
    ("services", 0, "engineArgs", flag) for flag in ("gpu-memory-utilization", "max-num-seqs", "max-num-batched-tokens")
] + [("services", 0, "shadow", "engineArgs", "max-num-seqs")]


def _set(data: dict, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['environment']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _problems(path: Path) -> list[tuple[str, int, str]] | None:
    """(dotted path, line, message) of every problem load_stack finds; None for a valid stack."""
    try:
        load_stack(path)
    except StackError as error:
        return [(dotted(p.path), p.line, p.message) for p in error.problems]
    return None


# ---- the models ----------------------------------------------------------------------------------------------


def test_floats_are_finite_in_every_spec_model():
    assert SpecModel.model_config["allow_inf_nan"] is False


def test_every_numeric_field_has_a_lower_and_an_upper_bound():
    unbounded = []
    for model, name, field in all_numeric_fields():
        low, _, high, _ = _bounds(name, field)
        if low is None or high is None:
            unbounded.append(f"{model.__name__}.{name}")
        elif _numeric_type(field.annotation) is int:
            # Parameter counts are only planned with (int64 in any engine); Triton's queue delay is a uint64.
            wide = name in {"parameters", "active_parameters", "max_queue_delay_us"}
            assert high <= (L.INT64_MAX if wide else L.INT32_MAX), f"{model.__name__}.{name}: {high} is too wide"
    assert unbounded == []


def test_the_full_stack_holds_every_numeric_field_and_validates(tmp_path):
    assert {(model, name) for _, model, name, _ in ALL_PATHS} == {(m, n) for m, n, _ in all_numeric_fields()}
    assert _problems(_write(tmp_path, copy.deepcopy(FULL))) is None


def _past(bound: Any, inclusive: bool, direction: int, kind: type) -> Any:
    if kind is int:
        return bound + direction if inclusive else bound
    return bound * (2 if direction > 0 else 0.5) if inclusive and bound else (bound + direction if inclusive else bound)


@pytest.mark.parametrize("direction", [-1, 1], ids=["below", "above"])
@pytest.mark.parametrize(
    ("path", "model", "name", "field"), FIRST_PATHS, ids=[dotted(p[0]) for p in FIRST_PATHS]
)
def test_a_number_past_its_bound_is_refused_at_its_line(tmp_path, path, model, name, field, direction):
    low, low_in, high, high_in = _bounds(name, field)
    value = _past(high, high_in, 1, _numeric_type(field.annotation)) if direction > 0 else _past(
        low, low_in, -1, _numeric_type(field.annotation)
    )
    data = copy.deepcopy(FULL)
    _set(data, path, value)
    problems = _problems(_write(tmp_path, data))
    assert problems is not None, f"{dotted(path)} = {value!r} was accepted"
    found = [line for where, line, _ in problems if where == dotted(path)]
    assert found, problems
    text = _write(tmp_path, data).read_text(encoding="utf-8").splitlines()
    assert path[-1] in text[found[0] - 1], (found, text[found[0] - 1])


FLOAT_PATHS = [p for p in FIRST_PATHS if _numeric_type(p[3].annotation) is float]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("path", [p[0] for p in FLOAT_PATHS] + ENGINE_ARG_PATHS, ids=dotted)
def test_a_float_that_is_not_finite_is_refused(tmp_path, path, value):
    data = copy.deepcopy(FULL)
    _set(data, path, value)
    problems = _problems(_write(tmp_path, data))
    assert problems is not None and any(where == dotted(path) and "finite" in message for where, _, message in problems)


def test_an_engine_arg_integer_past_int64_is_refused(tmp_path):
    data = copy.deepcopy(FULL)
    data["services"][0]["engineArgs"]["seed"] = 2**63
    assert [(where, message) for where, _, message in _problems(_write(tmp_path, data))] == [
        ("services.0.engineArgs.seed",
         f"an integer must fit in 64 bits (vLLM passes it to torch as int64) (got {2**63})")
    ]


# ---- hypothesis: refused with located problems, or planned ------------------------------------------------------

EXAMPLES = int(os.environ.get("INFERFLEET_FUZZ_EXAMPLES", "150"))
SPECIALS = [0, 1, -1, 2, 2**31 - 1, 2**31, 2**63, 10**30, 0.5, 1e-300, 5e-324, 1e308, math.inf, -math.inf, math.nan]


def _values(low: Any, low_in: bool, high: Any, high_in: bool, kind: type) -> st.SearchStrategy:
    edges = [v for v in (low, high) if v is not None]
    if kind is int:
        edges += [low - 1, low + 1, high - 1, high + 1]
        inside = st.integers(min_value=low, max_value=high)
    else:
        edges += [math.nextafter(low, math.inf), math.nextafter(high, -math.inf), high * 1.000001]
        inside = st.floats(min_value=low, max_value=high, exclude_min=not low_in, exclude_max=not high_in)
    return st.one_of(
        inside, inside, st.sampled_from(edges), st.sampled_from(SPECIALS), st.floats(allow_nan=True, allow_infinity=True)
    )


FUZZ_TARGETS = [(path, _values(*_bounds(name, field), _numeric_type(field.annotation))) for path, _, name, field in ALL_PATHS]
FUZZ_TARGETS += [(path, st.sampled_from([*SPECIALS, 0.95, 0.1, 64, 512, 65536])) for path in ENGINE_ARG_PATHS]


@st.composite
def numeric_mutations(draw) -> list[tuple[tuple, Any]]:
    chosen = draw(st.lists(st.sampled_from(range(len(FUZZ_TARGETS))), min_size=1, max_size=4, unique=True))
    return [(FUZZ_TARGETS[i][0], draw(FUZZ_TARGETS[i][1])) for i in chosen]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numbers")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=numeric_mutations())
def test_numbers_are_refused_with_located_problems_or_plan(fuzz_dir, mutations):
    data = copy.deepcopy(FULL)
    for path, value in mutations:
        _set(data, path, value)
    path = _write(fuzz_dir, data)
    try:
        source = load_stack(path)
    except StackError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and PROBLEM_LINE.match(str(problem)), str(problem)
        return
    plan_stack(source.spec, load_catalog())


# ---- extremes ------------------------------------------------------------------------------------------------


def extreme_stack(largest: bool) -> dict[str, Any]:
    """Every number at its largest allowed value (the largest request rate with the smallest SLO), or its smallest,
    as far as the cross-field rules allow (pools' maxSize together within Kubernetes' 5,000 nodes)."""
    data = full_stack()
    pools = data["gpuPools"]
    for pool in pools:
        pool["maxSize"] = (L.KUBERNETES_MAX_NODES - 450) // len(pools) if largest else 1
        pool["minSize"] = 0
        pool["rootVolumeGiB"] = L.EBS_VOLUME_MAX_GIB if largest else 50
        pool["headroomGpus"] = 8 if largest else 0
        if "warmPool" in pool:
            pool["warmPool"]["size"] = pool["maxSize"]
    data["cluster"]["systemPool"].update(
        minSize=0, maxSize=450 if largest else 1, diskSizeGiB=L.EBS_VOLUME_MAX_GIB if largest else 20
    )
    data["observability"].update(
        retentionDays=L.MAX_RETENTION_DAYS if largest else 1, storageGiB=L.EBS_VOLUME_MAX_GIB if largest else 10
    )
    data["observability"]["alerting"]["repeatIntervalHours"] = 168 if largest else 1
    data["deployGate"] = {"enabled": True, "numPrompts": 10_000 if largest else 1,
                          "concurrency": 1024 if largest else 1, "timeoutSeconds": 7200 if largest else 60}
    for service in data["services"]:
        service["replicas"] = {"min": L.MAX_REPLICAS if largest else 1, "max": L.MAX_REPLICAS if largest else 1}
        workload = service["workload"]
        workload["peakRequestsPerSecond"] = L.MAX_REQUESTS_PER_SECOND if largest else L.MIN_REQUESTS_PER_SECOND
        workload["inputTokens"] = service["maxModelLen"] - 1 if largest else 1
        workload["outputTokens"] = 1 if largest or workload["outputTokens"] else 0
        slo = service["slo"]
        slo["ttftP99Ms"] = 5e-324 if largest else L.MAX_LATENCY_MS
        if "itlP99Ms" in slo:
            slo["itlP99Ms"] = 5e-324 if largest else L.MAX_LATENCY_MS
        slo["availability"] = L.MAX_AVAILABILITY if largest else math.nextafter(L.MIN_AVAILABILITY, 1)
        for revision in ("canary", "shadow"):
            if revision in service:
                service[revision]["replicas"] = L.MAX_REPLICAS if largest else 1
        for stage in service.get("pipeline", []):
            stage["numCpus"] = L.MAX_STAGE_CPUS if largest else L.RAY_RESOURCE_PRECISION
            stage["replicas"] = {"min": L.MAX_REPLICAS if largest else 0, "max": L.MAX_REPLICAS if largest else 1}
        if "triton" in service:
            service["triton"].update(
                maxBatchSize=L.MAX_TRITON_BATCH_SIZE if largest else 1,
                maxQueueDelayUs=L.MAX_TRITON_QUEUE_DELAY_US if largest else 0,
                instancesPerGpu=L.MAX_TRITON_INSTANCES_PER_GPU if largest else 1,
            )
    return data


@pytest.mark.parametrize("largest", [True, False], ids=["largest", "smallest"])
def test_extreme_but_valid_numbers_validate_and_plan(tmp_path, largest):
    source = load_stack(_write(tmp_path, extreme_stack(largest)))
    plan = plan_stack(source.spec, load_catalog())
    assert plan.services


@pytest.mark.parametrize("largest", [True, False], ids=["largest", "smallest"])
def test_extreme_numbers_render_and_no_resource_carries_more_program_tags_than_kept(tmp_path, largest):
    from components.render import render

    source = load_stack(_write(tmp_path, extreme_stack(largest)))
    rendered = render(source, load_catalog())
    spec_tags = set(source.spec.tags)
    most = 0
    for resource in rendered.resources:
        if not resource.type.startswith("aws:"):
            continue
        tags = resource.inputs.get("tags")
        keys = [t["key"] for t in tags if isinstance(t, dict)] if isinstance(tags, list) else list(tags or {})
        most = max(most, len([key for key in keys if key not in spec_tags]))
    assert most == PROGRAM_TAGS_MOST <= L.PROGRAM_TAGS_RESERVED


# ---- the program's own tags, the bucket rule ---------------------------------------------------------------------


def test_the_program_adds_no_more_tags_than_kept_and_only_keys_the_spec_may_not_set():
    from components.aws.gpu_pool import group_tags
    from components.aws.network import subnet_tags
    from components.aws.tags import named, stack_tags
    from components.manifests.scheduling import pool_labels, pool_taints

    catalog = load_catalog()
    most = 0
    for stack_file in sorted((ROOT / "stacks").glob("*.yaml")):
        spec = load_stack(stack_file).spec
        tags = stack_tags(spec)
        added = [named(tags, "x"), subnet_tags(tags, "x", "cluster", True), subnet_tags(tags, "x", "cluster", False)]
        for pool in spec.gpu_pools:
            instance = catalog.instance_types[pool.instance_types[0]]
            labels = pool_labels(pool, instance.gpu)
            taints = [taint.kubelet_flag() for taint in pool_taints(pool)]
            added.append(group_tags("x", "cluster", tags, labels, taints, instance.gpu_count))
        for resource_tags in added:
            own = [key for key in resource_tags if key not in spec.tags]
            most = max(most, len(own))
            assert all(L.program_tag_key(key) for key in own), own
            for key, value in resource_tags.items():
                assert L.tag_text_problem(key, "key", L.TAG_KEY_MAX) is None, key
                assert L.tag_text_problem(value, "value", L.TAG_VALUE_MAX) is None, value
    assert most == PROGRAM_TAGS_MOST <= L.PROGRAM_TAGS_RESERVED


PROGRAM_TAGS_MOST = 14
"""What limits.PROGRAM_TAGS_RESERVED's docstring and the README say the program adds at most (a spot GPU pool's
Auto Scaling group); when the program adds a tag, update them and this."""


def test_model_storage_refuses_buckets_with_the_specs_rule():
    from components.aws import storage

    assert storage.bucket_name_problem is L.bucket_name_problem


def test_the_longest_environment_gives_a_valid_default_bucket():
    from components.aws.storage import default_bucket_name

    assert L.bucket_name_problem(default_bucket_name("e" * 40)) is None
