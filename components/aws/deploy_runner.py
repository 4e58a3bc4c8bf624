"""The deploy runner: a CodeBuild project in the private subnets that runs the workloads stack.

Why: with a private API endpoint, EKS answers only from inside the VPC, and only what the cluster security
group admits. Every environment is two Pulumi stacks of this one program (components/phases.py): the
platform stack (`<env>`: VPC, EKS, node pools, IAM, this runner) needs only AWS's APIs and runs wherever
`pulumi` does; the workloads stack (`<env>-workloads`: add-ons and serving objects) needs the Kubernetes API,
so it runs here. `scripts/workloads.sh` uploads the commit to the runner's source bucket and starts a build;
the PR preview workflow and the documented deploy both go through it (docs/deploying.md).

Why CodeBuild: nothing to patch or keep running (a build starts in the VPC and is gone after), its network
interfaces sit in the private subnets and leave through the NAT gateways, and the job's identity is an IAM
role the cluster's access entry can name. Least privilege: the role may read its source bundles, write
its own logs, read and write the Pulumi state under the stacks' backend prefix, use the stacks' KMS key
when they have one, and administer the cluster through Kubernetes RBAC (the access entry); no other AWS
API. The workloads stack creates no AWS resource (components/aws/addon_roles.py keeps the add-ons' roles on
the platform side).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import yaml

from inferfleet_policies.levels import pack_config_path

from components.aws.iam import PolicyStatement, policy_json
from components.aws.storage import tls_only_policy
from components.aws.tags import named
from components.phases import workloads_stack
from components.spec.naming import BUCKET_NAME_MAX, fit, role_name_args

BUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
"""CodeBuild's curated Amazon Linux 2023 image (Python 3.11 among its runtimes). Curated images are named by
tag only (AWS updates them in place); the Pulumi CLI and every Python dependency are pinned by the build."""
COMPUTE_TYPE = "BUILD_GENERAL1_MEDIUM"
"""4 vCPU, 7 GB: a workloads preview renders every chart client-side."""
BUILD_TIMEOUT_MINUTES = 60
"""The deploy gate's Jobs and RayServices' Ready condition are waited for within the update."""
LOG_RETENTION_DAYS = 90
SOURCE_EXPIRY_DAYS = 7
"""Source bundles are uploaded per run; a week keeps the ones a failed run might be retried with."""
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
"""The workloads stack installs CRDs, cluster roles and webhooks: only cluster-wide admin can."""
API_PORT = 443
CODEBUILD_PRINCIPAL = "codebuild.amazonaws.com"
_STATE_BACKEND = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?P<prefix>/[^?]*)?(\?.*)?$")


def state_location(backend_url: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes) of an S3 state backend URL, as `pulumi login` takes it."""
    match = _STATE_BACKEND.match(backend_url)
    if not match:
        raise ValueError(f"{backend_url!r} is not an S3 state backend URL like s3://bucket/prefix?region=us-east-1")
    return match["bucket"], (match["prefix"] or "").strip("/")


def source_bucket_name(cluster_name: str, account_id: str) -> str:
    """`<cluster>-deploy-<account>`: unique across accounts, one per environment within one; the cluster's part
    is cut (with a hash) for a long environment name, the account's never."""
    return f"{fit(f'{cluster_name}-deploy', BUCKET_NAME_MAX - len(account_id) - 1)}-{account_id}"


def secrets_provider(kms_key_arn: str | None) -> str:
    """The `--secrets-provider` a new workloads stack is created with: the stacks' KMS key, or none."""
    if kms_key_arn is None:
        return ""
    region = kms_key_arn.split(":")[3]
    return f"awskms:///{kms_key_arn}?region={region}"


def buildspec(environment: str) -> str:
    """What a build runs: the pinned Pulumi CLI, the locked venv, then `pulumi <command>` on the workloads stack.

    INFERFLEET_COMMAND (preview or up) is set per build by scripts/workloads.sh; a preview runs the policy pack
    as the PR workflow's does."""
    stack = workloads_stack(environment)
    select = (f'pulumi stack select "{stack}" 2>/dev/null || pulumi stack init "{stack}"'
              ' ${INFERFLEET_SECRETS_PROVIDER:+--secrets-provider "$INFERFLEET_SECRETS_PROVIDER"}')
    config = pack_config_path(environment)
    policy = "--policy-pack policy" + (f" --policy-pack-config {config}" if config else "")
    run = ('case "$INFERFLEET_COMMAND" in '
           f'preview) pulumi preview --stack "{stack}" {policy} --non-interactive --diff ;; '
           f'up) pulumi up --stack "{stack}" {policy} --non-interactive --yes --skip-preview ;; '
           '*) echo "INFERFLEET_COMMAND must be preview or up, not $INFERFLEET_COMMAND" >&2; exit 2 ;; esac')
    document = {
        "version": 0.2,
        "env": {"shell": "bash"},
        "phases": {
            "install": {
                "runtime-versions": {"python": "3.11"},
                "commands": [
                    'curl -fsSL https://get.pulumi.com | sh -s -- --version "$PULUMI_VERSION"',
                    'echo "$HOME/.pulumi/bin" > /tmp/pulumi-path',
                ],
            },
            "build": {
                "commands": [
                    'export PATH="$(cat /tmp/pulumi-path):$PATH"',
                    "make venv",
                    'pulumi login "$PULUMI_BACKEND_URL"',
                    select,
                    run,
                ],
            },
        },
    }
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def runner_statements(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_arn: str,
    source_bucket_arn: str,
    state_backend: str,
    secrets_kms_key_arn: str | None,
    cluster_arn: str,
    subnet_ids: list[str],
) -> list[PolicyStatement]:
    """The build role's permissions, each the least its step needs."""
    state_bucket, prefix = state_location(state_backend)
    state_arn = f"arn:{partition}:s3:::{state_bucket}"
    under = f"{prefix}/*" if prefix else "*"
    subnet_arns = [f"arn:{partition}:ec2:{region}:{account_id}:subnet/{subnet}" for subnet in subnet_ids]
    statements = [
        PolicyStatement(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]),
        PolicyStatement(["s3:GetObject", "s3:GetObjectVersion"], [f"{source_bucket_arn}/*"]),
        PolicyStatement(["s3:ListBucket"], [state_arn],
                        conditions={"StringLike": {"s3:prefix": [prefix, under] if prefix else ["*"]}}),
        PolicyStatement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], [f"{state_arn}/{under}"]),
        PolicyStatement(["eks:DescribeCluster"], [cluster_arn]),
        # CodeBuild in a VPC makes its own network interfaces; these calls take only "*" (CodeBuild user
        # guide, "Allow CodeBuild access to AWS services required to create a VPC network interface").
        PolicyStatement(
            ["ec2:CreateNetworkInterface", "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces",
             "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"],
            ["*"],
        ),
        PolicyStatement(
            ["ec2:CreateNetworkInterfacePermission"],
            [f"arn:{partition}:ec2:{region}:{account_id}:network-interface/*"],
            conditions={"StringEquals": {"ec2:AuthorizedService": CODEBUILD_PRINCIPAL},
                        "ArnEquals": {"ec2:Subnet": subnet_arns}},
        ),
    ]
    if secrets_kms_key_arn is not None:
        statements.append(PolicyStatement(["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], [secrets_kms_key_arn]))
    return statements


def codebuild_trust_policy(account_id: str) -> str:
    """CodeBuild may assume the role for this account's projects only (confused-deputy guard)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": CODEBUILD_PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }],
    }, sort_keys=True)


@dataclass
class DeployRunnerArgs:
    environment: str
    cluster_name: str
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    """Private subnets: the build's network interfaces go there and leave through the NAT gateways."""
    cluster_security_group_id: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    state_backend: str
    pulumi_version: str
    """The CLI version the build installs: the locked Python SDK's, as the PR workflow pins it."""
    secrets_kms_key_arn: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("environment", "cluster_name", "region", "pulumi_version"):
            if not getattr(self, name):
                raise ValueError(f"DeployRunnerArgs.{name}: required")
        try:
            state_location(self.state_backend)
        except ValueError as error:
            raise ValueError(f"DeployRunnerArgs.state_backend: {error}") from None


class DeployRunner(pulumi.ComponentResource):
    """Security group (admitted to the API on 443), source bucket, log group, role, access entry, project."""

    project_name: pulumi.Output[str]
    source_bucket: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:aws:DeployRunner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = self._network(name, args)
        bucket = self._source_bucket(name, args)
        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/codebuild/{args.cluster_name}-workloads",
                                            retention_in_days=LOG_RETENTION_DAYS, tags=args.tags, opts=child)
        role = self._role(name, args, log_group.arn, bucket.arn)
        access = aws.eks.AccessEntry(f"{name}-access", cluster_name=args.cluster_name, principal_arn=role.arn,
                                     type="STANDARD", tags=args.tags, opts=child)
        admin = aws.eks.AccessPolicyAssociation(
            f"{name}-admin", cluster_name=args.cluster_name, principal_arn=role.arn, policy_arn=CLUSTER_ADMIN_POLICY,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access]),
        )
        project = aws.codebuild.Project(
            f"{name}-project",
            name=f"{args.cluster_name}-workloads",
            description=f"pulumi preview/up of stack {workloads_stack(args.environment)} from inside the VPC",
            service_role=role.arn,
            build_timeout=BUILD_TIMEOUT_MINUTES,
            source=aws.codebuild.ProjectSourceArgs(
                type="S3", location=bucket.bucket.apply(lambda b: f"{b}/unset.tgz"), buildspec=buildspec(args.environment)
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER", compute_type=COMPUTE_TYPE, image=BUILD_IMAGE,
                image_pull_credentials_type="CODEBUILD",
                environment_variables=[
                    aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(name=key, value=value)
                    for key, value in (
                        ("PULUMI_VERSION", args.pulumi_version),
                        ("PULUMI_BACKEND_URL", args.state_backend),
                        ("INFERFLEET_SECRETS_PROVIDER", secrets_provider(args.secrets_kms_key_arn)),
                        ("INFERFLEET_COMMAND", "preview"),
                    )
                ],
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.vpc_id, subnets=args.subnet_ids, security_group_ids=[group.id]
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(group_name=log_group.name)
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[admin]),
        )
        self.project_name = project.name
        self.source_bucket = bucket.bucket
        self.log_group_name = log_group.name
        self.role_arn = role.arn
        self.security_group_id = group.id
        self.register_outputs({"projectName": self.project_name, "sourceBucket": self.source_bucket,
                               "logGroupName": self.log_group_name, "roleArn": self.role_arn})

    def _network(self, name: str, args: DeployRunnerArgs) -> aws.ec2.SecurityGroup:
        """The build's security group (no ingress; egress for packages and the APIs) and the cluster security
        group's rule that admits it to the API server, the one door a private endpoint has."""
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args.vpc_id, description=f"inferfleet {args.environment} deploy runner (CodeBuild)",
            egress=[aws.ec2.SecurityGroupEgressArgs(protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"],
                                                    description="packages, charts and AWS APIs through the NAT")],
            tags=named(args.tags, f"{args.cluster_name}-deploy-runner"), opts=pulumi.ResourceOptions(parent=self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-access", security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=group.id, ip_protocol="tcp", from_port=API_PORT, to_port=API_PORT,
            description="the deploy runner reaches the Kubernetes API", tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group

    def _source_bucket(self, name: str, args: DeployRunnerArgs) -> aws.s3.Bucket:
        """Where scripts/workloads.sh uploads the commit it runs: private, encrypted, versioned, TLS only, each
        bundle kept a week. Named by cluster and account (bucket names are global, and policies match a
        bucket's settings by its name)."""
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        bucket = aws.s3.Bucket(f"{name}-sources", bucket=account.apply(lambda a: source_bucket_name(args.cluster_name, a)),
                               force_destroy=True, tags=args.tags, opts=child)
        blocked = aws.s3.BucketPublicAccessBlock(
            f"{name}-sources-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        encrypted = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sources-encryption", bucket=bucket.id,
            # SSE-KMS with the account's AWS managed key for S3: its key policy lets the account's principals
            # use it through S3, so neither the uploader nor the build needs a KMS grant.
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms"), bucket_key_enabled=True)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blocked]))
        versioned = aws.s3.BucketVersioning(
            f"{name}-sources-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encrypted]))
        expiry = aws.s3.BucketLifecycleConfiguration(
            f"{name}-sources-lifecycle", bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-source-bundles", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=SOURCE_EXPIRY_DAYS),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=SOURCE_EXPIRY_DAYS))],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioned]))
        aws.s3.BucketPolicy(f"{name}-sources-policy", bucket=bucket.id, policy=bucket.arn.apply(tls_only_policy),
                            opts=pulumi.ResourceOptions(parent=self, depends_on=[blocked, expiry]))
        return bucket

    def _role(self, name: str, args: DeployRunnerArgs, log_group_arn: pulumi.Output[str],
              bucket_arn: pulumi.Output[str]) -> aws.iam.Role:
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition
        role = aws.iam.Role(f"{name}-role", assume_role_policy=caller.account_id.apply(codebuild_trust_policy),
                            tags=args.tags, opts=pulumi.ResourceOptions(parent=self), **role_name_args(f"{name}-role"))
        policy = pulumi.Output.all(partition, caller.account_id, log_group_arn, bucket_arn, args.cluster_arn,
                                   args.subnet_ids).apply(lambda v: policy_json(runner_statements(
            partition=v[0], region=args.region, account_id=v[1], log_group_arn=v[2], source_bucket_arn=v[3],
            state_backend=args.state_backend, secrets_kms_key_arn=args.secrets_kms_key_arn, cluster_arn=v[4],
            subnet_ids=list(v[5]))))
        aws.iam.RolePolicy(f"{name}-policy", role=role.name, policy=policy, opts=pulumi.ResourceOptions(parent=self))
        return role
