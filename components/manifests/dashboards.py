"""Grafana dashboards generated from the spec and its plan, shipped as ConfigMaps that Grafana's sidecar
(kube-prometheus-stack) loads: a fleet overview, one dashboard per service, one per engine that needs its
own view (Triton, Ray Serve) and the GPUs.

Generated rather than hand-written JSON so that a service's SLO becomes the threshold line on its latency
panels, the plan's cost figures appear as they were planned, and every query is built from the metric names
in components/manifests/metric_names.py and the labels the serving PodMonitor copies
(components/manifests/monitoring.py). `dashboard_expressions` lists every query so tests can parse them
(promtool) and evaluate them against a real Prometheus scraping a real vLLM.

Grafana JSON: the classic dashboard model at `SCHEMA_VERSION`; every panel and target reads the
`datasource` template variable, so the dashboards work with whichever Prometheus data source Grafana has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from components.catalog import Catalog
from components.manifests import metric_names as m
from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.monitoring import (
    GRAFANA_DASHBOARD_LABEL,
    GRAFANA_DASHBOARD_LABEL_VALUE,
    MONITORING_NAMESPACE,
    llm_metrics,
)
from components.manifests.scheduling import CAPACITY_LABEL, CAPACITY_VALUES, POOL_LABEL
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec

SCHEMA_VERSION = 41
"""The classic dashboard model as Grafana 12 writes it. Grafana migrates older versions on load, never
newer ones, so this must not exceed the Grafana the chart runs: Grafana's own migrations
(apps/dashboard/pkg/migration/schemaversion/) run to v43 in its current source, and kube-prometheus-stack
88.0.0 ships Grafana 13 (13.1.1 in a public lock of that chart's images; not confirmed from the chart itself)."""
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": "${" + DATASOURCE_VARIABLE + "}"}
RATE_WINDOW = "5m"
"""Twenty scrapes at the PodMonitor's 15 s: smooth enough to read, short enough to see a burst."""
QUANTILES = (0.5, 0.95, 0.99)
UID_MAX_LENGTH = 40
"""Grafana refuses dashboard uids longer than 40 characters."""
GRID_COLUMNS = 24
GRAPH_SIZE = (12, 8)
STAT_SIZE = (6, 4)
"""(width, height) in Grafana grid units: two graphs or four stats per row."""
SERVING_SELECTOR = {"namespace": s.SERVING_NAMESPACE}
POOL_METRIC_LABEL = m.kube_label(POOL_LABEL)
CAPACITY_METRIC_LABEL = m.kube_label(CAPACITY_LABEL)
"""kube-state-metrics' names of the GPU nodes' pool and capacity-type labels (allow-listed in its chart
values, or `kube_node_labels` carries neither)."""
NODE_LABEL = "node"

PanelKind = Literal["timeseries", "stat"]


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """What a panel shows; ids and positions are given when the dashboard is rendered."""

    title: str
    targets: tuple[Target, ...]
    unit: str = "short"
    kind: PanelKind = "timeseries"
    description: str = ""
    threshold: float | None = None
    """Drawn as a red line (a service's SLO target): above it the panel turns red."""


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    panels: tuple[Panel, ...]
    description: str = ""


# --- PromQL building blocks ---------------------------------------------------------------------


def selector(labels: dict[str, str]) -> str:
    """`{a="x",b="y"}` in the given order (stable text, so dashboards do not churn between renders)."""
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def _rate(metric: str, labels: dict[str, str]) -> str:
    return f"rate({metric}{selector(labels)}[{RATE_WINDOW}])"


def _sum_rate(metric: str, labels: dict[str, str], by: tuple[str, ...] = ()) -> str:
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"sum{grouping} ({_rate(metric, labels)})"


def _quantile(quantile: float, histogram: str, labels: dict[str, str], by: tuple[str, ...]) -> str:
    """A quantile over all the replicas' buckets (summing buckets, never averaging quantiles)."""
    return f"histogram_quantile({quantile}, {_sum_rate(m.bucket(histogram), labels, ('le', *by))})"


def _quantile_targets(histogram: str, labels: dict[str, str], by: str) -> tuple[Target, ...]:
    return tuple(
        Target(_quantile(q, histogram, labels, (by,)), f"p{round(q * 100)} {{{{{by}}}}}") for q in QUANTILES
    )


def _ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


# --- Fleet overview -----------------------------------------------------------------------------


def _gpu_nodes(extra: dict[str, str] | None = None) -> str:
    """GPUs allocatable per node, labelled with the node's pool and capacity type."""
    labels = f"{POOL_METRIC_LABEL}, {CAPACITY_METRIC_LABEL}"
    matchers = ",".join([f'{POOL_METRIC_LABEL}!=""', *(f'{key}="{value}"' for key, value in (extra or {}).items())])
    return (
        f"{m.KUBE_NODE_ALLOCATABLE}{selector({'resource': m.KUBE_GPU_RESOURCE})}"
        f" * on({NODE_LABEL}) group_left({labels}) {m.KUBE_NODE_LABELS}{{{matchers}}}"
    )


def _planned_cost_panels(plan: StackPlan) -> list[Panel]:
    """The plan's figures as constants: what `inferfleet plan` priced, not what AWS bills."""
    note = "Planned by inferfleet from the catalog's us-east-1 prices (spot at its assumed discount); not billed cost."
    figures = [
        ("Planned $/h idle (services at min replicas)", plan.cost.hourly_usd_at_min_replicas),
        ("Planned $/h at peak", plan.cost.hourly_usd_at_peak),
    ]
    if plan.cost.usd_per_million_output_tokens is not None:
        figures.append(("Planned $ per 1M output tokens at peak", plan.cost.usd_per_million_output_tokens))
    return [
        Panel(title, (Target(f"vector({value:.4f})", "planned"),), "currencyUSD", "stat", note)
        for title, value in figures
    ]


def _pending_gpu_pods() -> str:
    """Pods that ask for GPUs and are not scheduled (no node with room and none the autoscaler can add yet)."""
    pending = f"{m.KUBE_POD_PHASE}{selector({'phase': 'Pending'})} == 1"
    asks_gpus = f"{m.KUBE_POD_REQUESTS}{selector({'resource': m.KUBE_GPU_RESOURCE})} > 0"
    return f"sum(({pending}) and on(namespace, pod) ({asks_gpus})) or vector(0)"


def fleet_dashboard(spec: StackSpec, plan: StackPlan) -> Dashboard:
    spot = {CAPACITY_METRIC_LABEL: CAPACITY_VALUES["spot"]}
    by_pool = f"{{{{{POOL_METRIC_LABEL}}}}} ({{{{{CAPACITY_METRIC_LABEL}}}}})"
    panels = [
        *_planned_cost_panels(plan),
        Panel("GPU pods pending", (Target(_pending_gpu_pods(), "pending"),), kind="stat"),
        Panel(
            "GPUs by pool and capacity type",
            (Target(f"sum by ({POOL_METRIC_LABEL}, {CAPACITY_METRIC_LABEL}) ({_gpu_nodes()})", by_pool),),
            description="Allocatable nvidia.com/gpu of the joined nodes of each GPU pool.",
        ),
        Panel(
            "Spot share of GPUs",
            (Target(_ratio(f"sum({_gpu_nodes(spot)})", f"sum({_gpu_nodes()})"), "spot"),),
            "percentunit",
            description="Spot GPUs over all GPUs of the pools; the rest are on-demand.",
        ),
    ]
    return Dashboard(
        _uid(spec.environment, "fleet"),
        f"inferfleet {spec.environment} / fleet",
        tuple(panels),
        "GPUs by pool and capacity type, the plan's hourly cost and GPU pods waiting for a node.",
    )


# --- Per service --------------------------------------------------------------------------------


def service_selector(service: ServiceSpec) -> dict[str, str]:
    """Every series of the service (all revisions and replica sets), as the serving PodMonitor labels them."""
    return {**SERVING_SELECTOR, SERVICE_METRIC_LABEL: service.name}


def _error_targets(service: ServiceSpec, metrics: m.LlmMetrics) -> tuple[Target, ...]:
    """Failed requests as each engine counts them, beside vLLM's own internal errors where it reports them."""
    labels = service_selector(service)
    engine_errors = () if metrics.requests_finished is None else (Target(
        _sum_rate(metrics.requests_finished, {**labels, m.VLLM_FINISHED_REASON_LABEL: m.VLLM_FINISHED_ERROR}),
        "engine errors",
    ),)
    if service.engine == "vllm":
        failed = _sum_rate(m.VLLM_HTTP_REQUESTS, {**labels, m.HTTP_STATUS_LABEL: m.HTTP_SERVER_ERROR})
        return Target(failed, "HTTP 5xx"), *engine_errors
    if service.engine == "ray-serve":
        ray_labels = {**labels, m.RAY_APPLICATION_LABEL: service.name}
        return Target(_sum_rate(m.RAY_SERVE_HTTP_ERRORS, ray_labels), "HTTP errors"), *engine_errors
    return Target(_sum_rate(m.TRITON_REQUEST_FAILURE, labels), "Triton failures"), *engine_errors


def _llm_service_panels(service: ServiceSpec, metrics: m.LlmMetrics) -> list[Panel]:
    """The LLM view of a service, from the series its way of serving reports (no panel for a series it
    does not: Triton's vLLM backend has no queue, KV-cache or preemption gauges, so Triton's own
    pending count and success counter stand in)."""
    labels = service_selector(service)
    by = REVISION_METRIC_LABEL
    revision = f"{{{{{by}}}}}"
    slo = service.slo
    finished = metrics.requests_finished or m.TRITON_REQUEST_SUCCESS
    panels = [
        Panel("Requests/s", (Target(_sum_rate(finished, labels, (by,)), revision),), "reqps",
              description="Finished requests per second, by revision."),
        Panel("Errors/s", _error_targets(service, metrics), "reqps"),
        Panel("Time to first token", _quantile_targets(metrics.ttft, labels, by), "s",
              description="p50/p95/p99 by revision; the red line is the SLO's p99 target.",
              threshold=slo.ttft_p99_ms / 1000 if slo else None),
        Panel("Inter-token latency", _quantile_targets(metrics.itl, labels, by), "s",
              description="p50/p95/p99 by revision; the red line is the SLO's p99 target.",
              threshold=slo.itl_p99_ms / 1000 if slo and slo.itl_p99_ms else None),
        Panel("End-to-end latency", _quantile_targets(metrics.e2e_latency, labels, by), "s"),
    ]
    if metrics.waiting and metrics.running:
        panels.append(Panel(
            "Waiting and running requests",
            (
                Target(f"sum by ({by}) ({metrics.gauge(metrics.waiting, selector(labels))})", f"waiting {revision}"),
                Target(f"sum by ({by}) ({metrics.gauge(metrics.running, selector(labels))})", f"running {revision}"),
            ),
        ))
    else:
        panels.append(Panel("Pending requests", (Target(f"sum by ({by}) ({m.TRITON_PENDING_REQUESTS}{selector(labels)})",
                                                        revision),),
                            description="Requests Triton has accepted and not yet handed to the model."))
    if metrics.kv_cache_usage:
        panels.append(Panel(
            "KV-cache usage",
            (Target(f"max by ({REPLICA_SET_METRIC_LABEL}) ({metrics.gauge(metrics.kv_cache_usage, selector(labels))})",
                    f"{{{{{REPLICA_SET_METRIC_LABEL}}}}}"),),
            "percentunit",
            description="The fullest replica of each replica set; near 100% vLLM preempts sequences.",
        ))
    if metrics.prefix_cache_hits and metrics.prefix_cache_queries:
        panels.append(Panel(
            "Prefix-cache hit rate",
            (Target(_ratio(_sum_rate(metrics.prefix_cache_hits, labels, (by,)),
                           _sum_rate(metrics.prefix_cache_queries, labels, (by,))), revision),),
            "percentunit",
            description="Share of prompt tokens found in the prefix cache.",
        ))
    panels.append(Panel(
        "Tokens/s",
        (
            Target(_sum_rate(metrics.prompt_tokens, labels, (by,)), f"prompt {revision}"),
            Target(_sum_rate(metrics.generation_tokens, labels, (by,)), f"generation {revision}"),
        ),
    ))
    if metrics.preemptions:
        panels.append(Panel("Preemptions/s", (Target(_sum_rate(metrics.preemptions, labels, (by,)), revision),),
                            description="Sequences evicted for lack of KV cache (recomputed later): the cache is too small."))
    return panels


def _triton_service_panels(service: ServiceSpec) -> list[Panel]:
    """Batched Triton backends report no latency histograms: per-request means from Triton's counters."""
    labels = service_selector(service)
    by = REVISION_METRIC_LABEL
    revision = f"{{{{{by}}}}}"
    successes = _sum_rate(m.TRITON_REQUEST_SUCCESS, labels, (by,))
    mean_ms = f"{_ratio(_sum_rate(m.TRITON_REQUEST_DURATION_US, labels, (by,)), successes)} / 1000"
    return [
        Panel("Requests/s", (Target(successes, revision),), "reqps"),
        Panel("Errors/s", (Target(_sum_rate(m.TRITON_REQUEST_FAILURE, labels, (by,)), revision),), "reqps"),
        Panel("Mean request latency", (Target(mean_ms, revision),), "ms",
              description="Triton's mean per request (it keeps no histogram); the red line is the SLO's p99 "
              "time to first token, which for an encoder is the whole answer.",
              threshold=service.slo.ttft_p99_ms if service.slo else None),
        *_triton_time_panels(labels, (SERVICE_METRIC_LABEL, by)),
    ]


def service_dashboard(spec: StackSpec, service: ServiceSpec, catalog: Catalog) -> Dashboard:
    metrics = llm_metrics(service, catalog)
    panels = _llm_service_panels(service, metrics) if metrics else _triton_service_panels(service)
    return Dashboard(
        _uid(spec.environment, "service", service.name),
        f"inferfleet {spec.environment} / service {service.name}",
        tuple(panels),
        f"{service.engine} serving {service.model.name}: traffic, latency against the SLO, queue and KV cache.",
    )


# --- Engine views -------------------------------------------------------------------------------


def _triton_time_panels(labels: dict[str, str], by: tuple[str, ...]) -> list[Panel]:
    """Where a Triton request's time goes: waiting for a batch slot versus executing the model."""
    legend = " ".join(f"{{{{{label}}}}}" for label in by)
    successes = _sum_rate(m.TRITON_REQUEST_SUCCESS, labels, by)
    return [
        Panel(
            "Queue and compute time per request",
            (
                Target(_ratio(_sum_rate(m.TRITON_QUEUE_DURATION_US, labels, by), successes), f"queue {legend}"),
                Target(_ratio(_sum_rate(m.TRITON_COMPUTE_INFER_DURATION_US, labels, by), successes),
                       f"compute {legend}"),
            ),
            "µs",
        ),
        Panel("Pending requests", (Target(f"sum by ({', '.join(by)}) ({m.TRITON_PENDING_REQUESTS}{selector(labels)})",
                                          legend),)),
    ]


def triton_dashboard(spec: StackSpec) -> Dashboard:
    by = (SERVICE_METRIC_LABEL, m.TRITON_MODEL_LABEL)
    legend = " ".join(f"{{{{{label}}}}}" for label in by)
    panels = [
        Panel(
            "Requests/s",
            (
                Target(_sum_rate(m.TRITON_REQUEST_SUCCESS, SERVING_SELECTOR, by), f"ok {legend}"),
                Target(_sum_rate(m.TRITON_REQUEST_FAILURE, SERVING_SELECTOR, by), f"failed {legend}"),
            ),
            "reqps",
        ),
        *_triton_time_panels(SERVING_SELECTOR, by),
    ]
    return Dashboard(_uid(spec.environment, "triton"), f"inferfleet {spec.environment} / Triton", tuple(panels))


def ray_serve_dashboard(spec: StackSpec) -> Dashboard:
    by = (m.RAY_APPLICATION_LABEL, m.RAY_DEPLOYMENT_LABEL)
    grouping = ", ".join(by)
    legend = "{{application}} / {{deployment}}"

    def per_deployment(metric: str) -> Target:
        return Target(f"sum by ({grouping}) ({m.ray_gauge(metric + selector(SERVING_SELECTOR))})", legend)

    app_legend = f"{{{{{m.RAY_APPLICATION_LABEL}}}}}"
    panels = [
        Panel(
            "Replicas",
            (
                Target(f"sum by ({grouping}) ({m.ray_gauge(m.RAY_SERVE_REPLICA_HEALTHY + selector(SERVING_SELECTOR))})",
                       f"healthy {legend}"),
                Target(f"sum by ({grouping}) ({m.ray_gauge(m.RAY_SERVE_TARGET_REPLICAS + selector(SERVING_SELECTOR))})",
                       f"target {legend}"),
            ),
            description="Healthy replicas per Serve deployment and the count Serve autoscaling is heading for.",
        ),
        Panel("Ongoing requests", (per_deployment(m.RAY_SERVE_PROCESSING_QUERIES),),
              description="Requests the replicas are executing (what Serve autoscaling targets per replica)."),
        Panel("Queued requests", (per_deployment(m.RAY_SERVE_QUEUED_QUERIES),),
              description="Requests waiting in the handles for a replica to accept them."),
        Panel(
            "HTTP requests/s",
            (
                Target(_sum_rate(m.RAY_SERVE_HTTP_REQUESTS, SERVING_SELECTOR, (m.RAY_APPLICATION_LABEL,)),
                       f"all {app_legend}"),
                Target(_sum_rate(m.RAY_SERVE_HTTP_ERRORS, SERVING_SELECTOR, (m.RAY_APPLICATION_LABEL,)),
                       f"errors {app_legend}"),
            ),
            "reqps",
        ),
        Panel(
            "HTTP latency p99",
            (Target(_quantile(0.99, m.RAY_SERVE_HTTP_LATENCY_MS, SERVING_SELECTOR, (m.RAY_APPLICATION_LABEL,)),
                    app_legend),),
            "ms",
        ),
    ]
    return Dashboard(_uid(spec.environment, "ray-serve"), f"inferfleet {spec.environment} / Ray Serve", tuple(panels))


# --- GPUs ---------------------------------------------------------------------------------------


def _with_pool(expr: str) -> str:
    """DCGM series labelled with their node's pool: kube_node_labels keyed by the exporter's node label."""
    nodes = f'label_replace({m.KUBE_NODE_LABELS}, "{m.DCGM_NODE_LABEL}", "$1", "{NODE_LABEL}", "(.+)")'
    return f"({expr}) * on({m.DCGM_NODE_LABEL}) group_left({POOL_METRIC_LABEL}) {nodes}"


def gpu_dashboard(spec: StackSpec) -> Dashboard:
    node, pool = m.DCGM_NODE_LABEL, POOL_METRIC_LABEL
    by_node = f"{node}, {pool}"
    legend = f"{{{{{node}}}}} ({{{{{pool}}}}})"

    def per_node(aggregation: str, metric: str) -> str:
        return f"{aggregation} by ({by_node}) ({_with_pool(metric)})"

    memory_used = _ratio(per_node("sum", m.DCGM_FB_USED), per_node("sum", f"{m.DCGM_FB_USED} + {m.DCGM_FB_FREE}"))
    panels = [
        Panel("GPU utilisation by pool", (Target(f"avg by ({pool}) ({_with_pool(m.DCGM_GPU_UTIL)})",
                                                 f"{{{{{pool}}}}}"),), "percent"),
        Panel("GPU utilisation by node", (Target(per_node("avg", m.DCGM_GPU_UTIL), legend),), "percent"),
        Panel("GPU memory used by node", (Target(memory_used, legend),), "percentunit",
              description="Frame buffer used over used plus free, all the node's GPUs."),
        Panel("Power by node", (Target(per_node("sum", m.DCGM_POWER_USAGE), legend),), "watt"),
        Panel("Hottest GPU by node", (Target(per_node("max", m.DCGM_GPU_TEMP), legend),), "celsius"),
        Panel(
            "XID errors",
            (Target(f"max by ({by_node}, gpu) ({_with_pool(m.DCGM_XID_ERRORS)}) > 0",
                    f"{{{{{node}}}}} GPU {{{{gpu}}}}"),),
            description="The last XID code each GPU's driver reported (none shown: no XID error). "
            "48, 63, 64, 74, 79 and 94/95 usually mean the node must be drained.",
        ),
    ]
    return Dashboard(_uid(spec.environment, "gpus"), f"inferfleet {spec.environment} / GPUs", tuple(panels))


# --- Rendering ----------------------------------------------------------------------------------


def _uid(*parts: str) -> str:
    """Stable across renders (Grafana keys a dashboard by uid, so a changing one would duplicate it) and
    within Grafana's 40 characters: long names keep a readable prefix and a hash of the whole."""
    text = "-".join(("inferfleet", *parts))
    if len(text) <= UID_MAX_LENGTH:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: UID_MAX_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"


def _field_config(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if panel.threshold is not None:
        steps.append({"color": "red", "value": panel.threshold})
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if panel.kind == "timeseries":
        line = "line" if panel.threshold is not None else "off"
        defaults["custom"] = {"drawStyle": "line", "fillOpacity": 10, "thresholdsStyle": {"mode": line}}
    else:
        defaults["color"] = {"mode": "thresholds"}
    return {"defaults": defaults, "overrides": []}


def _options(kind: PanelKind) -> dict[str, Any]:
    if kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value", "graphMode": "none", "textMode": "auto"}
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def _render_panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": target.expr,
         "legendFormat": target.legend or "__auto", "range": True}
        for index, target in enumerate(panel.targets)
    ]
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": _field_config(panel),
        "options": _options(panel.kind),
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left to right, wrapping at the grid's width; a row is as tall as its tallest panel."""
    grids, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        width, height = STAT_SIZE if panel.kind == "stat" else GRAPH_SIZE
        if x + width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        grids.append({"x": x, "y": y, "w": width, "h": height})
        x, row_height = x + width, max(row_height, height)
    return grids


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": DATASOURCE_VARIABLE,
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's classic JSON model; panel ids count from 1 in layout order."""
    panels = [
        _render_panel(panel, index, grid)
        for index, (panel, grid) in enumerate(zip(dashboard.panels, _layout(dashboard.panels), strict=True), 1)
    ]
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["inferfleet"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [_datasource_variable()]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def config_map(dashboard: Dashboard) -> dict[str, Any]:
    """One dashboard per ConfigMap: the sidecar loads each `*.json` key, and a ConfigMap holds 1 MiB at most."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"dashboard-{dashboard.uid}",
            "namespace": MONITORING_NAMESPACE,
            "labels": {GRAFANA_DASHBOARD_LABEL: GRAFANA_DASHBOARD_LABEL_VALUE, "app.kubernetes.io/part-of": s.PART_OF},
        },
        "data": {f"{dashboard.uid}.json": json.dumps(render(dashboard), indent=1, sort_keys=True)},
    }


def stack_dashboards(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[Dashboard]:
    """Fleet, each service in spec order, the engine views of the engines in use, then the GPUs."""
    engines = {service.engine for service in spec.services}
    found = [fleet_dashboard(spec, plan)]
    found += [service_dashboard(spec, service, catalog) for service in spec.services]
    if "triton" in engines:
        found.append(triton_dashboard(spec))
    if "ray-serve" in engines:
        found.append(ray_serve_dashboard(spec))
    found.append(gpu_dashboard(spec))
    return found


def dashboards(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """The dashboards' ConfigMaps, for Grafana's sidecar in the monitoring namespace."""
    return [config_map(dashboard) for dashboard in stack_dashboards(spec, plan, catalog)]


def dashboard_expressions(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[tuple[str, str]]:
    """(`dashboard title / panel title`, PromQL) of every panel target, in dashboard order."""
    return [
        (f"{dashboard.title} / {panel.title}", target.expr)
        for dashboard in stack_dashboards(spec, plan, catalog)
        for panel in dashboard.panels
        for target in panel.targets
    ]
