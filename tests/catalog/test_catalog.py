"""The catalog's data files: complete for what the project promises, internally consistent, sourced."""

import pytest
import yaml
from pydantic import ValidationError

from components.catalog import InstanceType, load_catalog
from components.catalog.loader import DATA_DIR

SIZES = ["xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"]
REQUIRED_INSTANCES = (
    [f"{family}.{size}" for family in ("g5", "g6", "g6e") for size in SIZES]
    + ["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge"]
)
REQUIRED_MODELS = {
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b",
    "meta-llama/Llama-3.1-405B-Instruct": "llama-3.1-405b",
    "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b",
    "meta-llama/Llama-3.2-3B-Instruct": "llama-3.2-3b",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistral-7b",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
    "Qwen/Qwen2.5-7B-Instruct": "qwen2.5-7b",
    "Qwen/Qwen2.5-32B-Instruct": "qwen2.5-32b",
    "Qwen/Qwen2.5-72B-Instruct": "qwen2.5-72b",
}
GPUS_PER_SIZE = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4,
                 "24xlarge": 4, "48xlarge": 8}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.mark.parametrize("name", REQUIRED_INSTANCES)
def test_required_instance_types_are_in_the_catalog(catalog, name):
    instance = catalog.instance_types[name]
    assert instance.gpu in catalog.gpus
    assert instance.on_demand_usd_per_hour > 0 and instance.source and instance.price_source


@pytest.mark.parametrize("family", ["g5", "g6", "g6e"])
def test_g_family_gpu_counts_follow_the_size(catalog, family):
    for size, gpus in GPUS_PER_SIZE.items():
        assert catalog.instance_types[f"{family}.{size}"].gpu_count == gpus


def test_single_gpu_sizes_cost_more_with_more_vcpus(catalog):
    for family in ("g5", "g6", "g6e"):
        single = [catalog.instance_types[f"{family}.{size}"] for size in SIZES if GPUS_PER_SIZE[size] == 1]
        prices = [i.on_demand_usd_per_hour for i in sorted(single, key=lambda i: i.vcpu)]
        assert prices == sorted(prices), family


def test_p_family_have_eight_nvlink_gpus(catalog):
    for name in ("p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge"):
        instance = catalog.instance_types[name]
        assert (instance.gpu_count, instance.gpu_interconnect) == (8, "nvlink")


@pytest.mark.parametrize("hf_id,catalog_id", REQUIRED_MODELS.items())
def test_required_models_resolve_by_hugging_face_id(catalog, hf_id, catalog_id):
    model = catalog.model_named(hf_id)
    assert model is not None and model.id == catalog_id
    assert catalog.model_named(hf_id.upper()) is model


NON_GATED_MLP = {"gpt-j-6b"}
"""Decoders whose MLP has two matrices (fc_in, fc_out) instead of gate, up and down."""


def _estimated_parameters(model) -> float:
    """Parameters implied by the architecture: embeddings (tied or not) plus per-layer attention and MLP."""
    head_dim = model.head_dimension
    attention = model.hidden_size * head_dim * (2 * model.attention_heads + 2 * model.kv_heads)
    if model.kind == "encoder" or model.id in NON_GATED_MLP:
        mlp = 2 * model.hidden_size * model.intermediate_size
    else:
        mlp = 3 * model.hidden_size * model.intermediate_size * max(1, model.experts)
    return model.layers * (attention + mlp) + model.vocab_size * model.hidden_size


@pytest.mark.parametrize("model_id", sorted(load_catalog().models))
def test_parameter_counts_agree_with_the_architecture(catalog, model_id):
    model = catalog.models[model_id]
    estimate = _estimated_parameters(model)
    # untied output embeddings add one more vocab x hidden; allow for them and for norms and biases
    assert estimate * 0.9 <= model.parameters <= (estimate + model.vocab_size * model.hidden_size) * 1.1


@pytest.mark.parametrize("model_id", sorted(load_catalog().models))
def test_active_parameters_of_moe_models_follow_the_routing(catalog, model_id):
    model = catalog.models[model_id]
    if model.experts == 0:
        assert model.parameters_per_token == model.parameters
        return
    assert 0 < model.active_experts < model.experts
    assert model.parameters_per_token < model.parameters


def test_every_gpu_is_used_and_sourced(catalog):
    for name, gpu in catalog.gpus.items():
        assert gpu.source, name
        if gpu.fp8_dense_tflops is not None:
            assert gpu.fp8_dense_tflops == pytest.approx(2 * gpu.bf16_dense_tflops, rel=0.05), name


def test_spot_costs_less_than_on_demand(catalog):
    instance = catalog.instance_types["g6.xlarge"]
    assert instance.usd_per_hour("spot") < instance.usd_per_hour("onDemand") == instance.on_demand_usd_per_hour


def test_capacity_block_only_types_are_not_offered_to_auto_scaling(catalog):
    p5e = catalog.instance_types["p5e.48xlarge"]
    assert not p5e.offered_on_demand and not p5e.offered_spot


ENI_MAX_PODS = {"p5.48xlarge": 100, "m7i.xlarge": 58, "p4de.24xlarge": 737, "g5.48xlarge": 345, "p5en.48xlarge": 198}
"""Known values from awslabs/amazon-eks-ami's eni-max-pods.txt (the last one nodeadm read, commit 544fd650),
which its instance-info.jsonl and calculateStandardMaxPods still give."""


@pytest.mark.parametrize("name", sorted(load_catalog().instance_types))
def test_every_instance_type_has_max_pods(catalog, name):
    assert catalog.instance_types[name].max_pods > 0


@pytest.mark.parametrize(("name", "pods"), ENI_MAX_PODS.items())
def test_max_pods_match_eni_max_pods(catalog, name, pods):
    assert catalog.instance_types[name].max_pods == pods


def test_max_pods_is_required_and_positive():
    rows = yaml.safe_load((DATA_DIR / "instances.yaml").read_text(encoding="utf-8"))["instanceTypes"]
    row = rows["m7i.xlarge"]
    assert InstanceType.model_validate(row).max_pods == 58
    without = {key: value for key, value in row.items() if key != "maxPods"}
    with pytest.raises(ValidationError, match="maxPods"):
        InstanceType.model_validate(without)
    with pytest.raises(ValidationError, match="maxPods"):
        InstanceType.model_validate({**row, "maxPods": 0})
