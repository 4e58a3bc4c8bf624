"""Triton objects for the example stacks: valid Kubernetes objects, config.pbtxt files that Triton's own
protobuf parses back with the spec's batching values, and pods placed exactly on their pools."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.catalog import load_catalog
from components.manifests import serving
from components.manifests import triton
from components.manifests.monitoring import OTLP_TRACES_HTTP_ENDPOINT
from components.manifests.placement import replica_sets
from components.manifests.scheduling import POOL_LABEL, pool_labels, pool_taints
from components.manifests.triton import (
    CONFIG_FILE,
    PORTS,
    VLLM_ENGINE_FILE,
    backend_of,
    model_config,
    triton_objects,
)
from components.manifests.versions import TRITON_SERVER_VERSION, TRITON_VLLM_IMAGE
from components.planner import plan_stack
from components.stack import load_stack
from tests.manifests.validators import validate_object

KUBERNETES_VERSION = "1.34.0"
STACKS = ["stacks/prod.yaml", "stacks/staging.yaml"]
DECODER_BATCH = 48


def triton_services(spec):
    return [service for service in spec.services if service.engine == "triton"]


def build(path: str):
    catalog = load_catalog()
    spec = load_stack(path).spec
    plan = plan_stack(spec, catalog)
    return spec, plan, catalog


def objects_of(path: str) -> list[dict]:
    spec, plan, catalog = build(path)
    return [obj for service in triton_services(spec) for obj in triton_objects(service, spec, plan, catalog)]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


@pytest.fixture(scope="module", params=STACKS)
def stack(request):
    return request.param


@pytest.fixture(scope="module")
def decoder_stack(tmp_path_factory) -> str:
    """prod with its chat model (a decoder) served by Triton: no backend named, maxBatchSize set."""
    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    chat = next(service for service in raw["services"] if service["name"] == "chat")
    chat["engine"] = "triton"
    chat["triton"] = {"maxBatchSize": DECODER_BATCH}
    path = tmp_path_factory.mktemp("stacks") / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_example_stacks_serve_something_on_triton(stack):
    spec, _, _ = build(stack)
    assert triton_services(spec)


def test_every_object_passes_kubernetes_strict_validation(stack):
    objects = objects_of(stack)
    assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} <= {obj["kind"] for obj in objects}
    for obj in objects:
        validate_object(obj, KUBERNETES_VERSION)


def test_validation_rejects_a_wrong_deployment(stack):
    """The validator is strict: an unknown field in the pod spec fails it."""
    deployment = of_kind(objects_of(stack), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["gpuCount"] = 1
    with pytest.raises(Exception):
        validate_object(deployment, KUBERNETES_VERSION)


def test_config_pbtxt_parses_back_with_the_spec_batching(stack):
    spec, plan, catalog = build(stack)
    for service in triton_services(spec):
        settings = service.triton
        for obj in of_kind(triton_objects(service, spec, plan, catalog), "ConfigMap"):
            config = parse(obj["data"][CONFIG_FILE])
            assert config.name == service.name
            assert config.backend == "onnxruntime"
            assert config.max_batch_size == (settings.max_batch_size if settings else 32)
            assert config.dynamic_batching.max_queue_delay_microseconds == (
                settings.max_queue_delay_us if settings else 500
            )


def test_prod_reranker_has_its_spec_values_and_encoder_tensors():
    spec, plan, catalog = build("stacks/prod.yaml")
    rerank = next(service for service in spec.services if service.name == "rerank")
    entry = next(e for e in plan.services if e.name == "rerank")
    config = parse(model_config(rerank, entry, catalog))
    assert (config.max_batch_size, config.dynamic_batching.max_queue_delay_microseconds) == (64, 1000)
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("input_ids", mc.DataType.TYPE_INT64, [-1]),
        ("attention_mask", mc.DataType.TYPE_INT64, [-1]),
    ]
    assert [(t.name, t.data_type) for t in config.output] == [("logits", mc.DataType.TYPE_FP32)]
    (group,) = config.instance_group
    assert group.kind == mc.ModelInstanceGroup.Kind.KIND_GPU
    assert list(group.gpus) == list(range(entry.gpus_per_replica))
    assert group.count == rerank.triton.instances_per_gpu


def test_a_wrong_config_text_is_rejected_by_the_parser():
    with pytest.raises(text_format.ParseError):
        parse('name: "rerank"\nmax_batch_size: 64\ndynamic_batching { max_queue_delay_us: 1000 }\n')
    with pytest.raises(text_format.ParseError):
        parse('name: "rerank"\ninstance_group [ { kind: KIND_TPU } ]\n')


def test_pods_are_placed_exactly_on_their_pools(stack):
    spec, plan, catalog = build(stack)
    pools = {pool.name: pool for pool in spec.gpu_pools}
    for service in triton_services(spec):
        sets = {r.name: r for r in replica_sets(service, spec, plan)}
        for deployment in of_kind(triton_objects(service, spec, plan, catalog), "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            pool_names = [p.name for p in sets[deployment["metadata"]["name"]].pools]
            terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            (expression,) = terms[0]["matchExpressions"]
            assert expression["key"] == POOL_LABEL
            assert expression["values"] == [pool_labels(pools[name])[POOL_LABEL] for name in pool_names]
            expected = {(t.key, t.value, t.effect) for name in pool_names for t in pool_taints(pools[name])}
            assert {(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]} == expected


def test_deployments_ask_for_the_planned_gpus_and_drain_within_the_spot_notice(stack):
    spec, plan, catalog = build(stack)
    for service in triton_services(spec):
        for replica_set in replica_sets(service, spec, plan):
            deployment = next(
                obj
                for obj in triton_objects(service, spec, plan, catalog)
                if obj["kind"] == "Deployment" and obj["metadata"]["name"] == replica_set.name
            )
            if replica_set.autoscaled:
                assert "replicas" not in deployment["spec"]
            else:
                assert deployment["spec"]["replicas"] == replica_set.replicas_min
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            resources = container["resources"]
            gpus = replica_set.plan.gpus_per_replica
            assert resources["requests"][serving.GPU_RESOURCE] == resources["limits"][serving.GPU_RESOURCE] == gpus
            drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            assert drain < pod["terminationGracePeriodSeconds"] < serving.SPOT_NOTICE_SECONDS
            assert {p["name"]: p["containerPort"] for p in container["ports"]} == PORTS
            assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
            command = container["command"][-1]
            assert "--metrics-port=8002" in command and "--allow-metrics=true" in command


def test_services_expose_http_first_then_grpc_and_metrics(stack):
    for service in of_kind(objects_of(stack), "Service"):
        assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == list(PORTS.items())


def test_a_decoder_on_triton_gets_the_vllm_backend(decoder_stack):
    spec, plan, catalog = build(decoder_stack)
    chat = next(service for service in spec.services if service.name == "chat")
    assert backend_of(chat, catalog) == "vllm"
    objects = triton_objects(chat, spec, plan, catalog)
    for obj in objects:
        validate_object(obj, KUBERNETES_VERSION)
    sets = {r.name: r for r in replica_sets(chat, spec, plan)}
    for config_map in of_kind(objects, "ConfigMap"):
        replica_set = sets[config_map["metadata"]["labels"][serving.REPLICA_SET_LABEL]]
        config = parse(config_map["data"][CONFIG_FILE])
        assert config.backend == "vllm"
        assert config.max_batch_size == 0 and config.model_transaction_policy.decoupled
        assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.Kind.KIND_MODEL]
        assert config.input[0].name == "text_input" and config.output[0].name == "text_output"
        engine = json.loads(config_map["data"][VLLM_ENGINE_FILE])
        assert engine["max_num_seqs"] == DECODER_BATCH
        assert engine["tensor_parallel_size"] == replica_set.plan.tensor_parallel_size
        assert engine["model"] == serving.model_cache_dir(chat, replica_set.model_revision)
        for key, value in replica_set.engine_args.items():
            assert engine[key.replace("-", "_")] == value
    images = {obj["spec"]["template"]["spec"]["containers"][0]["image"] for obj in of_kind(objects, "Deployment")}
    assert images == {TRITON_VLLM_IMAGE}


def test_the_config_protobuf_is_the_pinned_triton_release():
    """config.pbtxt is generated with tritonclient's model_config.proto: it must be the server's release."""
    assert version("tritonclient") == TRITON_SERVER_VERSION


def test_triton_traces_to_the_collector_when_tracing_is_on(catalog):
    source = load_stack("stacks/prod.yaml", catalog)
    spec = source.spec.model_copy(
        update={"observability": source.spec.observability.model_copy(update={"tracing": True})}
    )
    plan = plan_stack(spec, catalog)
    service = next(s for s in spec.services if s.engine == "triton")
    replica_set = replica_sets(service, spec, plan)[0]
    script = triton.deployment(replica_set, catalog, triton.config_files(replica_set, catalog))["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert f"--trace-config=opentelemetry,url={OTLP_TRACES_HTTP_ENDPOINT}" in script
