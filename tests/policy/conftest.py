"""Render each example stack once per session; policies run on copies of the recorded resources."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from components.mocks import RecordedResource
from components.policy_runner import Violation, evaluate
from components.render import render
from components.spec import StackSpec
from components.stack import load_stack


@dataclass(frozen=True)
class Stack:
    spec: StackSpec
    resources: list[RecordedResource]

    def violations(self, policy: str, resources: list[RecordedResource] | None = None) -> list[Violation]:
        return [v for v in evaluate(resources or self.resources, self.spec) if v.policy == policy]

    def changed(self, resource_type: str, change: Callable[[RecordedResource], None],
                only_first: bool = True) -> list[RecordedResource]:
        """A deep copy of the resources with `change` applied to the first (or every) resource of a type."""
        resources = copy.deepcopy(self.resources)
        targets = [r for r in resources if r.type == resource_type]
        assert targets, resource_type
        for resource in targets[:1] if only_first else targets:
            change(resource)
        return resources


def render_stack(path: str) -> Stack:
    source = load_stack(path)
    return Stack(source.spec, render(source).resources)


@pytest.fixture(scope="session")
def prod() -> Stack:
    return render_stack("stacks/prod.yaml")


@pytest.fixture(scope="session")
def dev() -> Stack:
    return render_stack("stacks/dev.yaml")


def objects(resource: RecordedResource) -> Iterator[dict[str, Any]]:
    """The group's objects; none for a group that is a secret as a whole (recorded as the mask)."""
    objs = resource.inputs.get("objs", [])
    yield from (obj for obj in objs if isinstance(obj, dict)) if isinstance(objs, list) else ()


def pod_specs(resources: list[RecordedResource]) -> Iterator[dict[str, Any]]:
    """Every pod spec of every Deployment in the resources (mutable, for changes)."""
    for resource in resources:
        for obj in objects(resource) if resource.type == "kubernetes:yaml/v2:ConfigGroup" else []:
            if obj.get("kind") == "Deployment":
                yield obj["spec"]["template"]["spec"]
