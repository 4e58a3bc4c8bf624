"""How a VPC CIDR is cut into subnets: the rule the spec checks and the network component builds.

Private subnets hold nodes and pods (the VPC CNI gives every pod a VPC address), so they get
the large blocks: the VPC is split into the smallest power of two of equal blocks that has
one per AZ plus one spare; the spare block is split again into one public subnet per AZ.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

MIN_VPC_PREFIX = 16
MAX_VPC_PREFIX = 28
MAX_PRIVATE_SUBNET_PREFIX = 24
"""Private subnets need at least a /24: GPU nodes with prefix delegation use many addresses."""
MAX_PUBLIC_SUBNET_PREFIX = 27
"""Elastic Load Balancing needs at least a /27 with 8 free addresses in each subnet it uses."""
SERVICE_IPV4_CIDR = "172.20.0.0/16"
"""Kubernetes Service addresses of every cluster (EKS's own default); must not overlap the VPC."""


@dataclass(frozen=True)
class SubnetPlan:
    private: tuple[str, ...]
    public: tuple[str, ...]


class SubnetPlanError(ValueError):
    pass


def plan_subnets(vpc_cidr: str, az_count: int) -> SubnetPlan:
    """Private and public subnet CIDRs, one each per AZ, in AZ order; raise with the reason when impossible."""
    try:
        vpc = ipaddress.IPv4Network(vpc_cidr, strict=True)
    except ValueError as error:
        raise SubnetPlanError(f"not a valid IPv4 CIDR: {error}") from None
    if not MIN_VPC_PREFIX <= vpc.prefixlen <= MAX_VPC_PREFIX:
        raise SubnetPlanError(f"AWS allows VPC CIDRs from /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX}, got /{vpc.prefixlen}")
    private_bits = math.ceil(math.log2(az_count + 1))
    public_bits = math.ceil(math.log2(az_count)) if az_count > 1 else 0
    private_prefix = vpc.prefixlen + private_bits
    public_prefix = private_prefix + public_bits
    if private_prefix > MAX_PRIVATE_SUBNET_PREFIX or public_prefix > MAX_PUBLIC_SUBNET_PREFIX:
        needed = min(MAX_PRIVATE_SUBNET_PREFIX - private_bits, MAX_PUBLIC_SUBNET_PREFIX - private_bits - public_bits)
        raise SubnetPlanError(
            f"/{vpc.prefixlen} is too small for {az_count} AZs: private subnets would be /{private_prefix} "
            f"(need /{MAX_PRIVATE_SUBNET_PREFIX} or larger) and public /{public_prefix} "
            f"(need /{MAX_PUBLIC_SUBNET_PREFIX} or larger); use /{needed} or larger"
        )
    if vpc.overlaps(ipaddress.IPv4Network(SERVICE_IPV4_CIDR)):
        raise SubnetPlanError(f"overlaps {SERVICE_IPV4_CIDR}, the cluster's Kubernetes Service CIDR; pick a range outside it")
    blocks = list(vpc.subnets(new_prefix=private_prefix))
    private = tuple(str(block) for block in blocks[:az_count])
    public = tuple(str(block) for block in list(blocks[az_count].subnets(new_prefix=public_prefix))[:az_count])
    return SubnetPlan(private=private, public=public)
