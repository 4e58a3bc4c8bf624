"""Two stacks per environment: the platform (every AWS resource, the deploy runner where the API is private)
and the workloads (every Kubernetes object, nothing in AWS), which reads the platform through a
StackReference and builds exactly what the one-program render shows."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.catalog import load_catalog
from components.mocks import install
from components.phases import WORKLOADS_SUFFIX, stack_phase, workloads_stack
from components.platform import deploy, deploy_stack
from components.platform_outputs import DEPLOY_RUNNER
from components.render import kubernetes_objects, set_stand_in_secrets
from components.stack import load_stack

CATALOG = load_catalog()


def test_a_stack_name_says_its_environment_and_phase() -> None:
    assert stack_phase("prod") == ("prod", "platform")
    assert stack_phase("prod-workloads") == ("prod", "workloads")
    assert stack_phase("eu-prod-workloads") == ("eu-prod", "workloads")
    assert stack_phase(WORKLOADS_SUFFIX) == (WORKLOADS_SUFFIX, "platform")
    assert workloads_stack("qa") == "qa-workloads"


def resolved(value: Any, into: dict[str, Any], key: str) -> None:
    pulumi.Output.from_input(value).apply(lambda v: into.__setitem__(key, v))


def run_stack(env: str, stack: str, stack_outputs: dict[str, dict[str, Any]] | None = None):
    """Run one stack's program (deploy_stack, what __main__.py runs) under mocks: its resources and outputs."""
    source = load_stack(f"stacks/{env}.yaml")
    monitor = install("inferfleet", stack, source.spec.aws.region, stack_outputs)
    set_stand_in_secrets(source.spec)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        for key, value in deploy_stack(source, CATALOG, stack).items():
            resolved(value, outputs, key)

    program()
    return monitor.recorded, outputs


@pytest.fixture(scope="module", params=["dev", "prod"])
def both_stacks(request):
    env = request.param
    platform, outputs = run_stack(env, env)
    workloads, _ = run_stack(env, workloads_stack(env), {f"organization/inferfleet/{env}": json.loads(json.dumps(outputs))})
    return env, platform, outputs, workloads


def test_the_workloads_stack_creates_nothing_in_aws(both_stacks) -> None:
    _, _, _, workloads = both_stacks
    kinds = {r.type for r in workloads}
    assert not [k for k in kinds if k.startswith("aws:") or k == "pulumi:providers:aws"]
    assert "pulumi:pulumi:StackReference" in kinds


def test_the_platform_stack_creates_nothing_in_the_cluster(both_stacks) -> None:
    _, platform, _, _ = both_stacks
    assert not [r.type for r in platform if r.type.startswith("kubernetes:")]


def test_through_the_stack_reference_the_workloads_are_what_the_render_shows(both_stacks) -> None:
    env, _, _, workloads = both_stacks
    source = load_stack(f"stacks/{env}.yaml")
    monitor = install("inferfleet", env, source.spec.aws.region)
    set_stand_in_secrets(source.spec)

    @pulumi.runtime.test
    def program() -> None:
        deploy(source, CATALOG)

    program()
    rendered = kubernetes_objects(monitor.recorded)
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, kubernetes_objects(workloads))) == sorted(map(key, rendered))
    by_key = {key(o): o for o in rendered}
    assert [o for o in kubernetes_objects(workloads) if by_key[key(o)] != o] == []


def test_only_a_private_cluster_gets_a_deploy_runner(both_stacks) -> None:
    env, platform, outputs, _ = both_stacks
    projects = [r for r in platform if r.type == "aws:codebuild/project:Project"]
    if env == "dev":
        assert projects == [] and outputs[DEPLOY_RUNNER] is None
        return
    (project,) = projects
    assert outputs[DEPLOY_RUNNER]["projectName"] == project.inputs["name"] == "inferfleet-prod-workloads"
    assert outputs[DEPLOY_RUNNER]["sourceBucket"].startswith("inferfleet-prod-deploy-")
    assert project.inputs["vpcConfig"]["subnets"], "the build runs in the private subnets"
