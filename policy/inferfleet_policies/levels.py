"""Enforcement levels per policy and environment: prod blocks, dev advises where a rule is about
production hardening. `policy/config/<env>.json` (the pack's config for `pulumi preview`) and
`inferfleet render` both come from this one table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import ENVIRONMENT_KEY, ENVIRONMENTS

MANDATORY = "mandatory"
ADVISORY = "advisory"
DISABLED = "disabled"
LEVELS_ALLOWED = (MANDATORY, ADVISORY, DISABLED)
ENFORCEMENT_KEY = "enforcementLevel"
ALL = "all"

STRICT = {"dev": MANDATORY, "staging": MANDATORY, "prod": MANDATORY}
"""Rules with no reason to differ between environments: encryption, IMDSv2, IAM, correctness."""
PROD_ONLY = {"dev": ADVISORY, "staging": ADVISORY, "prod": MANDATORY}
"""Production hardening that would only slow dev down: dev sees it as advice."""
ADVICE = {"dev": ADVISORY, "staging": ADVISORY, "prod": ADVISORY}

LEVELS: dict[str, Mapping[str, str]] = {
    # security
    "eks-endpoint-private": PROD_ONLY,
    "eks-secrets-encrypted": STRICT,
    "imdsv2-required": STRICT,
    "ebs-encrypted": STRICT,
    "no-open-ingress": STRICT,
    "iam-no-wildcard-action": STRICT,
    "s3-encrypted": STRICT,
    "s3-versioned": PROD_ONLY,
    "s3-public-access-blocked": STRICT,
    "images-pinned-by-digest": PROD_ONLY,
    "container-security-context": PROD_ONLY,
    "tokens-from-secrets": STRICT,
    # reliability (the checks themselves apply to prod only)
    "min-replicas": PROD_ONLY,
    "pdb-present": PROD_ONLY,
    "zone-spread": PROD_ONLY,
    "startup-probes": PROD_ONLY,
    "on-demand-floor": PROD_ONLY,
    # cost
    "gpu-budget": STRICT,
    "max-hourly-cost": PROD_ONLY,
    "cost-tags": PROD_ONLY,
    "warm-pool-size": ADVICE,
    # correctness
    "node-selection-matches-pool": STRICT,
    "autoscaler-bounds": STRICT,
    "charts-pinned": STRICT,
    "amis-pinned": PROD_ONLY,
}


def level_of(policy: str, environment: str, overrides: Mapping[str, Any] | None = None) -> str:
    """The level a policy runs at: an override (a level, or {enforcementLevel: ...}, for the policy
    or for `all`), else the table's level for the environment."""
    overrides = overrides or {}
    for key in (policy, ALL):
        value = overrides.get(key)
        if isinstance(value, Mapping):
            value = value.get(ENFORCEMENT_KEY)
        if value is not None:
            if value not in LEVELS_ALLOWED:
                raise ValueError(f"{key}: enforcement level {value!r} is not one of {', '.join(LEVELS_ALLOWED)}")
            return str(value)
    return LEVELS[policy][environment]


def policy_settings(policy: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """A policy's config values from an override file, without its enforcement level."""
    value = (overrides or {}).get(policy)
    return {k: v for k, v in value.items() if k != ENFORCEMENT_KEY} if isinstance(value, Mapping) else {}


def pack_config(environment: str) -> dict[str, dict[str, str]]:
    """The pack's config for one environment, as `pulumi preview --policy-pack-config` reads it."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}")
    return {
        policy: {ENFORCEMENT_KEY: levels[environment], ENVIRONMENT_KEY: environment}
        for policy, levels in sorted(LEVELS.items())
    }
