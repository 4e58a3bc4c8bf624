"""KEDA ScaledObjects: the first burst set scales above the floor on the engine's load (and wakes from zero
on the gateway only without a floor); a fallback runs one replica per replica of the set before it that
has waited FALLBACK_AFTER_SECONDS unplaced."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from components.manifests import alerts
from components.manifests.autoscaling import (
    FALLBACK_AFTER_SECONDS,
    burst_query,
    load_signal,
    scaled_object,
    unplaced_query,
    wake_query,
)
from components.manifests.placement import replica_sets
from components.manifests.serving import FALLBACK_OF_ANNOTATION, SKIP_AWAIT_ANNOTATION
from components.manifests.stack import WORKLOAD_KINDS, service_objects
from components.planner import plan_stack
from components.spec.models import StackSpec
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.promtool import promtool
from tests.manifests.test_placement import with_chat_pools
from tests.manifests.validators import validate_object

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment"}


def sets(spec, plan, name):
    (service,) = [s for s in spec.services if s.name == name]
    return {r.name: r for r in replica_sets(service, spec, plan)}


def test_burst_scales_between_zero_and_what_the_floor_leaves(prod, catalog):
    spec, plan = prod
    burst = sets(spec, plan, "chat")["chat-burst"]
    obj = scaled_object(burst, DEPLOYMENT, 2, catalog)
    validate_object(obj, KUBERNETES_VERSION)
    assert (obj["spec"]["minReplicaCount"], obj["spec"]["maxReplicaCount"]) == (0, 14)
    assert obj["spec"]["scaleTargetRef"] == {**DEPLOYMENT, "name": "chat-burst"}
    assert obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_vllm_load_counts_waiting_and_running_requests_of_the_stable_revision_above_the_floor(prod, catalog):
    spec, plan = prod
    burst = sets(spec, plan, "chat")["chat-burst"]
    query, per_replica = burst_query(burst, 2, catalog)
    assert "vllm:num_requests_waiting" in query and "vllm:num_requests_running" in query
    assert 'inferfleet_revision="stable"' in query and 'inferfleet_service="chat"' in query
    assert per_replica == burst.plan.planned_concurrency
    assert f"- {2 * per_replica}, 0)" in query


def test_triton_load_is_its_pending_requests(prod, catalog):
    spec, plan = prod
    burst = sets(spec, plan, "rerank")["rerank-burst"]
    signal = load_signal(burst, catalog)
    assert signal is not None and "nv_inference_pending_request_count" in signal.expression
    assert signal.per_replica == 64


def test_ray_serve_scales_itself(prod, catalog):
    spec, plan = prod
    assert load_signal(sets(spec, plan, "rag")["rag-burst"], catalog) is None


def _triggers(replica_set, floor, catalog, sets):
    previous = sets[replica_set.fallback_of] if replica_set.fallback_of else None
    return scaled_object(replica_set, DEPLOYMENT, floor, catalog, previous)["spec"]["triggers"]


def test_only_the_first_set_of_a_service_without_floor_wakes_from_zero_on_the_gateway(planned, catalog):
    """A fallback needs no wake: the count it scales on is there while none of the service's replicas runs."""
    spec, plan = planned
    for service in spec.services:
        floor = service.replicas.min
        sets = {r.name: r for r in replica_sets(service, spec, plan)}
        for replica_set in sets.values():
            if replica_set.role == "burst" and load_signal(replica_set, catalog):
                triggers = _triggers(replica_set, floor, catalog, sets)
                names = [t["name"] for t in triggers]
                if replica_set.fallback_of:
                    assert names == ["unplaced"], replica_set.name
                else:
                    assert names == (["load", "wake"] if floor == 0 else ["load"]), replica_set.name


def test_a_fallback_counts_only_the_long_unscheduled_pods_of_the_set_before_it(prod, catalog):
    """One replica per pod of the previous set that kube-state-metrics reports unscheduled and that was
    created FALLBACK_AFTER_SECONDS ago or more; not the service's load, so the chain runs the first set's
    count in all and the fallback's own replicas cannot close what opened it."""
    spec, plan = prod
    chat = sets(spec, plan, "chat")
    for name, previous in (("chat-burst-2", "chat-burst"), ("chat-burst-3", "chat-burst-2"),
                           ("chat-burst-4", "chat-burst-3")):
        obj = scaled_object(chat[name], DEPLOYMENT, 2, catalog, chat[previous])
        validate_object(obj, KUBERNETES_VERSION)
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["metricType"] == "AverageValue"
        assert (trigger["metadata"]["threshold"], trigger["metadata"]["activationThreshold"]) == ("1", "0")
        query = trigger["metadata"]["query"]
        assert query == unplaced_query(chat[previous])
        assert 'kube_pod_status_scheduled{namespace="inferfleet-serving",' in query and 'condition="false"' in query
        assert f'pod=~"{previous}-[a-z0-9]+-[a-z0-9]{{5}}"' in query
        assert "kube_pod_created" in query and f"> {FALLBACK_AFTER_SECONDS})" in query
        assert query.startswith("count(") and query.endswith(" or vector(0)")
        assert "vllm:" not in query and "envoy_" not in query
        assert (obj["spec"]["minReplicaCount"], obj["spec"]["maxReplicaCount"]) == (0, 14)


def test_the_fallback_delay_gives_cluster_autoscaler_time_to_try_the_previous_pools():
    """Longer than a few of CA's 10 s scans and a failed spot launch, shorter than CA's 15-minute
    max-node-provision-time and than the GpuPodPending ticket's wait (a fallback should have started
    before a pending pod becomes a ticket)."""
    assert 120 <= FALLBACK_AFTER_SECONDS < int(alerts.GPU_PENDING_FOR.removesuffix("m")) * 60 < 15 * 60


def test_a_fallback_of_a_service_without_a_floor_can_start_from_zero(prod, catalog):
    """No engine runs while the first set's only pods wait for a node, so no load signal exists: the
    fallback's count comes from kube-state-metrics alone, activates above 0 and starts from 0 replicas."""
    data = prod[0].model_dump(by_alias=True, exclude_none=True)
    data["services"][0].update(pools=["h100-spot", "l40s-spot"], replicas={"min": 0, "max": 4})
    spec = StackSpec.model_validate(data)
    plan = plan_stack(spec, catalog)
    chat = sets(spec, plan, "chat")
    first = scaled_object(chat["chat-burst"], DEPLOYMENT, 0, catalog)
    assert [t["name"] for t in first["spec"]["triggers"]] == ["load", "wake"]
    assert first["spec"]["triggers"][1]["metadata"]["query"] == wake_query(chat["chat-burst"])
    fallback = scaled_object(chat["chat-burst-2"], DEPLOYMENT, 0, catalog, chat["chat-burst"])
    assert fallback["spec"]["minReplicaCount"] == 0
    (trigger,) = fallback["spec"]["triggers"]
    assert trigger["metadata"]["query"] == unplaced_query(chat["chat-burst"])
    assert trigger["metadata"]["activationThreshold"] == "0"


def test_a_multi_node_set_counts_a_replica_once_whatever_its_pods(prod, catalog):
    """A LeaderWorkerSet's replica is a group of pods (`<set>-<group>`, `<set>-<group>-<index>`): the
    fallback counts groups with an unplaced pod."""
    spec, plan = prod
    burst = sets(spec, plan, "chat")["chat-burst"]
    wide = dataclasses.replace(burst, plan=burst.plan.model_copy(update={"nodes_per_replica": 2}))
    query = unplaced_query(wide)
    assert 'pod=~"chat-burst-[0-9]+(-[0-9]+)?"' in query
    assert 'count by (group) (label_replace(' in query and '"chat-burst-([0-9]+)(-[0-9]+)?")' in query


def test_fallback_workloads_name_the_set_they_fall_back_from(prod, catalog):
    """On the workload object (the policy pack counts a chain of fallbacks as one budget by it), not on the
    pod template: a renamed chain must not roll the pods."""
    spec = with_chat_pools(prod[0], ["h100-spot", "l40s-spot", "l40s-24xl-spot", "h100-ondemand"])
    plan = plan_stack(spec, catalog)
    workloads, _ = _workloads_and_targets(spec, plan, catalog)
    fallback_of = {name: obj["metadata"].get("annotations", {}).get(FALLBACK_OF_ANNOTATION)
                   for name, obj in workloads.items() if name.startswith("chat-")}
    assert fallback_of == {"chat-floor": None, "chat-burst": None, "chat-burst-2": "chat-burst",
                           "chat-burst-3": "chat-burst-2", "chat-burst-4": "chat-burst-3", "chat-canary": None}
    for obj in workloads.values():
        assert FALLBACK_OF_ANNOTATION not in obj["spec"]["template"]["metadata"].get("annotations", {})


def test_triton_vllm_backend_scales_on_vllm_gauges(prod, catalog):
    spec, plan = prod
    data = spec.model_dump(by_alias=True, exclude_none=True)
    rerank = next(s for s in data["services"] if s["name"] == "rerank")
    rerank["triton"]["backend"] = "vllm"
    changed = type(spec).model_validate(data)
    burst = sets(changed, plan, "rerank")["rerank-burst"]
    signal = load_signal(burst, catalog)
    assert signal is not None and "vllm:num_requests_waiting" in signal.expression


def _workloads_and_targets(spec, plan, catalog):
    """(every Deployment and LeaderWorkerSet by name, the names some ScaledObject scales) of a stack."""
    objects = [obj for service in spec.services for obj in service_objects(service, spec, plan, catalog).all()]
    workloads = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] in WORKLOAD_KINDS}
    targets = {obj["spec"]["scaleTargetRef"]["name"] for obj in objects if obj["kind"] == "ScaledObject"}
    return workloads, targets


def test_what_keda_scales_leaves_its_replica_count_to_keda(planned, catalog):
    """Server-side apply would reset a count the manifest sets on every update; KEDA's minReplicaCount
    holds the minimum instead, and Pulumi does not await the API server's default of one replica."""
    spec, plan = planned
    workloads, targets = _workloads_and_targets(spec, plan, catalog)
    assert targets and targets <= set(workloads)
    for name in targets:
        assert "replicas" not in workloads[name]["spec"], name
        assert workloads[name]["metadata"]["annotations"][SKIP_AWAIT_ANNOTATION] == "true"


def test_what_nothing_scales_keeps_its_fixed_count(planned, catalog):
    spec, plan = planned
    workloads, targets = _workloads_and_targets(spec, plan, catalog)
    by_name = {r.name: r for service in spec.services for r in replica_sets(service, spec, plan)}
    for name, workload in workloads.items():
        if name not in targets:
            assert workload["spec"]["replicas"] == by_name[name].replicas_min, name
            assert SKIP_AWAIT_ANNOTATION not in workload["metadata"].get("annotations", {}), name


# --- through Prometheus' own tool (promtool, installed by `make e2e`; tests/manifests/promtool.py) ---------

def _scaled_object_queries(spec, plan, catalog) -> list[tuple[str, str]]:
    """(ScaledObject/trigger, query) of every Prometheus trigger a stack renders."""
    return [(f"{obj['metadata']['name']}/{trigger['name']}", trigger["metadata"]["query"])
            for service in spec.services for obj in service_objects(service, spec, plan, catalog).all()
            if obj["kind"] == "ScaledObject" for trigger in obj["spec"]["triggers"] if trigger["type"] == "prometheus"]


def _recording_rules(expressions: list[str], directory: Path) -> str:
    """promtool parses expressions only in rule files: one recording rule per expression."""
    rules = [{"record": f"inferfleet:scaledobject_query:{index}", "expr": expr} for index, expr in enumerate(expressions)]
    (directory / "scaledobject_queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "scaledobject-queries", "rules": rules}]}, sort_keys=False))
    return "scaledobject_queries.yaml"


@pytest.mark.e2e
def test_every_scaled_object_query_parses(planned, catalog, tmp_path):
    spec, plan = planned
    queries = _scaled_object_queries(spec, plan, catalog)
    assert queries
    name = _recording_rules([query for _, query in queries], tmp_path)
    result = subprocess.run([promtool(), "check", "rules", name], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def _pod(pod: str, scheduled: str, created_s: int, namespace: str = "inferfleet-serving",
         instance: str = "10.0.1.7:8080") -> list[dict[str, str]]:
    """kube-state-metrics' series of one pod: PodScheduled false / true over time (`scheduled`, promtool's
    notation for the false series; the true series is its complement) and its creation time."""
    labels = f'namespace="{namespace}",pod="{pod}",uid="uid-{pod}",job="kube-state-metrics",instance="{instance}"'
    complement = " ".join(
        part.replace("1x", "#x").replace("0x", "1x").replace("#x", "0x") for part in scheduled.split())
    return [
        {"series": f'kube_pod_status_scheduled{{{labels},condition="false"}}', "values": scheduled},
        {"series": f'kube_pod_status_scheduled{{{labels},condition="true"}}', "values": complement},
        {"series": f"kube_pod_created{{{labels}}}", "values": f"{created_s}x30"},
    ]


def _evaluate(query: str, series: list[dict[str, str]], expected: dict[str, int],
              directory: Path) -> subprocess.CompletedProcess[str]:
    """promtool evaluates `query`, recorded by a one-rule file, over `series` (one-minute samples from
    Unix time 0, so `time()` is the minutes elapsed) and compares its value at each time in `expected`."""
    record = "inferfleet:fallback_replicas"
    (directory / "fallback.yaml").write_text(yaml.safe_dump(
        {"groups": [{"name": "fallback", "rules": [{"record": record, "expr": query}]}]}, sort_keys=False))
    unit = {"rule_files": ["fallback.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": record, "eval_time": at, "exp_samples": [{"labels": record, "value": value}]}
                             for at, value in expected.items()]}]}
    (directory / "fallback_test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))
    return subprocess.run([promtool(), "test", "rules", "fallback_test.yaml"], cwd=directory, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.e2e
def test_a_fallback_runs_one_replica_per_old_unscheduled_pod_of_the_set_before_it(prod, catalog, tmp_path):
    """chat-burst-2's query over kube-state-metrics series: two chat-burst pods unscheduled since minute 0
    count from minute 5 on (FALLBACK_AFTER_SECONDS), one of them placed at minute 12 stops counting; a
    young unscheduled pod, a scheduled one, the unscheduled pods of the next set, of the floor and of
    another namespace do not count, nor does a second kube-state-metrics replica's copy of a series. No
    engine series at all: the value is there with none of the service's replicas running (0 before, not
    empty)."""
    assert FALLBACK_AFTER_SECONDS == 300, "the series below are timed for five minutes"
    spec, plan = prod
    chat = sets(spec, plan, "chat")
    query = scaled_object(chat["chat-burst-2"], DEPLOYMENT, 2, catalog, chat["chat-burst"])["spec"]["triggers"][0]
    series = [
        *_pod("chat-burst-7c9d8f5b4-x2k4p", "1x30", 0),
        *_pod("chat-burst-7c9d8f5b4-x2k4p", "1x30", 0, instance="10.0.2.9:8080"),
        *_pod("chat-burst-7c9d8f5b4-q9w8r", "1x11 0x18", 0),
        *_pod("chat-burst-7c9d8f5b4-m4n5b", "1x30", 480),     # young until minute 13
        *_pod("chat-burst-7c9d8f5b4-z7v6t", "0x30", 0),       # scheduled
        *_pod("chat-burst-2-6d5f4c8b9-k2j3h", "1x30", 0),     # the next set's
        *_pod("chat-floor-5b4c7d9f8-p8l7k", "1x30", 0),       # the floor's
        *_pod("chat-burst-7c9d8f5b4-w5x6z", "1x30", 0, namespace="other"),
    ]
    expected = {"4m": 0, "6m": 2, "10m": 2, "12m": 1, "14m": 2}
    result = _evaluate(query["metadata"]["query"], series, expected, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = _evaluate(query["metadata"]["query"], series, {**expected, "10m": 3}, tmp_path)
    assert wrong.returncode != 0, "the evaluation can fail"


@pytest.mark.e2e
def test_a_fallback_of_a_multi_node_set_counts_its_groups(prod, catalog, tmp_path):
    """A LeaderWorkerSet replica with its leader and worker unplaced counts once; a group with only a
    worker unplaced counts too; the next set's group does not."""
    spec, plan = prod
    burst = sets(spec, plan, "chat")["chat-burst"]
    wide = dataclasses.replace(burst, plan=burst.plan.model_copy(update={"nodes_per_replica": 2}))
    series = [*_pod("chat-burst-0", "1x30", 0), *_pod("chat-burst-0-1", "1x30", 0),
              *_pod("chat-burst-1", "0x30", 0), *_pod("chat-burst-1-1", "1x30", 0),
              *_pod("chat-burst-2-7c9d8f5b4-x2k4p", "1x30", 0)]
    result = _evaluate(unplaced_query(wide), series, {"4m": 0, "6m": 2}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
