"""Ray Serve on KubeRay: one `RayService` per ray-serve service, its Serve applications in `serveConfigV2`.

Applications (Ray Serve routes by the longest matching prefix):
- `<service>` at `/`: the model through `ray.serve.llm:build_openai_app` (vLLM under Ray Serve LLM), with
  the same engine arguments as the vLLM manifests (plan first, the service's engineArgs on top) and Serve
  autoscaling between `replicas.min` and `replicas.max`.
- `<service>-pipeline` at `/pipeline`, when the service has `pipeline` stages: the builder
  `inferfleet_serve.pipeline:build_app` chains the stages in request order, then calls the model's
  application. That builder ships in the project's Ray Serve image, which arrives with a later issue; until
  then a service with stages must name that image in `image` (Ray's own image has no `inferfleet_serve`).
  Contract with the builder: args `{stages: [{name, import_path}], llm_app}`, one Serve deployment per stage
  named after the stage (the `deployments` overrides here set its CPUs and autoscaling bounds).

A canary or shadow revision is a RayService of its own, `<service>-canary` / `<service>-shadow`, with its
model application at `/` and a fixed number of replicas: Ray Serve does not split traffic between
applications, and a mirrored request keeps its path, so each revision needs its own Serve proxies. The
HTTPRoute weighs and mirrors between the revisions' Services exactly as for the other engines.

Each RayService's stable Service is KubeRay's serve Service (`serveService`, named after the RayService
instead of KubeRay's default `<rayservice>-serve-svc`): KubeRay points it at the RayCluster whose
applications are healthy and moves it only after an upgrade's new cluster is ready.

Model loads: KubeRay has ignored `serviceUnhealthySecondThreshold` and `deploymentUnhealthySecondThreshold`
since v1.1 (still in the CRD, deprecated), so neither is set. The load budget of
components/manifests/probes.py, the one the vLLM startup probe gets, bounds Ray Serve LLM's engine start
instead (`RAYLLM_ENGINE_START_TIMEOUT_S`, an hour by default): a replica stuck loading is restarted.

The Ray cluster: a head on the system nodes that runs no Serve replicas (`num-cpus: 0`), and one GPU worker
group per replica set of components/manifests/placement.py, pinned to that set's pools. Groups are
capacity: Ray's scheduler puts a replica wherever its GPUs are free, and the Ray autoscaler adds pods to
the groups (spot or on-demand) that can hold pending replicas. Limitations, kept simple on purpose:
- Serve runs one engine shape per application, so only the stable replica sets of the first set's shape
  get a worker group; pools of another shape (another tensor parallelism) are not used by Ray Serve.
- The Ray autoscaler has no order among groups, so placement's chain of burst sets is not followed: the
  burst sets of one node type (its spot pools, then its on-demand pools) share one worker group, where
  Cluster Autoscaler's priority expander still adds spot nodes first; a group of another node type may be
  grown before it.
- A replica wider than a node gets `nodes_per_replica` worker pods (one per node, the node's GPUs each)
  and Ray places its bundles over them; nothing gang-schedules those pods.
- Ray cannot keep the floor's replicas on the on-demand group: the floor group holds `replicas.min`
  replicas' worth of on-demand GPUs, and Ray fills free GPUs before asking for more, but a replica
  restarted while a floor node is briefly away may land on spot.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import yaml

from components.catalog import Catalog
from components.manifests import serving as s
from components.manifests.images import serving_image
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.probes import load_seconds
from components.manifests.scheduling import system_node_selector
from components.manifests.traffic import PIPELINE_ROUTE, REQUEST_TIMEOUT
from components.manifests.versions import RAY_VERSION
from components.manifests.vllm import engine_arguments
from components.planner.plan import ServicePoolPlan, StackPlan
from components.spec.models import ServiceSpec, StackSpec

API_VERSION = "ray.io/v1"
LLM_BUILDER = "ray.serve.llm:build_openai_app"
PIPELINE_BUILDER = "inferfleet_serve.pipeline:build_app"
SERVE_PORT = s.API_PORT
HEAD_PORTS = {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": SERVE_PORT, "metrics": 8080}
"""Ray's default ports, named as KubeRay reads them: its serve Service takes the head port named `serve`."""
RAY_USER = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 100}
"""Ray's images run as the user `ray` (uid 1000, group `users` 100: ray-project/ray docker/base-deps
Dockerfile, RAY_UID/RAY_GID); the head and the Serve containers keep that user, so neither runs as root."""


def ray_security_context() -> dict[str, Any]:
    return {**s.container_security_context(), **RAY_USER}


HEAD_RESOURCES = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
"""GCS, dashboard and Serve controller; fits a system node next to the add-ons."""
UPGRADE_STRATEGY = "NewCluster"
"""A cluster change (image, worker groups) starts a second RayCluster and switches traffic once its
applications are healthy: zero downtime, at the price of twice the GPUs during the switch. Serve config
changes (engine arguments, replicas) are applied in place. NewClusterWithIncrementalUpgrade would bring its
own Gateway route per cluster, which the project's HTTPRoute does not expect."""
UPSCALING_MODE = "Default"
"""Not rate-limited: Serve autoscaling already decided how many replicas are needed."""
IDLE_TIMEOUT_SECONDS = 300
"""A GPU pod without Serve replicas stays this long, so a replica that Serve restarts or scales back up
soon after finds the node and its weight cache instead of waiting minutes for a new one."""
OBJECT_STORE_SHARE_OF_SHM = 0.5
"""Ray's object store lives in /dev/shm; the other half is NCCL's. Serving moves small objects only."""
ENGINE_START_TIMEOUT_ENV = "RAYLLM_ENGINE_START_TIMEOUT_S"
"""Ray Serve LLM's limit on one engine start (weights into GPU memory, warm-up); Ray's default is an hour."""
ACCELERATOR_TYPES = {
    "A10G": "A10G",
    "L4": "L4",
    "L40S": "L40S",
    "A100-SXM4-40GB": "A100",
    "A100-SXM4-80GB": "A100",
    "H100-SXM5-80GB": "H100",
    "H200-SXM-141GB": "H200",
    "B200": "B200",
}
"""Catalog GPU -> the `accelerator_type` Ray detects on such a node (ray.util.accelerators). A100 sizes get
the plain `A100`: Ray does not add `A100-40G`/`A100-80G` to nodes by itself."""
ACCELERATOR_RESOURCE_PREFIX = "accelerator_type:"
ENGINE_ARGS_RAY_OWNS = ("model", "served-model-name", "distributed-executor-backend")
"""vLLM server flags that Ray Serve LLM takes elsewhere: the model from `model_loading_config`, the executor
(Ray's, over the replica's placement group) chosen by itself."""
STABLE = "stable"


def llm_app_name(service: ServiceSpec) -> str:
    return service.name


def suffixed_name(service: ServiceSpec, suffix: str) -> str:
    """`<service>-pipeline`, `<service>-canary`: application and Service names beside the model's."""
    return f"{service.name}-{suffix}"


# -- serveConfigV2 ------------------------------------------------------------------------------------


def engine_kwargs(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """vLLM engine keyword arguments: the vLLM manifests' arguments (plan, then engineArgs, user wins) as
    Python names, less what Ray Serve LLM sets itself."""
    arguments = engine_arguments(replica_set, catalog)
    return {flag.replace("-", "_"): value for flag, value in arguments.items() if flag not in ENGINE_ARGS_RAY_OWNS}


def model_source(replica_set: ReplicaSet) -> str:
    """The node-local copy the init container fetched for s3:// weights; the Hugging Face id for hf://."""
    service = replica_set.service
    if s.s3_location(service) is not None:
        return s.model_cache_dir(service, replica_set.model_revision)
    return service.model.uri.removeprefix("hf://")


def accelerator_type(sets: list[ReplicaSet], catalog: Catalog) -> str | None:
    """The Ray accelerator type of every pool of these sets, or None when they differ or Ray has no name
    for it (then Ray places the replicas on any GPU of the right count)."""
    pools = [pool for replica_set in sets for pool in replica_set.pools]
    types = {ACCELERATOR_TYPES.get(_gpu_name(pool.instance_types[0], catalog)) for pool in pools}
    return types.pop() if len(types) == 1 else None


def _gpu_name(instance_type: str, catalog: Catalog) -> str:
    return catalog.gpu_of(catalog.instance_types[instance_type]).name


def deployment_options(scaling: dict[str, Any]) -> dict[str, Any]:
    """Serve deployment options: `num_replicas` or `autoscaling_config`; in-flight requests get the pod's
    grace period when Serve stops a replica (Serve's default, 20 s, cuts long generations)."""
    return {**scaling, "graceful_shutdown_timeout_s": s.TERMINATION_GRACE_SECONDS}


def autoscaling_config(service: ServiceSpec, entry: ServicePoolPlan) -> dict[str, Any]:
    """Serve adds a replica when the ongoing requests per replica pass what the plan sized one replica for."""
    return {
        "min_replicas": service.replicas.min,
        "max_replicas": service.replicas.max,
        "target_ongoing_requests": entry.planned_concurrency,
    }


def llm_config(sets: list[ReplicaSet], catalog: Catalog, scaling: dict[str, Any]) -> dict[str, Any]:
    """One `ray.serve.llm.LLMConfig`, as the dict `build_openai_app` validates, for the replicas of these
    sets (one shape; the first set's engine arguments); `scaling` is `{num_replicas: n}` or
    `{autoscaling_config: ...}`."""
    replica_set = sets[0]
    config: dict[str, Any] = {
        "model_loading_config": {
            "model_id": replica_set.service.model.name,
            "model_source": model_source(replica_set),
        },
        "engine_kwargs": engine_kwargs(replica_set, catalog),
        "deployment_config": deployment_options(scaling),
    }
    accelerator = accelerator_type(sets, catalog)
    if accelerator is not None:
        config["accelerator_type"] = accelerator
    return config


def llm_application(name: str, prefix: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "route_prefix": prefix, "import_path": LLM_BUILDER, "args": {"llm_configs": [config]}}


def pipeline_application(service: ServiceSpec) -> dict[str, Any]:
    """The stages in request order, each its own Serve deployment, then the model's application."""
    return {
        "name": suffixed_name(service, "pipeline"),
        "route_prefix": PIPELINE_ROUTE,
        "import_path": PIPELINE_BUILDER,
        "args": {
            "stages": [{"name": stage.name, "import_path": stage.import_path} for stage in service.pipeline],
            "llm_app": llm_app_name(service),
        },
        "deployments": [
            {
                "name": stage.name,
                "ray_actor_options": {
                    "num_cpus": stage.num_cpus,
                    **({"runtime_env": {"env_vars": dict(stage.env)}} if stage.env else {}),
                },
                "autoscaling_config": {"min_replicas": stage.replicas.min, "max_replicas": stage.replicas.max},
            }
            for stage in service.pipeline
        ],
    }


def serve_config(service: ServiceSpec, sets: list[ReplicaSet], catalog: Catalog) -> dict[str, Any]:
    """The Serve config (ServeDeploySchema) of one RayService: the stable model with its pipeline, or one
    revision's model with a fixed number of replicas."""
    revision = sets[0].revision
    if revision != STABLE:
        fixed = {"num_replicas": sets[0].replicas_min}
        return {"applications": [llm_application(sets[0].name, "/", llm_config(sets, catalog, fixed))]}
    scaling = {"autoscaling_config": autoscaling_config(service, sets[0].plan)}
    applications = [llm_application(llm_app_name(service), "/", llm_config(sets, catalog, scaling))]
    if service.pipeline:
        applications.append(pipeline_application(service))
    return {"applications": applications}


def serve_config_v2(service: ServiceSpec, sets: list[ReplicaSet], catalog: Catalog) -> str:
    """`serveConfigV2` is YAML text in the RayService, which KubeRay hands to the Serve REST API as is."""
    return yaml.safe_dump(serve_config(service, sets, catalog), sort_keys=False)


# -- the Ray cluster ----------------------------------------------------------------------------------


def _same_shape(a: ServicePoolPlan, b: ServicePoolPlan) -> bool:
    fields = ("gpus_per_replica", "nodes_per_replica", "tensor_parallel_size", "pipeline_parallel_size")
    return all(getattr(a, name) == getattr(b, name) for name in fields)


def _one_group_per_node_type(sets: list[ReplicaSet]) -> list[ReplicaSet]:
    """The burst sets of one node type as one set: the first (spot) with the pools of the later ones
    (on-demand) after its own. Placement chains a shape's spot pools before its on-demand pools as two
    sets, the second scaling only for what the first cannot place; the Ray autoscaler knows no such order
    (it picks the worker group that fits best, ties broken by name), so two groups would let it grow the
    on-demand one first. One group on all the pools keeps spot first: its pods prefer the pools in order,
    and Cluster Autoscaler's priority expander adds spot nodes before on-demand ones."""
    merged: dict[tuple[str, str], ReplicaSet] = {}
    for replica_set in sets:
        key = (replica_set.name if replica_set.role != "burst" else "burst", replica_set.plan.instance_type)
        first = merged.get(key)
        merged[key] = replica_set if first is None else dataclasses.replace(
            first, pools=first.pools + replica_set.pools)
    return list(merged.values())


def _worker_sets(service: ServiceSpec, spec: StackSpec, plan: StackPlan) -> tuple[list[ReplicaSet], list[ReplicaSet]]:
    """(stable sets of the first set's shape, one per node type, revision sets): the replica sets that
    get a worker group."""
    sets = replica_sets(service, spec, plan)
    stable = [r for r in sets if r.revision == STABLE]
    shaped = [r for r in stable if _same_shape(r.plan, stable[0].plan)]
    return _one_group_per_node_type(shaped), [r for r in sets if r.revision != STABLE]


def _base_labels(service: ServiceSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service.name,
        "app.kubernetes.io/component": service.engine,
        "app.kubernetes.io/part-of": s.PART_OF,
        s.SERVICE_LABEL: service.name,
    }


def head_group(service: ServiceSpec, catalog: Catalog) -> dict[str, Any]:
    """The head on the system nodes, selected by the labels the system node group gives them (GPU nodes
    carry the pool label too, so its absence would match no node), running no replicas."""
    return {
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": {
            "metadata": {"labels": _base_labels(service)},
            "spec": {
                "containers": [
                    {
                        "name": "ray-head",
                        "image": serving_image(service, catalog),
                        "ports": [{"name": name, "containerPort": port} for name, port in HEAD_PORTS.items()],
                        "resources": copy.deepcopy(HEAD_RESOURCES),
                        "securityContext": ray_security_context(),
                    }
                ],
                "nodeSelector": system_node_selector(),
            },
        },
    }


def _ray_resources_param(resources: dict[str, int]) -> str:
    """`--resources` as KubeRay passes it through a shell and the Ray autoscaler parses it back."""
    return '"' + json.dumps(resources).replace('"', '\\"') + '"'


def _worker_start_params(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, str]:
    """CPUs as requested (the autoscaler and Ray must agree), an object store that fits /dev/shm, and the
    accelerator type the replicas ask for, so the autoscaler knows a group at zero pods can hold them."""
    cpus = s.replica_resources(replica_set, catalog)["requests"]["cpu"]
    shm_bytes = s.shm_gib(replica_set, catalog) * 2**30
    params = {"num-cpus": cpus, "object-store-memory": str(int(shm_bytes * OBJECT_STORE_SHARE_OF_SHM))}
    accelerator = accelerator_type([replica_set], catalog)
    if accelerator is not None:
        params["resources"] = _ray_resources_param({f"{ACCELERATOR_RESOURCE_PREFIX}{accelerator}": 1})
    return params


def _worker_container(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    return {
        "name": "ray-worker",
        "image": serving_image(replica_set.service, catalog),
        "ports": [
            {"name": "serve", "containerPort": SERVE_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": HEAD_PORTS["metrics"], "protocol": "TCP"},
        ],
        "env": [
            s.hf_token_env(),
            {"name": ENGINE_START_TIMEOUT_ENV, "value": str(load_seconds(replica_set.plan))},
        ],
        "resources": s.replica_resources(replica_set, catalog),
        "volumeMounts": [
            s.hf_token_mount(),
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "weights", "mountPath": s.WEIGHT_CACHE_MOUNT},
        ],
    }


def worker_group(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """A replica set's GPUs: floor and revisions fixed, burst from 0; one pod per node of a replica."""
    pods_per_replica = replica_set.plan.nodes_per_replica
    volumes = [s.shm_volume(s.shm_gib(replica_set, catalog)), s.weight_cache_volume()]
    pod_spec = s.pod_spec(replica_set, _worker_container(replica_set, catalog), volumes)
    for container in pod_spec["containers"]:
        container["securityContext"] = ray_security_context()
    return {
        "groupName": replica_set.name,
        "replicas": replica_set.replicas_min * pods_per_replica,
        "minReplicas": replica_set.replicas_min * pods_per_replica,
        "maxReplicas": replica_set.replicas_max * pods_per_replica,
        "rayStartParams": _worker_start_params(replica_set, catalog),
        "template": {"metadata": {"labels": s.replica_set_labels(replica_set)}, "spec": pod_spec},
    }


def _cluster_deletion_delay_seconds() -> int:
    """The old cluster outlives the switch by the longest request the route lets run, so streams finish."""
    return int(REQUEST_TIMEOUT.removesuffix("s"))


AWAIT_CONDITION = "condition=Ready"
"""KubeRay sets the RayService's `Ready` condition once Serve runs every application on a cluster; Pulumi
waits for it (pulumi-kubernetes' `pulumi.com/waitFor`), as it waits for a Deployment's rollout, so what
runs after a rollout (the deploy gate) finds the service serving."""
AWAIT_MARGIN_SECONDS = 600
"""Beyond the slowest replica set's model load: the Ray cluster's own start and Serve's deployment."""


def _awaited(metadata: dict[str, Any], sets: list[ReplicaSet]) -> dict[str, Any]:
    slowest = max(load_seconds(rs.plan) for rs in sets)
    annotations = {**metadata.get("annotations", {}), "pulumi.com/waitFor": AWAIT_CONDITION,
                   "pulumi.com/timeoutSeconds": str(slowest + AWAIT_MARGIN_SECONDS)}
    return {**metadata, "annotations": annotations}


def ray_service(name: str, service: ServiceSpec, sets: list[ReplicaSet], catalog: Catalog) -> dict[str, Any]:
    """One RayService over these replica sets (the stable ones, or one revision's)."""
    labels = {**_base_labels(service), s.REVISION_LABEL: sets[0].revision}
    return {
        "apiVersion": API_VERSION,
        "kind": "RayService",
        "metadata": _awaited(s.workload_metadata(name, labels, service), sets),
        "spec": {
            "serveConfigV2": serve_config_v2(service, sets, catalog),
            "serveService": {"metadata": {"name": name, "labels": labels}},
            "excludeHeadPodFromServeSvc": True,
            "upgradeStrategy": {"type": UPGRADE_STRATEGY},
            "rayClusterDeletionDelaySeconds": _cluster_deletion_delay_seconds(),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": UPSCALING_MODE, "idleTimeoutSeconds": IDLE_TIMEOUT_SECONDS},
                "headGroupSpec": head_group(service, catalog),
                "workerGroupSpecs": [worker_group(r, catalog) for r in sets],
            },
        },
    }


def ray_serve_objects(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """The stable RayService, one per canary or shadow revision, and a PDB per worker group (one pod of a
    set drained at a time). KubeRay makes each RayService's Service, named after it."""
    stable, revisions = _worker_sets(service, spec, plan)
    objects = [ray_service(service.name, service, stable, catalog)]
    objects += [ray_service(revision.name, service, [revision], catalog) for revision in revisions]
    return objects + [s.pod_disruption_budget(replica_set) for replica_set in stable + revisions]
