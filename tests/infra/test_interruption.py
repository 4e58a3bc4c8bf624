"""The node-termination-handler's queue under the recording mocks: every event it drains on reaches the
queue, only from these rules, and every GPU group holds terminating instances for it."""

from __future__ import annotations

import json

import pytest

from components.aws.interruption import SpotInterruptionQueue, SpotInterruptionQueueArgs
from tests.infra.conftest import of_type, run_under_mocks

TAGS = {"owner": "ml-platform"}
GROUPS = ["inferfleet-prod-h100-spot", "inferfleet-prod-h100-ondemand", "inferfleet-prod-l4-ondemand"]
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


@pytest.fixture(scope="module")
def resources():
    return run_under_mocks(
        lambda: SpotInterruptionQueue(
            "prod-interruption", SpotInterruptionQueueArgs("prod", "inferfleet-prod", list(GROUPS), TAGS)
        )
    )


def patterns(resources) -> dict[str, dict]:
    return {
        rule.name.removeprefix("prod-interruption-"): json.loads(rule.inputs["eventPattern"])
        for rule in of_type(resources, RULE)
    }


def test_rules_match_the_events_the_handler_drains_on(resources):
    found = patterns(resources)
    assert found["spot-interruption"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    }
    assert found["rebalance"] == {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]}
    assert found["state-change"] == {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}
    assert found["scheduled-change"] == {
        "source": ["aws.health"],
        "detail-type": ["AWS Health Event"],
        "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
    }
    assert found["lifecycle"] == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": sorted(GROUPS)},
    }
    assert len(found) == 5


def test_every_rule_targets_the_queue(resources):
    (queue,) = of_type(resources, "aws:sqs/queue:Queue")
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{queue.inputs['name']}"
    rules = {rule.name: rule.inputs["name"] for rule in of_type(resources, RULE)}
    targets = {target.name.removesuffix("-target"): target.inputs for target in of_type(resources, TARGET)}
    assert set(targets) == set(rules)
    for logical, inputs in targets.items():
        assert inputs["rule"] == rules[logical]
        assert inputs["arn"] == queue_arn
    assert rules["prod-interruption-spot-interruption"] == "inferfleet-prod-nth-spot-interruption"


def test_queue_is_encrypted_short_lived_and_tagged(resources):
    (queue,) = of_type(resources, "aws:sqs/queue:Queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 300
    assert queue.inputs["name"] == "inferfleet-prod-interruptions"
    assert queue.inputs["tags"] == TAGS
    assert all(rule.inputs["tags"] == TAGS for rule in of_type(resources, RULE))


def test_queue_policy_lets_only_these_rules_send(resources):
    (policy,) = of_type(resources, "aws:sqs/queuePolicy:QueuePolicy")
    statements = {s["Principal"]["Service"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert set(statements) == {"events.amazonaws.com", "sqs.amazonaws.com"}
    events = statements["events.amazonaws.com"]
    assert events["Action"] == "sqs:SendMessage"
    assert events["Resource"] == "arn:aws:sqs:us-east-1:123456789012:inferfleet-prod-interruptions"
    assert len(events["Condition"]["ArnEquals"]["aws:SourceArn"]) == 5
    assert statements["sqs.amazonaws.com"]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert policy.inputs["queueUrl"].endswith("/inferfleet-prod-interruptions")


def test_one_terminating_lifecycle_hook_per_group(resources):
    hooks = of_type(resources, "aws:autoscaling/lifecycleHook:LifecycleHook")
    assert sorted(hook.inputs["autoscalingGroupName"] for hook in hooks) == sorted(GROUPS)
    for hook in hooks:
        assert hook.inputs["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert hook.inputs["heartbeatTimeout"] == 300
        assert hook.inputs["defaultResult"] == "CONTINUE"


def test_children_are_parented_to_the_component(resources):
    (component,) = of_type(resources, "inferfleet:aws:SpotInterruptionQueue")
    children = [r for r in resources if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    assert all(r.name.startswith("prod-interruption-") for r in children)


def test_a_long_cluster_name_gets_rule_and_queue_names_that_fit_and_stay_distinct():
    from components.aws.interruption import queue_name, rule_name
    from components.spec.naming import EVENT_RULE_NAME_MAX

    cluster = "c" * 100
    rules = {rule_name(cluster, key) for key in ("spot", "rebalance", "state-change", "scheduled-change")}
    assert len(rules) == 4 and all(len(name) <= EVENT_RULE_NAME_MAX for name in rules)
    assert len(queue_name(cluster)) <= 80 and queue_name(cluster) != queue_name(cluster + "d")


def test_no_groups_refused():
    with pytest.raises(ValueError, match=r"SpotInterruptionQueueArgs\.asg_names"):
        SpotInterruptionQueueArgs("prod", "inferfleet-prod", [], TAGS)
