"""GPU pools under the recording mocks: warm pool on demand, mixed instances on spot, IMDSv2, encrypted
gp3, autoscaler node-template tags from the scheduling function, and the AMI resolved once or pinned."""

from __future__ import annotations

import email
import re

import pytest
import yaml

from components.aws.gpu_pool import (
    NODE_READY_HEARTBEAT_SECONDS,
    NODE_READY_HOOK,
    GpuPool,
    GpuPoolArgs,
    ami_parameter_name,
)
from components.aws.user_data import read_launch_template_user_data
from components.manifests.scheduling import pool_labels, pool_taints
from components.mocks import CloudMocks
from components.stack import load_stack
from tests.infra.conftest import of_type

TAGS = {"owner": "ml-platform", "inferfleet:environment": "prod"}
GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
PINNED = "ami-0123456789abcdef0"
H100 = "H100-SXM5-80GB"
"""The catalog's GPU of p5.48xlarge, the prod H100 pools' instance type."""
ACCELERATOR = "k8s.amazonaws.com/accelerator"


@pytest.fixture(scope="module")
def pools():
    return {pool.name: pool for pool in load_stack("stacks/prod.yaml").spec.gpu_pools}


def args(pool, **overrides) -> GpuPoolArgs:
    fields = dict(
        environment="prod",
        pool=pool,
        cluster_name="inferfleet-prod",
        cluster_endpoint="https://ABC.gr7.us-east-1.eks.amazonaws.com",
        cluster_ca_data="Q0E=",
        kubernetes_version="1.34",
        ami_family="al2023-nvidia",
        subnet_ids=["subnet-a", "subnet-b"],
        node_security_group_ids=["sg-nodes"],
        instance_profile_name="prod-gpu-nodes",
        gpus_per_node=8,
        prepull_images=["public.ecr.aws/inferfleet/vllm:0.32.0"],
        tags=TAGS,
    )
    fields.update(overrides)
    return GpuPoolArgs(**fields)


def build(under_mocks, pool, **overrides):
    resources = under_mocks(lambda: GpuPool(f"prod-{pool.name}", args(pool, **overrides)))
    (group,) = of_type(resources, GROUP)
    (template,) = of_type(resources, TEMPLATE)
    return resources, group, template


def group_tags(group) -> dict[str, str]:
    assert all(tag["propagateAtLaunch"] is True for tag in group.inputs["tags"])
    return {tag["key"]: tag["value"] for tag in group.inputs["tags"]}


def test_on_demand_pool_has_the_spec_warm_pool_and_a_single_launch_template(under_mocks, pools):
    pool = pools["h100-ondemand"]
    _, group, template = build(under_mocks, pool)
    warm = group.inputs["warmPool"]
    assert warm["poolState"] == pool.warm_pool.state == "Stopped"
    assert warm["minSize"] == pool.warm_pool.size
    assert warm["instanceReusePolicy"] == {"reuseOnScaleIn": pool.warm_pool.reuse_on_scale_in}
    assert warm["maxGroupPreparedCapacity"] == pool.min_size + pool.warm_pool.size
    assert "mixedInstancesPolicy" not in group.inputs
    assert group.inputs["launchTemplate"]["id"].startswith("lt-")
    assert group.inputs["launchTemplate"]["version"] == "1"
    assert template.inputs["instanceType"] == "p5.48xlarge"
    assert group.inputs["instanceRefresh"]["strategy"] == "Rolling"


def test_a_refresh_launches_each_replacement_before_it_terminates_the_old_node(under_mocks, pools):
    """A one-node on-demand floor at 90% healthy would be terminated first: the service would drop below it."""
    _, group, _ = build(under_mocks, pools["h100-ondemand"])
    preferences = group.inputs["instanceRefresh"]["preferences"]
    assert (preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]) == (100, 200)


def test_an_image_rollout_changes_the_pre_pull_list_not_the_launch_template(under_mocks, pools):
    pool = pools["h100-ondemand"]
    before, _, template_before = build(under_mocks, pool, prepull_images=["vllm@sha256:" + "1" * 64])
    after, _, template_after = build(under_mocks, pool, prepull_images=["vllm@sha256:" + "2" * 64])
    assert template_before.inputs["userData"] == template_after.inputs["userData"]
    (listed_before,) = of_type(before, "aws:ssm/parameter:Parameter")
    (listed_after,) = of_type(after, "aws:ssm/parameter:Parameter")
    assert listed_before.inputs["name"] == listed_after.inputs["name"] == "/inferfleet/prod/prepull/h100-ondemand"
    assert (listed_before.inputs["insecureValue"], listed_after.inputs["insecureValue"]) == (
        "vllm@sha256:" + "1" * 64 + "\n", "vllm@sha256:" + "2" * 64 + "\n")


def test_a_pool_without_a_warm_pool_has_no_pre_pull_list(under_mocks, pools):
    resources, _, template = build(under_mocks, pools["h100-spot"])
    assert of_type(resources, "aws:ssm/parameter:Parameter") == []
    assert "cat > /etc/inferfleet/prepull-parameter" not in read_launch_template_user_data(template.inputs["userData"])


def test_group_size_bounds_from_the_spec_and_desired_left_to_the_autoscaler(under_mocks, pools):
    pool = pools["h100-ondemand"]
    _, group, _ = build(under_mocks, pool)
    assert (group.inputs["minSize"], group.inputs["maxSize"]) == (pool.min_size, pool.max_size)
    assert "desiredCapacity" not in group.inputs
    assert group.options["ignoreChanges"] == ["desiredCapacity"]
    assert group.inputs["name"] == "inferfleet-prod-h100-ondemand"
    assert group.inputs["vpcZoneIdentifiers"] == ["subnet-a", "subnet-b"]


def test_spot_pool_uses_a_mixed_instances_policy_and_no_warm_pool(under_mocks, pools):
    pool = pools["h100-spot"]
    _, group, template = build(under_mocks, pool)
    policy = group.inputs["mixedInstancesPolicy"]
    # One shape per pool (the autoscaler sizes a group by one instance type): spot diversity comes
    # from other pools, but a spot group still buys through a mixed instances policy.
    assert [o["instanceType"] for o in policy["launchTemplate"]["overrides"]] == ["p5.48xlarge"]
    spec = policy["launchTemplate"]["launchTemplateSpecification"]
    assert spec["launchTemplateId"].startswith("lt-") and spec["version"] == "1"
    distribution = policy["instancesDistribution"]
    assert distribution["spotAllocationStrategy"] == "price-capacity-optimized"
    assert distribution["onDemandBaseCapacity"] == 0
    assert distribution["onDemandPercentageAboveBaseCapacity"] == 0
    assert group.inputs["capacityRebalance"] is True
    assert "warmPool" not in group.inputs
    assert "launchTemplate" not in group.inputs
    assert "instanceType" not in template.inputs


def test_warm_pool_group_has_one_launch_hook_that_continues(under_mocks, pools):
    _, group, _ = build(under_mocks, pools["h100-ondemand"])
    (hook,) = group.inputs["initialLifecycleHooks"]
    assert hook == {
        "name": "inferfleet-node-ready",
        "lifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "defaultResult": "CONTINUE",
        "heartbeatTimeout": NODE_READY_HEARTBEAT_SECONDS,
    }
    # Long enough to pull multi-GB serving images, and a deploy waits longer than that for minSize.
    assert 600 <= NODE_READY_HEARTBEAT_SECONDS <= 7200
    minutes = int(group.inputs["waitForCapacityTimeout"].removesuffix("m"))
    assert minutes * 60 > NODE_READY_HEARTBEAT_SECONDS


@pytest.mark.parametrize("pool_name", ["h100-spot", "l40s-ondemand"])
def test_groups_without_a_warm_pool_have_no_launch_hook(under_mocks, pools, pool_name):
    pool = pools[pool_name]
    assert pool.warm_pool is None
    _, group, template = build(under_mocks, pool)
    assert "initialLifecycleHooks" not in group.inputs
    assert "waitForCapacityTimeout" not in group.inputs
    shell = email.message_from_string(read_launch_template_user_data(template.inputs["userData"]))
    assert "cat > /etc/inferfleet/lifecycle-hook-name" not in shell.get_payload()[0].get_payload(decode=True).decode()


def test_user_data_names_the_hook_and_the_group_it_belongs_to(under_mocks, pools):
    _, group, template = build(under_mocks, pools["h100-ondemand"])
    shell = email.message_from_string(read_launch_template_user_data(template.inputs["userData"]))
    text = shell.get_payload()[0].get_payload(decode=True).decode()
    hook_file = "cat > /etc/inferfleet/lifecycle-hook-name <<'INFERFLEET_EOF_ETC_INFERFLEET_LIFECYCLE_HOOK_NAME'"
    group_file = "cat > /etc/inferfleet/autoscaling-group-name <<'INFERFLEET_EOF_ETC_INFERFLEET_AUTOSCALING_GROUP_NAME'"
    assert f"{hook_file}\n{NODE_READY_HOOK}\n" in text
    assert f"{group_file}\n{group.inputs['name']}\n" in text


def test_launch_template_requires_imdsv2_and_keeps_tags_out_of_metadata(under_mocks, pools):
    _, _, template = build(under_mocks, pools["h100-spot"])
    options = template.inputs["metadataOptions"]
    assert options["httpTokens"] == "required"
    # One hop: only the host network reaches IMDSv2, so pods cannot take the node role's credentials.
    assert options["httpPutResponseHopLimit"] == 1
    # EC2 refuses to launch instances whose tag keys contain "/" when tags are in instance metadata.
    assert options["instanceMetadataTags"] == "disabled"


def test_root_volume_is_encrypted_gp3_of_the_spec_size(under_mocks, pools):
    pool = pools["h100-spot"]
    _, _, template = build(under_mocks, pool)
    (device,) = template.inputs["blockDeviceMappings"]
    assert device["deviceName"] == "/dev/xvda"
    assert device["ebs"] == {
        "volumeType": "gp3",
        "volumeSize": pool.root_volume_gib,
        "iops": 3000,
        "throughput": 125,
        "encrypted": "true",
        "deleteOnTermination": "true",
    }


def test_launch_template_wiring_and_tags(under_mocks, pools):
    _, _, template = build(under_mocks, pools["h100-spot"])
    assert template.inputs["iamInstanceProfile"] == {"name": "prod-gpu-nodes"}
    assert template.inputs["vpcSecurityGroupIds"] == ["sg-nodes"]
    assert template.inputs["monitoring"] == {"enabled": True}
    assert template.inputs["tags"] == {**TAGS, "Name": "prod-h100-spot"}
    specs = {s["resourceType"]: s["tags"] for s in template.inputs["tagSpecifications"]}
    assert specs == {"instance": {**TAGS, "Name": "prod-h100-spot"}, "volume": {**TAGS, "Name": "prod-h100-spot"}}


def test_user_data_is_the_join_document_with_the_pool_labels(under_mocks, pools):
    pool = pools["h100-ondemand"]
    _, _, template = build(under_mocks, pool)
    document = read_launch_template_user_data(template.inputs["userData"])
    shell = email.message_from_string(document).get_payload()[0].get_payload(decode=True).decode()
    assert "--node-labels=" + ",".join(f"{k}={v}" for k, v in pool_labels(pool, H100).items()) in shell
    assert "https://ABC.gr7.us-east-1.eks.amazonaws.com" in shell
    assert "/inferfleet/prod/prepull/h100-ondemand" in shell and "public.ecr.aws/inferfleet/vllm:0.32.0" not in shell
    assert "cat > /etc/inferfleet/warm-pool" in shell


@pytest.mark.parametrize("pool_name", ["h100-ondemand", "h100-spot"])
def test_autoscaler_tags_describe_a_node_of_the_pool(under_mocks, pools, pool_name):
    pool = pools[pool_name]
    _, group, _ = build(under_mocks, pool)
    tags = group_tags(group)
    assert tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert tags["k8s.io/cluster-autoscaler/inferfleet-prod"] == "owned"
    assert tags["kubernetes.io/cluster/inferfleet-prod"] == "owned"
    prefix = "k8s.io/cluster-autoscaler/node-template/"
    labels = {k.removeprefix(prefix + "label/"): v for k, v in tags.items() if k.startswith(prefix + "label/")}
    assert labels == pool_labels(pool, H100)
    taints = {k.removeprefix(prefix + "taint/"): v for k, v in tags.items() if k.startswith(prefix + "taint/")}
    assert taints == {t.key: f"{t.value}:{t.effect}" for t in pool_taints(pool)}
    assert tags[prefix + "resources/nvidia.com/gpu"] == "8"
    assert tags["aws-node-termination-handler/managed"] == "true"
    assert TAGS.items() <= tags.items()
    assert tags["Name"] == f"prod-{pool_name}"


def test_recommended_ami_is_looked_up_once_and_then_kept(under_mocks, pools, monkeypatch):
    calls = []
    original = CloudMocks.call

    def recording(self, call_args):
        calls.append((call_args.token, dict(call_args.args)))
        return original(self, call_args)

    monkeypatch.setattr(CloudMocks, "call", recording)
    _, _, template = build(under_mocks, pools["h100-spot"])
    ssm = [args for token, args in calls if token == "aws:ssm/getParameter:getParameter"]
    assert ssm == [{"name": "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/nvidia/recommended/image_id"}]
    assert template.inputs["imageId"].startswith("ami-")
    assert template.options["ignoreChanges"] == ["imageId"]


def test_pinned_ami_is_used_verbatim_without_lookup(under_mocks, pools, monkeypatch):
    calls = []
    original = CloudMocks.call
    monkeypatch.setattr(CloudMocks, "call", lambda self, a: calls.append(a.token) or original(self, a))
    _, _, template = build(under_mocks, pools["h100-spot"], ami_id=PINNED)
    assert template.inputs["imageId"] == PINNED
    assert template.options["ignoreChanges"] == []
    assert "aws:ssm/getParameter:getParameter" not in calls


def test_ami_parameter_names():
    assert ami_parameter_name("al2023-nvidia", "1.33") == (
        "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/recommended/image_id"
    )
    assert ami_parameter_name("bottlerocket-nvidia", "1.33") == (
        "/aws/service/bottlerocket/aws-k8s-1.33-nvidia/x86_64/latest/image_id"
    )


def test_bottlerocket_pool_sizes_its_data_volume_and_sends_toml(under_mocks, pools):
    _, _, template = build(under_mocks, pools["h100-spot"], ami_family="bottlerocket-nvidia")
    assert template.inputs["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"
    assert read_launch_template_user_data(template.inputs["userData"]).startswith("[settings.kubernetes]")


def hibernated(pool, reuse_on_scale_in: bool):
    warm = pool.warm_pool.model_copy(update={"state": "Hibernated", "reuse_on_scale_in": reuse_on_scale_in})
    return pool.model_copy(update={"warm_pool": warm})


def test_hibernated_warm_pool_enables_hibernation(under_mocks, pools):
    _, group, template = build(under_mocks, hibernated(pools["h100-ondemand"], reuse_on_scale_in=False))
    assert group.inputs["warmPool"]["poolState"] == "Hibernated"
    assert group.inputs["warmPool"]["instanceReusePolicy"] == {"reuseOnScaleIn": False}
    assert template.inputs["hibernationOptions"] == {"configured": True}
    # Its nodes resume rather than boot when they go in service: the resume unit runs the join then.
    assert "cat > /etc/systemd/system/inferfleet-node-join-resume.service" in shell_of(template)


def test_hibernated_warm_pool_refuses_to_take_back_joined_nodes(pools):
    with pytest.raises(ValueError, match=r"GpuPoolArgs\.pool\.warmPool\.reuseOnScaleIn: .*instance stores"):
        args(hibernated(pools["h100-ondemand"], reuse_on_scale_in=True))


def shell_of(template) -> str:
    document = email.message_from_string(read_launch_template_user_data(template.inputs["userData"]))
    return document.get_payload()[0].get_payload(decode=True).decode()


def node_config_of(template) -> dict:
    found = re.search(r"^cat > /etc/inferfleet/nodeconfig.yaml <<'(\w+)'\n(.*?)^\1$", shell_of(template), re.M | re.S)
    return yaml.safe_load(found.group(2))


@pytest.mark.parametrize(("pool_name", "disabled"), [("h100-ondemand", ["Containerd"]), ("h100-spot", None)])
def test_nodes_put_their_instance_stores_in_one_raid0_array(under_mocks, pools, pool_name, disabled):
    _, _, template = build(under_mocks, pools[pool_name])
    storage = node_config_of(template)["spec"]["instance"]["localStorage"]
    assert storage["strategy"] == "RAID0"
    # A warm pool's images were pre-pulled onto the root volume; the array takes the rest.
    assert storage.get("disabledMounts") == disabled
    # NVMe instance stores are attached by EC2 at launch: no block device mapping for them.
    assert [d["deviceName"] for d in template.inputs["blockDeviceMappings"]] == ["/dev/xvda"]


def test_outputs(under_mocks, pools):
    built = {}
    under_mocks(lambda: built.setdefault("pool", GpuPool("prod-h100-spot", args(pools["h100-spot"]))))
    pool = built["pool"]
    assert pool.labels == pool_labels(pools["h100-spot"], H100)
    assert pool.taints == ["nvidia.com/gpu=true:NoSchedule", "inferfleet.io/spot=true:NoSchedule"]


def test_warm_pool_on_spot_refused(pools):
    spot = pools["h100-spot"].model_copy(update={"warm_pool": pools["h100-ondemand"].warm_pool})
    with pytest.raises(ValueError, match=r"GpuPoolArgs\.pool\.warmPool: .*spot"):
        args(spot)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ami_family": "ubuntu"}, "GpuPoolArgs.ami_family"),
        ({"ami_family": "bottlerocket-nvidia"}, "GpuPoolArgs.pool.warmPool"),
        ({"gpus_per_node": 0}, "GpuPoolArgs.gpus_per_node"),
        ({"kubernetes_version": "1.3"}, "GpuPoolArgs.kubernetes_version"),
        ({"ami_id": "ami-XYZ"}, "GpuPoolArgs.ami_id"),
        ({"cluster_service_cidr": "172.20.0.0/33"}, "GpuPoolArgs.cluster_service_cidr"),
    ],
)
def test_invalid_args_name_the_field(pools, overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        args(pools["h100-ondemand"], **overrides)


@pytest.mark.parametrize(
    ("pool_name", "value"),
    [("h100-ondemand", "nvidia-h100-sxm5-80gb"), ("h100-spot", "nvidia-h100-sxm5-80gb"), ("l40s-ondemand", "nvidia-l40s")],
)
def test_nodes_and_node_templates_carry_the_autoscaler_accelerator_label(under_mocks, pools, pool_name, value):
    """Cluster Autoscaler (AWS README, "Special note on GPU instances") knows a node for a GPU node by
    k8s.amazonaws.com/accelerator before the device plugin advertises its GPUs; without the label it
    scales out again for the same pods. The kubelet sets it at registration and the group's node-template
    tags carry it for a group at zero, both from the catalog's GPU of the pool's instance type."""
    _, group, template = build(under_mocks, pools[pool_name])
    assert f"{ACCELERATOR}={value}" in node_config_of(template)["spec"]["kubelet"]["flags"][0].split("=", 1)[1].split(",")
    assert group_tags(group)[f"k8s.io/cluster-autoscaler/node-template/label/{ACCELERATOR}"] == value


def test_bottlerocket_nodes_carry_the_accelerator_label(under_mocks, pools):
    _, _, template = build(under_mocks, pools["h100-spot"], ami_family="bottlerocket-nvidia")
    settings = read_launch_template_user_data(template.inputs["userData"])
    assert f'"{ACCELERATOR}" = "nvidia-h100-sxm5-80gb"' in settings


def test_the_accelerator_follows_an_explicit_gpu_and_an_unknown_type_is_refused(pools):
    assert args(pools["h100-spot"]).gpu == H100
    assert args(pools["h100-spot"], gpu="A100-SXM4-80GB").gpu == "A100-SXM4-80GB"
    unknown = pools["h100-spot"].model_copy(update={"instance_types": ["p9.huge"]})
    with pytest.raises(ValueError, match=r"GpuPoolArgs\.gpu: .*p9\.huge"):
        args(unknown)
    with pytest.raises(ValueError, match=r"GpuPoolArgs\.gpu: .*label value"):
        args(pools["h100-spot"], gpu="H100 80GB")


def test_every_catalog_gpu_names_a_valid_accelerator_label_and_the_autoscalers_known_types_match():
    """`nvidia-` and the catalog's GPU name in lower case; for A10G, L4 and L40S exactly the values
    cluster-autoscaler's AWS provider lists as known GPU types (availableGPUTypes)."""
    from components.catalog import load_catalog
    from components.manifests.scheduling import accelerator_value

    values = {gpu: accelerator_value(gpu) for gpu in load_catalog().gpus}
    assert {values["A10G"], values["L4"], values["L40S"]} == {"nvidia-a10g", "nvidia-l4", "nvidia-l40s"}
    assert values["H100-SXM5-80GB"] == "nvidia-h100-sxm5-80gb"
    assert all(len(v) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", v) for v in values.values())
    assert len(set(values.values())) == len(values)
