"""Cluster Autoscaler's priority expander: spot before on-demand, then the services' own pool preference."""

import re

import pytest

from components.manifests.autoscaler import cluster_autoscaler_values, priority_expander_priorities
from components.manifests.scheduling import POOL_LABEL, system_node_selector
from components.stack import load_stack


@pytest.fixture(scope="module")
def prod():
    return load_stack("stacks/prod.yaml").spec


def names(spec):
    return {pool.name: f"inferfleet-{spec.environment}-{pool.name}.asg" for pool in spec.gpu_pools}


def priority_of(priorities: dict[int, list[str]], group: str) -> int:
    """The priority the expander gives `group`: the highest level with a regex that matches it."""
    matching = [priority for priority, patterns in priorities.items() if any(re.search(p, group) for p in patterns)]
    assert matching, f"{group} matches no priority"
    return max(matching)


def with_pools(spec, pools, services_pools):
    """`spec` with its GPU pools replaced by (name, capacity type) and one service per `pools` list."""
    template_pool = spec.gpu_pools[0]
    new_pools = [
        template_pool.model_copy(update={"name": name, "capacity_type": capacity, "warm_pool": None})
        for name, capacity in pools
    ]
    template_service = spec.services[0]
    services = [
        template_service.model_copy(update={"name": f"svc-{index}", "pools": preference})
        for index, preference in enumerate(services_pools)
    ]
    return spec.model_copy(update={"gpu_pools": new_pools, "services": services})


def test_every_spot_pool_ranks_above_every_on_demand_pool(prod):
    groups = names(prod)
    priorities = priority_expander_priorities(prod, groups)
    spot = [priority_of(priorities, groups[p.name]) for p in prod.gpu_pools if p.capacity_type == "spot"]
    on_demand = [priority_of(priorities, groups[p.name]) for p in prod.gpu_pools if p.capacity_type == "onDemand"]
    assert spot and on_demand
    assert min(spot) > max(on_demand)


def test_spot_wins_even_when_services_list_on_demand_first(prod):
    spec = with_pools(prod, [("a-od", "onDemand"), ("a-spot", "spot")], [["a-od", "a-spot"]])
    priorities = priority_expander_priorities(spec, names(spec))
    assert priority_of(priorities, names(spec)["a-spot"]) > priority_of(priorities, names(spec)["a-od"])


def test_within_a_capacity_type_the_pool_a_service_names_first_ranks_higher(prod):
    spec = with_pools(
        prod,
        [("first", "spot"), ("second", "spot"), ("unnamed", "spot")],
        [["first", "second"], ["first"]],
    )
    groups = names(spec)
    priorities = priority_expander_priorities(spec, groups)
    assert priority_of(priorities, groups["first"]) > priority_of(priorities, groups["second"])
    assert priority_of(priorities, groups["second"]) > priority_of(priorities, groups["unnamed"])


def test_a_chain_of_three_spot_shapes_is_grown_in_the_services_order_before_on_demand(prod):
    spec = with_pools(
        prod,
        [("od", "onDemand"), ("third", "spot"), ("second", "spot"), ("first", "spot")],
        [["first", "second", "third", "od"]],
    )
    groups = names(spec)
    priorities = priority_expander_priorities(spec, groups)
    ranks = [priority_of(priorities, groups[pool]) for pool in ("first", "second", "third", "od")]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == 4


def test_pools_with_the_same_capacity_and_best_position_share_one_level(prod):
    groups = names(prod)
    priorities = priority_expander_priorities(prod, groups)
    assert priority_of(priorities, groups["h100-spot"]) == priority_of(priorities, groups["l40s-spot"])
    assert priority_of(priorities, groups["h200-spot"]) == priority_of(priorities, groups["l40s-24xl-spot"])
    # spot: h100-spot and l40s-spot (first choices), h200-spot and l40s-24xl-spot (chat's and rag's second),
    # a100-spot (chat's third); on demand: l4-ondemand (rerank's first), l40s-ondemand (rag's third),
    # h100-ondemand (chat's fourth).
    assert sorted(priorities) == [10, 20, 30, 40, 50, 60]
    chat = [priority_of(priorities, groups[pool]) for pool in ("h100-spot", "h200-spot", "a100-spot", "h100-ondemand")]
    assert chat == [60, 50, 40, 10]


def test_patterns_are_anchored_and_escaped(prod):
    groups = names(prod)
    priorities = priority_expander_priorities(prod, groups)
    patterns = [pattern for level in priorities.values() for pattern in level]
    assert all(p.startswith("^") and p.endswith("$") for p in patterns)
    target = groups["h100-spot"]
    matching = [p for p in patterns if re.search(p, target)]
    assert len(matching) == 1
    assert not re.search(matching[0], target.replace(".", "x"))
    assert not re.search(matching[0], target + "-2")


def test_a_pool_without_a_group_name_is_refused(prod):
    groups = names(prod)
    groups.pop("l4-ondemand")
    with pytest.raises(ValueError, match="l4-ondemand"):
        priority_expander_priorities(prod, groups)


def test_helm_values_carry_discovery_irsa_priority_expander_and_system_pool():
    priorities = {20: ["^a$"], 10: ["^b$"]}
    values = cluster_autoscaler_values("inferfleet-prod", "us-east-1", "arn:aws:iam::1:role/ca", priorities)
    assert values["autoDiscovery"] == {"clusterName": "inferfleet-prod"}
    assert values["awsRegion"] == "us-east-1"
    assert values["rbac"]["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/ca"}
    assert values["extraArgs"]["expander"] == "priority"
    assert values["extraArgs"]["balance-similar-node-groups"] is True
    assert values["extraArgs"]["skip-nodes-with-system-pods"] is False
    assert values["extraArgs"]["scale-down-delay-after-add"]
    assert values["expanderPriorities"] == {"10": ["^b$"], "20": ["^a$"]}
    assert values["nodeSelector"] == system_node_selector() == {POOL_LABEL: "system"}
