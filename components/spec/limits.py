"""What a stack spec's numbers, tags and S3 names may be: one home for every bound, each with its source.

Where AWS or Kubernetes documents a limit, the constant says which document (or which field of AWS's own
service model, botocore 1.43's `data/<service>/service-2.json`). Where nothing outside the project limits a
value but a larger one makes no sense, or would overflow what the planner computes or a manifest renders, the
bound is chosen here and says so. The spec models (components/spec/models.py) and rules
(components/spec/rules.py) read these; the AWS layer imports the S3 bucket rule from here, so `validate`
refuses everything `render` would.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from components.spec.naming import BUCKET_NAME_MAX

INT32_MAX = 2**31 - 1
"""Kubernetes' `int32` fields (a ScaledObject's min/maxReplicaCount, KEDA's CRD schema) and AWS's `Integer`
API members (Auto Scaling MinSize/MaxSize, EC2 VolumeSize; botocore's service model types them `integer`, which
the AWS SDKs read as a 32-bit int). Every bound below is far under it."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of an integer `engineArgs` value: vLLM reads its flags as Python ints, but hands them to torch
and C++ kernels as int64; a larger one only overflows there, after the rollout."""

# ---- Nodes and replicas --------------------------------------------------------------------------------------

KUBERNETES_MAX_NODES = 5_000
"""Kubernetes' scalability thresholds ("Considerations for large clusters", kubernetes.io/docs/setup/best-practices/
cluster-large/): a cluster of no more than 5,000 nodes, 150,000 pods, 110 pods per node. EC2 Auto Scaling has
no quota on a group's size (only the account's vCPU quotas), so this is the documented limit a GPU pool, and
the sum of every pool's maxSize, runs into first."""
MAX_POOL_NODES = KUBERNETES_MAX_NODES
"""gpuPools[].minSize/maxSize and warmPool.size: every instance of a pool is a node of the one cluster."""
EKS_MANAGED_NODE_GROUP_MAX_NODES = 450
"""Amazon EKS service quotas, "Nodes per managed node group": 450 by default (adjustable). The system pool is a
managed node group for add-ons, which never needs more."""
EKS_PUBLIC_ACCESS_CIDRS_MAX = 40
"""Amazon EKS service quotas, "Public endpoint access CIDR ranges per cluster": 40, not adjustable."""
MAX_REPLICAS = KUBERNETES_MAX_NODES
"""replicas.min/max of a service or a pipeline stage, canary/shadow replicas. Rendered as int32 (ScaledObject
min/maxReplicaCount, Ray Serve's min/max_replicas); chosen: as many replicas as a cluster may have nodes. A
GPU replica holds at least one GPU, so a service of more is not a fleet anyone plans."""
MAX_GPUS_PER_NODE = 8
"""The most GPUs of any EC2 GPU instance type (p4d/p4de/p5/p5e/p5en, g5/g6/g6e.48xlarge: 8); the catalog
holds no larger one (tests/catalog checks it)."""
MAX_HEADROOM_GPUS = MAX_POOL_NODES * MAX_GPUS_PER_NODE
"""gpuPools[].headroomGpus: no more GPUs than the largest pool can hold (the planner checks the pool's own)."""
MAX_PARALLEL_SIZE = MAX_POOL_NODES
"""tensorParallelSize and pipelineParallelSize: pipeline stages span at most a pool's nodes; the planner then
holds tensor parallelism within one node's GPUs and pipeline parallelism within the pool's maxSize."""

# ---- Volumes and retention -----------------------------------------------------------------------------------

EBS_VOLUME_MAX_GIB = 16_384
"""The largest gp2 volume, and gp3's until 2025 (EC2 API Reference, LaunchTemplateEbsBlockDeviceRequest
VolumeSize: "gp2: 1 - 16,384 GiB"; botocore 1.43 now lists gp3 up to 65,536 GiB, which not every Region and
managed node group default (gp2) offers). Bounds every root volume (gpuPools[].rootVolumeGiB,
cluster.systemPool.diskSizeGiB) and the Prometheus volume (observability.storageGiB)."""
MAX_RETENTION_DAYS = 3_650
"""observability.retentionDays, rendered as Prometheus' `--storage.tsdb.retention.time` `<n>d`. Prometheus parses
durations into int64 nanoseconds (about 106,751 days at most); chosen: ten years, more than a volume of at
most EBS_VOLUME_MAX_GIB holds for a fleet's metrics (use managedPrometheus for long history)."""

# ---- Models and traffic --------------------------------------------------------------------------------------

MAX_CONTEXT_TOKENS = 2**24
"""16,777,216 tokens: context lengths, maxModelLen and a workload's token counts. Chosen above the longest
published context (Llama 4 Scout's 10M) so the KV-cache arithmetic stays an ordinary number."""
MAX_MODEL_PARAMETERS = 10**13
"""Ten trillion: ten times the largest published open-weights model (about 1T parameters); an inline
architecture's parameters and activeParameters."""
MAX_LAYERS = 1_024
"""Chosen: published models have at most a few hundred layers (Llama 3.1 405B: 126)."""
MAX_MODEL_WIDTH = 2**20
"""hiddenSize and intermediateSize. Chosen: published widths are at most tens of thousands (Llama 3.1 405B:
16,384 and 53,248)."""
MAX_HEADS = 1_024
"""attentionHeads, kvHeads and headDim. Chosen: published models use at most a few hundred heads and head
dimensions up to 256."""
MAX_VOCAB_SIZE = 2**22
"""Chosen: published vocabularies are at most a few hundred thousand tokens (Gemma 3: 262,144)."""
MAX_EXPERTS = 4_096
"""experts and activeExperts. Chosen: published MoE models route over at most a few hundred experts."""
MIN_REQUESTS_PER_SECOND = 1e-6
"""workload.peakRequestsPerSecond's least value: one request in about 12 days. Chosen: below it the fleet's
output tokens per hour underflow to zero in the planner's $-per-million-tokens (a smallest float, 5e-324, crashed
the plan with ZeroDivisionError)."""
MAX_REQUESTS_PER_SECOND = 1_000_000.0
"""workload.peakRequestsPerSecond. Chosen: a million requests per second to one service is beyond any fleet a
5,000-node cluster can run; the planner's replica counts stay ordinary integers."""
MAX_LATENCY_MS = 3_600_000.0
"""slo.ttftP99Ms and slo.itlP99Ms. Chosen: an hour; no client waits longer for a token, and the thresholds
rendered into dashboards, alerts and the deploy gate's bench stay ordinary numbers."""
MIN_AVAILABILITY = 0.5
MAX_AVAILABILITY = 0.99999
"""slo.availability in (0.5, 0.99999]. Chosen: five nines leave an error budget of 1e-5; the fast-burn alert
(14.4 x budget over 5 minutes) then fires on one error in about 7,000 requests, and a finer target cannot be
measured over the alert windows at any rate a service serves."""

# ---- Engines -------------------------------------------------------------------------------------------------

RAY_RESOURCE_PRECISION = 0.0001
"""Ray refuses a fractional resource quantity finer than 0.0001 ("The precision of the fractional quantity of
resource num_cpus cannot go beyond 0.0001", ray/_common/ray_option_utils.py `_validate_resource_quantity`, Ray
2.54): the least pipeline[].numCpus."""
MAX_STAGE_CPUS = 896.0
"""pipeline[].numCpus: the most vCPUs of any EC2 instance type (u7i/u7in *.224xlarge: 896)."""
MAX_TRITON_BATCH_SIZE = INT32_MAX
"""triton.maxBatchSize: `int32 max_batch_size` in Triton's model_config.proto (protobuf refuses more)."""
MAX_TRITON_QUEUE_DELAY_US = int(MAX_LATENCY_MS) * 1000
"""triton.maxQueueDelayUs (`uint64 max_queue_delay_microseconds` in model_config.proto). Chosen: no longer than
the longest latency target, MAX_LATENCY_MS."""
MAX_TRITON_INSTANCES_PER_GPU = 64
"""triton.instancesPerGpu (`int32 count` of an instance group). Chosen: each instance holds its own copy of the
model; at 64 a copy gets under 2.2 GiB of an H200."""

# ---- Tags ----------------------------------------------------------------------------------------------------

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAGS_PER_RESOURCE_MAX = 50
"""AWS tagging limits ("Tagging AWS resources", Tag naming limits and requirements; the same text in the EKS
and Auto Scaling service models, TagKey max 128, TagValue max 256): a key of 1 to 128 and a value of 0 to 256
Unicode characters, at most 50 user tags per resource."""
PROGRAM_TAGS_RESERVED = 20
"""Tags the program adds to one resource beside the spec's own. The most it adds today is 14, on a spot GPU
pool's Auto Scaling group (Name, inferfleet:environment, inferfleet:managed-by, three Cluster Autoscaler
discovery/ownership tags, four node-template labels, two node-template taints, the GPU resource, the
termination handler's managed tag); tests/spec/test_limits.py counts them. Six more are kept for new labels
and taints."""
USER_TAGS_MAX = TAGS_PER_RESOURCE_MAX - PROGRAM_TAGS_RESERVED
TAG_PUNCTUATION = frozenset("_.:/=+-@")
"""Besides letters, digits and spaces: "letters, numbers, and spaces representable in UTF-8, and the following
characters: + - = . _ : / @" (the AWS tagging docs; EKS's TagMap documentation says the same). Some services
accept more, but a spec tag goes on every taggable resource, so it must satisfy the strictest."""
RESERVED_TAG_PREFIX = "aws:"
"""Reserved for AWS in keys and values, in any letter case (EKS TagMap documentation: "Do not use aws:, AWS:, or
any upper or lowercase combination of such as a prefix for either keys or values")."""
PROGRAM_TAG_KEYS = frozenset({"name", "aws-node-termination-handler/managed"})
"""Keys (lower-cased) the program sets itself: `Name` (components/aws/tags.py `named`) and the termination
handler's managed tag (components/aws/gpu_pool.py); a spec tag with one of them would be overwritten."""
PROGRAM_TAG_PREFIXES = ("inferfleet:", "k8s.io/cluster-autoscaler/", "kubernetes.io/cluster/", "kubernetes.io/role/")
"""Lower-cased key prefixes the program and the Kubernetes integrations own: inferfleet:environment and
inferfleet:managed-by (stack_tags), Cluster Autoscaler's discovery and node-template tags, the cluster ownership
and load-balancer subnet role tags (components/aws/network.py subnet_tags)."""


def tag_text_problem(text: str, what: str, limit: int) -> str | None:
    """Why AWS would refuse `text` as a tag key or value (`what`), or None. The length is checked first, so a
    huge value is refused without looking at its characters."""
    if len(text) > limit:
        return f"{what} is {len(text)} characters, over AWS's {limit}"
    if what == "key" and not text:
        return "a tag key cannot be empty"
    bad = sorted({c for c in text if not _tag_character(c)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        return (f"{what} holds {shown}: AWS tags allow only letters, digits, spaces and _ . : / = + - @")
    if text.lower().startswith(RESERVED_TAG_PREFIX):
        return f"the {RESERVED_TAG_PREFIX} prefix is reserved for AWS"
    return None


def _tag_character(c: str) -> bool:
    return c.isalnum() or c in TAG_PUNCTUATION or unicodedata.category(c) == "Zs"


def program_tag_key(key: str) -> bool:
    """Whether the program (or a Kubernetes integration) sets this key itself, in any letter case."""
    lowered = key.lower()
    return lowered in PROGRAM_TAG_KEYS or lowered.startswith(PROGRAM_TAG_PREFIXES)


# ---- S3 ------------------------------------------------------------------------------------------------------

BUCKET_NAME_MIN = 3
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
"""S3 User Guide, "General purpose bucket naming rules": 3 to 63 characters; lowercase letters, numbers, dots and
hyphens; a letter or number first and last; no two adjacent periods; not formatted as an IP address; not starting
with xn--, sthree- or amzn-s3-demo-; not ending with -s3alias (access point aliases), --ol-s3 (Object Lambda
access point aliases), .mrap (Multi-Region Access Points), --x-s3 (directory buckets) or --table-s3 (table
buckets). A period next to a hyphen is refused too: the name is then not a valid DNS name for virtual-hosted
requests (the legacy rules S3 still recommends)."""
S3_KEY_MAX_BYTES = 1024
"""S3 User Guide, "Naming Amazon S3 objects": "The name for a key is a sequence of Unicode characters whose UTF-8
encoding is at most 1,024 bytes long"."""
IAM_RESOURCE_SPECIAL = ("*", "?", "${")
"""Characters with a meaning in an IAM policy's Resource and StringLike condition (wildcards, policy variables;
IAM User Guide, "IAM JSON policy elements: Resource"): a model prefix is put there, so it must not widen the
grant it is meant to narrow."""


def bucket_name_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a general purpose bucket name, or None."""
    if not BUCKET_NAME_MIN <= len(name) <= BUCKET_NAME_MAX or not _BUCKET_NAME.match(name):
        return (f"{BUCKET_NAME_MIN} to {BUCKET_NAME_MAX} characters of lowercase letters, digits, dots and hyphens, "
                "starting and ending with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        return "no two adjacent periods, and no period next to a hyphen"
    try:
        ipaddress.IPv4Address(name)
        return "must not be formatted as an IP address"
    except ValueError:
        pass
    if name.startswith(BUCKET_RESERVED_PREFIXES) or name.endswith(BUCKET_RESERVED_SUFFIXES):
        return "uses a prefix or suffix S3 reserves"
    return None


def s3_key_prefix_problem(prefix: str) -> str | None:
    """Why a key prefix cannot name where weights are (too long for S3, or special to IAM), or None."""
    if len(prefix.encode("utf-8", "surrogatepass")) > S3_KEY_MAX_BYTES:
        return f"the key prefix is over S3's {S3_KEY_MAX_BYTES} bytes"
    special = [s for s in IAM_RESOURCE_SPECIAL if s in prefix]
    if special:
        return f"the key prefix holds {' '.join(special)}, which IAM policies read as a wildcard or variable"
    return None
