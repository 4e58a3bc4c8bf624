"""AWS limits: user data within EC2's 16 KB with the deploy margin, AWS resource names within their services'
limits, Kubernetes names and labels as the API server validates them; on hand-made resources at and past
each limit, then on the renders of every example stack."""

from __future__ import annotations

import base64

import pytest

from components.catalog import load_catalog
from components.checks import Problem
from components.checks.aws_limits import (
    CHECK,
    LAUNCH_TEMPLATE,
    USER_DATA_DEPLOY_MARGIN_BYTES,
    USER_DATA_LIMIT_BYTES,
    check,
    user_data_bytes,
)
from components.spec.naming import AUTONAME_SUFFIX, NAME_LIMITS, NAME_LIMITS_BY_TYPE, PREFIX_SUFFIX

STACKS = ["dev", "staging", "prod"]


def run(resources=(), manifests=()) -> list[Problem]:
    return check(list(resources), list(manifests), load_catalog())


def resource(resource_type: str, logical: str = "prod-thing", **inputs) -> dict:
    return {
        "type": resource_type,
        "name": logical,
        "urn": f"urn:pulumi:prod::inferfleet::{resource_type}::{logical}",
        "parent": None,
        "provider": None,
        "custom": True,
        "inputs": inputs,
        "options": {},
    }


def launch_template(raw_bytes: int) -> dict:
    return resource(LAUNCH_TEMPLATE, "prod-h100-ondemand-lt", userData=base64.b64encode(b"x" * raw_bytes).decode())


# ---- user data ----


def test_the_limit_is_ec2s_raw_16_kb_and_the_margin_is_stated():
    assert USER_DATA_LIMIT_BYTES == 16384
    assert 1500 < USER_DATA_DEPLOY_MARGIN_BYTES < 4096


def test_user_data_up_to_the_limit_less_the_margin_passes():
    assert run([launch_template(USER_DATA_LIMIT_BYTES - USER_DATA_DEPLOY_MARGIN_BYTES)]) == []


def test_user_data_a_byte_past_the_limit_less_the_margin_is_refused():
    size = USER_DATA_LIMIT_BYTES - USER_DATA_DEPLOY_MARGIN_BYTES + 1
    (problem,) = run([launch_template(size)])
    assert (problem.check, problem.subject) == (CHECK, f"{LAUNCH_TEMPLATE} prod-h100-ondemand-lt")
    assert f"user data is {size} bytes raw" in problem.message
    assert str(USER_DATA_LIMIT_BYTES) in problem.message


def test_the_size_is_counted_raw_not_as_base64():
    """14,000 raw bytes are 18,668 characters of base64: over 16384 as text, within EC2's limit raw."""
    template = launch_template(14000)
    assert len(template["inputs"]["userData"]) > USER_DATA_LIMIT_BYTES
    assert user_data_bytes(template["inputs"]["userData"]) == 14000
    assert run([template]) == []


def test_user_data_that_is_not_base64_is_refused():
    (problem,) = run([resource(LAUNCH_TEMPLATE, "prod-lt", userData="not base64!")])
    assert "not valid base64" in problem.message


def test_a_launch_template_without_user_data_is_not_judged():
    assert run([resource(LAUNCH_TEMPLATE, "prod-lt")]) == []


# ---- AWS names ----


def test_the_limits_the_issue_names_are_in_the_table():
    expected = {
        "aws:iam/role:Role": 64,
        "aws:sqs/queue:Queue": 80,
        "aws:cloudwatch/eventRule:EventRule": 64,
        "aws:s3/bucket:Bucket": 63,
        "aws:autoscaling/group:Group": 255,
        LAUNCH_TEMPLATE: 128,
        "aws:kms/alias:Alias": 256,
        "aws:cloudwatch/logGroup:LogGroup": 512,
        "aws:iam/instanceProfile:InstanceProfile": 128,
    }
    assert {t: NAME_LIMITS_BY_TYPE[t].max_length for t in expected} == expected
    assert all(limit.source for limit in NAME_LIMITS)


@pytest.mark.parametrize("limit", NAME_LIMITS, ids=lambda limit: limit.resource_type)
def test_a_name_at_the_limit_passes_and_one_past_it_is_refused(limit):
    at = resource(limit.resource_type, **{limit.name_input: "a" * limit.max_length})
    past = resource(limit.resource_type, **{limit.name_input: "a" * (limit.max_length + 1)})
    assert run([at]) == []
    (problem,) = run([past])
    assert problem.check == CHECK
    assert problem.subject == f"{limit.resource_type} prod-thing"
    assert f"name is {limit.max_length + 1} characters" in problem.message
    assert f"at most {limit.max_length}" in problem.message


@pytest.mark.parametrize(
    "limit", [limit for limit in NAME_LIMITS if limit.prefix_input], ids=lambda limit: limit.resource_type
)
def test_a_name_prefix_counts_with_the_providers_unique_suffix(limit):
    """A role's namePrefix may have 38 characters: 64 less the 26 the provider appends."""
    longest = limit.max_length - PREFIX_SUFFIX
    assert run([resource(limit.resource_type, **{limit.prefix_input: "p" * longest})]) == []
    (problem,) = run([resource(limit.resource_type, **{limit.prefix_input: "p" * (longest + 1)})])
    assert "unique suffix" in problem.message


def test_an_auto_named_role_counts_its_logical_name_and_pulumis_suffix():
    """Roles here are auto-named: `<logical name>-<7 random>` must fit 64, so the logical name 56."""
    longest = 64 - AUTONAME_SUFFIX
    assert run([resource("aws:iam/role:Role", "r" * longest)]) == []
    (problem,) = run([resource("aws:iam/role:Role", "r" * (longest + 1))])
    assert "auto-name" in problem.message and "name is 65 characters" in problem.message


def test_component_resources_and_unknown_types_are_not_judged():
    component = resource("aws:iam/role:Role", "x" * 100)
    component["custom"] = False
    assert run([component, resource("aws:ec2/vpc:Vpc", "x" * 300)]) == []


# ---- Kubernetes names and labels ----


def objects(*manifests: dict) -> list[Problem]:
    return run(manifests=manifests)


def obj(kind: str, name: str, api_version: str = "v1", namespace: str | None = "serving", **extra) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **extra}


def test_service_names_are_dns_1035_labels():
    assert objects(obj("Service", "a" * 63)) == []
    (too_long,) = objects(obj("Service", "a" * 64))
    assert too_long.subject == f"Service serving/{'a' * 64}"
    assert "over a DNS-1035 label's 63" in too_long.message
    (digit_first,) = objects(obj("Service", "7b-chat"))
    assert "DNS-1035" in digit_first.message


def test_namespace_names_are_dns_1123_labels():
    assert objects(obj("Namespace", "n" * 63, namespace=None)) == []
    (problem,) = objects(obj("Namespace", "n" * 64, namespace=None))
    assert "DNS-1123 label's 63" in problem.message


def test_other_names_are_dns_1123_subdomains():
    assert objects(obj("Deployment", "d" * 253, api_version="apps/v1")) == []
    assert objects(obj("ConfigMap", "chat.v1-config")) == []
    (too_long,) = objects(obj("Deployment", "d" * 254, api_version="apps/v1"))
    assert "DNS-1123 subdomain's 253" in too_long.message
    (upper,) = objects(obj("ScaledObject", "Chat", api_version="keda.sh/v1alpha1"))
    assert "not a DNS-1123 subdomain" in upper.message


def test_rbac_names_need_only_be_path_segments():
    rbac = "rbac.authorization.k8s.io/v1"
    assert objects(obj("ClusterRole", "system:inferfleet", api_version=rbac, namespace=None)) == []
    (problem,) = objects(obj("Role", "a/b", api_version=rbac))
    assert "path segment" in problem.message


def test_the_namespace_an_object_names_is_a_dns_1123_label():
    (problem,) = objects(obj("ConfigMap", "c", namespace="n" * 64))
    assert problem.message.startswith("metadata.namespace ")


def test_label_values_at_63_pass_and_at_64_are_refused_wherever_labels_are():
    deployment = obj(
        "Deployment",
        "chat",
        api_version="apps/v1",
        spec={
            "selector": {"matchLabels": {"app": "v" * 64}},
            "template": {
                "metadata": {"labels": {"app": "v" * 63, "inferfleet.io/pool": "p" * 64}},
                "spec": {"nodeSelector": {"inferfleet.io/pool": "bad value"}},
            },
        },
    )
    deployment["metadata"]["labels"] = {"app.kubernetes.io/name": "ok", "long": "l" * 64}
    messages = sorted(problem.message for problem in objects(deployment))
    assert messages == sorted(
        [
            f"metadata.labels.long: value {'l' * 64!r} is 64 characters, over a label value's 63",
            f"spec.selector.matchLabels.app: value {'v' * 64!r} is 64 characters, over a label value's 63",
            f"spec.template.metadata.labels.inferfleet.io/pool: value {'p' * 64!r} is 64 characters, over a label "
            "value's 63",
            "spec.template.spec.nodeSelector.inferfleet.io/pool: value 'bad value' is not a label value "
            "(alphanumerics, '-', '_' and '.', alphanumeric at both ends, or empty)",
        ]
    )


def test_label_keys_are_qualified_names():
    config = obj("ConfigMap", "c")
    config["metadata"]["labels"] = {"Example.com/x": "1", "k" * 64: "2", "inferfleet.io/" + "n" * 63: "3", "": "4"}
    messages = [problem.message for problem in objects(config)]
    assert len(messages) == 3
    assert any("key 'Example.com/x' prefix" in m for m in messages)
    assert any("name part is 64 characters" in m for m in messages)
    assert any("key ''" in m for m in messages)


def test_prometheus_alert_labels_are_not_kubernetes_labels():
    rule = obj(
        "PrometheusRule",
        "chat-slo",
        api_version="monitoring.coreos.com/v1",
        spec={"groups": [{"name": "g", "rules": [{"alert": "A", "labels": {"summary": "free text, any length " * 5}}]}]},
    )
    assert objects(rule) == []


# ---- the example stacks ----


@pytest.fixture(scope="module")
def renders():
    from components.render import render
    from components.stack import load_stack

    out = {}
    for name in STACKS:
        rendered = render(load_stack(f"stacks/{name}.yaml"))
        out[name] = ([r.to_json() for r in rendered.resources], rendered.manifests)
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_the_example_stacks_fit_every_limit(renders, stack):
    resources, manifests = renders[stack]
    assert run(resources, manifests) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_example_stacks_user_data_was_measured(renders, stack):
    """Every GPU pool's launch template carries user data the check read (one per pool, none empty)."""
    from components.stack import load_stack

    resources, _ = renders[stack]
    sizes = [user_data_bytes(r["inputs"]["userData"]) for r in resources if r["type"] == LAUNCH_TEMPLATE]
    assert len(sizes) == len(load_stack(f"stacks/{stack}.yaml").spec.gpu_pools)
    assert all(1024 < size <= USER_DATA_LIMIT_BYTES - USER_DATA_DEPLOY_MARGIN_BYTES for size in sizes)
