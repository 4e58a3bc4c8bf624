"""Pool and fleet cost, worked by hand on a made-up catalog with round prices."""

import pytest

from components.planner.cost import fixed_usd_per_hour, pool_usd_per_hour, warm_pool_usd_per_hour
from components.spec.models import GpuPoolSpec

VOLUME_100_GIB = 100 * 0.08 / 730  # gp3 $0.08 per GB-month over 730 hours


def pool(**overrides) -> GpuPoolSpec:
    fields = {"name": "gpu", "instanceTypes": ["x8.big"], "capacityType": "onDemand", "minSize": 1,
              "maxSize": 4, "rootVolumeGiB": 100}
    return GpuPoolSpec.model_validate({**fields, **overrides})


def test_on_demand_node_costs_instance_plus_root_volume(toy_catalog):
    assert pool_usd_per_hour(toy_catalog, pool(), 3) == pytest.approx(3 * (10.0 + VOLUME_100_GIB))


def test_spot_node_costs_the_discounted_price(toy_catalog):
    spot = pool(capacityType="spot")
    assert pool_usd_per_hour(toy_catalog, spot, 2) == pytest.approx(2 * (10.0 * (1 - 0.6) + VOLUME_100_GIB))


def test_stopped_warm_instances_cost_only_their_volumes(toy_catalog):
    warm = pool(warmPool={"size": 2, "state": "Stopped"})
    assert warm_pool_usd_per_hour(toy_catalog, warm) == pytest.approx(2 * VOLUME_100_GIB)
    assert pool_usd_per_hour(toy_catalog, warm, 1) == pytest.approx(10.0 + 3 * VOLUME_100_GIB)


def test_running_warm_instances_cost_like_nodes(toy_catalog):
    warm = pool(warmPool={"size": 1, "state": "Running"})
    assert warm_pool_usd_per_hour(toy_catalog, warm) == pytest.approx(10.0 + VOLUME_100_GIB)


def test_hibernated_warm_instances_also_store_memory_on_ebs(toy_catalog):
    warm = pool(warmPool={"size": 1, "state": "Hibernated"})
    # x8.big has 1,000 GiB of memory saved to its root volume
    assert warm_pool_usd_per_hour(toy_catalog, warm) == pytest.approx(1100 * 0.08 / 730)


def test_fixed_cost_is_control_plane_plus_nat_gateways(toy_catalog, toy_spec):
    assert fixed_usd_per_hour(toy_catalog, toy_spec) == pytest.approx(0.10 + 3 * 0.045)
    single = toy_spec.model_copy(update={"network": toy_spec.network.model_copy(update={"nat_gateways": "single"})})
    assert fixed_usd_per_hour(toy_catalog, single) == pytest.approx(0.10 + 0.045)
