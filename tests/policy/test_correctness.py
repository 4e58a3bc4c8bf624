"""Correctness policies on the prod render."""

from __future__ import annotations

import copy
import dataclasses

from tests.policy.conftest import pod_specs

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
