"""The queue aws-node-termination-handler reads in queue mode: EventBridge puts every event that means
"this GPU node is about to go" on one SQS queue, and lifecycle hooks hold terminating instances
until the handler has drained them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.spec.naming import EVENT_RULE_NAME_MAX, NAME_LIMITS_BY_TYPE, fit

MESSAGE_RETENTION_SECONDS = 300
"""A spot interruption warning comes two minutes ahead: an older message is about a node already gone."""
LIFECYCLE_HEARTBEAT_SECONDS = 300
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"

EVENT_PATTERNS: dict[str, dict] = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled-change": {
        "source": ["aws.health"],
        "detail-type": ["AWS Health Event"],
        "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
    },
}
"""Events that concern any instance of the account; the handler ignores instances without its managed tag."""


def lifecycle_pattern(group_names: list[str]) -> dict:
    """Terminate lifecycle actions of these groups only."""
    return {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": sorted(group_names)},
    }


def rule_name(cluster_name: str, key: str) -> str:
    """Named, not auto-named: the rules of a cluster's queue read as such in the EventBridge console (cut to
    EventBridge's limit, with a hash, for a long environment name)."""
    return fit(f"{cluster_name}-nth-{key}", EVENT_RULE_NAME_MAX)


def queue_name(cluster_name: str) -> str:
    return fit(f"{cluster_name}-interruptions", NAME_LIMITS_BY_TYPE["aws:sqs/queue:Queue"].max_length)


def account_of(arn: str) -> str:
    return arn.split(":")[4]


def queue_policy(queue_arn: str, rule_arns: list[str]) -> str:
    """EventBridge may send only from this component's rules; SQS (which relays for AWS services that
    target queues directly) only on behalf of this account."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EventBridgeRules",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
                },
                {
                    "Sid": "SqsThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": "sqs.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_of(queue_arn)}},
                },
            ],
        },
        sort_keys=True,
    )


@dataclass
class SpotInterruptionQueueArgs:
    environment: str
    cluster_name: str
    asg_names: list[pulumi.Input[str]]
    """The GPU pools' Auto Scaling groups: each gets a terminating lifecycle hook."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.environment:
            raise ValueError("SpotInterruptionQueueArgs.environment: required")
        if not self.cluster_name:
            raise ValueError("SpotInterruptionQueueArgs.cluster_name: required")
        if not self.asg_names:
            raise ValueError("SpotInterruptionQueueArgs.asg_names: give at least one Auto Scaling group")


class SpotInterruptionQueue(pulumi.ComponentResource):
    """SQS queue, EventBridge rules and targets, and one terminating lifecycle hook per GPU group."""

    queue: aws.sqs.Queue
    rules: dict[str, aws.cloudwatch.EventRule]
    hooks: list[aws.autoscaling.LifecycleHook]
    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    queue_name: pulumi.Output[str]

    def __init__(self, name: str, args: SpotInterruptionQueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:aws:SpotInterruptionQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=queue_name(args.cluster_name),
            message_retention_seconds=MESSAGE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=args.tags,
            opts=child,
        )
        patterns: dict[str, pulumi.Input[str]] = {
            key: json.dumps(pattern, sort_keys=True) for key, pattern in EVENT_PATTERNS.items()
        }
        patterns["lifecycle"] = pulumi.Output.all(*args.asg_names).apply(
            lambda names: json.dumps(lifecycle_pattern(list(names)), sort_keys=True)
        )
        self.rules = {}
        for key, pattern in patterns.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{key}",
                name=rule_name(args.cluster_name, key),
                description=f"{args.cluster_name}: {key} events for aws-node-termination-handler",
                event_pattern=pattern,
                tags=args.tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-{key}-target", rule=rule.name, arn=self.queue.arn, opts=child)
            self.rules[key] = rule
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, *[rule.arn for rule in self.rules.values()]).apply(
                lambda values: queue_policy(values[0], list(values[1:]))
            ),
            opts=child,
        )
        self.hooks = [
            aws.autoscaling.LifecycleHook(
                f"{name}-terminating-{index}",
                name=f"{args.cluster_name}-node-termination",
                autoscaling_group_name=group,
                lifecycle_transition=TERMINATING_TRANSITION,
                heartbeat_timeout=LIFECYCLE_HEARTBEAT_SECONDS,
                default_result="CONTINUE",
                opts=child,
            )
            for index, group in enumerate(args.asg_names)
        ]
        self.queue_url = self.queue.url
        self.queue_arn = self.queue.arn
        self.queue_name = self.queue.name
        self.register_outputs({"queueUrl": self.queue_url, "queueArn": self.queue_arn, "queueName": self.queue_name})
