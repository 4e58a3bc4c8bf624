"""Two small factories that turn pure check functions into pulumi_policy policies.

A check yields violation messages; the factory wires it to `report_violation`, restricts resource
checks to the types they read and gives every policy the same `environment` config key, so a policy
module holds only the rule and the reason for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .common import DEFAULT_ENVIRONMENT, ENVIRONMENT_KEY, ENVIRONMENTS, Resource, resources_of

ResourceCheck = Callable[[str, Mapping[str, Any], Mapping[str, Any], ResourceValidationArgs], Iterable[str]]
"""(resource type, inputs, policy config, args) -> violation messages."""
StackCheck = Callable[[list[Resource], Mapping[str, Any]], Iterable[tuple[str, str | None]]]
"""(every resource, policy config) -> (message, urn of the offending resource or None)."""

ANY_TYPE: tuple[str, ...] = ()
"""A resource policy given no types sees every resource."""

ENVIRONMENT_PROPERTY = {
    "type": "string",
    "enum": list(ENVIRONMENTS),
    "default": DEFAULT_ENVIRONMENT,
    "description": "the environment the stack deploys; some rules apply to prod only",
}


def config_schema(extra: Mapping[str, Mapping[str, Any]] | None = None) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={ENVIRONMENT_KEY: dict(ENVIRONMENT_PROPERTY), **(extra or {})})


def with_defaults(schema: PolicyConfigSchema, config: Mapping[str, Any]) -> dict[str, Any]:
    """The policy's config with the schema's defaults filled in (the CLI does this for the pack)."""
    merged = {key: spec["default"] for key, spec in schema.properties.items() if "default" in spec}
    merged.update(config)
    return merged


def description_of(check: Callable[..., Any]) -> str:
    """A policy's description is its check's docstring: the rule and why, written once."""
    return " ".join((check.__doc__ or check.__name__).split())


def resource_policy(name: str, types: tuple[str, ...], check: ResourceCheck,
                    extra_config: Mapping[str, Mapping[str, Any]] | None = None) -> ResourceValidationPolicy:
    schema = config_schema(extra_config)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if types and args.resource_type not in types:
            return
        config = with_defaults(schema, args.get_config())
        for message in check(args.resource_type, args.props, config, args):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description_of(check), validate=validate, config_schema=schema)


def stack_policy(name: str, check: StackCheck,
                 extra_config: Mapping[str, Mapping[str, Any]] | None = None) -> StackValidationPolicy:
    schema = config_schema(extra_config)

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = with_defaults(schema, args.get_config())
        for message, urn in check(resources_of(args.resources), config):
            report_violation(message, urn)

    return StackValidationPolicy(name=name, description=description_of(check), validate=validate, config_schema=schema)
