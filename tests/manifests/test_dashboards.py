"""The Grafana dashboards: valid ConfigMaps for the sidecar, valid dashboard JSON, one per service with
its SLO as thresholds."""

from __future__ import annotations

import json
from typing import Any

from components.manifests import dashboards as d
from components.manifests import metric_names as m
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.validators import validate_object


def _dashboards(planned, catalog) -> list[dict[str, Any]]:
    spec, plan = planned
    return [json.loads(next(iter(cm["data"].values()))) for cm in d.dashboards(spec, plan, catalog)]


def _by_title(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in dashboard["panels"]}


def _red_line(panel: dict[str, Any]) -> float | None:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return next((step["value"] for step in steps if step["color"] == "red"), None)


def test_config_maps_validate_and_carry_the_sidecar_label(planned, catalog):
    spec, plan = planned
    for cm in d.dashboards(spec, plan, catalog):
        validate_object(cm, KUBERNETES_VERSION)
        assert cm["metadata"]["namespace"] == "monitoring"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key,) = cm["data"]
        assert key.endswith(".json")


def test_dashboard_json_is_grafana_shaped(planned, catalog):
    for dashboard in _dashboards(planned, catalog):
        assert dashboard["schemaVersion"] == d.SCHEMA_VERSION
        (variable,) = dashboard["templating"]["list"]
        assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)) and ids
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert all(target["datasource"] == panel["datasource"] for target in panel["targets"])
            grid = panel["gridPos"]
            assert set(grid) == {"x", "y", "w", "h"} and grid["x"] + grid["w"] <= d.GRID_COLUMNS
            assert panel["targets"] and all(target["expr"] for target in panel["targets"])


def test_panels_do_not_overlap(planned, catalog):
    for dashboard in _dashboards(planned, catalog):
        cells = [
            (x, y)
            for panel in dashboard["panels"]
            for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
            for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
        ]
        assert len(cells) == len(set(cells)), dashboard["title"]


def test_uids_are_unique_short_and_stable(planned, catalog):
    first = [dashboard["uid"] for dashboard in _dashboards(planned, catalog)]
    assert len(first) == len(set(first))
    assert all(len(uid) <= d.UID_MAX_LENGTH for uid in first)
    assert first == [dashboard["uid"] for dashboard in _dashboards(planned, catalog)]
    spec, _ = planned
    assert all(spec.environment in uid for uid in first)


def test_long_names_get_a_hashed_uid_within_grafanas_limit():
    long = d._uid("staging", "service", "a" * 40)
    assert len(long) == d.UID_MAX_LENGTH and long != d._uid("staging", "service", "a" * 39 + "b")


def test_one_service_dashboard_per_service_with_its_slo_thresholds(planned, catalog):
    spec, _ = planned
    by_title = {dashboard["title"]: dashboard for dashboard in _dashboards(planned, catalog)}
    for service in spec.services:
        panels = _by_title(by_title[f"inferfleet {spec.environment} / service {service.name}"])
        for panel in panels.values():
            for target in panel["targets"]:
                assert f'inferfleet_service="{service.name}"' in target["expr"]
        if "Time to first token" in panels:
            assert _red_line(panels["Time to first token"]) == service.slo.ttft_p99_ms / 1000
            assert len(panels["Time to first token"]["targets"]) == len(d.QUANTILES)
            itl = service.slo.itl_p99_ms / 1000 if service.slo.itl_p99_ms else None
            assert _red_line(panels["Inter-token latency"]) == itl
        else:
            assert _red_line(panels["Mean request latency"]) == service.slo.ttft_p99_ms


def test_vllm_service_dashboard_queries_the_pinned_releases_names(prod, catalog):
    spec, plan = prod
    chat = next(service for service in spec.services if service.engine == "vllm")
    exprs = " ".join(expr for title, expr in d.dashboard_expressions(spec, plan, catalog) if f"service {chat.name} /" in title)
    for name in (m.VLLM_TTFT, m.VLLM_ITL, m.VLLM_E2E_LATENCY, m.VLLM_KV_CACHE_USAGE, m.VLLM_NUM_REQUESTS_WAITING,
                 m.VLLM_NUM_REQUESTS_RUNNING, m.VLLM_PREFIX_CACHE_HITS, m.VLLM_PREEMPTIONS, m.VLLM_GENERATION_TOKENS):
        assert name in exprs
    assert "gpu_cache_usage_perc" not in exprs and "time_per_output_token" not in exprs


def test_fleet_dashboard_shows_the_planned_cost_as_planned(prod, catalog):
    spec, plan = prod
    fleet = _by_title(_dashboards(prod, catalog)[0])
    idle = fleet["Planned $/h idle (services at min replicas)"]
    assert idle["type"] == "stat" and "not billed" in idle["description"]
    assert idle["targets"][0]["expr"] == f"vector({plan.cost.hourly_usd_at_min_replicas:.4f})"
    assert fleet["Planned $/h at peak"]["targets"][0]["expr"] == f"vector({plan.cost.hourly_usd_at_peak:.4f})"
    assert "label_inferfleet_io_capacity_type" in fleet["GPUs by pool and capacity type"]["targets"][0]["expr"]


def test_engine_views_follow_the_engines_in_use(planned, catalog):
    spec, _ = planned
    titles = {dashboard["title"] for dashboard in _dashboards(planned, catalog)}
    engines = {service.engine for service in spec.services}
    assert (f"inferfleet {spec.environment} / Triton" in titles) == ("triton" in engines)
    assert (f"inferfleet {spec.environment} / Ray Serve" in titles) == ("ray-serve" in engines)
    assert f"inferfleet {spec.environment} / GPUs" in titles


def test_expressions_list_every_panel_target(planned, catalog):
    spec, plan = planned
    rendered = [target["expr"] for dashboard in _dashboards(planned, catalog) for panel in dashboard["panels"]
                for target in panel["targets"]]
    assert [expr for _, expr in d.dashboard_expressions(spec, plan, catalog)] == rendered


def test_ray_vllm_names_follow_rays_exporter():
    assert m.ray_vllm(m.VLLM_KV_CACHE_USAGE) == "ray_vllm_kv_cache_usage_perc"
    assert m.kube_label("inferfleet.io/capacity-type") == "label_inferfleet_io_capacity_type"


def test_triton_vllm_backend_dashboard_shows_only_what_the_backend_reports(triton_decoder, catalog):
    """The backend reports TTFT, the gaps between tokens under vLLM's old name and token counters; the
    queue comes from Triton's pending count, and no panel waits on a KV cache it never reports."""
    chat = next(x for x in _dashboards(triton_decoder, catalog) if x["title"].endswith("service chat"))
    panels = _by_title(chat)
    exprs = " ".join(t["expr"] for p in chat["panels"] for t in p["targets"])
    assert "vllm:time_per_output_token_seconds_bucket" in exprs and m.VLLM_ITL not in exprs
    assert m.TRITON_PENDING_REQUESTS in exprs and m.TRITON_REQUEST_SUCCESS in exprs
    assert "KV-cache usage" not in panels and "Preemptions/s" not in panels
    assert _red_line(panels["Time to first token"]) == 2.0
