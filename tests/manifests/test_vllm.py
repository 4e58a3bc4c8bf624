"""vLLM workloads: arguments from the plan with engineArgs on top, GPUs, probes, drain, multi-node."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from components.manifests.monitoring import OTLP_TRACES_GRPC_ENDPOINT
from components.manifests.placement import replica_sets
from components.manifests.probes import PROBE_PERIOD_SECONDS, load_seconds
from components.manifests.serving import SPOT_NOTICE_SECONDS
from components.manifests.vllm import vllm_args, vllm_objects
from components.planner import plan_stack
from components.spec.models import StackSpec
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.validators import validate_object


def vllm_services(spec):
    return [service for service in spec.services if service.engine == "vllm"]


def flags(args: list[str]) -> dict[str, str | bool]:
    parsed: dict[str, str | bool] = {}
    for i, part in enumerate(args):
        if part.startswith("--"):
            following = args[i + 1] if i + 1 < len(args) else "--"
            parsed[part[2:]] = True if following.startswith("--") else following
    return parsed


def test_every_object_passes_its_schema(planned, catalog):
    spec, plan = planned
    for service in vllm_services(spec):
        for obj in vllm_objects(service, spec, plan, catalog):
            validate_object(obj, KUBERNETES_VERSION)


def test_arguments_carry_the_plan(prod, catalog):
    spec, plan = prod
    (service,) = vllm_services(spec)
    for replica_set in replica_sets(service, spec, plan):
        args = flags(vllm_args(replica_set, catalog))
        assert args["tensor-parallel-size"] == str(replica_set.plan.tensor_parallel_size)
        assert args["pipeline-parallel-size"] == str(replica_set.plan.pipeline_parallel_size)
        assert args["max-num-seqs"] == str(replica_set.plan.max_concurrent_sequences)
        assert args["max-model-len"] == "16384"
        assert args["served-model-name"] == "meta-llama/Llama-3.1-70B-Instruct"
        assert args["enable-prefix-caching"] is True


def test_engine_args_win_over_planned_values(prod, catalog):
    spec, plan = prod
    sets = {r.name: r for r in replica_sets(vllm_services(spec)[0], spec, plan)}
    assert flags(vllm_args(sets["chat-burst"], catalog))["max-num-batched-tokens"] == "8192"
    assert flags(vllm_args(sets["chat-canary"], catalog))["max-num-batched-tokens"] == "16384"


def test_false_engine_arg_becomes_a_no_flag(prod, catalog):
    spec, plan = prod
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["services"][0]["engineArgs"] = {"enable-prefix-caching": False}
    del data["services"][0]["canary"]
    changed = StackSpec.model_validate(data)
    replica_set = replica_sets(changed.services[0], changed, plan)[0]
    args = vllm_args(replica_set, catalog)
    assert "--no-enable-prefix-caching" in args and "--enable-prefix-caching" not in args


@pytest.mark.parametrize(("written", "value", "expected"), [("no-enable-prefix-caching", True, "--no-enable-prefix-caching"),
                                                            ("no_enable_prefix_caching", False, "--enable-prefix-caching")])
def test_a_negated_engine_arg_replaces_the_planned_flag(prod, catalog, written, value, expected):
    spec, plan = prod
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["services"][0]["engineArgs"] = {written: value}
    del data["services"][0]["canary"]
    changed = StackSpec.model_validate(data)
    args = vllm_args(replica_sets(changed.services[0], changed, plan)[0], catalog)
    assert [a for a in args if a.endswith("enable-prefix-caching")] == [expected]


def test_weights_come_from_the_node_cache_filled_once_per_node(prod, catalog):
    spec, plan = prod
    (service,) = vllm_services(spec)
    deployment = next(o for o in vllm_objects(service, spec, plan, catalog) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert "flock" in script and ".complete" in script
    assert "s3://inferfleet-prod-models/meta-llama/Llama-3.1-70B-Instruct" in script
    assert flags(pod["containers"][0]["command"])["model"].startswith("/models/meta-llama/Llama-3.1-70B-Instruct/")
    assert {v["name"]: v for v in pod["volumes"]}["weights"]["hostPath"]["path"].startswith("/mnt/k8s-disks/")


def test_gpu_requests_equal_limits_equal_the_replica(prod, catalog):
    spec, plan = prod
    (service,) = vllm_services(spec)
    for obj in vllm_objects(service, spec, plan, catalog):
        if obj["kind"] == "Deployment":
            (container,) = obj["spec"]["template"]["spec"]["containers"]
            entry = next(r.plan for r in replica_sets(service, spec, plan) if r.name == obj["metadata"]["name"])
            resources = container["resources"]
            assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == entry.gpus_per_replica


def test_startup_probe_waits_for_the_planned_load_and_drain_fits_the_spot_notice(prod, catalog):
    spec, plan = prod
    (service,) = vllm_services(spec)
    for replica_set in replica_sets(service, spec, plan):
        deployment = next(o for o in vllm_objects(service, spec, plan, catalog) if o["metadata"]["name"] == replica_set.name and o["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        probe = pod["containers"][0]["startupProbe"]
        assert probe["failureThreshold"] * PROBE_PERIOD_SECONDS >= load_seconds(replica_set.plan)
        drain = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert drain < pod["terminationGracePeriodSeconds"] < SPOT_NOTICE_SECONDS


def test_one_service_per_revision_selects_only_that_revision(prod, catalog):
    spec, plan = prod
    (service,) = vllm_services(spec)
    objects = vllm_objects(service, spec, plan, catalog)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    assert set(services) == {"chat", "chat-canary"}
    for obj in objects:
        if obj["kind"] == "Deployment":
            labels = obj["spec"]["template"]["metadata"]["labels"]
            selecting = [n for n, s in services.items() if s["spec"]["selector"].items() <= labels.items()]
            assert len(selecting) == 1


@pytest.fixture(scope="module")
def multi_node(catalog):
    """Llama 3.1 405B at 16-bit on 8-GPU H100 nodes: two nodes per replica."""
    platform = {k: v for k, v in yaml.safe_load(Path("stacks/prod.yaml").read_text()).items() if k != "services"}
    spec = StackSpec.model_validate(
        {
            **platform,
            "services": [
                {
                    "name": "big",
                    "engine": "vllm",
                    "model": {"name": "meta-llama/Llama-3.1-405B-Instruct", "uri": "s3://inferfleet-prod-models/llama-405b"},
                    "pools": ["h100-ondemand"],
                    "replicas": {"min": 1, "max": 2},
                    "maxModelLen": 8192,
                    "tensorParallelSize": 8,
                    "pipelineParallelSize": 2,
                    "workload": {"inputTokens": 1000, "outputTokens": 200, "peakRequestsPerSecond": 0.5},
                }
            ],
        }
    )
    return spec, plan_stack(spec, catalog)


def test_replica_over_several_nodes_is_a_leader_worker_set(multi_node, catalog):
    spec, plan = multi_node
    objects = vllm_objects(spec.services[0], spec, plan, catalog)
    (lws,) = [o for o in objects if o["kind"] == "LeaderWorkerSet" and o["metadata"]["name"] == "big-floor"]
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    leader_command = template["leaderTemplate"]["spec"]["containers"][0]["command"][-1]
    assert "ray start --head" in leader_command and "--distributed-executor-backend ray" in leader_command
    assert "--pipeline-parallel-size 2" in leader_command
    validate_object(lws, KUBERNETES_VERSION)
    for role in ("leaderTemplate", "workerTemplate"):
        assert template[role]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert "inferfleet.io/revision" not in template["workerTemplate"]["metadata"]["labels"]


def test_a_burst_leader_worker_set_leaves_its_count_to_keda(multi_node, catalog):
    """The floor's LeaderWorkerSet keeps its size; the burst's has no `spec.replicas`, so applies do not
    reset what KEDA scaled it to (its ScaledObject's minReplicaCount holds the minimum)."""
    spec, plan = multi_node
    lws = {o["metadata"]["name"]: o for o in vllm_objects(spec.services[0], spec, plan, catalog) if o["kind"] == "LeaderWorkerSet"}
    assert lws["big-floor"]["spec"]["replicas"] == 1
    assert "replicas" not in lws["big-burst"]["spec"]
    validate_object(lws["big-burst"], KUBERNETES_VERSION)


def test_leader_worker_set_checks_catch_its_own_and_its_pods_fields(multi_node, catalog):
    spec, plan = multi_node
    (lws,) = [o for o in vllm_objects(spec.services[0], spec, plan, catalog) if o["kind"] == "LeaderWorkerSet" and o["metadata"]["name"] == "big-floor"]
    wrong_policy = copy.deepcopy(lws)
    wrong_policy["spec"]["startupPolicy"] = "WhenReady"
    with pytest.raises(jsonschema.ValidationError):
        validate_object(wrong_policy, KUBERNETES_VERSION)
    wrong_pod = copy.deepcopy(lws)
    wrong_pod["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["gpus"] = 8
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(wrong_pod, KUBERNETES_VERSION)


def test_a_wrong_field_is_caught(prod, catalog):
    spec, plan = prod
    deployment = next(o for o in vllm_objects(vllm_services(spec)[0], spec, plan, catalog) if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["gpus"] = 8
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(deployment, KUBERNETES_VERSION)


def test_tracing_sends_spans_to_the_collector_only_when_it_runs(prod, catalog):
    spec, plan = prod
    for tracing, expected in ((False, None), (True, OTLP_TRACES_GRPC_ENDPOINT)):
        observed = spec.model_copy(update={"observability": spec.observability.model_copy(update={"tracing": tracing})})
        (replica_set, *_) = replica_sets(vllm_services(observed)[0], observed, plan)
        assert flags(vllm_args(replica_set, catalog)).get("otlp-traces-endpoint") == expected
