"""Cluster add-ons under the recording mocks: pinned charts on the cluster's provider, their IRSA roles (made
on the platform side, components/aws/addon_roles.py) trusted by their service accounts, and values that
carry the spec's decisions."""

import json
import re
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from components.aws.addon_roles import AddonRoles, AddonRolesArgs, ServiceAccountRef
from components.kubernetes.addons import (
    CLUSTER_AUTOSCALER,
    PROMETHEUS_SERVICE_ACCOUNT,
    PROMETHEUS_STACK,
    TERMINATION_HANDLER,
    TERMINATION_HANDLER_MANAGED_TAG,
    TERMINATION_HANDLER_SERVICE_ACCOUNT,
    ClusterAddons,
    ClusterAddonsArgs,
    RemoteWriteTarget,
    kubernetes_provider,
)
from components.kubernetes.charts import EXACT_VERSION, chart, charts, load_charts
from components.manifests.autoscaler import SERVICE_ACCOUNT as AUTOSCALER_SERVICE_ACCOUNT
from components.manifests.alerting import secret_config_keys
from components.manifests.scheduling import GPU_LABEL, pool_taints
from components.stack import load_stack
from tests.infra.conftest import of_type, run_under_mocks

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inferfleet-prod-interruptions"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:inferfleet-prod-interruptions"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"


def prod_with_headroom():
    prod = load_stack("stacks/prod.yaml").spec
    pools = [p.model_copy(update={"headroom_gpus": 8 if p.name == "h100-spot" else 0}) for p in prod.gpu_pools]
    return prod.model_copy(update={"gpu_pools": pools})


def group_name(spec, pool: str) -> str:
    return f"inferfleet-{spec.environment}-{pool}"


def alerting_credentials_for(spec) -> dict[str, str]:
    """Stand-ins for the credentials the spec's alert routes need (the platform reads them from config)."""
    if not spec.observability.enabled:
        return {}
    return {key: f"test-{key}" for key in secret_config_keys(spec.observability.alerting)}


def addon_roles(spec, aws_provider) -> AddonRoles:
    """The add-ons' AWS identities, as the platform phase makes them."""
    observability = spec.observability
    prometheus = None
    if observability.enabled and observability.managed_prometheus:
        prometheus = ServiceAccountRef(chart(PROMETHEUS_STACK).namespace, PROMETHEUS_SERVICE_ACCOUNT)
    return AddonRoles(f"{spec.environment}-addons", AddonRolesArgs(
        environment=spec.environment,
        cluster_name=f"inferfleet-{spec.environment}",
        region=spec.aws.region,
        oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{ISSUER.removeprefix('https://')}",
        oidc_issuer_url=ISSUER,
        autoscaler=ServiceAccountRef(chart(CLUSTER_AUTOSCALER).namespace, AUTOSCALER_SERVICE_ACCOUNT),
        termination_handler=ServiceAccountRef(chart(TERMINATION_HANDLER).namespace, TERMINATION_HANDLER_SERVICE_ACCOUNT),
        interruption_queue_arn=QUEUE_ARN,
        asg_names=[group_name(spec, pool.name) for pool in spec.gpu_pools],
        prometheus=prometheus,
        tags={"owner": "ml-platform"},
    ), opts=pulumi.ResourceOptions(providers={"aws": aws_provider}))


def addons_args(spec, roles: AddonRoles, **overrides) -> ClusterAddonsArgs:
    prometheus = roles.managed_prometheus
    fields = dict(
        spec=spec,
        cluster_name=f"inferfleet-{spec.environment}",
        region=spec.aws.region,
        asg_names={pool.name: group_name(spec, pool.name) for pool in spec.gpu_pools},
        gpus_per_node={pool.name: 8 for pool in spec.gpu_pools},
        interruption_queue_url=QUEUE_URL,
        autoscaler_role_arn=roles.autoscaler_role_arn,
        termination_handler_role_arn=roles.termination_handler_role_arn,
        remote_write=RemoteWriteTarget(prometheus.remote_write_url, prometheus.writer_role_arn) if prometheus else None,
        tags={"owner": "ml-platform"},
        alerting_credentials=alerting_credentials_for(spec),
    )
    fields.update(overrides)
    return ClusterAddonsArgs(**fields)


def program(spec, with_kubernetes_provider: bool = True, **overrides):
    """What the two phases do: the add-ons' roles on the AWS provider, then the add-ons on the cluster's."""

    def build():
        aws_provider = aws.Provider("test-aws", region=spec.aws.region)
        roles = addon_roles(spec, aws_provider)
        providers = {"kubernetes": kubernetes_provider("test-kubernetes", "{}")} if with_kubernetes_provider else {}
        ClusterAddons(
            f"{spec.environment}-addons",
            addons_args(spec, roles, **overrides),
            opts=pulumi.ResourceOptions(providers=providers),
        )

    return build


@pytest.fixture(scope="module")
def prod_spec():
    return prod_with_headroom()


@pytest.fixture(scope="module")
def resources(prod_spec):
    return run_under_mocks(program(prod_spec))


def one(resources, token: str, name: str):
    (found,) = [r for r in resources if r.type == token and r.name == name]
    return found


def role_policy(resources, name: str) -> dict:
    return json.loads(one(resources, "aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])


def helm(resources, chart_name: str):
    (found,) = [r for r in resources if r.type in HELM_TYPES and r.name == f"prod-addons-{chart_name}"]
    return found


ONLY_WHEN_ASKED = {"lws", "opentelemetry-collector"}
"""Charts installed only when the stack needs them (a vLLM replica over several nodes; tracing)."""


def test_every_chart_is_installed_at_its_pinned_version(resources):
    installed = [r for r in resources if r.type in HELM_TYPES]
    assert {r.name.removeprefix("prod-addons-") for r in installed} == set(charts()) - ONLY_WHEN_ASKED
    for release in installed:
        pinned = charts()[release.name.removeprefix("prod-addons-")]
        assert release.inputs["version"] == pinned.version
        assert EXACT_VERSION.match(release.inputs["version"])
        assert release.inputs["namespace"] == pinned.namespace
        if pinned.is_oci:
            assert release.inputs["chart"] == f"{pinned.repository}/{pinned.chart}"
            assert "repositoryOpts" not in release.inputs
        else:
            assert release.inputs["chart"] == pinned.chart
            assert release.inputs["repositoryOpts"] == {"repo": pinned.repository}


def test_leader_worker_set_controller_installed_when_asked(prod_spec):
    installed = [r for r in run_under_mocks(program(prod_spec, leader_worker_set=True)) if r.type in HELM_TYPES]
    assert "prod-addons-lws" in {r.name for r in installed}


def test_charts_that_need_hooks_are_helm_releases_the_others_v4_charts(resources):
    for name, pinned in charts().items():
        if name in ONLY_WHEN_ASKED:
            continue
        expected = "kubernetes:helm.sh/v3:Release" if pinned.hooks else "kubernetes:helm.sh/v4:Chart"
        assert helm(resources, name).type == expected


def test_every_kubernetes_resource_is_on_the_cluster_provider(resources):
    (provider,) = of_type(resources, "pulumi:providers:kubernetes")
    in_cluster = [r for r in resources if r.type.startswith("kubernetes:")]
    assert len(in_cluster) >= len(charts()) + 1
    for resource in in_cluster:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_kubernetes_provider_uses_server_side_apply_and_tolerates_a_deleted_cluster(resources):
    (provider,) = of_type(resources, "pulumi:providers:kubernetes")
    assert provider.inputs["enableServerSideApply"] == "true"
    assert provider.inputs["deleteUnreachable"] == "true"


def test_iam_resources_are_on_the_aws_provider(resources):
    (provider,) = of_type(resources, "pulumi:providers:aws")
    for resource in [r for r in resources if r.type.startswith("aws:iam/")]:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_autoscaler_values_prefer_spot_pools_through_the_priority_expander(resources, prod_spec):
    values = helm(resources, "cluster-autoscaler").inputs["values"]
    assert values["extraArgs"]["expander"] == "priority"
    priorities = {int(level): patterns for level, patterns in values["expanderPriorities"].items()}

    def level(pool: str) -> int:
        group = group_name(prod_spec, pool)
        return max(p for p, patterns in priorities.items() if any(re.search(x, group) for x in patterns))

    spot = [level(p.name) for p in prod_spec.gpu_pools if p.capacity_type == "spot"]
    on_demand = [level(p.name) for p in prod_spec.gpu_pools if p.capacity_type == "onDemand"]
    assert min(spot) > max(on_demand)
    role_arn = values["rbac"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/prod-addons-cluster-autoscaler-irsa-role-")
    assert values["autoDiscovery"]["clusterName"] == "inferfleet-prod"


def test_termination_handler_reads_the_interruption_queue_with_its_role(resources):
    values = helm(resources, "aws-node-termination-handler").inputs["values"]
    assert values["enableSqsTerminationDraining"] is True
    assert values["queueURL"] == QUEUE_URL
    assert values["checkTagBeforeDraining"] is True
    assert values["managedTag"] == TERMINATION_HANDLER_MANAGED_TAG
    assert values["serviceAccount"]["name"] == "aws-node-termination-handler"
    role_arn = values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.startswith("arn:aws:iam::123456789012:role/prod-addons-termination-handler-irsa-role-")


def test_device_plugin_tolerates_gpu_and_spot_taints_on_gpu_nodes_only(resources, prod_spec):
    values = helm(resources, "nvidia-device-plugin").inputs["values"]
    assert values["nodeSelector"] == {GPU_LABEL: "true"}
    expected = {json.dumps(t.toleration(), sort_keys=True) for p in prod_spec.gpu_pools for t in pool_taints(p)}
    assert {json.dumps(t, sort_keys=True) for t in values["tolerations"]} == expected
    assert {t["key"] for t in values["tolerations"]} == {"nvidia.com/gpu", "inferfleet.io/spot"}


def test_irsa_roles_trust_only_their_service_accounts(resources):
    subjects = {}
    for role in of_type(resources, "aws:iam/role:Role"):
        condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        subjects[role.name] = condition[f"{ISSUER.removeprefix('https://')}:sub"]
        assert role.inputs["tags"] == {"owner": "ml-platform"}
    assert subjects == {
        "prod-addons-cluster-autoscaler-irsa-role": "system:serviceaccount:kube-system:cluster-autoscaler",
        "prod-addons-termination-handler-irsa-role": "system:serviceaccount:kube-system:aws-node-termination-handler",
        "prod-addons-managed-prometheus-writer-role": "system:serviceaccount:monitoring:prometheus",
    }


def test_autoscaler_may_resize_only_groups_tagged_for_this_cluster(resources):
    policy = role_policy(resources, "prod-addons-cluster-autoscaler-irsa-policy")
    (resize,) = [s for s in policy["Statement"] if "autoscaling:SetDesiredCapacity" in s["Action"]]
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in resize["Action"]
    owned = {"aws:ResourceTag/k8s.io/cluster-autoscaler/inferfleet-prod": "owned"}
    assert resize["Condition"] == {"StringEquals": owned}
    assert resize["Resource"] != ["*"]
    for statement in policy["Statement"]:
        assert all(action != "*" and not action.endswith(":*") for action in statement["Action"])
        if statement["Resource"] == ["*"]:
            assert all(":Describe" in a or ":Get" in a for a in statement["Action"])


def test_termination_handler_may_touch_only_its_queue_and_the_pools_groups(resources, prod_spec):
    policy = role_policy(resources, "prod-addons-termination-handler-irsa-policy")
    by_action = {action: s for s in policy["Statement"] for action in s["Action"]}
    assert by_action["sqs:ReceiveMessage"]["Resource"] == [QUEUE_ARN]
    assert by_action["sqs:DeleteMessage"]["Resource"] == [QUEUE_ARN]
    groups = by_action["autoscaling:CompleteLifecycleAction"]["Resource"]
    assert len(groups) == len(prod_spec.gpu_pools)
    for arn, pool in zip(groups, prod_spec.gpu_pools, strict=True):
        assert arn.endswith(f":autoScalingGroupName/{group_name(prod_spec, pool.name)}")
    for action in ("ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeTags"):
        assert by_action[action]["Resource"] == ["*"]


def test_headroom_objects_are_applied_after_the_device_plugin(resources):
    (group,) = [g for g in of_type(resources, CONFIG_GROUP) if g.name.endswith("-headroom")]
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in group.inputs["objs"]}
    assert ("Deployment", "headroom-h100-spot") in kinds
    assert ("PriorityClass", "inferfleet-headroom") in kinds
    assert helm(resources, "nvidia-device-plugin").urn in group.options["dependsOn"]


def test_releases_wait_for_the_namespaces_they_go_into(resources):
    namespace = one(resources, "kubernetes:core/v1:Namespace", "prod-addons-ns-ray-system")
    assert namespace.inputs["metadata"]["name"] == "ray-system"
    assert namespace.urn in helm(resources, "kuberay-operator").options["dependsOn"]
    names = {r.inputs["metadata"]["name"] for r in of_type(resources, "kubernetes:core/v1:Namespace")}
    assert "kube-system" not in names


def test_no_headroom_and_no_observability_leave_out_the_config_group_and_the_metrics_stack():
    dev = load_stack("stacks/dev.yaml").spec
    dev = dev.model_copy(update={"observability": dev.observability.model_copy(update={"enabled": False})})
    resources = run_under_mocks(program(dev), stack="dev")
    assert [g.name for g in of_type(resources, CONFIG_GROUP)] == ["dev-addons-gateway-class"]
    installed = {r.name.removeprefix("dev-addons-") for r in resources if r.type in HELM_TYPES}
    assert installed == set(charts()) - {"kube-prometheus-stack", "dcgm-exporter"} - ONLY_WHEN_ASKED
    assert not of_type(resources, "aws:amp/workspace:Workspace")


def test_a_missing_kubernetes_provider_is_refused(prod_spec):
    with pytest.raises(ValueError, match="Kubernetes provider"):
        run_under_mocks(program(prod_spec, with_kubernetes_provider=False))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"asg_names": {"h100-spot": "x"}}, "ClusterAddonsArgs.asg_names"),
        ({"gpus_per_node": {"l4-ondemand": 1}}, "ClusterAddonsArgs.gpus_per_node"),
        ({"region": "eu-west-1"}, "ClusterAddonsArgs.region"),
    ],
)
def test_inconsistent_arguments_are_refused(prod_spec, overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        run_under_mocks(program(prod_spec, **overrides))


def test_a_cluster_version_the_pinned_autoscaler_was_not_built_for_is_refused(prod_spec):
    cluster = prod_spec.cluster.model_copy(update={"kubernetes_version": "1.35"})
    newer = prod_spec.model_copy(update={"cluster": cluster})
    with pytest.raises(ValueError, match="kubernetesVersion 1.35"):
        run_under_mocks(program(newer))


def test_a_chart_version_range_is_refused(tmp_path: Path):
    path = tmp_path / "charts.yaml"
    path.write_text(
        "charts:\n  keda:\n    repository: https://kedacore.github.io/charts\n    chart: keda\n"
        "    version: '^2.20'\n    namespace: keda\n"
    )
    with pytest.raises(ValueError, match="charts.keda.version"):
        load_charts(path)


def test_the_shared_gateway_follows_its_class_and_the_envoy_gateway_chart(resources):
    (setup,) = [g for g in of_type(resources, CONFIG_GROUP) if g.name.endswith("-gateway-class")]
    assert {obj["kind"] for obj in setup.inputs["objs"]} == {"Namespace", "EnvoyProxy", "GatewayClass"}
    assert helm(resources, "envoy-gateway").urn in setup.options["dependsOn"]
    (gateway,) = of_type(resources, "kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert gateway.inputs["spec"]["gatewayClassName"] == "inferfleet"
    assert setup.urn in gateway.options["dependsOn"]
