"""Pulumi entry point: `stacks/<pulumi stack>.yaml` decides everything the stack deploys."""

from pathlib import Path

import pulumi

from components.catalog import load_catalog
from components.platform import deploy
from components.spec import StackError
from components.stack import load_stack

stack_file = Path(__file__).parent / "stacks" / f"{pulumi.get_stack()}.yaml"
try:
    source = load_stack(stack_file)
except StackError as error:
    raise pulumi.RunError(f"invalid stack spec:\n{error}") from None

deployment = deploy(source, load_catalog())
platform = deployment.platform

pulumi.export("clusterName", platform.cluster.name)
pulumi.export("kubeconfig", platform.cluster.kubeconfig)
pulumi.export("gatewayHostname", deployment.addons.gateway_hostname)
pulumi.export("poolGroupNames", {name: pool.asg_name for name, pool in platform.pools.items()})
pulumi.export("gpuAmiIds", {name: pool.ami_id for name, pool in platform.pools.items()})
pulumi.export("modelBuckets", platform.storage.bucket_names)
pulumi.export("plan", deployment.plan.to_json())
if platform.images is not None:
    pulumi.export("servingImages", platform.images.refs)
    pulumi.export("imageBaseDigests", platform.images.base_digests)
