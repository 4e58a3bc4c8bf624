"""The PrometheusRules generated from each service's SLO and the fleet's spec."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from components.manifests import alerts
from components.spec.models import SloSpec
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests import validators

ROOT = Path(__file__).resolve().parents[2]


def validate_rule_object(obj):
    validators.validate_object(obj, KUBERNETES_VERSION)


def _rules(obj):
    return [rule for group in obj["spec"]["groups"] for rule in group["rules"]]


def _alert_rules(spec, plan, catalog):
    return [r for obj in alerts.prometheus_rules(spec, plan, catalog) for r in _rules(obj) if "alert" in r]


def _by_service(objects, name):
    return next(o for o in objects if o["metadata"]["name"] == f"inferfleet-{name}")


def _with_slo(spec, service_name, slo):
    """The spec with one service's SLO replaced (the spec is frozen: copy it)."""
    services = [s.model_copy(update={"slo": slo}) if s.name == service_name else s for s in spec.services]
    return spec.model_copy(update={"services": services})


def test_schema_check_catches_a_bad_rule_object(prod, catalog):
    spec, plan = prod
    obj = alerts.prometheus_rules(spec, plan, catalog)[0]
    broken = {**obj, "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "severity": "page"}]}]}}
    with pytest.raises(jsonschema.ValidationError):
        validate_rule_object(broken)


def test_every_rule_object_validates_against_the_crd(planned, catalog):
    spec, plan = planned
    objects = alerts.prometheus_rules(spec, plan, catalog)
    assert objects[-1]["metadata"]["name"] == "inferfleet-fleet"
    for obj in objects:
        validate_rule_object(obj)
        assert obj["metadata"]["namespace"] == "monitoring"
        assert obj["metadata"]["labels"] == {"app.kubernetes.io/part-of": "inferfleet"}


def test_alert_names_unique_within_each_rule_object(planned, catalog):
    spec, plan = planned
    for obj in alerts.prometheus_rules(spec, plan, catalog):
        names = [r["alert"] for r in _rules(obj) if "alert" in r]
        assert len(names) == len(set(names)), obj["metadata"]["name"]


def test_every_alert_has_severity_summary_description_and_an_existing_runbook(planned, catalog):
    spec, plan = planned
    for rule in _alert_rules(spec, plan, catalog):
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        runbook = ROOT / rule["annotations"]["runbook"]
        assert runbook.parent == ROOT / alerts.RUNBOOK_DIR
        assert runbook.is_file(), runbook
        assert runbook.read_text().startswith(f"# {rule['alert']} ({rule['labels']['severity']})")


def test_every_runbook_belongs_to_an_alert(catalog, prod):
    """No stale runbooks: each file names an alert that prod's rules generate."""
    spec, plan = prod
    names = {r["alert"] for r in _alert_rules(spec, plan, catalog)}
    files = {p.stem for p in (ROOT / alerts.RUNBOOK_DIR).glob("*.md")}
    assert files == names


def test_service_alerts_carry_the_service_label(prod, catalog):
    spec, plan = prod
    for service in spec.services:
        obj = _by_service(alerts.prometheus_rules(spec, plan, catalog), service.name)
        for rule in _rules(obj):
            if "alert" in rule:
                assert rule["labels"]["inferfleet_service"] == service.name
            assert f'inferfleet_service="{service.name}"' in rule["expr"]


def test_burn_thresholds_follow_the_availability_target(prod, catalog):
    """99.9%: budget 0.001, page at 14.4x (1h/5m) and 6x (6h/30m), ticket at 3x and 1x."""
    spec, plan = prod
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    by_name = {r.get("alert"): r for r in _rules(chat)}
    fast, slow = by_name["InferfleetErrorBudgetBurnFast"], by_name["InferfleetErrorBudgetBurnSlow"]
    assert fast["labels"]["severity"] == "page" and slow["labels"]["severity"] == "ticket"
    for window, threshold in (("1h", "0.0144"), ("5m", "0.0144"), ("6h", "0.006"), ("30m", "0.006")):
        assert f'inferfleet:slo_errors:ratio_rate{window}{{inferfleet_service="chat"}} > {threshold}' in fast["expr"]
    for window, threshold in (("1d", "0.003"), ("2h", "0.003"), ("3d", "0.001"), ("6h", "0.001")):
        assert f'inferfleet:slo_errors:ratio_rate{window}{{inferfleet_service="chat"}} > {threshold}' in slow["expr"]


@pytest.mark.parametrize(("availability", "page_1h"), [(0.999, "0.0144"), (0.99, "0.144"), (0.9995, "0.0072")])
def test_burn_threshold_is_factor_times_budget(availability, page_1h):
    assert alerts.burn_threshold(alerts.BURN_WINDOWS[0], 1 - availability) == page_1h


def test_every_burn_window_has_a_recording_rule(prod, catalog):
    spec, plan = prod
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    recorded = {r["record"] for r in _rules(chat) if "record" in r}
    for key in ("errors", "ttft_slow", "itl_slow"):
        for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
            assert f"inferfleet:slo_{key}:ratio_rate{window}" in recorded


def test_service_without_availability_gets_no_availability_alerts(prod, catalog):
    spec, plan = prod
    spec = _with_slo(spec, "chat", SloSpec(ttftP99Ms=2000.0, itlP99Ms=60.0))
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    names = {r.get("alert") or r.get("record") for r in _rules(chat)}
    assert not any("ErrorBudget" in n or "slo_errors" in n for n in names)
    assert "InferfleetTtftBudgetBurnFast" in names


def test_service_without_slo_keeps_only_saturation_alerts(prod, catalog):
    spec, plan = prod
    spec = _with_slo(spec, "chat", None)
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    assert [g["name"] for g in chat["spec"]["groups"]] == ["chat.saturation"]
    rag = _by_service(alerts.prometheus_rules(_with_slo(spec, "rag", None), plan, catalog), "rag")
    assert [g["name"] for g in rag["spec"]["groups"]] == ["rag.saturation"]


def test_vllm_error_ratio_reads_the_api_handlers_5xx(prod, catalog):
    spec, plan = prod
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    expr = next(r["expr"] for r in _rules(chat) if r.get("record") == "inferfleet:slo_errors:ratio_rate5m")
    assert 'http_requests_total{namespace="inferfleet-serving",inferfleet_service="chat"' in expr
    assert 'handler=~"/v1/.+",status="5xx"' in expr
    assert 'inferfleet_revision!="shadow"' in expr


def test_engine_error_metrics(prod, catalog):
    spec, plan = prod
    objects = alerts.prometheus_rules(spec, plan, catalog)
    rag = next(r["expr"] for r in _rules(_by_service(objects, "rag")) if r.get("record", "").endswith("rate5m"))
    assert "ray_serve_num_http_error_requests_total" in rag and "ray_serve_num_http_requests_total" in rag
    rerank = next(r["expr"] for r in _rules(_by_service(objects, "rerank")) if r.get("record", "").endswith("rate5m"))
    assert "nv_inference_request_failure" in rerank and "nv_inference_request_success" in rerank


@pytest.mark.parametrize(
    ("target_ms", "buckets", "bound"),
    [
        (2000, alerts.m.VLLM_TTFT_BUCKETS_S, 1.0),  # between 1 s and 2.5 s: measured at 1 s
        (2500, alerts.m.VLLM_TTFT_BUCKETS_S, 2.5),  # on a bound
        (300, alerts.m.VLLM_TTFT_BUCKETS_S, 0.25),
        (60, alerts.m.VLLM_ITL_BUCKETS_S, 0.05),
        (0.5, alerts.m.VLLM_TTFT_BUCKETS_S, None),  # below every bound
    ],
)
def test_latency_bound_is_the_largest_bucket_at_or_below_the_target(target_ms, buckets, bound):
    assert alerts.latency_bound(target_ms, buckets) == bound


def test_ttft_slow_ratio_reads_the_bound_bucket(prod, catalog):
    spec, plan = prod
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    expr = next(r["expr"] for r in _rules(chat) if r.get("record") == "inferfleet:slo_ttft_slow:ratio_rate1h")
    assert 'vllm:time_to_first_token_seconds_bucket{' in expr and 'le=~"1(\\\\.0)?"' in expr
    assert "vllm:time_to_first_token_seconds_count{" in expr


def _alert_names(objects, service):
    return {r.get("alert") for r in _rules(_by_service(objects, service))} - {None}


BURNS = {f"Inferfleet{sli}BudgetBurn{speed}" for sli in ("Error", "Ttft", "Itl") for speed in ("Fast", "Slow")}


def _expr(objects, service, name):
    return next(r["expr"] for r in _rules(_by_service(objects, service)) if name in (r.get("alert"), r.get("record")))


def test_ray_serve_llm_alerts_read_rays_reexport_of_vllms_series(prod, catalog):
    spec, plan = prod
    objects = alerts.prometheus_rules(spec, plan, catalog)
    assert _alert_names(objects, "rag") == BURNS | {
        "InferfleetKvCacheSaturated", "InferfleetPreemptions", "InferfleetQueueBacklog"}
    assert "ray_vllm_time_to_first_token_seconds_bucket{" in _expr(objects, "rag", "inferfleet:slo_ttft_slow:ratio_rate1h")
    assert "ray_vllm_inter_token_latency_seconds_count{" in _expr(objects, "rag", "inferfleet:slo_itl_slow:ratio_rate1h")
    assert "ray_vllm_kv_cache_usage_perc{" in _expr(objects, "rag", "InferfleetKvCacheSaturated")


def test_triton_encoder_gets_availability_and_its_pending_queue_only(prod, catalog):
    spec, plan = prod
    objects = alerts.prometheus_rules(spec, plan, catalog)
    assert _alert_names(objects, "rerank") == {
        "InferfleetErrorBudgetBurnFast", "InferfleetErrorBudgetBurnSlow", "InferfleetQueueBacklog"}
    assert "nv_inference_pending_request_count{" in _expr(objects, "rerank", "InferfleetQueueBacklog")


def test_triton_vllm_backend_latency_reads_the_backends_histograms_and_bounds(triton_decoder, catalog):
    """The backend's TTFT buckets stop at 10 s and its gaps between tokens keep vLLM's old name; it
    reports no KV cache, so only the queue (Triton's pending count) stands for saturation."""
    spec, plan = triton_decoder
    objects = alerts.prometheus_rules(spec, plan, catalog)
    assert _alert_names(objects, "chat") == BURNS | {"InferfleetQueueBacklog"}
    ttft = _expr(objects, "chat", "inferfleet:slo_ttft_slow:ratio_rate1h")
    assert 'vllm:time_to_first_token_seconds_bucket{' in ttft and 'le=~"1(\\\\.0)?"' in ttft
    itl = _expr(objects, "chat", "inferfleet:slo_itl_slow:ratio_rate1h")
    assert 'vllm:time_per_output_token_seconds_bucket{' in itl and 'le="0.05"' in itl
    assert "nv_inference_pending_request_count{" in _expr(objects, "chat", "InferfleetQueueBacklog")


def test_custom_histogram_buckets_drop_the_latency_alerts(prod, catalog):
    spec, plan = prod
    chat = next(s for s in spec.services if s.name == "chat")
    custom = chat.model_copy(update={"engine_args": {**chat.engine_args, alerts.CUSTOM_BUCKETS_ARG: "0.1,1"}})
    assert any(sli.key.endswith("_slow") for sli in alerts.slis(chat, catalog))
    assert not any(sli.key.endswith("_slow") for sli in alerts.slis(custom, catalog))


def test_queue_alert_uses_each_replica_sets_planned_concurrency(prod, catalog):
    from components.manifests.placement import replica_sets

    spec, plan = prod
    chat_spec = next(s for s in spec.services if s.name == "chat")
    chat = _by_service(alerts.prometheus_rules(spec, plan, catalog), "chat")
    expr = next(r["expr"] for r in _rules(chat) if r.get("alert") == "InferfleetQueueBacklog")
    for rs in replica_sets(chat_spec, spec, plan):
        assert f'inferfleet_replica_set="{rs.name}"}}) > {rs.plan.planned_concurrency}' in expr


def test_pool_at_maximum_compares_with_each_pools_max_size(prod, catalog):
    spec, plan = prod
    fleet = _by_service(alerts.prometheus_rules(spec, plan, catalog), "fleet")
    expr = next(r["expr"] for r in _rules(fleet) if r.get("alert") == "InferfleetGpuPoolAtMaximum")
    for pool in spec.gpu_pools:
        assert f'kube_node_labels{{label_inferfleet_io_pool="{pool.name}"}}) >= {pool.max_size}' in expr


def test_no_rules_when_observability_is_off(prod, catalog):
    spec, plan = prod
    off = spec.model_copy(update={"observability": spec.observability.model_copy(update={"enabled": False})})
    assert alerts.prometheus_rules(off, plan, catalog) == []


def test_rule_expressions_list_every_rule(prod, catalog):
    spec, plan = prod
    pairs = alerts.rule_expressions(spec, plan, catalog)
    count = sum(len(_rules(o)) for o in alerts.prometheus_rules(spec, plan, catalog))
    assert len(pairs) == count
    assert ("InferfleetGpuXidError", "max by (Hostname, gpu, UUID) (DCGM_FI_DEV_XID_ERRORS) > 0") in pairs
