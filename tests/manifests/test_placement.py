"""Replica sets: the on-demand floor, the chain of burst sets (one per GPU shape and capacity type, every
spot set before every on-demand set), revisions; pods land only where their pools' labels and taints say."""

from __future__ import annotations

import copy

from components.manifests.placement import node_affinity, replica_sets, tolerations
from components.manifests.scheduling import POOL_LABEL, pool_labels, pool_taints
from components.planner import plan_stack
from components.spec.models import StackSpec


def sets_by_name(spec, plan, service_name):
    (service,) = [s for s in spec.services if s.name == service_name]
    return {r.name: r for r in replica_sets(service, spec, plan)}


def test_floor_holds_replicas_min_on_on_demand_pools_only(prod):
    spec, plan = prod
    for service in spec.services:
        (floor,) = [r for r in replica_sets(service, spec, plan) if r.role == "floor"]
        assert floor.replicas_min == floor.replicas_max == service.replicas.min
        assert {pool.capacity_type for pool in floor.pools} == {"onDemand"}
        assert all(taint.key != "inferfleet.io/spot" for pool in floor.pools for taint in pool_taints(pool))


def test_burst_scales_the_rest_on_the_first_spot_pool(prod):
    spec, plan = prod
    burst = sets_by_name(spec, plan, "chat")["chat-burst"]
    assert (burst.replicas_min, burst.replicas_max) == (0, 14)
    assert [pool.name for pool in burst.pools] == ["h100-spot"] and burst.fallback_of is None


def _burst_chain(sets) -> list[tuple[str, list[str], str | None]]:
    return [(r.name, [p.name for p in r.pools], r.fallback_of) for r in sets.values() if r.role == "burst"]


def test_every_spot_set_comes_before_every_on_demand_set_in_the_services_order(prod):
    """prod's chat names [h100-spot, h200-spot, a100-spot, h100-ondemand]: the on-demand H100 pool is the
    last fallback, after the spot H200 and A100 pools, though it has the first set's shape (Cluster
    Autoscaler would otherwise add an on-demand H100 node for the first set's pending pods before the
    spot fallbacks had any)."""
    spec, plan = prod
    sets = sets_by_name(spec, plan, "chat")
    assert _burst_chain(sets) == [
        ("chat-burst", ["h100-spot"], None),
        ("chat-burst-2", ["h200-spot"], "chat-burst"),
        ("chat-burst-3", ["a100-spot"], "chat-burst-2"),
        ("chat-burst-4", ["h100-ondemand"], "chat-burst-3"),
    ]
    assert all(r.replicas_min == 0 and r.replicas_max == 14 for r in sets.values() if r.role == "burst")
    assert [p.name for p in sets["chat-floor"].pools] == ["h100-ondemand"]
    assert [p.name for p in sets["chat-canary"].pools] == ["h100-spot", "h100-ondemand"]


def test_spot_sets_follow_the_services_order_whatever_the_on_demand_pools_position(prod, catalog):
    """The order of each kind is the order of its first pool in `pools`; an on-demand pool listed first
    still holds the floor and comes last in the burst chain."""
    spec = with_chat_pools(prod[0], ["h100-ondemand", "a100-spot", "h100-spot", "l40s-ondemand"])
    plan = plan_stack(spec, catalog)
    sets = sets_by_name(spec, plan, "chat")
    assert _burst_chain(sets) == [
        ("chat-burst", ["a100-spot"], None),
        ("chat-burst-2", ["h100-spot"], "chat-burst"),
        ("chat-burst-3", ["h100-ondemand"], "chat-burst-2"),
        ("chat-burst-4", ["l40s-ondemand"], "chat-burst-3"),
    ]
    assert [p.name for p in sets["chat-floor"].pools] == ["h100-ondemand"]


def test_pools_of_one_shape_and_capacity_type_share_a_set_in_the_services_order(prod, catalog):
    """Two spot pools of the H100 node type (spot capacity diversified over two groups) are one set whose
    pods prefer them in the service's order."""
    data = prod[0].model_dump(by_alias=True, exclude_none=True)
    data = copy.deepcopy(data)
    h100_spot = next(pool for pool in data["gpuPools"] if pool["name"] == "h100-spot")
    data["gpuPools"].append({**copy.deepcopy(h100_spot), "name": "h100-spot-b"})
    data["services"][0]["pools"] = ["h100-spot-b", "h200-spot", "h100-spot", "h100-ondemand"]
    spec = StackSpec.model_validate(data)
    sets = sets_by_name(spec, plan_stack(spec, catalog), "chat")
    assert _burst_chain(sets) == [
        ("chat-burst", ["h100-spot-b", "h100-spot"], None),
        ("chat-burst-2", ["h200-spot"], "chat-burst"),
        ("chat-burst-3", ["h100-ondemand"], "chat-burst-2"),
    ]
    preferred = node_affinity(sets["chat-burst"].pools)["preferredDuringSchedulingIgnoredDuringExecution"]
    weights = {term["preference"]["matchExpressions"][0]["values"][0]: term["weight"] for term in preferred}
    assert weights["h100-spot-b"] > weights["h100-spot"]


def test_service_without_a_floor_scales_from_zero(planned):
    spec, plan = planned
    for service in spec.services:
        sets = replica_sets(service, spec, plan)
        assert any(r.role == "floor" for r in sets) == (service.replicas.min > 0)


def with_chat_pools(spec: StackSpec, pools: list[str]) -> StackSpec:
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data = copy.deepcopy(data)
    data["services"][0]["pools"] = pools
    return StackSpec.model_validate(data)


def test_pools_of_another_shape_get_their_own_burst_set_that_falls_back(prod, catalog):
    spec = with_chat_pools(prod[0], ["h100-spot", "l40s-spot", "h100-ondemand"])
    plan = plan_stack(spec, catalog)
    sets = sets_by_name(spec, plan, "chat")
    first, second, third = sets["chat-burst"], sets["chat-burst-2"], sets["chat-burst-3"]
    assert [p.name for p in first.pools] == ["h100-spot"]
    assert [p.name for p in second.pools] == ["l40s-spot"]
    assert [p.name for p in third.pools] == ["h100-ondemand"]
    assert (first.fallback_of, second.fallback_of, third.fallback_of) == (None, "chat-burst", "chat-burst-2")
    assert (first.plan.instance_type, second.plan.instance_type, third.plan.instance_type) == (
        "p5.48xlarge", "g6e.12xlarge", "p5.48xlarge")


def test_canary_carries_its_engine_args_over_the_service(prod):
    spec, plan = prod
    canary = sets_by_name(spec, plan, "chat")["chat-canary"]
    assert canary.revision == "canary" and canary.replicas_min == 1
    assert canary.engine_args == {"enable-prefix-caching": True, "max-num-batched-tokens": 16384}


def test_pods_select_exactly_their_pools_labels_and_tolerate_their_taints(planned):
    spec, plan = planned
    pools = {pool.name: pool for pool in spec.gpu_pools}
    for service in spec.services:
        for replica_set in replica_sets(service, spec, plan):
            (term,) = node_affinity(replica_set.pools)["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            (expression,) = term["matchExpressions"]
            assert expression["key"] == POOL_LABEL
            for name in expression["values"]:
                assert pool_labels(pools[name])[POOL_LABEL] == name
                needed = [t.toleration() for t in pool_taints(pools[name])]
                assert all(t in tolerations(replica_set.pools) for t in needed)


def test_single_pool_needs_no_preference(prod):
    spec, _ = prod
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in node_affinity(tuple(spec.gpu_pools[:1]))
