"""User data of the GPU nodes: pure text, so tests can parse it and run the join script it installs.

AL2023 nodes join with nodeadm, but not from a NodeConfig part of the user data: nodeadm would then
join at the first boot, also on an instance that is being prepared for a warm pool. Instead the
user data installs the NodeConfig as a file and a systemd unit that runs `gpu_node_join.sh` on every
boot; the script joins only once the instance's target lifecycle state is `InService`.

A warm-pool group holds each launching instance with a lifecycle hook until the script reports it
ready (images pre-pulled while warmed, joined when in service): the user data names the hook and the
group in files the script reads. An instance resumed from hibernation does not boot, so a second unit,
hooked into systemd's sleep logic, runs the join unit again after every resume.

Every GPU instance type in the catalog has NVMe instance storage: the NodeConfig asks nodeadm for one
RAID0 array of it, mounted at INSTANCE_STORE_MOUNT, which holds the serving pods' weight cache
(components.manifests.serving.WEIGHT_CACHE_HOST_PATH) and the kubelet's directories.

Bottlerocket joins from its settings at boot, which cannot be deferred: no warm pool there. Its
bootstrap commands build the same array and bind the same mount point.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import posixpath
from dataclasses import dataclass
from importlib.resources import files

import yaml

from components.manifests.serving import WEIGHT_CACHE_HOST_PATH

AMI_FAMILIES = ("al2023-nvidia", "bottlerocket-nvidia")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

ETC_DIR = "/etc/inferfleet"
NODECONFIG_PATH = f"{ETC_DIR}/nodeconfig.yaml"
PREPULL_PARAMETER_PATH = f"{ETC_DIR}/prepull-parameter"
"""Names the SSM parameter that lists the images to pre-pull (gpu_pool.py writes it). The list is read at boot,
not written here: a new image then changes a parameter, not the launch template, so an image rollout
starts no instance refresh."""
CLUSTER_NAME_PATH = f"{ETC_DIR}/cluster-name"
"""Read by the join script to take a token for its own Node (it uncordons itself on the way back into service)."""
WARM_POOL_FLAG_PATH = f"{ETC_DIR}/warm-pool"
LAUNCH_HOOK_NAME_PATH = f"{ETC_DIR}/lifecycle-hook-name"
GROUP_NAME_PATH = f"{ETC_DIR}/autoscaling-group-name"
INSTANCE_STORE_MOUNT_FILE_PATH = f"{ETC_DIR}/instance-store-mount"
STATE_DIR = "/var/lib/inferfleet"
JOIN_SCRIPT_PATH = "/usr/local/bin/inferfleet-node-join"
SYSTEMD_UNIT_DIR = "/etc/systemd/system"
JOIN_UNIT = "inferfleet-node-join.service"
JOIN_UNIT_PATH = f"{SYSTEMD_UNIT_DIR}/{JOIN_UNIT}"
RESUME_UNIT = "inferfleet-node-join-resume.service"
RESUME_UNIT_PATH = f"{SYSTEMD_UNIT_DIR}/{RESUME_UNIT}"
SYSTEMCTL = "/usr/bin/systemctl"
MIME_BOUNDARY = "==INFERFLEET-BOUNDARY=="
NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1"
CLUSTER_DNS_HOST = 10
"""EKS puts CoreDNS's Service at the tenth address of the service CIDR (172.20.0.10 in 172.20.0.0/16)."""

INSTANCE_STORE_DIR = "/mnt/k8s-disks"
"""Where nodeadm mounts the instance store: the default of NodeConfig's instance.localStorage.mountPath
(left unset, so that nodeadm releases without that field read the NodeConfig the same way)."""
INSTANCE_STORE_MOUNT = f"{INSTANCE_STORE_DIR}/0"
"""The RAID0 array's mount point (nodeadm mounts the array at <mountPath>/0 and bind-mounts
/var/lib/kubelet, /var/log/pods and, unless disabled, /var/lib/containerd from directories in it).
Bottlerocket binds the same path, so the serving pods' weight cache lies below it on both AMIs."""
LOCAL_STORAGE_STRATEGY = "RAID0"
"""One striped volume over all NVMe instance stores: the whole capacity and bandwidth for one cache. No
redundancy is needed, the cache is refetched from S3 after a loss (a stop wipes instance stores anyway)."""
WARM_POOL_DISABLED_MOUNTS = ("Containerd",)
"""A warm instance pre-pulls its images onto the root volume before nodeadm runs (nodeadm only runs
once the instance is in service). Binding /var/lib/containerd to the array then would copy every
pre-pulled image at gp3's 125 MiB/s (minutes for 10-20 GB serving images) on the way into service,
the delay the warm pool exists to avoid; and a stop wipes the array, the root volume keeps them.
Needs nodeadm with `disabledMounts` (mid-2025); an older one ignores the field and copies."""
BOTTLEROCKET_STORAGE_COMMAND = "inferfleet-instance-store"
BOTTLEROCKET_BIND_DIRS = ("/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods", INSTANCE_STORE_MOUNT)
"""What Bottlerocket's `apiclient ephemeral-storage bind` puts on the array: the directories its docs
bind for Kubernetes, and INSTANCE_STORE_MOUNT: the ephemeral-storage API accepts paths under /mnt/
since bottlerocket-core-kit v5.4.0 (January 2025), older than the aws-k8s-1.33 and 1.34 variants."""


def mount_unit_name(path: str) -> str:
    """systemd's name for the mount unit of an absolute path (`systemd-escape --path --suffix=mount`):
    slashes become dashes; dashes, a leading dot and other characters outside [A-Za-z0-9:_.] become \\xNN."""

    def escape(index: int, c: str) -> str:
        if c == "/":
            return "-"
        if c.isascii() and (c.isalnum() or c in ":_" or (c == "." and index > 0)):
            return c
        return f"\\x{ord(c):02x}"

    return "".join(escape(index, c) for index, c in enumerate(path.strip("/"))) + ".mount"


JOIN_UNIT_TEXT = f"""\
[Unit]
Description=Join the EKS cluster when in service; pre-pull serving images while in a warm pool
Wants=network-online.target
After=network-online.target cloud-final.service {mount_unit_name(INSTANCE_STORE_MOUNT)}

[Service]
Type=oneshot
ExecStart={JOIN_SCRIPT_PATH}
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
"""
"""Runs at every boot (warm instances boot again when they go in service), after every resume from
hibernation (RESUME_UNIT_TEXT) and again on failure, which is how the script's bounded wait for a known
lifecycle state becomes an unbounded one. Ordered after the instance store's mount unit (written by
nodeadm at the first join; a missing unit orders nothing) so that the script sees whether a stop wiped
the array rather than a mount still in progress."""

RESUME_UNIT_TEXT = f"""\
[Unit]
Description=Run {JOIN_UNIT} again after resuming from hibernation
DefaultDependencies=no
StopWhenUnneeded=yes
Before=sleep.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStop={SYSTEMCTL} start --no-block {JOIN_UNIT}

[Install]
WantedBy=sleep.target
"""
"""A hibernated warm instance put in service resumes instead of booting, so no boot-time unit runs and
the node would never join. systemd.special(7) documents how to run code after the system wakes up:
a oneshot unit pulled in by sleep.target and ordered before it, with RemainAfterExit= and
StopWhenUnneeded=; systemd stops it once sleep.target is left after the resume, running ExecStop=.
No ExecStart= (allowed for a oneshot with RemainAfterExit= and an ExecStop=). `--no-block` queues the
join unit without waiting on it inside the resume transaction."""


@dataclass(frozen=True)
class LaunchHook:
    """The launch lifecycle hook that holds the node in Pending:Wait until the join script completes it
    (`aws autoscaling complete-lifecycle-action` needs the group's name as well as the hook's)."""

    group_name: str
    hook_name: str

    def __post_init__(self) -> None:
        for field_name, value in (("group_name", self.group_name), ("hook_name", self.hook_name)):
            if not value or any(c.isspace() for c in value):
                raise ValueError(f"LaunchHook.{field_name}: {value!r} is not a name (empty or with white space)")


def join_script() -> str:
    """The text of gpu_node_join.sh, shipped next to this module as package data."""
    return files("components.aws").joinpath("gpu_node_join.sh").read_text(encoding="utf-8")


def parse_taint(taint: str) -> tuple[str, str, str]:
    """`key=value:Effect` (or `key:Effect`) as (key, value, effect)."""
    head, sep, effect = taint.rpartition(":")
    if not sep or effect not in TAINT_EFFECTS:
        raise ValueError(f"taints: {taint!r} is not key=value:Effect with Effect one of {', '.join(TAINT_EFFECTS)}")
    key, _, value = head.partition("=")
    if not key:
        raise ValueError(f"taints: {taint!r} has no key")
    return key, value, effect


def cluster_dns_ip(service_cidr: str) -> str:
    return str(ipaddress.ip_network(service_cidr).network_address + CLUSTER_DNS_HOST)


def kubelet_flags(labels: dict[str, str], taints: list[str]) -> list[str]:
    flags = []
    if labels:
        flags.append("--node-labels=" + ",".join(f"{key}={value}" for key, value in labels.items()))
    if taints:
        for taint in taints:
            parse_taint(taint)
        flags.append("--register-with-taints=" + ",".join(taints))
    return flags


def require_weight_cache_on_instance_store() -> None:
    """The serving pods' weight cache must lie on the array, or it would fill the root volume."""
    if not WEIGHT_CACHE_HOST_PATH.startswith(f"{INSTANCE_STORE_MOUNT}/"):
        raise ValueError(
            f"WEIGHT_CACHE_HOST_PATH: {WEIGHT_CACHE_HOST_PATH} is not below the instance store mount "
            f"{INSTANCE_STORE_MOUNT} that the GPU nodes' user data sets up"
        )


def local_storage(warm_pool: bool) -> dict:
    """nodeadm's instance.localStorage: the instance stores as one RAID0 array (nodeadm skips it on an
    instance without instance stores). A warm pool keeps its pre-pulled images where it pulled them."""
    storage: dict = {"strategy": LOCAL_STORAGE_STRATEGY}
    if warm_pool:
        storage["disabledMounts"] = list(WARM_POOL_DISABLED_MOUNTS)
    return storage


def node_config(
    cluster_name: str,
    endpoint: str,
    ca_data: str,
    service_cidr: str,
    labels: dict[str, str],
    taints: list[str],
    warm_pool: bool = False,
) -> dict:
    """nodeadm's NodeConfig: the cluster to join, the kubelet's labels and taints, and the instance store."""
    return {
        "apiVersion": NODECONFIG_API_VERSION,
        "kind": "NodeConfig",
        "spec": {
            "cluster": {
                "name": cluster_name,
                "apiServerEndpoint": endpoint,
                "certificateAuthority": ca_data,
                "cidr": service_cidr,
            },
            "instance": {"localStorage": local_storage(warm_pool)},
            "kubelet": {"flags": kubelet_flags(labels, taints)},
        },
    }


def al2023_files(
    cluster_name: str,
    endpoint: str,
    ca_data: str,
    service_cidr: str,
    labels: dict[str, str],
    taints: list[str],
    prepull_parameter: str | None,
    warm_pool: bool,
    launch_hook: LaunchHook | None = None,
) -> dict[str, str]:
    """Path -> content of every file the AL2023 user data writes."""
    written = {
        JOIN_SCRIPT_PATH: join_script(),
        NODECONFIG_PATH: yaml.safe_dump(
            node_config(cluster_name, endpoint, ca_data, service_cidr, labels, taints, warm_pool), sort_keys=False
        ),
        CLUSTER_NAME_PATH: f"{cluster_name}\n",
        INSTANCE_STORE_MOUNT_FILE_PATH: f"{INSTANCE_STORE_MOUNT}\n",
        JOIN_UNIT_PATH: JOIN_UNIT_TEXT,
        RESUME_UNIT_PATH: RESUME_UNIT_TEXT,
    }
    if prepull_parameter is not None:
        written[PREPULL_PARAMETER_PATH] = f"{prepull_parameter}\n"
    if warm_pool:
        written[WARM_POOL_FLAG_PATH] = "true\n"
    if launch_hook is not None:
        written[LAUNCH_HOOK_NAME_PATH] = f"{launch_hook.hook_name}\n"
        written[GROUP_NAME_PATH] = f"{launch_hook.group_name}\n"
    return written


def _heredoc_delimiter(path: str) -> str:
    return "INFERFLEET_EOF_" + "".join(c if c.isalnum() else "_" for c in path.upper()).strip("_")


def _write_file(path: str, content: str, mode: str) -> str:
    delimiter = _heredoc_delimiter(path)
    if delimiter in content.splitlines():
        raise ValueError(f"user data: the content of {path} contains its heredoc delimiter {delimiter}")
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"cat > {path} <<'{delimiter}'\n{body}{delimiter}\nchmod {mode} {path}\n"


def al2023_shell_script(files_to_write: dict[str, str]) -> str:
    """The cloud-init shell part: write the files, enable the join unit for every boot and start it now,
    without blocking cloud-final (the unit is ordered after it), and enable the resume unit (it only
    ever starts with a sleep)."""
    parts = [
        "#!/bin/bash\n",
        "set -euo pipefail\n",
        f"mkdir -p {ETC_DIR} {STATE_DIR} {posixpath.dirname(JOIN_SCRIPT_PATH)}\n",
    ]
    for path, content in files_to_write.items():
        parts.append(_write_file(path, content, "0755" if path == JOIN_SCRIPT_PATH else "0644"))
    parts += [
        "systemctl daemon-reload\n",
        f"systemctl enable {JOIN_UNIT} {RESUME_UNIT}\n",
        f"systemctl start --no-block {JOIN_UNIT}\n",
    ]
    return "".join(parts)


def mime_multipart(parts: list[tuple[str, str]]) -> str:
    """A MIME multi-part document as cloud-init reads it; a fixed boundary keeps the user data (and
    so the launch template) unchanged from one deploy to the next."""
    lines = ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"', ""]
    for content_type, body in parts:
        if MIME_BOUNDARY in body:
            raise ValueError("user data: a part contains the MIME boundary")
        lines += [f"--{MIME_BOUNDARY}", f'Content-Type: {content_type}; charset="us-ascii"', "", body.rstrip("\n"), ""]
    lines.append(f"--{MIME_BOUNDARY}--")
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escaping of a string is valid TOML."""
    return json.dumps(value)


def _toml_array(values: list[str]) -> str:
    return f"[{', '.join(_toml_string(value) for value in values)}]"


def bottlerocket_instance_store() -> list[str]:
    """A bootstrap command that builds one array of the instance stores (RAID0 when there are several,
    as nodeadm does) and binds the kubelet's, containerd's and the weight cache's directories to it,
    the way Bottlerocket's bootstrap-commands docs configure ephemeral disks. At every boot: both steps
    are idempotent, and a stop would have wiped the array. Essential: a node without it would fill its
    data volume with model weights; without instance stores both steps do nothing and succeed."""
    commands = [
        ["apiclient", "ephemeral-storage", "init"],
        ["apiclient", "ephemeral-storage", "bind", "--dirs", *BOTTLEROCKET_BIND_DIRS],
    ]
    return [
        f"[settings.bootstrap-commands.{BOTTLEROCKET_STORAGE_COMMAND}]",
        f"commands = [{', '.join(_toml_array(command) for command in commands)}]",
        "essential = true",
        'mode = "always"',
    ]


def bottlerocket_settings(
    cluster_name: str, endpoint: str, ca_data: str, service_cidr: str, labels: dict[str, str], taints: list[str]
) -> str:
    """Bottlerocket's user data: TOML settings it applies before starting the kubelet."""
    lines = [
        "[settings.kubernetes]",
        f"cluster-name = {_toml_string(cluster_name)}",
        f"api-server = {_toml_string(endpoint)}",
        f"cluster-certificate = {_toml_string(ca_data)}",
        f"cluster-dns-ip = {_toml_string(cluster_dns_ip(service_cidr))}",
        "",
        "[settings.kubernetes.node-labels]",
        *(f"{_toml_string(key)} = {_toml_string(value)}" for key, value in labels.items()),
        "",
        "[settings.kubernetes.node-taints]",
    ]
    by_key: dict[str, list[str]] = {}
    for taint in taints:
        key, value, effect = parse_taint(taint)
        by_key.setdefault(key, []).append(f"{value}:{effect}" if value else effect)
    lines += [f"{_toml_string(key)} = {_toml_array(values)}" for key, values in by_key.items()]
    lines += ["", *bottlerocket_instance_store()]
    return "\n".join(lines) + "\n"


def node_user_data(
    cluster_name: str,
    endpoint: str,
    ca_data: str,
    service_cidr: str,
    labels: dict[str, str],
    taints: list[str],
    ami_family: str,
    prepull_parameter: str | None,
    warm_pool: bool,
    launch_hook: LaunchHook | None = None,
) -> str:
    """The user data (plain text, not yet base64) of a GPU pool's launch template. `prepull_parameter`: the SSM
    parameter listing the images a warm instance pulls (None: none); `launch_hook`: the group's launch
    lifecycle hook, which the join script completes once the node is ready."""
    if ami_family not in AMI_FAMILIES:
        raise ValueError(f"ami_family: {ami_family!r} is not one of {', '.join(AMI_FAMILIES)}")
    ipaddress.ip_network(service_cidr)
    require_weight_cache_on_instance_store()
    if ami_family == "bottlerocket-nvidia":
        if warm_pool:
            raise ValueError(
                "warm_pool: Bottlerocket joins from its settings at boot, also while warmed; use al2023-nvidia"
            )
        if launch_hook is not None:
            raise ValueError(
                "launch_hook: nothing on Bottlerocket completes it, so every launch would wait out its timeout"
            )
        return bottlerocket_settings(cluster_name, endpoint, ca_data, service_cidr, labels, taints)
    written = al2023_files(
        cluster_name, endpoint, ca_data, service_cidr, labels, taints, prepull_parameter, warm_pool, launch_hook
    )
    return mime_multipart([("text/x-shellscript", al2023_shell_script(written))])


def launch_template_user_data(document: str, ami_family: str) -> str:
    """What the launch template stores, base64: AL2023's MIME document gzip-compressed, Bottlerocket's TOML as it is.

    EC2 holds at most 16 KB of user data before base64, and AL2023's document (the join script and the node
    config, the cluster's CA inside) is close to that uncompressed. cloud-init decompresses gzip user data
    before it reads it ("Gzip compressed content" in cloud-init's user-data formats), so compressing costs the
    node nothing; Bottlerocket's agent reads plain TOML only, and its settings are small. `mtime=0`: the same
    document compresses to the same bytes on every deploy, or every deploy would make a new template version.
    """
    raw = document.encode()
    if ami_family != "bottlerocket-nvidia":
        raw = gzip.compress(raw, mtime=0)
    return base64.b64encode(raw).decode()


def read_launch_template_user_data(encoded: str) -> str:
    """The document back from what `launch_template_user_data` stored (for tests and checks that read it)."""
    raw = base64.b64decode(encoded)
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
