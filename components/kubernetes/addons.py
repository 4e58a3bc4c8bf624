"""The cluster's add-ons: pinned Helm charts (versions in charts.yaml) and the GPU headroom placeholders.
Their AWS identities (IRSA roles, the managed Prometheus workspace) are the platform's
(components/aws/addon_roles.py); this side only names the role ARNs it is given.

Helm resource per chart: a `helm.v4.Chart` (rendered client-side, every object a Pulumi resource that
policies and `inferfleet render` can see) unless the chart needs Helm hooks to install, which
`helm.v4.Chart` drops; those (`hooks: true` in charts.yaml: Envoy Gateway's certgen Job,
kube-prometheus-stack's admission webhook certificate Jobs) are `helm.v3.Release`s, which run Helm
itself.

With observability on, the metrics stack (kube-prometheus-stack: Prometheus, Alertmanager, Grafana,
kube-state-metrics, node-exporter), the DCGM exporter on GPU nodes, the add-ons' own ServiceMonitors and
PodMonitors, the generated PrometheusRules and dashboards, and (when asked) the OpenTelemetry collector
and the Amazon Managed Prometheus workspace Prometheus remote-writes to.

Every in-cluster resource lives in the workloads stack (components/phases.py), which is destroyed before the
platform stack that owns the cluster; `deleted_with` cannot name a resource of another stack, so the
Kubernetes provider's `deleteUnreachable` is what lets a destroy finish after the cluster is already gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Catalog
from components.kubernetes.charts import Chart, chart
from components.manifests.alerting import SECRET_NAME as ALERTING_SECRET
from components.manifests.alerting import alerting_secret, alertmanager_config, secret_config_keys
from components.manifests.autoscaler import cluster_autoscaler_values, priority_expander_priorities
from components.manifests.gateway import gateway_objects
from components.manifests.headroom import headroom_objects
from components.manifests.metric_names import dcgm_counters_csv
from components.manifests.monitoring import (
    GRAFANA_DASHBOARD_LABEL,
    GRAFANA_DASHBOARD_LABEL_VALUE,
    GRAFANA_DATASOURCE_UID,
    OTEL_COLLECTOR_SERVICE,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    PROMETHEUS_STORAGE_CLASS,
    SCRAPE_INTERVAL,
    prometheus_storage_class,
)
from components.manifests.scheduling import CAPACITY_LABEL, GPU_LABEL, POOL_LABEL, pool_taints, system_node_selector
from components.manifests.serving import SERVICE_LABEL
from components.planner.plan import StackPlan
from components.spec.models import AlertingSpec, ObservabilitySpec, StackSpec

CLUSTER_AUTOSCALER = "cluster-autoscaler"
TERMINATION_HANDLER = "aws-node-termination-handler"
DEVICE_PLUGIN = "nvidia-device-plugin"
KUBERAY = "kuberay-operator"
KEDA = "keda"
GATEWAY = "envoy-gateway"
LEADER_WORKER_SET = "lws"
PROMETHEUS_STACK = "kube-prometheus-stack"
DCGM_EXPORTER = "dcgm-exporter"
OTEL_COLLECTOR = "opentelemetry-collector"
MONITORED_CHARTS = (CLUSTER_AUTOSCALER, TERMINATION_HANDLER, DCGM_EXPORTER)
"""Charts that bring their own ServiceMonitor or PodMonitor: with the metrics stack they wait for its CRDs."""
PROMETHEUS_SERVICE_ACCOUNT = "prometheus"
"""Named rather than left to the chart, so that the remote-write role can trust exactly this account."""
OTEL_COLLECTOR_IMAGE = "otel/opentelemetry-collector-k8s"
"""The collector distribution for Kubernetes (OTLP receiver, batch and memory_limiter processors)."""
KUBE_STATE_METRICS_LABELS = {"nodes": (POOL_LABEL, CAPACITY_LABEL), "pods": (SERVICE_LABEL,)}
"""Object labels kube-state-metrics copies into kube_node_labels / kube_pod_labels (as label_inferfleet_io_*),
so that GPUs can be counted by pool and capacity type and pods by service."""
EKS_UNREACHABLE_COMPONENTS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
"""Components EKS does not let Prometheus scrape (managed control plane; kube-proxy's metrics bound to
localhost): their ServiceMonitors would only raise target-down alerts."""
EKS_UNREACHABLE_RULES = (
    "etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "kubeProxy"
)
"""Default rule groups about those components (kube-prometheus-stack's defaultRules.rules keys)."""
TERMINATION_HANDLER_SERVICE_ACCOUNT = "aws-node-termination-handler"
TERMINATION_HANDLER_MANAGED_TAG = "aws-node-termination-handler/managed"
"""The handler drains only instances carrying this tag key: the GPU pools' groups must propagate it at
launch, so that interruption events for instances of other clusters in the account are left alone."""
PRE_EXISTING_NAMESPACES = frozenset({"kube-system", "default"})


def kubernetes_provider(
    name: str, kubeconfig: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """The cluster's Kubernetes provider, built by the program (components only inherit providers).

    Server-side apply lets Pulumi share fields with controllers and apply CRDs too big for the
    last-applied annotation; `delete_unreachable` drops in-cluster resources from the state when
    the cluster is gone, instead of failing the destroy."""
    return k8s.Provider(
        name,
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        delete_unreachable=True,
        opts=opts,
    )


def termination_handler_values(region: str, queue_url: str, role_arn: str, metrics: bool = False) -> dict[str, Any]:
    """aws-node-termination-handler in queue mode: one Deployment on the system pool reading the SQS
    queue that EventBridge fills (spot interruption warnings, rebalance recommendations, instance
    state changes, lifecycle hooks). With `metrics`, its Prometheus endpoint and the chart's PodMonitor."""
    monitoring = {"enablePrometheusServer": True, "podMonitor": {"create": True, "interval": SCRAPE_INTERVAL}}
    return {
        **(monitoring if metrics else {}),
        "enableSqsTerminationDraining": True,
        "queueURL": queue_url,
        "awsRegion": region,
        "serviceAccount": {
            "create": True,
            "name": TERMINATION_HANDLER_SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": role_arn},
        },
        # In queue mode the EventBridge rules decide which events reach the handler, and it cordons and
        # drains for all of them. These four flags configure the per-node IMDS DaemonSet, which queue
        # mode does not run; off, so that nothing also polls instance metadata.
        "enableSpotInterruptionDraining": False,
        "enableRebalanceMonitoring": False,
        "enableRebalanceDraining": False,
        "enableScheduledEventDraining": False,
        "checkTagBeforeDraining": True,
        "managedTag": TERMINATION_HANDLER_MANAGED_TAG,
        "nodeSelector": system_node_selector(),
    }


def device_plugin_tolerations(spec: StackSpec) -> list[dict[str, str]]:
    """Tolerations of every taint any GPU pool carries (scheduling.pool_taints), each once, in order."""
    tolerations: list[dict[str, str]] = []
    for pool in spec.gpu_pools:
        for taint in pool_taints(pool):
            if taint.toleration() not in tolerations:
                tolerations.append(taint.toleration())
    return tolerations


def device_plugin_values(spec: StackSpec) -> dict[str, Any]:
    """The device plugin on GPU nodes only, tolerating the GPU and spot taints the pools carry."""
    return {
        "nodeSelector": {GPU_LABEL: "true"},
        "tolerations": device_plugin_tolerations(spec),
    }


def autoscaler_monitoring_values() -> dict[str, Any]:
    """The Cluster Autoscaler chart's own ServiceMonitor, next to the autoscaler (its Service's namespace);
    Prometheus selects ServiceMonitors by no label, so the chart's default selector label is irrelevant."""
    return {
        "serviceMonitor": {
            "enabled": True,
            "namespace": chart(CLUSTER_AUTOSCALER).namespace,
            "interval": SCRAPE_INTERVAL,
            "path": "/metrics",
        }
    }


@dataclass(frozen=True)
class RemoteWrite:
    """Where Prometheus also sends every sample, and the role it signs the writes with (IRSA)."""

    url: str
    region: str
    role_arn: str


def _system_pool() -> dict[str, Any]:
    """Helm values that put a chart's pods on the system nodes, selected by the labels the system node
    group gives them (components/manifests/scheduling.py, the one home of that fact)."""
    return {"nodeSelector": system_node_selector()}


def kube_state_metrics_allowlist() -> list[str]:
    """kube-state-metrics' --metric-labels-allowlist entries, one per resource kind."""
    return [f"{kind}=[{','.join(labels)}]" for kind, labels in KUBE_STATE_METRICS_LABELS.items()]


def _select_everything() -> dict[str, Any]:
    """Prometheus picks up every rule, ServiceMonitor, PodMonitor, Probe and ScrapeConfig in every
    namespace, whatever Helm release label it carries (the serving PodMonitors and the rules carry none)."""
    selected = ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig")
    values: dict[str, Any] = {}
    for kind in selected:
        values[f"{kind}SelectorNilUsesHelmValues"] = False
        values[f"{kind}Selector"] = {}
        values[f"{kind}NamespaceSelector"] = {}
    return values


def prometheus_spec(observability: ObservabilitySpec, remote_write: RemoteWrite | None) -> dict[str, Any]:
    """Retention and an EBS gp3 volume from the spec, everything selected, on the system pool."""
    spec: dict[str, Any] = {
        "retention": f"{observability.retention_days}d",
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": PROMETHEUS_STORAGE_CLASS,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{observability.storage_gib}Gi"}},
                }
            }
        },
        "scrapeInterval": SCRAPE_INTERVAL,
        **_select_everything(),
        **_system_pool(),
    }
    if remote_write is not None:
        spec["remoteWrite"] = [{"url": remote_write.url, "sigv4": {"region": remote_write.region}}]
    return spec


def _prometheus_service_account(remote_write: RemoteWrite | None) -> dict[str, Any]:
    annotations = {"eks.amazonaws.com/role-arn": remote_write.role_arn} if remote_write else {}
    return {"create": True, "name": PROMETHEUS_SERVICE_ACCOUNT, "annotations": annotations}


def grafana_values() -> dict[str, Any]:
    """Grafana with the Prometheus datasource the chart provisions and the dashboard sidecar loading
    every labelled ConfigMap of every namespace (the generated dashboards).

    `adminPassword` is emptied: kube-prometheus-stack sets it to a well-known default, and without it the
    Grafana chart generates a random 40-character password into its Secret, kept across upgrades by Helm's
    `lookup` (the metrics stack is a Helm release, so lookup runs). Read it with
    `kubectl -n monitoring get secret kube-prometheus-stack-grafana -o jsonpath='{.data.admin-password}'`."""
    return {
        "enabled": True,
        "adminPassword": "",
        **_system_pool(),
        "sidecar": {
            "dashboards": {
                "enabled": True,
                "label": GRAFANA_DASHBOARD_LABEL,
                "labelValue": GRAFANA_DASHBOARD_LABEL_VALUE,
                "searchNamespace": "ALL",
            },
            "datasources": {"enabled": True, "defaultDatasourceEnabled": True, "uid": GRAFANA_DATASOURCE_UID},
        },
    }


def alertmanager_values(alerting: AlertingSpec) -> dict[str, Any]:
    """Alertmanager on the system pool; with notification routes, their configuration and the Secret of
    their credentials mounted (the configuration names the files, never the values)."""
    values: dict[str, Any] = {"enabled": True, "alertmanagerSpec": _system_pool()}
    if alerting.routes_anywhere:
        values["config"] = alertmanager_config(alerting)
        values["alertmanagerSpec"]["secrets"] = [ALERTING_SECRET]
    return values


def prometheus_stack_values(spec: StackSpec, remote_write: RemoteWrite | None = None) -> dict[str, Any]:
    """kube-prometheus-stack: operator, Prometheus, Alertmanager, Grafana, kube-state-metrics on the
    system pool; node-exporter (a DaemonSet) on every node, GPU nodes included."""
    disabled = {component: {"enabled": False} for component in EKS_UNREACHABLE_COMPONENTS}
    return {
        "crds": {"enabled": True},
        "defaultRules": {"create": True, "rules": {rule: False for rule in EKS_UNREACHABLE_RULES}},
        **disabled,
        "prometheusOperator": {
            "enabled": True,
            **_system_pool(),
            "admissionWebhooks": {"patch": _system_pool()},
        },
        "prometheus": {
            "enabled": True,
            "serviceAccount": _prometheus_service_account(remote_write),
            "prometheusSpec": prometheus_spec(spec.observability, remote_write),
        },
        "alertmanager": alertmanager_values(spec.observability.alerting),
        "grafana": grafana_values(),
        "kubeStateMetrics": {"enabled": True},
        "kube-state-metrics": {"metricLabelsAllowlist": kube_state_metrics_allowlist(), **_system_pool()},
        "nodeExporter": {"enabled": True},
        "prometheus-node-exporter": {"tolerations": device_plugin_tolerations(spec)},
    }


def dcgm_exporter_values(spec: StackSpec) -> dict[str, Any]:
    """NVIDIA's DCGM exporter on GPU nodes only, tolerating their taints, scraped through its chart's
    ServiceMonitor, collecting exactly metric_names.DCGM_FIELDS (GPU utilisation, memory, power,
    temperature, XID errors per GPU and pod)."""
    return {
        "nodeSelector": {GPU_LABEL: "true"},
        "tolerations": device_plugin_tolerations(spec),
        "serviceMonitor": {"enabled": True, "interval": SCRAPE_INTERVAL},
        "customMetrics": dcgm_counters_csv(),
    }


TRACE_BACKEND_EXPORTER = "otlp/backend"
"""The collector's exporter to observability.tracingEndpoint (OTLP over gRPC)."""


def otel_collector_values(observability: ObservabilitySpec) -> dict[str, Any]:
    """One collector Deployment on the system pool receiving the engines' OTLP spans (gRPC for vLLM,
    HTTP for Triton), batched under a memory limit, and forwarded to `tracingEndpoint`; without one it
    exports to its log (`debug`). Either way the engines' flags stay the same: they point at the collector."""
    endpoint = observability.tracing_endpoint
    exporters: dict[str, Any] = {}
    if endpoint is not None:
        exporters[TRACE_BACKEND_EXPORTER] = {
            "endpoint": endpoint,
            "tls": {"insecure": endpoint.startswith("http://")},
        }
    return {
        "mode": "deployment",
        "fullnameOverride": OTEL_COLLECTOR_SERVICE,
        "image": {"repository": OTEL_COLLECTOR_IMAGE},
        **_system_pool(),
        "ports": {
            "otlp": {"enabled": True, "containerPort": OTLP_GRPC_PORT, "servicePort": OTLP_GRPC_PORT},
            "otlp-http": {"enabled": True, "containerPort": OTLP_HTTP_PORT, "servicePort": OTLP_HTTP_PORT},
            "jaeger-compact": {"enabled": False},
            "jaeger-thrift": {"enabled": False},
            "jaeger-grpc": {"enabled": False},
            "zipkin": {"enabled": False},
        },
        # Helm merges this into the chart's default config; the traces pipeline's lists replace its own, so
        # only OTLP feeds it (the Jaeger and Zipkin ports are closed above).
        "config": {
            **({"exporters": exporters} if exporters else {}),
            "service": {
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["memory_limiter", "batch"],
                        "exporters": list(exporters) or ["debug"],
                    }
                }
            },
        },
    }


def observability_objects(spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """The PrometheusRules from each service's SLO and the Grafana dashboard ConfigMaps. Imported here,
    not at the top: those modules build on the whole manifests layer."""
    from components.manifests.alerts import prometheus_rules
    from components.manifests.dashboards import dashboards

    return [*prometheus_rules(spec, plan, catalog), *dashboards(spec, plan, catalog)]


@dataclass
class ClusterAddonsArgs:
    spec: StackSpec
    cluster_name: str
    region: str
    asg_names: dict[str, pulumi.Input[str]]
    """Auto Scaling group name per GPU pool name."""
    gpus_per_node: dict[str, int]
    """GPUs of one node per GPU pool name (the pool's first instance type)."""
    interruption_queue_url: pulumi.Input[str]
    autoscaler_role_arn: pulumi.Input[str]
    termination_handler_role_arn: pulumi.Input[str]
    """The add-ons' IRSA roles, made by the platform (components/aws/addon_roles.py)."""
    remote_write: RemoteWriteTarget | None = None
    """The managed Prometheus workspace to remote-write to and the role to sign with; None (default): none."""
    tags: dict[str, str] = field(default_factory=dict)
    leader_worker_set: bool = False
    """Install the LeaderWorkerSet controller (a vLLM replica spans several nodes). Default false."""
    plan: StackPlan | None = None
    catalog: Catalog | None = None
    """The stack's plan and catalog: with both and the metrics stack on, the generated PrometheusRules
    and Grafana dashboards are applied (they are computed from the plan's services and costs)."""
    alerting_credentials: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Alertmanager's credentials by Secret key (components/manifests/alerting.py), from Pulumi secret
    config; exactly those the spec's `observability.alerting` routes need. Default none."""


@dataclass(frozen=True)
class RemoteWriteTarget:
    """A managed Prometheus workspace's remote-write URL and its writer role, as the platform outputs them."""

    url: pulumi.Input[str]
    role_arn: pulumi.Input[str]


class GatewayResource(pulumi.CustomResource):
    """A Gateway API Gateway with its `status` as an output (the generic CustomResource has none), so
    the program can export the load balancer address Envoy Gateway reports."""

    status: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, gateway: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        api_version, kind = gateway["apiVersion"], gateway["kind"]
        props = {"apiVersion": api_version, "kind": kind, "metadata": gateway["metadata"], "spec": gateway["spec"],
                 "status": None}
        super().__init__(f"kubernetes:{api_version}:{kind}", name, props, opts)


def _gateway_address(status: dict[str, Any] | None) -> str:
    """The load balancer address Envoy Gateway reports on the Gateway; empty until the load balancer
    exists (the first `pulumi up` may finish before it does: `pulumi refresh` fills it in)."""
    addresses = (status or {}).get("addresses") or []
    return str(addresses[0].get("value", "")) if addresses else ""


def _has_kubernetes_provider(opts: pulumi.ResourceOptions | None) -> bool:
    providers = opts.providers if opts else None
    if isinstance(providers, dict):
        return "kubernetes" in providers
    return any(getattr(provider, "package", None) == "kubernetes" for provider in providers or [])


def _validate(args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None) -> list[dict[str, Any]]:
    """Check the arguments; returns the headroom objects (their construction is itself a check)."""
    spec = args.spec
    if not args.cluster_name:
        raise ValueError("ClusterAddonsArgs.cluster_name: required")
    if args.region != spec.aws.region:
        raise ValueError(f"ClusterAddonsArgs.region: {args.region!r} is not the spec's region {spec.aws.region!r}")
    pools = {pool.name for pool in spec.gpu_pools}
    if set(args.asg_names) != pools:
        raise ValueError(
            f"ClusterAddonsArgs.asg_names: needs exactly the GPU pools {sorted(pools)}, got {sorted(args.asg_names)}"
        )
    bad_counts = {pool: count for pool, count in args.gpus_per_node.items() if count < 1}
    if bad_counts:
        raise ValueError(f"ClusterAddonsArgs.gpus_per_node: counts must be positive, got {bad_counts}")
    autoscaler = chart(CLUSTER_AUTOSCALER)
    if autoscaler.app_version and not autoscaler.app_version.startswith(f"{spec.cluster.kubernetes_version}."):
        raise ValueError(
            f"ClusterAddonsArgs.spec: cluster.kubernetesVersion {spec.cluster.kubernetes_version} needs the "
            f"Cluster Autoscaler of that minor version; charts.yaml pins {autoscaler.version} "
            f"(CA {autoscaler.app_version})"
        )
    needed = set(secret_config_keys(spec.observability.alerting)) if spec.observability.enabled else set()
    if set(args.alerting_credentials) != needed:
        raise ValueError(
            f"ClusterAddonsArgs.alerting_credentials: observability.alerting needs exactly {sorted(needed)}, "
            f"got {sorted(args.alerting_credentials)}"
        )
    if not _has_kubernetes_provider(opts):
        raise ValueError(
            "ClusterAddons: pass the cluster's Kubernetes provider as opts.providers={'kubernetes': ...}; "
            "without it the add-ons would go to whatever cluster the ambient kubeconfig names"
        )
    try:
        return headroom_objects(spec, args.gpus_per_node)
    except ValueError as error:
        raise ValueError(f"ClusterAddonsArgs.gpus_per_node: {error}") from None


class ClusterAddons(pulumi.ComponentResource):
    """The add-ons every environment's cluster runs, on the Kubernetes provider the caller passes."""

    releases: dict[str, pulumi.Resource]
    """Helm chart or release per charts.yaml name (the metrics stack and DCGM exporter only when
    observability is on, the collector only with tracing)."""
    namespaces: dict[str, k8s.core.v1.Namespace]
    headroom: k8s.yaml.v2.ConfigGroup | None
    storage_class: k8s.yaml.v2.ConfigGroup | None
    """The gp3 StorageClass Prometheus' volume is made from."""
    observability: k8s.yaml.v2.ConfigGroup | None
    """The generated PrometheusRules and dashboards (with the metrics stack, a plan and a catalog)."""
    gateway: GatewayResource
    gateway_hostname: pulumi.Output[str]
    autoscaler_role_arn: pulumi.Output[str]
    termination_handler_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        headroom = _validate(args, opts)
        super().__init__("inferfleet:kubernetes:ClusterAddons", name, None, opts)
        self._name = name
        spec = args.spec
        pool_names = [pool.name for pool in spec.gpu_pools]
        self.autoscaler_role_arn = pulumi.Output.from_input(args.autoscaler_role_arn)
        self.termination_handler_role_arn = pulumi.Output.from_input(args.termination_handler_role_arn)
        self._remote_write = args.remote_write

        observability = spec.observability
        metrics = observability.enabled
        installed = [CLUSTER_AUTOSCALER, TERMINATION_HANDLER, DEVICE_PLUGIN, KUBERAY, KEDA, GATEWAY]
        if metrics:
            installed += [PROMETHEUS_STACK, DCGM_EXPORTER]
            if observability.collects_traces:
                installed.append(OTEL_COLLECTOR)
        if args.leader_worker_set:
            installed.append(LEADER_WORKER_SET)
        self.namespaces = {}
        for namespace in dict.fromkeys(chart(key).namespace for key in installed):
            if namespace not in PRE_EXISTING_NAMESPACES:
                self.namespaces[namespace] = k8s.core.v1.Namespace(
                    f"{name}-ns-{namespace}",
                    metadata={"name": namespace, "labels": {"app.kubernetes.io/part-of": "inferfleet"}},
                    opts=self._in_cluster(),
                )

        asg_by_pool = pulumi.Output.all(*[args.asg_names[pool] for pool in pool_names]).apply(
            lambda names: dict(zip(pool_names, names, strict=True))
        )
        autoscaler_values = pulumi.Output.all(asg_by_pool, self.autoscaler_role_arn).apply(
            lambda resolved: {
                **cluster_autoscaler_values(
                    args.cluster_name, args.region, resolved[1], priority_expander_priorities(spec, resolved[0])
                ),
                **(autoscaler_monitoring_values() if metrics else {}),
            }
        )
        handler_values = pulumi.Output.all(args.interruption_queue_url, self.termination_handler_role_arn).apply(
            lambda resolved: termination_handler_values(args.region, resolved[0], resolved[1], metrics=metrics)
        )
        values: dict[str, pulumi.Input[dict[str, Any]]] = {
            CLUSTER_AUTOSCALER: autoscaler_values,
            TERMINATION_HANDLER: handler_values,
            DEVICE_PLUGIN: device_plugin_values(spec),
            KUBERAY: {},
            KEDA: {},
            GATEWAY: {},
            PROMETHEUS_STACK: self._prometheus_stack_values(spec, args.region),
            DCGM_EXPORTER: dcgm_exporter_values(spec),
            OTEL_COLLECTOR: otel_collector_values(observability),
            LEADER_WORKER_SET: {},
        }
        self.storage_class = None
        self.releases = {}
        if metrics:
            self.storage_class = k8s.yaml.v2.ConfigGroup(
                f"{name}-prometheus-storage", objs=[prometheus_storage_class()], opts=self._in_cluster()
            )
            before_stack: list[pulumi.Resource] = [self.storage_class]
            if args.alerting_credentials:
                before_stack.append(self._alerting_secret(name, args.alerting_credentials))
            self.releases[PROMETHEUS_STACK] = self._install(
                chart(PROMETHEUS_STACK), values[PROMETHEUS_STACK], before_stack
            )
        for key in installed:
            if key not in self.releases:
                needs_crds = [self.releases[PROMETHEUS_STACK]] if metrics and key in MONITORED_CHARTS else []
                self.releases[key] = self._install(chart(key), values[key], needs_crds)

        self.observability = None
        if metrics and args.plan is not None and args.catalog is not None:
            self.observability = k8s.yaml.v2.ConfigGroup(
                f"{name}-observability",
                objs=observability_objects(spec, args.plan, args.catalog),
                opts=self._in_cluster(depends_on=[self.releases[PROMETHEUS_STACK]]),
            )

        gateway_objects_ = gateway_objects(spec.environment)
        setup = [obj for obj in gateway_objects_ if obj["kind"] != "Gateway"]
        (gateway,) = [obj for obj in gateway_objects_ if obj["kind"] == "Gateway"]
        gateway_setup = k8s.yaml.v2.ConfigGroup(
            f"{name}-gateway-class", objs=setup, opts=self._in_cluster(depends_on=[self.releases[GATEWAY]])
        )
        self.gateway = GatewayResource(f"{name}-gateway", gateway, opts=self._in_cluster(depends_on=[gateway_setup]))
        self.gateway_hostname = self.gateway.status.apply(_gateway_address)

        self.headroom = None
        if headroom:
            self.headroom = k8s.yaml.v2.ConfigGroup(
                f"{name}-headroom",
                objs=headroom,
                opts=self._in_cluster(depends_on=[self.releases[DEVICE_PLUGIN]]),
            )
        self.register_outputs(
            {
                "gatewayHostname": self.gateway_hostname,
                "autoscalerRoleArn": self.autoscaler_role_arn,
                "terminationHandlerRoleArn": self.termination_handler_role_arn,
            }
        )

    def _in_cluster(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])

    def _alerting_secret(self, name: str, credentials: dict[str, pulumi.Input[str]]) -> pulumi.Resource:
        """The Secret Alertmanager mounts, before the metrics stack (its pod waits on the mount otherwise)."""
        keys = list(credentials)
        secret = pulumi.Output.secret(pulumi.Output.all(*credentials.values())).apply(
            lambda values: [alerting_secret(dict(zip(keys, values, strict=True)))]
        )
        namespace = self.namespaces.get(chart(PROMETHEUS_STACK).namespace)
        return k8s.yaml.v2.ConfigGroup(
            f"{name}-alerting-secret", objs=secret, opts=self._in_cluster(depends_on=[namespace] if namespace else [])
        )

    def _prometheus_stack_values(self, spec: StackSpec, region: str) -> pulumi.Input[dict[str, Any]]:
        """The metrics stack's values, remote-writing to the managed workspace when there is one."""
        target = self._remote_write
        if target is None:
            return prometheus_stack_values(spec)
        return pulumi.Output.all(target.url, target.role_arn).apply(
            lambda resolved: prometheus_stack_values(spec, RemoteWrite(resolved[0], region, resolved[1]))
        )

    def _install(
        self, spec: Chart, values: pulumi.Input[dict[str, Any]], after: list[pulumi.Resource] | None = None
    ) -> pulumi.Resource:
        """A Release where the chart needs hooks, a v4 Chart otherwise; in its namespace, made first, and
        after `after` (the metrics stack's CRDs for charts that bring monitors)."""
        namespace = self.namespaces.get(spec.namespace)
        opts = self._in_cluster(depends_on=[*([namespace] if namespace else []), *(after or [])])
        common = dict(
            name=spec.name,
            chart=spec.reference,
            version=spec.version,
            namespace=spec.namespace,
            values=values,
            opts=opts,
        )
        if spec.hooks:
            repository = k8s.helm.v3.RepositoryOptsArgs(repo=spec.repository) if spec.repository_opts else None
            return k8s.helm.v3.Release(f"{self._name}-{spec.name}", repository_opts=repository, **common)
        repository = k8s.helm.v4.RepositoryOptsArgs(repo=spec.repository) if spec.repository_opts else None
        return k8s.helm.v4.Chart(f"{self._name}-{spec.name}", repository_opts=repository, **common)
