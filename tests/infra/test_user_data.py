"""GPU node user data: the join script run for real against fake curl/ctr/nodeadm/systemctl, and the
user data documents parsed the way cloud-init, nodeadm and Bottlerocket read them."""

from __future__ import annotations

import base64
import email
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from components.aws import user_data
from components.aws.user_data import (
    LaunchHook,
    join_script,
    launch_template_user_data,
    node_user_data,
    read_launch_template_user_data,
)
from components.manifests.scheduling import pool_labels, pool_taints
from components.manifests.serving import WEIGHT_CACHE_HOST_PATH
from components.stack import load_stack

SCRIPT = Path(user_data.__file__).with_name("gpu_node_join.sh")
IMAGE = "public.ecr.aws/inferfleet/vllm:0.32.0"
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferfleet/triton:24.08"

FAKE_CURL = r"""#!/bin/bash
echo "$*" >> "$FAKE_LOG/curl"
for arg in "$@"; do
  case "$arg" in
    */latest/api/token) echo TOKEN; exit 0 ;;
    */meta-data/instance-id) printf '%s' i-0123456789abcdef0; exit 0 ;;
    */meta-data/placement/region) printf '%s' us-east-1; exit 0 ;;
    */meta-data/local-hostname) printf '%s' ip-10-30-1-5.ec2.internal; exit 0 ;;
    https://api.test/api/v1/nodes/*) [ ! -e "$FAKE_LOG/api-down" ] || exit 22; echo '{}'; exit 0 ;;
    */autoscaling/target-lifecycle-state)
      count=$(cat "$FAKE_LOG/state-count" 2>/dev/null || echo 0)
      echo $((count + 1)) > "$FAKE_LOG/state-count"
      mapfile -t states < "$FAKE_STATES"
      index=$(( count < ${#states[@]} ? count : ${#states[@]} - 1 ))
      state="${states[$index]}"
      if [ "$state" = "404" ]; then echo "curl: (22) 404" >&2; exit 22; fi
      printf '%s' "$state"; exit 0 ;;
  esac
done
exit 7
"""
FAKE_LOGGER = """#!/bin/bash
echo "$*" >> "$FAKE_LOG/{name}"
echo "{name} $*" >> "$FAKE_LOG/sequence"
"""
FAKE_MOUNTPOINT = """#!/bin/bash
echo "$*" >> "$FAKE_LOG/mountpoint"
[ ! -e "$FAKE_LOG/store-wiped" ]
"""
FAKE_AWS = """#!/bin/bash
echo "$*" >> "$FAKE_LOG/aws"
echo "aws $*" >> "$FAKE_LOG/sequence"
case "$1" in
  ecr) echo ECRPASSWORD ;;
  ssm) [ -e "$FAKE_LOG/ssm-value" ] || exit 254; cat "$FAKE_LOG/ssm-value" ;;
  eks) echo NODETOKEN ;;
  autoscaling)
    if [ -e "$FAKE_LOG/aws-fails" ]; then
      echo "An error occurred (ValidationError): No active Lifecycle Action found" >&2
      exit 254
    fi ;;
esac
"""
INSTANCE_ID = "i-0123456789abcdef0"
PREPULL_PARAMETER = "/inferfleet/prod/prepull/h100-ondemand"
GET_PREPULL = f"ssm get-parameter --region us-east-1 --name {PREPULL_PARAMETER} --query Parameter.Value --output text"
UNCORDON = ("-fsS --max-time 10 --cacert {ca} -X PATCH -H Authorization: Bearer NODETOKEN "
            "-H Content-Type: application/strategic-merge-patch+json --data {{\"spec\":{{\"unschedulable\":false}}}} "
            "https://api.test/api/v1/nodes/ip-10-30-1-5.ec2.internal")
GROUP = "inferfleet-prod-h100-ondemand"
HOOK = "inferfleet-node-ready"
COMPLETE = (
    "autoscaling complete-lifecycle-action --region us-east-1 --lifecycle-action-result CONTINUE "
    f"--instance-id {INSTANCE_ID} --lifecycle-hook-name {HOOK} --auto-scaling-group-name {GROUP}"
)


class Node:
    """A sandbox: fake tools first on PATH, the script's paths under a temporary directory."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "bin"
        self.logs = root / "logs"
        self.etc = root / "etc"
        self.state = root / "state"
        for directory in (self.bin, self.logs, self.etc):
            directory.mkdir()
        self._tool("curl", FAKE_CURL)
        self._tool("mountpoint", FAKE_MOUNTPOINT)
        for name in ("ctr", "nodeadm", "systemctl"):
            self._tool(name, FAKE_LOGGER.format(name=name))
        (self.etc / "nodeconfig.yaml").write_text("kind: NodeConfig\n")
        self.mdadm_config = root / "mdadm.conf"
        self.kubeconfig = root / "kubelet-kubeconfig"
        self.ca = root / "ca.crt"

    def _tool(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def with_aws_cli(self) -> Node:
        self._tool("aws", FAKE_AWS)
        return self

    def prepull(self, *images: str) -> Node:
        """What a warm-pool group's user data names (the SSM parameter) and what the parameter holds."""
        (self.etc / "prepull-parameter").write_text(f"{PREPULL_PARAMETER}\n")
        (self.logs / "ssm-value").write_text("".join(f"{image}\n" for image in images))
        return self.with_aws_cli()

    def joined_before(self) -> Node:
        """What nodeadm left at the first join: the kubelet's kubeconfig and the cluster's CA; and the cluster's
        name the user data writes."""
        (self.etc / "cluster-name").write_text("inferfleet-prod\n")
        self.kubeconfig.write_text("apiVersion: v1\nclusters:\n- cluster:\n    server: https://api.test\n")
        self.ca.write_text("-----BEGIN CERTIFICATE-----\n")
        return self.with_aws_cli()

    def api_down(self) -> Node:
        (self.logs / "api-down").touch()
        return self

    def warm_pool(self) -> Node:
        (self.etc / "warm-pool").write_text("true\n")
        return self

    def launch_hook(self) -> Node:
        """What the user data of a warm-pool group writes: the hook and group names (and the aws CLI)."""
        (self.etc / "lifecycle-hook-name").write_text(f"{HOOK}\n")
        (self.etc / "autoscaling-group-name").write_text(f"{GROUP}\n")
        return self.with_aws_cli()

    def aws_fails(self) -> Node:
        (self.logs / "aws-fails").touch()
        return self

    def instance_store(self) -> Node:
        """What every AL2023 user data writes: the mount point of the array nodeadm builds."""
        (self.etc / "instance-store-mount").write_text(f"{user_data.INSTANCE_STORE_MOUNT}\n")
        return self

    def stopped_and_started(self) -> Node:
        """A stop wiped the instance stores: nothing is mounted, nodeadm's mdadm config is still there."""
        (self.logs / "store-wiped").touch()
        self.mdadm_config.write_text("ARRAY /dev/md/kubernetes metadata=1.2 name=kubernetes\n")
        return self

    def boot(self, *states: str, attempts: int = 3) -> subprocess.CompletedProcess:
        """Run the script once; the IMDS answers `states` in turn (the last one repeats)."""
        states_file = self.root / "states"
        states_file.write_text("".join(f"{state}\n" for state in states))
        (self.logs / "state-count").unlink(missing_ok=True)
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "FAKE_LOG": str(self.logs),
            "FAKE_STATES": str(states_file),
            "IMDS_ENDPOINT": "http://imds.test",
            "INFERFLEET_ETC": str(self.etc),
            "INFERFLEET_STATE_DIR": str(self.state),
            "INFERFLEET_POLL_ATTEMPTS": str(attempts),
            "INFERFLEET_POLL_SECONDS": "0",
            "INFERFLEET_MDADM_CONFIG": str(self.mdadm_config),
            "INFERFLEET_KUBELET_KUBECONFIG": str(self.kubeconfig),
            "INFERFLEET_CLUSTER_CA": str(self.ca),
        }
        return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)

    def calls(self, tool: str) -> list[str]:
        log = self.logs / tool
        return log.read_text().splitlines() if log.exists() else []

    def sequence(self) -> list[str]:
        """Every call to ctr, nodeadm, systemctl and aws, in order, as `tool args`."""
        return self.calls("sequence")


@pytest.fixture
def node(tmp_path) -> Node:
    return Node(tmp_path)


def test_warmed_stopped_pulls_the_images_and_does_not_join(node):
    result = node.prepull(IMAGE, "docker.io/library/busybox:1.36").warm_pool().boot("Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert node.calls("ctr") == [
        f"-n k8s.io images pull {IMAGE}",
        "-n k8s.io images pull docker.io/library/busybox:1.36",
    ]
    assert node.calls("nodeadm") == []
    assert not (node.state / "joined").exists()


def test_in_service_joins_once_with_the_node_config_and_pulls_nothing(node):
    result = node.prepull(IMAGE).warm_pool().boot("InService")
    assert result.returncode == 0, result.stderr
    assert node.calls("nodeadm") == [f"init --config-source file://{node.etc}/nodeconfig.yaml"]
    assert node.calls("ctr") == []
    assert (node.state / "joined").exists()


def test_second_in_service_boot_does_not_run_nodeadm_again(node):
    assert node.boot("InService").returncode == 0
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert len(node.calls("nodeadm")) == 1
    assert node.calls("systemctl") == ["start kubelet.service"]


def test_warmed_hibernated_does_not_join(node):
    result = node.prepull(IMAGE).warm_pool().boot("Warmed:Hibernated")
    assert result.returncode == 0, result.stderr
    assert node.calls("nodeadm") == []
    assert node.calls("ctr") == [f"-n k8s.io images pull {IMAGE}"]


def test_warm_boot_then_in_service_boot_joins_on_the_second(node):
    node.prepull(IMAGE).warm_pool()
    assert node.boot("Warmed:Stopped").returncode == 0
    assert node.calls("nodeadm") == []
    assert node.boot("InService").returncode == 0
    assert len(node.calls("nodeadm")) == 1
    assert len(node.calls("ctr")) == 1


def test_hibernated_warm_instance_joins_when_it_resumes_in_service(node):
    """The resume unit runs the same script: warmed (then hibernated), resumed with state InService."""
    node.prepull(IMAGE).warm_pool().launch_hook().instance_store()
    assert node.boot("Warmed:Hibernated").returncode == 0
    assert node.calls("nodeadm") == []
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert node.calls("nodeadm") == [f"init --config-source file://{node.etc}/nodeconfig.yaml"]
    assert node.calls("aws") == [GET_PREPULL, COMPLETE, COMPLETE]
    assert (node.state / "joined").exists()


def test_joined_instance_whose_instance_store_a_stop_wiped_builds_the_array_again(node):
    node.warm_pool().instance_store()
    assert node.boot("InService").returncode == 0
    assert node.boot("Warmed:Stopped").returncode == 0
    node.stopped_and_started()
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert not node.mdadm_config.exists()
    assert len(node.calls("nodeadm")) == 2
    assert node.calls("mountpoint") == [f"-q {user_data.INSTANCE_STORE_MOUNT}"]
    assert "start kubelet.service" not in node.calls("systemctl")


def test_joined_instance_rebooted_with_its_instance_store_mounted_only_starts_kubelet(node):
    node.instance_store()
    node.mdadm_config.write_text("ARRAY /dev/md/kubernetes\n")
    assert node.boot("InService").returncode == 0
    assert node.boot("InService").returncode == 0
    assert len(node.calls("nodeadm")) == 1
    assert node.calls("systemctl") == ["start kubelet.service"]
    assert node.mdadm_config.exists()


def test_reused_instance_back_in_the_warm_pool_stops_its_kubelet(node):
    node.warm_pool()
    assert node.boot("InService").returncode == 0
    assert node.boot("Warmed:Running").returncode == 0
    assert "stop kubelet.service" in node.calls("systemctl")
    assert len(node.calls("nodeadm")) == 1


def test_the_pre_pull_list_is_read_from_its_ssm_parameter_at_every_warm_boot(node):
    node.prepull(IMAGE).warm_pool()
    assert node.boot("Warmed:Stopped").returncode == 0
    (node.logs / "ssm-value").write_text(f"{ECR_IMAGE}\n")  # an image rollout changed the list, not the template
    assert node.boot("Warmed:Stopped").returncode == 0
    assert node.calls("aws").count(GET_PREPULL) == 2
    assert [call.split()[-1] for call in node.calls("ctr")] == [IMAGE, ECR_IMAGE]


def test_an_unreadable_pre_pull_list_pulls_nothing_and_still_reports_ready(node):
    node.prepull(IMAGE).warm_pool().launch_hook()
    (node.logs / "ssm-value").unlink()
    result = node.boot("Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert "cannot read the pre-pull list /inferfleet/prod/prepull/h100-ondemand" in result.stderr
    assert node.calls("ctr") == [] and node.calls("aws")[-1] == COMPLETE


def test_a_node_back_in_service_after_a_stop_uncordons_itself(node):
    """aws-node-termination-handler cordoned it when Auto Scaling stopped it on scale-in (queue mode never
    uncordons): after rejoining, the node marks its own Node schedulable again."""
    node.warm_pool().instance_store().joined_before()
    assert node.boot("InService").returncode == 0
    assert not [c for c in node.calls("curl") if "PATCH" in c], "a first join has nothing to uncordon"
    assert node.boot("Warmed:Stopped").returncode == 0
    node.stopped_and_started()
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert "eks get-token --region us-east-1 --cluster-name inferfleet-prod --query status.token --output text" in node.calls("aws")
    (patch,) = [c for c in node.calls("curl") if "PATCH" in c]
    assert patch == UNCORDON.format(ca=node.ca)
    assert "uncordoned ip-10-30-1-5.ec2.internal" in result.stderr
    sequence = node.sequence()
    assert sequence.index(f"nodeadm init --config-source file://{node.etc}/nodeconfig.yaml") < len(sequence) - 1


def test_a_reboot_in_service_uncordons_after_starting_the_kubelet(node):
    node.instance_store().joined_before()
    node.mdadm_config.write_text("ARRAY /dev/md/kubernetes\n")
    assert node.boot("InService").returncode == 0
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert node.calls("systemctl") == ["start kubelet.service"]
    assert len([c for c in node.calls("curl") if "PATCH" in c]) == 1


def test_an_api_that_does_not_answer_leaves_the_node_cordoned_without_failing_the_boot(node):
    node.instance_store().joined_before().api_down()
    node.mdadm_config.write_text("ARRAY /dev/md/kubernetes\n")
    assert node.boot("InService").returncode == 0
    result = node.boot("InService", attempts=2)
    assert result.returncode == 0, result.stderr
    assert len([c for c in node.calls("curl") if "PATCH" in c]) == 2
    assert "kubectl uncordon ip-10-30-1-5.ec2.internal makes it schedulable" in result.stderr


def test_pending_state_is_polled_until_in_service(node):
    result = node.warm_pool().boot("Pending", "Pending", "InService", attempts=5)
    assert result.returncode == 0, result.stderr
    assert len(node.calls("nodeadm")) == 1
    assert (node.logs / "state-count").read_text().strip() == "3"


def test_unknown_state_gives_up_after_the_bound_without_joining(node):
    result = node.warm_pool().boot("Pending", attempts=3)
    assert result.returncode != 0
    assert node.calls("nodeadm") == []
    assert (node.logs / "state-count").read_text().strip() == "3"


def test_no_lifecycle_state_joins_a_pool_without_warm_pool(node):
    result = node.boot("404")
    assert result.returncode == 0, result.stderr
    assert len(node.calls("nodeadm")) == 1


def test_no_lifecycle_state_waits_in_a_warm_pool_group(node):
    result = node.warm_pool().boot("404", attempts=2)
    assert result.returncode != 0
    assert node.calls("nodeadm") == []


def test_requests_use_an_imdsv2_token(node):
    node.boot("InService")
    token_call, state_call = node.calls("curl")
    assert "-X PUT http://imds.test/latest/api/token" in token_call
    assert "X-aws-ec2-metadata-token: TOKEN" in state_call
    assert state_call.endswith("http://imds.test/latest/meta-data/autoscaling/target-lifecycle-state")


def test_ecr_images_are_pulled_with_a_registry_token(node):
    result = node.with_aws_cli().prepull(ECR_IMAGE, IMAGE).warm_pool().boot("Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert node.calls("aws") == [GET_PREPULL, "ecr get-login-password --region us-east-1"]
    assert node.calls("ctr") == [
        f"-n k8s.io images pull --user AWS:ECRPASSWORD {ECR_IMAGE}",
        f"-n k8s.io images pull {IMAGE}",
    ]


def test_warmed_instance_completes_the_launch_hook_after_the_pre_pull(node):
    result = node.prepull(IMAGE).warm_pool().launch_hook().boot("Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert node.calls("aws") == [GET_PREPULL, COMPLETE]
    sequence = node.sequence()
    assert sequence.index(f"ctr -n k8s.io images pull {IMAGE}") < sequence.index(f"aws {COMPLETE}")
    assert node.calls("nodeadm") == []


def test_in_service_instance_completes_the_launch_hook_after_joining(node):
    result = node.prepull(IMAGE).warm_pool().launch_hook().boot("InService")
    assert result.returncode == 0, result.stderr
    sequence = node.sequence()
    assert sequence.index(f"nodeadm init --config-source file://{node.etc}/nodeconfig.yaml") < sequence.index(
        f"aws {COMPLETE}"
    )
    assert node.calls("aws") == [COMPLETE]


def test_hook_ids_come_from_imdsv2(node):
    node.warm_pool().launch_hook().boot("InService")
    curl = node.calls("curl")
    for item in ("meta-data/instance-id", "meta-data/placement/region"):
        (call,) = [c for c in curl if c.endswith(f"http://imds.test/latest/{item}")]
        assert "X-aws-ec2-metadata-token: TOKEN" in call


def test_reused_instance_completes_the_hook_on_each_launch(node):
    node.warm_pool().launch_hook()
    for state in ("InService", "Warmed:Running", "InService"):
        assert node.boot(state).returncode == 0
    assert node.calls("aws") == [COMPLETE] * 3
    assert len(node.calls("nodeadm")) == 1


def test_group_without_a_warm_pool_completes_no_lifecycle_action(node):
    result = node.with_aws_cli().boot("InService")
    assert result.returncode == 0, result.stderr
    assert len(node.calls("nodeadm")) == 1
    assert not any("complete-lifecycle-action" in call for call in node.calls("aws"))


def test_failing_complete_is_logged_and_the_boot_still_succeeds(node):
    result = node.prepull(IMAGE).warm_pool().launch_hook().aws_fails().boot("Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert node.calls("aws") == [GET_PREPULL, COMPLETE]
    assert "could not complete lifecycle hook" in result.stderr
    assert node.calls("ctr") == [f"-n k8s.io images pull {IMAGE}"]


def test_failing_complete_after_joining_still_records_the_join(node):
    result = node.warm_pool().launch_hook().aws_fails().boot("InService")
    assert result.returncode == 0, result.stderr
    assert (node.state / "joined").exists()


def test_failed_join_does_not_complete_the_hook(node):
    node.warm_pool().launch_hook()._tool("nodeadm", "#!/bin/bash\nexit 1\n")
    result = node.boot("InService")
    assert result.returncode != 0
    assert node.calls("aws") == []


@pytest.mark.skipif(shutil.which("aws", path="/usr/bin:/bin") is not None, reason="a real aws CLI is on the PATH")
def test_no_aws_cli_skips_the_hook_without_failing(node):
    node.warm_pool().launch_hook()
    (node.bin / "aws").unlink()
    result = node.boot("InService")
    assert result.returncode == 0, result.stderr
    assert "no aws CLI" in result.stderr


# ---- the user data documents ----

ENDPOINT = "https://ABC.gr7.us-east-1.eks.amazonaws.com"
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
GPU = "H100-SXM5-80GB"
"""The catalog's GPU of the prod H100 pools' p5.48xlarge."""


@pytest.fixture(scope="module")
def spot_pool():
    spec = load_stack("stacks/prod.yaml").spec
    return next(p for p in spec.gpu_pools if p.name == "h100-spot")


def build(pool, ami_family="al2023-nvidia", warm_pool=False, prepull=PREPULL_PARAMETER, launch_hook=None):
    return node_user_data(
        cluster_name="inferfleet-prod",
        endpoint=ENDPOINT,
        ca_data=CA,
        service_cidr="172.20.0.0/16",
        labels=pool_labels(pool, GPU),
        taints=[t.kubelet_flag() for t in pool_taints(pool)],
        ami_family=ami_family,
        prepull_parameter=None if ami_family == "bottlerocket-nvidia" else prepull,
        warm_pool=warm_pool,
        launch_hook=launch_hook,
    )


def written_files(shell: str) -> dict[str, str]:
    """What the shell part's quoted heredocs write, by path."""
    found = re.findall(r"^cat > (\S+) <<'(\w+)'\n(.*?)^\2$", shell, flags=re.M | re.S)
    return {path: body for path, _, body in found}


def shell_part(document: str) -> str:
    message = email.message_from_string(document)
    assert message.is_multipart()
    (part,) = message.get_payload()
    assert part.get_content_type() == "text/x-shellscript"
    return part.get_payload(decode=True).decode()


def test_al2023_user_data_is_a_mime_document_with_no_nodeconfig_part(spot_pool):
    message = email.message_from_string(build(spot_pool))
    types = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
    assert types == ["text/x-shellscript"]
    assert "application/node.eks.aws" not in types


def test_node_config_carries_the_pool_labels_and_taints(spot_pool):
    files = written_files(shell_part(build(spot_pool)))
    config = yaml.safe_load(files["/etc/inferfleet/nodeconfig.yaml"])
    assert (config["apiVersion"], config["kind"]) == ("node.eks.aws/v1alpha1", "NodeConfig")
    assert config["spec"]["cluster"] == {
        "name": "inferfleet-prod",
        "apiServerEndpoint": ENDPOINT,
        "certificateAuthority": CA,
        "cidr": "172.20.0.0/16",
    }
    flags = dict(flag.split("=", 1) for flag in config["spec"]["kubelet"]["flags"])
    labels = dict(pair.split("=", 1) for pair in flags["--node-labels"].split(","))
    assert labels == pool_labels(spot_pool, GPU)
    # Cluster Autoscaler's GPU label, set by the kubelet when it registers (before the device plugin runs).
    assert labels["k8s.amazonaws.com/accelerator"] == "nvidia-h100-sxm5-80gb"
    assert flags["--register-with-taints"].split(",") == [t.kubelet_flag() for t in pool_taints(spot_pool)]
    assert "inferfleet.io/spot=true:NoSchedule" in flags["--register-with-taints"].split(",")


def test_shell_part_installs_the_join_script_and_a_unit_run_on_every_boot(spot_pool):
    shell = shell_part(build(spot_pool))
    files = written_files(shell)
    assert files["/usr/local/bin/inferfleet-node-join"] == join_script()
    assert files["/etc/inferfleet/prepull-parameter"] == f"{PREPULL_PARAMETER}\n"
    assert files["/etc/inferfleet/cluster-name"] == "inferfleet-prod\n"
    unit = files["/etc/systemd/system/inferfleet-node-join.service"]
    assert "ExecStart=/usr/local/bin/inferfleet-node-join" in unit
    assert "WantedBy=multi-user.target" in unit
    assert "systemctl enable inferfleet-node-join.service" in shell
    assert "/etc/inferfleet/warm-pool" not in files


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as section -> key -> values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line:
            key, value = line.split("=", 1)
            current.setdefault(key, []).append(value)
    return sections


def test_node_config_sets_the_instance_stores_up_as_one_raid0_array(spot_pool):
    config = yaml.safe_load(written_files(shell_part(build(spot_pool)))["/etc/inferfleet/nodeconfig.yaml"])
    assert config["spec"]["instance"] == {"localStorage": {"strategy": "RAID0"}}


def test_warm_pool_node_config_keeps_the_pre_pulled_images_on_the_root_volume(spot_pool):
    on_demand = spot_pool.model_copy(update={"capacity_type": "onDemand"})
    files = written_files(shell_part(build(on_demand, warm_pool=True)))
    config = yaml.safe_load(files["/etc/inferfleet/nodeconfig.yaml"])
    assert config["spec"]["instance"]["localStorage"] == {"strategy": "RAID0", "disabledMounts": ["Containerd"]}


def test_weight_cache_lies_on_the_array_nodeadm_mounts():
    # nodeadm mounts its RAID0 array at <localStorage.mountPath, default /mnt/k8s-disks>/0.
    assert user_data.INSTANCE_STORE_MOUNT == "/mnt/k8s-disks/0"
    assert WEIGHT_CACHE_HOST_PATH.startswith(user_data.INSTANCE_STORE_MOUNT + "/")


def test_user_data_names_the_instance_store_mount_where_the_join_script_reads_it(spot_pool):
    files = written_files(shell_part(build(spot_pool)))
    assert files["/etc/inferfleet/instance-store-mount"] == "/mnt/k8s-disks/0\n"
    assert "$INFERFLEET_ETC/instance-store-mount" in join_script()


@pytest.mark.parametrize("path", ["/mnt/k8s-disks/0", "/var/lib/kubelet", "/mnt/a b/c_d.e", "/.ephemeral"])
def test_mount_unit_names_are_systemds(path):
    if shutil.which("systemd-escape") is None:
        pytest.skip("no systemd-escape")
    escaped = subprocess.run(
        ["systemd-escape", "--path", "--suffix=mount", path], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert user_data.mount_unit_name(path) == escaped


def test_join_unit_waits_for_the_instance_store_mount(spot_pool):
    unit = written_files(shell_part(build(spot_pool)))["/etc/systemd/system/inferfleet-node-join.service"]
    after = " ".join(unit_settings(unit)["Unit"]["After"]).split()
    assert "mnt-k8s\\x2ddisks-0.mount" in after
    assert "cloud-final.service" in after


def test_resume_unit_runs_the_join_unit_after_every_wake_up(spot_pool):
    shell = shell_part(build(spot_pool))
    resume = unit_settings(written_files(shell)["/etc/systemd/system/inferfleet-node-join-resume.service"])
    # systemd.special(7), sleep.target: hook code to run after the system woke up into ExecStop= of a
    # oneshot pulled in by sleep.target and ordered before it, with StopWhenUnneeded= and RemainAfterExit=.
    assert resume["Install"]["WantedBy"] == ["sleep.target"]
    assert resume["Unit"]["Before"] == ["sleep.target"]
    assert resume["Unit"]["StopWhenUnneeded"] == ["yes"]
    assert resume["Unit"]["DefaultDependencies"] == ["no"]
    assert resume["Service"]["Type"] == ["oneshot"]
    assert resume["Service"]["RemainAfterExit"] == ["yes"]
    assert resume["Service"]["ExecStop"] == ["/usr/bin/systemctl start --no-block inferfleet-node-join.service"]
    assert "ExecStart" not in resume["Service"]
    assert re.search(r"^systemctl enable .*\binferfleet-node-join-resume\.service\b", shell, flags=re.M)
    assert "systemctl start --no-block inferfleet-node-join-resume.service" not in shell


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_pass_systemd_analyze_verify(tmp_path, spot_pool):
    files = written_files(shell_part(build(spot_pool)))
    names = []
    for path in ("/etc/systemd/system/inferfleet-node-join.service", user_data.RESUME_UNIT_PATH):
        name = Path(path).name
        # verify checks that ExecStart's program exists; the join script is not installed here.
        (tmp_path / name).write_text(files[path].replace(user_data.JOIN_SCRIPT_PATH, "/bin/true"))
        names.append(f"./{name}")
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_shell_part_is_valid_bash_and_marks_warm_pools(spot_pool):
    on_demand = spot_pool.model_copy(update={"capacity_type": "onDemand"})
    shell = shell_part(build(on_demand, warm_pool=True))
    assert written_files(shell)["/etc/inferfleet/warm-pool"] == "true\n"
    subprocess.run(["bash", "-n"], input=shell, text=True, check=True)


def test_launch_hook_names_are_written_where_the_join_script_reads_them(spot_pool):
    on_demand = spot_pool.model_copy(update={"capacity_type": "onDemand"})
    files = written_files(shell_part(build(on_demand, warm_pool=True, launch_hook=LaunchHook(GROUP, HOOK))))
    assert files["/etc/inferfleet/lifecycle-hook-name"] == f"{HOOK}\n"
    assert files["/etc/inferfleet/autoscaling-group-name"] == f"{GROUP}\n"
    for path in (user_data.LAUNCH_HOOK_NAME_PATH, user_data.GROUP_NAME_PATH):
        assert path.replace(user_data.ETC_DIR, "$INFERFLEET_ETC") in join_script()


def test_no_launch_hook_no_hook_files(spot_pool):
    files = written_files(shell_part(build(spot_pool)))
    assert "/etc/inferfleet/lifecycle-hook-name" not in files
    assert "/etc/inferfleet/autoscaling-group-name" not in files


def test_launch_hook_names_must_be_names():
    with pytest.raises(ValueError, match="LaunchHook.group_name"):
        LaunchHook("", HOOK)
    with pytest.raises(ValueError, match="LaunchHook.hook_name"):
        LaunchHook(GROUP, "node ready")


def test_user_data_is_stored_gzip_compressed_and_reads_back_whole(spot_pool):
    """cloud-init decompresses gzip user data; EC2's 16 KB limit then applies to the compressed bytes."""
    document = build(spot_pool, warm_pool=True, launch_hook=LaunchHook(GROUP, HOOK))
    stored = launch_template_user_data(document, "al2023-nvidia")
    assert read_launch_template_user_data(stored) == document
    assert stored == launch_template_user_data(document, "al2023-nvidia"), "the same bytes every deploy"
    assert len(base64.b64decode(stored)) < len(document.encode()) / 2
    settings = build(spot_pool, ami_family="bottlerocket-nvidia")
    assert base64.b64decode(launch_template_user_data(settings, "bottlerocket-nvidia")).decode() == settings


REAL_SIZE_CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t" + "Q" * 1432
"""As long as EKS's certificateAuthority.data: base64 of an RSA-2048 CA certificate's PEM (about 1.1 KB of
PEM, 1,468 characters of base64)."""
REAL_SIZE_ENDPOINT = "https://" + "0123456789ABCDEF" * 2 + ".gr7.us-east-1.eks.amazonaws.com"
"""EKS endpoints carry a 32-character id."""


def test_the_render_margin_covers_what_a_deploy_puts_in_place_of_the_stand_ins(spot_pool):
    """The aws-limits check measures rendered user data, where the CA and the endpoint are the mocks' short
    stand-ins; its margin must cover the difference to the real values, and a warm pool's user data with
    real values must fit EC2's limit (16384 bytes raw)."""
    from components.checks.aws_limits import USER_DATA_DEPLOY_MARGIN_BYTES, USER_DATA_LIMIT_BYTES, user_data_bytes

    def document(ca: str, endpoint: str) -> str:
        return node_user_data(
            cluster_name="inferfleet-prod",
            endpoint=endpoint,
            ca_data=ca,
            service_cidr="172.20.0.0/16",
            labels=pool_labels(spot_pool, GPU),
            taints=[t.kubelet_flag() for t in pool_taints(spot_pool)],
            ami_family="al2023-nvidia",
            prepull_parameter=PREPULL_PARAMETER,
            warm_pool=True,
            launch_hook=LaunchHook(GROUP, HOOK),
        )

    rendered = user_data_bytes(launch_template_user_data(document(CA, ENDPOINT), "al2023-nvidia"))
    real = user_data_bytes(launch_template_user_data(document(REAL_SIZE_CA, REAL_SIZE_ENDPOINT), "al2023-nvidia"))
    assert 0 < real - rendered <= USER_DATA_DEPLOY_MARGIN_BYTES
    assert real <= USER_DATA_LIMIT_BYTES == 16384


def test_bottlerocket_settings_parse_as_toml(spot_pool):
    settings = tomllib.loads(build(spot_pool, ami_family="bottlerocket-nvidia"))["settings"]["kubernetes"]
    assert settings["cluster-name"] == "inferfleet-prod"
    assert settings["api-server"] == ENDPOINT
    assert settings["cluster-certificate"] == CA
    assert settings["cluster-dns-ip"] == "172.20.0.10"
    assert settings["node-labels"] == pool_labels(spot_pool, GPU)
    assert settings["node-labels"]["k8s.amazonaws.com/accelerator"] == "nvidia-h100-sxm5-80gb"
    assert settings["node-taints"] == {t.key: [f"{t.value}:{t.effect}"] for t in pool_taints(spot_pool)}


def test_bottlerocket_binds_the_same_instance_store_mount_at_every_boot(spot_pool):
    settings = tomllib.loads(build(spot_pool, ami_family="bottlerocket-nvidia"))["settings"]
    command = settings["bootstrap-commands"]["inferfleet-instance-store"]
    init, bind = command["commands"]
    assert init == ["apiclient", "ephemeral-storage", "init"]
    assert bind[:4] == ["apiclient", "ephemeral-storage", "bind", "--dirs"]
    assert set(bind[4:]) == {"/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", "/mnt/k8s-disks/0"}
    assert WEIGHT_CACHE_HOST_PATH.startswith("/mnt/k8s-disks/0/")
    assert (command["mode"], command["essential"]) == ("always", True)


def test_bottlerocket_refuses_a_warm_pool(spot_pool):
    with pytest.raises(ValueError, match="warm_pool"):
        build(spot_pool, ami_family="bottlerocket-nvidia", warm_pool=True)


def test_bottlerocket_refuses_a_launch_hook(spot_pool):
    with pytest.raises(ValueError, match="launch_hook"):
        build(spot_pool, ami_family="bottlerocket-nvidia", launch_hook=LaunchHook(GROUP, HOOK))


def test_unknown_ami_family_and_bad_taint_are_refused(spot_pool):
    with pytest.raises(ValueError, match="ami_family"):
        build(spot_pool, ami_family="ubuntu")
    with pytest.raises(ValueError, match="taints"):
        user_data.kubelet_flags({}, ["nvidia.com/gpu=true:Sometimes"])

