"""The policy pack run in-process on a render's recorded resources: the offline twin of
`pulumi preview --policy-pack policy`. Resource policies get one `pulumi_policy.ResourceValidationArgs`
per resource, stack policies one `StackValidationArgs` over all of them; violations are collected
through the `report_violation` callback with each policy's level for the stack's environment."""

from __future__ import annotations

import difflib
import json
import math
import re
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
from inferfleet_policies.levels import (
    ALL,
    DISABLED,
    ENFORCEMENT_KEY,
    LEVELS_ALLOWED,
    MANDATORY,
    level_of,
    policy_settings,
)

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Violation:
    """One line of policy.json."""

    policy: str
    enforcement: str
    type: str
    name: str
    message: str


class PolicyConfigError(ValueError):
    """A `--policy-config` file that cannot be used: one line, `FILE[:LINE]: problem` (a usage error)."""


POLICY_CONFIG_MAX_BYTES = 1 << 20
"""A policy config is a few lines per policy; anything larger is not one."""
POLICY_CONFIG_MAX_VALUES = 100_000
"""Values checked against the policies' schemas, YAML aliases counted each time they are used."""
POLICY_CONFIG_MAX_DEPTH = 32
"""Nesting refused before the parsers recurse that deep (a RecursionError is no answer, and one raised in C code
can leave CPython 3.11's recursion bookkeeping off for the rest of the process)."""
SHAPE = "a mapping of policy name (or `all`) to a level or to {enforcementLevel: LEVEL, setting: value...}"
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


class _TooDeep(Exception):
    def __init__(self, line: int | None):
        self.line = line


def _json_depth(text: str) -> int:
    depth = deepest = 0
    for char in JSON_STRING.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting past POLICY_CONFIG_MAX_DEPTH (its composer recurses per level)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > POLICY_CONFIG_MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    kinds = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}
    return isinstance(value, kinds[expected])


SCHEMA_KEYWORDS = frozenset({"type", "enum", "default", "description", "minimum", "maximum", "items", "properties",
                             "additionalProperties"})
"""What `_schema_problem` reads of a policy's config schema; tests hold every policy's schema to these."""


def _schema_problem(value: Any, schema: Mapping[str, Any], where: str, budget: list[int]) -> str | None:
    """The first way `value` breaks a policy's config schema (the subset of JSON Schema the pack uses), or None."""
    budget[0] -= 1
    if budget[0] < 0:
        return f"more than {POLICY_CONFIG_MAX_VALUES} values"
    expected = schema.get("type")
    if expected and not _type_ok(value, expected):
        return f"{where}: expected a{'n' if expected[0] in 'aeiou' else ''} {expected}, got {_shown(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {_shown(value)} is not one of {', '.join(map(str, schema['enum']))}"
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        return f"{where}: {_shown(value)} is below the minimum {schema['minimum']}"
    if "maximum" in schema and isinstance(value, (int, float)) and value > schema["maximum"]:
        return f"{where}: {_shown(value)} is above the maximum {schema['maximum']}"
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            if problem := _schema_problem(item, schema["items"], f"{where}[{index}]", budget):
                return problem
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                problem = _schema_problem(item, properties[key], f"{where}.{key}", budget)
            elif isinstance(additional, Mapping):
                problem = _schema_problem(item, additional, f"{where}.{key}", budget)
            else:
                problem = None if additional else f"{where}: unknown setting {_shown(key)}"
            if problem:
                return problem
    return None


def _level_problem(key: str, level: Any) -> str | None:
    if level in LEVELS_ALLOWED:
        return None
    return f"{key}: level {_shown(level)} is not one of {', '.join(LEVELS_ALLOWED)}"


def check_policy_config(data: Any) -> list[str]:
    """Every problem of a parsed policy config (file-less messages): its shape, policy names, levels and each
    policy's settings against that policy's config schema. Empty when `evaluate` can use it as it is."""
    if not isinstance(data, dict):
        return [f"expected {SHAPE}, got {type(data).__name__ if data is not None else 'an empty document'}"]
    policies = {policy.name: policy for policy in ALL_POLICIES}
    budget = [POLICY_CONFIG_MAX_VALUES]
    problems: list[str] = []
    for key, value in data.items():
        if not isinstance(key, str) or (key != ALL and key not in policies):
            close = difflib.get_close_matches(str(key), [*policies, ALL], n=1)
            problems.append(f"unknown policy {_shown(key)}" + (f" (did you mean {close[0]}?)" if close else "")
                            + f"; the policies: {', '.join(sorted(policies))}" * (not close))
            continue
        if not isinstance(value, dict):
            if problem := _level_problem(key, value):
                problems.append(problem)
            continue
        if ENFORCEMENT_KEY in value and (problem := _level_problem(f"{key}.{ENFORCEMENT_KEY}", value[ENFORCEMENT_KEY])):
            problems.append(problem)
        settings = {k: v for k, v in value.items() if k != ENFORCEMENT_KEY}
        if key == ALL:
            if settings:
                problems.append(f"{ALL}: only {ENFORCEMENT_KEY} applies to every policy; settings go under a "
                                f"policy's name (here: {', '.join(map(_shown, settings))})")
            continue
        schema = {"type": "object", "properties": policies[key].config_schema.properties, "additionalProperties": False}
        if problem := _schema_problem(settings, schema, key, budget):
            problems.append(problem)
    return problems


def _parse_error(file: str, error: Exception) -> PolicyConfigError:
    if isinstance(error, json.JSONDecodeError):
        return PolicyConfigError(f"{file}:{error.lineno}: not valid JSON: {error.msg} (column {error.colno})")
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{file}:{mark.line + 1}" if mark is not None else file
    problem = getattr(error, "problem", None) or str(error)
    return PolicyConfigError(f"{where}: not valid YAML: {' '.join(str(problem).split())}")


def load_policy_config(path: str | Path) -> dict[str, Any]:
    """A `--policy-config` file: JSON or YAML, SHAPE (policy/config/<env>.json is one). Raises PolicyConfigError
    with a one-line message naming the file and the first problem, before anything runs."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(POLICY_CONFIG_MAX_BYTES + 1)
    except OSError as error:
        raise PolicyConfigError(f"{file}: cannot read: {error.strerror or error}") from None
    if len(raw) > POLICY_CONFIG_MAX_BYTES:
        raise PolicyConfigError(f"{file}: larger than {POLICY_CONFIG_MAX_BYTES // 1024} KiB; expected {SHAPE}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicyConfigError(f"{file}: not UTF-8 text (byte {error.start})") from None
    try:
        if file.endswith(".json"):
            if _json_depth(text) > POLICY_CONFIG_MAX_DEPTH:
                raise _TooDeep(None)
            data = json.loads(text)
        else:
            data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader
    except _TooDeep as error:
        where = f"{file}:{error.line}" if error.line else file
        raise PolicyConfigError(f"{where}: nested deeper than {POLICY_CONFIG_MAX_DEPTH} levels; "
                                f"expected {SHAPE}") from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise _parse_error(file, error) from None
    except ValueError as error:  # e.g. an integer past Python's digit limit
        raise PolicyConfigError(f"{file}: {' '.join(str(error).split())}") from None
    problems = check_policy_config(data)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PolicyConfigError(f"{file}: {problems[0]}{more}")
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
