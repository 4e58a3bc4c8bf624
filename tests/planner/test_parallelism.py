"""Choosing tensor and pipeline parallel sizes."""

from components.planner.parallelism import ServiceOnPool, choose_replica, tensor_parallel_options
from components.spec.models import ModelArchitecture, ServiceSpec

LLAMA_70B = {"parameters": 70_553_706_496, "layers": 80, "hiddenSize": 8192, "intermediateSize": 28672,
             "attentionHeads": 64, "kvHeads": 8, "headDim": 128, "vocabSize": 128256, "contextLength": 131072}


def service(**overrides) -> ServiceSpec:
    fields = {"name": "chat", "engine": "vllm", "model": {"name": "meta/llama-8b", "uri": "s3://models-bucket/m"},
              "pools": ["p"], "replicas": {"min": 1, "max": 4}, "maxModelLen": 8192,
              "workload": {"inputTokens": 1000, "outputTokens": 200, "peakRequestsPerSecond": 1}}
    return ServiceSpec.model_validate({**fields, **overrides})


def test_tensor_parallel_must_divide_gpus_and_attention_heads():
    llama = ModelArchitecture.model_validate(LLAMA_70B)
    assert tensor_parallel_options(llama, 8) == [1, 2, 4, 8]
    qwen_7b = llama.model_copy(update={"attention_heads": 28, "kv_heads": 4})
    assert tensor_parallel_options(qwen_7b, 8) == [1, 2, 4]
    assert tensor_parallel_options(qwen_7b, 4) == [1, 2, 4]
    three_kv = llama.model_copy(update={"attention_heads": 24, "kv_heads": 3})
    assert tensor_parallel_options(three_kv, 8) == [1]


def test_auto_picks_one_gpu_when_it_has_room(toy_catalog):
    target = ServiceOnPool(service(), toy_catalog.models["llama-8b"], toy_catalog.instance_types["x8.big"], 4)
    replica = choose_replica(target, toy_catalog)
    assert (replica.tensor_parallel, replica.pipeline_parallel) == (1, 1)


def test_auto_picks_smallest_tensor_parallel_with_room_for_batching(toy_catalog):
    # 131.4 GiB of weights: TP=2 leaves 2 x (72 - 65.7 - ~1.6) GiB, about 60k tokens: room for 16 x 1,200-token
    # sequences but not for TP=1
    arch = ModelArchitecture.model_validate(LLAMA_70B)
    target = ServiceOnPool(service(), arch, toy_catalog.instance_types["x8.big"], 4)
    replica = choose_replica(target, toy_catalog)
    assert (replica.tensor_parallel, replica.pipeline_parallel) == (2, 1)


def test_auto_spreads_pipeline_stages_over_nodes_when_one_node_is_too_small(toy_catalog):
    arch = ModelArchitecture.model_validate(LLAMA_70B)
    target = ServiceOnPool(service(), arch, toy_catalog.instance_types["x1.small"], 4)
    replica = choose_replica(target, toy_catalog)
    assert (replica.tensor_parallel, replica.pipeline_parallel) == (1, 2)


def test_fixed_parallelism_is_kept_even_when_larger_than_needed(toy_catalog):
    target = ServiceOnPool(service(tensorParallelSize=4), toy_catalog.models["llama-8b"],
                           toy_catalog.instance_types["x8.big"], 4)
    replica = choose_replica(target, toy_catalog)
    assert (replica.tensor_parallel, replica.pipeline_parallel) == (4, 1)


def test_no_replica_when_one_full_length_sequence_cannot_fit(toy_catalog):
    arch = ModelArchitecture.model_validate(LLAMA_70B)
    target = ServiceOnPool(service(maxModelLen=131072), arch, toy_catalog.instance_types["x1.small"], 1)
    assert choose_replica(target, toy_catalog) is None
