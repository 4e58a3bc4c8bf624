"""Model storage under the recording mocks: protected, private, versioned, KMS-encrypted, TLS-only
buckets; immutable, scanned image repositories; tags everywhere."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

import pulumi
import pytest

from components.aws.storage import ModelStorage, ModelStorageArgs, model_buckets
from components.aws.tags import stack_tags
from components.spec import read_spec
from tests.infra.conftest import of_type, run_under_mocks

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
BUCKET_SUBRESOURCES = (ENCRYPTION, VERSIONING, PUBLIC_ACCESS, OWNERSHIP, POLICY)


@cache
def spec(env: str):
    return read_spec(f"stacks/{env}.yaml").spec


def with_uris(env: str, *uris: str):
    """The example stack with its services' model URIs replaced, in order."""
    stack = spec(env)
    services = [
        service.model_copy(update={"model": service.model.model_copy(update={"uri": uri})})
        for service, uri in zip(stack.services, uris, strict=True)
    ]
    return stack.model_copy(update={"services": services})


@cache
def recorded(env: str = "prod"):
    args = ModelStorageArgs.from_spec(spec(env), stack_tags(spec(env)))
    return run_under_mocks(lambda: ModelStorage(f"{env}-storage", args), stack=env)


@cache
def recorded_two_buckets():
    stack = with_uris(
        "prod",
        "s3://inferfleet-prod-models/meta-llama/Llama-3.1-70B-Instruct",
        "s3://team-rag-weights/Qwen/Qwen2.5-32B-Instruct",
        "s3://inferfleet-prod-models/BAAI/bge-reranker-v2-m3",
    )
    args = ModelStorageArgs.from_spec(stack, stack_tags(stack))
    return run_under_mocks(lambda: ModelStorage("prod-storage", args))


def taggable(token: str) -> bool:
    """Whether the pulumi-aws resource takes `tags`: asked of the SDK, not listed by hand."""
    if not token.startswith("aws:"):
        return False
    _, module, kind = token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), kind, None)
    return cls is not None and "tags" in inspect.signature(cls._internal_init).parameters


def only(resources, token):
    (resource,) = of_type(resources, token)
    return resource


def test_prod_has_one_protected_bucket_named_for_the_environment():
    resources = recorded()
    bucket = only(resources, BUCKET)
    assert bucket.inputs["bucket"] == "inferfleet-prod-models"
    assert bucket.options["protect"] is True
    assert bucket.inputs.get("forceDestroy") is False


def test_bucket_is_kms_encrypted_with_its_own_rotated_protected_key_and_a_bucket_key():
    resources = recorded()
    key, bucket = only(resources, KEY), only(resources, BUCKET)
    assert key.inputs["enableKeyRotation"] is True
    assert key.options["protect"] is True
    encryption = only(resources, ENCRYPTION)
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].startswith("arn:aws:kms:")
    assert rule["bucketKeyEnabled"] is True
    assert {key.urn, bucket.urn} <= set(encryption.options["dependsOn"])


def test_bucket_is_versioned_private_owner_enforced_and_tls_only():
    resources = recorded()
    assert only(resources, VERSIONING).inputs["versioningConfiguration"] == {"status": "Enabled"}
    block = only(resources, PUBLIC_ACCESS).inputs
    assert [block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")] == [
        True
    ] * 4
    assert only(resources, OWNERSHIP).inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (statement,) = json.loads(only(resources, POLICY).inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == ["arn:aws:s3:::inferfleet-prod-models", "arn:aws:s3:::inferfleet-prod-models/*"]


def test_every_bucket_setting_targets_the_bucket():
    resources = recorded()
    bucket = only(resources, BUCKET)
    for token in BUCKET_SUBRESOURCES:
        resource = only(resources, token)
        assert resource.inputs["bucket"] == "inferfleet-prod-models", token
        assert bucket.urn in resource.options["dependsOn"], token


def test_one_immutable_scanned_kms_encrypted_repository_per_engine_with_untagged_expiry():
    resources = recorded()
    repositories = of_type(resources, REPOSITORY)
    assert sorted(r.inputs["name"] for r in repositories) == [
        "inferfleet/prod/gate",  # the deploy gate's image (prod builds its images and gates its rollouts)
        "inferfleet/prod/ray-serve",
        "inferfleet/prod/triton",
        "inferfleet/prod/vllm",
    ]
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository.inputs["encryptionConfigurations"][0]["encryptionType"] == "KMS"
    policies = of_type(resources, LIFECYCLE_POLICY)
    assert sorted(p.inputs["repository"] for p in policies) == sorted(r.inputs["name"] for r in repositories)
    for policy in policies:
        (rule,) = json.loads(policy.inputs["policy"])["rules"]
        assert rule["selection"] == {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 14,
        }
        assert rule["action"] == {"type": "expire"}


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_every_taggable_resource_has_the_stack_tags(env):
    expected = stack_tags(spec(env))
    checked = [r for r in recorded(env) if r.custom and taggable(r.type)]
    assert {r.type for r in checked} >= {BUCKET, KEY, REPOSITORY}
    for resource in checked:
        assert expected.items() <= (resource.inputs.get("tags") or {}).items(), resource.name


def test_dev_gets_its_own_bucket_and_only_the_engine_it_uses():
    resources = recorded("dev")
    assert only(resources, BUCKET).inputs["bucket"] == "inferfleet-dev-models"
    assert [r.inputs["name"] for r in of_type(resources, REPOSITORY)] == ["inferfleet/dev/vllm"]


def test_services_on_two_buckets_get_two_buckets_each_with_its_own_key_and_settings():
    resources = recorded_two_buckets()
    buckets = {b.inputs["bucket"]: b for b in of_type(resources, BUCKET)}
    assert set(buckets) == {"inferfleet-prod-models", "team-rag-weights"}
    keys = {k.name: k for k in of_type(resources, KEY)}
    assert len(keys) == 2
    for name, bucket in buckets.items():
        assert bucket.options["protect"] is True
        own_key = keys[f"{bucket.name}-key"]
        for token in BUCKET_SUBRESOURCES:
            (setting,) = [r for r in of_type(resources, token) if r.inputs["bucket"] == name]
            assert bucket.urn in setting.options["dependsOn"], (name, token)
        (encryption,) = [r for r in of_type(resources, ENCRYPTION) if r.inputs["bucket"] == name]
        assert [u for u in encryption.options["dependsOn"] if "kms/key" in u] == [own_key.urn]


def test_bucket_names_follow_spec_order_and_default_when_no_service_reads_from_s3():
    two = with_uris("prod", "s3://b-bucket/x", "s3://a-bucket/y", "s3://b-bucket/z")
    assert model_buckets(two) == ["b-bucket", "a-bucket"]
    hugging_face = with_uris("dev", "hf://meta-llama/Llama-3.1-8B-Instruct")
    args = ModelStorageArgs.from_spec(hugging_face, {})
    assert args.bucket_names == ["inferfleet-dev-models"]
    no_services = spec("dev").model_copy(update={"services": []})
    empty = ModelStorageArgs.from_spec(no_services, {})
    assert (empty.bucket_names, empty.repositories) == (["inferfleet-dev-models"], [])


def test_outputs_are_keyed_by_bucket_and_repository_name():
    seen: dict[str, object] = {}

    def build():
        storage = ModelStorage("prod-storage", ModelStorageArgs.from_spec(spec("prod"), {}))
        assert storage.bucket_names == ["inferfleet-prod-models"]
        assert set(storage.bucket_arns) == set(storage.kms_key_arns) == {"inferfleet-prod-models"}
        assert set(storage.repository_urls) == {f"inferfleet/prod/{e}" for e in ("vllm", "ray-serve", "triton", "gate")}
        storage.bucket_arns["inferfleet-prod-models"].apply(lambda arn: seen.setdefault("bucket", arn))
        storage.kms_key_arns["inferfleet-prod-models"].apply(lambda arn: seen.setdefault("key", arn))
        pulumi.Output.all(*storage.repository_urls.values()).apply(lambda urls: seen.setdefault("urls", urls))

    run_under_mocks(build)
    assert seen["bucket"] == "arn:aws:s3:::inferfleet-prod-models"
    assert str(seen["key"]).startswith("arn:aws:kms:us-east-1:")
    assert all(".dkr.ecr.us-east-1.amazonaws.com/inferfleet/prod/" in url for url in seen["urls"])


def test_children_are_parented_and_named_after_the_component():
    resources = recorded()
    (component,) = of_type(resources, "inferfleet:aws:ModelStorage")
    for resource in resources:
        if resource is not component:
            assert resource.parent == component.urn, resource.name
            assert resource.name.startswith("prod-storage-"), resource.name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bucket_names": []}, "ModelStorageArgs.bucket_names: at least one"),
        ({"bucket_names": ["Models"]}, "ModelStorageArgs.bucket_names: 'Models'"),
        ({"bucket_names": ["a..b-models"]}, "ModelStorageArgs.bucket_names: 'a..b-models': no two adjacent"),
        ({"bucket_names": ["192.168.1.10"]}, "ModelStorageArgs.bucket_names: .*IP address"),
        ({"bucket_names": ["m-models", "m-models"]}, "ModelStorageArgs.bucket_names: m-models listed more than once"),
        ({"repositories": ["inferfleet//vllm"]}, "ModelStorageArgs.repositories: 'inferfleet//vllm'"),
        ({"repositories": ["r/x", "r/x"]}, "ModelStorageArgs.repositories: r/x listed more than once"),
        ({"environment": ""}, "ModelStorageArgs.environment"),
    ],
)
def test_invalid_args_raise_a_value_error_naming_the_input(overrides, message):
    fields = dict(environment="prod", bucket_names=["inferfleet-prod-models"], repositories=["inferfleet/prod/vllm"])
    fields.update(overrides)
    with pytest.raises(ValueError, match=message):
        ModelStorageArgs(**fields)


def test_the_component_revalidates_args_changed_after_construction():
    args = ModelStorageArgs.from_spec(spec("prod"), {})
    args.bucket_names = []
    with pytest.raises(ValueError, match="ModelStorageArgs.bucket_names"):
        ModelStorage("prod-storage", args)
