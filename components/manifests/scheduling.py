"""Where pods may run: one function gives a pool's node labels and taints, and the same facts give the
serving pods their node selection and tolerations, so the two cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from components.spec.models import GpuPoolSpec

POOL_LABEL = "inferfleet.io/pool"
CAPACITY_LABEL = "inferfleet.io/capacity-type"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_TAINT_KEY = "nvidia.com/gpu"
SPOT_TAINT_KEY = "inferfleet.io/spot"
CAPACITY_VALUES = {"onDemand": "on-demand", "spot": "spot"}


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


def pool_labels(pool: GpuPoolSpec) -> dict[str, str]:
    return {
        POOL_LABEL: pool.name,
        CAPACITY_LABEL: CAPACITY_VALUES[pool.capacity_type],
        GPU_LABEL: "true",
    }


def pool_taints(pool: GpuPoolSpec) -> list[Taint]:
    """Every GPU node repels pods that do not ask for GPUs; spot nodes also repel pods that do not
    accept interruption."""
    taints = [Taint(GPU_TAINT_KEY, "true", "NoSchedule")]
    if pool.capacity_type == "spot":
        taints.append(Taint(SPOT_TAINT_KEY, "true", "NoSchedule"))
    return taints
