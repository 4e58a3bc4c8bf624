"""Applies the serving objects of components/manifests: per service one ConfigGroup of built-in objects,
then one per custom kind after the operator that installs its CRD.

ScaledObjects come first, before the Deployments they scale: a scaled Deployment carries no `spec.replicas`
(KEDA owns it), so the API server creates it at one replica, and KEDA brings it to its minReplicaCount as soon
as it sees it. With the ScaledObject already there, that is a moment, not the whole wait for the floor's
rollout, during which a pending GPU pod could make Cluster Autoscaler add a node nobody asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.catalog import Catalog
from components.manifests import serving as s
from components.manifests.gate import gate_job
from components.manifests.stack import ServiceObjects, service_objects, shared_objects
from components.planner.plan import StackPlan
from components.spec.models import StackSpec

HF_TOKEN_CONFIG = "huggingFaceToken"
"""Pulumi secret config key: `pulumi config set --secret huggingFaceToken hf_...`."""
OPERATOR_OF_KIND = {
    "ScaledObject": "keda",
    "RayService": "kuberay-operator",
    "HTTPRoute": "envoy-gateway",
    "PodMonitor": "kube-prometheus-stack",
    "LeaderWorkerSet": "lws",
}
"""Custom kind -> the charts.yaml release whose CRDs it needs."""


SCALER_KIND = "ScaledObject"


@dataclass
class ServingWorkloadsArgs:
    spec: StackSpec
    plan: StackPlan
    catalog: Catalog
    model_reader_role_arns: dict[str, pulumi.Input[str]]
    """Service name -> the IRSA role its pods read the model with (s3:// models only)."""
    operators: dict[str, pulumi.Resource]
    """charts.yaml release name -> the installed chart; custom resources wait for theirs."""
    gpu_ready: list[pulumi.Resource] = field(default_factory=list)
    """What GPU pods need first (the device plugin)."""
    huggingface_token: pulumi.Input[str] | None = None
    service_images: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Service name -> the image the stack built for it (images.build), replacing the spec's. Default none."""
    gate_image: pulumi.Input[str] | None = None
    """The deploy gate's image (images.build with deployGate.enabled); required exactly then."""

    def __post_init__(self) -> None:
        if self.spec.deploy_gate.enabled != (self.gate_image is not None):
            raise ValueError("ServingWorkloadsArgs.gate_image: with deployGate.enabled, pass the gate's image; "
                             "without it, none")
        names = {service.name for service in self.spec.services}
        for label, given in (("model_reader_role_arns", self.model_reader_role_arns),
                             ("service_images", self.service_images)):
            unknown = set(given) - names
            if unknown:
                raise ValueError(f"ServingWorkloadsArgs.{label}: no such services {sorted(unknown)}")


class ServingWorkloads(pulumi.ComponentResource):
    """Every serving object of the stack on the cluster the Kubernetes provider points at."""

    groups: dict[str, k8s.yaml.v2.ConfigGroup]

    def __init__(self, name: str, args: ServingWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        spec = args.spec
        per_service = {service.name: service_objects(service, spec, args.plan, args.catalog) for service in spec.services}
        monitors = shared_objects(spec)[1:]
        kinds = {obj["kind"] for obj in monitors}.union(*(objects.custom for objects in per_service.values()))
        missing = sorted({OPERATOR_OF_KIND[kind] for kind in kinds} - set(args.operators))
        if missing:
            raise ValueError(f"ServingWorkloadsArgs.operators: the serving objects need {', '.join(missing)}")
        super().__init__("inferfleet:kubernetes:ServingWorkloads", name, None, opts)
        self.groups = {}
        shared = self._group(f"{name}-shared", shared_objects(spec)[:1])
        for obj in monitors:
            self._group(f"{name}-{obj['metadata']['name']}", [obj], [shared, args.operators[OPERATOR_OF_KIND[obj["kind"]]]])
        identity: list[pulumi.Resource] = [shared]
        if args.huggingface_token is not None:
            secret = pulumi.Output.secret(args.huggingface_token).apply(lambda token: [s.huggingface_token_secret(token)])
            identity.append(self._group(f"{name}-huggingface-token", secret, [shared]))
        for service in spec.services:
            role_arn = args.model_reader_role_arns.get(service.name, "")
            accounts = pulumi.Output.from_input(role_arn).apply(lambda arn, service=service: [s.service_account(service, arn)])
            account = self._group(f"{name}-{service.name}-identity", accounts, [shared])
            objects = per_service[service.name]
            resolved: pulumi.Output[ServiceObjects] = pulumi.Output.from_input(objects)
            if service.name in args.service_images:
                resolved = pulumi.Output.from_input(args.service_images[service.name]).apply(
                    lambda image, service=service: service_objects(
                        service.model_copy(update={"image": image}), spec, args.plan, args.catalog)
                )
            scalers = []
            if SCALER_KIND in objects.custom:
                scalers.append(self._group(f"{name}-{service.name}-{SCALER_KIND.lower()}",
                                           resolved.apply(lambda o: o.custom[SCALER_KIND]),
                                           [shared, args.operators[OPERATOR_OF_KIND[SCALER_KIND]]]))
            core = self._group(f"{name}-{service.name}", resolved.apply(lambda o: o.core),
                               [*identity, account, *args.gpu_ready, *scalers])
            rollout = [core, *scalers]
            for kind in objects.custom:
                if kind == SCALER_KIND:
                    continue
                operator = args.operators[OPERATOR_OF_KIND[kind]]
                rollout.append(self._group(f"{name}-{service.name}-{kind.lower()}",
                                           resolved.apply(lambda o, kind=kind: o.custom[kind]), [core, operator]))
            if args.gate_image is not None:
                job = pulumi.Output.all(resolved, args.gate_image).apply(
                    lambda values, service=service: [gate_job(service, spec, values[1], values[0].all())]
                )
                self._group(f"{name}-{service.name}-gate", job, rollout)
        self.register_outputs({"groups": list(self.groups)})

    def _group(
        self, name: str, objects: pulumi.Input[list[dict[str, Any]]], depends_on: list[pulumi.Resource] | None = None
    ) -> k8s.yaml.v2.ConfigGroup:
        group = k8s.yaml.v2.ConfigGroup(
            name,
            objs=objects,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )
        self.groups[name] = group
        return group
