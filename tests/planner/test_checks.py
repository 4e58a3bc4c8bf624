"""Rules that need the catalog, through `load_stack` on real catalog data."""

import copy

import pytest
import yaml

from components.catalog import load_catalog
from components.planner import plan_stack
from components.spec import StackError
from components.stack import load_stack
from tests.spec.conftest import VALID_STACK


@pytest.fixture
def stack():
    return copy.deepcopy(VALID_STACK)


def problems(tmp_path, data) -> list[str]:
    path = tmp_path / f"{data['environment']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        load_stack(path)
    except StackError as error:
        return [f"{'.'.join(map(str, p.path))}: {p.message}" for p in error.problems]
    return []


def test_valid_stack_passes(tmp_path, stack):
    assert problems(tmp_path, stack) == []


def test_unknown_instance_type_lists_the_family(tmp_path, stack):
    stack["gpuPools"][0]["instanceTypes"] = ["g6.huge"]
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("gpuPools.0.instanceTypes.0: unknown instance type 'g6.huge'; known g6 sizes: g6.12xlarge")


def test_cpu_instance_type_rejected_in_a_gpu_pool(tmp_path, stack):
    stack["gpuPools"][0]["instanceTypes"] = ["m7i.xlarge"]
    assert problems(tmp_path, stack) == ["gpuPools.0.instanceTypes.0: m7i.xlarge has no GPU"]


def test_pool_types_must_share_a_gpu_count(tmp_path, stack):
    stack["gpuPools"][1]["instanceTypes"] = ["g6.xlarge", "g6.12xlarge"]
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("gpuPools.1.instanceTypes: the instance types of a pool must share one shape")
    assert "g6.xlarge is 1 x L4, 4 vCPU, 16 GiB; g6.12xlarge is 4 x L4, 48 vCPU, 192 GiB" in problem


@pytest.mark.parametrize(
    ("types", "facts"),
    [
        # Same GPU model and count, more vCPUs and memory: Cluster Autoscaler's AWS README asks that a
        # group's types "have the same amount of RAM and number of CPU cores".
        (["g6.xlarge", "g6.2xlarge"], "g6.xlarge is 1 x L4, 4 vCPU, 16 GiB; g6.2xlarge is 1 x L4, 8 vCPU, 32 GiB"),
        (["g6e.12xlarge", "g6e.24xlarge"], "g6e.12xlarge is 4 x L40S, 48 vCPU, 384 GiB; g6e.24xlarge is 4 x L40S, 96 vCPU, 768 GiB"),
        # Same GPU count, vCPUs and memory, another GPU model (and GPU memory, so another plan).
        (
            ["p5.48xlarge", "p5en.48xlarge"],
            "p5.48xlarge is 8 x H100-SXM5-80GB, 192 vCPU, 2048 GiB; p5en.48xlarge is 8 x H200-SXM-141GB, 192 vCPU, 2048 GiB",
        ),
    ],
)
def test_pool_types_must_share_one_shape(tmp_path, stack, types, facts):
    stack["gpuPools"][1]["instanceTypes"] = types
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("gpuPools.1.instanceTypes: the instance types of a pool must share one shape")
    assert facts in problem


def test_one_shape_problem_names_the_differing_types_at_the_pools_instance_types_line(tmp_path, stack):
    stack["gpuPools"][1]["instanceTypes"] = ["p5.48xlarge", "p5en.48xlarge", "p4de.24xlarge", "p5.48xlarge"]
    path = tmp_path / "dev.yaml"
    text = yaml.safe_dump(stack, sort_keys=False)
    path.write_text(text)
    with pytest.raises(StackError) as raised:
        load_stack(path)
    (problem,) = raised.value.problems
    lines = text.splitlines()
    spot = next(i for i, line in enumerate(lines) if line.strip() == "- name: spot")
    expected = next(i for i in range(spot, len(lines)) if lines[i].strip().startswith("instanceTypes:")) + 1
    assert (problem.line, problem.path) == (expected, ("gpuPools", 1, "instanceTypes"))
    assert str(problem).startswith(f"{path}:{expected}: gpuPools.1.instanceTypes: ")
    # The first type and each type of another shape, once; the repeated first type is no difference.
    assert problem.message.count("p5.48xlarge is") == 1
    assert "p5en.48xlarge is 8 x H200-SXM-141GB" in problem.message
    assert "p4de.24xlarge is 8 x A100-SXM4-80GB, 96 vCPU, 1152 GiB" in problem.message


def test_a_pool_of_one_shape_passes(tmp_path, stack):
    stack["gpuPools"][1]["instanceTypes"] = ["g6.xlarge", "g6.xlarge"]
    assert problems(tmp_path, stack) == []


def test_capacity_block_only_type_rejected_in_an_auto_scaling_pool(tmp_path, stack):
    stack["gpuPools"][0]["instanceTypes"] = ["p5e.48xlarge"]
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("gpuPools.0.instanceTypes.0: p5e.48xlarge is not sold as onDemand capacity")


def test_unknown_system_pool_type(tmp_path, stack):
    stack["cluster"]["systemPool"]["instanceTypes"] = ["m99.large"]
    assert problems(tmp_path, stack) == ["cluster.systemPool.instanceTypes.0: unknown instance type 'm99.large'"]


def test_kubernetes_version_without_pinned_addons_rejected(tmp_path, stack):
    stack["cluster"]["kubernetesVersion"] = "1.19"
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("cluster.kubernetesVersion: 1.19 has no pinned EKS add-on versions; supported: 1.33, 1.34")


def test_unknown_model_asks_for_an_architecture(tmp_path, stack):
    stack["services"][0]["model"]["name"] = "acme/secret-model"
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("services.0.model.name: 'acme/secret-model' is not in the catalog; give model.architecture")


def test_unknown_catalog_architecture_id(tmp_path, stack):
    stack["services"][0]["model"]["architecture"] = "llama-9"
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("services.0.model.architecture: unknown catalog model 'llama-9'; known: bge-large")


def test_catalog_id_names_the_architecture_of_a_renamed_model(tmp_path, stack):
    stack["services"][0]["model"].update(name="acme/llama-8b-finetune", architecture="llama-3.1-8b")
    assert problems(tmp_path, stack) == []


def test_inline_architecture_validates_and_plans(tmp_path, stack):
    stack["services"][0]["model"].update(
        name="acme/custom-3b",
        architecture={"parameters": 3_000_000_000, "layers": 28, "hiddenSize": 3072, "intermediateSize": 8192,
                      "attentionHeads": 24, "kvHeads": 8, "headDim": 128, "vocabSize": 128256, "contextLength": 32768},
    )
    assert problems(tmp_path, stack) == []
    plan = plan_stack(load_stack(tmp_path / "dev.yaml").spec, load_catalog())
    assert plan.services[0].weights_gib == pytest.approx(6e9 / 2**30)


def test_max_model_len_above_the_context_length(tmp_path, stack):
    stack["services"][0]["maxModelLen"] = 200_000
    assert problems(tmp_path, stack) == ["services.0.maxModelLen: 200000 exceeds the model's context length 131072"]


def test_tensor_parallel_must_divide_the_heads_and_the_node(tmp_path, stack):
    stack["gpuPools"][1]["instanceTypes"] = ["g6.12xlarge"]
    stack["services"][0]["tensorParallelSize"] = 3
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("services.0.tensorParallelSize: on pool spot (g6.12xlarge): tensor parallel 3 must divide")
    assert "allowed: [1, 2, 4]" in problem


def test_pipeline_parallel_beyond_the_pool_size(tmp_path, stack):
    stack["services"][0]["pipelineParallelSize"] = 4
    (problem,) = problems(tmp_path, stack)
    assert problem == (
        "services.0.pipelineParallelSize: on pool ondemand (g6.xlarge): pipeline parallel 4 needs 4 nodes "
        "but the pool's maxSize is 3"
    )


def test_weights_that_do_not_fit_are_rejected_with_the_numbers(tmp_path, stack):
    stack["services"][0]["model"]["name"] = "meta-llama/Llama-3.1-70B-Instruct"
    stack["gpuPools"][1]["maxSize"] = 1
    stack["gpuPools"][0]["maxSize"] = 1
    found = problems(tmp_path, stack)
    assert found[0].startswith("services.0.pools.0: meta-llama/Llama-3.1-70B-Instruct does not fit on g6.xlarge: 131.4 GiB")
    assert "not enough room for the weights" in found[0]


def test_full_length_sequence_must_fit_the_kv_cache(tmp_path, stack):
    # 8B bf16 on one L4: about 4 GiB of KV cache, but 131,072 tokens need 16 GiB (one node: no PP to spread it)
    del stack["services"][0]["maxModelLen"]
    stack["gpuPools"][1]["maxSize"] = 1
    found = problems(tmp_path, stack)
    assert found[0].startswith("services.0.pools.0: meta-llama/Llama-3.1-8B-Instruct does not fit on g6.xlarge")
    assert "16.0 GiB KV cache for one 131072-token sequence" in found[0]
    assert "not enough room for one 131072-token sequence of KV cache" in found[0]


def test_lower_memory_utilisation_in_engine_args_counts(tmp_path, stack):
    stack["services"][0]["engineArgs"] = {"gpu-memory-utilization": 0.7}
    stack["gpuPools"][1]["maxSize"] = 1
    assert any("does not fit on g6.xlarge" in p and "gpu-memory-utilization 0.7" in p for p in problems(tmp_path, stack))


def test_pools_of_different_shapes_get_their_own_parallelism(tmp_path, stack):
    stack["services"][0]["model"]["name"] = "Qwen/Qwen2.5-32B-Instruct"
    stack["gpuPools"][0]["instanceTypes"] = ["g6e.12xlarge"]
    stack["gpuPools"][1]["instanceTypes"] = ["p4de.24xlarge"]
    assert problems(tmp_path, stack) == []
    plan = plan_stack(load_stack(tmp_path / "dev.yaml").spec, load_catalog())
    by_pool = {entry.pool: entry for entry in plan.services}
    assert by_pool["ondemand"].instance_type == "g6e.12xlarge" and by_pool["spot"].instance_type == "p4de.24xlarge"
    assert by_pool["ondemand"].tensor_parallel_size > by_pool["spot"].tensor_parallel_size
    assert by_pool["ondemand"].max_output_tokens_per_second_per_replica != by_pool["spot"].max_output_tokens_per_second_per_replica


def test_headroom_cannot_exceed_the_pool(tmp_path, stack):
    stack["gpuPools"][0]["headroomGpus"] = 4
    assert problems(tmp_path, stack) == ["gpuPools.0.headroomGpus: 4 GPUs of headroom but the pool holds at most 3 "
                                         "(maxSize 3 x 1 GPUs)"]


def test_triton_replica_larger_than_a_node_rejected(tmp_path, stack):
    service = stack["services"][0]
    service["engine"] = "triton"
    service["model"] = {"name": "meta-llama/Llama-3.1-70B-Instruct", "uri": "s3://inferfleet-dev-models/llama-70b"}
    service["pools"] = ["ondemand"]
    stack["gpuPools"][0]["maxSize"] = 8
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("services.0.pools.0: a triton replica must fit one node, but on g6.xlarge it needs")


def test_triton_file_backend_needs_s3_model_files(tmp_path, stack):
    service = stack["services"][0]
    service["engine"] = "triton"
    service["model"]["uri"] = "hf://meta-llama/Llama-3.1-8B-Instruct"
    service["triton"] = {"backend": "onnxruntime"}
    assert problems(tmp_path, stack) == [
        "services.0.model.uri: Triton's onnxruntime backend loads model files from s3://; "
        "hf://meta-llama/Llama-3.1-8B-Instruct has none to load"
    ]
    service["triton"] = {"backend": "vllm"}
    assert problems(tmp_path, stack) == []


def test_unknown_vllm_option_rejected_with_a_suggestion(tmp_path, stack):
    stack["services"][0]["engineArgs"] = {"enable-prefix-cachin": True}
    (problem,) = problems(tmp_path, stack)
    assert problem == "services.0.engineArgs.enable-prefix-cachin: vLLM 0.32.0 has no option --enable-prefix-cachin; did you mean enable-prefix-caching?"


def test_vllm_option_values_must_fit_the_option(tmp_path, stack):
    stack["services"][0]["engineArgs"] = {"enforce-eager": 1, "max_num_seqs": True}
    assert problems(tmp_path, stack) == [
        "services.0.engineArgs.max_num_seqs: should be a positive integer (got True)",
    ]
    stack["services"][0]["engineArgs"] = {"enforce-eager": 1, "block_size": True}
    assert problems(tmp_path, stack) == [
        "services.0.engineArgs.enforce-eager: --enforce-eager is a switch: give true or false, not 1",
        "services.0.engineArgs.block_size: --block-size takes a value, not true",
    ]


def test_canary_engine_args_are_checked_against_vllm_too(tmp_path, stack):
    stack["services"][0]["canary"] = {"weightPercent": 5, "engineArgs": {"max-num-batched-token": 4096}}
    (problem,) = problems(tmp_path, stack)
    assert problem.startswith("services.0.canary.engineArgs.max-num-batched-token: vLLM 0.32.0 has no option")
