"""The policy pack run in-process on a render's recorded resources: the offline twin of
`pulumi preview --policy-pack policy`. Resource policies get one `pulumi_policy.ResourceValidationArgs`
per resource, stack policies one `StackValidationArgs` over all of them; violations are collected
through the `report_violation` callback with each policy's level for the stack's environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from components.mocks import RecordedResource
from components.spec import StackSpec
from inferfleet_policies import ALL_POLICIES
from inferfleet_policies.common import ENVIRONMENT_KEY
from inferfleet_policies.correctness import PINNED_AMIS_KEY, SERVICES_KEY
from inferfleet_policies.framework import with_defaults
from inferfleet_policies.levels import DISABLED, MANDATORY, level_of, policy_settings

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Violation:
    """One line of policy.json."""

    policy: str
    enforcement: str
    type: str
    name: str
    message: str


def load_policy_config(path: str | Path) -> dict[str, Any]:
    """A `--policy-config` file: JSON or YAML mapping policy (or `all`) to a level or {enforcementLevel, ...}."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a policy config is a mapping of policy name to level")
    return data


def spec_config(spec: StackSpec) -> dict[str, Any]:
    """What the policies learn from the spec: the environment, each service's replicas, pinned AMIs."""
    ami = getattr(spec.cluster, "gpu_ami_id", None)
    return {
        ENVIRONMENT_KEY: spec.environment,
        SERVICES_KEY: {s.name: {"min": s.replicas.min, "max": s.replicas.max} for s in spec.services},
        PINNED_AMIS_KEY: [ami] if ami else [],
    }


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(resource.options.get("protect")),
        ignore_changes=list(resource.options.get("ignoreChanges") or []),
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _policy_resource(resource: RecordedResource) -> PolicyResource:
    return PolicyResource(resource.type, resource.inputs, resource.urn, resource.name, _options(resource),
                          None, None, [], {})


def evaluate(resources: list[RecordedResource], spec: StackSpec,
             overrides: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every violation of every enabled policy, in policy order then resource order."""
    base = spec_config(spec)
    by_urn = {r.urn: r for r in resources}
    violations: list[Violation] = []
    for policy in ALL_POLICIES:
        level = level_of(policy.name, spec.environment, overrides)
        if level == DISABLED:
            continue
        config = with_defaults(policy.config_schema, {**base, **policy_settings(policy.name, overrides)})

        def report(message: str, urn: str | None = None, *, _resource: RecordedResource | None = None,
                   _policy: str = policy.name, _level: str = level) -> None:
            target = _resource or by_urn.get(urn or "")
            violations.append(Violation(_policy, _level, target.type if target else STACK_TYPE,
                                        target.name if target else spec.environment, message))

        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(resource.type, resource.inputs, resource.urn, resource.name,
                                              _options(resource), None, config)
                policy.validate(args, lambda m, u=None, r=resource: report(m, u, _resource=r))
        else:
            policy.validate(StackValidationArgs([_policy_resource(r) for r in resources], config), report)
    return violations


def mandatory(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.enforcement == MANDATORY]


def to_json(violations: list[Violation]) -> str:
    return json.dumps([asdict(v) for v in violations], indent=2) + "\n"
