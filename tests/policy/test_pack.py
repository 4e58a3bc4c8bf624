"""The pack's shape: 25 named policies with reasons, one level table, config files generated from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from inferfleet_policies import ALL_POLICIES
from inferfleet_policies.levels import LEVELS, level_of, pack_config

CONFIG_DIR = Path("policy/config")


def test_every_policy_has_a_reason_and_a_level_per_environment():
    assert len(ALL_POLICIES) >= 25
    for policy in ALL_POLICIES:
        assert isinstance(policy, (ResourceValidationPolicy, StackValidationPolicy))
        assert len(policy.description) > 40, policy.name
        assert set(LEVELS[policy.name]) == {"dev", "staging", "prod"}


def test_prod_is_at_least_as_strict_as_dev():
    rank = {"disabled": 0, "advisory": 1, "mandatory": 2}
    for name, levels in LEVELS.items():
        assert rank[levels["prod"]] >= rank[levels["dev"]], name
    assert LEVELS["images-pinned-by-digest"]["prod"] == "mandatory"


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_checked_in_pack_config_is_current(environment):
    """`pulumi preview --policy-pack-config policy/config/<env>.json` must match the table."""
    assert json.loads((CONFIG_DIR / f"{environment}.json").read_text()) == pack_config(environment)


def test_overrides_take_a_level_or_a_mapping_and_all():
    assert level_of("gpu-budget", "prod", {"gpu-budget": "advisory"}) == "advisory"
    assert level_of("gpu-budget", "prod", {"gpu-budget": {"enforcementLevel": "disabled"}}) == "disabled"
    assert level_of("gpu-budget", "prod", {"all": "advisory"}) == "advisory"
    with pytest.raises(ValueError):
        level_of("gpu-budget", "prod", {"all": "loud"})


def test_main_only_builds_the_pack():
    """Read, never imported: importing it starts the analyzer server."""
    source = Path("policy/__main__.py").read_text()
    assert "PolicyPack(\"inferfleet\", policies=list(ALL_POLICIES)" in source
    assert "runtime:\n  name: python" in Path("policy/PulumiPolicy.yaml").read_text()


@pytest.mark.parametrize("environment", ["qa", "perf", "eu-prod", "staging2"])
def test_other_environments_get_prods_levels(environment):
    """No column of its own: the strictest, as the pack run without config; overrides still apply."""
    for name, levels in LEVELS.items():
        assert level_of(name, environment) == levels["prod"], name
    assert level_of("min-replicas", environment, {"min-replicas": "advisory"}) == "advisory"
    assert level_of("min-replicas", environment, {"all": {"enforcementLevel": "disabled"}}) == "disabled"
