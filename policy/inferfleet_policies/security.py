"""Security policies: who can reach the cluster and the nodes, what is encrypted, what containers may do."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from .common import (
    CONFIG_GROUP,
    EKS_CLUSTER,
    IAM_POLICY,
    IAM_ROLE,
    IAM_ROLE_POLICY,
    INGRESS_RULE,
    LAUNCH_TEMPLATE,
    S3_BUCKET,
    S3_BUCKET_V2,
    S3_ENCRYPTION,
    S3_PUBLIC_ACCESS_BLOCK,
    S3_VERSIONING,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    Resource,
    as_list,
    containers_of,
    is_prod,
    object_id,
    objects_of,
    pod_templates,
    policy_statements,
    requests_gpu,
    tags_of,
    truthy,
)
from .framework import resource_policy, stack_policy

OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
GATEWAY_LOAD_BALANCER_TAG = ("inferfleet.io/role", "gateway-load-balancer")
"""The one kind of security group that may take traffic from anywhere: the gateway's load balancer."""
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
SECRET_ENV_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY)", re.IGNORECASE)
SECRET_FILE_ENV_SUFFIXES = ("_PATH", "_FILE")
"""`HF_TOKEN_PATH=/var/run/secrets/...` names where a mounted Secret is, not the secret itself."""
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
ALL_CAPABILITIES = "ALL"

GPU_CONTAINER_EXCEPTIONS = {
    "runAsNonRoot": "the upstream vLLM, Triton and Ray images run as root and write their caches under /root; "
                    "the GPU pods are isolated on tainted GPU nodes",
    "capabilities.drop": "the NVIDIA container runtime and NCCL need the default capability set on GPU nodes",
}
"""Checks GPU serving containers are exempt from, each with its reason (the issue asks for the list)."""
ROOT_ALLOWED_CONTAINERS = {
    "fetch-weights": "the weight-cache init container writes the node's cache directory, a hostPath the kubelet "
                     "creates owned by root (components/manifests/serving.py); it still drops every capability "
                     "and cannot escalate, so root there owns only that directory",
}
"""Non-GPU containers allowed to run as root (only that: they must still drop ALL and not escalate), by
container name, each with its reason."""


# --- EKS -------------------------------------------------------------------------------------------

def eks_endpoint_private(_type: str, props: Mapping[str, Any], config: Mapping[str, Any], _args: Any) -> Iterator[str]:
    """In prod the EKS API endpoint is private, or public only to listed CIDRs: a public control plane
    is one leaked credential away from the whole fleet."""
    if not is_prod(config):
        return
    vpc = props.get("vpcConfig") or {}
    if vpc.get("endpointPublicAccess") is False:
        return
    cidrs = set(as_list(vpc.get("publicAccessCidrs")))
    if not cidrs or cidrs & OPEN_CIDRS:
        yield "the EKS API endpoint is public to the internet; make it private or restrict publicAccessCidrs"


def eks_secrets_encrypted(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Kubernetes Secrets (the Hugging Face token among them) are envelope-encrypted with a KMS key, so
    an etcd snapshot alone does not reveal them."""
    encryption = props.get("encryptionConfig") or {}
    if "secrets" not in as_list(encryption.get("resources")) or not (encryption.get("provider") or {}).get("keyArn"):
        yield "the cluster does not encrypt Secrets with a KMS key (encryptionConfig.resources: [secrets])"


# --- EC2 -------------------------------------------------------------------------------------------

def imdsv2_required(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """GPU nodes require IMDSv2 session tokens: IMDSv1 lets any SSRF in a pod read the node role's credentials."""
    if (props.get("metadataOptions") or {}).get("httpTokens") != "required":
        yield "metadataOptions.httpTokens must be 'required' (IMDSv2)"


def ebs_encrypted(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Every EBS volume of a launch template is encrypted: root volumes hold cached model weights and logs."""
    for mapping in props.get("blockDeviceMappings") or []:
        ebs = mapping.get("ebs")
        if ebs is not None and not truthy(ebs.get("encrypted")):
            yield f"EBS volume {mapping.get('deviceName')} is not encrypted"


def _open_cidrs(rule: Mapping[str, Any]) -> set[str]:
    return ({*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks")),
             *as_list(rule.get("cidrIpv4")), *as_list(rule.get("cidrIpv6"))} & OPEN_CIDRS)


def no_open_ingress(resource_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """No security group admits traffic from 0.0.0.0/0 or ::/0, except the gateway's load balancer
    (tagged inferfleet.io/role=gateway-load-balancer): everything else is reached through it."""
    key, value = GATEWAY_LOAD_BALANCER_TAG
    if tags_of(props).get(key) == value:
        return
    if resource_type == SECURITY_GROUP:
        rules = props.get("ingress") or []
    elif resource_type == SECURITY_GROUP_RULE:
        rules = [props] if props.get("type") == "ingress" else []
    else:
        rules = [props]
    for rule in rules:
        if cidrs := _open_cidrs(rule):
            yield f"ingress from {', '.join(sorted(cidrs))} on ports {rule.get('fromPort')}-{rule.get('toPort')}"


# --- IAM -------------------------------------------------------------------------------------------

def _wildcard_statements(document: Any) -> Iterator[str]:
    for statement in policy_statements(document):
        if statement.get("Effect", "Allow") == "Allow" and "*" in as_list(statement.get("Action")):
            yield f"statement {statement.get('Sid') or ''} allows Action '*'".replace("  ", " ")


def iam_no_wildcard_action(resource_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """No IAM statement allows Action "*": every role is scoped to the calls its workload makes, so a
    compromised pod cannot become an account administrator."""
    if resource_type == IAM_ROLE:
        documents = [p.get("policy") for p in props.get("inlinePolicies") or []]
    else:
        documents = [props.get("policy")]
    for document in documents:
        yield from _wildcard_statements(document)


# --- S3 --------------------------------------------------------------------------------------------

def _bucket_names(resources: list[Resource]) -> dict[str, str]:
    """Bucket name -> urn of every bucket the stack creates."""
    return {str(r.props.get("bucket") or r.name): r.urn for r in resources if r.type in (S3_BUCKET, S3_BUCKET_V2)}


def _settings_by_bucket(resources: list[Resource], resource_type: str) -> dict[str, Mapping[str, Any]]:
    return {str(r.props.get("bucket")): r.props for r in resources if r.type == resource_type}


def s3_encrypted(resources: list[Resource], _config: Any) -> Iterator[tuple[str, str | None]]:
    """Every bucket has default server-side encryption: it holds model weights, some under licence."""
    settings = _settings_by_bucket(resources, S3_ENCRYPTION)
    for bucket, urn in _bucket_names(resources).items():
        rules = (settings.get(bucket) or {}).get("rules") or []
        if not any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") for rule in rules):
            yield f"bucket {bucket} has no default server-side encryption", urn


def s3_versioned(resources: list[Resource], _config: Any) -> Iterator[tuple[str, str | None]]:
    """Every bucket is versioned: an overwritten or deleted checkpoint can be recovered."""
    settings = _settings_by_bucket(resources, S3_VERSIONING)
    for bucket, urn in _bucket_names(resources).items():
        status = ((settings.get(bucket) or {}).get("versioningConfiguration") or {}).get("status")
        if status != "Enabled":
            yield f"bucket {bucket} is not versioned", urn


def s3_public_access_blocked(resources: list[Resource], _config: Any) -> Iterator[tuple[str, str | None]]:
    """Every bucket blocks public ACLs and policies (all four flags): weights are read through IRSA only."""
    settings = _settings_by_bucket(resources, S3_PUBLIC_ACCESS_BLOCK)
    for bucket, urn in _bucket_names(resources).items():
        block = settings.get(bucket) or {}
        missing = [flag for flag in PUBLIC_ACCESS_FLAGS if block.get(flag) is not True]
        if missing:
            yield f"bucket {bucket} does not block public access ({', '.join(missing)})", urn


# --- Kubernetes containers -------------------------------------------------------------------------

def _containers(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(workload/container, container, pod spec) for every container of every workload in a ConfigGroup."""
    for obj in objects_of(props):
        for template in pod_templates(obj):
            for container in containers_of(template.spec):
                yield f"{template.owner}/{container.get('name')}", container, template.spec


def images_pinned_by_digest(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Every container image is pinned by digest (`image@sha256:...`): a tag can be moved to other
    bytes, so what was reviewed would not be what runs."""
    for where, container, _spec in _containers(props):
        if not DIGEST.search(str(container.get("image", ""))):
            yield f"{where}: image {container.get('image')} is not pinned by digest"


def _security_context_problems(container: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> list[str]:
    context = container.get("securityContext") or {}
    pod_context = pod_spec.get("securityContext") or {}
    gpu = requests_gpu(container)
    problems = []
    if context.get("privileged") is True:
        problems.append("runs privileged")
    if context.get("allowPrivilegeEscalation") is not False and not gpu:
        problems.append("allows privilege escalation")
    run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if run_as_non_root is not True and not gpu and container.get("name") not in ROOT_ALLOWED_CONTAINERS:
        problems.append("may run as root")
    dropped = {str(c).upper() for c in as_list((context.get("capabilities") or {}).get("drop"))}
    if ALL_CAPABILITIES not in dropped and not gpu:
        problems.append("does not drop ALL capabilities")
    return problems


def container_security_context(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Containers run as non-root, without privilege escalation, dropping all capabilities, and never
    privileged: a compromised process stays inside its container. GPU serving containers are exempt
    from the first three (see GPU_CONTAINER_EXCEPTIONS for why), the weight-cache init container from the
    first (ROOT_ALLOWED_CONTAINERS), none from `privileged`."""
    for where, container, pod_spec in _containers(props):
        for problem in _security_context_problems(container, pod_spec):
            yield f"{where} {problem}"


def tokens_from_secrets(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Tokens, passwords and keys reach containers only through Secret references, never as plain env
    values: a plain value is readable by anyone who can read the Deployment, and sits in Pulumi state."""
    for where, container, _spec in _containers(props):
        for env in container.get("env") or []:
            name = str(env.get("name", ""))
            if SECRET_ENV_NAME.search(name) and not name.upper().endswith(SECRET_FILE_ENV_SUFFIXES) and "value" in env:
                yield f"{where}: env {env.get('name')} is a plain value; use valueFrom.secretKeyRef"


TRUSTED_MODELS_KEY = "trustedRemoteCodeModels"
TRITON_VLLM_ENGINE_FILE = "model.json"
REMOTE_CODE_FLAG = "--trust-remote-code"


def _flag_value(args: list[Any], flag: str) -> str | None:
    return str(args[args.index(flag) + 1]) if flag in args and args.index(flag) + 1 < len(args) else None


def _json_or_empty(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_trusted(model: str, trusted: set[str]) -> bool:
    """A model is listed by its Hugging Face id; a node-cache path (`<cache>/<id>/<revision>`) is the id it holds."""
    return model in trusted or any(f"/{name}/" in model for name in trusted)


def remote_code_models(obj: Mapping[str, Any]) -> Iterator[str]:
    """Models an object serves with trust-remote-code: a vLLM server's `--trust-remote-code` (its model is the
    `--served-model-name`), Triton's vLLM backend `model.json`, and a Ray Serve LLM config's
    `engine_kwargs.trust_remote_code`."""
    for template in pod_templates(obj):
        for container in containers_of(template.spec):
            args = [*as_list(container.get("command")), *as_list(container.get("args"))]
            if REMOTE_CODE_FLAG in args:
                yield _flag_value(args, "--served-model-name") or _flag_value(args, "--model") or "(unnamed model)"
    if obj.get("kind") == "ConfigMap":
        engine = _json_or_empty((obj.get("data") or {}).get(TRITON_VLLM_ENGINE_FILE))
        if truthy(engine.get("trust_remote_code")):
            yield str(engine.get("model") or "(unnamed model)")
    config = (obj.get("spec") or {}).get("serveConfigV2") if obj.get("kind") == "RayService" else None
    if isinstance(config, str):
        for application in (yaml.safe_load(config) or {}).get("applications") or []:
            for llm in ((application.get("args") or {}).get("llm_configs") or []):
                if truthy((llm.get("engine_kwargs") or {}).get("trust_remote_code")):
                    yield str((llm.get("model_loading_config") or {}).get("model_id") or "(unnamed model)")


def trust_remote_code(_type: str, props: Mapping[str, Any], config: Mapping[str, Any], _args: Any) -> Iterator[str]:
    """A model served with trust-remote-code runs Python from its repository inside the engine, with the pod's
    access to the node's GPUs and the model's credentials: only for models the config lists as reviewed
    (`trustedRemoteCodeModels`). Advisory in dev, mandatory in prod."""
    trusted = set(as_list(config.get(TRUSTED_MODELS_KEY)))
    for obj in objects_of(props):
        for model in dict.fromkeys(remote_code_models(obj)):
            if not _is_trusted(model, trusted):
                yield (f"{object_id(obj)} serves {model} with trust-remote-code, which runs the model repository's "
                       f"code; review it and list the model in {TRUSTED_MODELS_KEY}, or drop the flag")


POLICIES = [
    resource_policy("eks-endpoint-private", (EKS_CLUSTER,), eks_endpoint_private),
    resource_policy("eks-secrets-encrypted", (EKS_CLUSTER,), eks_secrets_encrypted),
    resource_policy("imdsv2-required", (LAUNCH_TEMPLATE,), imdsv2_required),
    resource_policy("ebs-encrypted", (LAUNCH_TEMPLATE,), ebs_encrypted),
    resource_policy("no-open-ingress", (SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE), no_open_ingress),
    resource_policy("iam-no-wildcard-action", (IAM_ROLE, IAM_ROLE_POLICY, IAM_POLICY), iam_no_wildcard_action),
    stack_policy("s3-encrypted", s3_encrypted),
    stack_policy("s3-versioned", s3_versioned),
    stack_policy("s3-public-access-blocked", s3_public_access_blocked),
    resource_policy("images-pinned-by-digest", (CONFIG_GROUP,), images_pinned_by_digest),
    resource_policy("container-security-context", (CONFIG_GROUP,), container_security_context),
    resource_policy("tokens-from-secrets", (CONFIG_GROUP,), tokens_from_secrets),
    resource_policy("trust-remote-code-reviewed", (CONFIG_GROUP,), trust_remote_code,
                    {TRUSTED_MODELS_KEY: {"type": "array", "items": {"type": "string"}}}),
]
