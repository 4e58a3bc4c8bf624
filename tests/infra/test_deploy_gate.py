"""deployGate under the recording mocks: a gate Job per service, applied after every group of its
service's rollout and the stack's ConfigMap, running the gate image the stack built, by digest."""

from __future__ import annotations

import re

import pytest

from components.catalog import load_catalog
from components.kubernetes.serving import ServingWorkloadsArgs
from components.planner import plan_stack
from components.render import render
from components.stack import load_stack

CG = "kubernetes:yaml/v2:ConfigGroup"


@pytest.fixture(scope="module")
def resources():
    return render(load_stack("stacks/prod.yaml"), load_catalog()).resources


def _groups(resources):
    return {r.name: r for r in resources if r.type == CG}


def test_each_gate_waits_for_its_services_rollout(resources):
    groups = _groups(resources)
    for service in ("chat", "rag", "rerank"):
        gate = groups[f"prod-serving-{service}-gate"]
        rollout = {r.urn for name, r in groups.items()
                   if name == f"prod-serving-{service}" or (name.startswith(f"prod-serving-{service}-")
                                                           and name not in (f"prod-serving-{service}-gate",
                                                                            f"prod-serving-{service}-identity"))}
        assert rollout and rollout <= set(gate.options["dependsOn"]), service
        assert "prod-serving-gate-stack" not in groups
        (job,) = gate.inputs["objs"]
        assert job["kind"] == "Job"
        image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        assert re.fullmatch(r"123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/inferfleet/prod/gate:gate-[0-9a-f]{16}"
                            r"@sha256:[0-9a-f]{64}", image)


def test_the_gate_image_is_built_into_its_own_repository(resources):
    repositories = {r.inputs["name"] for r in resources if r.type == "aws:ecr/repository:Repository"}
    assert "inferfleet/prod/gate" in repositories
    (image,) = [r for r in resources if r.type == "docker-build:index:Image" and r.name == "prod-images-gate"]
    assert image.inputs["dockerfile"]["location"].endswith("serving_images/gate/Dockerfile")


def test_without_the_gate_no_job_and_no_gate_image(tmp_path):
    spec = load_stack("stacks/staging.yaml").spec
    resources = render(load_stack("stacks/staging.yaml"), load_catalog()).resources
    assert not spec.deploy_gate.enabled
    assert not [name for name in _groups(resources) if name.endswith("-gate") or name.endswith("-gate-stack")]


def test_the_gate_image_is_required_exactly_with_the_gate():
    source = load_stack("stacks/prod.yaml")
    spec, catalog = source.spec, load_catalog()
    common = dict(spec=spec, plan=plan_stack(spec, catalog), catalog=catalog, model_reader_role_arns={},
                  operators={})
    with pytest.raises(ValueError, match="ServingWorkloadsArgs.gate_image"):
        ServingWorkloadsArgs(**common)
    ServingWorkloadsArgs(**common, gate_image="gate@sha256:" + "0" * 64)
    without = spec.model_copy(update={"deploy_gate": spec.deploy_gate.model_copy(update={"enabled": False})})
    with pytest.raises(ValueError, match="ServingWorkloadsArgs.gate_image"):
        ServingWorkloadsArgs(**{**common, "spec": without}, gate_image="gate@sha256:" + "0" * 64)
