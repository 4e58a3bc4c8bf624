"""The generated rules through Prometheus' own tool: `promtool check rules` parses every expression and
template, and `promtool test rules` evaluates the alerts over synthetic series, showing each one firing
on series that breach the SLO and silent on series that meet it.

promtool comes from Debian's `prometheus` package (scripts/install_prometheus.sh). Without it these tests
skip locally and fail under CI=true, where a missing tool is a broken set-up, not a reason to skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.manifests import alerts
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


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _serving(service: str, **extra: str) -> dict[str, str]:
    return {"namespace": "inferfleet-serving", "inferfleet_service": service, "inferfleet_revision": "stable",
            "inferfleet_replica_set": f"{service}-floor", "pod": f"{service}-floor-0", **extra}


def _counter(per_minute: float) -> str:
    return f"0+{per_minute:g}x{SERIES_MINUTES}"


def _expected(rule: dict[str, Any]) -> dict[str, Any]:
    """The alert as promtool reports it: its labels and (static) annotations."""
    return {"exp_labels": dict(rule["labels"]), "exp_annotations": dict(rule["annotations"])}


def _alert_test(series: list[dict[str, str]], alert: dict[str, Any], fires: bool, at: str = "60m") -> dict[str, Any]:
    return {
        "interval": EVAL_INTERVAL,
        "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert["alert"], "exp_alerts": [_expected(alert)] if fires else []}],
    }


def _availability_series(service, error_share: float) -> list[dict[str, str]]:
    """Each engine's request counters with `error_share` of 1000 requests a minute failing: vLLM's API
    counter by status class, Ray Serve's proxy counters (all requests, and errors by code), Triton's
    success and failure counters."""
    errors, name = 1000 * error_share, service.name
    if service.engine == "vllm":
        api = {"handler": "/v1/chat/completions", "method": "POST"}
        return [{"series": "http_requests_total" + _labels(**_serving(name, **api, status="2xx")), "values": _counter(1000 - errors)},
                {"series": "http_requests_total" + _labels(**_serving(name, **api, status="5xx")), "values": _counter(errors)}]
    if service.engine == "ray-serve":
        route = {"route": "/v1", "method": "POST", "application": name}
        return [{"series": "ray_serve_num_http_requests_total" + _labels(**_serving(name, **route, status_code="200")),
                 "values": _counter(1000 - errors)},
                {"series": "ray_serve_num_http_requests_total" + _labels(**_serving(name, **route, status_code="500")),
                 "values": _counter(errors)},
                {"series": "ray_serve_num_http_error_requests_total" + _labels(**_serving(name, **route, error_code="500")),
                 "values": _counter(errors)}]
    model = {"model": name, "version": "1"}
    return [{"series": "nv_inference_request_success" + _labels(**_serving(name, **model)), "values": _counter(1000 - errors)},
            {"series": "nv_inference_request_failure" + _labels(**_serving(name, **model, reason="BACKEND")),
             "values": _counter(errors)}]


def _ttft_series(service: str, bound: float, slow_share: float) -> list[dict[str, str]]:
    """vLLM's TTFT histogram: `slow_share` of 1000 requests a minute slower than the bound, written with
    the Python client's `le` spelling ("1.0")."""
    within = 1000 * (1 - slow_share)
    histogram = "vllm:time_to_first_token_seconds"
    return [
        {"series": f"{histogram}_bucket" + _labels(**_serving(service, le=repr(float(bound)))), "values": _counter(within)},
        {"series": f"{histogram}_count" + _labels(**_serving(service)), "values": _counter(1000)},
    ]


def _rule(objects: list[dict[str, Any]], object_name: str, alert: str) -> dict[str, Any]:
    obj = next(o for o in objects if o["metadata"]["name"] == object_name)
    return next(r for g in obj["spec"]["groups"] for r in g["rules"] if r.get("alert") == alert)


def _unit_tests(spec, plan, catalog) -> list[dict[str, Any]]:
    """Per service with an availability SLO, the page alert on 5% errors (fires) and 0.05% (silent);
    per vLLM service with a TTFT target, the page alert on 30% slow requests (fires) and 0.5% (silent);
    the XID alert on an XID 79 (fires) and on zeros (silent)."""
    objects = alerts.prometheus_rules(spec, plan, catalog)
    tests = []
    for service in spec.services:
        names = {s.key for s in alerts.slis(service, catalog)}
        name = f"inferfleet-{service.name}"
        if "errors" in names:
            page = _rule(objects, name, "InferfleetErrorBudgetBurnFast")
            tests += [_alert_test(_availability_series(service, 0.05), page, fires=True),
                      _alert_test(_availability_series(service, 0.0005), page, fires=False)]
        if "ttft_slow" in names:
            assert service.slo is not None
            bound = alerts.latency_bound(service.slo.ttft_p99_ms, alerts.TTFT_BUCKETS_S)
            page = _rule(objects, name, "InferfleetTtftBudgetBurnFast")
            tests += [_alert_test(_ttft_series(service.name, bound, 0.30), page, fires=True),
                      _alert_test(_ttft_series(service.name, bound, 0.005), page, fires=False)]
    xid = _rule(objects, "inferfleet-fleet", "InferfleetGpuXidError")
    gpu = {"Hostname": "ip-10-0-1-23", "gpu": "0", "UUID": "GPU-0f1e", "modelName": "NVIDIA H100 80GB HBM3"}
    fired = {**_expected(xid), "exp_labels": {**xid["labels"], **{k: gpu[k] for k in ("Hostname", "gpu", "UUID")}}}
    tests.append({"interval": EVAL_INTERVAL,
                  "input_series": [{"series": "DCGM_FI_DEV_XID_ERRORS" + _labels(**gpu), "values": "0x10 79x10"}],
                  "alert_rule_test": [{"eval_time": "15m", "alertname": xid["alert"], "exp_alerts": [fired]},
                                      {"eval_time": "5m", "alertname": xid["alert"], "exp_alerts": []}]})
    return tests


def test_alerts_fire_on_breaches_and_stay_silent_when_met(prod, catalog, tmp_path):
    spec, plan = prod
    files = _write_rule_files(alerts.prometheus_rules(spec, plan, catalog), tmp_path)
    tests = _unit_tests(spec, plan, catalog)
    fired = {t["alert_rule_test"][0]["alertname"] for t in tests if t["alert_rule_test"][0]["exp_alerts"]}
    assert fired == {"InferfleetErrorBudgetBurnFast", "InferfleetTtftBudgetBurnFast", "InferfleetGpuXidError"}
    unit = {"rule_files": files, "evaluation_interval": EVAL_INTERVAL, "tests": tests}
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))
    result = _run("test", "rules", "alerts_test.yaml", cwd=tmp_path)
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


def test_latency_buckets_match_the_pinned_vllm():
    """The bucket bounds the latency alerts read are vLLM 0.32.0's own (a bump that moves them fails)."""
    python = vllm_python()
    code = ("from vllm.v1.metrics.buckets import TIME_TO_FIRST_TOKEN_BUCKETS as t, INTER_TOKEN_LATENCY_BUCKETS as i;"
            "print(repr((tuple(t), tuple(i))))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "VLLM_LOGGING_LEVEL": "ERROR"}, check=True).stdout
    assert out.strip().splitlines()[-1] == repr((alerts.TTFT_BUCKETS_S, alerts.ITL_BUCKETS_S))
