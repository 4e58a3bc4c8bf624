"""The RayService of each ray-serve service: valid against KubeRay's CRD, its cluster shaped like the
placement's replica sets, its Serve applications like the spec and the plan."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from components.manifests import ray_serve as rs
from components.manifests import serving as s
from components.manifests.placement import replica_sets, tolerations
from components.manifests.probes import load_seconds
from components.manifests.scheduling import GPU_TAINT_KEY, pool_labels, system_node_labels, system_node_selector
from components.manifests.versions import RAY_LLM_IMAGE, RAY_VERSION
from components.planner import plan_stack
from components.spec.models import CanarySpec
from components.stack import load_stack
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.node_selection import admits
from tests.manifests.validators import validate_object

STACKS = ["staging", "prod"]
"""The example stacks with a ray-serve service."""


@pytest.fixture(scope="module", params=STACKS)
def stack(request, catalog):
    spec = load_stack(f"stacks/{request.param}.yaml", catalog).spec
    return spec, plan_stack(spec, catalog)


def ray_serve_services(spec):
    services = [service for service in spec.services if service.engine == "ray-serve"]
    assert services, "each example stack here has a ray-serve service"
    return services


def ray_service_of(objects, name=None):
    """The stable RayService (named after the service), or the one named."""
    services = [obj for obj in objects if obj["kind"] == "RayService"]
    if name is not None:
        (named,) = [obj for obj in services if obj["metadata"]["name"] == name]
        return named
    (stable,) = [obj for obj in services if obj["metadata"]["labels"][s.REVISION_LABEL] == "stable"]
    return stable


def apps_of(ray_service):
    return {app["name"]: app for app in yaml.safe_load(ray_service["spec"]["serveConfigV2"])["applications"]}


def with_service(spec, name, **update):
    services = [svc.model_copy(update=update) if svc.name == name else svc for svc in spec.services]
    return spec.model_copy(update={"services": services})


def test_every_object_is_valid_for_its_schema(stack, catalog):
    spec, plan = stack
    for service in ray_serve_services(spec):
        objects = rs.ray_serve_objects(service, spec, plan, catalog)
        assert {obj["kind"] for obj in objects} == {"RayService", "PodDisruptionBudget"}
        for obj in objects:
            validate_object(obj, KUBERNETES_VERSION)


def test_a_broken_field_is_caught_by_the_crd_schema(prod, catalog):
    spec, plan = prod
    ray_service = ray_service_of(rs.ray_serve_objects(ray_serve_services(spec)[0], spec, plan, catalog))
    ray_service["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate_object(ray_service, KUBERNETES_VERSION)


def test_a_wrong_type_is_caught_by_the_crd_schema(prod, catalog):
    spec, plan = prod
    ray_service = ray_service_of(rs.ray_serve_objects(ray_serve_services(spec)[0], spec, plan, catalog))
    ray_service["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate_object(ray_service, KUBERNETES_VERSION)


def test_head_runs_no_replicas_and_no_gpu_on_the_system_nodes(stack, catalog):
    spec, plan = stack
    for service in ray_serve_services(spec):
        head = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0"
        pod = head["template"]["spec"]
        (container,) = pod["containers"]
        for kind in ("requests", "limits"):
            assert s.GPU_RESOURCE not in container["resources"].get(kind, {})
        assert all(t["key"] != GPU_TAINT_KEY for t in pod.get("tolerations", []))
        assert pod["nodeSelector"] == system_node_selector()
        assert {"name": "serve", "containerPort": rs.SERVE_PORT} in container["ports"]


def test_head_fits_the_system_nodes_and_no_gpu_node(stack, catalog):
    """The labels the system node group gives its nodes (scheduling.py, read by components/aws/cluster.py)
    admit the head; no GPU pool's labels do, so the head never waits on a GPU node."""
    spec, plan = stack
    for service in ray_serve_services(spec):
        head = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]["headGroupSpec"]
        pod = head["template"]["spec"]
        assert admits(pod, system_node_labels())
        for pool in spec.gpu_pools:
            assert not admits(pod, pool_labels(pool)), pool.name


def test_the_spot_and_on_demand_burst_sets_of_a_node_type_share_one_worker_group(prod, catalog):
    """Ray's autoscaler picks among groups by fit (ties by name), not by placement's chain: one group on
    l40s-spot then l40s-ondemand leaves the order to Cluster Autoscaler's priority expander, spot first."""
    spec, plan = prod
    (service,) = [s for s in spec.services if s.name == "rag"]
    assert [r.name for r in replica_sets(service, spec, plan) if r.role == "burst"] == [
        "rag-burst", "rag-burst-2", "rag-burst-3"]
    ray_service = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))
    groups = {g["groupName"]: g for g in ray_service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
    assert list(groups) == ["rag-floor", "rag-burst", "rag-burst-2"]
    affinity = groups["rag-burst"]["template"]["spec"]["affinity"]["nodeAffinity"]
    required = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert required["values"] == ["l40s-spot", "l40s-ondemand"]
    weights = [term["weight"] for term in affinity["preferredDuringSchedulingIgnoredDuringExecution"]]
    assert weights[0] > weights[1]


def test_worker_groups_are_the_replica_sets(stack, catalog):
    spec, plan = stack
    for service in ray_serve_services(spec):
        ray_service = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))
        groups = {g["groupName"]: g for g in ray_service["spec"]["rayClusterConfig"]["workerGroupSpecs"]}
        sets = {r.name: r for r in replica_sets(service, spec, plan)}
        bursts = [r for r in sets.values() if r.role == "burst"]
        same_node_type = {r.name: [b for b in bursts if b.plan.instance_type == r.plan.instance_type] for r in bursts}
        joined = {b.name for r in bursts for b in same_node_type[r.name] if bursts.index(b) > bursts.index(r)}
        assert set(groups) == set(sets) - joined >= {f"{service.name}-floor", f"{service.name}-burst"}
        floor, burst = groups[f"{service.name}-floor"], groups[f"{service.name}-burst"]
        assert floor["minReplicas"] == floor["maxReplicas"] == floor["replicas"] == service.replicas.min
        assert (burst["minReplicas"], burst["maxReplicas"]) == (0, service.replicas.max - service.replicas.min)
        for name, group in groups.items():
            replica_set = sets[name]
            group_pools = tuple(pool for b in same_node_type.get(name, [replica_set]) for pool in b.pools)
            pod = group["template"]["spec"]
            required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            pools = required["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
            assert pools == [pool.name for pool in group_pools]
            assert pod["tolerations"] == tolerations(group_pools)
            (container,) = pod["containers"]
            gpus = replica_set.plan.gpus_per_replica
            assert container["resources"]["requests"][s.GPU_RESOURCE] == gpus
            assert container["resources"]["limits"][s.GPU_RESOURCE] == gpus
            assert pod["serviceAccountName"] == s.service_account_name(service)
            assert s.hf_token_env() in container["env"]
            assert {"name": rs.ENGINE_START_TIMEOUT_ENV, "value": str(load_seconds(replica_set.plan))} in container["env"]
            assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
            assert [c["name"] for c in pod["initContainers"]] == ["fetch-weights"]
            assert s.weight_cache_volume() in pod["volumes"]
            assert group["rayStartParams"]["num-cpus"] == container["resources"]["requests"]["cpu"]


def test_spot_pools_only_in_the_burst_group(prod, catalog):
    spec, plan = prod
    service = ray_serve_services(spec)[0]
    groups = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    spot = {pool.name for pool in spec.gpu_pools if pool.capacity_type == "spot"}
    floor_pools = groups[0]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert groups[0]["groupName"].endswith("-floor")
    assert not spot & set(floor_pools["nodeSelectorTerms"][0]["matchExpressions"][0]["values"])


def test_the_model_application_carries_the_plan(stack, catalog):
    spec, plan = stack
    for service in ray_serve_services(spec):
        apps = apps_of(ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog)))
        app = apps[service.name]
        assert (app["import_path"], app["route_prefix"]) == (rs.LLM_BUILDER, "/")
        (config,) = app["args"]["llm_configs"]
        entry = replica_sets(service, spec, plan)[0].plan
        kwargs = config["engine_kwargs"]
        assert kwargs["tensor_parallel_size"] == entry.tensor_parallel_size
        assert kwargs["pipeline_parallel_size"] == entry.pipeline_parallel_size
        assert kwargs["max_model_len"] == service.max_model_len
        assert kwargs["max_num_seqs"] == entry.max_concurrent_sequences
        assert not {"model", "served_model_name", "distributed_executor_backend"} & set(kwargs)
        assert config["model_loading_config"] == {
            "model_id": service.model.name,
            "model_source": s.model_cache_dir(service, service.model.revision),
        }
        assert config["deployment_config"]["autoscaling_config"] == {
            "min_replicas": service.replicas.min,
            "max_replicas": service.replicas.max,
            "target_ongoing_requests": entry.planned_concurrency,
        }
        assert config["accelerator_type"] == "L40S"


def test_user_engine_args_win_over_planned_ones(prod, catalog):
    spec, _ = prod
    service = ray_serve_services(spec)[0]
    spec = with_service(spec, service.name, engine_args={"enable-prefix-caching": False, "enforce_eager": True})
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.name == service.name)
    apps = apps_of(ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog)))
    kwargs = apps[service.name]["args"]["llm_configs"][0]["engine_kwargs"]
    assert kwargs["enable_prefix_caching"] is False
    assert kwargs["enforce_eager"] is True


def test_pipeline_stages_in_request_order(prod, catalog):
    spec, plan = prod
    service = ray_serve_services(spec)[0]
    apps = apps_of(ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog)))
    assert list(apps) == [service.name, f"{service.name}-pipeline"]
    pipeline = apps[f"{service.name}-pipeline"]
    assert (pipeline["import_path"], pipeline["route_prefix"]) == (rs.PIPELINE_BUILDER, "/pipeline")
    assert pipeline["args"]["stages"] == [
        {"name": "retrieve", "import_path": "inferfleet_serve.stages:Retriever"},
        {"name": "rerank", "import_path": "inferfleet_serve.stages:Reranker"},
    ]
    assert pipeline["args"]["llm_app"] == service.name
    retrieve, rerank = pipeline["deployments"]
    assert retrieve == {
        "name": "retrieve",
        "ray_actor_options": {
            "num_cpus": 2.0,
            "runtime_env": {"env_vars": {"INFERFLEET_CORPUS": "/models/Qwen/Qwen2.5-32B-Instruct/default/corpus.jsonl"}},
        },
        "autoscaling_config": {"min_replicas": 2, "max_replicas": 8},
    }
    assert rerank["ray_actor_options"] == {"num_cpus": 1.0}  # no env: no runtime_env


def test_no_pipeline_app_without_stages(catalog):
    spec = load_stack("stacks/staging.yaml", catalog).spec
    plan = plan_stack(spec, catalog)
    service = ray_serve_services(spec)[0]
    assert list(apps_of(ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog)))) == [service.name]


@pytest.fixture(scope="module")
def canary(prod, catalog):
    """prod's rag with a canary of other engine arguments."""
    spec, _ = prod
    revision = CanarySpec.model_validate({"weightPercent": 10, "replicas": 1, "engineArgs": {"max-num-batched-tokens": 4096}})
    spec = with_service(spec, "rag", canary=revision)
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.name == "rag")
    return service, spec, plan, rs.ray_serve_objects(service, spec, plan, catalog)


def test_canary_is_its_own_ray_service_with_a_fixed_application(canary, catalog):
    service, spec, plan, objects = canary
    for obj in objects:
        validate_object(obj, KUBERNETES_VERSION)
    assert list(apps_of(ray_service_of(objects))) == ["rag", "rag-pipeline"]
    canary_service = ray_service_of(objects, "rag-canary")
    assert canary_service["spec"]["serveService"]["metadata"]["name"] == "rag-canary"
    (app,) = apps_of(canary_service).values()
    assert (app["name"], app["route_prefix"]) == ("rag-canary", "/")
    (config,) = app["args"]["llm_configs"]
    assert config["engine_kwargs"]["max_num_batched_tokens"] == 4096
    assert config["engine_kwargs"]["enable_prefix_caching"] is True
    assert apps_of(ray_service_of(objects))["rag"]["args"]["llm_configs"][0]["engine_kwargs"]["max_num_batched_tokens"] == 8192
    assert config["deployment_config"]["num_replicas"] == 1
    assert "autoscaling_config" not in config["deployment_config"]
    (group,) = canary_service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    assert group["groupName"] == "rag-canary" and group["minReplicas"] == group["maxReplicas"] == 1


def test_stable_traffic_goes_through_kuberays_serve_service(prod, catalog):
    spec, plan = prod
    service = ray_serve_services(spec)[0]
    ray_service = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))
    assert ray_service["spec"]["serveService"]["metadata"]["name"] == service.name
    assert ray_service["spec"]["excludeHeadPodFromServeSvc"] is True
    assert ray_service["spec"]["upgradeStrategy"] == {"type": "NewCluster"}


def test_cluster_autoscales_and_is_pinned(prod, catalog):
    spec, plan = prod
    service = ray_serve_services(spec)[0]
    cluster = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["autoscalerOptions"]["upscalingMode"] == rs.UPSCALING_MODE
    assert cluster["rayVersion"] == RAY_VERSION
    images = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]]
    images += [g["template"]["spec"]["containers"][0]["image"] for g in cluster["workerGroupSpecs"]]
    assert set(images) == {RAY_LLM_IMAGE}
    assert RAY_VERSION in RAY_LLM_IMAGE


def test_accelerator_resource_lets_the_autoscaler_start_a_group_from_zero(prod, catalog):
    """The Ray autoscaler's own parsing: drop the outer quotes and the backslashes, then JSON."""
    spec, plan = prod
    service = ray_serve_services(spec)[0]
    cluster = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]
    for group in cluster["workerGroupSpecs"]:
        text = group["rayStartParams"]["resources"]
        assert yaml.safe_load(text[1:-1].replace("\\", "")) == {"accelerator_type:L40S": 1}


def test_image_override(prod, catalog):
    spec, _ = prod
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferfleet/prod/ray-serve:1.0.0"
    spec = with_service(spec, "rag", image=image)
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.name == "rag")
    cluster = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == image
    assert {g["template"]["spec"]["containers"][0]["image"] for g in cluster["workerGroupSpecs"]} == {image}


def test_hugging_face_model_loads_by_id_without_fetching(prod, catalog):
    spec, _ = prod
    service = next(svc for svc in spec.services if svc.name == "rag")
    model = service.model.model_copy(update={"uri": "hf://Qwen/Qwen2.5-32B-Instruct"})
    spec = with_service(spec, "rag", model=model)
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.name == "rag")
    ray_service = ray_service_of(rs.ray_serve_objects(service, spec, plan, catalog))
    config = apps_of(ray_service)["rag"]["args"]["llm_configs"][0]
    assert config["model_loading_config"]["model_source"] == "Qwen/Qwen2.5-32B-Instruct"
    for group in ray_service["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        assert "initContainers" not in group["template"]["spec"]

