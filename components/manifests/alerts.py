"""PrometheusRules from the spec: SLO burn-rate alerts per service, saturation per LLM service, and the
fleet's GPU-health and capacity alerts.

SLO alerts follow the Google SRE workbook's multi-window, multi-burn-rate scheme (chapter "Alerting on
SLOs", approach 6): an alert fires only when the error budget burns fast over a long window *and* is
still burning over a short one, so it pages quickly on a real outage and resets quickly once it ends.
Error ratios are recorded once per window (recording rules) and the alerts compare them with
`factor x budget`, the budget being `1 - availability` for errors and 1% for a p99 latency target.

Every metric name comes from components/manifests/metric_names.py, where each is written once with the
source it was read from; latency and saturation read the series of the service's way of serving its
model (monitoring.llm_metrics): vLLM's server, Ray Serve LLM's re-export, or Triton's vLLM backend.
Fleet alerts read the DCGM exporter, kube-state-metrics and aws-node-termination-handler 1.25
(`pkg/observability/opentelemetry.go`: `actions_total{node_action, node_status}`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog
from components.manifests import metric_names as m
from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.monitoring import llm_metrics
from components.manifests.placement import replica_sets
from components.manifests.scheduling import POOL_LABEL
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec

API_VERSION = "monitoring.coreos.com/v1"
RULES_NAMESPACE = "monitoring"
RULE_LABELS = {"app.kubernetes.io/part-of": s.PART_OF}
RUNBOOK_DIR = "docs/runbooks"
"""Each alert's `runbook` annotation is its file here, `<AlertName>.md`, in the repository the stack is
deployed from (a path, not a URL: the project does not know where its users host their repository)."""

PAGE = "page"
TICKET = "ticket"
SLO_LABEL = "slo"
"""Burn alerts name their SLI (`errors`, `ttft_slow`, `itl_slow`) in this label."""

LATENCY_BUDGET = 0.01
"""A p99 target lets 1% of requests be slower than it."""


@dataclass(frozen=True)
class BurnWindow:
    """One pair of the workbook's table: the burn-rate factor over a long window, confirmed by a short one."""

    long: str
    short: str
    factor: float
    severity: str


BURN_WINDOWS = (
    BurnWindow("1h", "5m", 14.4, PAGE),  # 2% of a 30-day budget in an hour
    BurnWindow("6h", "30m", 6.0, PAGE),  # 5% in six hours
    BurnWindow("1d", "2h", 3.0, TICKET),  # 10% in a day
    BurnWindow("3d", "6h", 1.0, TICKET),  # 10% in three days: the budget runs out at the window's end
)
RATE_WINDOWS = tuple(dict.fromkeys(w for b in BURN_WINDOWS for w in (b.short, b.long)))
BURN_FOR = {PAGE: "2m", TICKET: "15m"}
"""A page needs the burn to hold through two evaluations; a ticket a quarter of an hour."""

"""Latency SLIs read a histogram's buckets (metric_names.LlmMetrics holds each engine's bounds). A histogram
counts only at its bounds, so a target between two bounds is measured at the largest bound at or below it:
requests slower than that bound count as slow. The alert errs early (a 2 s TTFT target is measured at 1 s),
never late."""
CUSTOM_BUCKETS_ARG = "custom-histogram-buckets"

KV_CACHE_USAGE_MAX = 0.9
KV_CACHE_FOR = "15m"
QUEUE_FOR = "10m"
PREEMPTION_FOR = "15m"
GPU_TEMP_MAX_CELSIUS = 85
"""Data-centre GPUs (A10G, L4, L40S, A100, H100) start slowing their clocks in the high 80s C."""
GPU_TEMP_FOR = "10m"
GPU_PENDING_FOR = "10m"
POOL_AT_MAX_FOR = "15m"
NODE_DRAINS_WINDOW = "1h"
NODE_DRAINS_MAX = 3
"""More drains of GPU nodes an hour than this (spot interruptions, rebalances) is capacity churn to look at."""
GPU_REQUEST_RESOURCE = m.KUBE_GPU_RESOURCE
DRAIN_ACTION = "cordon-and-drain"


def _number(value: float) -> str:
    """A threshold as PromQL reads it, without float noise (14.4 x 0.001 -> 0.0144)."""
    return f"{value:.6g}"


def _matchers(**labels: str) -> str:
    return ",".join(f'{key}="{value}"' for key, value in labels.items())


def _serving_selector(service: ServiceSpec, *extra: str) -> str:
    """The service's serving series, without the shadow: its answers are discarded, so its errors and
    latency are not the users'."""
    parts = [
        _matchers(namespace=s.SERVING_NAMESPACE, **{SERVICE_METRIC_LABEL: service.name}),
        f'{REVISION_METRIC_LABEL}!="shadow"',
        *extra,
    ]
    return "{" + ",".join(parts) + "}"


def _by_service(expr: str) -> str:
    return f"sum by ({SERVICE_METRIC_LABEL}) ({expr})"


def _ratio(bad: str, total: str) -> str:
    """bad / total per service; 0, not absent, while no bad series exists yet (a counter labelled by
    status appears only with its first 5xx), so SLO panels over the records read 0 on a healthy service."""
    return _summed_ratio(_by_service(bad), _by_service(total))


def _summed_ratio(bad: str, total: str) -> str:
    return f"({bad}\nor\n0 * {total})\n/\n{total}"


def runbook_path(alert: str) -> str:
    return f"{RUNBOOK_DIR}/{alert}.md"


def _alert(name: str, expr: str, severity: str, summary: str, description: str, for_: str | None = None,
           service: ServiceSpec | None = None, **labels: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **({SERVICE_METRIC_LABEL: service.name} if service else {}), **labels}
    rule["annotations"] = {"summary": summary, "description": description, "runbook": runbook_path(name)}
    return rule


# --- SLIs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sli:
    """A share of bad requests: its recording-rule name stem, budget, the ratio over a window, and
    the alert names and wording."""

    key: str
    alert_stem: str
    budget: float
    target: str
    bad_over_window: dict[str, str]
    histogram: str | None = None
    bound_s: float | None = None
    """For a latency SLI: the histogram and the bucket bound it counts requests within."""

    def record(self, window: str) -> str:
        return f"inferfleet:slo_{self.key}:ratio_rate{window}"


def _error_ratio(service: ServiceSpec, catalog: Catalog, window: str) -> str | None:
    """5xx answers over all answers of the service's API (4xx are the client's)."""
    if service.engine == "vllm":
        api = _serving_selector(service, 'handler=~"/v1/.+"')
        errors = _serving_selector(service, 'handler=~"/v1/.+"', 'status="5xx"')
        return _ratio(f"rate({m.VLLM_HTTP_REQUESTS}{errors}[{window}])", f"rate({m.VLLM_HTTP_REQUESTS}{api}[{window}])")
    if service.engine == "ray-serve":
        routes = 'route!~"/-/.*"'  # Serve's own health and routes endpoints
        errors = _serving_selector(service, routes, 'error_code=~"5.."')
        return _ratio(
            f"rate({m.RAY_SERVE_HTTP_ERRORS}{errors}[{window}])",
            f"rate({m.RAY_SERVE_HTTP_REQUESTS}{_serving_selector(service, routes)}[{window}])",
        )
    if service.engine == "triton":
        sel = _serving_selector(service)
        failed = _by_service(f"rate({m.TRITON_REQUEST_FAILURE}{sel}[{window}])")
        succeeded = _by_service(f"rate({m.TRITON_REQUEST_SUCCESS}{sel}[{window}])")
        return _summed_ratio(failed, f"({succeeded} + ({failed} or 0 * {succeeded}))")
    return None


def _bound_matcher(bound: float) -> str:
    """`le` as the Python client writes it ("1.0") and as Prometheus 3 normalises it ("1")."""
    if bound == int(bound):
        return f'le=~"{int(bound)}(\\\\.0)?"'
    return f'le="{bound!r}"'


def latency_bound(target_ms: float, buckets: tuple[float, ...]) -> float | None:
    """The largest bucket bound at or below the target (None: the target is below every bound)."""
    below = [b for b in buckets if b * 1000 <= target_ms + 1e-9]
    return below[-1] if below else None


def _slow_ratio(service: ServiceSpec, histogram: str, bound: float, window: str) -> str:
    """1 - (requests within the bound / all requests) of a latency histogram."""
    within = f"rate({histogram}_bucket{_serving_selector(service, _bound_matcher(bound))}[{window}])"
    total = f"rate({histogram}_count{_serving_selector(service)}[{window}])"
    return f"1 - (\n{_ratio(within, total)}\n)"


def latency_metrics(service: ServiceSpec, catalog: Catalog) -> m.LlmMetrics | None:
    """The service's latency histograms, unless its engine arguments replace vLLM's bucket bounds (the
    bound an alert reads would then not exist)."""
    metrics = llm_metrics(service, catalog)
    if metrics is None or service.engine_arg(CUSTOM_BUCKETS_ARG) is not None:
        return None
    return metrics


def slis(service: ServiceSpec, catalog: Catalog) -> list[Sli]:
    """The service's SLIs that its SLO names and its engine can measure."""
    slo = service.slo
    if slo is None:
        return []
    found = []
    if slo.availability is not None and _error_ratio(service, catalog, "5m") is not None:
        found.append(Sli("errors", "ErrorBudgetBurn", 1 - slo.availability, f"{slo.availability * 100:g}% availability",
                         {w: _error_ratio(service, catalog, w) or "" for w in RATE_WINDOWS}))
    metrics = latency_metrics(service, catalog)
    if metrics is None:
        return found
    latencies = (("ttft", "TtftBudgetBurn", metrics.ttft, slo.ttft_p99_ms, metrics.ttft_buckets_s),
                 ("itl", "ItlBudgetBurn", metrics.itl, slo.itl_p99_ms, metrics.itl_buckets_s))
    for key, stem, histogram, target_ms, buckets in latencies:
        bound = latency_bound(target_ms, buckets) if target_ms else None
        if bound is not None:
            target = f"p99 {key.upper()} {target_ms:g} ms (measured at the {bound:g} s bucket)"
            found.append(Sli(f"{key}_slow", stem, LATENCY_BUDGET, target,
                             {w: _slow_ratio(service, histogram, bound, w) for w in RATE_WINDOWS}, histogram, bound))
    return found


def _recording_rules(sli: Sli, service: ServiceSpec) -> list[dict[str, Any]]:
    """The service label is already on the result (sum by it); stating it keeps records of different
    services apart for promtool's duplicate-rule lint when the operator merges every PrometheusRule."""
    labels = {SERVICE_METRIC_LABEL: service.name}
    return [{"record": sli.record(window), "expr": expr, "labels": dict(labels)} for window, expr in sli.bad_over_window.items()]


def burn_threshold(window: BurnWindow, budget: float) -> str:
    return _number(window.factor * budget)


def _burn_condition(sli: Sli, window: BurnWindow, service: ServiceSpec) -> str:
    selector = "{" + _matchers(**{SERVICE_METRIC_LABEL: service.name}) + "}"
    threshold = burn_threshold(window, sli.budget)
    return (
        f"(\n  {sli.record(window.long)}{selector} > {threshold}\nand\n"
        f"  {sli.record(window.short)}{selector} > {threshold}\n)"
    )


def burn_alert_name(sli: Sli, severity: str) -> str:
    return f"Inferfleet{sli.alert_stem}{'Fast' if severity == PAGE else 'Slow'}"


def _burn_alerts(sli: Sli, service: ServiceSpec) -> list[dict[str, Any]]:
    """One page alert over the two fast window pairs, one ticket alert over the two slow ones (the
    workbook's approach 6 with `or`, so each alert name has one meaning and one runbook)."""
    alerts = []
    for severity in (PAGE, TICKET):
        windows = [w for w in BURN_WINDOWS if w.severity == severity]
        expr = "\nor\n".join(_burn_condition(sli, w, service) for w in windows)
        pairs = " or ".join(f"{w.long}/{w.short} at {w.factor:g}x" for w in windows)
        name = burn_alert_name(sli, severity)
        alerts.append(_alert(
            name, expr, severity,
            summary=f"{service.name}: the {sli.target} SLO's error budget is burning too fast",
            description=f"Share of bad requests ({sli.key}) above {pairs} the budget of {_number(sli.budget)} "
                        f"({service.engine} service {service.name}).",
            for_=BURN_FOR[severity], service=service, **{SLO_LABEL: sli.key},
        ))
    return alerts


# --- saturation -------------------------------------------------------------------------------------


def _queue_backlog(service: ServiceSpec, spec: StackSpec, plan: StackPlan, queue: Callable[[str], str]) -> str:
    """A replica's queue above what its replica set was planned to carry; Ray's pods carry no replica-set
    label, so theirs are held to the largest planned concurrency of the service's sets."""
    per_pod = _per_replica(service)
    sets = replica_sets(service, spec, plan)
    if service.engine == "ray-serve":
        limit = max(max(1, rs.plan.planned_concurrency) for rs in sets)
        return f"max by ({per_pod}) ({queue(_serving_selector(service))}) > {limit}"
    return "\nor\n".join(
        f"(max by ({per_pod}) ({queue(_serving_selector(service, _matchers(**{REPLICA_SET_METRIC_LABEL: rs.name})))})"
        f" > {max(1, rs.plan.planned_concurrency)})"
        for rs in sets
    )


def _per_replica(service: ServiceSpec) -> str:
    """What one replica's series are grouped by: its pod, and on Ray its Serve replica (several may share a pod)."""
    labels = [SERVICE_METRIC_LABEL, REPLICA_SET_METRIC_LABEL, "pod"]
    return ", ".join([*labels, m.RAY_REPLICA_LABEL] if service.engine == "ray-serve" else labels)


def _saturation_alerts(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """Engine pressure that precedes an SLO burn: a full KV cache, preemptions, a standing queue, each where
    the engine reports it (Triton's vLLM backend reports no KV cache; Triton's pending count is its queue)."""
    metrics = llm_metrics(service, catalog)
    per_pod = _per_replica(service)
    alerts = []
    if metrics is not None and metrics.kv_cache_usage is not None:
        alerts.append(_alert(
            "InferfleetKvCacheSaturated",
            f"max by ({per_pod}) ({metrics.gauge(metrics.kv_cache_usage, _serving_selector(service))}) > {KV_CACHE_USAGE_MAX}",
            TICKET, f"{service.name}: a replica's KV cache is above {KV_CACHE_USAGE_MAX:.0%}",
            f"vLLM KV-cache usage above {KV_CACHE_USAGE_MAX:.0%} for {KV_CACHE_FOR}: new sequences wait or "
            "running ones are preempted.", KV_CACHE_FOR, service))
    if metrics is not None and metrics.preemptions is not None:
        alerts.append(_alert(
            "InferfleetPreemptions",
            f"sum by ({per_pod}) (rate({metrics.preemptions}{_serving_selector(service)}[5m])) > 0",
            TICKET, f"{service.name}: vLLM keeps preempting sequences",
            f"vLLM preempted running sequences for lack of KV-cache blocks throughout {PREEMPTION_FOR}; "
            "preempted sequences are recomputed, which costs throughput and latency.", PREEMPTION_FOR, service))
    waiting = metrics.waiting if metrics is not None and metrics.waiting else (
        m.TRITON_PENDING_REQUESTS if service.engine == "triton" else None)
    if waiting is not None:
        def queue(selector: str) -> str:
            return metrics.gauge(waiting, selector) if metrics is not None and metrics.waiting else f"{waiting}{selector}"

        alerts.append(_alert(
            "InferfleetQueueBacklog", _queue_backlog(service, spec, plan, queue),
            TICKET, f"{service.name}: requests queue on a replica beyond its planned concurrency",
            f"{waiting} above the plan's per-replica concurrency for {QUEUE_FOR}: "
            "the service gets more load than its replicas were sized for and the autoscaler is not absorbing it.",
            QUEUE_FOR, service))
    return alerts


# --- fleet -----------------------------------------------------------------------------------------------


def _gpu_health_alerts() -> list[dict[str, Any]]:
    by_gpu = "Hostname, gpu, UUID"
    return [
        _alert("InferfleetGpuXidError", f"max by ({by_gpu}) ({m.DCGM_XID_ERRORS}) > 0", PAGE,
               "A GPU reported an XID error",
               "DCGM reports a non-zero XID (the driver's error code for a GPU fault) on a GPU; its replica may "
               "hang or return errors.", None),
        _alert("InferfleetGpuTemperatureHigh", f"max by ({by_gpu}) ({m.DCGM_GPU_TEMP}) > {GPU_TEMP_MAX_CELSIUS}",
               TICKET, f"A GPU is above {GPU_TEMP_MAX_CELSIUS} C",
               f"GPU temperature above {GPU_TEMP_MAX_CELSIUS} C for {GPU_TEMP_FOR}: the GPU throttles its clocks "
               "and its replica slows down.", GPU_TEMP_FOR),
    ]


def _capacity_alerts(spec: StackSpec) -> list[dict[str, Any]]:
    pending = (
        'max by (namespace, pod) (kube_pod_status_phase{phase="Pending"}) == 1\n'
        "and on (namespace, pod)\n"
        f'sum by (namespace, pod) (kube_pod_container_resource_requests{{resource="{GPU_REQUEST_RESOURCE}"}}) > 0'
    )
    pool_label = m.kube_label(POOL_LABEL)
    at_max = "\nor\n".join(
        f'count by ({pool_label}) (kube_node_labels{{{pool_label}="{pool.name}"}}) >= {pool.max_size}'
        for pool in spec.gpu_pools
    )
    drains = f'sum(increase(actions_total{{node_action="{DRAIN_ACTION}"}}[{NODE_DRAINS_WINDOW}])) > {NODE_DRAINS_MAX}'
    return [
        _alert("InferfleetGpuPodPending", pending, TICKET, "A GPU pod has been pending for 10 minutes",
               f"A pod requesting {s.GPU_RESOURCE} has not been scheduled for {GPU_PENDING_FOR}: no node has a free "
               "GPU and the autoscaler has not added one.", GPU_PENDING_FOR),
        _alert("InferfleetGpuPoolAtMaximum", at_max, TICKET, "A GPU pool is at its maximum size",
               f"The pool has as many nodes as its maxSize for {POOL_AT_MAX_FOR}: it cannot grow for more load.",
               POOL_AT_MAX_FOR),
        _alert("InferfleetSpotInterruptions", drains, TICKET, "GPU nodes are being drained often",
               f"aws-node-termination-handler cordoned and drained more than {NODE_DRAINS_MAX} nodes in "
               f"{NODE_DRAINS_WINDOW} (spot interruptions, rebalance recommendations, scale-in).", None),
        _alert("InferfleetNodeDrainFailed", _counted_since('actions_total{node_status="error"}', NODE_DRAINS_WINDOW), PAGE,
               "aws-node-termination-handler failed to act on a node",
               "A cordon or drain failed: a node going away may take its replicas down without a graceful drain.",
               None),
    ]


# --- objects ---------------------------------------------------------------------------------------------


def _prometheus_rule(name: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": RULES_NAMESPACE, "labels": dict(RULE_LABELS)},
        "spec": {"groups": groups},
    }


def _counted_since(series: str, window: str) -> str:
    """The counter went up within the window, counting its birth: the handler creates a labelled series
    at 1 with its first event, and `increase()` over a series that starts at 1 sees nothing."""
    return f"sum(increase({series}[{window}])) > 0\nor\nsum({series} unless {series} offset {window}) > 0"


def service_groups(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """Recording rules and the alerts over them in separate groups: Prometheus evaluates groups
    independently (only rules within a group are ordered), so a burn alert may read records one
    evaluation interval old, which is immaterial at its windows."""
    found = slis(service, catalog)
    groups = []
    if found:
        groups.append({"name": f"{service.name}.slo.recording", "rules": [r for i in found for r in _recording_rules(i, service)]})
        groups.append({"name": f"{service.name}.slo.alerts", "rules": [a for i in found for a in _burn_alerts(i, service)]})
    saturation = _saturation_alerts(service, spec, plan, catalog)
    if saturation:
        groups.append({"name": f"{service.name}.saturation", "rules": saturation})
    return groups


def fleet_groups(spec: StackSpec) -> list[dict[str, Any]]:
    return [
        {"name": "fleet.gpu-health", "rules": _gpu_health_alerts()},
        {"name": "fleet.capacity", "rules": _capacity_alerts(spec)},
    ]


def prometheus_rules(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """One PrometheusRule per service with rules, and one for the fleet; none when observability is off."""
    if not spec.observability.enabled:
        return []
    rules = []
    for service in spec.services:
        groups = service_groups(service, spec, plan, catalog)
        if groups:
            rules.append(_prometheus_rule(f"inferfleet-{service.name}", groups))
    rules.append(_prometheus_rule("inferfleet-fleet", fleet_groups(spec)))
    return rules


def rule_expressions(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[tuple[str, str]]:
    """(record or alert name, PromQL) of every rule, for evaluating them against a real Prometheus."""
    return [
        (rule.get("record") or rule["alert"], rule["expr"])
        for obj in prometheus_rules(spec, plan, catalog)
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
    ]
