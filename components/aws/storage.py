"""Where model weights and serving images live.

Weights are expensive to recreate (download quotas, fine-tunes nobody kept elsewhere), so each
bucket and the KMS key that encrypts it are protected: `pulumi destroy` stops at them until someone
lifts the protection on purpose. A deleted key would make every object unreadable, so the key is
protected like the bucket.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.manifests.image_builds import GATE_KEY
from components.manifests.serving import s3_location
from components.spec.limits import bucket_name_problem
from components.spec.models import StackSpec
from components.spec.naming import BUCKET_NAME_MAX, cluster_name, fit

KMS_DELETION_WINDOW_DAYS = 30
UNTAGGED_IMAGE_EXPIRY_DAYS = 14
INCOMPLETE_UPLOAD_EXPIRY_DAYS = 7
"""Multipart parts of a failed weight upload are billed until aborted; tens of GB per try."""
IMAGE_TAG_MUTABILITY = "IMMUTABLE"
OBJECT_OWNERSHIP = "BucketOwnerEnforced"

_REPOSITORY_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")


def default_bucket_name(environment: str) -> str:
    return fit(f"{cluster_name(environment)}-models", BUCKET_NAME_MAX)


def model_buckets(spec: StackSpec) -> list[str]:
    """Distinct S3 buckets the services' weights come from, in spec order; the environment's default
    bucket when no service reads from S3, so there is always a place to upload weights to."""
    buckets: list[str] = []
    for service in spec.services:
        location = s3_location(service)
        if location and location[0] not in buckets:
            buckets.append(location[0])
    return buckets or [default_bucket_name(spec.environment)]


def image_repositories(spec: StackSpec) -> list[str]:
    """One ECR repository per serving engine in use, in spec order, and the deploy gate's when it runs."""
    engines = [service.engine for service in spec.services]
    if spec.images.build and spec.deploy_gate.enabled:
        engines.append(GATE_KEY)
    return [repository_name(spec.environment, engine) for engine in dict.fromkeys(engines)]


def repository_name(environment: str, engine: str) -> str:
    """The ECR repository of an engine's (or the gate's) image in an environment."""
    return f"inferfleet/{environment}/{engine}"


def tls_only_policy(bucket_arn: str) -> str:
    """Refuse every request that does not arrive over TLS, whoever sends it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        },
        sort_keys=True,
    )


def untagged_expiry_policy(days: int = UNTAGGED_IMAGE_EXPIRY_DAYS) -> str:
    """Tags are immutable, so untagged images are only build leftovers; nothing can reference them by tag."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": days,
                    },
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


def _logical(name: str) -> str:
    """A bucket or repository name as the tail of a logical name: no slashes or dots."""
    return re.sub(r"[./]", "-", name)


@dataclass
class ModelStorageArgs:
    environment: str
    bucket_names: list[str]
    repositories: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_spec(cls, spec: StackSpec, tags: dict[str, str]) -> ModelStorageArgs:
        return cls(
            environment=spec.environment,
            bucket_names=model_buckets(spec),
            repositories=image_repositories(spec),
            tags=dict(tags),
        )

    def validate(self) -> None:
        if not self.environment:
            raise ValueError("ModelStorageArgs.environment: required")
        if not self.bucket_names:
            raise ValueError("ModelStorageArgs.bucket_names: at least one bucket is required")
        for names, label in ((self.bucket_names, "bucket_names"), (self.repositories, "repositories")):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"ModelStorageArgs.{label}: {', '.join(duplicates)} listed more than once")
        for bucket in self.bucket_names:
            problem = bucket_name_problem(bucket)
            if problem:
                raise ValueError(f"ModelStorageArgs.bucket_names: {bucket!r}: {problem}")
        for repository in self.repositories:
            if not 2 <= len(repository) <= 256 or not _REPOSITORY_NAME.match(repository):
                raise ValueError(
                    f"ModelStorageArgs.repositories: {repository!r} is not an ECR repository name "
                    "(lowercase path segments of letters, digits and . _ -)"
                )


class ModelStorage(pulumi.ComponentResource):
    """Private, versioned, KMS-encrypted weight buckets reachable over TLS only, and immutable,
    scanned image repositories."""

    bucket_names: list[str]
    bucket_arns: dict[str, pulumi.Output[str]]
    kms_key_arns: dict[str, pulumi.Output[str]]
    """Per bucket name: readers need kms:Decrypt on it as well as s3:GetObject."""
    repository_urls: dict[str, pulumi.Output[str]]
    buckets: dict[str, aws.s3.Bucket]
    repositories: dict[str, aws.ecr.Repository]

    def __init__(self, name: str, args: ModelStorageArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("inferfleet:aws:ModelStorage", name, None, opts)
        self.bucket_names = list(args.bucket_names)
        self.buckets = {}
        self.bucket_arns = {}
        self.kms_key_arns = {}
        for bucket_name in args.bucket_names:
            bucket, key = self._bucket(f"{name}-{_logical(bucket_name)}", bucket_name, args)
            self.buckets[bucket_name] = bucket
            self.bucket_arns[bucket_name] = bucket.arn
            self.kms_key_arns[bucket_name] = key.arn

        self.repositories = {}
        self.repository_urls = {}
        for repository_name in args.repositories:
            repository = self._repository(f"{name}-{_logical(repository_name)}", repository_name, args)
            self.repositories[repository_name] = repository
            self.repository_urls[repository_name] = repository.repository_url

        self.register_outputs(
            {
                "bucketNames": self.bucket_names,
                "bucketArns": self.bucket_arns,
                "kmsKeyArns": self.kms_key_arns,
                "repositoryUrls": self.repository_urls,
            }
        )

    def _bucket(self, logical: str, bucket_name: str, args: ModelStorageArgs) -> tuple[aws.s3.Bucket, aws.kms.Key]:
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        key = aws.kms.Key(
            f"{logical}-key",
            description=f"Encryption of model weights in s3://{bucket_name}",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        aws.kms.Alias(
            f"{logical}-key-alias",
            name=f"alias/{_logical(bucket_name)}",
            target_key_id=key.key_id,
            opts=child,
        )
        bucket = aws.s3.Bucket(
            logical,
            bucket=bucket_name,
            force_destroy=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        # S3 answers OperationAborted to concurrent configuration calls on one bucket: chain them.
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{logical}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{logical}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=OBJECT_OWNERSHIP),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{logical}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    # One data key per bucket instead of per object: KMS calls (and cost) drop by orders
                    # of magnitude when a node pulls thousands of weight shards.
                    bucket_key_enabled=True,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ownership]),
        )
        versioning = aws.s3.BucketVersioning(
            f"{logical}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[encryption]),
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{logical}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=INCOMPLETE_UPLOAD_EXPIRY_DAYS
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{logical}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, lifecycle]),
        )
        return bucket, key

    def _repository(self, logical: str, repository_name: str, args: ModelStorageArgs) -> aws.ecr.Repository:
        repository = aws.ecr.Repository(
            logical,
            name=repository_name,
            image_tag_mutability=IMAGE_TAG_MUTABILITY,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            # KMS with the AWS managed key aws/ecr, whose grants ECR looks after itself.
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            force_delete=False,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{logical}-lifecycle",
            repository=repository.name,
            policy=untagged_expiry_policy(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repository
