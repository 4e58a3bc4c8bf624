"""The generated rules through Prometheus' own tool: `promtool check rules` parses every expression and
template, and `promtool test rules` evaluates the alerts over synthetic series, showing each one firing
on series that breach the SLO and silent on series that meet it.

promtool comes from Debian's `prometheus` package (scripts/install_prometheus.sh). Without it these tests
skip locally and fail under CI=true, where a missing tool is a broken set-up, not a reason to skip.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests import alerts
from components.manifests.monitoring import llm_metrics
from components.manifests.placement import replica_sets
from tests.e2e.vllm_cpu import vllm_python
from tests.manifests.promtool import promtool

pytestmark = pytest.mark.e2e

EVAL_INTERVAL = "1m"
SERIES_MINUTES = 120
"""Two hours of one-minute samples: enough for the 1h long window; the alert is read at 60m."""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _write_rule_files(objects: list[dict[str, Any]], directory: Path) -> list[str]:
    """Each PrometheusRule's spec is a Prometheus rule file as is (`groups`)."""
    names = []
    for obj in objects:
        name = f"{obj['metadata']['name']}.yaml"
        (directory / name).write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}, sort_keys=False))
        names.append(name)
    return names


def test_all_rules_merged_pass_promtool_check(planned, catalog, tmp_path):
    """The operator merges every PrometheusRule into one Prometheus: together they must lint clean too
    (no recording rule of one service shadowing another's)."""
    spec, plan = planned
    groups = [group for obj in alerts.prometheus_rules(spec, plan, catalog) for group in obj["spec"]["groups"]]
    (tmp_path / "merged.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = _run("check", "rules", "merged.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_passes_promtool_check(planned, catalog, tmp_path):
    spec, plan = planned
    files = _write_rule_files(alerts.prometheus_rules(spec, plan, catalog), tmp_path)
    result = _run("check", "rules", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_expression(tmp_path):
    """The check above can fail: an unbalanced aggregation is refused."""
    broken = {"groups": [{"name": "broken", "rules": [
        {"alert": "Broken", "expr": 'sum by (inferfleet_service (rate(http_requests_total{status="5xx"}[5m]))',
         "labels": {"severity": "page"}}]}]}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    result = _run("check", "rules", "broken.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr)


# --- promtool unit tests ---------------------------------------------------------------------------------
#
# Every alert the prod stack generates gets two cases: synthetic series that breach it (the alert fires,
# with its exact labels and annotations) and series that meet it (no alert). The series carry the labels
# the rules select on: the serving labels the scrape adds to vLLM, Ray Serve and Triton metrics,
# kube-state-metrics' pod and node labels, DCGM's GPU labels, aws-node-termination-handler's action labels.
# The silent cases add what the rules must ignore (the shadow revision, CPU-only pods, cordons without a
# drain) and breaches too short for the rule's `for`.

SLOW_EVAL_INTERVAL = "15m"
"""The ticket burn alerts read 1d and 3d windows over days of five-minute samples; promtool evaluates
every rule of a file at every step, so the four days are evaluated every quarter of an hour (the alerts'
`for`), which keeps the run to seconds."""
REQUESTS_PER_MINUTE = 1000
SERVICE = alerts.SERVICE_METRIC_LABEL


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _serving(service: str, revision: str = "stable", replica_set: str | None = None, **extra: str) -> dict[str, str]:
    """The labels the serving scrape puts on an engine's metrics."""
    replica_set = replica_set or f"{service}-floor"
    return {"namespace": "inferfleet-serving", "inferfleet_service": service, "inferfleet_revision": revision,
            "inferfleet_replica_set": replica_set, "pod": f"{replica_set}-0", **extra}


def _number(value: float) -> str:
    return f"{value:.12g}"


def _counter(*phases: tuple[float, int]) -> str:
    """A counter from 0 rising by `per_step` at each of `steps` samples, phase after phase (promtool's
    expanding notation; `a+bxn` is n+1 samples, so every phase after the first starts one step on)."""
    first_increase, first_steps = phases[0]
    parts, value = [f"0+{_number(first_increase)}x{first_steps}"], first_increase * first_steps
    for increase, steps in phases[1:]:
        parts.append(f"{_number(value + increase)}+{_number(increase)}x{steps - 1}")
        value += increase * steps
    return " ".join(parts)


def _share_counters(phases: list[tuple[float, int]], per_step: float) -> tuple[str, str]:
    """(good, bad) counters of `per_step` requests a step, `share` of them bad in each (share, steps) phase."""
    good = _counter(*[(per_step * (1 - share), steps) for share, steps in phases])
    bad = _counter(*[(per_step * share, steps) for share, steps in phases])
    return good, bad


def _expected(rule: dict[str, Any], **labels: str) -> dict[str, Any]:
    """The alert as promtool reports it: the labels its expression keeps, the rule's labels and its
    (static) annotations."""
    return {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": dict(rule["annotations"])}


def _check(alert: dict[str, Any], at: str, *fired: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert["alert"], "exp_alerts": list(fired)}


def _group(interval: str, series: list[dict[str, str]], *checks: dict[str, Any]) -> dict[str, Any]:
    return {"interval": interval, "input_series": series, "alert_rule_test": list(checks)}


def _alert_test(series: list[dict[str, str]], alert: dict[str, Any], fires: bool, at: str = "60m") -> dict[str, Any]:
    return _group(EVAL_INTERVAL, series, _check(alert, at, *([_expected(alert)] if fires else [])))


def _availability_series(service, error_share: float | list[tuple[float, int]], per_step: float = REQUESTS_PER_MINUTE,
                         revision: str = "stable") -> list[dict[str, str]]:
    """Each engine's request counters with `error_share` of `per_step` requests a step failing (one share
    for SERIES_MINUTES steps, or (share, steps) phases): vLLM's API counter by status class, Ray Serve's
    proxy counters (all requests, and errors by code), Triton's success and failure counters."""
    phases = [(error_share, SERIES_MINUTES)] if isinstance(error_share, float) else error_share
    ok, errors = _share_counters(phases, per_step)
    name = service.name

    def labels(**extra: str) -> str:
        return _labels(**_serving(name, revision=revision, **extra))

    if service.engine == "vllm":
        api = {"handler": "/v1/chat/completions", "method": "POST"}
        return [{"series": "http_requests_total" + labels(**api, status="2xx"), "values": ok},
                {"series": "http_requests_total" + labels(**api, status="5xx"), "values": errors},
                # the probes' requests are not the API's: a failing health check is not a user's error
                {"series": "http_requests_total" + labels(handler="/health", method="GET", status="5xx"),
                 "values": _counter((per_step, sum(steps for _, steps in phases)))}]
    if service.engine == "ray-serve":
        route = {"route": "/v1", "method": "POST", "application": name}
        return [{"series": "ray_serve_num_http_requests_total" + labels(**route, status_code="200"), "values": ok},
                {"series": "ray_serve_num_http_requests_total" + labels(**route, status_code="500"), "values": errors},
                {"series": "ray_serve_num_http_error_requests_total" + labels(**route, error_code="500"), "values": errors}]
    model = {"model": name, "version": "1"}
    return [{"series": "nv_inference_request_success" + labels(**model), "values": ok},
            {"series": "nv_inference_request_failure" + labels(**model, reason="BACKEND"), "values": errors}]


def _latency_series(service: str, histogram: str, bound: float, slow_share: float | list[tuple[float, int]],
                    per_step: float = REQUESTS_PER_MINUTE, revision: str = "stable") -> list[dict[str, str]]:
    """A vLLM latency histogram: `slow_share` of `per_step` requests a step slower than the bound, written
    with the Python client's `le` spelling ("1.0"); a lower bucket (half the bound, a vLLM bound for both
    targets of the prod stack) and +Inf around it, which the rules' `le` matcher must not pick up."""
    phases = [(slow_share, SERIES_MINUTES)] if isinstance(slow_share, float) else slow_share
    steps = sum(s for _, s in phases)
    within, _ = _share_counters(phases, per_step)

    def labels(**extra: str) -> str:
        return _labels(**_serving(service, revision=revision, **extra))

    return [
        {"series": f"{histogram}_bucket" + labels(le=repr(float(bound) / 2)),
         "values": _counter(*[(per_step * (1 - share) / 2, n) for share, n in phases])},
        {"series": f"{histogram}_bucket" + labels(le=repr(float(bound))), "values": within},
        {"series": f"{histogram}_bucket" + labels(le="+Inf"), "values": _counter((per_step, steps))},
        {"series": f"{histogram}_count" + labels(), "values": _counter((per_step, steps))},
    ]


def _rule(objects: list[dict[str, Any]], object_name: str, alert: str) -> dict[str, Any]:
    obj = next(o for o in objects if o["metadata"]["name"] == object_name)
    return next(r for g in obj["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert)


def _alert_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for o in objects for g in o["spec"]["groups"] for r in g["rules"] if "alert" in r]


def _covered(tests: list[dict[str, Any]]) -> tuple[set[tuple[str, str | None]], set[tuple[str, str | None]]]:
    """(alert name, service) of the alerts some test expects to fire, and of those some test expects
    silent (the service of a silent check: that of the group's series)."""
    fired, silent = set(), set()
    for test in tests:
        services = {s for i in test["input_series"] for s in re.findall(r'inferfleet_service="([^"]+)"', i["series"])}
        for check in test["alert_rule_test"]:
            if check["exp_alerts"]:
                fired |= {(check["alertname"], a["exp_labels"].get(SERVICE)) for a in check["exp_alerts"]}
            else:
                silent |= {(check["alertname"], s) for s in services} or {(check["alertname"], None)}
    return fired, silent


# --- per service: the SLO burn alerts and vLLM saturation

SLOW_BURN_STEPS = 30 * 12
SLOW_HEALTHY_STEPS = 66 * 12
"""The ticket story in five-minute steps: 66 hours at half the budget, then a burn at twice the budget.
Six hours into the burn (day 3) the short windows breach but three days still meet the SLO; thirty hours
in (day 4) the three days do not (1.125x the budget)."""


def _sli_series(service, sli: alerts.Sli, phases: list[tuple[float, int]], per_step: float,
                revision: str = "stable") -> list[dict[str, str]]:
    """Series of the SLI's requests with `share` of them bad in each (share, steps) phase."""
    if sli.key == "errors":
        return _availability_series(service, phases, per_step, revision)
    return _latency_series(service.name, sli.histogram, sli.bound_s, phases, per_step, revision)


def _service_tests(service, spec, plan, catalog, objects) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(one-minute groups, five-minute-sample groups) of the service's alerts.

    Page burn: 50x the budget for an hour fires (1h/5m at 14.4x); half the budget stays silent, even with
    the shadow revision failing every request. Ticket burn: the SLOW_BURN_STEPS story, silent on day 3 and
    firing on day 4, never paging. KV cache above 90% for the hour fires, not before its 15 minutes;
    85% with a 10-minute spike to 97% and a full shadow stay silent. Preemptions every minute fire; one
    burst and a flat counter stay silent. Every replica set's queue one above its planned concurrency
    fires; at it, silent."""
    name = f"inferfleet-{service.name}"
    breach, breach_checks, met, met_checks, slow_series, slow_checks = [], [], [], [], [], []
    per_minute, per_5m, minutes = REQUESTS_PER_MINUTE, 5 * REQUESTS_PER_MINUTE, SERIES_MINUTES
    day3, day4 = f"{(SLOW_HEALTHY_STEPS + 72) * 5}m", f"{(SLOW_HEALTHY_STEPS + SLOW_BURN_STEPS) * 5}m"
    for sli in alerts.slis(service, catalog):
        fast = _rule(objects, name, alerts.burn_alert_name(sli, alerts.PAGE))
        slow = _rule(objects, name, alerts.burn_alert_name(sli, alerts.TICKET))
        budget = sli.budget
        breach += _sli_series(service, sli, [(min(50 * budget, 1.0), minutes)], per_minute)
        breach_checks.append(_check(fast, "60m", _expected(fast)))
        met += (_sli_series(service, sli, [(0.5 * budget, minutes)], per_minute)
                + _sli_series(service, sli, [(1.0, minutes)], per_minute, revision="shadow"))
        met_checks.append(_check(fast, "60m"))
        slow_series += _sli_series(service, sli, [(0.5 * budget, SLOW_HEALTHY_STEPS), (2 * budget, SLOW_BURN_STEPS)], per_5m)
        slow_checks += [_check(slow, day3), _check(fast, day3), _check(slow, day4, _expected(slow)), _check(fast, day4)]

    saturation = {r["alert"]: r for g in next(o for o in objects if o["metadata"]["name"] == name)["spec"]["groups"]
                  if g["name"].endswith(".saturation") for r in g["rules"]}
    metrics = llm_metrics(service, catalog)
    floor = _serving(service.name)
    burst = _serving(service.name, replica_set=f"{service.name}-burst")
    shadow = _serving(service.name, revision="shadow", replica_set=f"{service.name}-shadow")

    def per_pod(labels: dict[str, str]) -> dict[str, str]:
        return {k: labels[k] for k in (SERVICE, alerts.REPLICA_SET_METRIC_LABEL, "pod")}

    if "InferfleetKvCacheSaturated" in saturation:
        kv, kv_metric = saturation["InferfleetKvCacheSaturated"], metrics.kv_cache_usage
        breach.append({"series": kv_metric + _labels(**floor), "values": f"0.95x{minutes}"})
        breach_checks += [_check(kv, "10m"), _check(kv, "60m", _expected(kv, **per_pod(floor)))]
        met += [{"series": kv_metric + _labels(**floor), "values": f"0.85x5 0.97x10 0.85x{minutes - 16}"},
                {"series": kv_metric + _labels(**shadow), "values": f"0.99x{minutes}"}]
        met_checks += [_check(kv, "14m"), _check(kv, "60m")]
    if "InferfleetPreemptions" in saturation:
        preempt, preempt_metric = saturation["InferfleetPreemptions"], metrics.preemptions
        breach.append({"series": preempt_metric + _labels(**floor), "values": _counter((3, minutes))})
        breach_checks.append(_check(preempt, "60m", _expected(preempt, **per_pod(floor))))
        met += [{"series": preempt_metric + _labels(**floor), "values": f"0x10 20x{minutes - 11}"},
                {"series": preempt_metric + _labels(**burst), "values": f"7x{minutes}"}]
        met_checks += [_check(preempt, "13m"), _check(preempt, "60m")]
    if "InferfleetQueueBacklog" in saturation:
        queue = saturation["InferfleetQueueBacklog"]
        queue_metric = metrics.waiting if metrics and metrics.waiting else alerts.m.TRITON_PENDING_REQUESTS
        engine_labels = {} if metrics and metrics.waiting else {"model": service.name, "version": "1"}
        sets = replica_sets(service, spec, plan)
        # Ray's pods carry no replica-set label: each is held to the largest planned concurrency.
        limits = ({f"{service.name}-floor": max(max(1, rs.plan.planned_concurrency) for rs in sets)}
                  if service.engine == "ray-serve" else {rs.name: max(1, rs.plan.planned_concurrency) for rs in sets})
        revisions = {rs.name: rs.revision for rs in sets}

        def queues(above: int) -> list[dict[str, str]]:
            return [{"series": queue_metric + _labels(**_serving(service.name, revision=revisions.get(rs, "stable"),
                                                                 replica_set=rs, **engine_labels)),
                     "values": f"{limit + above}x{minutes}"} for rs, limit in limits.items()]

        breach += queues(1)
        breach_checks.append(_check(queue, "60m", *[_expected(queue, **per_pod(_serving(service.name, replica_set=rs)))
                                                    for rs in limits]))
        met += queues(0)
        met_checks.append(_check(queue, "60m"))
    minute = [_group(EVAL_INTERVAL, breach, *breach_checks), _group(EVAL_INTERVAL, met, *met_checks)]
    return minute, ([_group("5m", slow_series, *slow_checks)] if slow_series else [])


# --- fleet

def _fleet_tests(spec, objects) -> list[dict[str, Any]]:
    """An XID 79 fires, zeros do not; 90 C for the hour fires, 80 C and a 5-minute spike to 90 C do not;
    a GPU pod pending for the hour fires, a CPU-only pod pending and a GPU pod scheduled within 5 minutes
    do not; every pool at its maxSize fires, one node short does not; four drains in the hour fire, two
    (and cordons without a drain) do not; a failed drain pages when its series appears and when it fails
    again, a failure older than the window does not."""
    xid, temp, pending, at_max, drains, failed = (_rule(objects, "inferfleet-fleet", a) for a in (
        "InferfleetGpuXidError", "InferfleetGpuTemperatureHigh", "InferfleetGpuPodPending",
        "InferfleetGpuPoolAtMaximum", "InferfleetSpotInterruptions", "InferfleetNodeDrainFailed"))
    minutes = SERIES_MINUTES
    gpu = {"Hostname": "ip-10-0-1-23", "gpu": "0", "UUID": "GPU-0f1e", "device": "nvidia0",
           "modelName": "NVIDIA H100 80GB HBM3"}
    gpu_labels = {k: gpu[k] for k in ("Hostname", "gpu", "UUID")}
    other_gpu = {**gpu, "gpu": "1", "UUID": "GPU-77a2", "device": "nvidia1"}
    pool_label = alerts.m.kube_label(alerts.POOL_LABEL)
    drain = alerts.DRAIN_ACTION

    def dcgm(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
        return {"series": metric + _labels(**labels), "values": values}

    def phase(pod: str, phase_name: str, values: str) -> dict[str, str]:
        return {"series": "kube_pod_status_phase" + _labels(namespace="inferfleet-serving", pod=pod, uid=f"uid-{pod}",
                                                             phase=phase_name), "values": values}

    def requests(pod: str, resource: str, unit: str, value: str) -> dict[str, str]:
        return {"series": "kube_pod_container_resource_requests" + _labels(
            namespace="inferfleet-serving", pod=pod, uid=f"uid-{pod}", container="vllm", node="", resource=resource,
            unit=unit), "values": f"{value}x{minutes}"}

    def nodes(count_of) -> list[dict[str, str]]:
        return [{"series": "kube_node_labels" + _labels(node=f"ip-10-0-{p}-{n}.ec2.internal", **{pool_label: pool.name}),
                 "values": f"1x{minutes}"} for p, pool in enumerate(spec.gpu_pools) for n in range(count_of(pool))]

    breach = [
        dcgm("DCGM_FI_DEV_XID_ERRORS", gpu, f"0x10 79x{minutes - 11}"),
        dcgm("DCGM_FI_DEV_XID_ERRORS", other_gpu, f"0x{minutes}"),
        dcgm("DCGM_FI_DEV_GPU_TEMP", gpu, f"90x{minutes}"),
        phase("chat-burst-0", "Pending", f"1x{minutes}"), phase("chat-burst-0", "Running", f"0x{minutes}"),
        requests("chat-burst-0", alerts.GPU_REQUEST_RESOURCE, "integer", "8"),
        *nodes(lambda pool: pool.max_size),
        _actions(drain, "success", f"1x10 2x10 3x10 4x10 5x{minutes - 41}"),
        _actions(drain, "error", f"1x30 2x{minutes - 31}"),
    ]
    breach_checks = [
        _check(xid, "5m"), _check(xid, "60m", _expected(xid, **gpu_labels)),
        _check(temp, "5m"), _check(temp, "60m", _expected(temp, **gpu_labels)),
        _check(pending, "5m"), _check(pending, "60m", _expected(pending, namespace="inferfleet-serving", pod="chat-burst-0")),
        _check(at_max, "60m", *[_expected(at_max, **{pool_label: p.name}) for p in spec.gpu_pools]),
        _check(drains, "60m", _expected(drains)),
        _check(failed, "20m", _expected(failed)), _check(failed, "40m", _expected(failed)),
    ]
    met = [
        dcgm("DCGM_FI_DEV_XID_ERRORS", gpu, f"0x{minutes}"),
        dcgm("DCGM_FI_DEV_GPU_TEMP", gpu, f"80x5 90x5 80x{minutes - 11}"),
        dcgm("DCGM_FI_DEV_GPU_TEMP", other_gpu, f"80x{minutes}"),
        phase("rag-retrieve-0", "Pending", f"1x{minutes}"), requests("rag-retrieve-0", "cpu", "core", "2"),
        phase("chat-burst-1", "Pending", f"1x5 0x{minutes - 6}"), phase("chat-burst-1", "Running", f"0x5 1x{minutes - 6}"),
        requests("chat-burst-1", alerts.GPU_REQUEST_RESOURCE, "integer", "8"),
        *nodes(lambda pool: pool.max_size - 1),
        _actions(drain, "success", f"1x20 2x20 3x{minutes - 42}"),
        _actions("cordon", "success", f"1+1x{minutes}"),
        _actions(drain, "error", f"1x{minutes}"),
    ]
    met_checks = [_check(xid, "60m"), _check(temp, "9m"), _check(temp, "60m"), _check(pending, "60m"),
                  _check(at_max, "60m"), _check(drains, "60m"), _check(failed, "60m")]
    return [_group(EVAL_INTERVAL, breach, *breach_checks), _group(EVAL_INTERVAL, met, *met_checks)]


def _actions(action: str, status: str, values: str) -> dict[str, str]:
    """aws-node-termination-handler's `actions` counter (pkg/observability/opentelemetry.go): one series
    per action and status, created by its first action with the value 1."""
    return {"series": "actions_total" + _labels(node_action=action, node_status=status,
                                                otel_scope_name="aws.node.termination.handler",
                                                namespace="kube-system", pod="aws-node-termination-handler-0"),
            "values": values}


def _unit_test_files(spec, plan, catalog) -> dict[str, dict[str, Any]]:
    """promtool unit-test files by name, each over the one rule file its alerts are in (promtool evaluates
    every rule of its rule files at every step, so fewer rules are a faster run): per PrometheusRule, its
    alerts every minute over an hour, and its ticket burns every SLOW_EVAL_INTERVAL over four days.

    `group_eval_order` evaluates the recording group before the alert group at each step. promtool's
    default order of groups is a map's, random: an alert group evaluated first reads the records of the
    previous step, which a 15-minute step leaves outside the 5-minute lookback, and the ticket burns
    would flip between firing and not from run to run."""
    objects = alerts.prometheus_rules(spec, plan, catalog)
    units = {}
    for obj in objects:
        name = obj["metadata"]["name"]
        service = next((s for s in spec.services if f"inferfleet-{s.name}" == name), None)
        minute, slow = _service_tests(service, spec, plan, catalog, objects) if service else (_fleet_tests(spec, objects), [])
        common = {"rule_files": [f"{name}.yaml"], "group_eval_order": [g["name"] for g in obj["spec"]["groups"]]}
        units[f"{name}_1m_test.yaml"] = {**common, "evaluation_interval": EVAL_INTERVAL, "tests": minute}
        if slow:
            units[f"{name}_slow_test.yaml"] = {**common, "evaluation_interval": SLOW_EVAL_INTERVAL, "tests": slow}
    return units


def _run_unit_tests(files: list[str], interval: str, tests: list[dict[str, Any]], directory: Path,
                    name: str) -> subprocess.CompletedProcess[str]:
    unit = {"rule_files": files, "evaluation_interval": interval, "tests": tests}
    (directory / name).write_text(yaml.safe_dump(unit, sort_keys=False))
    return _run("test", "rules", name, cwd=directory)


def test_unit_tests_cover_every_alert_both_ways(prod, catalog):
    """Each alert the prod stack generates, per service, has a test where it fires and one where it stays
    silent: a new alert without its tests fails here."""
    spec, plan = prod
    generated = {(r["alert"], r["labels"].get(SERVICE)) for r in _alert_rules(alerts.prometheus_rules(spec, plan, catalog))}
    fired, silent = _covered([t for u in _unit_test_files(spec, plan, catalog).values() for t in u["tests"]])
    assert fired == generated
    assert silent == generated
    assert {a for a, _ in generated} == {
        "InferfleetErrorBudgetBurnFast", "InferfleetErrorBudgetBurnSlow", "InferfleetTtftBudgetBurnFast",
        "InferfleetTtftBudgetBurnSlow", "InferfleetItlBudgetBurnFast", "InferfleetItlBudgetBurnSlow",
        "InferfleetKvCacheSaturated", "InferfleetQueueBacklog", "InferfleetPreemptions", "InferfleetGpuXidError",
        "InferfleetGpuTemperatureHigh", "InferfleetGpuPodPending", "InferfleetGpuPoolAtMaximum",
        "InferfleetSpotInterruptions", "InferfleetNodeDrainFailed"}


@pytest.mark.parametrize("stack", ["prod", "triton_decoder"])
def test_alerts_fire_on_breaches_and_stay_silent_when_met(stack, catalog, tmp_path, request):
    """One promtool run per PrometheusRule and cadence, run side by side: the page, saturation and fleet
    alerts every minute over an hour, the ticket burns over four days. prod covers vLLM, Ray Serve LLM and
    a Triton encoder; `triton_decoder` serves prod's chat model on Triton's vLLM backend."""
    spec, plan = request.getfixturevalue(stack)
    _write_rule_files(alerts.prometheus_rules(spec, plan, catalog), tmp_path)
    runs = {}
    for name, unit in _unit_test_files(spec, plan, catalog).items():
        (tmp_path / name).write_text(yaml.safe_dump(unit, sort_keys=False))
        runs[name] = subprocess.Popen([promtool(), "test", "rules", name], cwd=tmp_path, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    failed = {}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=120)
        if run.returncode != 0:
            failed[name] = output
    assert not failed, "\n".join(failed.values())


def test_the_first_failed_drain_pages(prod, catalog, tmp_path):
    """The handler creates actions_total{node_status="error"} at 1 with its first failure, which
    increase() alone cannot see: the rule also counts a series born within the window."""
    spec, plan = prod
    objects = alerts.prometheus_rules(spec, plan, catalog)
    files = _write_rule_files([o for o in objects if o["metadata"]["name"] == "inferfleet-fleet"], tmp_path)
    failed = _rule(objects, "inferfleet-fleet", "InferfleetNodeDrainFailed")
    test = _group(EVAL_INTERVAL, [_actions(alerts.DRAIN_ACTION, "success", "1+1x60"),
                                  _actions(alerts.DRAIN_ACTION, "error", "_x30 1x30")],
                  _check(failed, "40m", _expected(failed)))
    result = _run_unit_tests(files, EVAL_INTERVAL, [test], tmp_path, "first_failure_test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_test_fails_when_an_expectation_is_wrong(prod, catalog, tmp_path):
    """The unit tests can fail: the page alert claimed silent on 5% errors is reported."""
    spec, plan = prod
    files = _write_rule_files(alerts.prometheus_rules(spec, plan, catalog), tmp_path)
    page = _rule(alerts.prometheus_rules(spec, plan, catalog), "inferfleet-chat", "InferfleetErrorBudgetBurnFast")
    unit = {"rule_files": files, "evaluation_interval": EVAL_INTERVAL,
            "tests": [_alert_test(_availability_series(next(s for s in spec.services if s.name == "chat"), 0.05), page, fires=False)]}
    (tmp_path / "wrong_test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _run("test", "rules", "wrong_test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "InferfleetErrorBudgetBurnFast" in result.stdout + result.stderr


def test_promtool_unit_test_fails_when_a_label_is_wrong(prod, catalog, tmp_path):
    """The unit tests compare labels exactly: the ticket burn that passes with its labels fails when
    expected without its `slo` label."""
    spec, plan = prod
    objects = alerts.prometheus_rules(spec, plan, catalog)
    chat_rules = next(o for o in objects if o["metadata"]["name"] == "inferfleet-chat")
    files = _write_rule_files([chat_rules], tmp_path)
    chat = next(s for s in spec.services if s.name == "chat")
    slow = _rule(objects, "inferfleet-chat", "InferfleetErrorBudgetBurnSlow")
    right, wrong = _expected(slow), _expected(slow)
    del wrong["exp_labels"]["slo"]
    results = []
    for expected in (right, wrong):
        unit = {"rule_files": files, "evaluation_interval": SLOW_EVAL_INTERVAL,
                "group_eval_order": [g["name"] for g in chat_rules["spec"]["groups"]],
                "tests": [_group("5m", _availability_series(chat, [(0.002, 288)], 5 * REQUESTS_PER_MINUTE),
                                 _check(slow, "1d", expected))]}
        (tmp_path / "label_test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))
        results.append(_run("test", "rules", "label_test.yaml", cwd=tmp_path))
    assert results[0].returncode == 0, results[0].stdout + results[0].stderr
    assert results[1].returncode != 0
    assert 'slo="errors"' in results[1].stdout + results[1].stderr


def test_latency_buckets_match_the_pinned_vllm():
    """The bucket bounds the latency alerts read are vLLM 0.32.0's own (a bump that moves them fails)."""
    python = vllm_python()
    code = ("from vllm.v1.metrics.buckets import TIME_TO_FIRST_TOKEN_BUCKETS as t, INTER_TOKEN_LATENCY_BUCKETS as i;"
            "print(repr((tuple(t), tuple(i))))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"}, check=True).stdout
    assert out.strip().splitlines()[-1] == repr((alerts.m.VLLM_TTFT_BUCKETS_S, alerts.m.VLLM_ITL_BUCKETS_S))
