"""The metrics stack under the recording mocks: kube-prometheus-stack's values carry the spec's retention
and volume, select every monitor and rule, stay on the system pool; the DCGM exporter and the add-ons'
monitors wait for its CRDs; Amazon Managed Prometheus gets a workspace and a write-only role; tracing
brings the collector; the generated rules and dashboards are applied after the stack."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.managed_prometheus import REMOTE_WRITE_ACTION
from components.catalog import load_catalog
from components.kubernetes.addons import (
    PROMETHEUS_SERVICE_ACCOUNT,
    termination_handler_values,
)
from components.kubernetes.charts import chart
from components.manifests.alerting import PAGERDUTY_ROUTING_KEY, SLACK_WEBHOOK_KEY
from components.manifests.alerting import SECRET_NAME as ALERTING_SECRET
from components.manifests.monitoring import (
    GRAFANA_DASHBOARD_LABEL,
    GRAFANA_DASHBOARD_LABEL_VALUE,
    MONITORING_NAMESPACE,
    OTEL_COLLECTOR_SERVICE,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    PROMETHEUS_STORAGE_CLASS,
)
from components.manifests.scheduling import GPU_LABEL, pool_taints, system_node_selector
from components.planner import plan_stack
from components.spec.models import AlertingSpec
from components.stack import load_stack
from tests.infra.conftest import of_type, run_under_mocks
from tests.infra.test_addons import CONFIG_GROUP, helm, one, prod_with_headroom, program, role_policy

WORKSPACE = "aws:amp/workspace:Workspace"
SELECTED_KINDS = ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig")
SIDECAR_LABEL = (GRAFANA_DASHBOARD_LABEL, GRAFANA_DASHBOARD_LABEL_VALUE)


def with_observability(spec, **changes):
    return spec.model_copy(update={"observability": spec.observability.model_copy(update=changes)})


@pytest.fixture(scope="module")
def prod_spec():
    return prod_with_headroom()


@pytest.fixture(scope="module")
def resources(prod_spec):
    catalog = load_catalog()
    return run_under_mocks(program(prod_spec, plan=plan_stack(prod_spec, catalog), catalog=catalog))


@pytest.fixture(scope="module")
def stack_values(resources):
    return helm(resources, "kube-prometheus-stack").inputs["values"]


def gpu_tolerations(spec) -> set[str]:
    return {json.dumps(t.toleration(), sort_keys=True) for p in spec.gpu_pools for t in pool_taints(p)}


def test_prometheus_keeps_the_specs_retention_on_a_gp3_volume(stack_values, prod_spec):
    prometheus = stack_values["prometheus"]["prometheusSpec"]
    assert stack_values["prometheus"]["enabled"] is True
    assert prometheus["retention"] == f"{prod_spec.observability.retention_days}d"
    claim = prometheus["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == PROMETHEUS_STORAGE_CLASS
    assert claim["resources"]["requests"]["storage"] == f"{prod_spec.observability.storage_gib}Gi"
    assert claim["accessModes"] == ["ReadWriteOnce"]


def test_the_volume_class_is_gp3_through_the_ebs_csi_driver_and_made_before_the_stack(resources):
    (group,) = [g for g in of_type(resources, CONFIG_GROUP) if g.name.endswith("-prometheus-storage")]
    (storage_class,) = group.inputs["objs"]
    assert storage_class["metadata"]["name"] == PROMETHEUS_STORAGE_CLASS
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert group.urn in helm(resources, "kube-prometheus-stack").options["dependsOn"]


def test_prometheus_selects_every_monitor_and_rule_whatever_its_release_label(stack_values):
    prometheus = stack_values["prometheus"]["prometheusSpec"]
    for kind in SELECTED_KINDS:
        assert prometheus[f"{kind}SelectorNilUsesHelmValues"] is False
        assert prometheus[f"{kind}Selector"] == {}
        assert prometheus[f"{kind}NamespaceSelector"] == {}


def test_alertmanager_grafana_and_exporters_are_on(stack_values):
    assert stack_values["alertmanager"]["enabled"] is True
    assert stack_values["grafana"]["enabled"] is True
    assert stack_values["kubeStateMetrics"]["enabled"] is True
    assert stack_values["nodeExporter"]["enabled"] is True
    assert stack_values["defaultRules"]["create"] is True
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert stack_values[component] == {"enabled": False}


def test_grafana_loads_the_generated_dashboards_from_every_namespace(stack_values):
    sidecar = stack_values["grafana"]["sidecar"]
    label, value = SIDECAR_LABEL
    assert sidecar["dashboards"]["enabled"] is True
    assert (sidecar["dashboards"]["label"], sidecar["dashboards"]["labelValue"]) == (label, value)
    assert sidecar["dashboards"]["searchNamespace"] == "ALL"
    assert sidecar["datasources"]["defaultDatasourceEnabled"] is True


def test_kube_state_metrics_keeps_the_pool_capacity_and_service_labels(stack_values):
    allowlist = stack_values["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allowlist == ["nodes=[inferfleet.io/pool,inferfleet.io/capacity-type]", "pods=[inferfleet.io/service]"]


def test_everything_but_daemonsets_runs_on_the_system_pool(stack_values, prod_spec):
    placed = [
        stack_values["prometheusOperator"],
        stack_values["prometheusOperator"]["admissionWebhooks"]["patch"],
        stack_values["prometheus"]["prometheusSpec"],
        stack_values["alertmanager"]["alertmanagerSpec"],
        stack_values["grafana"],
        stack_values["kube-state-metrics"],
    ]
    for values in placed:
        assert values["nodeSelector"] == system_node_selector()
        assert "tolerations" not in values
    exporter = {json.dumps(t, sort_keys=True) for t in stack_values["prometheus-node-exporter"]["tolerations"]}
    assert exporter == gpu_tolerations(prod_spec)


def test_dcgm_exporter_runs_on_gpu_nodes_and_waits_for_the_monitor_crds(resources, prod_spec):
    release = helm(resources, "dcgm-exporter")
    values = release.inputs["values"]
    assert values["nodeSelector"] == {GPU_LABEL: "true"}
    assert {json.dumps(t, sort_keys=True) for t in values["tolerations"]} == gpu_tolerations(prod_spec)
    assert values["serviceMonitor"]["enabled"] is True
    assert helm(resources, "kube-prometheus-stack").urn in release.options["dependsOn"]


def test_autoscaler_and_termination_handler_bring_their_own_monitors(resources):
    stack = helm(resources, "kube-prometheus-stack").urn
    autoscaler = helm(resources, "cluster-autoscaler")
    assert autoscaler.inputs["values"]["serviceMonitor"]["enabled"] is True
    assert autoscaler.inputs["values"]["serviceMonitor"]["namespace"] == chart("cluster-autoscaler").namespace
    handler = helm(resources, "aws-node-termination-handler")
    assert handler.inputs["values"]["enablePrometheusServer"] is True
    assert handler.inputs["values"]["podMonitor"]["create"] is True
    assert stack in autoscaler.options["dependsOn"] and stack in handler.options["dependsOn"]
    assert stack not in helm(resources, "keda").options["dependsOn"]


def test_the_termination_handler_runs_on_the_system_nodes():
    values = termination_handler_values("us-east-1", "https://queue", "arn:role")
    assert values["nodeSelector"] == system_node_selector()


def test_without_metrics_the_termination_handler_exposes_none():
    values = termination_handler_values("us-east-1", "https://queue", "arn:role")
    assert "enablePrometheusServer" not in values and "podMonitor" not in values


def test_prod_writes_to_its_managed_prometheus_workspace_as_a_write_only_role(resources, stack_values):
    (workspace,) = of_type(resources, WORKSPACE)
    assert workspace.inputs["alias"] == "inferfleet-prod"
    assert workspace.inputs["tags"] == {"owner": "ml-platform"}
    (remote,) = stack_values["prometheus"]["prometheusSpec"]["remoteWrite"]
    workspace_id = remote["url"].split("/workspaces/")[1].split("/")[0]
    assert workspace_id.startswith("prod-addons-managed-prometheus-workspace-")
    assert remote["url"] == (
        f"https://aps-workspaces.us-east-1.amazonaws.com/workspaces/{workspace_id}/api/v1/remote_write"
    )
    assert remote["sigv4"] == {"region": "us-east-1"}
    account = stack_values["prometheus"]["serviceAccount"]
    assert account["name"] == PROMETHEUS_SERVICE_ACCOUNT
    role_arn = account["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/prod-addons-managed-prometheus-writer-role")
    (statement,) = role_policy(resources, "prod-addons-managed-prometheus-writer-policy")["Statement"]
    assert statement["Action"] == [REMOTE_WRITE_ACTION]
    assert statement["Resource"] == [f"arn:aws:amp:us-east-1:123456789012:workspace/{workspace_id}"]


def test_without_managed_prometheus_there_is_no_workspace_and_no_remote_write(prod_spec):
    spec = with_observability(prod_spec, managed_prometheus=False)
    resources = run_under_mocks(program(spec))
    assert not of_type(resources, WORKSPACE)
    values = helm(resources, "kube-prometheus-stack").inputs["values"]
    assert "remoteWrite" not in values["prometheus"]["prometheusSpec"]
    assert values["prometheus"]["serviceAccount"]["annotations"] == {}


def test_tracing_installs_the_collector_the_engines_point_at(prod_spec):
    resources = run_under_mocks(program(with_observability(prod_spec, tracing=True)))
    collector = helm(resources, "opentelemetry-collector")
    assert collector.inputs["namespace"] == MONITORING_NAMESPACE
    values = collector.inputs["values"]
    assert values["mode"] == "deployment"
    assert values["fullnameOverride"] == OTEL_COLLECTOR_SERVICE
    assert values["image"]["repository"]
    assert values["nodeSelector"] == system_node_selector()
    assert values["ports"]["otlp"]["servicePort"] == OTLP_GRPC_PORT
    assert values["ports"]["otlp-http"]["servicePort"] == OTLP_HTTP_PORT
    assert values["config"]["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_rules_and_dashboards_are_applied_after_the_metrics_stack(resources):
    (group,) = [g for g in of_type(resources, CONFIG_GROUP) if g.name.endswith("-observability")]
    kinds = {obj["kind"] for obj in group.inputs["objs"]}
    assert kinds == {"PrometheusRule", "ConfigMap"}
    assert helm(resources, "kube-prometheus-stack").urn in group.options["dependsOn"]
    label, value = SIDECAR_LABEL
    for obj in group.inputs["objs"]:
        if obj["kind"] == "ConfigMap":
            assert obj["metadata"]["labels"][label] == value


def test_without_a_plan_no_rules_or_dashboards_are_applied(prod_spec):
    resources = run_under_mocks(program(prod_spec))
    assert not [g for g in of_type(resources, CONFIG_GROUP) if g.name.endswith("-observability")]


def test_staging_has_the_metrics_stack_without_a_workspace():
    spec = load_stack("stacks/staging.yaml").spec
    resources = run_under_mocks(program(spec), stack="staging")
    assert helm_named(resources, "staging", "kube-prometheus-stack")
    assert not of_type(resources, WORKSPACE)


def helm_named(resources, env: str, chart_name: str):
    return [r for r in resources if r.type.startswith("kubernetes:helm.sh/") and r.name == f"{env}-addons-{chart_name}"]


def test_grafana_gets_a_generated_admin_password_not_the_charts_default(stack_values):
    """kube-prometheus-stack's default `adminPassword` is public; empty, the Grafana chart generates one."""
    assert stack_values["grafana"]["adminPassword"] == ""


def test_without_routes_alertmanager_keeps_the_charts_config_and_no_secret(prod_spec):
    resources = run_under_mocks(program(_alerting(prod_spec)))
    values = helm(resources, "kube-prometheus-stack").inputs["values"]
    assert "config" not in values["alertmanager"]
    assert "secrets" not in values["alertmanager"]["alertmanagerSpec"]
    assert not [r for r in of_type(resources, CONFIG_GROUP) if r.name.endswith("-alerting-secret")]


def _alerting(spec, **routes):
    return with_observability(spec, alerting=AlertingSpec(**routes))


def test_alert_routes_mount_their_credentials_secret_made_before_the_stack(prod_spec):
    """The credentials Secret is a Pulumi secret as a whole (the recording masks it), applied before the
    metrics stack, and the chart values name only the mounted files."""
    spec = _alerting(prod_spec, slackChannel="#ml-alerts", pagerDuty=True)
    credentials = {SLACK_WEBHOOK_KEY: "https://hooks.slack.com/services/T0/B0/x",
                   PAGERDUTY_ROUTING_KEY: "0123456789abcdef0123456789abcdef"}
    resources = run_under_mocks(program(spec, alerting_credentials=credentials))
    secret = one(resources, CONFIG_GROUP, "prod-addons-alerting-secret")
    assert secret.inputs["objs"] == "[secret]"  # the whole object list is a Pulumi secret
    stack = helm(resources, "kube-prometheus-stack")
    assert secret.urn in stack.options["dependsOn"]
    values = stack.inputs["values"]["alertmanager"]
    assert values["alertmanagerSpec"]["secrets"] == [ALERTING_SECRET]
    assert [r["name"] for r in values["config"]["receivers"]] == ["null", "slack", "pagerduty"]
    assert "hooks.slack.com" not in json.dumps(stack.inputs["values"])


@pytest.mark.parametrize(("routes", "given"), [
    ({"slackChannel": "#ml-alerts"}, {}),
    ({}, {SLACK_WEBHOOK_KEY: "https://hooks.slack.com/services/T0/B0/x"}),
    ({"pagerDuty": True}, {SLACK_WEBHOOK_KEY: "https://hooks.slack.com/services/T0/B0/x"}),
])
def test_credentials_must_match_the_routes(prod_spec, routes, given):
    with pytest.raises(ValueError, match="ClusterAddonsArgs.alerting_credentials"):
        run_under_mocks(program(_alerting(prod_spec, **routes), alerting_credentials=given))


def test_a_route_without_its_secret_config_stops_the_program_naming_the_key(prod_spec):
    import pulumi

    from components.platform import alerting_credentials

    pulumi.runtime.set_all_config({}, secret_keys=[])
    with pytest.raises(pulumi.ConfigMissingError, match="alertSlackWebhookUrl"):
        run_under_mocks(lambda: alerting_credentials(_alerting(prod_spec, slackChannel="#ml-alerts")))


def test_dcgm_exporter_collects_every_field_the_views_and_alerts_read(resources, prod_spec):
    from components.catalog import load_catalog
    from components.manifests import metric_names as m
    from components.manifests.alerts import rule_expressions
    from components.manifests.dashboards import dashboard_expressions

    csv = helm(resources, "dcgm-exporter").inputs["values"]["customMetrics"]
    collected = {line.split(",")[0] for line in csv.splitlines()}
    catalog = load_catalog()
    plan = plan_stack(prod_spec, catalog)
    queries = " ".join(e for _, e in [*rule_expressions(prod_spec, plan, catalog), *dashboard_expressions(prod_spec, plan, catalog)])
    read = {name for name in re.findall(r"DCGM_FI_[A-Z_]+", queries)}
    assert read and read <= collected
    assert all(kind in ("gauge", "counter") for _, kind, _ in m.DCGM_FIELDS)


def test_spans_go_to_the_collectors_log_without_a_backend_and_to_the_backend_with_one(prod_spec):
    from components.kubernetes.addons import TRACE_BACKEND_EXPORTER, otel_collector_values

    logged = otel_collector_values(with_observability(prod_spec, tracing=True).observability)
    assert logged["config"]["service"]["pipelines"]["traces"]["exporters"] == ["debug"]
    assert "exporters" not in logged["config"]
    tempo = with_observability(prod_spec, tracing=True, tracing_endpoint="http://tempo.tracing.svc:4317")
    values = otel_collector_values(tempo.observability)
    assert values["config"]["service"]["pipelines"]["traces"]["exporters"] == [TRACE_BACKEND_EXPORTER]
    assert values["config"]["exporters"][TRACE_BACKEND_EXPORTER] == {
        "endpoint": "http://tempo.tracing.svc:4317", "tls": {"insecure": True}}
    tls = with_observability(prod_spec, tracing=True, tracing_endpoint="https://otlp.example.com:4317")
    assert otel_collector_values(tls.observability)["config"]["exporters"][TRACE_BACKEND_EXPORTER]["tls"] == {"insecure": False}
