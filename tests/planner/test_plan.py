"""Placing replicas on pools, feasibility reasons and the fleet's cost, on the toy catalog."""

import copy
import math

import pytest

from components.planner.plan import plan_stack
from components.spec.models import StackSpec
from tests.planner.conftest import TOY_STACK


def spec_with(**service_overrides) -> StackSpec:
    data = copy.deepcopy(TOY_STACK)
    data["services"][0].update(service_overrides)
    return StackSpec.model_validate(data)


def entries(plan):
    return {entry.pool: entry for entry in plan.services}


def test_floor_on_demand_and_burst_on_spot(toy_catalog, toy_spec):
    plan = plan_stack(toy_spec, toy_catalog)
    by_pool = entries(plan)
    floor, burst = by_pool["od"], by_pool["spot"]
    assert (floor.role, burst.role) == ("floor", "burst")
    assert floor.replicas_needed == 2 and floor.replicas_min == 2
    remaining = 30 - 2 * floor.requests_per_second_per_replica
    assert burst.replicas_needed == math.ceil(remaining / burst.requests_per_second_per_replica - 1e-9)
    assert burst.replicas_min == 0


def test_single_pool_service_scales_within_it(toy_catalog):
    plan = plan_stack(spec_with(pools=["od"]), toy_catalog)
    (entry,) = plan.services
    assert entry.role == "floorAndBurst"
    assert entry.replicas_needed == max(2, math.ceil(30 / entry.requests_per_second_per_replica - 1e-9))


def test_without_slo_replicas_run_saturated(toy_catalog, toy_spec):
    entry = entries(plan_stack(toy_spec, toy_catalog))["od"]
    assert entry.planned_concurrency == entry.max_concurrent_sequences
    assert entry.slo_feasible and entry.reasons == []


def test_tight_itl_slo_lowers_planned_concurrency(toy_catalog, toy_spec):
    loose = entries(plan_stack(toy_spec, toy_catalog))["od"]
    tight = entries(plan_stack(spec_with(slo={"ttftP99Ms": 5000, "itlP99Ms": 25}), toy_catalog))["od"]
    assert 0 < tight.planned_concurrency < loose.planned_concurrency
    assert tight.itl_ms * 1.5 <= 25
    assert tight.replicas_needed >= loose.replicas_needed


def test_impossible_slo_is_infeasible_with_a_reason(toy_catalog):
    plan = plan_stack(spec_with(slo={"ttftP99Ms": 5000, "itlP99Ms": 1}), toy_catalog)
    for entry in plan.services:
        assert not entry.slo_feasible
        assert any("ITL p99" in reason and "target 1 ms" in reason for reason in entry.reasons)


def test_too_few_max_replicas_is_infeasible_with_a_reason(toy_catalog):
    workload = {"inputTokens": 1000, "outputTokens": 200, "peakRequestsPerSecond": 300}
    plan = plan_stack(spec_with(replicas={"min": 1, "max": 2}, workload=workload), toy_catalog)
    floor = entries(plan)["od"]
    assert not floor.slo_feasible
    assert any("replicas.max is 2" in reason for reason in floor.reasons)


def test_pool_too_small_for_peak_is_infeasible_with_a_reason(toy_catalog):
    data = copy.deepcopy(TOY_STACK)
    data["gpuPools"][1]["maxSize"] = 1
    data["services"][0]["workload"]["peakRequestsPerSecond"] = 400
    plan = plan_stack(StackSpec.model_validate(data), toy_catalog)
    burst = entries(plan)["spot"]
    assert not burst.slo_feasible
    assert any("pool spot needs" in reason and "maxSize is 1" in reason for reason in burst.reasons)


def test_fleet_cost_adds_pools_system_pool_and_fixed_costs(toy_catalog, toy_spec):
    plan = plan_stack(toy_spec, toy_catalog)
    volume = 100 * 0.08 / 730
    system_node = 0.2 + 50 * 0.08 / 730
    fixed = 0.10 + 3 * 0.045
    assert plan.cost.hourly_usd_min == pytest.approx(fixed + 1 * (10 + volume) + 0 + 2 * system_node, abs=0.01)
    assert plan.cost.hourly_usd_max == pytest.approx(
        fixed + 4 * (10 + volume) + 4 * (4 + volume) + 3 * system_node, abs=0.02
    )
    assert plan.cost.monthly_usd_min == pytest.approx(plan.cost.hourly_usd_min * 730, abs=1)


def test_cost_per_million_tokens_uses_the_fleet_at_peak(toy_catalog, toy_spec):
    plan = plan_stack(toy_spec, toy_catalog)
    # 30 req/s x 200 tokens = 6,000 tokens/s = 21.6 M tokens/h
    assert plan.cost.peak_output_tokens_per_second == 6000
    assert plan.cost.usd_per_million_output_tokens == pytest.approx(plan.cost.hourly_usd_at_peak / 21.6, abs=0.001)
    spot = next(p for p in plan.pools if p.name == "spot")
    burst = entries(plan)["spot"]
    assert spot.nodes_at_peak == math.ceil(burst.replicas_needed * burst.gpus_per_replica / 8)


def test_plan_json_uses_the_contract_names(toy_catalog, toy_spec):
    data = plan_stack(toy_spec, toy_catalog).to_json()
    service = data["services"][0]
    for key in ["name", "pool", "engine", "instanceType", "gpusPerReplica", "tensorParallelSize",
                "pipelineParallelSize", "weightsGiB", "kvCacheTokensPerReplica", "maxConcurrentSequences",
                "maxOutputTokensPerSecondPerReplica", "ttftMs", "itlMs", "replicasNeeded", "sloFeasible", "reasons"]:
        assert key in service
    assert {"name", "hourlyUsdMin", "hourlyUsdMax"} <= set(data["pools"][0])
    assert {"hourlyUsdMin", "hourlyUsdMax", "monthlyUsdMin", "monthlyUsdMax", "usdPerMillionOutputTokens"} <= set(
        data["cost"]
    )
