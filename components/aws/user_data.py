"""User data of the GPU nodes: pure text, so tests can parse it and run the join script it installs.

AL2023 nodes join with nodeadm, but not from a NodeConfig part of the user data: nodeadm would then
join at the first boot, also on an instance that is being prepared for a warm pool. Instead the
user data installs the NodeConfig as a file and a systemd unit that runs `gpu_node_join.sh` on every
boot; the script joins only once the instance's target lifecycle state is `InService`.

A warm-pool group holds each launching instance with a lifecycle hook until the script reports it
ready (images pre-pulled while warmed, joined when in service): the user data names the hook and the
group in files the script reads.

Bottlerocket joins from its settings at boot, which cannot be deferred: no warm pool there.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
from dataclasses import dataclass
from importlib.resources import files

import yaml

AMI_FAMILIES = ("al2023-nvidia", "bottlerocket-nvidia")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

ETC_DIR = "/etc/inferfleet"
NODECONFIG_PATH = f"{ETC_DIR}/nodeconfig.yaml"
PREPULL_LIST_PATH = f"{ETC_DIR}/prepull-images"
WARM_POOL_FLAG_PATH = f"{ETC_DIR}/warm-pool"
LAUNCH_HOOK_NAME_PATH = f"{ETC_DIR}/lifecycle-hook-name"
GROUP_NAME_PATH = f"{ETC_DIR}/autoscaling-group-name"
STATE_DIR = "/var/lib/inferfleet"
JOIN_SCRIPT_PATH = "/usr/local/bin/inferfleet-node-join"
JOIN_UNIT = "inferfleet-node-join.service"
JOIN_UNIT_PATH = f"/etc/systemd/system/{JOIN_UNIT}"
MIME_BOUNDARY = "==INFERFLEET-BOUNDARY=="
NODECONFIG_API_VERSION = "node.eks.aws/v1alpha1"
CLUSTER_DNS_HOST = 10
"""EKS puts CoreDNS's Service at the tenth address of the service CIDR (172.20.0.10 in 172.20.0.0/16)."""

JOIN_UNIT_TEXT = f"""\
[Unit]
Description=Join the EKS cluster when in service; pre-pull serving images while in a warm pool
Wants=network-online.target
After=network-online.target cloud-final.service

[Service]
Type=oneshot
ExecStart={JOIN_SCRIPT_PATH}
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
"""
"""Runs at every boot (warm instances boot again when they go in service) and again on failure, which
is how the script's bounded wait for a known lifecycle state becomes an unbounded one."""


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


def node_config(
    cluster_name: str, endpoint: str, ca_data: str, service_cidr: str, labels: dict[str, str], taints: list[str]
) -> dict:
    """nodeadm's NodeConfig: the cluster to join and the kubelet's labels and taints."""
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
    prepull_images: list[str],
    warm_pool: bool,
    launch_hook: LaunchHook | None = None,
) -> dict[str, str]:
    """Path -> content of every file the AL2023 user data writes."""
    written = {
        JOIN_SCRIPT_PATH: join_script(),
        NODECONFIG_PATH: yaml.safe_dump(
            node_config(cluster_name, endpoint, ca_data, service_cidr, labels, taints), sort_keys=False
        ),
        PREPULL_LIST_PATH: "".join(f"{image}\n" for image in prepull_images),
        JOIN_UNIT_PATH: JOIN_UNIT_TEXT,
    }
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
    """The cloud-init shell part: write the files, enable the unit for every boot and start it now,
    without blocking cloud-final (the unit is ordered after it)."""
    parts = [
        "#!/bin/bash\n",
        "set -euo pipefail\n",
        f"mkdir -p {ETC_DIR} {STATE_DIR} {posixpath.dirname(JOIN_SCRIPT_PATH)}\n",
    ]
    for path, content in files_to_write.items():
        parts.append(_write_file(path, content, "0755" if path == JOIN_SCRIPT_PATH else "0644"))
    parts += [
        "systemctl daemon-reload\n",
        f"systemctl enable {JOIN_UNIT}\n",
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
    lines += [f"{_toml_string(key)} = [{', '.join(_toml_string(v) for v in values)}]" for key, values in by_key.items()]
    return "\n".join(lines) + "\n"


def node_user_data(
    cluster_name: str,
    endpoint: str,
    ca_data: str,
    service_cidr: str,
    labels: dict[str, str],
    taints: list[str],
    ami_family: str,
    prepull_images: list[str],
    warm_pool: bool,
    launch_hook: LaunchHook | None = None,
) -> str:
    """The user data (plain text, not yet base64) of a GPU pool's launch template. `launch_hook`: the
    group's launch lifecycle hook, which the join script completes once the node is ready."""
    if ami_family not in AMI_FAMILIES:
        raise ValueError(f"ami_family: {ami_family!r} is not one of {', '.join(AMI_FAMILIES)}")
    ipaddress.ip_network(service_cidr)
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
        cluster_name, endpoint, ca_data, service_cidr, labels, taints, prepull_images, warm_pool, launch_hook
    )
    return mime_multipart([("text/x-shellscript", al2023_shell_script(written))])
