"""The typed stack spec: one file per environment, camelCase keys, nothing unknown accepted.

Field names here are a contract with checks outside the project (policy pack, CI); rename
nothing without an alias. Every default is documented in the field's description, so the
JSON Schema that editors load says what an omitted key means.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
)
from pydantic.alias_generators import to_camel

from components.spec import limits as L

DNS_LABEL = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
"""Names become Kubernetes objects and AWS resource names: a short DNS-1035 label."""

WeightDtype = Literal["bfloat16", "float16", "fp8", "int8", "int4"]
KvCacheDtype = Literal["auto", "fp8"]
Engine = Literal["vllm", "ray-serve", "triton"]


class SpecModel(BaseModel):
    """Base of every spec object: camelCase keys, unknown keys rejected, immutable once loaded.

    Strict types: YAML already types its scalars, so `maxSize: true` or an unquoted
    `kubernetesVersion: 1.30` (the float 1.3) is a mistake to report, not a value to coerce.
    Floats are finite: YAML's `.inf` and `.nan` are numbers to pydantic, and nothing here means them.
    Every number's upper bound is in components/spec/limits.py with its source."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        frozen=True,
        strict=True,
        allow_inf_nan=False,
    )


def _parallelism(value: Any) -> Any:
    """Accept a positive integer or the word `auto`, with one error message for both forms."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a positive integer or 'auto'")
    if value > L.MAX_PARALLEL_SIZE:
        raise ValueError(f"must be at most {L.MAX_PARALLEL_SIZE} or 'auto'")
    return value


Parallelism = Annotated[Union[int, Literal["auto"]], BeforeValidator(_parallelism)]


class AwsSpec(SpecModel):
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region, e.g. us-east-1.")
    availability_zones: list[str] = Field(
        min_length=2,
        description="AZs the VPC and node groups span; EKS needs subnets in at least two.",
    )


class NetworkSpec(SpecModel):
    vpc_cidr: str = Field(
        default="10.0.0.0/16",
        description="IPv4 CIDR of the VPC (AWS allows /16 to /28). Default 10.0.0.0/16.",
    )
    nat_gateways: Literal["single", "perAz"] = Field(
        default="perAz",
        description="One NAT gateway for the VPC (cheaper, for dev) or one per AZ (default, survives an AZ outage).",
    )
    flow_logs: bool | None = Field(
        default=None,
        description="VPC flow logs to CloudWatch Logs. Default: on in the prod environment, off elsewhere.",
    )


class SystemPoolSpec(SpecModel):
    instance_types: list[str] = Field(
        default_factory=lambda: ["m7i.xlarge"],
        min_length=1,
        description="Instance types of the managed node group for add-ons. Default [m7i.xlarge].",
    )
    min_size: int = Field(
        default=2, ge=0, le=L.EKS_MANAGED_NODE_GROUP_MAX_NODES, description="Default 2, so add-ons survive a node loss."
    )
    max_size: int = Field(
        default=4,
        ge=1,
        le=L.EKS_MANAGED_NODE_GROUP_MAX_NODES,
        description=f"Default 4; at most {L.EKS_MANAGED_NODE_GROUP_MAX_NODES} (EKS's nodes per managed node group).",
    )
    disk_size_gib: int = Field(
        default=50,
        ge=20,
        le=L.EBS_VOLUME_MAX_GIB,
        alias="diskSizeGiB",
        description=f"Root volume GiB, at most {L.EBS_VOLUME_MAX_GIB:,}. Default 50.",
    )


class DeployRunnerSpec(SpecModel):
    state_backend: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^?\s]*)?(\?\S*)?$",
        description="The Pulumi state backend the stacks live in, as `pulumi login` takes it "
        "(s3://bucket[/prefix][?region=...]); the runner may read and write only there.",
    )
    secrets_kms_key_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+$",
        description="The KMS key of the stacks' `awskms://` secrets provider, which the runner may use to "
        "decrypt and encrypt stack secrets. Default none (stacks without secrets, or passphrase secrets "
        "given to the build as PULUMI_CONFIG_PASSPHRASE).",
    )


class ClusterSpec(SpecModel):
    kubernetes_version: str = Field(
        pattern=r"^1\.\d{2}$", description="EKS Kubernetes version, pinned per stack, e.g. '1.34'."
    )
    endpoint_access: Literal["public", "private", "publicAndPrivate"] = Field(
        default="private",
        description="EKS API endpoint exposure. Default private (reachable from the VPC only).",
    )
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        max_length=L.EKS_PUBLIC_ACCESS_CIDRS_MAX,
        description=f"CIDRs allowed to reach a public endpoint, at most {L.EKS_PUBLIC_ACCESS_CIDRS_MAX} (EKS). "
        "Default [] (AWS then allows 0.0.0.0/0).",
    )
    system_pool: SystemPoolSpec = Field(
        default_factory=SystemPoolSpec, description="Node group for add-ons. Defaults: see SystemPoolSpec."
    )
    gpu_ami_family: Literal["al2023-nvidia", "bottlerocket-nvidia"] = Field(
        default="al2023-nvidia",
        description="EKS-optimized GPU AMI of the GPU pools. Default al2023-nvidia (needed for warm pools).",
    )
    gpu_ami_id: str | None = Field(
        default=None,
        pattern=r"^ami-[0-9a-f]{8,17}$",
        description="The GPU AMI, pinned. Default: the recommended AMI for kubernetesVersion, resolved once at "
        "the first deploy and kept (copy it here from the stack outputs to pin it in the spec).",
    )
    deploy_runner: DeployRunnerSpec | None = Field(
        default=None,
        description="A CodeBuild project in the private subnets that runs the workloads stack "
        "(`pulumi up -s <env>-workloads`), which must reach the Kubernetes API. Required with endpointAccess "
        "private; default none (the workloads stack runs wherever `pulumi` does, through the public endpoint).",
    )


class WarmPoolSpec(SpecModel):
    size: int = Field(
        ge=1,
        le=L.MAX_POOL_NODES,
        description="Pre-initialised instances kept ready outside the group's desired capacity.",
    )
    state: Literal["Stopped", "Running", "Hibernated"] = Field(
        default="Stopped",
        description="State of warm instances. Default Stopped: only their EBS volumes are billed.",
    )
    reuse_on_scale_in: bool = Field(
        default=True, description="Return instances to the warm pool on scale-in. Default true."
    )


class GpuPoolSpec(SpecModel):
    name: str = Field(pattern=DNS_LABEL, description="Pool name; services refer to it.")
    instance_types: list[str] = Field(min_length=1, description="EC2 GPU instance types, in the catalog.")
    capacity_type: Literal["onDemand", "spot"] = Field(description="Purchase option of the pool's instances.")
    min_size: int = Field(
        default=0, ge=0, le=L.MAX_POOL_NODES, description="Minimum instances. Default 0 (scale from zero)."
    )
    max_size: int = Field(
        ge=1,
        le=L.MAX_POOL_NODES,
        description=f"Maximum instances, at most {L.MAX_POOL_NODES:,} (Kubernetes' nodes per cluster).",
    )
    warm_pool: WarmPoolSpec | None = Field(
        default=None, description="EC2 Auto Scaling warm pool; onDemand pools with one instance type only."
    )
    headroom_gpus: int = Field(
        default=0,
        ge=0,
        le=L.MAX_HEADROOM_GPUS,
        description="GPUs kept free on joined nodes by low-priority placeholder pods, so a new replica "
        "starts at once while the autoscaler replaces the headroom. Default 0.",
    )
    root_volume_gib: int = Field(
        default=200,
        ge=50,
        le=L.EBS_VOLUME_MAX_GIB,
        alias="rootVolumeGiB",
        description=f"gp3 root volume GiB per node (images and weight cache overflow), at most "
        f"{L.EBS_VOLUME_MAX_GIB:,}. Default 200.",
    )


class AlertingSpec(SpecModel):
    """Where Alertmanager sends the generated alerts. The credentials are Pulumi secrets, never spec fields:
    `pulumi config set --secret alertSlackWebhookUrl ...`, `pulumi config set --secret alertPagerDutyRoutingKey ...`."""

    slack_channel: str | None = Field(
        default=None,
        pattern=r"^#[a-z0-9][a-z0-9_-]{0,79}$",
        description=(
            "Slack channel (`#name`) for every alert: tickets, and pages too when PagerDuty is off. Its incoming "
            "webhook URL is the secret config `alertSlackWebhookUrl`. Default: no Slack."
        ),
    )
    pager_duty: bool = Field(
        default=False,
        description=(
            "Send `page` alerts to PagerDuty (Events API v2); the integration's routing key is the secret config "
            "`alertPagerDutyRoutingKey`. Default false."
        ),
    )
    repeat_interval_hours: int = Field(
        default=4, ge=1, le=168, description="Re-notify an alert still firing after this many hours. Default 4."
    )

    @property
    def routes_anywhere(self) -> bool:
        return self.slack_channel is not None or self.pager_duty


class ObservabilitySpec(SpecModel):
    enabled: bool = Field(default=True, description="Deploy the metrics stack. Default true.")
    retention_days: int = Field(
        default=15,
        ge=1,
        le=L.MAX_RETENTION_DAYS,
        description=f"Prometheus retention in days, at most {L.MAX_RETENTION_DAYS:,}. Default 15.",
    )
    storage_gib: int = Field(
        default=100,
        ge=10,
        le=L.EBS_VOLUME_MAX_GIB,
        alias="storageGiB",
        description=f"Prometheus volume GiB (gp3), at most {L.EBS_VOLUME_MAX_GIB:,}. Default 100.",
    )
    tracing: bool = Field(default=False, description="Deploy an OpenTelemetry collector. Default false.")
    tracing_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
        description=(
            "OTLP/gRPC endpoint of the trace backend the collector forwards spans to (Tempo, Jaeger, an ADOT "
            "collector), e.g. `http://tempo.tracing.svc:4317`; `http://` is plaintext, `https://` TLS. Only with "
            "tracing. Default: spans go to the collector's log (its `debug` exporter)."
        ),
    )

    @property
    def collects_traces(self) -> bool:
        """The collector runs with the metrics stack; engines send spans only when it does."""
        return self.enabled and self.tracing
    managed_prometheus: bool = Field(
        default=False,
        description=(
            "Also remote-write every metric to an Amazon Managed Prometheus workspace created for the environment "
            "(long retention and querying outside the cluster); only with enabled. Default false."
        ),
    )
    alerting: AlertingSpec = Field(
        default_factory=AlertingSpec,
        description="Notification routes for the generated alerts. Default: none (alerts show only in Alertmanager).",
    )


class ModelArchitecture(SpecModel):
    """What the planner needs to know of a model; the catalog holds these for known models."""

    kind: Literal["decoder", "encoder"] = Field(default="decoder", description="Default decoder (generative LLM).")
    parameters: int = Field(gt=0, le=L.MAX_MODEL_PARAMETERS, description="Total parameter count.")
    active_parameters: int | None = Field(
        default=None, gt=0, le=L.MAX_MODEL_PARAMETERS, description="Parameters used per token (MoE). Default: all parameters."
    )
    layers: int = Field(gt=0, le=L.MAX_LAYERS, description="Transformer layers (num_hidden_layers).")
    hidden_size: int = Field(gt=0, le=L.MAX_MODEL_WIDTH, description="Model width (hidden_size).")
    intermediate_size: int | None = Field(
        default=None, gt=0, le=L.MAX_MODEL_WIDTH, description="MLP width (intermediate_size). Default 4 x hiddenSize."
    )
    attention_heads: int = Field(gt=0, le=L.MAX_HEADS, description="Query heads (num_attention_heads).")
    kv_heads: int = Field(
        gt=0, le=L.MAX_HEADS, description="Key/value heads (num_key_value_heads); fewer than heads under GQA."
    )
    head_dim: int | None = Field(default=None, gt=0, le=L.MAX_HEADS, description="Default hiddenSize / attentionHeads.")
    vocab_size: int = Field(gt=0, le=L.MAX_VOCAB_SIZE, description="Vocabulary size (vocab_size).")
    context_length: int = Field(
        gt=0, le=L.MAX_CONTEXT_TOKENS, description="Longest sequence the model supports (max_position_embeddings)."
    )
    experts: int = Field(default=0, ge=0, le=L.MAX_EXPERTS, description="MoE experts per layer. Default 0 (dense).")
    active_experts: int = Field(
        default=0, ge=0, le=L.MAX_EXPERTS, description="Experts routed per token. Default 0 (dense)."
    )

    @property
    def head_dimension(self) -> int:
        return self.head_dim or self.hidden_size // self.attention_heads

    @property
    def parameters_per_token(self) -> int:
        return self.active_parameters or self.parameters


def _architecture_form(value: Any) -> str:
    return "catalog" if isinstance(value, str) else "inline"


class ModelSpec(SpecModel):
    name: str = Field(min_length=1, description="Model id as served (Hugging Face id for known models).")
    uri: str = Field(
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|hf://[\w.-]+/[\w.-]+)$",
        description="Where the weights come from: s3://bucket/prefix (production) or hf://org/name.",
    )
    dtype: WeightDtype = Field(default="bfloat16", description="Weight dtype. Default bfloat16.")
    kv_cache_dtype: KvCacheDtype = Field(
        default="auto", description="KV cache dtype; auto keeps 16-bit activations' dtype. Default auto."
    )
    revision: str | None = Field(default=None, description="Model revision (commit) to pin. Default: none.")
    architecture: (
        Annotated[
            Union[Annotated[str, Tag("catalog")], Annotated[ModelArchitecture, Tag("inline")]],
            Discriminator(_architecture_form),
        ]
        | None
    ) = Field(
        default=None,
        description="A catalog model id, or the architecture inline for custom models. Default: looked up by name.",
    )


class ReplicasSpec(SpecModel):
    min: int = Field(
        default=1, ge=0, le=L.MAX_REPLICAS, description="Default 1. 0 allows scale to zero (no availability SLO)."
    )
    max: int = Field(
        ge=1,
        le=L.MAX_REPLICAS,
        description=f"Most replicas the autoscaler may run, over all pools; at most {L.MAX_REPLICAS:,}.",
    )


class WorkloadSpec(SpecModel):
    input_tokens: int = Field(gt=0, le=L.MAX_CONTEXT_TOKENS, description="Mean prompt length in tokens.")
    output_tokens: int = Field(
        ge=0, le=L.MAX_CONTEXT_TOKENS, description="Mean generated length in tokens; 0 for embedding/rerank."
    )
    peak_requests_per_second: float = Field(
        ge=L.MIN_REQUESTS_PER_SECOND,
        le=L.MAX_REQUESTS_PER_SECOND,
        description=f"Peak request rate the service must absorb, {L.MIN_REQUESTS_PER_SECOND:g} to "
        f"{L.MAX_REQUESTS_PER_SECOND:,.0f}.",
    )


class SloSpec(SpecModel):
    ttft_p99_ms: float = Field(
        gt=0,
        le=L.MAX_LATENCY_MS,
        description=f"99th-percentile time to first token, ms; at most {L.MAX_LATENCY_MS:,.0f} (an hour).",
    )
    itl_p99_ms: float | None = Field(
        default=None,
        gt=0,
        le=L.MAX_LATENCY_MS,
        description="99th-percentile inter-token latency, ms. Default: none (encoders).",
    )
    availability: float | None = Field(
        default=None,
        gt=L.MIN_AVAILABILITY,
        le=L.MAX_AVAILABILITY,
        description=f"Target success ratio, e.g. 0.999; above {L.MIN_AVAILABILITY:g}, at most "
        f"{L.MAX_AVAILABILITY:g}. Default: none.",
    )


def _engine_arg_value(value: Any) -> Any:
    """An engine flag's value is rendered into the server's command line: one message for a number that
    cannot be (a non-finite float, an integer past int64), before the union tries each type."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and not L.INT64_MIN <= value <= L.INT64_MAX:
        raise ValueError("an integer must fit in 64 bits (vLLM passes it to torch as int64)")
    return value


EngineArgValue = Annotated[Union[bool, int, float, str], BeforeValidator(_engine_arg_value)]


class RevisionSpec(SpecModel):
    """Another revision of a service's model server: the same model at another revision, or with other
    engine arguments. It runs as its own replica set behind the service's route."""

    model_revision: str | None = Field(
        default=None, description="Model revision (commit) of this revision. Default: the service's model.revision."
    )
    engine_args: dict[str, EngineArgValue] = Field(
        default_factory=dict, description="Engine arguments over the service's engineArgs (these win). Default {}."
    )
    replicas: int = Field(
        default=1, ge=1, le=L.MAX_REPLICAS, description="Replicas of this revision (not autoscaled). Default 1."
    )


class CanarySpec(RevisionSpec):
    weight_percent: int = Field(ge=1, le=99, description="Share of the service's requests the canary answers, in %.")


class ShadowSpec(RevisionSpec):
    mirror_percent: int = Field(
        ge=1, le=100, description="Share of requests copied to the shadow, in %; its answers are discarded."
    )


class PipelineStageSpec(SpecModel):
    name: str = Field(pattern=DNS_LABEL, description="Stage name; becomes the Ray Serve deployment's name.")
    import_path: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:attribute of the stage's Serve deployment in the Ray Serve image.",
    )
    num_cpus: float = Field(
        default=1.0,
        ge=L.RAY_RESOURCE_PRECISION,
        le=L.MAX_STAGE_CPUS,
        description=f"CPUs per stage replica, {L.RAY_RESOURCE_PRECISION:g} (Ray's precision) to "
        f"{L.MAX_STAGE_CPUS:g}. Default 1.",
    )
    replicas: ReplicasSpec = Field(
        default_factory=lambda: ReplicasSpec(min=1, max=4), description="Serve autoscaling bounds. Default 1 to 4."
    )
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict,
        description=(
            "Environment of the stage's replicas (Ray's runtime_env env_vars): the stage's settings, e.g. "
            "INFERFLEET_CORPUS for inferfleet_serve.stages:Retriever. Never a secret: it is in the RayService. "
            "Default none."
        ),
    )


DEFAULT_TRITON_BACKENDS = {"decoder": "vllm", "encoder": "onnxruntime"}


class TritonSpec(SpecModel):
    backend: Literal["vllm", "onnxruntime", "tensorrt", "python"] | None = Field(
        default=None,
        description="Triton backend of the model. Default: vllm for decoder models, onnxruntime for encoders.",
    )
    max_batch_size: int = Field(
        default=32, ge=1, le=L.MAX_TRITON_BATCH_SIZE, description="Largest batch the model takes. Default 32."
    )
    max_queue_delay_us: int = Field(
        default=500,
        ge=0,
        le=L.MAX_TRITON_QUEUE_DELAY_US,
        description="Longest a request waits for a batch to fill, microseconds. Default 500.",
    )
    instances_per_gpu: int = Field(
        default=1, ge=1, le=L.MAX_TRITON_INSTANCES_PER_GPU, description="Model instances per GPU. Default 1."
    )


class ServiceSpec(SpecModel):
    name: str = Field(pattern=DNS_LABEL, description="Service name; becomes the Kubernetes Service.")
    engine: Engine = Field(description="Serving stack: vLLM, Ray Serve (KubeRay) or NVIDIA Triton.")
    model: ModelSpec = Field(description="The model served and where its weights are.")
    pools: list[str] = Field(min_length=1, description="GPU pool names in preference order (first preferred).")
    replicas: ReplicasSpec = Field(description="Replica bounds over all the service's pools.")
    tensor_parallel_size: Parallelism = Field(default="auto", description="Default auto: smallest that fits.")
    pipeline_parallel_size: Parallelism = Field(default="auto", description="Default auto: 1 unless a node is too small.")
    max_model_len: int | None = Field(
        default=None,
        gt=0,
        le=L.MAX_CONTEXT_TOKENS,
        description="Longest sequence served. Default: the model's context length.",
    )
    workload: WorkloadSpec = Field(description="The traffic the service is sized for.")
    slo: SloSpec | None = Field(default=None, description="Latency and availability targets. Default: none.")
    engine_args: dict[str, EngineArgValue] = Field(
        default_factory=dict, description="Extra engine arguments: vLLM flag names without the leading dashes (enable-prefix-caching: true). User values win over planned ones. Default {}."
    )

    canary: CanarySpec | None = Field(default=None, description="A weighted canary revision. Default: none.")
    shadow: ShadowSpec | None = Field(default=None, description="A shadow revision fed mirrored requests. Default: none.")
    pipeline: list[PipelineStageSpec] = Field(
        default_factory=list,
        description="ray-serve only: Python stages before generation, in request order "
        "(e.g. retrieve, rerank); the model is the last stage. Default [].",
    )
    triton: TritonSpec | None = Field(default=None, description="triton only: model configuration. Defaults: see TritonSpec.")
    image: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$",
        description="Serving image, e.g. a mirror in your ECR. Default: the engine's image the project pins.",
    )

    def engine_args_by_revision(self) -> list[tuple[str | None, dict[str, EngineArgValue]]]:
        """(None for the service itself, or "canary"/"shadow"; its engineArgs): every place engine
        arguments are given, for the rules that check them wherever they are."""
        sources: list[tuple[str | None, dict[str, EngineArgValue]]] = [(None, self.engine_args)]
        for name in ("canary", "shadow"):
            revision = getattr(self, name)
            if revision is not None:
                sources.append((name, revision.engine_args))
        return sources

    def triton_backend(self, model_kind: str) -> str:
        """The spec's Triton backend, or the default for the model's kind (vllm for decoders)."""
        if self.triton is not None and self.triton.backend is not None:
            return self.triton.backend
        return DEFAULT_TRITON_BACKENDS[model_kind]

    def engine_arg(self, flag: str) -> EngineArgValue | None:
        """The value of a vLLM flag (`gpu-memory-utilization`) in `engineArgs`, spelt with dashes or underscores."""
        for key, value in self.engine_args.items():
            if key.replace("_", "-") == flag:
                return value
        return None


class ImagesSpec(SpecModel):
    """The project's own serving images (serving_images/): built where `pulumi up` runs, pushed to the
    environment's ECR repositories, served by digest."""

    build: bool = Field(
        default=False,
        description=(
            "Build the serving image of every engine a service uses (unless the service names its own `image`), "
            "push it to the stack's ECR repository under a content-hash tag and run it by digest. Each base image's "
            "digest is resolved from its registry at the first deploy and kept (an SSM parameter per base release). "
            "Needs Docker with Buildx where `pulumi up` runs. Default false: the upstream releases, by tag."
        ),
    )
    platform: Literal["linux/amd64", "linux/arm64"] = Field(
        default="linux/amd64", description="CPU architecture of the GPU nodes the images run on. Default linux/amd64."
    )


class DeployGateSpec(SpecModel):
    """A check after every serving rollout, run in the cluster by a Job that `pulumi up` waits for."""

    enabled: bool = Field(
        default=False,
        description=(
            "After each service's objects are applied, a Job runs `inferfleet smoke` and, for OpenAI-compatible "
            "engines, a short `inferfleet bench` against the service, held to its `slo`; a failure fails "
            "`pulumi up`. Runs the project's gate image, so needs `images.build`. Default false."
        ),
    )
    num_prompts: int = Field(default=32, ge=1, le=10_000, description="Requests the bench sends. Default 32.")
    concurrency: int = Field(default=4, ge=1, le=1024, description="Requests the bench keeps in flight. Default 4.")
    timeout_seconds: int = Field(
        default=900, ge=60, le=7200, description="The Job's deadline (activeDeadlineSeconds). Default 900."
    )


class StackSpec(SpecModel):
    """One environment: its AWS network and cluster, GPU pools and the models served on them."""

    environment: str = Field(pattern=DNS_LABEL, description="Environment name; equals the file's stem.")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description=f"Tags on every taggable AWS resource: at most {L.USER_TAGS_MAX} (AWS allows "
        f"{L.TAGS_PER_RESOURCE_MAX} per resource; the program keeps {L.PROGRAM_TAGS_RESERVED} for its own), keys of 1 to "
        f"{L.TAG_KEY_MAX} and values of up to {L.TAG_VALUE_MAX} letters, digits, spaces and _ . : / = + - @. "
        "Default {}.",
    )
    aws: AwsSpec = Field(description="Region and AZs.")
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="VPC layout. Defaults: see below.")
    cluster: ClusterSpec = Field(description="The EKS cluster.")
    gpu_pools: list[GpuPoolSpec] = Field(min_length=1, description="GPU node groups (Auto Scaling groups).")
    observability: ObservabilitySpec = Field(
        default_factory=ObservabilitySpec, description="Metrics, dashboards, alerts. Defaults: see below."
    )
    services: list[ServiceSpec] = Field(default_factory=list, description="Models served. Default [].")
    images: ImagesSpec = Field(default_factory=ImagesSpec, description="The project's serving images. Default: not built.")
    deploy_gate: DeployGateSpec = Field(
        default_factory=DeployGateSpec, description="Smoke and bench after each rollout. Default: off."
    )
