"""Two objects (or AWS resources) of one kind and one name: found, named, and none in the example renders."""

from __future__ import annotations

from components.catalog import load_catalog
from components.checks.collisions import check, object_key

CATALOG = load_catalog()


def service(name: str, namespace: str = "inferfleet-serving", api: str = "v1") -> dict:
    return {"apiVersion": api, "kind": "Service", "metadata": {"name": name, "namespace": namespace}}


def test_objects_of_one_kind_and_name_in_one_namespace_collide() -> None:
    (problem,) = check([], [service("chat-canary"), service("chat-canary"), service("chat")], CATALOG)
    assert problem.subject == "Service inferfleet-serving/chat-canary"
    assert "2 objects of core kind Service share this name" in problem.message


def test_other_namespaces_kinds_and_groups_do_not_collide() -> None:
    scaled = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "chat", "namespace": "x"}}
    objects = [service("chat"), service("chat", namespace="other"), scaled,
               {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "chat", "namespace": "x"}}]
    assert check([], objects, CATALOG) == []


def test_the_version_does_not_make_another_object() -> None:
    route = {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "n"}}
    assert object_key({**route, "apiVersion": "gateway.networking.k8s.io/v1"}) == \
        object_key({**route, "apiVersion": "gateway.networking.k8s.io/v1beta1"})


def test_two_aws_resources_given_one_name_collide() -> None:
    role = {"type": "aws:sqs/queue:Queue", "custom": True}
    resources = [{**role, "name": "a", "inputs": {"name": "q"}}, {**role, "name": "b", "inputs": {"name": "q"}},
                 {**role, "name": "c", "inputs": {"name": "other"}}]
    (problem,) = check(resources, [], CATALOG)
    assert (problem.subject, problem.message) == ("aws:sqs/queue:Queue q", "set as the name of a, b; AWS refuses the second")


def test_names_unique_within_a_parent_collide_only_under_one_parent() -> None:
    hook = {"type": "aws:autoscaling/lifecycleHook:LifecycleHook", "custom": True}
    resources = [{**hook, "name": "a", "inputs": {"name": "drain", "autoscalingGroupName": "pool-1"}},
                 {**hook, "name": "b", "inputs": {"name": "drain", "autoscalingGroupName": "pool-2"}}]
    assert check(resources, [], CATALOG) == []
    resources.append({**hook, "name": "c", "inputs": {"name": "drain", "autoscalingGroupName": "pool-2"}})
    (problem,) = check(resources, [], CATALOG)
    assert problem.message == "set as the name of b, c; AWS refuses the second"

