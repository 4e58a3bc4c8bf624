"""The schedulability check: kube-scheduler's filters (each operator, taints and tolerations, requests),
node shapes read from recorded resources, and a run over every example stack's real render."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from components.catalog import load_catalog
from components.checks import Problem
from components.checks.node_shapes import (
    VM_MEMORY_OVERHEAD,
    NodeShape,
    allocatable,
    kube_reserved_cpu_millicores,
    kube_reserved_memory_mib,
    node_shapes,
)
from components.checks.quantities import format_bytes, format_cpu, parse_quantity
from components.checks.schedulability import (
    check,
    insufficient_resources,
    node_affinity_refusal,
    pod_requests,
    pod_templates,
    refusal,
    requirement_refusal,
    tolerates,
    untolerated_taint,
)
from components.manifests.scheduling import Taint

ROOT = Path(__file__).resolve().parents[2]
STACKS = ["dev", "staging", "prod"]
GIB, MIB = 2**30, 2**20


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


# --- quantities --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")), ("2", Decimal(2)), (2, Decimal(2)), (0.5, Decimal("0.5")), ("1.5", Decimal("1.5")),
        ("8Gi", 8 * GIB), ("512Mi", 512 * MIB), ("1Ki", 1024), ("1G", 10**9), ("1k", 1000), ("1M", 10**6),
        ("1e3", 1000), ("1E3", 1000), ("1E", 10**18), ("1Ei", 2**60), ("100n", Decimal("1e-7")), (".5", Decimal("0.5")),
        ("1.5Gi", 3 * GIB // 2), ("+1", 1), ("2e-3", Decimal("0.002")),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1e", "1Gb", "1.2.3", "Gi", "1 Gi x", True])
def test_parse_quantity_refuses_what_kubernetes_refuses(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_quantities_print_as_a_person_reads_them():
    assert format_cpu(Decimal("81")) == "81"
    assert format_cpu(Decimal("3.92")) == "3920m"
    assert format_bytes(Decimal(870 * GIB)) == "870Gi"
    assert format_bytes(Decimal(512 * MIB)) == "512Mi"
    assert format_bytes(Decimal(GIB + GIB // 4)) == "1.25Gi"


# --- NodeAffinity: one test per operator -------------------------------------------------------------

POOL = "inferfleet.io/pool"


def expr(operator: str, *values: str, key: str = POOL) -> dict[str, Any]:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def test_in_matches_a_listed_value_only():
    assert requirement_refusal(expr("In", "a", "b"), {POOL: "b"}) is None
    assert requirement_refusal(expr("In", "a"), {POOL: "c"}) == (
        "inferfleet.io/pool In ['a'] not matched (inferfleet.io/pool=c)")
    assert requirement_refusal(expr("In", "a"), {}) == (
        "inferfleet.io/pool In ['a'] not matched (no inferfleet.io/pool label)")


def test_not_in_matches_other_values_and_an_absent_label():
    assert requirement_refusal(expr("NotIn", "a"), {POOL: "b"}) is None
    assert requirement_refusal(expr("NotIn", "a"), {}) is None
    assert requirement_refusal(expr("NotIn", "a"), {POOL: "a"}) is not None


def test_exists_needs_the_label_whatever_its_value():
    assert requirement_refusal(expr("Exists"), {POOL: ""}) is None
    assert requirement_refusal(expr("Exists"), {}) == (
        "inferfleet.io/pool Exists not matched (no inferfleet.io/pool label)")


def test_does_not_exist_matches_only_an_absent_label():
    assert requirement_refusal(expr("DoesNotExist"), {}) is None
    assert (requirement_refusal(expr("DoesNotExist"), {POOL: "system"})
            == "inferfleet.io/pool DoesNotExist not matched (inferfleet.io/pool=system)")


def test_gt_compares_integers_and_needs_the_label():
    gpus = "example.com/gpus"
    assert requirement_refusal(expr("Gt", "4", key=gpus), {gpus: "8"}) is None
    assert requirement_refusal(expr("Gt", "8", key=gpus), {gpus: "8"}) is not None
    assert requirement_refusal(expr("Gt", "4", key=gpus), {gpus: "10"}) is None  # not a string comparison
    assert requirement_refusal(expr("Gt", "4", key=gpus), {}) is not None
    assert requirement_refusal(expr("Gt", "4", key=gpus), {gpus: "many"}) is not None
    assert requirement_refusal(expr("Gt", "4", key=gpus), {gpus: "1_0"}) is not None  # Go's ParseInt refuses it


def test_lt_compares_integers_and_needs_the_label():
    gpus = "example.com/gpus"
    assert requirement_refusal(expr("Lt", "8", key=gpus), {gpus: "4"}) is None
    assert requirement_refusal(expr("Lt", "8", key=gpus), {gpus: "8"}) is not None
    assert requirement_refusal(expr("Lt", "10", key=gpus), {gpus: "9"}) is None
    assert requirement_refusal(expr("Lt", "8", key=gpus), {}) is not None


@pytest.mark.parametrize(
    "requirement",
    [expr("In"), expr("NotIn"), expr("Exists", "x"), expr("DoesNotExist", "x"), expr("Gt"), expr("Gt", "1", "2"),
     expr("Lt", "x"), expr("Near", "x")],
)
def test_invalid_requirements_match_nothing(requirement):
    assert requirement_refusal(requirement, {POOL: "x"}).startswith("invalid requirement")


def affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": [{"matchExpressions": term} for term in terms]}
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}


def test_terms_are_ored_and_expressions_anded():
    labels = {POOL: "a", "zone": "z1"}
    assert node_affinity_refusal(affinity([expr("In", "b")], [expr("In", "a")]), labels) is None
    assert node_affinity_refusal(affinity([expr("In", "a"), expr("In", "z2", key="zone")]), labels) == (
        "node affinity zone In ['z2'] not matched (zone=z1)")
    assert node_affinity_refusal(affinity([expr("In", "b")], [expr("Exists", key="gpu")]), labels) == (
        "node affinity inferfleet.io/pool In ['b'] not matched (inferfleet.io/pool=a) or gpu Exists not matched "
        "(no gpu label)")


def test_empty_term_and_match_fields_match_nothing():
    empty = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{}]}}}}
    assert "empty nodeSelectorTerm" in node_affinity_refusal(empty, {POOL: "a"})
    fields = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}}
    assert "matchFields" in node_affinity_refusal(fields, {POOL: "a"})


def test_preferred_affinity_is_not_a_filter():
    preferred = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [expr("In", "b")]}}]}}}
    assert node_affinity_refusal(preferred, {POOL: "a"}) is None


def test_node_selector_needs_every_pair():
    labels = {POOL: "system", "kubernetes.io/os": "linux"}
    assert node_affinity_refusal({"nodeSelector": {POOL: "system", "kubernetes.io/os": "linux"}}, labels) is None
    assert node_affinity_refusal({"nodeSelector": {POOL: "gpu"}}, labels) == (
        "nodeSelector inferfleet.io/pool=gpu not matched (inferfleet.io/pool=system)")
    assert node_affinity_refusal({"nodeSelector": {"disk": "nvme"}}, labels) == (
        "nodeSelector disk=nvme not matched (no disk label)")


def test_node_selector_and_affinity_must_both_hold():
    spec = {"nodeSelector": {POOL: "a"}, **affinity([expr("In", "b")])}
    assert node_affinity_refusal(spec, {POOL: "a"}) is not None
    assert node_affinity_refusal(spec, {POOL: "b"}) is not None


# --- TaintToleration ---------------------------------------------------------------------------------

GPU_TAINT = Taint("nvidia.com/gpu", "true", "NoSchedule")


def test_equal_compares_values_and_is_the_default_operator():
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, GPU_TAINT)
    assert tolerates({"key": "nvidia.com/gpu", "value": "true"}, GPU_TAINT)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Equal", "value": "false"}, GPU_TAINT)
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Equal"}, GPU_TAINT)


def test_exists_ignores_the_value():
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Exists"}, GPU_TAINT)
    assert not tolerates({"key": "other", "operator": "Exists"}, GPU_TAINT)


def test_empty_key_with_exists_tolerates_every_taint():
    assert tolerates({"operator": "Exists"}, GPU_TAINT)
    assert tolerates({"operator": "Exists"}, Taint("anything", "x", "NoExecute"))
    assert not tolerates({"operator": "Exists", "effect": "NoExecute"}, GPU_TAINT)


def test_empty_effect_matches_every_effect_and_a_given_one_only_itself():
    assert tolerates({"key": "nvidia.com/gpu", "operator": "Exists"}, Taint("nvidia.com/gpu", "true", "NoExecute"))
    assert not tolerates({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, GPU_TAINT)


def test_no_execute_must_be_tolerated_and_prefer_no_schedule_is_ignored():
    no_execute = Taint("dedicated", "x", "NoExecute")
    assert untolerated_taint([], [no_execute]) == "untolerated taint dedicated=x:NoExecute"
    assert untolerated_taint([], [Taint("soft", "x", "PreferNoSchedule")]) is None
    tolerations = [{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]
    assert untolerated_taint(tolerations, [no_execute, GPU_TAINT]) == "untolerated taint nvidia.com/gpu=true:NoSchedule"


# --- NodeResourcesFit --------------------------------------------------------------------------------


def container(requests: dict | None = None, limits: dict | None = None, **extra: Any) -> dict[str, Any]:
    resources = {**({"requests": requests} if requests else {}), **({"limits": limits} if limits else {})}
    return {"name": "c", "resources": resources, **extra}


def test_requests_sum_containers_and_default_to_limits():
    spec = {"containers": [container({"cpu": "500m", "memory": "1Gi"}),
                           container(limits={"nvidia.com/gpu": 4, "memory": "2Gi"})]}
    assert pod_requests(spec) == {"cpu": Decimal("0.5"), "memory": 3 * GIB, "nvidia.com/gpu": 4}


def test_an_init_container_counts_when_it_is_the_largest():
    spec = {"containers": [container({"cpu": "1", "memory": "1Gi"}), container({"cpu": "1", "memory": "1Gi"})],
            "initContainers": [container({"cpu": "500m", "memory": "8Gi"}), container({"cpu": "3"})]}
    assert pod_requests(spec) == {"cpu": 3, "memory": 8 * GIB}


def test_sidecars_add_to_the_containers_and_to_later_init_containers():
    spec = {"containers": [container({"cpu": "1"})],
            "initContainers": [container({"cpu": "1"}, restartPolicy="Always"), container({"cpu": "3"})]}
    assert pod_requests(spec) == {"cpu": 4}  # max(1 + 1, 3 + 1 sidecar started before it)


def test_pod_overhead_is_added():
    spec = {"containers": [container({"cpu": "1", "memory": "1Gi"})], "overhead": {"cpu": "250m", "memory": "120Mi"}}
    assert pod_requests(spec) == {"cpu": Decimal("1.25"), "memory": GIB + 120 * MIB}


def test_pod_level_resources_replace_the_containers_cpu_and_memory():
    spec = {"containers": [container({"cpu": "1", "memory": "1Gi"}, {"nvidia.com/gpu": 1})],
            "resources": {"limits": {"cpu": "4", "memory": "8Gi"}}}
    assert pod_requests(spec) == {"cpu": 4, "memory": 8 * GIB, "nvidia.com/gpu": 1}


def test_insufficient_names_every_short_resource():
    allocatable_ = {"cpu": Decimal("3.92"), "memory": Decimal(13 * GIB), "nvidia.com/gpu": Decimal(0)}
    assert insufficient_resources({"cpu": Decimal(2), "memory": Decimal(8 * GIB)}, allocatable_) is None
    assert insufficient_resources({"cpu": Decimal(4), "nvidia.com/gpu": Decimal(1)}, allocatable_) == (
        "insufficient cpu (requests 4, allocatable 3920m), nvidia.com/gpu (requests 1, allocatable 0)")
    assert insufficient_resources({"memory": Decimal(14 * GIB)}, {"cpu": Decimal(4)}) == (
        "insufficient memory (requests 14Gi, allocatable 0)")


# --- Allocatable on EKS AL2023 -----------------------------------------------------------------------


@pytest.mark.parametrize(("vcpu", "reserved"), [(1, 60), (2, 70), (3, 75), (4, 80), (5, 82), (8, 90), (192, 550)])
def test_kube_reserved_cpu_follows_nodeadm_bands(vcpu, reserved):
    assert kube_reserved_cpu_millicores(vcpu) == reserved


def test_allocatable_of_a_known_system_instance(catalog):
    instance = catalog.instance_types["m7i.xlarge"]  # 4 vCPU, 16 GiB, 58 pods
    assert instance.max_pods == 58
    assert kube_reserved_memory_mib(58) == 893
    got = allocatable(instance)
    assert got["cpu"] == Decimal("3.92")
    assert got["memory"] == Decimal(16 * GIB) * (1 - VM_MEMORY_OVERHEAD) - (893 + 100) * MIB
    assert got["nvidia.com/gpu"] == 0


def test_allocatable_of_a_known_gpu_instance(catalog):
    instance = catalog.instance_types["p5.48xlarge"]  # 192 vCPU, 2048 GiB, 8 GPUs, 100 pods
    assert instance.max_pods == 100
    got = allocatable(instance)
    assert got["cpu"] == Decimal("191.45")
    assert got["memory"] == Decimal(2048 * GIB) * (1 - VM_MEMORY_OVERHEAD) - (11 * 100 + 255 + 100) * MIB
    assert got["nvidia.com/gpu"] == 8


# --- Node shapes from recorded resources -------------------------------------------------------------

PARENT = "urn:pulumi:prod::inferfleet::inferfleet:aws:GpuPool::prod-h100"


def recorded(type_: str, name: str, inputs: dict, parent: str = "", depends_on: list[str] = ()) -> dict[str, Any]:
    return {"type": type_, "name": name, "urn": f"urn:pulumi:prod::inferfleet::{type_}::{name}", "parent": parent,
            "provider": None, "custom": True, "inputs": inputs, "options": {"dependsOn": list(depends_on)}}


def node_group(**inputs: Any) -> dict[str, Any]:
    return recorded("aws:eks/nodeGroup:NodeGroup", "prod-cluster-system",
                    {"instanceTypes": ["m7i.xlarge"], "labels": {POOL: "system"}, **inputs})


def template_tags(pool: str, gpus: int, spot: bool = False) -> list[dict[str, Any]]:
    prefix = "k8s.io/cluster-autoscaler/node-template"
    tags = {f"{prefix}/label/{POOL}": pool, f"{prefix}/taint/nvidia.com/gpu": "true:NoSchedule",
            f"{prefix}/resources/nvidia.com/gpu": str(gpus), "Name": pool}
    if spot:
        tags[f"{prefix}/taint/inferfleet.io/spot"] = "true:NoSchedule"
    return [{"key": key, "value": value, "propagateAtLaunch": True} for key, value in tags.items()]


def launch_template(name: str, instance_type: str | None, parent: str = PARENT) -> dict[str, Any]:
    inputs = {"imageId": "ami-0123456789abcdef0", **({"instanceType": instance_type} if instance_type else {})}
    return recorded("aws:ec2/launchTemplate:LaunchTemplate", name, inputs, parent=parent)


def group(name: str, tags: list, depends_on: list[str] = (), parent: str = PARENT, **inputs: Any) -> dict[str, Any]:
    return recorded("aws:autoscaling/group:Group", name, {"tags": tags, **inputs}, parent=parent, depends_on=depends_on)


def test_shapes_of_a_managed_node_group(catalog):
    taints = [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_EXECUTE"}]
    shapes, problems = node_shapes([node_group(instanceTypes=["m7i.xlarge", "m7i.2xlarge"], taints=taints)], catalog)
    assert problems == []
    assert [shape.name for shape in shapes] == ["system (m7i.xlarge)", "system (m7i.2xlarge)"]
    assert shapes[0].labels[POOL] == "system"
    assert shapes[0].labels["node.kubernetes.io/instance-type"] == "m7i.xlarge"
    assert shapes[0].taints == (Taint("CriticalAddonsOnly", "true", "NoExecute"),)
    assert shapes[1].allocatable == allocatable(catalog.instance_types["m7i.2xlarge"])


def test_shapes_of_an_auto_scaling_group_with_a_launch_template(catalog):
    template = launch_template("prod-h100-lt", "p5.48xlarge")
    asg = group("prod-h100-asg", template_tags("h100", 8), depends_on=[template["urn"]],
                launchTemplate={"id": "lt-0123", "version": "1"})
    other = launch_template("prod-l4-lt", "g6.xlarge", parent="urn:other")
    shapes, problems = node_shapes([other, template, asg], catalog)
    assert problems == []
    (shape,) = shapes
    assert shape.name == "h100 (p5.48xlarge)"
    assert shape.labels[POOL] == "h100"
    assert shape.taints == (Taint("nvidia.com/gpu", "true", "NoSchedule"),)
    assert shape.allocatable["nvidia.com/gpu"] == 8


def test_a_launch_template_is_found_by_parent_when_no_dependency_names_it(catalog):
    template = launch_template("prod-h100-lt", "p5.48xlarge")
    asg = group("prod-h100-asg", template_tags("h100", 8), launchTemplate={"id": "lt-0123", "version": "1"})
    shapes, problems = node_shapes([template, asg], catalog)
    assert [shape.name for shape in shapes] == ["h100 (p5.48xlarge)"] and problems == []


def test_shapes_of_an_auto_scaling_group_with_a_mixed_instances_policy(catalog):
    template = launch_template("prod-h100-spot-lt", None)
    policy = {"launchTemplate": {"launchTemplateSpecification": {"launchTemplateId": "lt-0456", "version": "1"},
                                 "overrides": [{"instanceType": "p5.48xlarge"}, {"instanceType": "p4de.24xlarge"}]}}
    asg = group("prod-h100-spot-asg", template_tags("h100-spot", 8, spot=True), depends_on=[template["urn"]],
                mixedInstancesPolicy=policy)
    shapes, problems = node_shapes([template, asg], catalog)
    assert problems == []
    assert [shape.name for shape in shapes] == ["h100-spot (p5.48xlarge)", "h100-spot (p4de.24xlarge)"]
    assert shapes[1].taints[1] == Taint("inferfleet.io/spot", "true", "NoSchedule")
    assert shapes[1].allocatable["cpu"] == 96 - Decimal("0.31")


def test_unknown_instance_types_and_untold_groups_are_problems(catalog):
    unknown = node_group(instanceTypes=["x9.huge"])
    untold = group("prod-lost-asg", template_tags("lost", 1), parent="urn:nowhere", launchTemplate={"id": "lt-9"})
    wrong_tag = group("prod-l4-asg", template_tags("l4", 4), parent="urn:l4",
                      mixedInstancesPolicy={"launchTemplate": {"overrides": [{"instanceType": "g6.xlarge"}]}})
    shapes, problems = node_shapes([unknown, untold, wrong_tag], catalog)
    assert [shape.name for shape in shapes] == ["l4 (g6.xlarge)"]
    assert problems == [
        Problem("schedulability", "node group prod-lost-asg",
                "cannot tell which of the program's launch templates it launches"),
        Problem("schedulability", "node shape l4 (g6.xlarge)",
                "Cluster Autoscaler's node-template tag says 4 nvidia.com/gpu, the instance has 1"),
        Problem("schedulability", "node shape system (x9.huge)",
                "instance type not in the catalog: its vCPUs, memory and GPUs are unknown"),
    ]


# --- The check over manifests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(catalog) -> list[dict[str, Any]]:
    template = launch_template("prod-h100-lt", "p5.48xlarge")
    asg = group("prod-h100-asg", template_tags("h100", 8), depends_on=[template["urn"]],
                launchTemplate={"id": "lt-0123", "version": "1"})
    return [node_group(), template, asg]


def pod(**spec: Any) -> dict[str, Any]:
    return {"template": {"spec": {"containers": [container({"cpu": "1", "memory": "1Gi"})], **spec}}}


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "serving"}, "spec": spec}


def test_a_pod_that_fits_no_shape_names_each_shape_and_the_filter(fleet, catalog):
    head = {"rayClusterConfig": {"headGroupSpec": pod(**affinity([expr("DoesNotExist")])), "workerGroupSpecs": []}}
    assert check(fleet, [obj("RayService", "rag", head)], catalog) == [Problem(
        "schedulability", "RayService serving/rag head",
        "fits no node shape: h100 (p5.48xlarge): untolerated taint nvidia.com/gpu=true:NoSchedule; "
        "system (m7i.xlarge): node affinity inferfleet.io/pool DoesNotExist not matched (inferfleet.io/pool=system)")]


def test_pods_that_fit_one_shape_pass(fleet, catalog):
    gpu = pod(nodeSelector={POOL: "h100"}, tolerations=[GPU_TAINT.toleration()])
    gpu["template"]["spec"]["containers"] = [container({"cpu": "81", "memory": "870Gi"}, {"nvidia.com/gpu": 4})]
    manifests = [obj("Deployment", "chat", gpu), obj("Job", "gate", pod(nodeSelector={POOL: "system"}))]
    assert check(fleet, manifests, catalog) == []


def test_a_pod_too_big_for_every_shape_is_refused_by_resources(fleet, catalog):
    big = pod(tolerations=[{"operator": "Exists"}])
    big["template"]["spec"]["containers"] = [container(limits={"nvidia.com/gpu": 16})]
    (problem,) = check(fleet, [obj("Deployment", "big", big)], catalog)
    assert "h100 (p5.48xlarge): insufficient nvidia.com/gpu (requests 16, allocatable 8)" in problem.message


def test_an_unreadable_quantity_is_a_problem_not_a_crash(fleet, catalog):
    bad = pod()
    bad["template"]["spec"]["containers"] = [container({"cpu": "two"})]
    assert check(fleet, [obj("Job", "bad", bad)], catalog) == [
        Problem("schedulability", "Job serving/bad", "unreadable resources: 'two' is not a quantity")]


def test_templates_of_every_kind_are_found():
    lws = {"leaderWorkerTemplate": {"workerTemplate": pod()}}
    ray = {"rayClusterConfig": {"headGroupSpec": pod(), "workerGroupSpecs": [{"groupName": "g", **pod()}]}}
    cron = {"jobTemplate": {"spec": pod()}}
    manifests = [obj("LeaderWorkerSet", "big", lws), obj("RayService", "rag", ray), obj("CronJob", "c", cron),
                 obj("Service", "s", {}), obj("DaemonSet", "d", pod())]
    assert [t.subject for t in pod_templates(manifests)] == [
        "LeaderWorkerSet serving/big leader", "LeaderWorkerSet serving/big worker", "RayService serving/rag head",
        "RayService serving/rag worker group g", "CronJob serving/c", "DaemonSet serving/d"]


def test_a_daemon_set_must_fit_every_shape_it_admits(fleet, catalog):
    agent = pod(tolerations=[{"operator": "Exists"}])
    agent["template"]["spec"]["containers"] = [container({"cpu": "3", "memory": "1Gi"})]
    problems = check(fleet, [obj("DaemonSet", "agent", agent)], catalog)
    assert problems == []
    agent["template"]["spec"]["containers"] = [container({"cpu": "8"})]
    problems = check(fleet, [obj("DaemonSet", "agent", agent)], catalog)
    assert [p.message for p in problems] == ["system (m7i.xlarge): insufficient cpu (requests 8, allocatable 3920m)"]
    nowhere = pod(nodeSelector={POOL: "none"})
    assert [p.message for p in check(fleet, [obj("DaemonSet", "lost", nowhere)], catalog)] == [
        "no node shape admits it: it runs nowhere"]


def test_refusal_runs_the_filters_in_the_scheduler_order():
    shape = NodeShape("h100", "p5.48xlarge", {POOL: "h100"}, (GPU_TAINT,), {"cpu": Decimal(1)})
    spec = {"nodeSelector": {POOL: "other"}, "containers": [container({"cpu": "2"})]}
    assert refusal(spec, shape) == "untolerated taint nvidia.com/gpu=true:NoSchedule"
    spec["tolerations"] = [GPU_TAINT.toleration()]
    assert refusal(spec, shape).startswith("nodeSelector")
    spec["nodeSelector"] = {POOL: "h100"}
    assert refusal(spec, shape).startswith("insufficient cpu")


# --- Every example stack's real render ---------------------------------------------------------------


@pytest.fixture(scope="module")
def renders():
    from components.render import render
    from components.stack import load_stack

    return {stack: render(load_stack(ROOT / "stacks" / f"{stack}.yaml")) for stack in STACKS}


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_template_of_an_example_stack_fits_a_node_shape(renders, catalog, stack):
    rendered = renders[stack]
    resources = [resource.to_json() for resource in rendered.resources]
    shapes, _ = node_shapes(resources, catalog)
    assert shapes, "the render has no node shapes"
    assert list(pod_templates(rendered.manifests)), "the render has no pod templates"
    assert [str(p) for p in check(resources, rendered.manifests, catalog)] == []
