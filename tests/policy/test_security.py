"""Security policies: each fires on a changed render and stays silent on the example stacks."""

from __future__ import annotations

import json

import yaml

from components.stack import load_stack
from components.policy_runner import evaluate
from components.render import render
from tests.policy.conftest import objects

LT = "aws:ec2/launchTemplate:LaunchTemplate"
EKS = "aws:eks/cluster:Cluster"
CG = "kubernetes:yaml/v2:ConfigGroup"
DIGEST = "@sha256:" + "0" * 64

SILENT_IN_PROD = ["eks-endpoint-private", "eks-secrets-encrypted", "imdsv2-required", "ebs-encrypted",
                  "no-open-ingress", "iam-no-wildcard-action", "s3-encrypted", "s3-versioned",
                  "s3-public-access-blocked", "tokens-from-secrets"]


def test_example_prod_passes_every_security_rule_but_digests(prod):
    for policy in SILENT_IN_PROD:
        assert prod.violations(policy) == [], policy


def test_public_endpoint_in_prod_fires(prod, tmp_path):
    data = yaml.safe_load(open("stacks/prod.yaml"))
    data["cluster"]["endpointAccess"] = "public"
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(data))
    source = load_stack(path)
    (violation,) = [v for v in prod.__class__(source.spec, render(source).resources).violations("eks-endpoint-private")]
    assert violation.enforcement == "mandatory" and violation.type == EKS


def test_unencrypted_secrets_fire(prod):
    resources = prod.changed(EKS, lambda r: r.inputs.pop("encryptionConfig"))
    assert prod.violations("eks-secrets-encrypted", resources)


def test_imdsv1_fires(prod):
    resources = prod.changed(LT, lambda r: r.inputs["metadataOptions"].update(httpTokens="optional"))
    assert prod.violations("imdsv2-required", resources)


def test_unencrypted_ebs_fires(prod):
    resources = prod.changed(LT, lambda r: r.inputs["blockDeviceMappings"][0]["ebs"].update(encrypted="false"))
    assert prod.violations("ebs-encrypted", resources)


def test_open_ingress_fires_except_on_the_gateway_load_balancer(prod):
    def open_to_world(resource):
        resource.inputs["ingress"][0]["cidrBlocks"] = ["0.0.0.0/0"]

    resources = prod.changed("aws:ec2/securityGroup:SecurityGroup", open_to_world)
    assert prod.violations("no-open-ingress", resources)

    def gateway(resource):
        open_to_world(resource)
        resource.inputs["tags"]["inferfleet.io/role"] = "gateway-load-balancer"

    assert not prod.violations("no-open-ingress", prod.changed("aws:ec2/securityGroup:SecurityGroup", gateway))


def test_wildcard_action_fires(prod):
    def wildcard(resource):
        document = json.loads(resource.inputs["policy"])
        document["Statement"][0]["Action"] = "*"
        resource.inputs["policy"] = json.dumps(document)

    assert prod.violations("iam-no-wildcard-action", prod.changed("aws:iam/rolePolicy:RolePolicy", wildcard))


def test_bucket_settings_fire_when_missing(prod):
    resources = [r for r in prod.resources if not r.type.startswith("aws:s3/bucket") or r.type == "aws:s3/bucket:Bucket"]
    buckets = [r for r in prod.resources if r.type == "aws:s3/bucket:Bucket"]
    for policy in ("s3-encrypted", "s3-versioned", "s3-public-access-blocked"):
        violations = prod.violations(policy, resources)
        assert len(violations) == len(buckets) and {v.type for v in violations} == {"aws:s3/bucket:Bucket"}, policy


def test_tag_images_fire_in_prod_as_mandatory_and_digests_pass(prod, dev):
    """prod runs its built images by digest (silent); the same objects with tags fire, mandatory; dev's
    upstream tags are advice."""
    assert prod.violations("images-pinned-by-digest") == []
    assert {v.enforcement for v in dev.violations("images-pinned-by-digest")} == {"advisory"}

    def unpin(resource):
        for obj in objects(resource):
            for container in _all_containers(obj):
                container["image"] = container["image"].split("@")[0]

    found = prod.violations("images-pinned-by-digest", prod.changed(CG, unpin, only_first=False))
    assert found and {v.enforcement for v in found} == {"mandatory"}

    def pin(resource):
        for obj in objects(resource):
            for container in _all_containers(obj):
                container["image"] = container["image"].split("@")[0] + DIGEST

    assert not prod.violations("images-pinned-by-digest", prod.changed(CG, pin, only_first=False))


def _all_containers(obj):
    specs = [obj.get("spec", {}).get("template", {}).get("spec", {})]
    cluster = obj.get("spec", {}).get("rayClusterConfig", {})
    specs += [cluster.get("headGroupSpec", {}).get("template", {}).get("spec", {})]
    specs += [g["template"]["spec"] for g in cluster.get("workerGroupSpecs", [])]
    return [c for spec in specs for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]


def test_container_security_context(prod):
    """Silent as rendered (the weight fetch is root by its listed exception, Ray runs as its own user);
    fires, mandatory in prod, when the Ray head may run as root or the weight fetch keeps a capability."""
    assert prod.violations("container-security-context") == []

    def ray_head_as_root(resource):
        for obj in objects(resource):
            if obj["kind"] == "RayService":
                head = obj["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
                head["securityContext"].pop("runAsNonRoot")

    (violation,) = prod.violations("container-security-context", prod.changed(CG, ray_head_as_root, only_first=False))
    assert "head/ray-head may run as root" in violation.message and violation.enforcement == "mandatory"

    def fetch_keeps_capabilities(resource):
        for obj in objects(resource):
            for container in _all_containers(obj):
                if container["name"] == "fetch-weights":
                    container["securityContext"].pop("capabilities")

    found = prod.violations("container-security-context", prod.changed(CG, fetch_keeps_capabilities, only_first=False))
    assert found and all("fetch-weights does not drop ALL capabilities" in v.message for v in found)

    def harden(resource):
        for obj in objects(resource):
            for container in _all_containers(obj):
                container["securityContext"] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                                "capabilities": {"drop": ["ALL"]}}

    hardened = prod.changed(CG, harden, only_first=False)
    assert not prod.violations("container-security-context", hardened)

    def privileged_gpu(resource):
        harden(resource)
        for obj in objects(resource):
            for container in _all_containers(obj):
                container["securityContext"] = {"privileged": True}

    assert prod.violations("container-security-context", prod.changed(CG, privileged_gpu, only_first=False))


def test_plain_token_env_fires(prod):
    def plain_token(resource):
        for obj in objects(resource):
            for container in _all_containers(obj):
                container.setdefault("env", []).append({"name": "HF_TOKEN", "value": "hf_plain"})

    found = prod.violations("tokens-from-secrets", prod.changed(CG, plain_token, only_first=False))
    assert found and all(v.enforcement == "mandatory" for v in found)


def _serve_with_remote_code(resource):
    for obj in objects(resource):
        for container in _all_containers(obj):
            argv = "command" if "--served-model-name" in container.get("command", []) else "args"
            if "--served-model-name" in container.get(argv, []):
                container[argv].append("--trust-remote-code")
        if obj["kind"] == "RayService":
            config = yaml.safe_load(obj["spec"]["serveConfigV2"])
            for application in config["applications"]:
                for llm in application["args"].get("llm_configs", []):
                    llm.setdefault("engine_kwargs", {})["trust_remote_code"] = True
            obj["spec"]["serveConfigV2"] = yaml.safe_dump(config)


def _remote_code_models(violations):
    return {v.message.split(" serves ")[1].split(" with ")[0] for v in violations}


def test_trust_remote_code_fires_per_unreviewed_model_mandatory_in_prod(prod):
    assert prod.violations("trust-remote-code-reviewed") == []
    found = prod.violations("trust-remote-code-reviewed", prod.changed(CG, _serve_with_remote_code, only_first=False))
    served = {s.model.name for s in prod.spec.services if s.engine != "triton"}  # prod's Triton is ONNX
    assert found and all(v.enforcement == "mandatory" for v in found)
    assert _remote_code_models(found) == served


def test_trust_remote_code_is_advice_in_dev(dev):
    found = dev.violations("trust-remote-code-reviewed", dev.changed(CG, _serve_with_remote_code, only_first=False))
    assert found and all(v.enforcement == "advisory" for v in found)


def test_trust_remote_code_is_silent_for_reviewed_models(prod):
    resources = prod.changed(CG, _serve_with_remote_code, only_first=False)
    served = sorted({s.model.name for s in prod.spec.services if s.engine != "triton"})
    reviewed = {"trust-remote-code-reviewed": {"trustedRemoteCodeModels": served[1:]}}
    found = [v for v in evaluate(resources, prod.spec, reviewed) if v.policy == "trust-remote-code-reviewed"]
    assert _remote_code_models(found) == {served[0]}


def test_trust_remote_code_reads_tritons_vllm_engine_file_by_model_id_or_cache_path():
    from components.manifests.triton import VLLM_ENGINE_FILE
    from inferfleet_policies.security import TRITON_VLLM_ENGINE_FILE, trust_remote_code

    def config_map(model: str) -> dict:
        engine = {"model": model, "trust_remote_code": True}
        return {"kind": "ConfigMap", "metadata": {"name": "rerank", "namespace": "serving"},
                "data": {VLLM_ENGINE_FILE: json.dumps(engine)}}

    assert TRITON_VLLM_ENGINE_FILE == VLLM_ENGINE_FILE
    props = {"objs": [config_map("org/model"), config_map("/models/org/cached/default")]}
    assert len(list(trust_remote_code(CG, props, {}, None))) == 2
    assert list(trust_remote_code(CG, props, {"trustedRemoteCodeModels": ["org/model", "org/cached"]}, None)) == []
