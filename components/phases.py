"""Every environment is two Pulumi stacks of one program: the platform, then the workloads.

`<env>` (the platform) creates everything AWS holds: network, EKS, node pools, IAM, storage, images, the
deploy runner. It needs only AWS's APIs, so it runs wherever `pulumi` runs. `<env>-workloads` creates every
Kubernetes object (add-ons, serving) and nothing in AWS; it must reach the Kubernetes API, which a private
endpoint answers only inside the VPC, so for such a cluster it runs in the deploy runner
(components/aws/deploy_runner.py, scripts/workloads.sh). It reads what it needs from the platform stack's
outputs (components/platform_outputs.py). Both take stacks/<env>.yaml.
"""

from __future__ import annotations

from typing import Literal

Phase = Literal["platform", "workloads"]
WORKLOADS_SUFFIX = "-workloads"


def stack_phase(stack_name: str) -> tuple[str, Phase]:
    """(environment, phase) a Pulumi stack name stands for: `prod` -> (prod, platform),
    `prod-workloads` -> (prod, workloads)."""
    if stack_name.endswith(WORKLOADS_SUFFIX) and len(stack_name) > len(WORKLOADS_SUFFIX):
        return stack_name[: -len(WORKLOADS_SUFFIX)], "workloads"
    return stack_name, "platform"


def workloads_stack(environment: str) -> str:
    return f"{environment}{WORKLOADS_SUFFIX}"
