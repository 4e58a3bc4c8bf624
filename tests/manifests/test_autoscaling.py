"""KEDA ScaledObjects: bursts scale above the floor on the engine's load, fallbacks only while the set
before them cannot place pods, scale from zero only without a floor."""

from __future__ import annotations

from components.manifests.autoscaling import burst_query, load_signal, scaled_object, wake_query
from components.manifests.placement import replica_sets
from components.manifests.serving import FALLBACK_OF_ANNOTATION, SKIP_AWAIT_ANNOTATION
from components.manifests.stack import WORKLOAD_KINDS, service_objects
from components.planner import plan_stack
from components.spec.models import StackSpec
from tests.manifests.conftest import KUBERNETES_VERSION
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


def test_only_a_service_without_floor_wakes_from_zero_on_the_gateway(planned, catalog):
    """A fallback too, but only while the set before it cannot place its pods."""
    spec, plan = planned
    for service in spec.services:
        floor = service.replicas.min
        for replica_set in replica_sets(service, spec, plan):
            if replica_set.role == "burst" and load_signal(replica_set, catalog):
                triggers = scaled_object(replica_set, DEPLOYMENT, floor, catalog)["spec"]["triggers"]
                queries = [t["metadata"]["query"] for t in triggers]
                wake = [q for q in queries if "envoy_cluster_upstream_cx_none_healthy" in q]
                assert bool(wake) == (floor == 0), replica_set.name
                if wake and replica_set.fallback_of:
                    assert wake[0].endswith(f'pod=~"{replica_set.fallback_of}-[a-z0-9]+-[a-z0-9]+|'
                                            f'{replica_set.fallback_of}-[0-9]+(-[0-9]+)?"}}) > 0)'), wake[0]
                elif wake:
                    assert " and on() " not in wake[0]


def test_fallback_shape_scales_only_while_the_preferred_set_has_pending_pods(prod, catalog):
    spec = with_chat_pools(prod[0], ["h100-spot", "l40s-spot", "h100-ondemand"])
    plan = plan_stack(spec, catalog)
    fallback = sets(spec, plan, "chat")["chat-burst-2"]
    query, _ = burst_query(fallback, 2, catalog)
    assert query.endswith('pod=~"chat-burst-[a-z0-9]+-[a-z0-9]+|chat-burst-[0-9]+(-[0-9]+)?"}) > 0)')
    assert " and on() " in query


def test_without_a_floor_a_fallback_wakes_only_while_the_set_before_it_cannot_place_pods(prod, catalog):
    """No engine runs while the first set's only pods are pending, so no load signal reaches the fallback:
    the gateway's unroutable requests wake it, gated on those pending pods."""
    data = prod[0].model_dump(by_alias=True, exclude_none=True)
    data["services"][0].update(pools=["h100-spot", "l40s-spot"], replicas={"min": 0, "max": 4})
    spec = StackSpec.model_validate(data)
    plan = plan_stack(spec, catalog)
    chat = sets(spec, plan, "chat")
    triggers = {name: scaled_object(chat[name], DEPLOYMENT, 0, catalog)["spec"]["triggers"]
                for name in ("chat-burst", "chat-burst-2")}
    wake = {name: [t["metadata"]["query"] for t in found if t["name"] == "wake"] for name, found in triggers.items()}
    assert wake["chat-burst"] == [wake_query(chat["chat-burst"])] and " and on() " not in wake["chat-burst"][0]
    (fallback,) = wake["chat-burst-2"]
    assert fallback.startswith(f"({wake_query(chat['chat-burst'])}) and on() (")
    assert fallback.endswith('pod=~"chat-burst-[a-z0-9]+-[a-z0-9]+|chat-burst-[0-9]+(-[0-9]+)?"}) > 0)')


def test_fallback_workloads_name_the_set_they_fall_back_from(prod, catalog):
    """On the workload object (the policy pack counts a chain of fallbacks as one budget by it), not on the
    pod template: a renamed chain must not roll the pods."""
    spec = with_chat_pools(prod[0], ["h100-spot", "l40s-spot", "l40s-24xl-spot", "h100-ondemand"])
    plan = plan_stack(spec, catalog)
    workloads, _ = _workloads_and_targets(spec, plan, catalog)
    fallback_of = {name: obj["metadata"].get("annotations", {}).get(FALLBACK_OF_ANNOTATION)
                   for name, obj in workloads.items() if name.startswith("chat-")}
    assert fallback_of == {"chat-floor": None, "chat-burst": None, "chat-burst-2": "chat-burst",
                           "chat-burst-3": "chat-burst-2", "chat-canary": None}
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
