"""Enforcement levels per policy and environment: prod blocks, dev advises where a rule is about
production hardening. `policy/config/<env>.json` (the pack's config for `pulumi preview`) and
`inferfleet render` both come from this one table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import DEFAULT_ENVIRONMENT, ENVIRONMENT_KEY, ENVIRONMENTS

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
    "trust-remote-code-reviewed": PROD_ONLY,
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


def levels_environment(environment: str) -> str:
    """The table column an environment's levels come from: its own (dev, staging, prod), else prod's.

    Any other environment (qa, perf, eu-prod) gets the strictest levels, as the pack itself does without
    config (DEFAULT_ENVIRONMENT): a name never relaxes a check, an `eu-prod` keeps prod's gates, and the checks,
    which read an unknown environment as prod too (common.environment_of), run at the levels that go with them.
    A pre-production environment opts into another column explicitly: `inferfleet render --policy-config
    policy/config/staging.json` (levels and the environment the checks use), or a file of its own."""
    return environment if environment in ENVIRONMENTS else DEFAULT_ENVIRONMENT


def level_of(policy: str, environment: str, overrides: Mapping[str, Any] | None = None) -> str:
    """The level a policy runs at: an override (a level, or {enforcementLevel: ...}, for the policy
    or for `all`), else the table's level for the environment (`levels_environment`)."""
    overrides = overrides or {}
    for key in (policy, ALL):
        value = overrides.get(key)
        if isinstance(value, Mapping):
            value = value.get(ENFORCEMENT_KEY)
        if value is not None:
            if value not in LEVELS_ALLOWED:
                raise ValueError(f"{key}: enforcement level {value!r} is not one of {', '.join(LEVELS_ALLOWED)}")
            return str(value)
    return LEVELS[policy][levels_environment(environment)]


def policy_settings(policy: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """A policy's config values from an override file, without its enforcement level."""
    value = (overrides or {}).get(policy)
    return {k: v for k, v in value.items() if k != ENFORCEMENT_KEY} if isinstance(value, Mapping) else {}


CONFIG_DIR = "policy/config"
"""Where the checked-in pack configs live, relative to the repository root: one `<env>.json` per column."""


def pack_config_path(environment: str) -> str | None:
    """The `--policy-pack-config` a preview or update of an environment's stacks passes: its column's file, or
    None for an environment without one, which the pack then runs at prod's levels (DEFAULT_ENVIRONMENT)."""
    return f"{CONFIG_DIR}/{environment}.json" if environment in ENVIRONMENTS else None


def pack_config(environment: str) -> dict[str, dict[str, str]]:
    """The pack's config for one environment, as `pulumi preview --policy-pack-config` reads it."""
    if environment not in ENVIRONMENTS:
        raise ValueError(f"unknown environment {environment!r}")
    return {
        policy: {ENFORCEMENT_KEY: levels[environment], ENVIRONMENT_KEY: environment}
        for policy, levels in sorted(LEVELS.items())
    }
