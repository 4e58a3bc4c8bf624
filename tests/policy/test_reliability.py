"""Reliability policies on the prod render: silent as rendered, firing when a guarantee is removed."""

from __future__ import annotations

import copy

import pytest

from tests.policy.conftest import objects

CG = "kubernetes:yaml/v2:ConfigGroup"
CHAT = "prod-serving-chat"
POLICIES = ["min-replicas", "pdb-present", "zone-spread", "startup-probes", "on-demand-floor"]


def _chat(resource):
    return resource.type == CG and resource.name == CHAT


def _change_chat_floor(prod, change):
    """Copy the resources and apply `change` to the chat-floor Deployment."""
    def apply(resource):
        for obj in objects(resource):
            if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "chat-floor":
                change(obj)

    resources = copy.deepcopy(prod.resources)
    for resource in filter(_chat, resources):
        apply(resource)
    return resources


@pytest.mark.parametrize("policy", POLICIES)
def test_prod_as_rendered_is_silent(prod, policy):
    assert prod.violations(policy) == []


def test_dev_is_out_of_scope(dev):
    for policy in POLICIES:
        assert dev.violations(policy) == [], policy


def test_single_replica_floor_fires(prod):
    resources = _change_chat_floor(prod, lambda d: d["spec"].update(replicas=1))
    (violation,) = prod.violations("min-replicas", resources)
    assert "service chat keeps 1" in violation.message and violation.enforcement == "mandatory"


def test_missing_pdb_fires(prod):
    resources = copy.deepcopy(prod.resources)
    for resource in filter(_chat, resources):
        resource.inputs["objs"] = [o for o in resource.inputs["objs"] if o["metadata"]["name"] != "chat-floor"
                                   or o["kind"] != "PodDisruptionBudget"]
    (violation,) = prod.violations("pdb-present", resources)
    assert "chat-floor" in violation.message


def test_no_zone_spread_fires(prod):
    resources = _change_chat_floor(prod, lambda d: d["spec"]["template"]["spec"].pop("topologySpreadConstraints"))
    assert [v.message for v in prod.violations("zone-spread", resources)] == [
        "Deployment/chat-floor does not spread over zones (topology.kubernetes.io/zone)"]


def test_missing_startup_probe_fires(prod):
    resources = _change_chat_floor(prod, lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("startupProbe"))
    assert prod.violations("startup-probes", resources)


def test_floor_on_spot_fires(prod):
    def to_spot(deployment):
        terms = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        terms[0]["matchExpressions"][0]["values"] = ["h100-spot", "h100-ondemand"]

    (violation,) = prod.violations("on-demand-floor", _change_chat_floor(prod, to_spot))
    assert "spot pools h100-spot" in violation.message


def _without_slo(deployment):
    deployment["metadata"].pop("annotations")


def test_the_rendered_workloads_state_their_availability_slo(prod):
    annotations = [o["metadata"].get("annotations", {}) for r in filter(_chat, prod.resources) for o in objects(r)
                   if o["kind"] == "Deployment"]
    assert annotations and all(a.get("inferfleet.io/availability-slo") == "0.999" for a in annotations)


def test_a_service_without_an_availability_slo_is_not_held_to_them(prod):
    """The same single-replica floor on spot with no zone spread, PDB or startup probe: silent once the
    workload no longer states an availability SLO."""
    def strip(deployment):
        _without_slo(deployment)
        deployment["spec"]["replicas"] = 1
        pod = deployment["spec"]["template"]["spec"]
        pod.pop("topologySpreadConstraints")
        for container in pod["containers"]:
            container.pop("startupProbe", None)

    resources = _change_chat_floor(prod, strip)
    for resource in filter(_chat, resources):
        resource.inputs["objs"] = [o for o in resource.inputs["objs"] if o["metadata"]["name"] != "chat-floor"
                                   or o["kind"] != "PodDisruptionBudget"]
        for obj in objects(resource):
            if obj["kind"] == "Deployment":
                obj["metadata"].pop("annotations", None)
    for policy in POLICIES:
        assert prod.violations(policy, resources) == [], policy
    with_slo = _change_chat_floor(prod, lambda d: d["spec"].update(replicas=1))
    assert prod.violations("min-replicas", with_slo)
