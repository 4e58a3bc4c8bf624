"""Where pods may run: one function gives a pool's node labels and taints, and the same facts give the
serving pods their node selection and tolerations, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from components.manifests.names import label_value_problem
from components.spec.models import GpuPoolSpec

POOL_LABEL = "inferfleet.io/pool"
CAPACITY_LABEL = "inferfleet.io/capacity-type"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"
SPOT_TAINT_KEY = "inferfleet.io/spot"
CAPACITY_VALUES = {"onDemand": "on-demand", "spot": "spot"}
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""How cluster-autoscaler's AWS provider tells a GPU node before the device plugin has advertised its
`nvidia.com/gpu` (its AWS README, "Special note on GPU instances": set it with kubelet's --node-labels;
`GPULabel` in cloudprovider/aws/aws_cloud_provider.go). Without it a starting GPU node looks like a node
without GPUs, and the autoscaler adds more nodes for the same pending pods."""
ACCELERATOR_PREFIX = "nvidia-"
"""The README's example value (`nvidia-tesla-k80` on P2) and the provider's known types (`nvidia-a10g`,
`nvidia-l4`, `nvidia-l40s`, ...) are `nvidia-` and the GPU's name in lower case."""
SYSTEM_POOL = "system"
"""The pool label's value on the system managed node group (components/aws/cluster.py), where the add-ons,
the Ray heads and the deploy gate run. Pods select it positively: GPU nodes carry the pool label too, so
"no pool label" matches no node at all."""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def kubelet_flag(self) -> str:
        """`key=value:Effect`, as kubelet's --register-with-taints and the autoscaler's node-template tags want."""
        return f"{self.key}={self.value}:{self.effect}"

    def toleration(self) -> dict[str, str]:
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.effect}


def accelerator_value(gpu: str) -> str:
    """The ACCELERATOR_LABEL value of a node with the catalog's GPU `gpu`: `nvidia-` and the catalog's
    name in lower case (A10G -> nvidia-a10g, L4 -> nvidia-l4, L40S -> nvidia-l40s, the values
    cluster-autoscaler's AWS provider lists as known GPU types; H100-SXM5-80GB -> nvidia-h100-sxm5-80gb).
    Derived from the catalog's key, so it is stable as long as the catalog names the GPU the same."""
    value = f"{ACCELERATOR_PREFIX}{gpu.lower()}"  # never empty: the prefix is not
    if label_value_problem(value):
        raise ValueError(f"accelerator_value: {value!r} (from GPU {gpu!r}) is not a Kubernetes label value")
    return value


def pool_labels(pool: GpuPoolSpec, gpu: str | None = None) -> dict[str, str]:
    """The Kubernetes labels of a GPU pool's nodes (kubelet `--node-labels`, and the autoscaler's
    node-template tags), which are also what pods select the pool by.

    `gpu`: the catalog's GPU model of the pool's instance types (one shape per pool, so one model); it
    adds ACCELERATOR_LABEL, which the nodes and their node-template tags must carry. A pod selector may
    leave it out (None): the pool label alone already picks the pool."""
    labels = {
        POOL_LABEL: pool.name,
        CAPACITY_LABEL: CAPACITY_VALUES[pool.capacity_type],
        GPU_LABEL: "true",
    }
    if gpu is not None:
        labels[ACCELERATOR_LABEL] = accelerator_value(gpu)
    return labels


def system_node_labels() -> dict[str, str]:
    """The Kubernetes labels of the system node group's nodes: what EKS gives them (the managed node
    group's `labels`) and what pods meant for them select."""
    return {POOL_LABEL: SYSTEM_POOL}


def system_node_selector() -> dict[str, str]:
    """A pod's `nodeSelector` for the system nodes. It is their labels themselves, so a change to one is a
    change to the other. The system nodes carry no taint, so such pods need no toleration; GPU nodes'
    taints keep them off those even should a GPU pool share the name."""
    return system_node_labels()


def pool_taints(pool: GpuPoolSpec) -> list[Taint]:
    """Every GPU node repels pods that do not ask for GPUs; spot nodes also repel pods that do not
    accept interruption."""
    taints = [Taint(GPU_TAINT_KEY, "true", "NoSchedule")]
    if pool.capacity_type == "spot":
        taints.append(Taint(SPOT_TAINT_KEY, "true", "NoSchedule"))
    return taints
