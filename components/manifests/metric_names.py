"""The metric names the dashboards and alert rules query, each spelt once, as Prometheus stores them.

Engines rename metrics between releases (vLLM's `gpu_cache_usage_perc` became `kv_cache_usage_perc`,
`time_per_output_token_seconds` became `inter_token_latency_seconds`), and a query on a name that no
longer exists returns no data rather than an error. So every name lives here, with where it was read,
and the e2e test that scrapes a real vLLM checks the vLLM ones against its `/metrics`.

Names are the exposition names: a Prometheus client counter `x` is scraped as `x_total`; a histogram
`x` as `x_bucket`, `x_sum` and `x_count` (the constants below hold the base name, see `bucket`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

# --- vLLM 0.32.0 (components/manifests/versions.py VLLM_VERSION) ------------------------------------
# Read from the installed release: vllm/v1/metrics/loggers.py (PrometheusStatLogger), every metric with
# the labels `model_name` and `engine`; HTTP metrics from vllm/entrypoints/serve/instrumentator/metrics.py
# (prometheus-fastapi-instrumentator's defaults, status codes grouped as 2xx/4xx/5xx).
VLLM_NUM_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
"""Gauge, 0..1 (1 is a full KV cache); was `vllm:gpu_cache_usage_perc` before the V1 engine."""
VLLM_PREFIX_CACHE_QUERIES = "vllm:prefix_cache_queries_total"
VLLM_PREFIX_CACHE_HITS = "vllm:prefix_cache_hits_total"
"""Counters of prompt tokens looked up in / found in the prefix cache (hit rate = hits / queries)."""
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"
"""Finished requests, labelled `finished_reason` (stop, length, abort, error, repetition)."""
VLLM_FINISHED_REASON_LABEL = "finished_reason"
VLLM_FINISHED_ERROR = "error"
"""vLLM's `FinishReason.ERROR` (vllm/v1/engine/__init__.py): an internal error, always answered 500."""
VLLM_TTFT = "vllm:time_to_first_token_seconds"
VLLM_ITL = "vllm:inter_token_latency_seconds"
"""Histogram of the gaps between tokens; was `vllm:time_per_output_token_seconds` before 0.11."""
VLLM_E2E_LATENCY = "vllm:e2e_request_latency_seconds"
VLLM_HTTP_REQUESTS = "http_requests_total"
"""Counter labelled `handler`, `method` and `status` (`2xx`, `4xx`, `5xx`)."""
HTTP_STATUS_LABEL = "status"
HTTP_SERVER_ERROR = "5xx"

# --- Ray Serve 2.54 (the pinned Ray release, in .venv-vllm) -----------------------------------------
# Read from ray/serve/_private/{deployment_state,replica,router,proxy}.py; Ray exports every metric
# with the prefix `ray_` and its counters with `_total` (as the release's own Grafana panels in
# ray/dashboard/modules/metrics/dashboards/serve_dashboard_panels.py query them).
RAY_SERVE_REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
"""Gauge per replica (1 healthy), labelled `application`, `deployment`, `replica`."""
RAY_SERVE_TARGET_REPLICAS = "ray_serve_autoscaling_target_replicas"
"""Gauge per deployment: the replicas Serve autoscaling is heading for."""
RAY_SERVE_PROCESSING_QUERIES = "ray_serve_replica_processing_queries"
"""Gauge per replica: requests it is executing now."""
RAY_SERVE_QUEUED_QUERIES = "ray_serve_deployment_queued_queries"
"""Gauge per handle: requests waiting for a replica to accept them."""
RAY_SERVE_HTTP_REQUESTS = "ray_serve_num_http_requests_total"
RAY_SERVE_HTTP_ERRORS = "ray_serve_num_http_error_requests_total"
RAY_SERVE_HTTP_LATENCY_MS = "ray_serve_http_request_latency_ms"
RAY_APPLICATION_LABEL = "application"
RAY_REPLICA_LABEL = "ReplicaId"
"""The Serve replica on ray_vllm_* series (the same id as `replica` on ray_serve_* ones)."""
RAY_DEPLOYMENT_LABEL = "deployment"




VLLM_TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                       20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_ITL_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                      40.0, 80.0)
"""vLLM 0.32.0's default bounds (vllm/v1/metrics/buckets.py TIME_TO_FIRST_TOKEN_BUCKETS,
INTER_TOKEN_LATENCY_BUCKETS); an e2e test reads them from the installed release."""


@dataclass(frozen=True)
class LlmMetrics:
    """The vLLM engine series one way of serving an LLM exposes, as Prometheus stores them. The three ways
    (vLLM's own server, Ray Serve LLM, Triton's vLLM backend) report different subsets under different
    names; `None` marks a series that way does not report, so no panel or alert queries it."""

    ttft: str
    ttft_buckets_s: tuple[float, ...]
    itl: str
    itl_buckets_s: tuple[float, ...]
    e2e_latency: str
    prompt_tokens: str
    generation_tokens: str
    requests_finished: str | None
    running: str | None
    waiting: str | None
    kv_cache_usage: str | None
    prefix_cache_queries: str | None
    prefix_cache_hits: str | None
    preemptions: str | None
    gauge_window: str | None = None
    """Read gauges as their maximum over this window (Ray's exporter shows a gauge only in some scrapes)."""

    def gauge(self, name: str, selector: str) -> str:
        """A gauge series as rules and panels should read it."""
        series = f"{name}{selector}"
        return f"max_over_time({series}[{self.gauge_window}])" if self.gauge_window else series


VLLM_SERVER = LlmMetrics(
    ttft=VLLM_TTFT, ttft_buckets_s=VLLM_TTFT_BUCKETS_S, itl=VLLM_ITL, itl_buckets_s=VLLM_ITL_BUCKETS_S,
    e2e_latency=VLLM_E2E_LATENCY, prompt_tokens=VLLM_PROMPT_TOKENS, generation_tokens=VLLM_GENERATION_TOKENS,
    requests_finished=VLLM_REQUEST_SUCCESS, running=VLLM_NUM_REQUESTS_RUNNING, waiting=VLLM_NUM_REQUESTS_WAITING,
    kv_cache_usage=VLLM_KV_CACHE_USAGE, prefix_cache_queries=VLLM_PREFIX_CACHE_QUERIES,
    prefix_cache_hits=VLLM_PREFIX_CACHE_HITS, preemptions=VLLM_PREEMPTIONS,
)
"""vLLM's OpenAI-compatible server (and the e2e test's real one)."""


def ray_vllm(name: str) -> str:
    """Ray Serve LLM re-exports vLLM's engine metrics through Ray's exporter (`log_engine_metrics`, on by
    default): `vllm:kv_cache_usage_perc` is scraped as `ray_vllm_kv_cache_usage_perc`."""
    return "ray_" + name.replace(":", "_")


RAY_GAUGE_WINDOW = "1m"
"""Ray 2.54 exports through OpenTelemetry and clears a gauge once read (open_telemetry_metric_recorder.py):
a worker pushes every ~10 s, so a gauge is in the first scrape after each push and absent from the next
(seen on a real scrape: 2 scrapes in 20 at one a second). Rules and panels read Ray gauges as their
maximum over this window, four of the PodMonitor's scrapes; counters and histograms are continuous."""


def ray_gauge(series: str) -> str:
    return f"max_over_time({series}[{RAY_GAUGE_WINDOW}])"


RAY_SERVE_LLM = replace(VLLM_SERVER, gauge_window=RAY_GAUGE_WINDOW, **{
    f.name: ray_vllm(getattr(VLLM_SERVER, f.name))
    for f in fields(LlmMetrics) if f.name != "gauge_window" and isinstance(getattr(VLLM_SERVER, f.name), str)
})
"""vLLM's series as Ray Serve LLM's replicas export them (checked on a real scrape of Ray 2.54 serving a
real vLLM engine with vLLM's Ray stat logger: names, `_total` on counters, vLLM's bucket bounds; plus a
`ReplicaId` label), gauges read over RAY_GAUGE_WINDOW."""

# --- NVIDIA Triton (server metrics, per model, labels `model` and `version`) -------------------------
# Triton's metrics documentation (docs/user_guide/metrics.md) and the names the autoscaling queries use;
# not checked against a running Triton here. Counters keep their names (no `_total`).
TRITON_REQUEST_SUCCESS = "nv_inference_request_success"
TRITON_REQUEST_FAILURE = "nv_inference_request_failure"
TRITON_REQUEST_DURATION_US = "nv_inference_request_duration_us"
TRITON_QUEUE_DURATION_US = "nv_inference_queue_duration_us"
TRITON_COMPUTE_INFER_DURATION_US = "nv_inference_compute_infer_duration_us"
"""Cumulative microseconds; divided by the successes over the same window, the mean per request."""
TRITON_PENDING_REQUESTS = "nv_inference_pending_request_count"
TRITON_MODEL_LABEL = "model"

# --- Triton's vLLM backend (the model's custom metrics on Triton's port, labels `model` and `version`) ------
# Read from triton-inference-server/vllm_backend src/utils/metrics.py as it stands for vLLM's V1 engine
# (the only engine the vLLM in TRITON_VLLM_IMAGE has): histograms of TTFT, of the gaps between tokens
# (still under vLLM's old name `time_per_output_token_seconds`) and of end-to-end latency, with the
# backend's own bounds, and the token counters (custom metrics keep the name given: `_total` is in it).
# It reports no queue, KV-cache or preemption series; Triton's pending count stands in for the queue.
TRITON_VLLM_BACKEND = LlmMetrics(
    ttft=VLLM_TTFT,
    ttft_buckets_s=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    itl="vllm:time_per_output_token_seconds",
    itl_buckets_s=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5),
    e2e_latency=VLLM_E2E_LATENCY, prompt_tokens=VLLM_PROMPT_TOKENS, generation_tokens=VLLM_GENERATION_TOKENS,
    requests_finished=None, running=None, waiting=None, kv_cache_usage=None,
    prefix_cache_queries=None, prefix_cache_hits=None, preemptions=None,
)

# --- NVIDIA DCGM exporter (GPU nodes; labels `gpu`, `UUID`, `modelName`, `Hostname`) ------------------
# Field names as in the exporter's etc/default-counters.csv at the chart's pinned commit (charts.yaml), where
# each of these is enabled; the chart is given DCGM_FIELDS as its complete list (`customMetrics`), so the
# series the dashboards and alerts read are collected whatever a later default list drops.
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
"""Percent of time the GPU was busy."""
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
"""Frame buffer (GPU memory) used and free, MiB."""
DCGM_POWER_USAGE = "DCGM_FI_DEV_POWER_USAGE"
"""Watts."""
DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"
"""Degrees Celsius."""
DCGM_XID_ERRORS = "DCGM_FI_DEV_XID_ERRORS"
"""Gauge: the code of the last XID error the driver reported (0: none)."""
DCGM_FIELDS = (
    (DCGM_GPU_UTIL, "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    (DCGM_FB_USED, "gauge", "Framebuffer memory used (in MiB)."),
    (DCGM_FB_FREE, "gauge", "Framebuffer memory free (in MiB)."),
    (DCGM_POWER_USAGE, "gauge", "Power draw (in W)."),
    (DCGM_GPU_TEMP, "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    (DCGM_XID_ERRORS, "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors."),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
)
"""(DCGM field, Prometheus type, help) the exporter collects: what the fleet's views and alerts read, plus
the tensor-pipe and memory-bandwidth activity that tell a memory-bound decode from a compute-bound one."""
DCGM_NODE_LABEL = "Hostname"
"""The exporter labels each GPU with the node it runs on (its pod's NODE_NAME)."""

# --- kube-state-metrics --------------------------------------------------------------------------
KUBE_NODE_LABELS = "kube_node_labels"
"""One series per node carrying the allow-listed node labels as `label_<sanitised key>`."""
KUBE_NODE_ALLOCATABLE = "kube_node_status_allocatable"
KUBE_POD_PHASE = "kube_pod_status_phase"
KUBE_POD_SCHEDULED = "kube_pod_status_scheduled"
"""The pod's PodScheduled condition: one series per `condition` (`true`, `false`, `unknown`), 1 on the
condition's current status; `condition="false"` at 1 is a pod the scheduler tried and could not place."""
KUBE_POD_CREATED = "kube_pod_created"
"""Gauge: the pod's creation time, Unix seconds."""
KUBE_POD_REQUESTS = "kube_pod_container_resource_requests"
KUBE_GPU_RESOURCE = "nvidia_com_gpu"
"""`nvidia.com/gpu` as kube-state-metrics spells a resource in its `resource` label."""


def dcgm_counters_csv() -> str:
    """DCGM_FIELDS in the exporter's counters-file format (`field, type, help` per line)."""
    return "".join(f"{name}, {kind}, {help_}\n" for name, kind, help_ in DCGM_FIELDS)


def bucket(histogram: str) -> str:
    """The bucket series of a histogram (what `histogram_quantile` reads)."""
    return histogram + "_bucket"


def kube_label(kubernetes_label: str) -> str:
    """kube-state-metrics' name of a Kubernetes label on `kube_node_labels` and friends:
    `inferfleet.io/pool` -> `label_inferfleet_io_pool`."""
    return "label_" + "".join(c if c.isalnum() else "_" for c in kubernetes_label)
