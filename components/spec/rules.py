"""Cross-field rules that need only the spec itself (the catalog-aware ones live in the planner).

Each rule yields every problem it finds, so a user sees all of them in one run.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

from components.spec import limits as L
from components.spec.models import ModelArchitecture, ServiceSpec, StackSpec
from components.spec.network import SubnetPlanError, plan_subnets
from components.spec.problems import Problem
from components.spec.secrets import no_secrets_in_spec

Rule = Callable[[StackSpec], Iterator[Problem]]


def unique_names(spec: StackSpec) -> Iterator[Problem]:
    for collection, items in (
        ("gpuPools", [pool.name for pool in spec.gpu_pools]),
        ("services", [service.name for service in spec.services]),
    ):
        yield from _duplicates(items, lambda index, collection=collection: (collection, index, "name"), f"{collection[:-1]} name")
    yield from _duplicates(spec.aws.availability_zones, lambda index: ("aws", "availabilityZones", index), "AZ")
    for s, service in enumerate(spec.services):
        yield from _duplicates(service.pools, lambda index, s=s: ("services", s, "pools", index), "pool")


def _duplicates(items: list[str], path_of: Callable[[int], tuple], what: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item in seen:
            yield Problem(path_of(index), f"duplicate {what} {item!r}")
        seen.add(item)


def pools_exist(spec: StackSpec) -> Iterator[Problem]:
    known = list(dict.fromkeys(pool.name for pool in spec.gpu_pools))
    for s, service in enumerate(spec.services):
        for p, name in enumerate(service.pools):
            if name not in known:
                yield Problem(("services", s, "pools", p), f"no GPU pool named {name!r}; pools: {', '.join(known)}")


def min_not_above_max(spec: StackSpec) -> Iterator[Problem]:
    system = spec.cluster.system_pool
    bounds = [(("cluster", "systemPool", "minSize"), system.min_size, system.max_size, "maxSize")]
    bounds += [(("gpuPools", i, "minSize"), pool.min_size, pool.max_size, "maxSize") for i, pool in enumerate(spec.gpu_pools)]
    bounds += [(("services", i, "replicas", "min"), svc.replicas.min, svc.replicas.max, "max") for i, svc in enumerate(spec.services)]
    for path, low, high, high_name in bounds:
        if low > high:
            yield Problem(path, f"{low} is above {high_name} {high}")


def warm_pools_on_single_type_on_demand(spec: StackSpec) -> Iterator[Problem]:
    """AWS refuses a warm pool on a group with spot instances or a mixed instances policy."""
    for i, pool in enumerate(spec.gpu_pools):
        if pool.warm_pool is None:
            continue
        path = ("gpuPools", i, "warmPool")
        if pool.capacity_type != "onDemand":
            yield Problem(path, "a warm pool needs capacityType onDemand: AWS refuses warm pools on groups with spot instances")
        elif len(pool.instance_types) != 1:
            yield Problem(path, "a warm pool needs exactly one instance type: AWS refuses warm pools with a mixed instances policy")
        if pool.warm_pool.state == "Hibernated" and pool.warm_pool.reuse_on_scale_in:
            yield Problem(
                (*path, "reuseOnScaleIn"),
                "must be false with state Hibernated: hibernation loses the instance store that holds a "
                "joined node's kubelet, containerd and weight cache",
            )
        headroom = pool.max_size - pool.min_size
        if 0 <= headroom < pool.warm_pool.size:
            yield Problem(
                (*path, "size"),
                f"{pool.warm_pool.size} warm instances but the pool can only grow by {headroom} "
                f"(maxSize {pool.max_size} - minSize {pool.min_size}); the extra ones would never serve",
            )


def warm_pools_need_al2023(spec: StackSpec) -> Iterator[Problem]:
    """The warm-pool user data defers nodeadm's join; Bottlerocket joins from its settings at boot."""
    if spec.cluster.gpu_ami_family == "al2023-nvidia":
        return
    for i, pool in enumerate(spec.gpu_pools):
        if pool.warm_pool is not None:
            yield Problem(("gpuPools", i, "warmPool"), "warm pools need cluster.gpuAmiFamily al2023-nvidia")


def vpc_cidr_fits_subnets(spec: StackSpec) -> Iterator[Problem]:
    try:
        plan_subnets(spec.network.vpc_cidr, len(spec.aws.availability_zones))
    except SubnetPlanError as error:
        yield Problem(("network", "vpcCidr"), str(error))


def zones_in_region(spec: StackSpec) -> Iterator[Problem]:
    """aws.region is a Region of the commercial partition and every AZ one of its zones: the table in
    components/catalog/data/aws_regions.yaml (AWS's AZ IDs per Region, with its sources and date)."""
    from components.catalog.loader import load_aws_regions  # the catalog imports the spec: load it when called

    table = load_aws_regions()
    region_code = spec.aws.region
    region = table.regions.get(region_code)
    if region is None:
        if region_code.startswith(("us-gov-", "cn-")):
            why = "GovCloud and China Regions are other partitions, and the program writes arn:aws: ARNs"
        else:
            close = difflib.get_close_matches(region_code, list(table.regions), n=1)
            why = f"did you mean {close[0]}?" if close else f"e.g. {next(iter(table.regions))}"
        yield Problem(
            ("aws", "region"),
            f"{region_code!r} is not a Region of the commercial AWS partition (catalog aws_regions.yaml, as of "
            f"{table.as_of}): {why}",
        )
        return
    for i, zone in enumerate(spec.aws.availability_zones):
        if zone not in region.zone_names:
            yield Problem(
                ("aws", "availabilityZones", i),
                f"{_shown(zone)} is not an AZ of region {region_code}; its AZs: {', '.join(region.zone_names)}",
            )


def _shown(text: str, limit: int = 60) -> str:
    """A user's value in a message, cut so that a huge one cannot flood the output."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def s3_uris_valid(spec: StackSpec) -> Iterator[Problem]:
    """Every S3 URI the spec holds (services' model.uri, cluster.deployRunner.stateBackend) names a bucket S3
    accepts (S3's "Bucket naming rules": limits.bucket_name_problem, which the AWS layer's ModelStorage reads
    too) and a key prefix that fits S3 and cannot widen the IAM grant it is put into."""
    uris = [(("services", i, "model", "uri"), service.model.uri, True) for i, service in enumerate(spec.services)]
    if spec.cluster.deploy_runner is not None:
        uris.append((("cluster", "deployRunner", "stateBackend"), spec.cluster.deploy_runner.state_backend, False))
    for path, uri, is_model in uris:
        parsed = urlparse(uri)
        if parsed.scheme != "s3":
            continue
        problem = L.bucket_name_problem(parsed.netloc)
        if problem:
            yield Problem(path, f"bucket {_shown(parsed.netloc)}: {problem} (S3's bucket naming rules)")
            continue
        if is_model and ("?" in uri or "#" in uri):
            yield Problem(path, "a model URI takes no ?query or #fragment: the weights are read from s3://bucket/prefix")
            continue
        problem = L.s3_key_prefix_problem(parsed.path.strip("/"))
        if problem:
            yield Problem(path, problem)


def public_access_cidrs_valid(spec: StackSpec) -> Iterator[Problem]:
    cluster = spec.cluster
    for i, cidr in enumerate(cluster.public_access_cidrs):
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as error:
            yield Problem(("cluster", "publicAccessCidrs", i), f"not a valid IPv4 CIDR: {error}")
    if cluster.public_access_cidrs and cluster.endpoint_access == "private":
        yield Problem(("cluster", "publicAccessCidrs"), "has no effect with endpointAccess private")


def workload_fits_max_model_len(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        total = service.workload.input_tokens + service.workload.output_tokens
        if service.max_model_len is not None and total > service.max_model_len:
            yield Problem(
                ("services", i, "workload"),
                f"inputTokens + outputTokens = {total} exceeds maxModelLen {service.max_model_len}; such requests would be refused",
            )


def availability_needs_replicas(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        if service.slo and service.slo.availability and service.replicas.min < 1:
            yield Problem(
                ("services", i, "replicas", "min"),
                "a service with an availability SLO cannot scale to zero; set min to 1 or more",
            )


def tracing_endpoint_needs_tracing(spec: StackSpec) -> Iterator[Problem]:
    observability = spec.observability
    if observability.tracing_endpoint is not None and not observability.tracing:
        yield Problem(("observability", "tracingEndpoint"), "needs tracing: true (no collector runs to forward spans)")


def deploy_gate_needs_built_images(spec: StackSpec) -> Iterator[Problem]:
    if spec.deploy_gate.enabled and not spec.images.build:
        yield Problem(("deployGate", "enabled"), "needs images.build: true (the gate runs the project's gate image)")


def tag_keys_valid(spec: StackSpec) -> Iterator[Problem]:
    """Spec tags go on every taggable resource, so they must meet AWS's tag limits there (components/spec/limits.py,
    with sources): at most USER_TAGS_MAX of them beside the program's own, keys of 1 to 128 and values of up to 256
    characters AWS allows, no aws: prefix, no key the program sets itself. Tag keys that differ only in case
    collide in several AWS APIs (e.g. Auto Scaling tags)."""
    if len(spec.tags) > L.USER_TAGS_MAX:
        yield Problem(
            ("tags",),
            f"{len(spec.tags)} tags, over {L.USER_TAGS_MAX}: AWS allows {L.TAGS_PER_RESOURCE_MAX} per resource and the "
            f"program keeps {L.PROGRAM_TAGS_RESERVED} for its own (an Auto Scaling group's Name, autoscaler and "
            "node-template tags)",
        )
    counts = Counter(key.lower() for key in spec.tags)
    for key, value in spec.tags.items():
        # A key too long to be one is reported at `tags`, so a huge key is not echoed back in full.
        path = ("tags", key) if len(key) <= L.TAG_KEY_MAX else ("tags",)
        problem = L.tag_text_problem(key, "key", L.TAG_KEY_MAX)
        if problem:
            yield Problem(path, problem if len(path) == 2 else f"{_shown(key)}: {problem}")
            continue
        if L.program_tag_key(key):
            yield Problem(path, "the program sets this tag itself (Name, inferfleet:*, Kubernetes and autoscaler tags)")
        elif counts[key.lower()] > 1:
            yield Problem(path, "tag keys must differ by more than letter case")
        problem = L.tag_text_problem(value, "value", L.TAG_VALUE_MAX)
        if problem:
            yield Problem(path, problem)


def nodes_within_cluster_limit(spec: StackSpec) -> Iterator[Problem]:
    """Every node of every pool joins one cluster: their maxSize together stay within Kubernetes' 5,000 nodes."""
    total = spec.cluster.system_pool.max_size + sum(pool.max_size for pool in spec.gpu_pools)
    if total > L.KUBERNETES_MAX_NODES:
        yield Problem(
            ("gpuPools",),
            f"the pools' maxSize add up to {total:,} nodes with the system pool's, over the {L.KUBERNETES_MAX_NODES:,} "
            "a Kubernetes cluster supports (kubernetes.io, Considerations for large clusters)",
        )


SPEC_FIELDS_NOT_ENGINE_ARGS = {
    "tensor-parallel-size": "tensorParallelSize",
    "pipeline-parallel-size": "pipelineParallelSize",
    "max-model-len": "maxModelLen",
    "model": "model.name",
    "served-model-name": "model.name",
    "dtype": "model.dtype",
    "revision": "model.revision",
}
"""Flags the spec owns: the plan and the manifests read the spec field, so engineArgs may not fight it."""


def _fraction(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


PLANNED_ENGINE_ARGS = {
    "gpu-memory-utilization": (_fraction, "a number in (0, 1]"),
    "max-num-seqs": (_positive_int, "a positive integer"),
    "max-num-batched-tokens": (_positive_int, "a positive integer"),
    "kv-cache-dtype": (lambda v: v in ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"), "auto, fp8, fp8_e4m3 or fp8_e5m2"),
}
"""Engine flags the planner reads; the rest are checked against vLLM's own parser by the serving manifests."""


_SIXTEEN_BIT = frozenset({"bfloat16", "float16"})
QUANTIZATION_WEIGHTS: dict[str, frozenset[str]] = {
    # Read a checkpoint quantized by that method (vLLM's get_quant_config reads its quantization config and
    # fails on a 16-bit checkpoint without one): 4-bit AWQ, 4- or 8-bit GPTQ, FP8.
    **dict.fromkeys(("awq", "auto_awq", "awq_marlin"), frozenset({"int4"})),
    **dict.fromkeys(("gptq", "auto_gptq", "gptq_marlin", "moe_wna16"), frozenset({"int4", "int8"})),
    **dict.fromkeys(("fbgemm_fp8", "modelopt_mxfp8", "deepseek_v4_fp8"), frozenset({"fp8"})),
    # Quantized checkpoints of a precision the method's config decides: any but 16-bit.
    **dict.fromkeys(
        ("compressed-tensors", "modelopt", "modelopt_fp4", "modelopt_mixed", "quark", "inc", "fp_quant"),
        frozenset({"fp8", "int8", "int4"}),
    ),
    # Quantize 16-bit weights as they load (fp8 also reads an FP8 checkpoint); model.dtype may give the
    # 16-bit checkpoint or the precision it becomes, not another quantized format.
    **dict.fromkeys(
        ("fp8", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "mxfp8"), _SIXTEEN_BIT | {"fp8"}
    ),
    **dict.fromkeys(("int8_per_channel_weight_only", "experts_int8"), _SIXTEEN_BIT | {"int8"}),
}
"""The model.dtype values each vLLM --quantization method can serve (vLLM 0.32.0's QuantizationMethods in
vllm/model_executor/layers/quantization/__init__.py and get_quant_config in model_loader/weight_utils.py).
The spec's model.dtype is the only statement of a checkpoint's precision (the catalog holds architectures,
not checkpoints), so it is what a method is checked against; methods not listed (torchao, humming, mxfp4,
nvfp4_per_token, online, ...) are left to vLLM."""


def _normalized_flags(engine_args: dict[str, object]) -> dict[str, str]:
    """Dashed flag -> the key it is written as (the first spelling)."""
    flags: dict[str, str] = {}
    for key in engine_args:
        flags.setdefault(key.replace("_", "-"), key)
    return flags


def _negation(flag: str) -> str:
    return flag.removeprefix("no-") if flag.startswith("no-") else f"no-{flag}"


def _kv_family(value: object) -> str:
    return "fp8" if str(value).startswith("fp8") else str(value)


def _engine_arg_contradictions(
    service: ServiceSpec, revision: str | None, engine_args: dict[str, object]
) -> Iterator[tuple[str, str]]:
    """(key, message) for flags written twice, a flag next to its --no- form, and flags against the model spec."""
    flags = _normalized_flags(engine_args)
    for key in engine_args:
        flag = key.replace("_", "-")
        if flags[flag] != key:
            yield key, f"the same flag as {flags[flag]}: write it once"
        elif flag.startswith("no-") and flag[3:] in flags:
            yield key, f"contradicts {flags[flag[3:]]}: give {flag[3:]}: true or false, not both"
    if revision is not None:
        inherited = _normalized_flags(service.engine_args)
        for flag, key in flags.items():
            other = _negation(flag)
            if other in inherited and other not in flags and flag not in inherited:
                positive = flag.removeprefix("no-")
                yield key, (
                    f"contradicts the service's engineArgs {inherited[other]}, which the {revision} inherits: "
                    f"--{flag} and --{other} would both be passed; give {positive}: true or false here instead"
                )
    model = service.model
    for key, value in engine_args.items():
        flag = key.replace("_", "-")
        if flag == "quantization" and isinstance(value, str) and value in QUANTIZATION_WEIGHTS:
            allowed = QUANTIZATION_WEIGHTS[value]
            if model.dtype not in allowed:
                yield key, (
                    f"quantization {value} serves {' or '.join(sorted(allowed))} weights, but model.dtype says the "
                    f"checkpoint is {model.dtype}: vLLM cannot load it so, and the plan sizes memory by model.dtype; "
                    "set model.dtype to the checkpoint's precision or drop quantization"
                )
        elif flag == "kv-cache-dtype" and "kv_cache_dtype" in model.model_fields_set:
            if PLANNED_ENGINE_ARGS[flag][0](value) and _kv_family(value) != _kv_family(model.kv_cache_dtype):
                yield key, (
                    f"{value} contradicts model.kvCacheDtype {model.kv_cache_dtype}: set the KV cache dtype in "
                    "one place (model.kvCacheDtype, which the plan reads)"
                )


def engine_args_consistent(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        for revision, engine_args in service.engine_args_by_revision():
            prefix = ("services", i, *([revision] if revision else []), "engineArgs")
            for key, value in engine_args.items():
                flag = key.replace("_", "-")
                path = (*prefix, key)
                if flag in SPEC_FIELDS_NOT_ENGINE_ARGS:
                    owner = "modelRevision" if flag == "revision" and revision else SPEC_FIELDS_NOT_ENGINE_ARGS[flag]
                    where = f"services.{i}.{revision}" if revision else f"services.{i}"
                    yield Problem(path, f"set {where}.{owner} instead: the spec owns it")
                elif flag in PLANNED_ENGINE_ARGS and not PLANNED_ENGINE_ARGS[flag][0](value):
                    yield Problem(path, f"should be {PLANNED_ENGINE_ARGS[flag][1]} (got {value!r})")
            for key, message in _engine_arg_contradictions(service, revision, engine_args):
                yield Problem((*prefix, key), message)


def architecture_problems(arch: ModelArchitecture) -> Iterator[tuple[str, str]]:
    """(key, message) for an architecture whose numbers contradict each other, as no published config.json does;
    the planner's memory and step-time arithmetic divides by these differences (a mixture of 1 expert routing 1
    expert divided by zero). The catalog's own architectures are held to the same (tests/catalog)."""
    moe = arch.experts > 0
    if moe != (arch.active_experts > 0):
        yield "activeExperts", "experts and activeExperts are both 0 (a dense model) or both positive (MoE)"
    elif moe and arch.active_experts >= arch.experts:
        yield "activeExperts", (
            f"{arch.active_experts} routed of {arch.experts} experts: a token routes to fewer experts than there are"
        )
    if arch.active_parameters is not None and arch.active_parameters > arch.parameters:
        yield "activeParameters", (
            f"{arch.active_parameters:,} active of {arch.parameters:,} parameters: more than the model has"
        )
    elif 0 < arch.active_experts < arch.experts and (
        arch.parameters_per_token * arch.experts < arch.active_experts * arch.parameters
    ):
        yield "activeParameters", (
            "fewer than the routed experts' share of the parameters (activeParameters x experts < activeExperts x "
            "parameters): the shared weights would be negative"
        )
    if arch.kv_heads > arch.attention_heads or arch.attention_heads % arch.kv_heads:
        yield "kvHeads", (
            f"{arch.kv_heads} KV heads must divide the {arch.attention_heads} attention heads (grouped-query attention)"
        )
    if arch.head_dim is None and arch.hidden_size % arch.attention_heads:
        yield "headDim", (
            f"hiddenSize {arch.hidden_size} is not a multiple of {arch.attention_heads} attention heads: give headDim"
        )


def inline_architectures_consistent(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        if isinstance(service.model.architecture, ModelArchitecture):
            for key, message in architecture_problems(service.model.architecture):
                yield Problem(("services", i, "model", "architecture", key), message)


ENGINE_SECTIONS = {"pipeline": "ray-serve", "triton": "triton"}
"""Service keys that only one engine reads."""


def engine_sections_match(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        for key, engine in ENGINE_SECTIONS.items():
            if getattr(service, key) and service.engine != engine:
                yield Problem(("services", i, key), f"only read by engine {engine}, but the service's engine is {service.engine}")
        stages = [stage.name for stage in service.pipeline]
        yield from _duplicates(stages, lambda s, i=i: ("services", i, "pipeline", s, "name"), "pipeline stage")
        for s, stage in enumerate(service.pipeline):
            if stage.replicas.min > stage.replicas.max:
                yield Problem(("services", i, "pipeline", s, "replicas", "min"), f"{stage.replicas.min} is above max {stage.replicas.max}")


def revisions_differ(spec: StackSpec) -> Iterator[Problem]:
    """A canary or shadow identical to the service would split traffic and test nothing."""
    for i, service in enumerate(spec.services):
        for key in ("canary", "shadow"):
            revision = getattr(service, key)
            if revision is None:
                continue
            same_model = revision.model_revision in (None, service.model.revision)
            if same_model and not revision.engine_args:
                yield Problem(("services", i, key), "differs from the service in nothing: give modelRevision or engineArgs")
            if service.engine == "ray-serve" and revision.model_revision not in (None, service.model.revision):
                yield Problem(
                    ("services", i, key, "modelRevision"),
                    "ray-serve serves one revision per RayService; canary the engineArgs, or use a second service",
                )


def private_endpoint_needs_runner(spec: StackSpec) -> Iterator[Problem]:
    """With a private API endpoint only something inside the VPC can create Kubernetes objects."""
    if spec.cluster.endpoint_access == "private" and spec.cluster.deploy_runner is None:
        yield Problem(
            ("cluster", "endpointAccess"),
            "private: the workloads stack must run inside the VPC; give cluster.deployRunner (its stateBackend) "
            "so the platform creates the runner that deploys it",
        )


SPEC_RULES: tuple[Rule, ...] = (
    unique_names,
    pools_exist,
    min_not_above_max,
    nodes_within_cluster_limit,
    warm_pools_on_single_type_on_demand,
    warm_pools_need_al2023,
    vpc_cidr_fits_subnets,
    zones_in_region,
    s3_uris_valid,
    inline_architectures_consistent,
    public_access_cidrs_valid,
    workload_fits_max_model_len,
    availability_needs_replicas,
    tag_keys_valid,
    engine_args_consistent,
    no_secrets_in_spec,
    engine_sections_match,
    revisions_differ,
    tracing_endpoint_needs_tracing,
    deploy_gate_needs_built_images,
    private_endpoint_needs_runner,
)


def check_spec(spec: StackSpec) -> list[Problem]:
    return [problem for rule in SPEC_RULES for problem in rule(spec)]
