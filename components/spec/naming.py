"""How the program names what it creates in AWS: one home for the names derived from the spec, AWS's name
limits, and `fit`, which keeps a derived name within its limit however long the environment, pool or service
names the spec allows.

Why fit rather than refuse: an environment `staging-eu-west-1` or a service `llama-3-70b-instruct-batch` is
a normal name, and every AWS name the program derives from it must still be accepted, or `pulumi up` fails
half-way (IAM refuses a role, EventBridge a rule). A name within its limit is kept as it is; a longer one is
cut and ends in 8 hex characters of its SHA-256, so two long names that share their first characters still
differ, and the same spec always gives the same name. The render's aws-limits check
(components/checks/aws_limits.py) reads the same limits and judges every name the program really set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CLUSTER_NAME_PREFIX = "inferfleet-"
HASH_LENGTH = 8


def cluster_name(environment: str) -> str:
    """The EKS cluster's name; most AWS names of the environment start with it."""
    return f"{CLUSTER_NAME_PREFIX}{environment}"


def fit(name: str, limit: int) -> str:
    """`name`, or when longer than `limit`, its first characters, `-` and 8 hex characters of its hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[: limit - HASH_LENGTH - 1].rstrip('-.')}-{digest}"


def role_name_args(logical_name: str) -> dict[str, str]:
    """Keyword arguments for an `aws.iam.Role` named after its logical name: none (Pulumi's auto-name, the
    logical name plus `-` and 7 random characters) when that fits IAM's 64, else a `name_prefix` short enough
    for the provider's 26-character unique suffix."""
    if len(logical_name) + AUTONAME_SUFFIX <= IAM_ROLE_NAME_MAX:
        return {}
    return {"name_prefix": fit(logical_name, IAM_ROLE_NAME_MAX - PREFIX_SUFFIX - 1) + "-"}


AUTONAME_SUFFIX = 8
"""Pulumi's auto-name: the logical name, "-" and 7 random hex characters (pulumi-terraform-bridge
`tfbridge.AutoName`: Separator "-", Randlen 7), when the program sets no name."""
PREFIX_SUFFIX = 26
"""A `namePrefix` gets the Terraform AWS provider's unique suffix, 26 characters
(`id.UniqueIDSuffixLength`; the provider's role name prefix limit is `roleNameMaxLen - UniqueIDSuffixLength`,
64 - 26 = 38)."""


@dataclass(frozen=True)
class NameLimit:
    """The longest physical name AWS accepts for one resource type, and where the program sets it."""

    resource_type: str
    max_length: int
    source: str
    name_input: str = "name"
    prefix_input: str | None = "namePrefix"
    scope_inputs: tuple[str, ...] = ()
    """Inputs that hold the parent a name is unique within (a hook's group); none: unique in the account and Region."""


_SERVICE_MODEL = "AWS service model (botocore 1.43 data/<service>/service-2.json)"
NAME_LIMITS: tuple[NameLimit, ...] = (
    NameLimit("aws:iam/role:Role", 64, f"IAM CreateRole RoleName: length 1-64 ({_SERVICE_MODEL}, roleNameType)"),
    NameLimit(
        "aws:iam/instanceProfile:InstanceProfile",
        128,
        f"IAM CreateInstanceProfile InstanceProfileName: length 1-128 ({_SERVICE_MODEL}, instanceProfileNameType)",
    ),
    NameLimit("aws:iam/policy:Policy", 128, f"IAM CreatePolicy PolicyName: length 1-128 ({_SERVICE_MODEL})"),
    NameLimit("aws:iam/rolePolicy:RolePolicy", 128, f"IAM PutRolePolicy PolicyName: length 1-128 ({_SERVICE_MODEL})",
              scope_inputs=("role",)),
    NameLimit(
        "aws:sqs/queue:Queue",
        80,
        "SQS CreateQueue QueueName: 'A queue name can have up to 80 characters' (SQS API Reference; same text in "
        "the service model)",
    ),
    NameLimit(
        "aws:cloudwatch/eventRule:EventRule",
        64,
        f"EventBridge PutRule Name: length 1-64, [.-_A-Za-z0-9]+ ({_SERVICE_MODEL}, RuleName)",
    ),
    NameLimit(
        "aws:s3/bucket:Bucket",
        63,
        "S3 User Guide, general purpose bucket naming rules: 'between 3 (min) and 63 (max) characters long'",
        name_input="bucket",
        prefix_input="bucketPrefix",
    ),
    NameLimit(
        "aws:s3/bucketV2:BucketV2",
        63,
        "S3 User Guide, general purpose bucket naming rules: 'between 3 (min) and 63 (max) characters long'",
        name_input="bucket",
        prefix_input="bucketPrefix",
    ),
    NameLimit(
        "aws:autoscaling/group:Group",
        255,
        f"Auto Scaling CreateAutoScalingGroup AutoScalingGroupName: length 1-255 ({_SERVICE_MODEL})",
    ),
    NameLimit(
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        255,
        f"Auto Scaling PutLifecycleHook LifecycleHookName: length 1-255 ({_SERVICE_MODEL})",
        prefix_input=None,
        scope_inputs=("autoscalingGroupName",),
    ),
    NameLimit(
        "aws:ec2/launchTemplate:LaunchTemplate",
        128,
        f"EC2 CreateLaunchTemplate LaunchTemplateName: length 3-128 ({_SERVICE_MODEL})",
    ),
    NameLimit(
        "aws:kms/alias:Alias",
        256,
        f"KMS CreateAlias AliasName: length 1-256, 'alias/' included ({_SERVICE_MODEL}, AliasNameType)",
    ),
    NameLimit(
        "aws:cloudwatch/logGroup:LogGroup",
        512,
        f"CloudWatch Logs CreateLogGroup logGroupName: length 1-512 ({_SERVICE_MODEL})",
    ),
    NameLimit(
        "aws:ecr/repository:Repository",
        256,
        f"ECR CreateRepository repositoryName: length 2-256 ({_SERVICE_MODEL})",
        prefix_input=None,
    ),
    NameLimit("aws:eks/cluster:Cluster", 100, f"EKS CreateCluster name: length 1-100 ({_SERVICE_MODEL})", prefix_input=None),
    NameLimit(
        "aws:codebuild/project:Project",
        150,
        f"CodeBuild CreateProject name: length 2-150 ({_SERVICE_MODEL})",
        prefix_input=None,
    ),
    NameLimit(
        "aws:ec2/securityGroup:SecurityGroup",
        255,
        "EC2 CreateSecurityGroup GroupName: 'Up to 255 characters in length' (service model documentation)",
        scope_inputs=("vpcId",),
    ),
)
"""Name length limits per resource type, each with its source. The four the issue names (IAM role, SQS queue,
EventBridge rule, S3 bucket) and the other named resources this program creates."""
NAME_LIMITS_BY_TYPE = {limit.resource_type: limit for limit in NAME_LIMITS}
IAM_ROLE_NAME_MAX = NAME_LIMITS_BY_TYPE["aws:iam/role:Role"].max_length
EVENT_RULE_NAME_MAX = NAME_LIMITS_BY_TYPE["aws:cloudwatch/eventRule:EventRule"].max_length
BUCKET_NAME_MAX = NAME_LIMITS_BY_TYPE["aws:s3/bucket:Bucket"].max_length
