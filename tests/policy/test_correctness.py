"""Correctness policies on the prod render."""

from __future__ import annotations

import copy
import dataclasses
import re

from inferfleet_policies import common
from inferfleet_policies.common import FALLBACK_OF_ANNOTATION

from components.manifests import serving
from tests.policy.conftest import objects, pod_specs

POLICIES = ["node-selection-matches-pool", "autoscaler-bounds", "charts-pinned", "amis-pinned"]
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def test_prod_as_rendered_is_silent(prod, dev):
    for policy in POLICIES:
        assert prod.violations(policy) == [], policy
        assert dev.violations(policy) == [], policy


def test_unknown_pool_fires(prod):
    resources = copy.deepcopy(prod.resources)
    spec = next(pod_specs(resources))
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
        "matchExpressions"][0]["values"] = ["a100-gone"]
    (violation,) = prod.violations("node-selection-matches-pool", resources)
    assert "a100-gone" in violation.message


def test_bounds_that_differ_from_the_spec_fire(prod):
    chat = next(s for s in prod.spec.services if s.name == "chat")
    changed = dataclasses.replace(prod, spec=prod.spec.model_copy(update={"services": [
        chat.model_copy(update={"replicas": chat.replicas.model_copy(update={"max": chat.replicas.max + 1})}),
        *[s for s in prod.spec.services if s.name != "chat"]]}))
    (violation,) = changed.violations("autoscaler-bounds")
    assert "service chat" in violation.message


BURST_SET = re.compile(r"^chat-burst(-[0-9]+)?$")


def with_burst_sets(prod, *sets: tuple[str, str | None]) -> list:
    """The prod resources with chat's burst sets replaced: copies of its first (Deployment and
    ScaledObject), each named `name` and falling back from `fallback_of` (no annotation for None)."""
    resources = copy.deepcopy(prod.resources)
    for resource in resources:
        objs = resource.inputs.get("objs") if resource.type == "kubernetes:yaml/v2:ConfigGroup" else None
        first = [obj for obj in objs or [] if isinstance(obj, dict) and obj["metadata"].get("name") == "chat-burst"
                 and obj["kind"] in ("Deployment", "ScaledObject")]
        if not first:
            continue
        objs[:] = [obj for obj in objs if not (isinstance(obj, dict) and obj["kind"] in ("Deployment", "ScaledObject")
                                               and BURST_SET.match(obj["metadata"].get("name", "")))]
        for name, fallback_of in sets:
            for obj in copy.deepcopy(first):
                obj["metadata"]["name"] = name
                if obj["kind"] == "ScaledObject":
                    obj["spec"]["scaleTargetRef"]["name"] = name
                else:
                    obj["metadata"]["annotations"].pop(FALLBACK_OF_ANNOTATION, None)
                    if fallback_of is not None:
                        obj["metadata"]["annotations"][FALLBACK_OF_ANNOTATION] = fallback_of
                objs.append(obj)
    return resources


def autoscaler_bound_messages(prod, *sets: tuple[str, str | None]) -> list[str]:
    return [v.message for v in prod.violations("autoscaler-bounds", with_burst_sets(prod, *sets))]


def test_a_chain_of_fallback_sets_counts_as_one_budget(prod):
    """chat's burst budget is 0..14; fallback sets (other shapes, then the on-demand pools), each scaling
    0..14 to run what the set before it cannot place, add no capacity to the service."""
    assert autoscaler_bound_messages(prod, ("chat-burst", None)) == []
    assert autoscaler_bound_messages(
        prod, ("chat-burst", None), ("chat-burst-2", "chat-burst"), ("chat-burst-3", "chat-burst-2")) == []
    assert autoscaler_bound_messages(
        prod, ("chat-burst", None), ("chat-burst-2", "chat-burst"), ("chat-burst-3", "chat-burst-2"),
        ("chat-burst-4", "chat-burst-3")) == []


def test_a_second_burst_set_that_falls_back_from_nothing_counts_on_its_own(prod):
    assert autoscaler_bound_messages(prod, ("chat-burst", None), ("chat-burst-2", None)) == [
        "service chat scales 2..30 replicas; the spec says 2..16"]


def test_a_fallback_of_a_set_that_does_not_exist_counts_on_its_own(prod):
    assert autoscaler_bound_messages(prod, ("chat-burst", None), ("chat-burst-2", "chat-burst-gone")) == [
        "Deployment/chat-burst-2 falls back from chat-burst-gone, which is no autoscaled stable Deployment "
        "of service chat",
        "service chat scales 2..30 replicas; the spec says 2..16",
    ]


def test_two_fallbacks_of_one_set_fire(prod):
    """Both would scale on the same unplaceable replicas: a chain is one line of sets."""
    messages = autoscaler_bound_messages(prod, ("chat-burst", None), ("chat-burst-2", "chat-burst"),
                                         ("chat-burst-3", "chat-burst"))
    assert messages == ["Deployment/chat-burst has more than one fallback set: chat-burst-2, chat-burst-3"]


def test_a_fallback_that_reaches_beyond_its_chain_fires(prod):
    resources = with_burst_sets(prod, ("chat-burst", None), ("chat-burst-2", "chat-burst"))
    (scaled,) = [obj for r in resources for obj in objects(r)
                 if obj["kind"] == "ScaledObject" and obj["metadata"]["name"] == "chat-burst-2"]
    scaled["spec"]["minReplicaCount"] = 1
    (violation,) = prod.violations("autoscaler-bounds", resources)
    assert violation.message.startswith("Deployment/chat-burst-2 scales 1..14 replicas as a fallback in chat-burst's chain")


def test_a_cycle_of_fallback_sets_fires(prod):
    messages = autoscaler_bound_messages(prod, ("chat-burst", None), ("chat-burst-2", "chat-burst-3"),
                                         ("chat-burst-3", "chat-burst-2"))
    assert "Deployment/chat-burst-2 is in a cycle of fallback sets" in messages
    assert "service chat scales 2..44 replicas; the spec says 2..16" in messages


def test_the_pack_spells_the_workload_annotations_as_the_manifests_do():
    """The pack imports nothing from components/, so it spells the keys again; they must agree."""
    assert common.FALLBACK_OF_ANNOTATION == serving.FALLBACK_OF_ANNOTATION
    assert common.AVAILABILITY_SLO_ANNOTATION == serving.AVAILABILITY_SLO_ANNOTATION


def test_unpinned_chart_fires(prod):
    resources = prod.changed("kubernetes:helm.sh/v4:Chart", lambda r: r.inputs.update(version="^0.19"))
    assert prod.violations("charts-pinned", resources)


def test_floating_ami_fires_and_a_spec_pinned_one_passes(prod):
    floating = prod.changed(LT, lambda r: r.options.update(ignoreChanges=[]))
    assert prod.violations("amis-pinned", floating)
    ami = next(r for r in floating if r.type == LT).inputs["imageId"]
    pinned = dataclasses.replace(prod, spec=prod.spec.model_copy(update={
        "cluster": prod.spec.cluster.model_copy(update={"gpu_ami_id": ami})}))
    assert not pinned.violations("amis-pinned", floating)
