"""Tags every taggable AWS resource carries: the spec's own plus the environment and the tool."""

from __future__ import annotations

from components.spec.models import StackSpec

ENVIRONMENT_TAG = "inferfleet:environment"
MANAGED_BY_TAG = "inferfleet:managed-by"


def stack_tags(spec: StackSpec) -> dict[str, str]:
    return {**spec.tags, ENVIRONMENT_TAG: spec.environment, MANAGED_BY_TAG: "pulumi"}


def named(tags: dict[str, str], name: str) -> dict[str, str]:
    """The stack's tags plus `Name`, which the EC2 console shows."""
    return {**tags, "Name": name}
