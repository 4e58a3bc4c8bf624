"""What pools and the cluster around them cost per hour, from the catalog's prices."""

from __future__ import annotations

from components.catalog import Catalog, InstanceType
from components.spec.models import GpuPoolSpec, StackSpec


def volume_usd_per_hour(catalog: Catalog, size_gib: float) -> float:
    prices = catalog.prices
    return size_gib * prices.ebs_gp3_usd_per_gb_month.value / prices.hours_per_month.value


def node_usd_per_hour(catalog: Catalog, instance: InstanceType, capacity_type: str, volume_gib: float) -> float:
    """A running node: the instance at its purchase option plus its gp3 root volume."""
    return instance.usd_per_hour(capacity_type) + volume_usd_per_hour(catalog, volume_gib)


def warm_pool_usd_per_hour(catalog: Catalog, pool: GpuPoolSpec) -> float:
    """Stopped and hibernated warm instances bill only EBS (hibernation also stores RAM on it)."""
    if pool.warm_pool is None:
        return 0.0
    instance = catalog.instance_types[pool.instance_types[0]]
    if pool.warm_pool.state == "Running":
        per_instance = node_usd_per_hour(catalog, instance, pool.capacity_type, pool.root_volume_gib)
    elif pool.warm_pool.state == "Hibernated":
        per_instance = volume_usd_per_hour(catalog, pool.root_volume_gib + instance.memory_gib)
    else:
        per_instance = volume_usd_per_hour(catalog, pool.root_volume_gib)
    return pool.warm_pool.size * per_instance


def pool_usd_per_hour(catalog: Catalog, pool: GpuPoolSpec, nodes: int) -> float:
    """A GPU pool with `nodes` running, priced on its first (template) instance type, warm pool included."""
    instance = catalog.instance_types[pool.instance_types[0]]
    return nodes * node_usd_per_hour(catalog, instance, pool.capacity_type, pool.root_volume_gib) + warm_pool_usd_per_hour(
        catalog, pool
    )


def system_pool_usd_per_hour(catalog: Catalog, spec: StackSpec, nodes: int) -> float:
    system = spec.cluster.system_pool
    instance = catalog.instance_types[system.instance_types[0]]
    return nodes * node_usd_per_hour(catalog, instance, "onDemand", system.disk_size_gib)


def fixed_usd_per_hour(catalog: Catalog, spec: StackSpec) -> float:
    """Costs that do not scale: the EKS control plane and the NAT gateways."""
    nat_count = 1 if spec.network.nat_gateways == "single" else len(spec.aws.availability_zones)
    prices = catalog.prices
    return prices.eks_cluster_usd_per_hour.value + nat_count * prices.nat_gateway_usd_per_hour.value
