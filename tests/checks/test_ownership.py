"""Autoscaler ownership: what KEDA or an HPA scales sets no `spec.replicas`, and every autoscaler scales an
object the program applies; on small hand-made sets, then on every example stack."""

from __future__ import annotations

import pytest

from components.catalog import load_catalog
from components.checks import Problem
from components.checks.ownership import CHECK, check
from components.manifests.stack import service_objects, shared_objects
from components.planner import plan_stack
from components.stack import load_stack

STACKS = ["dev", "staging", "prod"]
NAMESPACE = "serving"


def deployment(name, replicas=None, namespace=NAMESPACE, kind="Deployment", api_version="apps/v1"):
    spec = {"selector": {"matchLabels": {"app": name}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def scaled_object(name, target, namespace=NAMESPACE, **ref):
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"name": target, **ref}, "minReplicaCount": 0, "maxReplicaCount": 4},
    }


def hpa(name, target, kind="Deployment", api_version="apps/v1", namespace=NAMESPACE):
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": target}, "maxReplicas": 4},
    }


def run(manifests):
    return check([], manifests, load_catalog())


def test_a_clean_set_passes():
    manifests = [
        deployment("chat-floor", replicas=2),
        deployment("chat-burst"),
        scaled_object("chat-burst", "chat-burst", apiVersion="apps/v1", kind="Deployment"),
        deployment("rerank-burst"),
        hpa("rerank-burst", "rerank-burst"),
        deployment("big-burst", kind="LeaderWorkerSet", api_version="leaderworkerset.x-k8s.io/v1"),
        scaled_object("big-burst", "big-burst", apiVersion="leaderworkerset.x-k8s.io/v1", kind="LeaderWorkerSet"),
    ]
    assert run(manifests) == []


def test_a_scaled_object_whose_target_sets_replicas_is_reported():
    problems = run([deployment("chat-burst", replicas=0), scaled_object("chat-burst", "chat-burst")])
    assert [(p.check, p.subject) for p in problems] == [(CHECK, "Deployment serving/chat-burst")]
    assert "ScaledObject serving/chat-burst" in problems[0].message and "spec.replicas (0)" in problems[0].message


def test_keda_target_defaults_to_an_apps_v1_deployment():
    """KEDA's scaleTargetRef defaults apiVersion to apps/v1 and kind to Deployment."""
    problems = run([deployment("chat-burst", replicas=1), scaled_object("chat-burst", "chat-burst")])
    assert [p.subject for p in problems] == ["Deployment serving/chat-burst"]


def test_an_hpa_whose_target_sets_replicas_is_reported():
    web = deployment("web", replicas=3, kind="StatefulSet")
    problems = run([web, hpa("web", "web", kind="StatefulSet")])
    assert [p.subject for p in problems] == ["StatefulSet serving/web"]
    assert "HorizontalPodAutoscaler serving/web" in problems[0].message


def test_a_scaled_object_that_scales_nothing_is_reported():
    problems = run([scaled_object("chat-burst", "chat-brust")])
    message = "scales Deployment serving/chat-brust, which the program does not apply"
    assert problems == [Problem(CHECK, "ScaledObject serving/chat-burst", message)]


def test_a_target_in_another_namespace_or_of_another_kind_is_not_the_one_scaled():
    """An autoscaler reaches only its own namespace, and only the kind it names."""
    problems = run([
        deployment("chat-burst", namespace="other", replicas=1),
        deployment("chat-burst", kind="StatefulSet", replicas=1),
        scaled_object("chat-burst", "chat-burst"),
    ])
    assert [p.subject for p in problems] == ["ScaledObject serving/chat-burst"]


def test_two_autoscalers_on_one_target_are_reported():
    problems = run([deployment("chat-burst"), scaled_object("chat-burst", "chat-burst"), hpa("chat-hpa", "chat-burst")])
    assert [p.subject for p in problems] == ["Deployment serving/chat-burst"]
    assert "ScaledObject serving/chat-burst and HorizontalPodAutoscaler serving/chat-hpa" in problems[0].message


def test_a_workload_without_replicas_that_nothing_scales_is_reported():
    """Left out and unowned, the count is the API server's default of 1, not the plan's."""
    problems = run([deployment("chat-floor")])
    assert [p.subject for p in problems] == ["Deployment serving/chat-floor"]
    assert "default of 1" in problems[0].message


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stacks_serving_objects_pass(stack, catalog):
    """The serving objects (workloads, ScaledObjects) as components/manifests builds them, without Pulumi."""
    spec = load_stack(f"stacks/{stack}.yaml", catalog).spec
    plan = plan_stack(spec, catalog)
    manifests = shared_objects(spec) + [
        obj for service in spec.services for obj in service_objects(service, spec, plan, catalog).all()
    ]
    assert any(obj["kind"] == "ScaledObject" for obj in manifests)
    assert check([], manifests, catalog) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stacks_render_passes(stack, catalog):
    """Everything the program applies, as `inferfleet render` records it."""
    from components.render import render

    rendered = render(load_stack(f"stacks/{stack}.yaml", catalog), catalog)
    resources = [resource.to_json() for resource in rendered.resources]
    assert check(resources, rendered.manifests, catalog) == []
