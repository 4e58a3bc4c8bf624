"""The deploy gate (spec `deployGate`): after a service's objects are applied, a Job runs the project's
`inferfleet smoke` and, for OpenAI-compatible engines, a short `inferfleet bench` held to the service's
SLO, against the service's stable in-cluster address. `pulumi up` waits for the Job (pulumi-kubernetes
awaits a Job until it completes, and fails the update when it fails), so a rollout that does not serve,
or serves outside its SLO, fails the environment's update.

The Job's name carries a hash of everything it checks (the service's objects, the gate's settings and its
own image): a change to any of them is a new Job, run again; an unchanged service keeps its Job and is not
re-checked. The bench gets the service's `workload` lengths and `slo` as arguments, the same the plan read:
the gate needs nothing else of the stack, so no copy of the stack document goes into the cluster.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from components.manifests import serving as s
from components.manifests.scheduling import system_node_selector
from components.manifests.triton import PORTS as TRITON_PORTS
from components.spec.models import ServiceSpec, StackSpec

GATE_USER = 65532
"""The numeric user of serving_images/gate/Dockerfile."""
NAME_HASH_LENGTH = 10
AWAIT_MARGIN_SECONDS = 60
"""Pulumi waits this much longer than the Job's own deadline, so the Job reports its failure first."""
RESOURCES = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
"""One core at most: the client uses about a third of one at 256 streams (README, bench), and the gate
shares the system pool with the add-ons."""
OPENAI_ENGINES = ("vllm", "ray-serve")


def target(service: ServiceSpec) -> str:
    """The service's stable address in the cluster: its Service (vLLM, Triton gRPC) or Serve service (Ray)."""
    host = f"{service.name}.{s.SERVING_NAMESPACE}.svc"
    if service.engine == "triton":
        return f"{host}:{TRITON_PORTS['grpc']}"
    return f"http://{host}:{s.API_PORT}"


def smoke_arguments(service: ServiceSpec) -> list[str]:
    arguments = ["smoke", target(service), "--engine", service.engine]
    if service.engine in OPENAI_ENGINES:
        arguments += ["--model", service.model.name]
    return arguments


def bench_arguments(service: ServiceSpec, spec: StackSpec) -> list[str] | None:
    """A short closed-loop bench at the workload's lengths, held to the service's SLO (Triton: none, the
    bench speaks the OpenAI API only)."""
    if service.engine not in OPENAI_ENGINES:
        return None
    gate = spec.deploy_gate
    arguments = [
        "bench", target(service), "--model", service.model.name,
        "--num-prompts", str(gate.num_prompts), "--concurrency", str(gate.concurrency),
    ]
    if service.workload is not None:
        arguments += ["--input-tokens", str(service.workload.input_tokens)]
        if service.workload.output_tokens:
            arguments += ["--output-tokens", str(service.workload.output_tokens)]
    slo = service.slo
    if slo is not None:
        arguments += ["--slo-ttft-p99-ms", f"{slo.ttft_p99_ms:g}"]
        if slo.itl_p99_ms is not None:
            arguments += ["--slo-itl-p99-ms", f"{slo.itl_p99_ms:g}"]
        if slo.availability is not None:
            arguments += ["--slo-availability", f"{slo.availability:g}"]
    return arguments


def _container(name: str, image: str, arguments: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "args": arguments,
        "resources": RESOURCES,
        "securityContext": {
            **s.container_security_context(),
            "runAsNonRoot": True,
            "runAsUser": GATE_USER,
            "runAsGroup": GATE_USER,
            "readOnlyRootFilesystem": True,
        },
    }


def job_name(service: ServiceSpec, checked: Any) -> str:
    digest = hashlib.sha256(json.dumps(checked, sort_keys=True, default=str).encode()).hexdigest()
    return f"{service.name}-gate-{digest[:NAME_HASH_LENGTH]}"


def gate_job(service: ServiceSpec, spec: StackSpec, image: str, checked: Any) -> dict[str, Any]:
    """The Job: smoke first (an init container), then the bench; no retry (a gate that needs a second try
    has failed); on the system pool, with no API token and a read-only root."""
    smoke = _container("smoke", image, smoke_arguments(service))
    bench = bench_arguments(service, spec)
    containers = [_container("bench", image, bench)] if bench else [smoke]
    labels = {"app.kubernetes.io/name": service.name, "app.kubernetes.io/component": "deploy-gate",
              "app.kubernetes.io/part-of": s.PART_OF, s.SERVICE_LABEL: service.name}
    timeout = spec.deploy_gate.timeout_seconds
    annotations = {
        "pulumi.com/timeoutSeconds": str(timeout + AWAIT_MARGIN_SECONDS),
        "pulumi.com/replaceUnready": "true",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": s.metadata(job_name(service, [checked, image, spec.deploy_gate.model_dump()]), labels,
                               annotations=annotations),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": GATE_USER, "runAsGroup": GATE_USER,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "nodeSelector": system_node_selector(),
                    **({"initContainers": [smoke]} if bench else {}),
                    "containers": containers,
                },
            },
        },
    }
