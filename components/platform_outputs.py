"""What the workloads stack takes from the platform stack: one list of stack outputs, read two ways.

`pulumi up -s <env>` exports them (`exports`); `pulumi up -s <env>-workloads` reads them back through a
StackReference (`from_stack`). `inferfleet render` and the tests run both phases in one program and hand the
platform's values over directly (`of`), so the workloads phase builds the same objects either way. Which
keys a dict holds (services with a built image, services reading from S3, GPU pools) follows from the
spec, so a StackReference, whose values are unknown while the program is built, yields the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.catalog import Catalog
from components.kubernetes.addons import RemoteWriteTarget
from components.manifests.image_builds import built_services
from components.manifests.serving import s3_location
from components.spec.models import StackSpec

CLUSTER_NAME = "clusterName"
KUBECONFIG = "kubeconfig"
POOL_GROUP_NAMES = "poolGroupNames"
INTERRUPTION_QUEUE_URL = "interruptionQueueUrl"
AUTOSCALER_ROLE_ARN = "autoscalerRoleArn"
TERMINATION_HANDLER_ROLE_ARN = "terminationHandlerRoleArn"
REMOTE_WRITE = "managedPrometheus"
MODEL_READER_ROLE_ARNS = "modelReaderRoleArns"
SERVING_IMAGES = "servingImages"
GATE_IMAGE = "gateImage"
DEPLOY_RUNNER = "deployRunner"
"""The runner's project, source bucket and log group (components/aws/deploy_runner.py), or null: what
scripts/workloads.sh reads to decide where the workloads stack runs."""


@dataclass
class PlatformOutputs:
    cluster_name: pulumi.Input[str]
    kubeconfig: pulumi.Input[str]
    asg_names: dict[str, pulumi.Input[str]]
    interruption_queue_url: pulumi.Input[str]
    autoscaler_role_arn: pulumi.Input[str]
    termination_handler_role_arn: pulumi.Input[str]
    remote_write: RemoteWriteTarget | None
    model_reader_role_arns: dict[str, pulumi.Input[str]]
    service_images: dict[str, pulumi.Input[str]]
    gate_image: pulumi.Input[str] | None

    def exports(self) -> dict[str, Any]:
        """The platform stack's outputs the workloads stack reads (besides those shown to people)."""
        remote_write = None
        if self.remote_write is not None:
            remote_write = {"url": self.remote_write.url, "roleArn": self.remote_write.role_arn}
        return {
            CLUSTER_NAME: self.cluster_name,
            KUBECONFIG: self.kubeconfig,
            POOL_GROUP_NAMES: self.asg_names,
            INTERRUPTION_QUEUE_URL: self.interruption_queue_url,
            AUTOSCALER_ROLE_ARN: self.autoscaler_role_arn,
            TERMINATION_HANDLER_ROLE_ARN: self.termination_handler_role_arn,
            REMOTE_WRITE: remote_write,
            MODEL_READER_ROLE_ARNS: self.model_reader_role_arns,
            SERVING_IMAGES: self.service_images,
            GATE_IMAGE: self.gate_image,
        }

    @classmethod
    def from_stack(cls, platform: pulumi.StackReference, spec: StackSpec, catalog: Catalog) -> PlatformOutputs:
        """The outputs of the environment's platform stack, shaped by the spec."""

        def item(key: str, name: str) -> pulumi.Output[str]:
            return platform.require_output(key).apply(lambda values: values[name])

        built = built_services(spec, catalog)
        remote_write = None
        if spec.observability.enabled and spec.observability.managed_prometheus:
            remote_write = RemoteWriteTarget(url=item(REMOTE_WRITE, "url"), role_arn=item(REMOTE_WRITE, "roleArn"))
        gated = spec.images.build and spec.deploy_gate.enabled  # image_builds adds the gate's image exactly then
        return cls(
            cluster_name=platform.require_output(CLUSTER_NAME),
            kubeconfig=platform.require_output(KUBECONFIG),
            asg_names={pool.name: item(POOL_GROUP_NAMES, pool.name) for pool in spec.gpu_pools},
            interruption_queue_url=platform.require_output(INTERRUPTION_QUEUE_URL),
            autoscaler_role_arn=platform.require_output(AUTOSCALER_ROLE_ARN),
            termination_handler_role_arn=platform.require_output(TERMINATION_HANDLER_ROLE_ARN),
            remote_write=remote_write,
            model_reader_role_arns={
                s.name: item(MODEL_READER_ROLE_ARNS, s.name) for s in spec.services if s3_location(s)
            },
            service_images={service: item(SERVING_IMAGES, service) for service in built},
            gate_image=platform.require_output(GATE_IMAGE) if gated else None,
        )


def platform_stack_name(environment: str) -> str:
    """The fully qualified name of the environment's platform stack, in this program's backend and project."""
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{environment}"
