"""GPU headroom placeholders: valid Kubernetes objects, pinned to their pool the way its nodes are labelled."""

import kubernetes_validate
import pytest

from components.manifests.headroom import (
    GPU_RESOURCE,
    NAMESPACE,
    PRIORITY_CLASS,
    headroom_objects,
    headroom_pods,
)
from components.manifests.scheduling import pool_labels, pool_taints
from components.stack import load_stack

KUBERNETES_VERSION = "1.34.0"


@pytest.fixture(scope="module")
def spec():
    prod = load_stack("stacks/prod.yaml").spec
    headroom = {"h100-spot": 12, "l4-ondemand": 1}
    pools = [pool.model_copy(update={"headroom_gpus": headroom.get(pool.name, 0)}) for pool in prod.gpu_pools]
    return prod.model_copy(update={"gpu_pools": pools})


@pytest.fixture(scope="module")
def gpus_per_node():
    return {"h100-ondemand": 8, "h100-spot": 8, "l40s-ondemand": 4, "l40s-spot": 4, "l4-ondemand": 1}


@pytest.fixture(scope="module")
def objects(spec, gpus_per_node):
    return headroom_objects(spec, gpus_per_node)


def deployments(objects):
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Deployment"}


def test_every_object_is_valid_for_kubernetes_1_34_in_strict_mode(objects):
    assert {obj["kind"] for obj in objects} == {"Namespace", "PriorityClass", "Deployment"}
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_an_unknown_field(objects):
    broken = {**deployments(objects)["headroom-h100-spot"]}
    broken["spec"] = {**broken["spec"], "replica": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_one_deployment_per_pool_with_headroom(objects):
    assert set(deployments(objects)) == {"headroom-h100-spot", "headroom-l4-ondemand"}
    assert all(d["metadata"]["namespace"] == NAMESPACE for d in deployments(objects).values())


def test_selector_and_tolerations_are_the_pools_own_labels_and_taints(spec, objects):
    pools = {pool.name: pool for pool in spec.gpu_pools}
    for name, pool_name in [("headroom-h100-spot", "h100-spot"), ("headroom-l4-ondemand", "l4-ondemand")]:
        pod = deployments(objects)[name]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == pool_labels(pools[pool_name])
        assert pod["tolerations"] == [taint.toleration() for taint in pool_taints(pools[pool_name])]
    spot_pod = deployments(objects)["headroom-h100-spot"]["spec"]["template"]["spec"]
    spot_keys = {toleration["key"] for toleration in spot_pod["tolerations"]}
    assert "inferfleet.io/spot" in spot_keys


@pytest.mark.parametrize(
    "headroom,per_node,expected",
    [(8, 8, (1, 8)), (12, 8, (2, 8)), (3, 8, (1, 3)), (16, 4, (4, 4)), (5, 4, (2, 4)), (1, 1, (1, 1))],
)
def test_replicas_cover_the_headroom_with_pods_no_bigger_than_a_node(headroom, per_node, expected):
    replicas, per_pod = headroom_pods(headroom, per_node)
    assert (replicas, per_pod) == expected
    assert per_pod <= per_node and replicas * per_pod >= headroom


def test_pods_request_and_limit_the_same_gpus(objects):
    container = deployments(objects)["headroom-h100-spot"]["spec"]["template"]["spec"]["containers"][0]
    assert deployments(objects)["headroom-h100-spot"]["spec"]["replicas"] == 2
    assert container["resources"]["requests"][GPU_RESOURCE] == "8"
    assert container["resources"]["limits"] == container["resources"]["requests"]


def test_priority_class_is_below_workloads_and_never_preempts(objects):
    (priority_class,) = [obj for obj in objects if obj["kind"] == "PriorityClass"]
    assert priority_class["metadata"]["name"] == PRIORITY_CLASS
    assert priority_class["value"] == -10
    assert priority_class["globalDefault"] is False
    assert priority_class["preemptionPolicy"] == "Never"
    assert priority_class["description"]
    for deployment in deployments(objects).values():
        assert deployment["spec"]["template"]["spec"]["priorityClassName"] == PRIORITY_CLASS


def test_pause_pods_are_pinned_unprivileged_and_quick_to_evict(objects):
    pod = deployments(objects)["headroom-l4-ondemand"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("registry.k8s.io/pause:3.10@sha256:")
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_no_headroom_means_no_objects(gpus_per_node):
    assert headroom_objects(load_stack("stacks/prod.yaml").spec, gpus_per_node) == []


def test_a_pool_with_headroom_needs_its_gpu_count(spec):
    with pytest.raises(ValueError, match="h100-spot"):
        headroom_objects(spec, {"l4-ondemand": 1})
